"""Conformer shards: compact, content-addressed ``.npz`` files of built ensembles (no pickles).

A shard holds the finished molecules of one piece of a dataset build (``scripts/build_dataset.py``):

=================  ==========================  =====================================================
array              shape / dtype               meaning
=================  ==========================  =====================================================
``index``          [M] int64                   line number (0-based) of the molecule in the source
``smiles``         [M] str                     the source's SMILES, as written there
``mapped_smiles``  [M] str                     explicit-hydrogen SMILES whose atom map numbers (1..N)
                                               give the atom order of the coordinates
``n_atoms``        [M] int32                   atoms (with hydrogens) per molecule
``n_confs``        [M] int32                   conformers per molecule
``pos``            [sum n_atoms x n_confs, 3]  coordinates, molecule after molecule, conformer after
                                               conformer: Angstrom as float32, or milli-Angstrom as
                                               int16 (``write_shard(..., quantize=True)``: half the
                                               size, at most 0.0005 A off)
``energy``         [sum n_confs] float64       energy of the conformer (unit in ``meta["energy_unit"]``:
                                               Hartree for GFN2-xTB, kcal/mol for MMFF94)
``aux_energy``     [sum n_confs] float64       force-field energy of its start geometry (kcal/mol)
``failed_index``   [F] int64                   source lines that gave no ensemble ...
``failed_smiles``  [F] str                     ... their SMILES ...
``failed_reason``  [F] str                     ... and why (never written as conformers)
``meta``           [] str                      JSON: protocol, source file, versions, build time
=================  ==========================  =====================================================

The file name is ``<prefix>-<sha256 of the arrays>[:16].npz``: the same content always has the same name, a
shard is never modified, and a half-written file never has a shard's name (it is written to a temporary file
and renamed). Loading uses ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator

import numpy as np
from rdkit import Chem

from confgen.chem.files import atomic_write

SHARD_SUFFIX = ".npz"
#: Angstrom per unit of int16 coordinates
INT16_POS_UNIT = 1e-3
_ARRAYS = ("index", "smiles", "mapped_smiles", "n_atoms", "n_confs", "pos", "energy", "aux_energy",
           "failed_index", "failed_smiles", "failed_reason", "meta")


@dataclass
class ShardMolecule:
    """One finished molecule of a shard.

    Attributes:
        index: line number in the source.
        smiles: the source's SMILES.
        mol: Mol with explicit hydrogens and one conformer per stored geometry.
        energies: [C] energies (Hartree), aligned with the conformers.
        aux_energies: [C] force-field energies of the start geometries (kcal/mol).
    """

    index: int
    smiles: str
    mol: Chem.Mol
    energies: np.ndarray
    aux_energies: np.ndarray


@dataclass
class ShardBuffer:
    """Finished molecules and failures collected before they are written as one shard."""

    molecules: list[tuple[int, str, Chem.Mol, np.ndarray, np.ndarray]] = field(default_factory=list)
    failures: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, index: int, smiles: str, mol: Chem.Mol, energies, aux_energies) -> None:
        if mol.GetNumConformers() != len(energies) or len(energies) != len(aux_energies):
            raise ValueError("one energy and one auxiliary energy per conformer")
        self.molecules.append((index, smiles, Chem.Mol(mol), np.asarray(energies, np.float64),
                               np.asarray(aux_energies, np.float64)))

    def fail(self, index: int, smiles: str, reason: str) -> None:
        self.failures.append((index, smiles, reason))

    def __len__(self) -> int:
        return len(self.molecules) + len(self.failures)


def mapped_smiles(mol: Chem.Mol) -> str:
    """Explicit-hydrogen SMILES with atom map number i + 1 on atom i (recovers the atom order)."""
    m = Chem.Mol(mol)
    m.RemoveAllConformers()
    for atom in m.GetAtoms():
        atom.SetAtomMapNum(atom.GetIdx() + 1)
    return Chem.MolToSmiles(m, allHsExplicit=True)


def mol_from_mapped_smiles(smiles: str) -> Chem.Mol:
    """Inverse of :func:`mapped_smiles`: the Mol with atoms in map-number order and no map numbers."""
    params = Chem.SmilesParserParams()
    params.removeHs = False
    mol = Chem.MolFromSmiles(smiles, params)
    if mol is None:
        raise ValueError(f"unparsable mapped SMILES {smiles!r}")
    order = [0] * mol.GetNumAtoms()
    for atom in mol.GetAtoms():
        order[atom.GetAtomMapNum() - 1] = atom.GetIdx()
    mol = Chem.RenumberAtoms(mol, order)
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(0)
    return mol


def _content_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in _ARRAYS:
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _stored_positions(pos: list[np.ndarray], quantize: bool) -> np.ndarray:
    """The ``pos`` array: float32 Angstrom, or int16 milli-Angstrom when ``quantize`` and every coordinate fits."""
    xyz = np.concatenate(pos) if pos else np.zeros((0, 3))
    if quantize:
        milli = np.round(xyz / INT16_POS_UNIT)
        if milli.size == 0 or np.abs(milli).max() <= np.iinfo(np.int16).max:
            return milli.astype(np.int16)
    return xyz.astype(np.float32)


def write_shard(directory: str | os.PathLike, buffer: ShardBuffer, meta: dict, prefix: str = "shard", *,
                quantize: bool = False) -> Path:
    """Write ``buffer`` as one content-addressed shard in ``directory`` (atomically); returns its path.

    Args:
        quantize: store coordinates as int16 milli-Angstrom (half the size) when all fit in +-32.7 A, else as
            float32.
    """
    mols = sorted(buffer.molecules, key=lambda m: m[0])
    fails = sorted(buffer.failures)
    pos = [c.GetPositions() for _, _, m, _, _ in mols for c in m.GetConformers()]
    arrays = {
        "index": np.array([m[0] for m in mols], np.int64),
        "smiles": np.array([m[1] for m in mols], dtype=str),
        "mapped_smiles": np.array([mapped_smiles(m[2]) for m in mols], dtype=str),
        "n_atoms": np.array([m[2].GetNumAtoms() for m in mols], np.int32),
        "n_confs": np.array([m[2].GetNumConformers() for m in mols], np.int32),
        "pos": _stored_positions(pos, quantize),
        "energy": np.concatenate([m[3] for m in mols]) if mols else np.zeros(0),
        "aux_energy": np.concatenate([m[4] for m in mols]) if mols else np.zeros(0),
        "failed_index": np.array([f[0] for f in fails], np.int64),
        "failed_smiles": np.array([f[1] for f in fails], dtype=str),
        "failed_reason": np.array([f[2] for f in fails], dtype=str),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
    }
    for key in ("smiles", "mapped_smiles", "failed_smiles", "failed_reason"):
        if arrays[key].size == 0:
            arrays[key] = np.zeros(0, dtype="<U1")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{prefix}-{_content_hash(arrays)[:16]}{SHARD_SUFFIX}"
    atomic_write(final, lambda fh: np.savez_compressed(fh, **arrays), binary=True, mode=0o644)
    return final


def shard_paths(directory: str | os.PathLike) -> list[Path]:
    """The shards of ``directory``, sorted by name (temporary files excluded)."""
    return sorted(p for p in Path(directory).glob(f"*{SHARD_SUFFIX}") if not p.name.startswith("."))


def is_shard_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and bool(shard_paths(p))


def _load(path: Path, keys: tuple[str, ...] = _ARRAYS) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a shard (only those are read; every array of the format must be present)."""
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in _ARRAYS if k not in data.files]
        if missing:
            raise ValueError(f"{path}: not a conformer shard (missing {', '.join(missing)})")
        return {k: data[k] for k in keys}


def shard_meta(path: str | os.PathLike) -> dict:
    return json.loads(str(_load(Path(path), ("meta",))["meta"]))


def done_indices(directory: str | os.PathLike, source: str | None = None) -> set[int]:
    """Source lines already finished (built or failed) in the shards of ``directory``.

    Args:
        source: count only shards built from this source name (``meta["source"]``).
    """
    done: set[int] = set()
    for path in shard_paths(directory):
        data = _load(path)
        if source is not None and json.loads(str(data["meta"])).get("source") != source:
            continue
        done.update(data["index"].tolist())
        done.update(data["failed_index"].tolist())
    return done


def iter_shard(path: str | os.PathLike) -> Iterator[ShardMolecule]:
    """The molecules of one shard, with their conformers."""
    data = _load(Path(path))
    pos = data["pos"].astype(np.float64)
    if data["pos"].dtype == np.int16:
        pos *= INT16_POS_UNIT
    atom_offset = conf_offset = 0
    for k in range(len(data["index"])):
        n_atoms, n_confs = int(data["n_atoms"][k]), int(data["n_confs"][k])
        mol = mol_from_mapped_smiles(str(data["mapped_smiles"][k]))
        if mol.GetNumAtoms() != n_atoms:
            raise ValueError(f"{path}: molecule {int(data['index'][k])} has {mol.GetNumAtoms()} atoms, "
                             f"{n_atoms} stored")
        for c in range(n_confs):
            conf = Chem.Conformer(n_atoms)
            conf.SetPositions(pos[atom_offset + c * n_atoms: atom_offset + (c + 1) * n_atoms])
            conf.SetId(c)
            mol.AddConformer(conf, assignId=False)
        yield ShardMolecule(index=int(data["index"][k]), smiles=str(data["smiles"][k]), mol=mol,
                            energies=data["energy"][conf_offset:conf_offset + n_confs].copy(),
                            aux_energies=data["aux_energy"][conf_offset:conf_offset + n_confs].copy())
        atom_offset += n_atoms * n_confs
        conf_offset += n_confs


def iter_shards(directory: str | os.PathLike) -> Iterator[ShardMolecule]:
    """Every molecule of every shard of ``directory``, shard after shard (sorted by name)."""
    for path in shard_paths(directory):
        yield from iter_shard(path)


def shard_failures(path: str | os.PathLike) -> list[tuple[int, str, str]]:
    """``(index, smiles, reason)`` of every failed molecule recorded in one shard."""
    data = _load(Path(path))
    return list(zip(data["failed_index"].tolist(), data["failed_smiles"].tolist(), data["failed_reason"].tolist()))


def failures(directory: str | os.PathLike) -> list[tuple[int, str, str]]:
    """``(index, smiles, reason)`` of every failed molecule in the shards of ``directory``."""
    return sorted(f for path in shard_paths(directory) for f in shard_failures(path))
