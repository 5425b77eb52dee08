"""confgen.chem.xtb: the fast GFN2-xTB optimiser against scipy's full minimisation, its basis and checks."""

import importlib.util

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from confgen.chem.forcefield import BOHR_PER_ANGSTROM, KCAL_PER_HARTREE, mmff_hessian
from confgen.chem.xtb import (
    XtbCalculator,
    XtbError,
    XtbOptions,
    bonds_changed,
    internal_basis,
    xtb_optimise,
)

needs_tblite = pytest.mark.skipif(importlib.util.find_spec("tblite") is None, reason="tblite not installed")


def _mmff_mol(smiles: str, seed: int = 3) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=seed)
    AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    return mol


@needs_tblite
def test_mmff_hessian_saves_steps_over_a_model_hessian():
    """The point of starting from MMFF94's Hessian: fewer GFN2-xTB single points to the same minimum."""
    mol = _mmff_mol("O=C1N[C@@H](Cc2ccccc2)[C@@H](c2ccco2)O1")  # geom_drugs_tora3d7 mol06
    pos = mol.GetConformer().GetPositions()
    with_mmff = xtb_optimise(XtbCalculator.for_mol(mol), pos, mmff_hessian(mol), XtbOptions(level="normal"))
    model = xtb_optimise(XtbCalculator.for_mol(mol), pos, None, XtbOptions(level="normal"))
    assert with_mmff.converged and model.converged
    assert with_mmff.n_steps < model.n_steps
    assert abs(with_mmff.energy - model.energy) * KCAL_PER_HARTREE < 0.1


def test_internal_basis_is_orthogonal_to_rigid_motions():
    pos = np.random.default_rng(1).normal(size=(7, 3))
    basis = internal_basis(pos)
    assert basis.shape == (21, 15)
    assert np.allclose(basis.T @ basis, np.eye(15), atol=1e-10)
    shift = np.tile([0.3, -0.2, 0.1], 7)
    angle = 1e-4
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    c = pos.mean(0)
    rotation = (((pos - c) @ rot.T + c) - pos).reshape(-1)
    assert np.abs(basis.T @ shift).max() < 1e-10
    assert np.abs(basis.T @ rotation).max() < 1e-7
    linear = np.array([[0.0, 0, 0], [1.2, 0, 0], [2.4, 0, 0]])
    assert internal_basis(linear).shape == (9, 4)  # 3N - 5


def test_bonds_changed_detects_broken_and_new_bonds():
    mol = _mmff_mol("CCO")
    pos = mol.GetConformer().GetPositions()
    assert bonds_changed(mol, pos) == []
    stretched = pos.copy()
    stretched[2] += (pos[2] - pos[1]) * 1.5  # C-O bond pulled apart
    assert (1, 2) in bonds_changed(mol, stretched)
    h = next(a.GetIdx() for a in mol.GetAtomWithIdx(0).GetNeighbors() if a.GetAtomicNum() == 1)
    moved = pos.copy()
    moved[h] = pos[2] + (pos[h] - pos[0]) / np.linalg.norm(pos[h] - pos[0]) * 0.97  # H now sits on the O
    assert (min(h, 2), max(h, 2)) in bonds_changed(mol, moved)


@needs_tblite
def test_fast_optimiser_reaches_the_fully_converged_minimum():
    """Same minimum as scipy's L-BFGS run to a tight gradient, in far fewer single points."""
    from scipy.optimize import minimize

    mol = _mmff_mol("CC(=O)Nc1ccccc1O")
    pos = mol.GetConformer().GetPositions()
    calc = XtbCalculator.for_mol(mol)
    res = xtb_optimise(calc, pos, mmff_hessian(mol), XtbOptions(level="normal"))
    assert res.converged
    ref_calc = XtbCalculator.for_mol(mol)

    def fun(x):
        e, g = ref_calc(x.reshape(-1, 3))
        return e, g.reshape(-1)

    ref = minimize(fun, pos.reshape(-1) * BOHR_PER_ANGSTROM, jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000, "gtol": 1e-6, "ftol": 1e-14})
    assert (res.energy - ref.fun) * KCAL_PER_HARTREE < 0.05  # kcal/mol
    assert res.energy < fun(pos.reshape(-1) * BOHR_PER_ANGSTROM)[0] - 1e-4  # it did minimise
    assert res.n_steps < ref_calc.n_calls
    assert bonds_changed(mol, res.pos) == []
    # the optimiser returns the energy of the geometry it returns
    assert XtbCalculator.for_mol(mol)(res.pos * BOHR_PER_ANGSTROM)[0] == pytest.approx(res.energy, abs=1e-8)


@needs_tblite
def test_levels_stop_earlier_and_trace_records_the_path():
    mol = _mmff_mol("CCOC(=O)c1ccccc1")
    pos = mol.GetConformer().GetPositions()
    hess = mmff_hessian(mol)
    trace: list = []
    tight = xtb_optimise(XtbCalculator.for_mol(mol), pos, hess, XtbOptions(level="tight"), trace=trace)
    crude = xtb_optimise(XtbCalculator.for_mol(mol), pos, hess, XtbOptions(level="crude"))
    assert crude.n_steps <= tight.n_steps
    assert crude.energy >= tight.energy - 1e-7
    energies = [t[1] for t in trace]
    assert all(b <= a + 1e-9 for a, b in zip(energies, energies[1:]))  # accepted points only go down


@needs_tblite
def test_scf_failure_raises_xtb_error():
    calc = XtbCalculator(np.array([6, 6]))
    with pytest.raises(XtbError):
        calc(np.zeros((2, 3)))  # two atoms on one point


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown xtb optimisation level"):
        XtbOptions(level="sloppyish").thresholds()
