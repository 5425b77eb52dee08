"""Amides turned trans (confgen.chem.amides): the right bonds are found, the rotation is rigid and keeps stereo,
and GEOM's own trans amides are left exactly as they are."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdMolTransforms

from confgen.chem.amides import TRANS_MIN_DEG, amide_rotors, dihedrals, turn_amides_trans
from confgen.chem.stereo import check_stereo, stereo_spec

TRAIN10 = "geom_drugs_train10/true_conformers_train_first_10smis.sdf"
#: GEOM-Drugs train10 molecule with a stereocentre next to its secondary amide (151 reference conformers)
AMIDE_MOL = "CCN(CC)[C@H](C(=O)NC1CCCCC1)c1ccc(C)cc1"


@pytest.mark.parametrize("smiles, n", [
    ("CC(=O)NC", 1),  # N-methylacetamide
    ("NNC(=O)c1ccccc1", 1),  # hydrazide: carbonyl bonded to carbon
    ("CC(=O)Nc1ccc(C(=O)NC2CCCCC2)cc1", 2),
    ("O=C1CCCN1", 0),  # lactam: the C-N bond is in a ring
    ("CN(C)C(C)=O", 0),  # tertiary: no N-H
    ("CNC(=O)NC", 0),  # urea
    ("CNC(=O)OC", 0),  # carbamate
    ("CC(=S)NC", 0),  # thioamide
])
def test_rotors_are_the_acyclic_secondary_amides_of_carbon_carbonyls(smiles, n):
    rotors = amide_rotors(Chem.AddHs(Chem.MolFromSmiles(smiles)))
    assert len(rotors) == n
    for quad, moving in zip(rotors.quads, rotors.moving):
        assert quad[1] not in moving or quad[2] not in moving  # one side of the C-N bond only
        assert 2 * len(moving) <= Chem.AddHs(Chem.MolFromSmiles(smiles)).GetNumAtoms()


def _geom_conformers(shared_data, smiles):
    key = Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    mols = [m for m in Chem.SDMolSupplier(str(shared_data / TRAIN10), removeHs=False)
            if m is not None and Chem.MolToSmiles(Chem.RemoveHs(m)) == key]
    assert len(mols) > 10
    return mols[0], np.stack([m.GetConformer().GetPositions() for m in mols])


def test_geom_trans_amides_are_left_untouched(shared_data):
    mol, pos = _geom_conformers(shared_data, AMIDE_MOL)
    rotors = amide_rotors(mol)
    assert len(rotors) == 1
    phi = np.rad2deg(np.abs(dihedrals(pos, rotors.quads)))
    trans = phi[:, 0] >= TRANS_MIN_DEG
    assert trans.mean() > 0.9  # GEOM's amides are trans
    out, turned = turn_amides_trans(rotors, pos)
    assert (turned[trans] == 0).all()
    np.testing.assert_array_equal(out[trans], pos[trans])


def test_cis_amides_are_turned_trans_rigidly_with_stereo_kept(shared_data):
    mol, pos = _geom_conformers(shared_data, AMIDE_MOL)
    rotors = amide_rotors(mol)
    o, c, n, h = (int(i) for i in rotors.quads[0])
    rng = np.random.default_rng(0)
    cis = []
    for p in pos[:12]:  # make the amide cis or twisted with RDKit's own dihedral setter
        m = Chem.Mol(mol)
        conf = m.GetConformer()
        conf.SetPositions(p)
        rdMolTransforms.SetDihedralDeg(conf, o, c, n, h, float(rng.uniform(-120, 120)))
        cis.append(conf.GetPositions())
    cis = np.stack(cis)
    out, turned = turn_amides_trans(rotors, cis)
    assert (turned == 1).all()
    np.testing.assert_allclose(np.abs(np.rad2deg(dihedrals(out, rotors.quads))), 180.0, atol=1e-6)
    for k in range(len(out)):  # RDKit measures the same dihedral
        m = Chem.Mol(mol)
        m.GetConformer().SetPositions(out[k])
        assert abs(abs(rdMolTransforms.GetDihedralDeg(m.GetConformer(), o, c, n, h)) - 180.0) < 1e-6
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()])
    length = lambda x: np.linalg.norm(x[:, bonds[:, 0]] - x[:, bonds[:, 1]], axis=-1)  # noqa: E731
    np.testing.assert_allclose(length(out), length(cis), atol=1e-9)
    side = rotors.moving[0]
    inner = lambda x: np.linalg.norm(x[:, side, None] - x[:, None, side], axis=-1)  # noqa: E731
    np.testing.assert_allclose(inner(out), inner(cis), atol=1e-9)  # the moved side moved as one body
    spec = stereo_spec(mol)
    assert spec.num_centers == 1 and check_stereo(spec, out).ok.all()
    for k in range(3):  # and RDKit perceives the input's stereo from the turned coordinates
        m = Chem.Mol(mol)
        m.GetConformer().SetPositions(out[k])
        Chem.AssignStereochemistryFrom3D(m)
        assert Chem.MolToSmiles(Chem.RemoveHs(m)) == Chem.MolToSmiles(Chem.MolFromSmiles(AMIDE_MOL))
