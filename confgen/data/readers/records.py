"""Records and the machinery every reader shares: :class:`MolRecord`, merging single-conformer Mols into one
multi-conformer Mol (:func:`merge_conformers`), the split / heavy-atom filter and the error reporter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from rdkit import Chem

from confgen.chem.conformers import with_explicit_hydrogens, with_positions
from confgen.chem.smiles import canonical_smiles, heavy_atom_count, try_canonical_smiles
from confgen.chem.stereo import StereoSignature, stereo_from_3d
from confgen.errors import InputError
from confgen.rdlog import quiet_rdkit


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
                    if canonical_smiles(stereo_from_3d(with_explicit_hydrogens(mols[i])), stereo=True) == want:
                        template_idx = i
                        break
                except Exception:  # noqa: BLE001 - a broken conformer cannot be the template
                    continue
    template = stereo_from_3d(with_explicit_hydrogens(mols[template_idx]))
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
            m = with_explicit_hydrogens(mols[i])
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
        base = template if first == template_idx else stereo_from_3d(with_explicit_hydrogens(with_positions(
            template, [members[0][1]])))
        mol = with_positions(base, [pos for _, pos in members])
        out.append((mol, [i for i, _ in members]))
    return out


def build_records(mols: list[Chem.Mol], *, smiles: str, name: str, source: str, weights: list[float] | None,
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


class RecordFilter:
    """Heavy-atom range and split-membership filter shared by all readers.

    Args:
        split_smiles: the SMILES of the split (``None``: no split); a molecule is in it by exact string or by
            stereo-free canonical SMILES.
        min_heavy_atoms, max_heavy_atoms: heavy-atom range (``None``: open).
        stats: counters ``filtered_split`` and ``filtered_heavy_atoms`` are added to it.
        stereo: the readers' stereo policy (``"keep"`` or ``"split"``, see :func:`merge_conformers`).
    """

    def __init__(self, split_smiles: Iterable[str] | None, min_heavy_atoms, max_heavy_atoms, stats,
                 stereo="keep"):
        self.stereo = stereo
        self.min_heavy = min_heavy_atoms
        self.max_heavy = max_heavy_atoms
        self.stats = stats if stats is not None else {}
        self.split_raw: set[str] | None = None
        self.split_canon: set[str] | None = None
        if split_smiles is not None:
            self.split_raw = set(split_smiles)
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


class Reporter:
    def __init__(self, errors: list | None):
        self.errors = errors

    def __call__(self, err: InputError) -> None:
        if self.errors is None:
            raise err
        self.errors.append(err)


def finish_record(record: MolRecord, filt: RecordFilter, report: Reporter) -> MolRecord | None:
    """Common checks on a record: heavy atoms present, heavy-atom range."""
    n_heavy = heavy_atom_count(record.mol)
    if n_heavy == 0:
        report(InputError("molecule has no heavy atoms", source=record.source, smiles=record.smiles))
        return None
    if not filt.heavy_ok(n_heavy):
        return None
    return record


class NoSplit:
    """Filter stand-in once the split was checked on the summary key."""

    def __init__(self, stereo: str):
        self.stereo = stereo

    def in_split(self, smiles, mol=None):
        return True
