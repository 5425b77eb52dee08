"""Equivariance of the backbones and the score model (float64, to 1e-6), on real QM9 molecules."""

from pathlib import Path

import pytest
import torch
from rdkit import Chem

from confgen.config import Config
from confgen.data import collate, featurize_mol
from confgen.data.dataset import load_shard
from confgen.models import BACKBONES, ScoreModel, build_model
from confgen.noise import remove_com

TINY = Path(__file__).parent / "data" / "tiny_qm9"
TOL = 1e-6


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rotation(seed: int, proper: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    if (torch.det(q) > 0) != proper:
        q[:, 0] = -q[:, 0]
    return q


def _real_graphs(n=3):
    graphs = load_shard(TINY / "val_00000.pt")[:n]
    return graphs


def _model(backbone: str, cutoff: float = 3.0) -> ScoreModel:
    torch.manual_seed(0)
    cfg = Config()
    cfg.model.backbone = backbone
    cfg.model.hidden_dim = 32
    cfg.model.num_layers = 3
    cfg.model.cutoff = cutoff
    return build_model(cfg).double().eval()


def _noisy_batch(seed=0, sigma=0.7):
    graphs = _real_graphs()
    batch = collate(graphs)
    g = torch.Generator().manual_seed(seed)
    pos = torch.cat([gr.pos[0] for gr in graphs]).double()
    pos = pos + sigma * torch.randn(pos.shape, generator=g, dtype=torch.float64)
    sig = torch.full((pos.shape[0],), sigma, dtype=torch.float64)
    return batch, pos, sig


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("sigma", [0.02, 0.7, 8.0])
def test_score_model_rotation_translation_equivariance(backbone, sigma):
    model = _model(backbone)
    batch, pos, sig = _noisy_batch(sigma=sigma)
    q = _rotation(1)
    t = torch.tensor([3.0, -7.0, 11.0], dtype=torch.float64)
    with torch.no_grad():
        out = model(batch, pos, sig)
        out_rt = model(batch, pos @ q.T + t, sig)
    assert out.abs().max() > 1e-3
    torch.testing.assert_close(out_rt, out @ q.T, atol=TOL, rtol=0)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_score_model_output_is_centred_and_scales_with_sigma(backbone):
    model = _model(backbone)
    batch, pos, sig = _noisy_batch()
    with torch.no_grad():
        out = model(batch, pos, sig)
    torch.testing.assert_close(remove_com(out, batch.batch), out, atol=1e-12, rtol=0)


def test_egnn_reflection_equivariance():
    model = _model("egnn")
    batch, pos, sig = _noisy_batch()
    r = _rotation(2, proper=False)
    with torch.no_grad():
        out = model(batch, pos, sig)
        out_r = model(batch, pos @ r.T, sig)
    torch.testing.assert_close(out_r, out @ r.T, atol=TOL, rtol=0)


def test_clofnet_distinguishes_mirror_images():
    """ClofNet is SE(3)- but not E(3)-equivariant: the mirrored input is not scored as the mirrored output."""
    model = _model("clofnet")
    batch, pos, sig = _noisy_batch()
    r = _rotation(2, proper=False)
    with torch.no_grad():
        out = model(batch, pos, sig)
        out_r = model(batch, pos @ r.T, sig)
    diff = (out_r - out @ r.T).norm(dim=-1).mean()
    assert diff > 1e-2 * out.norm(dim=-1).mean()


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_score_model_atom_permutation_equivariance(backbone):
    """Renumbering the atoms of an RDKit Mol permutes the score (graph rebuilt by the featuriser)."""
    model = _model(backbone)
    mol = Chem.AddHs(Chem.MolFromSmiles("C[C@@H](N)C(=O)OCC=C"))
    from rdkit.Chem import AllChem
    AllChem.EmbedMolecule(mol, randomSeed=7)
    pos = torch.tensor(mol.GetConformer().GetPositions(), dtype=torch.float64)
    pos = pos + 0.3 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    perm = torch.randperm(mol.GetNumAtoms(), generator=torch.Generator().manual_seed(5)).tolist()
    mol_p = Chem.RenumberAtoms(mol, perm)  # atom k of mol_p is atom perm[k] of mol
    out = model.score(mol, pos, 0.3)
    out_p = model.score(mol_p, pos[perm], 0.3)
    torch.testing.assert_close(out_p, out[perm], atol=TOL, rtol=0)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_backbone_contract_equivariance(backbone):
    """Backbone alone: (h, pos, edge_index, edge_attr) -> (h invariant, vec rotated, permuted)."""
    torch.manual_seed(0)
    net = BACKBONES[backbone](hidden_dim=16, edge_dim=8, num_layers=3, num_rbf=8).double()
    graph = featurize_mol(Chem.AddHs(Chem.MolFromSmiles("OC(=O)c1ccccc1N")))
    n, e = graph.num_nodes, graph.num_edges
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, 16, generator=g, dtype=torch.float64)
    ea = torch.randn(e, 8, generator=g, dtype=torch.float64)
    pos = 2.0 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    ei = graph.edge_index
    h1, v1 = net(h, pos, ei, ea)
    assert h1.shape == (n, 16) and v1.shape == (n, 3)
    q, t = _rotation(3), torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64)
    h2, v2 = net(h, pos @ q.T + t, ei, ea)
    torch.testing.assert_close(v2, v1 @ q.T, atol=TOL, rtol=0)
    torch.testing.assert_close(h2, h1, atol=TOL, rtol=0)
    perm = torch.randperm(n, generator=g)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    h3, v3 = net(h[perm], pos[perm], inv[ei], ea)
    torch.testing.assert_close(v3, v1[perm], atol=TOL, rtol=0)
    torch.testing.assert_close(h3, h1[perm], atol=TOL, rtol=0)


def test_default_sizes_are_small():
    for backbone in BACKBONES:
        cfg = Config()
        cfg.model.backbone = backbone
        n = sum(p.numel() for p in build_model(cfg).parameters())
        assert n < 5_000_000
