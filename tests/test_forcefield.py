"""confgen.chem.forcefield: MMFF94 / UFF minimisation, single points and the MMFF94 Hessian."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from confgen.chem.forcefield import has_mmff_params, minimise, mmff_energies, mmff_hessian


def _mmff_mol(smiles: str, seed: int = 3) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=seed)
    AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    return mol


def _embedded(smiles: str, n: int, seed: int = 5) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMultipleConfs(mol, n, randomSeed=seed)
    return mol


def test_mmff_hessian_shape_and_symmetry():
    mol = _mmff_mol("CC(=O)NC")
    hess = mmff_hessian(mol)  # Hartree / Bohr^2
    assert hess.shape == (3 * mol.GetNumAtoms(),) * 2
    assert np.allclose(hess, hess.T)
    assert np.trace(hess) > 0


def test_mmff_hessian_none_without_parameters():
    mol = Chem.AddHs(Chem.MolFromSmiles("B(C)(C)C"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    assert mmff_hessian(mol) is None


def test_minimise_matches_rdkit_and_energies_are_the_minima():
    mol = _embedded("CC(=O)Nc1ccc(O)cc1", 4)
    ref = Chem.Mol(mol)
    ref_res = AllChem.MMFFOptimizeMoleculeConfs(ref, numThreads=1, maxIters=2000)
    energies, name = minimise(mol)
    assert name == "MMFF94"
    assert np.array_equal(energies, [e for _, e in ref_res])
    for a, b in zip(mol.GetConformers(), ref.GetConformers()):
        assert np.array_equal(a.GetPositions(), b.GetPositions())
    assert np.allclose(mmff_energies(mol), energies, atol=1e-6)


def test_minimise_in_blocks_equals_one_call_and_reports_each_block():
    one = _embedded("CCOC(=O)c1ccccc1", 5)
    blocks = Chem.Mol(one)
    e_one, _ = minimise(one)
    seen: list[int] = []
    e_blocks, _ = minimise(blocks, block_size=2, on_block=seen.append)
    assert seen == [2, 2, 1]
    assert np.array_equal(e_one, e_blocks)
    for a, b in zip(one.GetConformers(), blocks.GetConformers()):
        assert np.array_equal(a.GetPositions(), b.GetPositions())


def test_uff_fallback_and_no_parameters():
    mol = _embedded("B(C)(C)C", 2)
    assert not has_mmff_params(mol)
    before = [c.GetPositions() for c in mol.GetConformers()]
    assert minimise(mol, uff_fallback=False) is None
    assert all(np.array_equal(b, c.GetPositions()) for b, c in zip(before, mol.GetConformers()))
    energies, name = minimise(mol)
    assert name == "UFF" and energies.shape == (2,)
    assert mmff_energies(mol) is None


def test_mmff_energies_at_given_positions():
    mol = _embedded("CCO", 2)
    pos = [c.GetPositions() for c in mol.GetConformers()]
    at = mmff_energies(Chem.Mol(mol), [pos[1]], conf_ids=[0])
    assert at[0] == pytest.approx(mmff_energies(Chem.Mol(mol))[1], abs=1e-9)
