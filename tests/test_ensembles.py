import importlib.util

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem, rdMolAlign

from confgen.data.ensembles import EnsembleOptions, build_ensemble, build_ensembles
from confgen.errors import ConfgenError, InputError

R_KCAL = 0.0019872043


def _heavy_rmsd(mol, i, j):
    heavy = Chem.RemoveHs(mol)
    return rdMolAlign.GetBestRMS(heavy, heavy, i, j)


def _mmff_energy(mol, conf_id):
    props = AllChem.MMFFGetMoleculeProperties(mol)
    return AllChem.MMFFGetMoleculeForceField(mol, props, confId=conf_id).CalcEnergy()


def test_mmff_ensemble_pruned_weighted_and_stereo_kept():
    smi = "C[C@H](NC(=O)CCc1ccccc1)C(=O)OCC"
    opts = EnsembleOptions(n_confs=6, oversample=3, rmsd_threshold=0.5, seed=7)
    ens = build_ensemble(Chem.MolFromSmiles(smi), opts)
    mol = ens.mol
    k = mol.GetNumConformers()
    assert 2 <= k <= 6 and ens.n_embedded == 18
    assert all(a.GetNumImplicitHs() == 0 for a in mol.GetAtoms())
    # energies: relative MMFF94 energies of the returned (minimised) geometries, lowest first
    e = np.array([_mmff_energy(mol, c.GetId()) for c in mol.GetConformers()])
    np.testing.assert_allclose(ens.energies, e - e.min(), atol=1e-3)
    assert ens.energies[0] == 0.0 and np.all(np.diff(ens.energies) >= 0)
    w = np.exp(-(e - e.min()) / (R_KCAL * 298.15))
    np.testing.assert_allclose(ens.weights, w / w.sum(), rtol=1e-6)
    # pruning: every pair is at least the threshold apart (heavy atoms, symmetry-aware, RDKit's GetBestRMS)
    for i in range(k):
        for j in range(i + 1, k):
            assert _heavy_rmsd(mol, i, j) >= 0.5 - 1e-6
    # stereo from the 3D geometry equals the input's
    for conf in mol.GetConformers():
        m = Chem.Mol(mol, confId=conf.GetId())
        Chem.AssignStereochemistryFrom3D(m, confId=conf.GetId())
        assert Chem.MolToSmiles(Chem.RemoveHs(m)) == Chem.MolToSmiles(Chem.MolFromSmiles(smi))


def test_seed_zero_gives_distinct_conformers_and_seeds_are_reproducible():
    mol = Chem.MolFromSmiles("CCCCOc1ccccc1C(=O)NCC")
    opts = EnsembleOptions(method="etkdg", n_confs=4, oversample=1, rmsd_threshold=0.0, select="energy")
    a = build_ensemble(mol, opts, seed=0)
    assert a.mol.GetNumConformers() == 4
    assert _heavy_rmsd(a.mol, 0, 1) > 0.05  # RDKit 2026.09 would give identical conformers for randomSeed=0
    b = build_ensemble(mol, opts, seed=0)
    np.testing.assert_allclose(a.mol.GetConformer(2).GetPositions(), b.mol.GetConformer(2).GetPositions())
    assert a.energies is None and a.weights == [0.25] * 4


def test_energy_window_and_selection():
    mol = Chem.MolFromSmiles("CCCCCCOC(=O)c1ccccc1")
    window = build_ensemble(mol, EnsembleOptions(n_confs=20, oversample=1, energy_window=1.0, rmsd_threshold=0.0))
    assert max(window.energies) <= 1.0
    full = build_ensemble(mol, EnsembleOptions(n_confs=20, oversample=1, rmsd_threshold=0.0))
    assert max(full.energies) > 1.0 and full.mol.GetNumConformers() > window.mol.GetNumConformers()
    low = build_ensemble(mol, EnsembleOptions(n_confs=4, oversample=4, rmsd_threshold=0.1, select="energy"))
    div = build_ensemble(mol, EnsembleOptions(n_confs=4, oversample=4, rmsd_threshold=0.1, select="diverse"))

    def min_pair(m):
        n = m.GetNumConformers()
        return min(_heavy_rmsd(m, i, j) for i in range(n) for j in range(i + 1, n))

    assert min_pair(div.mol) > min_pair(low.mol)
    assert max(div.energies) >= max(low.energies)


def test_boron_falls_back_to_uff_and_bad_molecules_are_reported():
    ens = build_ensemble(Chem.MolFromSmiles("OB(O)c1ccc(CC)cc1"), EnsembleOptions(n_confs=2))
    assert ens.info["energy"] == "UFF" and ens.mol.GetNumConformers() >= 1
    errors = []
    out = build_ensembles([Chem.MolFromSmiles("CCO"), Chem.MolFromSmiles("[H][H]")],
                          EnsembleOptions(n_confs=2), workers=2, progress=False, errors=errors,
                          names=["a.smi:1", "a.smi:2"])
    assert out[0] is not None and out[1] is None
    assert len(errors) == 1 and str(errors[0]).startswith("a.smi:2") and "no heavy atoms" in str(errors[0])
    with pytest.raises(InputError, match="no heavy atoms"):
        build_ensembles([Chem.MolFromSmiles("[H][H]")], EnsembleOptions(n_confs=2), progress=False)
    with pytest.raises(ConfgenError, match="unknown ensemble method"):
        build_ensemble(Chem.MolFromSmiles("CCO"), EnsembleOptions(method="dft"))


@pytest.mark.skipif(importlib.util.find_spec("tblite") is None, reason="tblite not installed")
def test_xtb_minimisation_lowers_gfn2_energy():
    from tblite.interface import Calculator

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)NC"))
    AllChem.EmbedMolecule(mol, randomSeed=3)
    AllChem.MMFFOptimizeMolecule(mol)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])

    def gfn2(pos):
        calc = Calculator("GFN2-xTB", numbers, pos / 0.529177210903)
        calc.set("verbosity", 0)
        return calc.singlepoint().get("energy")

    e_mmff = gfn2(mol.GetConformer().GetPositions())
    from confgen.chem.xtb import xtb_minimise

    energies, reasons = xtb_minimise(mol, level="normal")
    assert reasons == [None]
    e_xtb = gfn2(mol.GetConformer().GetPositions())
    assert e_xtb < e_mmff - 1e-4
    assert energies[0] == pytest.approx(e_xtb, abs=1e-6)


def test_mmff_does_not_change_the_molecule_graph():
    """MMFF typing re-perceives aromaticity in place; the ensemble must keep RDKit's chemistry of the input."""
    from confgen.chem.rmsd import rmsd_matrix

    smi = "CCc1c(C)nc2[nH]nc(-c3ccccc3)n2c1=O"  # geom_drugs_tora3d7 mol00: MMFF calls the pyrimidinone aromatic
    ref = Chem.AddHs(Chem.MolFromSmiles(smi))
    AllChem.EmbedMolecule(ref, randomSeed=11)
    ens = build_ensemble(Chem.MolFromSmiles(smi), EnsembleOptions(n_confs=2, oversample=1, rmsd_threshold=0.0))
    assert [a.GetIsAromatic() for a in ens.mol.GetAtoms()] == [a.GetIsAromatic() for a in ref.GetAtoms()]
    assert [b.GetBondType() for b in ens.mol.GetBonds()] == [b.GetBondType() for b in ref.GetBonds()]
    assert rmsd_matrix(ref, ens.mol).shape == (1, ens.mol.GetNumConformers())


@pytest.mark.skipif(importlib.util.find_spec("tblite") is None, reason="tblite not installed")
def test_xtb_candidates_can_be_limited_to_an_mmff94_window():
    mol = Chem.MolFromSmiles("CCCCOC(=O)CCOC")
    base = dict(method="xtb", n_confs=4, oversample=4, xtb_level="loose", seed=5)
    full = build_ensemble(mol, EnsembleOptions(**base))
    spread = np.ptp(full.info["mmff_energy_kcal"])
    assert spread > 0.5  # the diverse choice reaches beyond 0.5 kcal/mol of MMFF94 ...
    low = build_ensemble(mol, EnsembleOptions(**base, xtb_mmff_window=0.5))
    assert np.ptp(low.info["mmff_energy_kcal"]) <= 0.5 + 1e-9  # ... the window does not
    assert min(low.info["mmff_energy_kcal"]) == pytest.approx(min(full.info["mmff_energy_kcal"]))
    assert 1 <= low.info["xtb_minimised"] < full.info["xtb_minimised"]
    with pytest.raises(ConfgenError, match="MMFF94 window"):
        build_ensemble(mol, EnsembleOptions(**base, xtb_mmff_window=-1.0))
