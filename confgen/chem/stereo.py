"""Stereochemistry of generated conformers: check against the input's specified stereo, repair by mirroring.

Only stereo that the input *specifies* is checked: tetrahedral centres with a chiral tag that RDKit keeps as a
real stereocentre (``AssignStereochemistry(cleanIt=True)``; this includes ring cis/trans centres without a CIP
label), and double bonds marked E/Z (or cis/trans). Unspecified stereo may come out either way.

A tetrahedral centre is judged by RDKit's own rule for perceiving chirality from 3D
(``AssignStereochemistryFrom3D``, RDKit's ``assignChiralTypesFrom3D``), re-implemented here in numpy so that
confgen's check and RDKit's perception are one rule (:func:`centre_ok`): with ``v_k = n_k - centre`` for the
neighbours in the atom's bond order (the order RDKit's CW/CCW tag refers to), the configuration is the sign of
the raw chiral volume ``v0 . (v1 x v2)`` where it exceeds 0.1 A^3; where it does not (the centre lies in the
plane of its first three neighbours, e.g. a strained bridgehead) and there is a fourth neighbour, the sign of
``-v0 . (v1 x v3)`` decides, with the same threshold; otherwise the centre is flattened (neither configuration).
For P, S and heavier centres RDKit first looks for a non-tetrahedral geometry: two neighbour directions within
about 26 degrees of opposite (cosine below -0.9) make it a trigonal-bipyramidal / square-planar / octahedral
centre with no R/S label. confgen counts such a centre as wrong (neither configuration), and keeps a small
margin around every threshold of the rule (:data:`VOLUME_MARGIN`, :data:`ANTIPARALLEL_MARGIN`): a conformer
it passes is perceived with the specified configuration by RDKit even after its coordinates are rounded for an
SDF file. Three-coordinate centres other than S / Se (phosphines, amines), which RDKit does not perceive from
3D at all, are judged by the same chiral volume.

A double bond is compared through the dihedrals of *every* pair of substituents across it (not only the two
reference ("stereo") atoms, which may not be the ones RDKit's perception uses): each must be within 60 degrees
of the specified side (cis for Z / CIS reference atoms, trans for E / TRANS; the other substituent of an atom
counts as its opposite). RDKit's legacy perception sets the reference atoms to the CIP-highest neighbours, so Z
means the reference atoms are cis. ``tests/test_stereo.py`` checks both against RDKit's own assignment from 3D,
on ETKDG, MMFF94 and DFT geometries and on conformers distorted by noise.

Mirroring a conformer (negating one coordinate axis) inverts every tetrahedral centre and keeps every double
bond, so a conformer whose specified centres are *all* inverted and whose double bonds are right is repaired by
a mirror; anything else must be resampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

#: RDKit's threshold on the raw chiral volume (A^3) in its perception from 3D: a smaller volume of the first
#: three neighbours hands the decision to the fourth neighbour; smaller again, the centre is unspecified.
RDKIT_VOLUME_TOL = 0.1
#: RDKit calls a P / S / heavier centre non-tetrahedral where two neighbour directions have a cosine below this.
RDKIT_ANTIPARALLEL_COS = -0.9
#: margin (A^3) kept around :data:`RDKIT_VOLUME_TOL` and around zero: a volume within it of a threshold counts
#: as either side, and the centre passes only if both sides give the specified configuration (rounding an SDF's
#: coordinates to 1e-4 A moves a volume by about 1e-3 A^3).
VOLUME_MARGIN = 0.01
#: margin kept around :data:`RDKIT_ANTIPARALLEL_COS` (a cosine below -0.9 + this counts as non-tetrahedral).
ANTIPARALLEL_MARGIN = 0.01
#: RDKit looks for non-tetrahedral geometries at atoms from this atomic number on (P, S, Cl, ...).
RDKIT_NONTETRAHEDRAL_MIN_Z = 15
#: a specified double bond must have |cos| of every substituent dihedral at least this (within 60 degrees of
#: planar, right side).
MIN_ABS_COS_DIHEDRAL = 0.5

_TETRAHEDRAL = {Chem.rdchem.ChiralType.CHI_TETRAHEDRAL_CCW: 1.0, Chem.rdchem.ChiralType.CHI_TETRAHEDRAL_CW: -1.0}
_CIS = (Chem.rdchem.BondStereo.STEREOZ, Chem.rdchem.BondStereo.STEREOCIS)
_TRANS = (Chem.rdchem.BondStereo.STEREOE, Chem.rdchem.BondStereo.STEREOTRANS)


@dataclass
class StereoSpec:
    """The stereo a molecule's graph specifies.

    Attributes:
        centers: [C] atom index of each specified tetrahedral centre.
        neighbors: [C, 4] its neighbours in bond order; a centre with three neighbours (implicit H or lone pair)
            has itself as the fourth.
        signs: [C] expected sign of the chiral volume (+1 CCW, -1 CW).
        bonds: [B, 4] atoms ``(a, b, c, d)`` of each specified double bond ``b=c`` with reference atoms a, d.
        cis: [B] bool, True where the reference atoms must be cis.
        num_neighbors: [C] 3 or 4, the centre's explicit neighbours.
        nontetrahedral: [C] bool, True where RDKit's perception from 3D looks for a non-tetrahedral geometry
            first (atomic number 15 or more, while RDKit allows non-tetrahedral stereo).
        pairs: [P, 4] atoms ``(a', b, c, d')`` of every pair of substituents across the specified double bonds.
        pairs_cis: [P] bool, True where that pair must be cis.
        pair_bond: [P] index into ``bonds`` of each pair.
    """

    centers: np.ndarray
    neighbors: np.ndarray
    signs: np.ndarray
    bonds: np.ndarray
    cis: np.ndarray
    num_neighbors: np.ndarray
    nontetrahedral: np.ndarray
    pairs: np.ndarray
    pairs_cis: np.ndarray
    pair_bond: np.ndarray

    @property
    def num_centers(self) -> int:
        return int(self.centers.shape[0])

    @property
    def num_bonds(self) -> int:
        return int(self.bonds.shape[0])

    @property
    def empty(self) -> bool:
        return self.num_centers == 0 and self.num_bonds == 0


def stereo_spec(mol: Chem.Mol) -> StereoSpec:
    """Collect the specified tetrahedral centres and double bonds of ``mol`` (its graph, not its coordinates).

    Args:
        mol: RDKit Mol; hydrogens may be explicit or implicit (indices refer to ``mol``'s atoms).

    Returns:
        The :class:`StereoSpec`.
    """
    m = Chem.Mol(mol)
    Chem.AssignStereochemistry(m, cleanIt=True, force=True)
    allow_nontet = Chem.GetAllowNontetrahedralChirality()
    centers, neighbors, signs, num_nbrs, nontet = [], [], [], [], []
    for atom in m.GetAtoms():
        sign = _TETRAHEDRAL.get(atom.GetChiralTag())
        if sign is None:
            continue
        nbrs = [b.GetOtherAtomIdx(atom.GetIdx()) for b in atom.GetBonds()]
        if len(nbrs) < 3:
            continue
        centers.append(atom.GetIdx())
        neighbors.append(nbrs[:4] if len(nbrs) >= 4 else nbrs + [atom.GetIdx()])
        signs.append(sign)
        num_nbrs.append(min(len(nbrs), 4))
        nontet.append(allow_nontet and atom.GetAtomicNum() >= RDKIT_NONTETRAHEDRAL_MIN_Z)
    bonds, cis, pairs, pairs_cis, pair_bond = [], [], [], [], []
    for bond in m.GetBonds():
        st = bond.GetStereo()
        if st not in _CIS and st not in _TRANS:
            continue
        ref = list(bond.GetStereoAtoms())
        if len(ref) != 2:
            continue
        b, c = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        a, d = ref
        # reference atom a must be bonded to b, d to c
        if m.GetBondBetweenAtoms(a, b) is None:
            a, d = d, a
        if m.GetBondBetweenAtoms(a, b) is None or m.GetBondBetweenAtoms(d, c) is None:
            continue
        for a2 in (n.GetIdx() for n in m.GetAtomWithIdx(b).GetNeighbors()):
            for d2 in (n.GetIdx() for n in m.GetAtomWithIdx(c).GetNeighbors()):
                if a2 == c or d2 == b or a2 == d2:
                    continue
                pairs.append((a2, b, c, d2))
                # the other substituent of an atom lies on the other side of the bond
                pairs_cis.append((st in _CIS) ^ (a2 != a) ^ (d2 != d))
                pair_bond.append(len(bonds))
        bonds.append((a, b, c, d))
        cis.append(st in _CIS)
    return StereoSpec(
        centers=np.asarray(centers, dtype=np.int64),
        neighbors=np.asarray(neighbors, dtype=np.int64).reshape(-1, 4),
        signs=np.asarray(signs, dtype=np.float64),
        bonds=np.asarray(bonds, dtype=np.int64).reshape(-1, 4),
        cis=np.asarray(cis, dtype=bool),
        num_neighbors=np.asarray(num_nbrs, dtype=np.int64),
        nontetrahedral=np.asarray(nontet, dtype=bool),
        pairs=np.asarray(pairs, dtype=np.int64).reshape(-1, 4),
        pairs_cis=np.asarray(pairs_cis, dtype=bool),
        pair_bond=np.asarray(pair_bond, dtype=np.int64),
    )


def _unit_det(v: np.ndarray) -> np.ndarray:
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return np.linalg.det(v)


def chiral_volumes(spec: StereoSpec, pos: np.ndarray) -> np.ndarray:
    """Normalised signed chiral volumes at the centres (diagnostics: the rule before :func:`centre_ok`).

    Args:
        spec: the molecule's :class:`StereoSpec`.
        pos: [K, N, 3] (or [N, 3]) conformer coordinates.

    Returns:
        [K, C] determinant of the unit vectors centre -> first three neighbours (in [-1, 1]).
    """
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    if not spec.num_centers:
        return np.zeros((pos.shape[0], 0))
    return _unit_det(pos[:, spec.neighbors[:, :3], :] - pos[:, spec.centers, None, :])


def tetrahedron_volumes(spec: StereoSpec, pos: np.ndarray) -> np.ndarray:
    """Normalised signed volumes of the neighbour tetrahedra (the centre stands in for a missing fourth).

    Diagnostics (``scripts/check_stereo_rule.py``): part of the rule before :func:`centre_ok`.
    Same sign as :func:`chiral_volumes` at a normal centre, and still well defined where the centre lies in
    the plane of three neighbours (a bicyclo[1.1.0]butane bridgehead has all four neighbours on one side).

    Returns:
        [K, C] determinant of the unit vectors fourth neighbour -> first three neighbours (in [-1, 1]).
    """
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    if not spec.num_centers:
        return np.zeros((pos.shape[0], 0))
    return _unit_det(pos[:, spec.neighbors[:, :3], :] - pos[:, spec.neighbors[:, 3], None, :])


def rdkit_volumes(spec: StereoSpec, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two raw chiral volumes of RDKit's perception from 3D (A^3), signed.

    Returns:
        ``(first [K, C], second [K, C])``: ``v0 . (v1 x v2)`` and ``-v0 . (v1 x v3)`` with ``v_k`` the vector
        centre -> k-th neighbour in bond order; ``second`` is NaN at a centre with three neighbours.
    """
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    if not spec.num_centers:
        empty = np.zeros((pos.shape[0], 0))
        return empty, empty
    v = pos[:, spec.neighbors, :] - pos[:, spec.centers, None, :]  # [K, C, 4, 3]
    first = np.linalg.det(v[:, :, :3])
    second = -np.linalg.det(v[:, :, [0, 1, 3]])
    second = np.where(spec.num_neighbors == 4, second, np.nan)
    return first, second


def min_neighbor_cos(spec: StereoSpec, pos: np.ndarray) -> np.ndarray:
    """Smallest cosine between two neighbour directions of each centre ([K, C]; -1 = two opposite bonds)."""
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    if not spec.num_centers:
        return np.zeros((pos.shape[0], 0))
    v = pos[:, spec.neighbors, :] - pos[:, spec.centers, None, :]  # [K, C, 4, 3]
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    cos = np.einsum("kcid,kcjd->kcij", v, v)  # [K, C, 4, 4]
    real = np.arange(4)[None, :] < spec.num_neighbors[:, None]  # [C, 4]: the 4th of a 3-neighbour centre is itself
    pair = real[:, :, None] & real[:, None, :] & ~np.eye(4, dtype=bool)[None]
    return np.where(pair[None], cos, np.inf).min(axis=(-1, -2))


def centre_ok(spec: StereoSpec, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which centres RDKit perceives from 3D with the specified configuration, and which with the inverted one.

    RDKit's rule (module docstring), with a margin of :data:`VOLUME_MARGIN` around its volume thresholds: where
    the first volume is within the margin of :data:`RDKIT_VOLUME_TOL`, RDKit might take either branch, so both
    must give the answer; a volume within the margin of zero decides nothing. A P / S / heavier centre with two
    neighbour directions near opposite (cosine below :data:`RDKIT_ANTIPARALLEL_COS` + the margin), which RDKit
    may call non-tetrahedral, is neither. A flattened centre is neither. The previous rule of this module (a
    normalised centre volume, the neighbour tetrahedron near the plane) passed P centres that RDKit calls
    octahedral or trigonal-bipyramidal, and near-planar centres that RDKit's fourth-neighbour branch calls
    inverted, in conformers sampled from noise.

    Returns:
        ``(ok [K, C], inverted [K, C])``, never both True.
    """
    first, second = rdkit_volumes(spec, pos)
    tol, eps = RDKIT_VOLUME_TOL, VOLUME_MARGIN
    first_possible = np.abs(first) >= tol - eps  # RDKit may decide on the first volume
    second_possible = np.abs(first) <= tol + eps  # ... or hand over to the second
    out = []
    for sign in (spec.signs, -spec.signs):
        f, g = first * sign, second * sign
        good = (~first_possible | (f > eps)) & (~second_possible | (g > tol + eps))  # NaN second: False
        out.append(good)
    ok, inverted = out
    if spec.nontetrahedral.any():
        linear = spec.nontetrahedral & (min_neighbor_cos(spec, pos) < RDKIT_ANTIPARALLEL_COS + ANTIPARALLEL_MARGIN)
        ok, inverted = ok & ~linear, inverted & ~linear
    return ok, inverted


def _dihedral_cos(pos: np.ndarray, quads: np.ndarray) -> np.ndarray:
    a, b, c, d = (pos[:, quads[:, k], :] for k in range(4))  # each [K, Q, 3]
    b1, b2, b3 = b - a, c - b, d - c
    n1 = np.cross(b1, b2)
    n2 = np.cross(b2, b3)
    denom = np.maximum(np.linalg.norm(n1, axis=-1) * np.linalg.norm(n2, axis=-1), 1e-12)
    return (n1 * n2).sum(-1) / denom


def double_bond_ok(spec: StereoSpec, pos: np.ndarray) -> np.ndarray:
    """Whether every substituent pair across each specified double bond is on its specified side.

    Each pair's dihedral must be within 60 degrees of cis or trans as specified (:data:`MIN_ABS_COS_DIHEDRAL`):
    whichever substituents RDKit's perception looks at, it sees the specified E/Z (it splits at 90 degrees).
    Checking the reference atoms alone passed bonds whose sp2 atoms were pyramidalised so far that the other
    substituent sat on the same side.

    Returns:
        [K, B] bool.
    """
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    k = pos.shape[0]
    if not spec.num_bonds:
        return np.zeros((k, 0), dtype=bool)
    want = np.where(spec.pairs_cis, 1.0, -1.0)
    pair_ok = _dihedral_cos(pos, spec.pairs) * want >= MIN_ABS_COS_DIHEDRAL  # [K, P]
    ok = np.ones((k, spec.num_bonds), dtype=bool)
    for j in range(spec.num_bonds):
        ok[:, j] = pair_ok[:, spec.pair_bond == j].all(1)
    return ok


@dataclass
class StereoCheck:
    """Result of :func:`check_stereo` for K conformers.

    Attributes:
        ok: [K] every specified centre and double bond is right.
        mirror_fixes: [K] wrong now, and right after mirroring (all centres inverted, all bonds right).
        centers_ok: [K, C] per centre.
        bonds_ok: [K, B] per double bond.
    """

    ok: np.ndarray
    mirror_fixes: np.ndarray
    centers_ok: np.ndarray
    bonds_ok: np.ndarray


def check_stereo(spec: StereoSpec, pos: np.ndarray) -> StereoCheck:
    """Compare conformers with the specified stereo.

    Args:
        spec: the molecule's :class:`StereoSpec`.
        pos: [K, N, 3] (or [N, 3]) coordinates.

    Returns:
        :class:`StereoCheck`.
    """
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    k = pos.shape[0]
    centers_ok, centers_inverted = centre_ok(spec, pos)  # [K, C]
    bonds_ok = double_bond_ok(spec, pos)  # [K, B]
    finite = np.isfinite(pos).all(axis=(1, 2))
    ok = centers_ok.all(1) & bonds_ok.all(1) & finite
    mirror_fixes = (~ok & finite & (spec.num_centers > 0) & centers_inverted.all(1) & bonds_ok.all(1)
                    if spec.num_centers else np.zeros(k, dtype=bool))
    return StereoCheck(ok=ok, mirror_fixes=mirror_fixes, centers_ok=centers_ok, bonds_ok=bonds_ok)


def mirror(pos: np.ndarray) -> np.ndarray:
    """Mirror image (x -> -x) of coordinates [..., 3]; inverts every tetrahedral centre."""
    out = np.array(pos, dtype=np.float64, copy=True)
    out[..., 0] *= -1.0
    return out


def repair_stereo(spec: StereoSpec, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror the conformers that a mirror repairs.

    Args:
        spec: the molecule's :class:`StereoSpec`.
        pos: [K, N, 3] coordinates.

    Returns:
        ``(pos [K, N, 3], ok [K], mirrored [K])``: coordinates with the mirror-repairable conformers mirrored,
        whether each conformer is now right, and which were mirrored. Conformers with ``ok`` False must be
        resampled.
    """
    pos = np.array(pos, dtype=np.float64, copy=True)
    chk = check_stereo(spec, pos)
    mirrored = chk.mirror_fixes
    if mirrored.any():
        pos[mirrored] = mirror(pos[mirrored])
        chk2 = check_stereo(spec, pos[mirrored])
        ok = chk.ok.copy()
        ok[mirrored] = chk2.ok
    else:
        ok = chk.ok
    return pos, ok, mirrored


# ----------------------------------------------------------------------------- stereo read from coordinates
def stereo_from_3d(mol: Chem.Mol) -> Chem.Mol:
    """A copy of ``mol`` with its stereo tags assigned from its (first) conformer (RDKit's perception)."""
    mol = Chem.Mol(mol)
    if mol.GetNumConformers():
        Chem.AssignStereochemistryFrom3D(mol)
    return mol


class StereoSignature:
    """Stereo of a template Mol as signs computed from coordinates, to group conformers by stereoisomer cheaply.

    Tetrahedral centres: sign of the signed volume of the first three neighbours around the centre.
    Stereo double bonds: cis (|dihedral| < 90 deg) or trans of the bond's stereo atoms. Unlike
    :func:`check_stereo` this does not judge a conformer against a specification (no margins, no fourth
    neighbour): it only tells conformers of one template apart.

    Args:
        template: Mol whose chiral tags and stereo bonds name what to compare.
        pos: [N, 3] the template's own coordinates (its signs are :attr:`reference`).
    """

    def __init__(self, template: Chem.Mol, pos: np.ndarray):
        centres = []
        for atom in template.GetAtoms():
            if atom.GetChiralTag() in (Chem.ChiralType.CHI_TETRAHEDRAL_CW, Chem.ChiralType.CHI_TETRAHEDRAL_CCW):
                nbrs = [n.GetIdx() for n in atom.GetNeighbors()]
                if len(nbrs) >= 3:
                    centres.append([atom.GetIdx()] + nbrs[:3])
        self.centres = np.asarray(centres, dtype=np.int64).reshape(-1, 4)
        dbs = []
        for bond in template.GetBonds():
            if bond.GetStereo() in _CIS + _TRANS:
                sa = list(bond.GetStereoAtoms())
                if len(sa) == 2:
                    dbs.append([sa[0], bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), sa[1]])
        self.double_bonds = np.asarray(dbs, dtype=np.int64).reshape(-1, 4)
        self.reference = self.signs(pos)

    def signs(self, pos: np.ndarray) -> np.ndarray:
        """Signs for positions ``pos`` [num_atoms, 3] in the template's atom order."""
        out = []
        if len(self.centres):
            c = pos[self.centres[:, 0]]
            a, b, d = (pos[self.centres[:, k]] - c for k in (1, 2, 3))
            out.append(np.sign(np.einsum("ij,ij->i", a, np.cross(b, d))))
        if len(self.double_bonds):
            p = pos[self.double_bonds]  # [B, 4, 3]
            v1 = p[:, 0] - p[:, 1]
            v2 = p[:, 3] - p[:, 2]
            axis = p[:, 2] - p[:, 1]
            axis = axis / np.linalg.norm(axis, axis=1, keepdims=True)
            v1 = v1 - np.einsum("ij,ij->i", v1, axis)[:, None] * axis
            v2 = v2 - np.einsum("ij,ij->i", v2, axis)[:, None] * axis
            out.append(np.sign(np.einsum("ij,ij->i", v1, v2)))
        return np.concatenate(out) if out else np.zeros(0)
