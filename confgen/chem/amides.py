"""Secondary amides turned trans: the conformational preference a few-step sampler from noise misses.

An acyclic secondary amide R-C(=O)-NH-R' is trans (O and H on opposite sides of the C-N bond) in nearly every
low-energy conformer: 2 cis of 1,006 amide conformers (86 molecules) in confgen's GFN2-xTB ensembles
(data/geom_drugs_xtb); 39 of 378 (7 molecules) in GEOM's reference ensembles of ../shared, 31 of them in one
ortho-substituted benzanilide. RDKit's ETKDG imposes trans through its torsion preferences; the 11-call ``edm``
sampler from pure noise left 16 of 80 cis on those 17 GEOM molecules, and 34 of 80 after MMFF94, which keeps a
cis amide cis and turns twisted ones either way (docs/benchmarks.md, "Amides"). :func:`turn_amides_trans` rotates the smaller side of each such
C-N bond rigidly about the bond until the O=C-N-H dihedral is 180 degrees: bond lengths, angles and every stereo
centre are unchanged (a rotation is proper), only clashes can appear (the checks that follow catch them).

Ureas, carbamates and thioamides are left alone: cis N-H conformers are common in GEOM's ensembles of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

#: O=C-N-H of an acyclic secondary amide whose carbonyl carbon is bonded to a carbon (amides, hydrazides)
AMIDE_SMARTS = "[OX1]=[CX3;$(C-[#6])]!@-[NX3;H1]-[#1]"
#: amides whose |O=C-N-H| is below this (degrees) are turned trans; above it they count as trans already
TRANS_MIN_DEG = 150.0

_PATTERN = Chem.MolFromSmarts(AMIDE_SMARTS)


@dataclass(frozen=True)
class AmideRotors:
    """The secondary amides of one molecule.

    Attributes:
        quads: [A, 4] atom indices O, C, N, H of each amide.
        moving: per amide, the atoms rotated about its C-N bond (the smaller side of the bond).
        sign: per amide, +1 if the moving side holds N (and H), -1 if it holds C (and O).
    """

    quads: np.ndarray
    moving: tuple[np.ndarray, ...]
    sign: np.ndarray

    def __len__(self) -> int:
        return len(self.quads)


def amide_rotors(mol: Chem.Mol) -> AmideRotors:
    """The acyclic secondary amides of ``mol`` (explicit hydrogens needed; none found without them)."""
    quads, moving, sign = [], [], []
    for o, c, n, h in mol.GetSubstructMatches(_PATTERN):
        side_n = _side(mol, start=n, cut=c)
        if 2 * len(side_n) <= mol.GetNumAtoms():
            moving.append(np.array(sorted(side_n), dtype=np.int64))
            sign.append(1.0)
        else:
            moving.append(np.array(sorted(set(range(mol.GetNumAtoms())) - side_n), dtype=np.int64))
            sign.append(-1.0)
        quads.append((o, c, n, h))
    return AmideRotors(quads=np.array(quads, dtype=np.int64).reshape(-1, 4), moving=tuple(moving),
                       sign=np.array(sign))


def _side(mol: Chem.Mol, start: int, cut: int) -> set[int]:
    """Atoms reached from ``start`` without crossing its bond to ``cut`` (an acyclic bond: a bridge)."""
    seen, stack = {start}, [start]
    while stack:
        a = stack.pop()
        for nb in mol.GetAtomWithIdx(a).GetNeighbors():
            b = nb.GetIdx()
            if b not in seen and not (a == start and b == cut):
                seen.add(b)
                stack.append(b)
    return seen


def dihedrals(pos: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Signed dihedral angles (radians, RDKit's sign) of ``quads`` [A, 4] in conformers ``pos`` [K, N, 3]: [K, A]."""
    p0, p1, p2, p3 = (pos[:, quads[:, i]] for i in range(4))
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    m1 = np.cross(n1, b1 / np.linalg.norm(b1, axis=-1, keepdims=True))
    return np.arctan2(-(m1 * n2).sum(-1), (n1 * n2).sum(-1))


def turn_amides_trans(rotors: AmideRotors, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn every cis or twisted amide (|O=C-N-H| < :data:`TRANS_MIN_DEG`) of conformers ``pos`` [K, N, 3] trans.

    Returns:
        The new coordinates [K, N, 3] (a copy) and the number of amides turned per conformer [K].
    """
    out = np.array(pos, dtype=np.float64, copy=True)
    turned = np.zeros(len(out), dtype=np.int64)
    for a in range(len(rotors)):
        quad = rotors.quads[a:a + 1]
        phi = dihedrals(out, quad)[:, 0]  # [K]
        todo = np.abs(phi) < np.deg2rad(TRANS_MIN_DEG)
        if not todo.any():
            continue
        o, c, n, h = rotors.quads[a]
        # rotating the N side by theta (right-handed about C->N) adds theta to the dihedral; the C side subtracts it
        theta = rotors.sign[a] * (np.pi - phi[todo])  # [k]
        axis = out[todo, n] - out[todo, c]
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        idx = rotors.moving[a]
        v = out[todo][:, idx] - out[todo, c][:, None]  # [k, M, 3]
        u = axis[:, None]
        cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
        rotated = v * cos + np.cross(u, v) * sin + u * (u * v).sum(-1, keepdims=True) * (1 - cos)
        sub = out[todo]
        sub[:, idx] = rotated + out[todo, c][:, None]
        out[todo] = sub
        turned[todo] += 1
    return out, turned
