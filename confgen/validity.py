"""Physical validity of conformers: the ``posebusters`` package's molecule checks (config ``"mol"``).

The checks: RDKit sanitisation, InChI conversion, connectivity, no radicals, bond lengths, bond angles and
internal clashes against distance-geometry bounds, aromatic ring flatness, non-aromatic ring non-flatness,
double-bond flatness, and internal energy (UFF energy at most 100 x the mean of a 50-conformer ETKDG + UFF
ensemble; the ensemble is computed once per molecule and cached by PoseBusters). Everything runs offline.
Cost measured here: about 1 s for the first conformer of a molecule (the energy ensemble), then about
0.1 s per conformer (``scripts/bench_sample.py --validity``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from rdkit import Chem
from rdkit.Chem.rdDistGeom import GetMoleculeBoundsMatrix

from confgen.rdlog import quiet_rdkit

#: the PoseBusters configuration used
POSEBUSTERS_CONFIG = "mol"
#: tolerances of PoseBusters' "mol" config (distance_geometry module): bonds and angles may leave their
#: distance-geometry bounds by 25 %, non-bonded heavy-atom pairs may come 30 % below their lower bound
BOND_TOLERANCE = 0.25
ANGLE_TOLERANCE = 0.25
CLASH_TOLERANCE = 0.3
_TERMINAL_CONJUGATED = "[O,N;D1;$([O,N;D1]-[*]=[O,N;D1]),$([O,N;D1]=[*]-[O,N;D1])]~[*]"


@dataclass
class ValidityResult:
    """PoseBusters result of one conformer.

    Attributes:
        passed: every check passed.
        failed: names of the failed checks (PoseBusters' column names, e.g. ``"bond_lengths"``).
    """

    passed: bool
    failed: list[str] = field(default_factory=list)


def check_validity(mol: Chem.Mol, conf_ids: list[int] | None = None) -> list[ValidityResult]:
    """Run the PoseBusters ``"mol"`` checks on conformers of one molecule.

    Args:
        mol: RDKit Mol with explicit hydrogens and conformers.
        conf_ids: conformers to check (default: all, in order).

    Returns:
        One :class:`ValidityResult` per conformer, in the order of ``conf_ids``. A check that could not be
        computed (PoseBusters gives NaN) counts as failed.
    """
    return check_validity_many([(mol, conf_ids)])[0]


def check_validity_many(items: list[tuple[Chem.Mol, list[int] | None]]) -> list[list[ValidityResult]]:
    """:func:`check_validity` for several molecules in one PoseBusters run.

    Args:
        items: ``(mol, conf_ids)`` pairs (``conf_ids`` ``None`` = all conformers).

    Returns:
        Per molecule, one :class:`ValidityResult` per conformer.
    """
    from posebusters import PoseBusters

    singles: list[Chem.Mol] = []
    owners: list[int] = []
    for k, (mol, conf_ids) in enumerate(items):
        ids = [c.GetId() for c in mol.GetConformers()] if conf_ids is None else list(conf_ids)
        for cid in ids:
            one = Chem.Mol(mol)
            one.RemoveAllConformers()
            conf = Chem.Conformer(mol.GetConformer(cid))
            conf.SetId(0)  # PoseBusters' energy module reads conformer 0
            one.AddConformer(conf)
            singles.append(one)
            owners.append(k)
    out: list[list[ValidityResult]] = [[] for _ in items]
    if not singles:
        return out
    _reopen_rdkit_log_stream()
    pb_logger = logging.getLogger("posebusters")
    level = pb_logger.level
    pb_logger.setLevel(logging.ERROR)
    try:
        with quiet_rdkit():
            table = PoseBusters(config=POSEBUSTERS_CONFIG, max_workers=0).bust(singles, full_report=False)
    finally:
        pb_logger.setLevel(level)
    for owner, (_, row) in zip(owners, table.iterrows()):
        failed = [str(col) for col, value in row.items() if not _true(value)]
        out[owner].append(ValidityResult(passed=not failed, failed=failed))
    return out


def _reopen_rdkit_log_stream() -> None:
    """Point RDKit's Python log handler back at ``sys.stderr`` when its stream was closed.

    PoseBusters routes RDKit's log through ``rdkit.log_handler`` and, after each check, sets that handler's
    stream to whatever ``sys.stderr`` was at the time. When that stream is later closed (a replaced stderr,
    e.g. under output capture), the next ``setStream`` raises "I/O operation on closed file" inside the
    InChI check and every conformer fails ``inchi_convertible``.
    """
    import sys

    import rdkit

    handler = getattr(rdkit, "log_handler", None)
    stream = getattr(handler, "stream", None)
    if stream is not None and getattr(stream, "closed", False):
        handler.stream = sys.stderr  # direct assignment: setStream would flush the closed stream


def _true(value) -> bool:
    try:
        return bool(value) and value == value  # NaN -> False
    except (TypeError, ValueError):
        return False


@dataclass
class GeometryBounds:
    """Distance limits of the heavy-atom pairs of one molecule (PoseBusters' bond, angle and clash checks).

    Attributes:
        pairs: [P, 2] heavy-atom index pairs.
        lower: [P] smallest allowed distance (Angstrom).
        upper: [P] largest allowed distance (``inf`` for non-bonded pairs).
    """

    pairs: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def geometry_bounds(mol: Chem.Mol) -> GeometryBounds | None:
    """The limits that PoseBusters' "mol" distance-geometry checks put on a molecule's heavy-atom distances.

    Reproduces ``posebusters.modules.distance_geometry.check_geometry`` with the "mol" config: RDKit bounds
    matrix (1-5 bounds, scaled VDW, triangle smoothing), conjugated terminal groups symmetrised, bonds and
    angles (1-3 pairs) within their bounds widened by 25 %, other pairs at least 70 % of their lower bound.
    Computed once per molecule; :func:`within_bounds` then checks many conformers at numpy speed.

    Args:
        mol: RDKit Mol (explicit hydrogens).

    Returns:
        :class:`GeometryBounds`, or ``None`` where RDKit cannot build the bounds matrix.
    """
    try:
        with quiet_rdkit():
            bounds = GetMoleculeBoundsMatrix(mol, set15bounds=True, scaleVDW=True, doTriangleSmoothing=True,
                                             useMacrocycle14config=False)
    except RuntimeError:
        return None
    n = mol.GetNumAtoms()
    i_up, j_up = np.triu_indices(n, k=1)
    upper = bounds[i_up, j_up].astype(np.float64)  # [P] (upper triangle: upper bounds)
    lower = bounds[j_up, i_up].astype(np.float64)  # [P]
    heavy = np.array([a.GetAtomicNum() > 1 for a in mol.GetAtoms()])
    bonded = np.zeros((n, n), dtype=bool)
    for b in mol.GetBonds():
        bonded[b.GetBeginAtomIdx(), b.GetEndAtomIdx()] = bonded[b.GetEndAtomIdx(), b.GetBeginAtomIdx()] = True
    angle = (bonded.astype(np.int32) @ bonded.astype(np.int32) > 0) & ~bonded
    np.fill_diagonal(angle, False)
    # conjugated terminal groups (carboxylates, nitro, amidines ...): min/max of the bounds per element pair
    query = Chem.MolFromSmarts(_TERMINAL_CONJUGATED)
    groups: dict[tuple, list[int]] = {}
    index = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(i_up, j_up))}
    for a, b in mol.GetSubstructMatches(query):
        key = tuple(sorted((mol.GetAtomWithIdx(a).GetSymbol(), mol.GetAtomWithIdx(b).GetSymbol())))
        groups.setdefault(key, []).append(index[(min(a, b), max(a, b))])
    for members in groups.values():
        lower[members] = lower[members].min()
        upper[members] = upper[members].max()
    keep = heavy[i_up] & heavy[j_up]
    is_bond = bonded[i_up, j_up]
    is_angle = angle[i_up, j_up]
    lo = np.where(is_bond, lower * (1 - BOND_TOLERANCE),
                  np.where(is_angle, lower * (1 - ANGLE_TOLERANCE), lower * (1 - CLASH_TOLERANCE)))
    hi = np.where(is_bond, upper * (1 + BOND_TOLERANCE),
                  np.where(is_angle, upper * (1 + ANGLE_TOLERANCE), np.inf))
    return GeometryBounds(pairs=np.stack([i_up[keep], j_up[keep]], 1), lower=lo[keep], upper=hi[keep])


def within_bounds(bounds: GeometryBounds, pos: np.ndarray) -> np.ndarray:
    """Whether conformers pass the bond-length, bond-angle and clash checks.

    Args:
        bounds: from :func:`geometry_bounds`.
        pos: [K, N, 3] (or [N, 3]) coordinates.

    Returns:
        [K] bool.
    """
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    if not len(bounds.pairs):
        return np.isfinite(pos).all(axis=(1, 2))
    d = np.linalg.norm(pos[:, bounds.pairs[:, 0]] - pos[:, bounds.pairs[:, 1]], axis=-1)  # [K, P]
    return ((d >= bounds.lower) & (d <= bounds.upper)).all(1)


#: atoms of different fragments are placed at least this factor x the sum of their van der Waals radii apart
FRAGMENT_CLEARANCE = 0.8


def fragment_clearance(pos: np.ndarray, fragments: list[np.ndarray], radii: np.ndarray) -> float:
    """Smallest distance between atoms of different fragments over ``FRAGMENT_CLEARANCE x`` the sum of their
    van der Waals radii (>= 1: clash-free; ``inf`` for one fragment).

    Args:
        pos: [N, 3] coordinates.
        fragments: atom indices of each fragment.
        radii: [N] van der Waals radii.
    """
    worst = np.inf
    for a in range(len(fragments)):
        for b in range(a + 1, len(fragments)):
            fa, fb = fragments[a], fragments[b]
            d = np.linalg.norm(pos[fa][:, None] - pos[fb][None], axis=-1)  # [A, B]
            lim = FRAGMENT_CLEARANCE * (radii[fa][:, None] + radii[fb][None])
            worst = min(worst, float((d / lim).min()))
    return worst


def separate_fragments(pos: np.ndarray, fragments: list[np.ndarray], radii: np.ndarray, step: float = 0.1,
                       max_steps: int = 500) -> np.ndarray:
    """Translate fragments rigidly apart until no two atoms of different fragments overlap.

    The first fragment stays; each further one (in the order given, largest first) moves in steps of ``step``
    Angstrom away from the atoms it clashes with (the mean direction from those atoms to its own) until every
    distance to the fragments placed before it is at least :data:`FRAGMENT_CLEARANCE` x the sum of the van der
    Waals radii. Fragments already apart do not move; bond lengths, angles and each fragment's conformation
    are unchanged.

    Args:
        pos: [N, 3] coordinates.
        fragments: atom indices of each fragment, largest first.
        radii: [N] van der Waals radii.

    Returns:
        [N, 3] new coordinates.
    """
    pos = np.array(pos, dtype=np.float64)
    placed = np.asarray(fragments[0])
    for frag in fragments[1:]:
        frag = np.asarray(frag)
        lim = FRAGMENT_CLEARANCE * (radii[frag][:, None] + radii[placed][None])  # [F, P]
        for _ in range(max_steps):
            diff = pos[frag][:, None] - pos[placed][None]  # [F, P, 3]
            d = np.linalg.norm(diff, axis=-1)
            clash = d < lim
            if not clash.any():
                break
            direction = diff[clash].sum(0)
            norm = np.linalg.norm(direction)
            if norm < 1e-8:  # atoms on top of each other: move away from the placed fragments' centre
                direction = pos[frag].mean(0) - pos[placed].mean(0)
                norm = np.linalg.norm(direction)
                if norm < 1e-8:
                    direction, norm = np.array([1.0, 0.0, 0.0]), 1.0
            pos[frag] += step * direction / norm
        placed = np.concatenate([placed, frag])
    return pos
