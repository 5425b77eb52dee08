"""confgen.chem.conformers: Mols from conformers and positions, heavy-atom copies and positions."""

import numpy as np

from confgen.chem.conformers import heavy_atom_copy, heavy_atom_indices, heavy_positions, with_conformers, with_positions

from mol_helpers import embed_mol


def test_with_positions_and_with_conformers_round_trip():
    mol = embed_mol("CC(=O)NC", 3, seed=1)
    mol.SetProp("_Name", "amide")
    pos = heavy_positions(mol)  # all atoms: [3, N, 3]
    again = with_positions(mol, list(pos[::-1]))
    assert again.GetProp("_Name") == "amide" and [c.GetId() for c in again.GetConformers()] == [0, 1, 2]
    assert np.array_equal(heavy_positions(again), pos[::-1]) and again.GetConformer(0).Is3D()
    copy = with_conformers(mol, [mol.GetConformer(2)])
    assert copy.GetNumConformers() == 1 and np.array_equal(copy.GetConformer(0).GetPositions(), pos[2])


def test_heavy_atom_copy_keeps_order_and_positions():
    mol = embed_mol("OCC(N)=O", 2, seed=2)
    heavy, index = heavy_atom_copy(mol)
    assert index == heavy_atom_indices(mol) == [0, 1, 2, 3, 4]
    assert [a.GetSymbol() for a in heavy.GetAtoms()] == ["O", "C", "C", "N", "O"]
    assert np.array_equal(heavy_positions(heavy), heavy_positions(mol, index))


def test_with_explicit_hydrogens_places_them_in_3d_and_keeps_explicit_mols():
    from rdkit import Chem

    from confgen.chem.conformers import with_explicit_hydrogens

    mol = embed_mol("CCO", 1, seed=3)
    assert with_explicit_hydrogens(mol) is mol
    heavy = Chem.RemoveHs(mol)
    again = with_explicit_hydrogens(heavy)
    assert again.GetNumAtoms() == mol.GetNumAtoms() and again.GetNumConformers() == 1
    h_pos = again.GetConformer().GetPositions()[3:]
    assert (np.linalg.norm(h_pos, axis=1) > 0).all()  # placed, not at the origin
