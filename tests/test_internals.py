"""confgen.chem.internals: primitives of the graph and their Wilson B matrix; the internal-coordinate optimiser."""

import importlib.util

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from confgen.chem.forcefield import KCAL_PER_HARTREE, mmff_hessian
from confgen.chem.internals import LINEAR_DEG, differences, max_angle_deg, primitives, values, wilson_b
from confgen.chem.rmsd import rmsd_matrix
from confgen.chem.conformers import with_positions
from confgen.chem.xtb import XtbCalculator, XtbOptions, bonds_changed, xtb_optimise

needs_tblite = pytest.mark.skipif(importlib.util.find_spec("tblite") is None, reason="tblite not installed")


def _mol(smiles: str, seed: int = 3, mmff: bool = True) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=seed)
    if mmff:
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    return mol


def test_primitives_count_bonds_angles_and_proper_dihedrals():
    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))  # 8 bonds; angles: C1 6, C2 6, O 1; dihedrals: 3x3 about C-C, 3x1 about C-O
    prims = primitives(mol)
    assert (len(prims.bonds), len(prims.angles), len(prims.dihedrals)) == (8, 13, 12)
    assert all(len(set(d)) == 4 for d in prims.dihedrals.tolist())


def test_wilson_b_matches_finite_differences_and_spans_all_internal_motions():
    mol = _mol("CC(=O)Nc1ccc(O)cc1CCOC", mmff=False)
    pos = mol.GetConformer().GetPositions()
    prims = primitives(mol)
    b_mat = wilson_b(pos, prims)
    x, h = pos.reshape(-1), 1e-5
    numeric = np.zeros_like(b_mat)
    for c in range(len(x)):
        xp, xm = x.copy(), x.copy()
        xp[c] += h
        xm[c] -= h
        numeric[:, c] = differences(values(xp.reshape(-1, 3), prims), values(xm.reshape(-1, 3), prims), prims) / (2 * h)
    assert np.abs(b_mat - numeric).max() < 1e-7
    eig = np.linalg.eigvalsh(b_mat @ b_mat.T)
    assert int((eig > 1e-6 * eig.max()).sum()) == 3 * mol.GetNumAtoms() - 6


def test_dihedral_differences_wrap_across_pi():
    prims = primitives(Chem.AddHs(Chem.MolFromSmiles("CC")))
    q0 = np.zeros(len(prims))
    q1 = np.zeros(len(prims))
    q0[-1], q1[-1] = np.pi - 0.1, -np.pi + 0.1
    assert differences(q1, q0, prims)[-1] == pytest.approx(0.2)


def test_linear_groups_are_detected():
    mol = _mol("CC#N")
    assert max_angle_deg(mol.GetConformer().GetPositions(), primitives(mol)) > LINEAR_DEG


@needs_tblite
def test_internal_coordinates_reach_the_cartesian_minimum_in_fewer_single_points():
    """Same vtight test of convergence in both coordinate systems, the same minimum, fewer steps in internals
    on a flexible drug (geom_drugs_tora3d7 mol06, with a benzyl and a furyl rotor)."""
    mol = _mol("O=C1N[C@@H](Cc2ccccc2)[C@@H](c2ccco2)O1", seed=7)
    pos = mol.GetConformer().GetPositions()
    hess = mmff_hessian(mol)
    cart = xtb_optimise(XtbCalculator.for_mol(mol), pos, hess, XtbOptions(level="extreme"))
    trace: list = []
    calc = XtbCalculator.for_mol(mol)
    internal = xtb_optimise(calc, pos, hess, XtbOptions(level="vtight", coords="internal"), prims=primitives(mol),
                            trace=trace)
    assert cart.converged and internal.converged
    assert internal.n_steps < cart.n_steps
    assert abs(internal.energy - cart.energy) * KCAL_PER_HARTREE < 0.05
    rmsd = rmsd_matrix(with_positions(mol, [cart.pos]), with_positions(mol, [internal.pos]))[0, 0]
    assert rmsd < 0.1
    assert bonds_changed(mol, internal.pos) == []
    energies = [t[1] for t in trace]
    assert all(b <= a + 1e-9 for a, b in zip(energies, energies[1:]))  # accepted points only go down
    assert XtbCalculator.for_mol(mol)(internal.pos * 1.8897261246)[0] == pytest.approx(internal.energy, abs=1e-8)


@needs_tblite
def test_internal_coordinates_fall_back_to_cartesian_for_linear_groups():
    mol = _mol("CC(C)CC#N")
    pos = mol.GetConformer().GetPositions()
    opts = dict(level="normal")
    a = xtb_optimise(XtbCalculator.for_mol(mol), pos, mmff_hessian(mol), XtbOptions(**opts), prims=primitives(mol))
    b = xtb_optimise(XtbCalculator.for_mol(mol), pos, mmff_hessian(mol), XtbOptions(coords="internal", **opts),
                     prims=primitives(mol))
    assert a.converged and b.converged and a.n_steps == b.n_steps and np.allclose(a.pos, b.pos)


def test_unknown_coordinates_are_refused():
    mol = _mol("CCO")
    with pytest.raises(ValueError, match="unknown coordinates"):
        xtb_optimise(XtbCalculator.for_mol(mol), mol.GetConformer().GetPositions(), None, XtbOptions(coords="polar"))
