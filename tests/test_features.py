import numpy as np
import pytest
import torch
from rdkit import Chem

from confgen.data import ATOM_FEATURE_DIM, EDGE_FEATURE_DIM, collate, featurize_mol
from confgen.data.features import EDGE_TYPE_2HOP, EDGE_TYPE_3HOP
from confgen.data.graph import all_pairs, radius_graph
from confgen.errors import InputError


def _mol(smi):
    return Chem.AddHs(Chem.MolFromSmiles(smi))


def test_shapes_and_hops_match_rdkit_distance_matrix():
    mol = _mol("CC(=O)Nc1ccc(O)cc1")
    g = featurize_mol(mol)
    assert g.atom_feat.shape == (mol.GetNumAtoms(), ATOM_FEATURE_DIM)
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
    assert not torch.equal(r.atom_feat, s.atom_feat)
    mol = _mol("C[C@H](N)O")
    perm = list(reversed(range(mol.GetNumAtoms())))
    renum = Chem.RenumberAtoms(mol, perm)
    g2 = featurize_mol(renum)
    assert torch.equal(g2.atom_feat, r.atom_feat[perm])


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


def test_radius_graph_matches_brute_force():
    torch.manual_seed(0)
    ptr = torch.tensor([0, 5, 12])
    pos = torch.randn(12, 3) * 2
    got = radius_graph(pos, 2.5, ptr)
    expected = set()
    for a, b in [(0, 5), (5, 12)]:
        for i in range(a, b):
            for j in range(a, b):
                if i != j and (pos[i] - pos[j]).norm() < 2.5:
                    expected.add((i, j))
    assert set(map(tuple, got.t().tolist())) == expected
    assert all_pairs(ptr).shape[1] == 5 * 4 + 7 * 6


def test_collate_offsets():
    a, b = featurize_mol(_mol("CO")), featurize_mol(_mol("CCN"))
    batch = collate([a, b])
    assert batch.num_graphs == 2
    assert batch.edge_index[:, a.num_edges:].min() == a.num_nodes
    assert batch.batch.tolist() == [0] * a.num_nodes + [1] * b.num_nodes
