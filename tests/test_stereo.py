"""Stereo checks agree with RDKit's assignment from 3D; mirroring repairs enantiomers, nothing else."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from confgen.stereo import check_stereo, mirror, repair_stereo, stereo_spec

MOLECULES = [
    "C[C@H](N)O",
    "C[S@](=O)c1ccccc1",  # three-coordinate centre
    "O=C1N[C@@H](Cc2ccccc2)[C@@H](c2ccco2)O1",  # GEOM-Drugs mol06 of shared data
    "C[C@H]1CC[C@@H](C)CC1",  # ring cis/trans, no CIP label
    "C/C=C/C(=O)O",
    "F/C(Cl)=C(\\Br)I",
    "C1CCCC/C=C\\CCC1",  # ring double bond
    "CC/C=C\\C[C@@H](O)/C=C/[C@H](C)Cl",
    "CC1=CC=C(C=C1)/C(=C\\CN2CCCC2)/C3=CC=CC(=N3)/C=C/C(=O)O",
    "CCO[C@H]1C[C@H]2C[C@@]12C",  # GEOM-QM9 test molecule: bicyclo[1.1.0]butane bridgeheads (inverted centres)
]


def _embed(smiles: str, n: int = 4, seed: int = 7):
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    cids = list(AllChem.EmbedMultipleConfs(mol, n, randomSeed=seed))
    assert len(cids) == n
    return mol, np.stack([mol.GetConformer(c).GetPositions() for c in cids])


def _rdkit_says_same(mol: Chem.Mol, pos: np.ndarray) -> bool:
    """RDKit's own verdict: stereo perceived from 3D gives the input's canonical isomeric SMILES."""
    m = Chem.Mol(mol)
    m.RemoveAllConformers()
    conf = Chem.Conformer(m.GetNumAtoms())
    for i, p in enumerate(pos):
        conf.SetAtomPosition(i, p.tolist())
    m.AddConformer(conf)
    Chem.AssignStereochemistryFrom3D(m)
    return Chem.MolToSmiles(Chem.RemoveHs(m)) == Chem.MolToSmiles(Chem.RemoveHs(mol))


@pytest.mark.parametrize("smiles", MOLECULES)
def test_check_agrees_with_rdkit_and_mirror_repairs_enantiomers(smiles):
    mol, pos = _embed(smiles)
    spec = stereo_spec(mol)
    assert not spec.empty
    chk = check_stereo(spec, pos)
    assert chk.ok.all()  # ETKDG keeps the specified stereo
    assert all(_rdkit_says_same(mol, p) for p in pos)
    mirrored = mirror(pos)
    chk_m = check_stereo(spec, mirrored)
    if spec.num_centers:
        assert not chk_m.ok.any() and chk_m.mirror_fixes.all()
        fixed, ok, was_mirrored = repair_stereo(spec, mirrored)
        assert ok.all() and was_mirrored.all()
        assert all(_rdkit_says_same(mol, p) for p in fixed)
        if smiles != "C[C@H]1CC[C@@H](C)CC1":  # achiral: its mirror image is the same molecule
            assert not any(_rdkit_says_same(mol, p) for p in mirrored)
    else:  # double bonds only: a mirror image keeps E/Z
        assert chk_m.ok.all()


@pytest.mark.parametrize("smiles", ["CCO[C@H]1C[C@H]2C[C@@]12C", "O=C1C[C@@H]2C[C@]12CCO"])
def test_inverted_bridgehead_centres_after_mmff(smiles):
    # MMFF94 puts all four neighbours of a bicyclobutane bridgehead on one side of it: the centre -> neighbour
    # volume is then ~0 (these conformers were dropped as "stereo changed"); RDKit and the neighbour
    # tetrahedron still see the right configuration, and its mirror image as inverted.
    mol, _ = _embed(smiles)
    AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
    pos = np.stack([c.GetPositions() for c in mol.GetConformers()])
    assert all(_rdkit_says_same(mol, p) for p in pos)
    spec = stereo_spec(mol)
    assert check_stereo(spec, pos).ok.all()
    chk_m = check_stereo(spec, mirror(pos))
    assert not chk_m.ok.any() and chk_m.mirror_fixes.all()


def test_diastereomer_and_wrong_double_bond_are_not_repaired_by_a_mirror():
    # same atom order, one centre inverted
    mol, _ = _embed("CC/C=C\\C[C@@H](O)/C=C/[C@H](C)Cl")
    spec = stereo_spec(mol)
    cases = [
        ("CC/C=C\\C[C@H](O)/C=C/[C@H](C)Cl", False),  # one centre inverted: a diastereomer
        ("CC/C=C/C[C@@H](O)/C=C/[C@H](C)Cl", False),  # Z bond made E
        ("CC/C=C\\C[C@H](O)/C=C/[C@@H](C)Cl", True),  # both centres inverted: the enantiomer
    ]
    for wrong, mirror_fixes in cases:
        _, pos = _embed(wrong, n=3, seed=3)
        chk = check_stereo(spec, pos)
        assert not chk.ok.any()
        assert not any(_rdkit_says_same(mol, p) for p in pos)
        assert chk.mirror_fixes.all() == mirror_fixes and chk.mirror_fixes.any() == mirror_fixes
        fixed, ok, mirrored = repair_stereo(spec, pos)
        assert ok.all() == mirror_fixes and mirrored.all() == mirror_fixes
        assert all(_rdkit_says_same(mol, p) for p in fixed) == mirror_fixes


def test_flattened_centre_is_wrong_and_not_mirror_repairable():
    mol, pos = _embed("C[C@H](N)O", n=2)
    spec = stereo_spec(mol)
    flat = pos.copy()
    flat[..., 2] = 0.0  # every atom in one plane
    chk = check_stereo(spec, flat)
    assert not chk.ok.any() and not chk.mirror_fixes.any()


def test_unspecified_stereo_is_not_checked():
    mol, pos = _embed("CC(N)O")
    spec = stereo_spec(mol)
    assert spec.empty
    assert check_stereo(spec, pos).ok.all() and check_stereo(spec, mirror(pos)).ok.all()
    mol, pos = _embed("CC=CC(=O)O")
    assert stereo_spec(mol).empty


def test_check_agrees_with_rdkit_on_every_qm9_dft_geometry(shared_data):
    # GEOM-QM9 test molecules at their DFT minima, strained polycycles included: the centre volume alone (with a
    # margin) called 5 of these wrong, the neighbour tetrahedron alone 4; RDKit's perception is the arbiter.
    from confgen.evaluation import load_ensembles

    records, _, _ = load_ensembles(shared_data / "qm9" / "geom_qm9_test_matched_qm9_dft_geometry.csv",
                                   side="reference")
    checked = 0
    for rec in records:
        spec = stereo_spec(rec.mol)
        if spec.empty or not rec.mol.GetNumConformers():
            continue
        pos = np.stack([c.GetPositions() for c in rec.mol.GetConformers()])
        assert check_stereo(spec, pos).ok.all() == all(_rdkit_says_same(rec.mol, p) for p in pos), rec.smiles
        checked += 1
    assert checked > 600
