"""Graph layer (confgen.data.graph): PyG batches, all pairs, radius edges (both paths), merging radius edges."""

import pytest
import torch
from rdkit import Chem
from torch_geometric.data import Batch

from confgen.data import EDGE_FEATURE_DIM, featurize_mol
from confgen.data import graph as graph_mod
from confgen.data.features import EDGE_TYPE_RADIUS
from confgen.data.graph import all_pairs, graph_index, merge_radius_edges, radius_graph


def _mol(smi):
    return Chem.AddHs(Chem.MolFromSmiles(smi))


def _brute_force(pos, r, ptr):
    out = []
    for a, b in zip(ptr[:-1].tolist(), ptr[1:].tolist()):
        for i in range(a, b):
            for j in range(a, b):
                if i != j and (pos[i] - pos[j]).pow(2).sum() < r * r:
                    out.append([i, j])
    return out


def test_radius_graph_matches_brute_force_in_order():
    torch.manual_seed(0)
    ptr = torch.tensor([0, 5, 12])
    pos = torch.randn(12, 3) * 2
    got = radius_graph(pos, 2.5, ptr)
    assert got.t().tolist() == _brute_force(pos, 2.5, ptr)  # same edges, lexicographic order
    assert all_pairs(ptr).shape[1] == 5 * 4 + 7 * 6
    assert all_pairs(ptr).t().tolist() == _brute_force(pos, 1e9, ptr)
    assert torch.equal(radius_graph(pos, 2.5, ptr, pairs=all_pairs(ptr)), got)
    assert all_pairs(torch.tensor([0])).shape == (2, 0)


def test_torch_cluster_path_gives_the_fallback_edges(monkeypatch):
    """With torch_cluster, PyG's candidates (any order, pairs at exactly r included) are filtered and sorted to
    the fallback's edges; simulated here, since torch_cluster has no wheel on this machine."""
    torch.manual_seed(1)
    ptr = torch.tensor([0, 6, 6, 15])
    pos = torch.randn(15, 3) * 1.5
    pos[1] = pos[0] + torch.tensor([2.0, 0.0, 0.0])  # a pair at exactly the cutoff: excluded (strict <)
    expected = radius_graph(pos, 2.0, ptr)

    def fake_pyg(p, r, ptr_):
        cand = torch.tensor([(i, j) for i, j in _brute_force(p, r * 1.0001, ptr_)]).t()
        return cand[:, torch.randperm(cand.shape[1])]

    monkeypatch.setattr(graph_mod, "HAS_TORCH_CLUSTER", True)
    monkeypatch.setattr(graph_mod, "pyg_radius_candidates", fake_pyg)
    got = radius_graph(pos, 2.0, ptr)
    assert torch.equal(got, expected)
    assert [0, 1] not in got.t().tolist()


def test_merge_radius_edges_adds_only_new_pairs_typed_radius():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    edge_attr = torch.rand(4, EDGE_FEATURE_DIM)
    radius = torch.tensor([[0, 0, 1, 2, 3], [1, 3, 0, 3, 0]])
    ei, ea = merge_radius_edges(edge_index, edge_attr, radius, 4)
    assert ei.t().tolist() == [[0, 1], [1, 0], [1, 2], [2, 1], [0, 3], [2, 3], [3, 0]]  # graph edges first, in order
    assert torch.equal(ea[:4], edge_attr)
    expect_new = torch.zeros(3, EDGE_FEATURE_DIM)
    expect_new[:, EDGE_TYPE_RADIUS] = 1.0
    assert torch.equal(ea[4:], expect_new)
    ei2, ea2 = merge_radius_edges(edge_index, edge_attr, torch.zeros(2, 0, dtype=torch.long), 4)
    assert torch.equal(ei2, edge_index) and torch.equal(ea2, edge_attr)


def test_batch_from_data_list_offsets_and_graph_index():
    a, b = featurize_mol(_mol("CO")), featurize_mol(_mol("CCN"))
    batch = Batch.from_data_list([a, b])
    assert batch.num_graphs == 2 and batch.num_nodes == a.num_nodes + b.num_nodes
    assert torch.equal(batch.edge_index[:, :a.num_edges], a.edge_index)
    assert torch.equal(batch.edge_index[:, a.num_edges:], b.edge_index + a.num_nodes)
    assert torch.equal(batch.x, torch.cat([a.x, b.x])) and torch.equal(batch.z, torch.cat([a.z, b.z]))
    assert torch.equal(batch.edge_attr, torch.cat([a.edge_attr, b.edge_attr]))
    assert batch.batch.tolist() == [0] * a.num_nodes + [1] * b.num_nodes
    assert batch.ptr.tolist() == [0, a.num_nodes, a.num_nodes + b.num_nodes]
    assert batch.smiles == ["CO", "CCN"]
    bi, ptr, g = graph_index(batch)
    assert bi is batch.batch and ptr is batch.ptr and g == 2
    bi, ptr, g = graph_index(a)  # a single Data is one graph
    assert bi.tolist() == [0] * a.num_nodes and ptr.tolist() == [0, a.num_nodes] and g == 1


@pytest.mark.parametrize("n", [1, 2])
def test_radius_graph_degenerate_graphs(n):
    ptr = torch.tensor([0, n])
    pos = torch.zeros(n, 3)
    assert radius_graph(pos, 1.0, ptr).shape == (2, n * (n - 1))
