import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem
from torch_geometric.data import Data

from confgen.data import ATOM_FEATURE_DIM, EDGE_FEATURE_DIM, featurize_mol
from confgen.data.features import EDGE_TYPE_2HOP, EDGE_TYPE_3HOP
from confgen.errors import InputError


def _mol(smi):
    return Chem.AddHs(Chem.MolFromSmiles(smi))


def test_shapes_and_hops_match_rdkit_distance_matrix():
    mol = _mol("CC(=O)Nc1ccc(O)cc1")
    g = featurize_mol(mol)
    assert isinstance(g, Data) and g.x.dtype == torch.float32
    assert g.x.shape == (mol.GetNumAtoms(), ATOM_FEATURE_DIM)
    assert g.z.dtype == torch.long and g.z.tolist() == [a.GetAtomicNum() for a in mol.GetAtoms()]
    assert g.num_nodes == mol.GetNumAtoms() and "conformers" not in g and g.smiles == "CC(=O)Nc1ccc(O)cc1"
    assert g.edge_attr.shape == (g.num_edges, EDGE_FEATURE_DIM)
    dm = Chem.GetDistanceMatrix(mol)
    src, dst = g.edge_index.numpy()
    expected = {(i, j) for i, j in zip(*np.nonzero((dm >= 1) & (dm <= 3)))}
    assert set(zip(src.tolist(), dst.tolist())) == expected
    hop = dm[src, dst]
    assert (g.edge_attr[:, EDGE_TYPE_2HOP].numpy() == (hop == 2)).all()
    assert (g.edge_attr[:, EDGE_TYPE_3HOP].numpy() == (hop == 3)).all()


def test_chirality_is_permutation_invariant_and_distinguishes_enantiomers():
    r = featurize_mol(_mol("C[C@H](N)O"))
    s = featurize_mol(_mol("C[C@@H](N)O"))
    assert not torch.equal(r.x, s.x)
    mol = _mol("C[C@H](N)O")
    perm = list(reversed(range(mol.GetNumAtoms())))
    renum = Chem.RenumberAtoms(mol, perm)
    g2 = featurize_mol(renum)
    assert torch.equal(g2.x, r.x[perm])


def test_charged_salt_and_large_molecule():
    g = featurize_mol(_mol("C[N+](C)(C)C.[Cl-]"))
    assert g.num_nodes == 18
    big = _mol("C" * 150)
    assert featurize_mol(big).num_nodes == big.GetNumAtoms()


@pytest.mark.parametrize("smi,msg", [("[Na+].[Cl-]", "unsupported element Na"), ("[H][H]", "no heavy atoms")])
def test_bad_molecules(smi, msg):
    mol = Chem.MolFromSmiles(smi)
    with pytest.raises(InputError, match=msg):
        featurize_mol(Chem.AddHs(mol))


def test_implicit_hydrogens_rejected():
    with pytest.raises(InputError, match="implicit hydrogens"):
        featurize_mol(Chem.MolFromSmiles("CCO"))


def test_with_pos_keeps_every_conformer():
    mol = _mol("CCO")
    ids = AllChem.EmbedMultipleConfs(mol, 3, randomSeed=1)
    g = featurize_mol(mol, with_pos=True)
    assert g.conformers.shape == (3, mol.GetNumAtoms(), 3) and g.conformers.dtype == torch.float32
    for k, cid in enumerate(ids):
        np.testing.assert_allclose(g.conformers[k].numpy(), mol.GetConformer(cid).GetPositions(), atol=1e-6)
    assert "conformers" not in featurize_mol(_mol("CCO"), with_pos=True)  # no conformers: no field
