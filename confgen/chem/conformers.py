"""Conformers <-> coordinates: Mols carrying given conformers or positions, positions of a Mol's conformers,
heavy-atom copies.

Positions are numpy float64 arrays in Angstrom, ``[N, 3]`` for one conformer and ``[C, N, 3]`` for several,
atoms in the Mol's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from rdkit import Chem

from confgen.chem.smiles import safe_smiles
from confgen.errors import InputError

__all__ = ["with_conformers", "with_positions", "with_explicit_hydrogens", "heavy_atom_indices", "heavy_atom_copy", "heavy_positions"]


def with_conformers(template: Chem.Mol, conformers: Iterable[Chem.Conformer]) -> Chem.Mol:
    """A copy of ``template`` (its graph and properties) carrying copies of ``conformers``, ids 0..k-1."""
    out = Chem.Mol(template)
    out.RemoveAllConformers()
    for k, conf in enumerate(conformers):
        c = Chem.Conformer(conf)
        c.SetId(k)
        out.AddConformer(c, assignId=False)
    return out


def with_positions(template: Chem.Mol, positions: Iterable[np.ndarray]) -> Chem.Mol:
    """A copy of ``template`` (graph and properties, no conformer properties) with one 3D conformer per
    ``[N, 3]`` array of ``positions`` (atoms in the template's order), ids 0..k-1."""
    out = Chem.Mol(template)
    out.RemoveAllConformers()
    n_atoms = out.GetNumAtoms()
    for k, pos in enumerate(positions):
        conf = Chem.Conformer(n_atoms)
        conf.SetPositions(np.ascontiguousarray(pos, dtype=np.float64))
        conf.Set3D(True)
        conf.SetId(k)
        out.AddConformer(conf, assignId=False)
    return out


def with_explicit_hydrogens(mol: Chem.Mol) -> Chem.Mol:
    """``mol`` with its implicit hydrogens made explicit (placed in 3D where it has conformers); ``mol`` itself
    when it has none."""
    if any(a.GetNumImplicitHs() for a in mol.GetAtoms()):
        return Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)
    return mol


def heavy_atom_indices(mol: Chem.Mol) -> list[int]:
    """Indices of the atoms other than hydrogen, in order."""
    return [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() != 1]


def heavy_atom_copy(mol: Chem.Mol) -> tuple[Chem.Mol, list[int]]:
    """Remove every hydrogen (also isotopic or stereo-defining ones); keep conformers and atom order.

    Args:
        mol: an RDKit Mol, with or without explicit hydrogens.

    Returns:
        ``(heavy, index)``: the heavy-atom Mol and, for each of its atoms, the index of that atom in ``mol``.
    """
    index = heavy_atom_indices(mol)
    heavy = Chem.RemoveAllHs(mol, sanitize=False)
    if heavy.GetNumAtoms() != len(index):  # pragma: no cover - RemoveAllHs keeps every non-H atom
        raise InputError("could not strip hydrogens", smiles=safe_smiles(mol, remove_hs=False))
    heavy.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(heavy)
    return heavy, index


def heavy_positions(mol: Chem.Mol, index: Sequence[int] | None = None) -> np.ndarray:
    """Coordinates of all conformers, restricted to the ``index`` atoms (all atoms when ``None``).

    Returns:
        ``pos: [C, N, 3]`` float64 (C conformers in the Mol's conformer order).
    """
    confs = list(mol.GetConformers())
    n = mol.GetNumAtoms() if index is None else len(index)
    out = np.empty((len(confs), n, 3), dtype=np.float64)
    for c, conf in enumerate(confs):
        pos = conf.GetPositions()
        out[c] = pos if index is None else pos[np.asarray(index, dtype=np.int64)]
    return out
