"""Validity: the numpy bounds check reproduces PoseBusters' geometry verdicts; PoseBusters runs offline."""

import numpy as np
import pytest
from rdkit import Chem

from confgen.validity import check_validity, geometry_bounds, within_bounds

TRAIN10 = "geom_drugs_train10/true_conformers_train_first_10smis.sdf"


@pytest.fixture(scope="module")
def geom_confs(shared_data):
    mols = [m for m in Chem.SDMolSupplier(str(shared_data / TRAIN10), removeHs=False) if m is not None]
    by_smiles = {}
    for m in mols:
        by_smiles.setdefault(m.GetProp("geom_smiles"), []).append(m)
    return [group[:2] for group in by_smiles.values()]


def test_bounds_check_agrees_with_posebusters(geom_confs):
    from posebusters.modules.distance_geometry import check_geometry

    rng = np.random.default_rng(0)
    verdicts = {True: 0, False: 0}
    for group in geom_confs:
        bounds = geometry_bounds(group[0])
        for m in group:
            for scale in (0.0, 0.1, 0.3):
                mm = Chem.Mol(m)
                pos = m.GetConformer().GetPositions() + rng.normal(size=(m.GetNumAtoms(), 3)) * scale
                mm.GetConformer().SetPositions(pos)
                r = check_geometry(mm, threshold_bad_bond_length=0.25, threshold_clash=0.3,
                                   threshold_bad_angle=0.25,
                                   bound_matrix_params=dict(set15bounds=True, scaleVDW=True,
                                                            doTriangleSmoothing=True, useMacrocycle14config=False))
                r = r["results"]
                pb = bool(r["bond_lengths_within_bounds"] and r["bond_angles_within_bounds"]
                          and r["no_internal_clash"])
                assert bool(within_bounds(bounds, pos)[0]) == pb
                verdicts[pb] += 1
    assert verdicts[True] >= 15 and verdicts[False] >= 15  # both outcomes exercised


def test_posebusters_mol_checks_per_conformer(geom_confs):
    group = geom_confs[0]
    mol = Chem.Mol(group[0])
    for m in group[1:]:
        mol.AddConformer(m.GetConformer(), assignId=True)
    stretched = Chem.Conformer(mol.GetConformer(0))
    bond = mol.GetBondWithIdx(0)
    a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
    pa, pb = np.array(stretched.GetAtomPosition(a)), np.array(stretched.GetAtomPosition(b))
    stretched.SetAtomPosition(b, (pa + 1.8 * (pb - pa)).tolist())  # bond 80 % too long
    cid = mol.AddConformer(stretched, assignId=True)
    results = check_validity(mol)
    assert [r.passed for r in results] == [True] * (len(group)) + [False], [r.failed for r in results]
    assert "bond_lengths" in results[-1].failed
    assert check_validity(mol, conf_ids=[cid])[0].failed == results[-1].failed


def test_separate_fragments_removes_overlap_and_keeps_each_fragment_rigid():
    from rdkit.Chem import AllChem

    from confgen.validity import fragment_clearance, separate_fragments

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)[O-].[NH4+]"))
    assert AllChem.EmbedMolecule(mol, randomSeed=7) == 0
    frags = [np.array(f) for f in sorted(Chem.GetMolFrags(mol), key=len, reverse=True)]
    pos = mol.GetConformer().GetPositions()
    pos[frags[1]] += pos[frags[0]].mean(0) - pos[frags[1]].mean(0)  # ammonium on top of the acetate
    radii = np.array([Chem.GetPeriodicTable().GetRvdw(a.GetAtomicNum()) for a in mol.GetAtoms()])
    assert fragment_clearance(pos, frags, radii) < 0.5
    new = separate_fragments(pos, frags, radii)
    assert fragment_clearance(new, frags, radii) >= 1.0
    for f in frags:  # rigid: distances inside each fragment unchanged
        inner = lambda p: np.linalg.norm(p[f][:, None] - p[f][None], axis=-1)  # noqa: E731
        assert np.allclose(inner(new), inner(pos))
    assert np.allclose(new[frags[0]], pos[frags[0]])  # the largest fragment stays
    assert np.allclose(separate_fragments(new, frags, radii), new)  # apart already: nothing moves
