"""Streaming readers for the conformer datasets users have.

One entry point, :func:`iter_molecules`, reads any supported source and yields one :class:`MolRecord` per
molecule (all of its conformers as RDKit conformers of one Mol with explicit hydrogens):

* GEOM ``rdkit_folder`` (a directory with ``summary_*.json`` and per-molecule pickles, or one summary JSON);
  molecules are read one pickle at a time, the summary is decoded one entry at a time;
* torsional-diffusion style pickles ``dict[smiles -> list[Mol]]`` and single GEOM per-molecule pickles;
* multi-conformer SDF files (``.sdf``, ``.sdf.gz``): consecutive records with the same graph form one molecule;
* QM9: ``"qm9pack"`` (the data shipped in the ``qm9pack`` package) or a CSV with ``elements`` / ``xyz_ang``
  columns (e.g. ``geom_qm9_test_matched_qm9_dft_geometry.csv``): the DFT geometry is mapped onto the SMILES graph;
* SMILES files (``.smi`` / ``.txt``: ``SMILES [name]`` per line, ``#`` comments; ``.csv`` with a ``smiles``
  column and optional ``name``): molecules without conformers.

All pickles go through :mod:`confgen.data.safe_pickle`. Conformers of one molecule are brought to the atom order
of the first (highest-weight) conformer; a conformer whose graph or stereochemistry (taken from its 3D
geometry) differs from that reference is dropped and counted in ``stats["dropped_conformers"]``.
"""

from __future__ import annotations

import ast
import csv
import gzip
import importlib.util
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds

from confgen.chem.conformers import with_positions
from confgen.chem.forcefield import KCAL_PER_HARTREE
from confgen.chem.selection import boltzmann_weights
from confgen.chem.smiles import canonical_smiles, heavy_atom_count, parse_smiles, try_canonical_smiles
from confgen.chem.stereo import StereoSignature, stereo_from_3d
from confgen.data import safe_pickle
from confgen.data.shards import is_shard_dir, iter_shard, shard_paths
from confgen.errors import ConfgenError, InputError
from confgen.rdlog import quiet_rdkit

SDF_SUFFIXES = (".sdf", ".sd", ".mol", ".sdf.gz", ".sd.gz")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pkl.gz", ".pickle.gz")
SMILES_SUFFIXES = (".smi", ".smiles", ".txt", ".ism")
QM9PACK = "qm9pack"
_SMILES_COLUMNS = ("smiles", "SMILES", "geom_smiles", "corrected_smiles", "qm9_smiles", "canonical_smiles")

csv.field_size_limit(1 << 30)

#: kcal/mol above a molecule's lowest energy within which conformer shards are read (GEOM's CREST window; the
#: window raised COV-P@0.75 of GFN2-xTB ensembles against GEOM from 70.5 to 76.9 % at 2L on 13 molecules in
#: scripts/study_xtb_protocol.py)
SHARD_ENERGY_WINDOW = 6.0


@dataclass
class MolRecord:
    """One molecule read from a source.

    Attributes:
        smiles: the source's SMILES for the molecule (e.g. the GEOM key), as given.
        mol: RDKit Mol with explicit hydrogens carrying all conformers (none for SMILES-only sources).
        weights: one weight per conformer (Boltzmann weights, renormalised to sum 1), or ``None``.
        source: where it came from, e.g. ``"file.sdf:record 3"``.
        name: the molecule's name (SDF title, SMILES-file name column, or the SMILES).
    """

    smiles: str
    mol: Chem.Mol
    weights: list[float] | None = None
    source: str = ""
    name: str = ""

    @property
    def num_confs(self) -> int:
        return self.mol.GetNumConformers()


# ----------------------------------------------------------------------------------------------- SMILES helpers


# ----------------------------------------------------------------------------------------- conformer merging


def _has_implicit_h(mol: Chem.Mol) -> bool:
    return any(a.GetNumImplicitHs() for a in mol.GetAtoms())


def _with_explicit_h(mol: Chem.Mol) -> Chem.Mol:
    if _has_implicit_h(mol):
        return Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)
    return mol


def _graph_signature(mol: Chem.Mol) -> tuple[tuple[int, ...], frozenset[tuple[int, int]]]:
    nums = tuple(a.GetAtomicNum() for a in mol.GetAtoms())
    bonds = frozenset((min(b.GetBeginAtomIdx(), b.GetEndAtomIdx()), max(b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
                      for b in mol.GetBonds())
    return nums, bonds


def merge_conformers(mols: list[Chem.Mol], *, ref_smiles: str | None = None, max_confs: int | None = None,
                     stereo: str = "keep", stats: dict | None = None) -> list[tuple[Chem.Mol, list[int]]]:
    """Merge single-conformer Mols of one molecule into Mols with several conformers.

    The template is the first Mol (callers order them by weight) unless ``ref_smiles`` names a stereoisomer and
    another early Mol's 3D stereo matches it. Every other Mol is mapped onto the template's atom order (by graph
    match); Mols with another graph (e.g. a GEOM conformer that reacted) are dropped.

    Conformers may differ from the template in stereochemistry read from their 3D geometry (GEOM ensembles hold
    E and Z amidines, inverted nitrogens in rings, ...). ``stereo="keep"`` keeps them all in one Mol whose stereo
    tags are the template's (what reference ensembles need: every reference conformer counts). ``stereo="split"``
    returns one Mol per stereoisomer, each with its own stereo tags (what training needs: consistent labels).

    Args:
        mols: Mols, each with at least one conformer (the first is used).
        ref_smiles: the source's SMILES, used to prefer a template with the stereo it names.
        max_confs: keep at most this many conformers per returned Mol (the first ones).
        stereo: ``"keep"`` or ``"split"`` (see above).
        stats: optional counters; ``stats["dropped_conformers"]`` counts conformers with another graph.

    Returns:
        ``[(mol, kept), ...]``: merged Mols (explicit H, stereo assigned from their template's 3D geometry) and the
        indices into ``mols`` of their conformers, the template's group first; empty when no Mol has a conformer.
    """
    if stereo not in ("keep", "split"):
        raise ValueError(f"stereo must be 'keep' or 'split', not {stereo!r}")
    candidates = [i for i, m in enumerate(mols) if m is not None and m.GetNumConformers() > 0]
    if not candidates:
        return []
    template_idx = candidates[0]
    if ref_smiles:
        want = try_canonical_smiles(ref_smiles, stereo=True)
        if want is not None and any(c in want for c in "@/\\"):
            for i in candidates[:10]:
                try:
                    if canonical_smiles(stereo_from_3d(_with_explicit_h(mols[i])), stereo=True) == want:
                        template_idx = i
                        break
                except Exception:  # noqa: BLE001 - a broken conformer cannot be the template
                    continue
    template = stereo_from_3d(_with_explicit_h(mols[template_idx]))
    n_atoms = template.GetNumAtoms()
    signature_t = _graph_signature(template)
    pos_t = template.GetConformer().GetPositions()
    stereo_t = StereoSignature(template, pos_t)

    # map every conformer onto the template's atom order; group by stereo signature
    groups: dict[bytes, list[tuple[int, np.ndarray]]] = {}
    n_dropped = 0
    for i in [template_idx] + [j for j in candidates if j != template_idx]:
        if i == template_idx:
            pos = pos_t
        else:
            m = _with_explicit_h(mols[i])
            pos_m = m.GetConformer().GetPositions()
            if _graph_signature(m) == signature_t:
                pos = pos_m
            else:
                match = m.GetSubstructMatch(template, useChirality=False) if m.GetNumAtoms() == n_atoms else ()
                if len(match) != n_atoms:
                    n_dropped += 1
                    continue
                pos = pos_m[list(match)]
        key = stereo_t.signs(pos).astype(np.int8).tobytes() if stereo == "split" else b""
        groups.setdefault(key, []).append((i, pos))
    if stats is not None:
        stats["dropped_conformers"] = stats.get("dropped_conformers", 0) + n_dropped

    out = []
    for members in groups.values():
        if max_confs is not None:
            members = members[:max_confs]
        first = members[0][0]
        base = template if first == template_idx else stereo_from_3d(_with_explicit_h(with_positions(
            template, [members[0][1]])))
        mol = with_positions(base, [pos for _, pos in members])
        out.append((mol, [i for i, _ in members]))
    return out


def _records(mols: list[Chem.Mol], *, smiles: str, name: str, source: str, weights: list[float] | None,
             max_confs: int | None, stereo: str, stats: dict) -> list[MolRecord]:
    """Merge conformer Mols (see :func:`merge_conformers`) into records; further stereoisomers get a source tag."""
    out = []
    for k, (mol, kept) in enumerate(merge_conformers(mols, ref_smiles=smiles or None, max_confs=max_confs,
                                                     stereo=stereo, stats=stats)):
        smi = smiles or canonical_smiles(mol, stereo=True)
        nm = name or smi
        mol.SetProp("_Name", nm)
        w = _normalise([weights[i] for i in kept]) if weights is not None else None
        src = source if k == 0 else f"{source} (stereoisomer {k + 1})"
        out.append(MolRecord(smiles=smi, mol=mol, weights=w, source=src, name=nm))
    return out


def _normalise(weights: list[float]) -> list[float] | None:
    w = np.asarray(weights, dtype=np.float64)
    if not len(w) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        return None
    return (w / w.sum()).tolist()


# ------------------------------------------------------------------------------------------------ filtering


class _Filter:
    """Heavy-atom range and split-membership filter shared by all readers."""

    def __init__(self, split_csv, min_heavy_atoms, max_heavy_atoms, stats, stereo="keep"):
        self.stereo = stereo
        self.min_heavy = min_heavy_atoms
        self.max_heavy = max_heavy_atoms
        self.stats = stats if stats is not None else {}
        self.split_raw: set[str] | None = None
        self.split_canon: set[str] | None = None
        if split_csv is not None:
            self.split_raw = set()
            for smi, _name, _src in _iter_smiles_lines(Path(split_csv)):
                self.split_raw.add(smi)
            self.split_canon = set()
            for smi in self.split_raw:
                can = try_canonical_smiles(smi, stereo=False)
                if can is not None:
                    self.split_canon.add(can)

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def in_split(self, smiles: str, mol: Chem.Mol | None = None) -> bool:
        if self.split_raw is None or smiles in self.split_raw:
            return True
        can = try_canonical_smiles(smiles, stereo=False)
        if can is None and mol is not None:
            can = canonical_smiles(mol, stereo=False)
        if can is not None and can in self.split_canon:
            return True
        self._count("filtered_split")
        return False

    def heavy_ok(self, n_heavy: int) -> bool:
        if (self.min_heavy is not None and n_heavy < self.min_heavy) or (
                self.max_heavy is not None and n_heavy > self.max_heavy):
            self._count("filtered_heavy_atoms")
            return False
        return True

    def smiles_heavy_ok(self, smiles: str) -> bool:
        """Pre-filter on the SMILES alone (before loading conformers); True when it cannot be parsed."""
        if self.min_heavy is None and self.max_heavy is None:
            return True
        with quiet_rdkit():
            mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            return True
        return self.heavy_ok(heavy_atom_count(mol))


class _Reporter:
    def __init__(self, errors: list | None):
        self.errors = errors

    def __call__(self, err: InputError) -> None:
        if self.errors is None:
            raise err
        self.errors.append(err)


def _finish(record: MolRecord, filt: _Filter, report: _Reporter) -> MolRecord | None:
    """Common checks on a record: heavy atoms present, heavy-atom range."""
    n_heavy = heavy_atom_count(record.mol)
    if n_heavy == 0:
        report(InputError("molecule has no heavy atoms", source=record.source, smiles=record.smiles))
        return None
    if not filt.heavy_ok(n_heavy):
        return None
    return record


# ---------------------------------------------------------------------------------------------- entry point


def detect_format(path: str | os.PathLike) -> str:
    """Name the reader for ``path``: rdkit_folder, pickle, sdf, qm9pack, qm9_csv, smiles_csv, smiles.

    Raises:
        ConfgenError: path missing or format unknown (the message names the path).
    """
    if str(path) == QM9PACK:
        return "qm9pack"
    p = Path(path)
    if p.is_dir():
        if _find_summaries(p) or any(p.glob("*/*.pickle")):
            return "rdkit_folder"
        if is_shard_dir(p):
            return "shards"
        raise ConfgenError(f"{p}: unknown format (a directory without summary_*.json, */*.pickle or *.npz "
                           "conformer shards; expected a GEOM rdkit_folder or a shard directory)")
    if not p.exists():
        raise ConfgenError(f"{p}: no such file or directory")
    name = p.name.lower()
    if name.endswith(SDF_SUFFIXES):
        return "sdf"
    if name.endswith(PICKLE_SUFFIXES):
        return "pickle"
    if name.endswith(".json"):
        return "rdkit_folder"
    if name.endswith(SMILES_SUFFIXES):
        return "smiles"
    if name.endswith(".csv"):
        header = _csv_header(p)
        lower = {h.strip().lower() for h in header}
        if {"xyz_ang", "elements"} <= lower:
            return "qm9_csv"
        if any(h in header for h in _SMILES_COLUMNS) or "smiles" in lower:
            return "smiles_csv"
        raise ConfgenError(f"{p}: unknown CSV layout (no 'smiles' column, no 'elements'/'xyz_ang' columns)")
    raise ConfgenError(f"{p}: unknown format (supported: GEOM rdkit_folder directory or summary .json, conformer shard directory, "
                       ".pkl/.pickle, .sdf, .smi/.txt, .csv, or 'qm9pack')")


def iter_molecules(path: str | os.PathLike, *, split_csv: str | os.PathLike | None = None,
                   max_confs: int | None = None, min_heavy_atoms: int | None = None,
                   max_heavy_atoms: int | None = None, errors: list | None = None,
                   stats: dict | None = None, stereo: str = "keep") -> Iterator[MolRecord]:
    """Stream the molecules of any supported source, one :class:`MolRecord` per molecule.

    Args:
        path: a GEOM ``rdkit_folder`` directory (or its summary JSON), a pickle, an SDF, a QM9 CSV,
            ``"qm9pack"``, or a SMILES file (.smi/.txt/.csv).
        split_csv: keep only molecules listed in this SMILES file/CSV (``smiles`` column or first token);
            matched by exact string, then by stereo-free canonical SMILES.
        max_confs: keep at most this many conformers per molecule (highest Boltzmann weight first where the
            source has weights, else file order).
        min_heavy_atoms, max_heavy_atoms: keep molecules whose heavy-atom count lies in this range.
        errors: if given, receives one :class:`InputError` per skipped input instead of raising it.
        stats: optional dict of counters (``filtered_split``, ``filtered_heavy_atoms``, ``dropped_conformers``).
        stereo: ``"keep"``: a molecule's conformers stay together even where their 3D stereo differs (reference
            ensembles); ``"split"``: one record per stereoisomer found in the 3D geometries (training data).

    Yields:
        :class:`MolRecord` objects.

    Raises:
        InputError: the first bad input, when ``errors`` is None.
    """
    report = _Reporter(errors)
    if stats is None:
        stats = {}
    try:
        fmt = detect_format(path)
        if stereo not in ("keep", "split"):
            raise ConfgenError(f"stereo must be 'keep' or 'split', not {stereo!r}")
        filt = _Filter(split_csv, min_heavy_atoms, max_heavy_atoms, stats, stereo=stereo)
    except InputError as exc:
        report(exc)
        return
    except ConfgenError as exc:
        report(InputError(str(exc)))
        return
    reader = {
        "rdkit_folder": _iter_rdkit_folder,
        "pickle": _iter_pickle,
        "sdf": _iter_sdf,
        "qm9pack": _iter_qm9pack,
        "qm9_csv": _iter_qm9_csv,
        "smiles": _iter_smiles,
        "smiles_csv": _iter_smiles,
        "shards": _iter_shard_dir,
    }[fmt]
    for record in reader(path, filt=filt, report=report, max_confs=max_confs, stats=stats):
        record = _finish(record, filt, report)
        if record is not None:
            yield record


# -------------------------------------------------------------------------------------------- SMILES files


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, newline="") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfgenError(f"{path}: cannot read file ({exc})") from None


def _iter_smiles_lines(path: Path) -> Iterator[tuple[str, str, str]]:
    """Yield ``(smiles, name, source)`` from a .smi/.txt (``SMILES [name]``) or .csv (``smiles`` column) file.

    Raises:
        ConfgenError: unreadable or empty file, CSV without a SMILES column.
    """
    try:
        fh = open(path, newline="")
    except OSError as exc:
        raise ConfgenError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    n = 0
    try:
        with fh:
            if path.name.lower().endswith(".csv"):
                reader = csv.DictReader(fh)
                fields = reader.fieldnames or []
                col = next((c for c in _SMILES_COLUMNS if c in fields), None)
                if col is None:
                    col = next((c for c in fields if c.strip().lower() == "smiles"), None)
                if col is None:
                    raise ConfgenError(f"{path}: CSV has no 'smiles' column")
                for i, row in enumerate(reader, start=2):
                    smi = (row.get(col) or "").strip()
                    if smi:
                        n += 1
                        yield smi, (row.get("name") or "").strip(), f"{path}:{i}"
            else:
                for i, line in enumerate(fh, start=1):
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    parts = line.split(None, 1)
                    if i == 1 and parts[0].lower() == "smiles":
                        continue  # header line
                    n += 1
                    yield parts[0], parts[1].strip() if len(parts) > 1 else "", f"{path}:{i}"
    except UnicodeDecodeError:
        raise ConfgenError(f"{path}: not a text file") from None
    if n == 0:
        raise ConfgenError(f"{path}: empty file (no SMILES found)")


def _iter_smiles(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    try:
        for smi, name, source in _iter_smiles_lines(p):
            if not filt.in_split(smi):
                continue
            mol = parse_smiles(smi)
            if mol is None:
                report(InputError("invalid SMILES", source=source, smiles=smi))
                continue
            yield MolRecord(smiles=smi, mol=Chem.AddHs(mol), weights=None, source=source, name=name or smi)
    except ConfgenError as exc:
        report(InputError(str(exc)))


# ------------------------------------------------------------------------------------------------------ SDF


def _open_sdf(p: Path):
    if p.name.lower().endswith(".gz"):
        return gzip.open(p, "rb")
    return open(p, "rb")


def _iter_sdf(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    try:
        fh = _open_sdf(p)
        # a gzip file opens lazily; read one byte to surface errors here
        first = fh.peek(1) if hasattr(fh, "peek") else b"x"
    except (OSError, EOFError) as exc:
        report(InputError(f"{p}: cannot read file ({exc})"))
        return
    if not first:
        fh.close()
        report(InputError(f"{p}: empty file"))
        return
    n_records = 0
    n_good = 0
    group: list[Chem.Mol] = []
    group_key: tuple | None = None
    group_start = 0

    def flush() -> list[MolRecord]:
        first_mol = group[0]
        smiles = first_mol.GetProp("geom_smiles") if first_mol.HasProp("geom_smiles") else ""
        name = first_mol.GetProp("_Name").strip() if first_mol.HasProp("_Name") else ""
        recs = _records(group, smiles=smiles, name=name, source=f"{p}:record {group_start}", weights=None,
                        max_confs=max_confs, stereo=filt.stereo, stats=stats)
        return [r for r in recs if filt.in_split(r.smiles, r.mol)]

    try:
        with fh, quiet_rdkit():
            supplier = Chem.ForwardSDMolSupplier(fh, removeHs=False)
            for i, mol in enumerate(supplier, start=1):
                n_records += 1
                if mol is None:
                    report(InputError("SDF record could not be parsed", source=f"{p}:record {i}"))
                    continue
                n_good += 1
                try:
                    # a source's own molecule id (GEOM exports) groups conformers even if one is broken
                    key = ("prop", mol.GetProp("geom_smiles")) if mol.HasProp("geom_smiles") else (
                        "graph", canonical_smiles(mol, stereo=False))
                except Exception:  # noqa: BLE001
                    report(InputError("SDF record could not be canonicalised", source=f"{p}:record {i}"))
                    continue
                if group and key != group_key:
                    yield from flush()
                    group = []
                if not group:
                    group_key, group_start = key, i
                group.append(mol)
            if group:
                yield from flush()
    except (OSError, EOFError) as exc:
        report(InputError(f"{p}: cannot read file ({exc})"))
        return
    if n_records == 0:
        report(InputError(f"{p}: no SDF records found (empty or not an SDF file)"))


# --------------------------------------------------------------------------------------------------- pickles


def _is_mol_list(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(m, Chem.Mol) for m in value)


def _iter_pickle(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    try:
        data = safe_pickle.load(p)
    except ConfgenError as exc:
        report(InputError(str(exc)))
        return
    if isinstance(data, dict) and "conformers" in data:  # one GEOM rdkit_folder pickle
        yield from _geom_records(data, key=str(data.get("smiles", "")), source=str(p), filt=filt, report=report,
                                 max_confs=max_confs, stats=stats)
        return
    if not isinstance(data, dict) or not data:
        report(InputError(f"{p}: unknown pickle layout (expected dict[smiles -> list[Mol]] or a GEOM "
                          f"rdkit_folder molecule pickle, got {type(data).__name__}"
                          f"{' (empty)' if isinstance(data, dict) else ''})"))
        return
    for i, (key, value) in enumerate(data.items()):
        source = f"{p}:{key}"
        if isinstance(value, Chem.Mol):
            value = [value]
        if isinstance(value, dict) and "conformers" in value:
            yield from _geom_records(value, key=str(key), source=source, filt=filt, report=report,
                                     max_confs=max_confs, stats=stats)
            continue
        if not isinstance(key, str) or not _is_mol_list(value):
            report(InputError(f"entry {i} is not a list of RDKit Mols", source=str(p), smiles=str(key)[:200]))
            continue
        if not filt.smiles_heavy_ok(key):
            continue
        recs = _records(list(value), smiles=key, name=key, source=source, weights=None, max_confs=max_confs,
                        stereo=filt.stereo, stats=stats)
        if not recs:
            report(InputError("no conformers", source=source, smiles=key))
            continue
        yield from (r for r in recs if filt.in_split(key, r.mol))


def _geom_records(data: dict, *, key: str, source: str, filt, report: _Reporter,
                  max_confs: int | None, stats: dict) -> Iterator[MolRecord]:
    """The molecule of a GEOM per-molecule pickle dict (``conformers`` list with ``rd_mol``)."""
    confs = data.get("conformers")
    if not isinstance(confs, list):
        report(InputError("GEOM pickle without a 'conformers' list", source=source, smiles=key or None))
        return
    key = key or str(data.get("smiles", ""))
    items = []
    for c in confs:
        if not isinstance(c, dict) or not isinstance(c.get("rd_mol"), Chem.Mol):
            continue
        w = c.get("boltzmannweight")
        try:
            w = float(w) if w is not None else float("nan")
        except (TypeError, ValueError):
            w = float("nan")
        items.append((w, c["rd_mol"]))
    if not items:
        report(InputError("no conformers with an RDKit Mol ('rd_mol')", source=source, smiles=key or None))
        return
    # highest Boltzmann weight first; conformers without a weight go last, in file order
    order = sorted(range(len(items)), key=lambda i: (-(items[i][0]) if np.isfinite(items[i][0]) else np.inf, i))
    recs = _records([items[i][1] for i in order], smiles=key, name=key, source=source,
                    weights=[items[i][0] for i in order], max_confs=max_confs, stereo=filt.stereo, stats=stats)
    if not recs:
        report(InputError("no conformers", source=source, smiles=key or None))
    for rec in recs:
        if filt.in_split(rec.smiles, rec.mol):
            yield rec


# ---------------------------------------------------------------------------------------------- rdkit_folder


def _iter_shard_dir(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    """Conformer shards (:mod:`confgen.data.shards`), GEOM's way: conformers within :data:`SHARD_ENERGY_WINDOW`
    kcal/mol of the molecule's lowest stored energy, with Boltzmann weights at 298.15 K."""

    for shard in shard_paths(path):
        try:
            molecules = list(iter_shard(shard))
        except (OSError, ValueError) as exc:
            report(InputError(f"unreadable conformer shard ({exc})", source=str(shard)))
            continue
        for m in molecules:
            source = f"{shard.name}:line {m.index + 1}"
            if not filt.smiles_heavy_ok(m.smiles):
                continue
            kcal = m.energies * KCAL_PER_HARTREE
            keep = np.flatnonzero(kcal - kcal.min() <= SHARD_ENERGY_WINDOW)
            stats["dropped_conformers"] = stats.get("dropped_conformers", 0) + len(kcal) - len(keep)
            weights = np.zeros(len(kcal))
            weights[keep] = boltzmann_weights(kcal[keep], 298.15)
            order = [i for i in np.argsort(-weights, kind="stable") if i in set(keep.tolist())]
            confs = list(m.mol.GetConformers())
            mols = [with_positions(m.mol, [confs[i].GetPositions()]) for i in order]
            recs = _records(mols, smiles=m.smiles, name=m.smiles, source=source, weights=weights[order].tolist(),
                            max_confs=max_confs, stereo=filt.stereo, stats=stats)
            if not recs:
                report(InputError("no conformers", source=source, smiles=m.smiles))
            for rec in recs:
                if filt.in_split(rec.smiles, rec.mol):
                    yield rec


def _find_summaries(root: Path) -> list[Path]:
    return sorted(root.glob("summary*.json"))


def iter_json_object(path: str | os.PathLike) -> Iterator[tuple[str, object]]:
    """Yield ``(key, value)`` of a top-level JSON object one entry at a time.

    The text is held once; each value is decoded only when reached, so a summary of hundreds of thousands of
    molecules never becomes one big Python dict.

    Raises:
        ConfgenError: unreadable file or invalid JSON (with the file and character offset).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfgenError(f"{path}: cannot read file ({exc})") from None
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    idx = ws.match(text, 0).end()
    if idx >= len(text):
        raise ConfgenError(f"{path}: empty file")
    if text[idx] != "{":
        raise ConfgenError(f"{path}: not a JSON object (a GEOM summary maps SMILES to summaries)")
    idx = ws.match(text, idx + 1).end()
    if idx < len(text) and text[idx] == "}":
        return
    try:
        while True:
            key, idx = decoder.raw_decode(text, idx)
            idx = ws.match(text, idx).end()
            if text[idx] != ":":
                raise ValueError("':' expected")
            idx = ws.match(text, idx + 1).end()
            value, idx = decoder.raw_decode(text, idx)
            yield key, value
            idx = ws.match(text, idx).end()
            if text[idx] == ",":
                idx = ws.match(text, idx + 1).end()
                continue
            if text[idx] == "}":
                return
            raise ValueError("',' or '}' expected")
    except (ValueError, IndexError) as exc:
        raise ConfgenError(f"{path}: invalid JSON near character {idx} ({exc})") from None


def _iter_rdkit_folder(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    if p.is_dir():
        root, summaries = p, _find_summaries(p)
    else:
        root, summaries = p.parent, [p]
    if not summaries:  # no summary: every */*.pickle
        for pk in sorted(root.glob("*/*.pickle")):
            yield from _iter_pickle(pk, filt=filt, report=report, max_confs=max_confs, stats=stats)
        return
    for summary in summaries:
        subset = summary.stem[len("summary_"):] if summary.stem.startswith("summary_") else ""
        try:
            for key, entry in iter_json_object(summary):
                source = f"{summary}:{key}"
                if not isinstance(entry, dict):
                    report(InputError("summary entry is not an object", source=str(summary), smiles=key))
                    continue
                if not filt.smiles_heavy_ok(key):
                    continue
                if filt.split_raw is not None and not filt.in_split(key):
                    continue
                rel = entry.get("pickle_path")
                if rel:
                    pk = root / rel
                    if not pk.exists() and subset:
                        pk = root / subset / Path(rel).name
                elif subset:
                    pk = root / subset / (key.replace("/", "_") + ".pickle")
                else:
                    report(InputError("summary entry has no pickle_path", source=str(summary), smiles=key))
                    continue
                if not pk.is_file():
                    report(InputError(f"molecule pickle {pk} not found", source=str(summary), smiles=key))
                    continue
                try:
                    data = safe_pickle.load(pk)
                except ConfgenError as exc:
                    report(InputError(str(exc), smiles=key))
                    continue
                if not isinstance(data, dict):
                    report(InputError(f"{pk}: not a GEOM molecule pickle (a dict with 'conformers')", smiles=key))
                    continue
                yield from _geom_records(data, key=key, source=str(pk), filt=_NoSplit(filt.stereo), report=report,
                                         max_confs=max_confs, stats=stats)
                del data
        except ConfgenError as exc:
            report(InputError(str(exc)))


class _NoSplit:
    """Filter stand-in once the split was checked on the summary key."""

    def __init__(self, stereo: str):
        self.stereo = stereo

    def in_split(self, smiles, mol=None):
        return True


# ------------------------------------------------------------------------------------------------------- QM9


def _mol_from_xyz(elements: list[str], xyz: np.ndarray, cov_factor: float = 1.3) -> Chem.Mol:
    rw = Chem.RWMol()
    for el in elements:
        atom = Chem.Atom(el)
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    conf = Chem.Conformer(len(elements))
    conf.SetPositions(np.ascontiguousarray(xyz, dtype=np.float64))
    conf.Set3D(True)
    rw.AddConformer(conf, assignId=True)
    rdDetermineBonds.DetermineConnectivity(rw, covFactor=cov_factor)
    return rw.GetMol()


def _connectivity_graph(mol: Chem.Mol) -> Chem.Mol:
    """Same atoms and bonds, with every bond single and no charges/aromaticity: a pure graph for matching."""
    rw = Chem.RWMol(mol)
    for atom in rw.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetIsAromatic(False)
        atom.SetNoImplicit(True)
        atom.SetNumExplicitHs(0)
        atom.SetNumRadicalElectrons(0)
        atom.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
        atom.SetIsotope(0)
    for bond in rw.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
        bond.SetStereo(Chem.BondStereo.STEREONONE)
    out = rw.GetMol()
    out.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(out)
    return out


def _match_geometry(template: Chem.Mol, elements: list[str], xyz: np.ndarray) -> tuple[int, ...] | None:
    """Template atom i -> geometry atom ``match[i]``, or None.

    Tries a few covalent-radius factors: first an exact graph match (same number of bonds), then the SMILES
    graph as a subgraph of a geometry graph with extra (long, strained-ring) contacts, choosing among the
    candidate matches the one with the shortest total bond length.
    """
    query = _connectivity_graph(template)
    t_bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in template.GetBonds()], dtype=np.int64)
    t_bonds = t_bonds.reshape(-1, 2)
    supersets = []
    for factor in (1.3, 1.2, 1.4, 1.1, 1.5):
        try:
            geo = _mol_from_xyz(elements, xyz, cov_factor=factor)
        except Exception:  # noqa: BLE001 - RDKit raises several types on bad xyz
            continue
        if geo.GetNumBonds() == template.GetNumBonds():
            match = _connectivity_graph(geo).GetSubstructMatch(query)
            if len(match) == template.GetNumAtoms():
                return match
        elif geo.GetNumBonds() > template.GetNumBonds():
            supersets.append(geo)
    for geo in supersets:
        matches = _connectivity_graph(geo).GetSubstructMatches(query, uniquify=False, maxMatches=1000)
        best, best_len = None, np.inf
        for match in matches:
            m = np.asarray(match)
            length = np.linalg.norm(xyz[m[t_bonds[:, 0]]] - xyz[m[t_bonds[:, 1]]], axis=1).sum()
            if length < best_len - 1e-9:
                best, best_len = match, length
        if best is not None:
            return best
    return None


def map_geometry_to_smiles(smiles: str, elements: list[str], xyz: np.ndarray) -> Chem.Mol:
    """Put a geometry given in another atom order (e.g. QM9's xyz) onto the graph of ``smiles``.

    Connectivity is rebuilt from the coordinates (``rdDetermineBonds.DetermineConnectivity``) and matched to
    the SMILES graph ignoring bond orders and charges; stereochemistry is then taken from the 3D geometry.

    Args:
        smiles: the molecule's SMILES (defines atom order, bond orders, charges).
        elements: element symbols in the geometry's atom order, hydrogens included.
        xyz: [num_atoms, 3] coordinates in Angstrom.

    Returns:
        Mol with explicit H in the SMILES' atom order (hydrogens after heavy atoms) and one conformer.

    Raises:
        InputError: invalid SMILES, element/atom-count mismatch, or the graphs do not match.
    """
    template = parse_smiles(smiles)
    if template is None:
        raise InputError("invalid SMILES", smiles=smiles)
    template = Chem.AddHs(template)
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    if len(elements) != len(xyz):
        raise InputError(f"{len(elements)} elements but {len(xyz)} coordinates", smiles=smiles)
    if template.GetNumAtoms() != len(elements):
        raise InputError(f"geometry has {len(elements)} atoms, the SMILES graph {template.GetNumAtoms()}",
                         smiles=smiles)
    match = _match_geometry(template, list(elements), xyz)
    if match is None:
        raise InputError("geometry connectivity does not match the SMILES graph", smiles=smiles)
    mol = Chem.Mol(template)
    mol.RemoveAllConformers()
    conf = Chem.Conformer(mol.GetNumAtoms())
    conf.SetPositions(np.ascontiguousarray(xyz[list(match)]))
    conf.Set3D(True)
    mol.AddConformer(conf, assignId=True)
    Chem.AssignStereochemistryFrom3D(mol)
    return mol


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _parse_xyz(text: str) -> np.ndarray:
    """A JSON-like list of [x, y, z] (QM9 writes numbers such as ``0.``) -> [num_atoms, 3] array."""
    text = text.strip()
    if not text.startswith("[") or not text.endswith("]"):
        raise ValueError("not a coordinate list")
    values = np.asarray([float(v) for v in _NUMBER.findall(text)], dtype=np.float64)
    if len(values) == 0 or len(values) % 3:
        raise ValueError("coordinate count is not a multiple of 3")
    return values.reshape(-1, 3)


def _qm9_rows(csv_path: Path) -> Iterator[tuple[dict, int]]:
    with open(csv_path, newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            yield row, i


def _qm9_from_rows(rows: Iterable[tuple[dict, int]], csv_path: Path, *, filt, report, stats) -> Iterator[MolRecord]:
    for row, line in rows:
        lower = {k.strip().lower(): v for k, v in row.items() if k is not None}
        smiles_candidates = [lower.get(c) for c in ("geom_smiles", "smiles", "qm9_smiles")]
        smiles_candidates = [s.split()[0] for s in smiles_candidates if s and s.strip()]
        ident = lower.get("qm9_index") or lower.get("index") or str(line)
        source = f"{csv_path}:{line}"
        if not smiles_candidates:
            report(InputError("row without SMILES", source=source))
            continue
        smiles = smiles_candidates[0]
        if not filt.in_split(smiles) or not filt.smiles_heavy_ok(smiles):
            continue
        try:
            elements = ast.literal_eval(lower.get("elements", ""))
            xyz = _parse_xyz(lower.get("xyz_ang", ""))
            if not isinstance(elements, (list, tuple)) or xyz.ndim != 2 or xyz.shape[1] != 3:
                raise ValueError
        except (ValueError, SyntaxError, TypeError):
            report(InputError("unreadable 'elements' / 'xyz_ang' columns", source=source, smiles=smiles))
            continue
        mol, last_err = None, None
        for smi in dict.fromkeys(smiles_candidates):
            try:
                mol = map_geometry_to_smiles(smi, [str(e) for e in elements], xyz)
                break
            except InputError as exc:
                last_err = exc
        if mol is None:
            stats["qm9_unmapped"] = stats.get("qm9_unmapped", 0) + 1
            report(InputError(f"QM9 geometry cannot be mapped onto the SMILES graph: {last_err.message}",
                              source=source, smiles=smiles))
            continue
        name = f"qm9_{ident}"
        mol.SetProp("_Name", name)
        yield MolRecord(smiles=smiles, mol=mol, weights=[1.0], source=source, name=name)


def _iter_qm9_csv(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    try:
        yield from _qm9_from_rows(_qm9_rows(p), p, filt=filt, report=report, stats=stats)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        report(InputError(f"{p}: cannot read file ({exc})"))


def qm9pack_files() -> list[Path]:
    """The QM9 CSV parts shipped inside the ``qm9pack`` package.

    Raises:
        ConfgenError: ``qm9pack`` is not installed or ships no data.
    """
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ConfgenError("qm9pack is not installed (pip install 'confgen[qm9]')")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    files = sorted(data.glob("qm9_part*.csv"))
    if not files:
        raise ConfgenError(f"qm9pack installed but no qm9_part*.csv found in {data}")
    return files


def _iter_qm9pack(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    try:
        files = qm9pack_files()
    except ConfgenError as exc:
        report(InputError(str(exc)))
        return
    for f in files:
        yield from _iter_qm9_csv(f, filt=filt, report=report, max_confs=max_confs, stats=stats)


# --------------------------------------------------------------------------------------------------- exclusion


def load_exclusion_set(files: Iterable[str | os.PathLike]) -> set[str]:
    """Stereo-free canonical SMILES of every molecule in the given evaluation files.

    Accepts SMILES files (.smi/.txt, .csv with SMILES columns: every SMILES-like column is used), SDF files,
    pickles, GEOM rdkit_folder directories (summary keys) and QM9 CSVs. SMILES that RDKit cannot parse are kept
    verbatim so that an identical string still matches.

    Raises:
        ConfgenError: a file is missing, unreadable or holds no molecule (an exclusion list must not fail silently).
    """
    out: set[str] = set()
    for f in files:
        before = len(out)
        fmt = detect_format(f)
        p = Path(f)
        if fmt in ("smiles", "smiles_csv", "qm9_csv"):
            if p.name.lower().endswith(".csv"):
                out |= _exclusion_from_csv(p)
            else:
                for smi, _name, _src in _iter_smiles_lines(p):
                    out.add(smi)
                    can = try_canonical_smiles(smi, stereo=False)
                    if can is not None:
                        out.add(can)
        elif fmt == "rdkit_folder":
            summaries = _find_summaries(p) if p.is_dir() else [p]
            if not summaries:
                raise ConfgenError(f"{p}: no summary_*.json to take the molecule list from")
            for summary in summaries:
                for key, _entry in iter_json_object(summary):
                    out.add(key)
                    can = try_canonical_smiles(key, stereo=False)
                    if can is not None:
                        out.add(can)
        else:
            errors: list[InputError] = []
            for rec in iter_molecules(p, errors=errors):
                out.add(rec.smiles)
                can = try_canonical_smiles(rec.smiles, stereo=False)
                if can is not None:
                    out.add(can)
                if rec.mol.GetNumAtoms():
                    out.add(canonical_smiles(rec.mol, stereo=False))
            if errors and len(out) == before:
                raise ConfgenError(f"exclusion file {errors[0]}")
        if len(out) == before:
            raise ConfgenError(f"{p}: exclusion file holds no molecule")
    return out


def _exclusion_from_csv(p: Path) -> set[str]:
    out: set[str] = set()
    try:
        with open(p, newline="") as fh:
            reader = csv.DictReader(fh)
            cols = [c for c in (reader.fieldnames or []) if c and "smiles" in c.lower()]
            if not cols:
                raise ConfgenError(f"{p}: CSV has no SMILES column")
            for row in reader:
                for c in cols:
                    smi = (row.get(c) or "").strip()
                    if smi:
                        out.add(smi)
                        can = try_canonical_smiles(smi, stereo=False)
                        if can is not None:
                            out.add(can)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfgenError(f"{p}: cannot read file ({exc})") from None
    return out


def is_excluded(record: MolRecord, exclusion: set[str]) -> bool:
    """True when the record's molecule (by its Mol or its source SMILES, stereo-free) is in ``exclusion``."""
    if not exclusion:
        return False
    if record.smiles in exclusion:
        return True
    if canonical_smiles(record.mol, stereo=False) in exclusion:
        return True
    can = try_canonical_smiles(record.smiles, stereo=False)
    return can is not None and can in exclusion
