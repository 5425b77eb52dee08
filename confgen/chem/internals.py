"""Redundant internal coordinates of a molecule (bonds, angles, dihedrals) and their Wilson B matrix.

The primitives come from the molecular graph: every bond, every angle between two bonds at an atom, and every
proper dihedral about a bond. Geometry optimisers step in the non-redundant "delocalised" combinations of them
(Baker, Kessi and Delley, J. Chem. Phys. 105, 192 (1996)): a torsion of a whole group is one coordinate there,
where Cartesian steps need many small moves to turn it without stretching its bonds.
:func:`confgen.chem.xtb.xtb_optimise` uses them with ``coords="internal"``.

Everything is vectorised over primitives; positions are [N, 3] arrays (any length unit; angles in radians).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

#: angles above this (degrees) are treated as linear: their dihedrals are ill-defined, and molecules with one
#: are optimised in Cartesian coordinates
LINEAR_DEG = 165.0


@dataclass
class Primitives:
    """Index arrays of the primitives: ``bonds`` [B, 2], ``angles`` [A, 3] (centre in the middle), ``dihedrals``
    [D, 4] (about the bond of the middle two atoms)."""

    bonds: np.ndarray
    angles: np.ndarray
    dihedrals: np.ndarray

    def __len__(self) -> int:
        return len(self.bonds) + len(self.angles) + len(self.dihedrals)

    @property
    def n_bonds(self) -> int:
        return len(self.bonds)

    @property
    def n_angles(self) -> int:
        return len(self.angles)


def primitives(mol: Chem.Mol) -> Primitives:
    """Bonds, angles and proper dihedrals of ``mol``'s graph (hydrogens included when explicit)."""
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 2)
    nbrs = [[n.GetIdx() for n in a.GetNeighbors()] for a in mol.GetAtoms()]
    angles = [(i, j, k) for j, nb in enumerate(nbrs) for x, i in enumerate(nb) for k in nb[x + 1:]]
    dihedrals = [(i, j, k, m) for j, k in bonds.tolist() for i in nbrs[j] if i != k for m in nbrs[k] if m != j and m != i]
    return Primitives(bonds, np.array(angles, dtype=np.int64).reshape(-1, 3),
                      np.array(dihedrals, dtype=np.int64).reshape(-1, 4))


def _angle_parts(pos: np.ndarray, idx: np.ndarray):
    u = pos[idx[:, 0]] - pos[idx[:, 1]]
    v = pos[idx[:, 2]] - pos[idx[:, 1]]
    lu = np.linalg.norm(u, axis=1)
    lv = np.linalg.norm(v, axis=1)
    cos = np.clip(np.einsum("ij,ij->i", u, v) / (lu * lv), -1.0, 1.0)
    return u, v, lu, lv, cos


def max_angle_deg(pos: np.ndarray, prims: Primitives) -> float:
    """The largest angle among the primitives at ``pos`` (degrees; 0 where there are none)."""
    if not len(prims.angles):
        return 0.0
    return float(np.degrees(np.arccos(_angle_parts(pos, prims.angles)[4])).max())


def _dihedral_parts(pos: np.ndarray, idx: np.ndarray):
    f = pos[idx[:, 0]] - pos[idx[:, 1]]
    g = pos[idx[:, 1]] - pos[idx[:, 2]]
    h = pos[idx[:, 3]] - pos[idx[:, 2]]
    a = np.cross(f, g)
    b = np.cross(h, g)
    lg = np.linalg.norm(g, axis=1)
    phi = np.arctan2(np.einsum("ij,ij->i", np.cross(b, a), g) / lg, np.einsum("ij,ij->i", a, b))
    return f, g, h, a, b, lg, phi


def values(pos: np.ndarray, prims: Primitives) -> np.ndarray:
    """[P] primitive values at ``pos`` [N, 3]: bond lengths, then angles, then dihedrals (radians, in (-pi, pi])."""
    r = np.linalg.norm(pos[prims.bonds[:, 0]] - pos[prims.bonds[:, 1]], axis=1)
    theta = np.arccos(_angle_parts(pos, prims.angles)[4]) if len(prims.angles) else np.zeros(0)
    phi = _dihedral_parts(pos, prims.dihedrals)[6] if len(prims.dihedrals) else np.zeros(0)
    return np.concatenate([r, theta, phi])


def differences(q1: np.ndarray, q0: np.ndarray, prims: Primitives) -> np.ndarray:
    """``q1 - q0`` with dihedral differences wrapped into (-pi, pi]."""
    d = q1 - q0
    start = prims.n_bonds + prims.n_angles
    d[start:] = (d[start:] + np.pi) % (2 * np.pi) - np.pi
    return d


def wilson_b(pos: np.ndarray, prims: Primitives) -> np.ndarray:
    """[P, 3N] derivatives of the primitive values with respect to the Cartesian coordinates at ``pos``."""
    n = len(pos)
    b_mat = np.zeros((len(prims), n, 3))
    row = 0
    if prims.n_bonds:
        i, j = prims.bonds.T
        u = pos[i] - pos[j]
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        rows = np.arange(row, row + len(i))
        b_mat[rows, i] = u
        b_mat[rows, j] = -u
        row += len(i)
    if prims.n_angles:
        i, j, k = prims.angles.T
        u, v, lu, lv, cos = _angle_parts(pos, prims.angles)
        sin = np.sqrt(np.maximum(1.0 - cos**2, 1e-12))
        uh, vh = u / lu[:, None], v / lv[:, None]
        di = (cos[:, None] * uh - vh) / (lu * sin)[:, None]
        dk = (cos[:, None] * vh - uh) / (lv * sin)[:, None]
        rows = np.arange(row, row + len(i))
        b_mat[rows, i] = di
        b_mat[rows, k] = dk
        b_mat[rows, j] = -(di + dk)
        row += len(i)
    if len(prims.dihedrals):
        i, j, k, m = prims.dihedrals.T
        f, g, h, a, b, lg, _ = _dihedral_parts(pos, prims.dihedrals)
        a2 = np.einsum("ij,ij->i", a, a)[:, None]
        b2 = np.einsum("ij,ij->i", b, b)[:, None]
        fg = np.einsum("ij,ij->i", f, g)[:, None]
        hg = np.einsum("ij,ij->i", h, g)[:, None]
        lg_ = lg[:, None]
        di = -lg_ / a2 * a
        dm = lg_ / b2 * b
        dj = lg_ / a2 * a + fg / (a2 * lg_) * a - hg / (b2 * lg_) * b
        dk = -lg_ / b2 * b - fg / (a2 * lg_) * a + hg / (b2 * lg_) * b
        rows = np.arange(row, row + len(i))
        b_mat[rows, i] = di  # the four atoms of a proper dihedral are distinct: plain assignment
        b_mat[rows, j] = dj
        b_mat[rows, k] = dk
        b_mat[rows, m] = dm
    return b_mat.reshape(len(prims), 3 * n)
