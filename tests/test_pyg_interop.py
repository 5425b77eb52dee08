"""A PyTorch Geometric user's view: confgen's dataset feeds their model, their Data feeds confgen's model."""

from pathlib import Path

import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GCNConv, global_mean_pool

from confgen.checkpoint import load_model
from confgen.data import ATOM_FEATURE_DIM, EDGE_FEATURE_DIM
from confgen.data.dataset import ConformerDataset

TINY = Path(__file__).parent / "data" / "tiny_qm9"


class UserModel(torch.nn.Module):
    """Somebody's own PyG model: GCN on the atom features, plus the mean distance to the centroid."""

    def __init__(self):
        super().__init__()
        self.conv = GCNConv(ATOM_FEATURE_DIM, 16)
        self.out = torch.nn.Linear(17, 1)

    def forward(self, data):
        h = self.conv(data.x, data.edge_index).relu()
        centroid = global_mean_pool(data.pos, data.batch)
        r = (data.pos - centroid[data.batch]).norm(dim=-1, keepdim=True)
        return self.out(torch.cat([global_mean_pool(h, data.batch), global_mean_pool(r, data.batch)], -1))


def test_confgen_dataset_feeds_a_pyg_model():
    ds = ConformerDataset(TINY, "val")
    item = ds[0]
    assert isinstance(item, Data)
    assert item.x.shape == (item.num_nodes, ATOM_FEATURE_DIM) and item.pos.shape == (item.num_nodes, 3)
    assert item.edge_attr.shape == (item.num_edges, EDGE_FEATURE_DIM) and item.z.shape == (item.num_nodes,)
    torch.manual_seed(0)
    model = UserModel()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    loader = DataLoader(ds, batch_size=8, shuffle=True)
    seen = 0
    for batch in loader:
        assert batch.pos.shape == (batch.num_nodes, 3) and batch.x.shape[0] == batch.num_nodes
        loss = (model(batch).squeeze(-1) - batch.z.new_zeros(batch.num_graphs).float()).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += batch.num_graphs
    assert seen == len(ds)


def test_a_users_data_feeds_the_confgen_model():
    """Hand-built Data (random features of confgen's widths) scores the same alone, batched, and through a
    DataLoader; a single Data needs no batch vector."""
    model = load_model(None)
    g = torch.Generator().manual_seed(0)
    graphs = []
    for n in (5, 9, 7):
        src, dst = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        keep = (src != dst) & ((src - dst).abs() <= 2)
        edge_index = torch.stack([src[keep], dst[keep]])
        edge_attr = torch.zeros(edge_index.shape[1], EDGE_FEATURE_DIM)
        edge_attr[:, 0] = 1.0
        x = (torch.rand(n, ATOM_FEATURE_DIM, generator=g) < 0.2).float()
        graphs.append(Data(x=x, edge_index=edge_index, edge_attr=edge_attr, pos=2 * torch.randn(n, 3, generator=g)))
    with torch.no_grad():
        alone = [model(d, d.pos, torch.full((d.num_nodes,), 0.3)) for d in graphs]
        batch = Batch.from_data_list(graphs)
        together = model(batch, batch.pos, torch.full((batch.num_nodes,), 0.3))
        via_loader = torch.cat([model(b, b.pos, torch.full((b.num_nodes,), 0.3))
                                for b in DataLoader(graphs, batch_size=2)])
    for d, s in zip(graphs, alone):
        assert s.shape == (d.num_nodes, 3) and torch.isfinite(s).all()
        torch.testing.assert_close(s.sum(0), torch.zeros(3), atol=1e-5, rtol=0)  # centred
    torch.testing.assert_close(together, torch.cat(alone), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(via_loader, torch.cat(alone), atol=1e-5, rtol=1e-5)
