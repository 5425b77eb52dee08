"""Noise-conditional score network: graph + coordinates + sigma -> score of the coordinates.

Two output parameterisations (``precond``), both on centred coordinates (the translation-free subspace):

* ``"eps"`` (ConfGF-style; the shipped models): positions are scaled by ``1 / sqrt(1 + sigma^2)`` before the
  backbone, which predicts ``vec`` ~ ``-eps`` at unit scale (``x_noisy = x + sigma * eps``); the score is
  ``vec / sigma``.
* ``"edm"`` (Karras et al. 2022, "EDM", section 5 and table 1): a denoiser
  ``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)`` with ``c_in = 1 / sqrt(sigma^2 + sigma_data^2)``,
  ``c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)``, ``c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)``
  and ``c_noise`` the Fourier embedding of ``ln sigma``; ``F`` is the backbone's equivariant displacement.
  The score is Tweedie's ``(D - x) / sigma^2 = -x / (sigma^2 + sigma_data^2) + sigma_data F / (sigma
  sqrt(sigma^2 + sigma_data^2))``: the exact score of an isotropic N(0, sigma_data^2) prior plus a learnt,
  rotation-equivariant, translation-invariant correction. At large sigma the network's target is the clean
  structure (scaled to unit variance), not the noise, which is what few-step samplers from pure noise need.
  With ``eps`` at ``sigma_data = 1`` the input scaling is the same; only the output differs.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch_geometric.data import Batch, Data

from confgen.data.features import ATOM_FEATURE_DIM, EDGE_FEATURE_DIM, featurize_mol
from confgen.data.graph import graph_index, merge_radius_edges, radius_graph
from confgen.models.clofnet import ClofNet
from confgen.models.egnn import EGNN
from confgen.models.layers import SigmaEmbedding, mlp
from confgen.noise import NoiseSchedule, remove_com

#: output parameterisations of :class:`ScoreModel`
PRECONDITIONINGS = ("eps", "edm")

#: backbone registry: name -> class with the contract
#: ``__init__(*, hidden_dim, edge_dim, num_layers, num_rbf)`` and
#: ``forward(h [N,H], pos [N,3], edge_index [2,E], edge_attr [E,F], batch=None) -> (h [N,H], vec [N,3])``.
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "egnn": EGNN,
    "clofnet": ClofNet,
}


class ScoreModel(nn.Module):
    """Score network ``s(x, sigma | graph)`` approximating grad_x log p_sigma(x).

    Args:
        backbone: name in :data:`BACKBONES`.
        hidden_dim: node/edge feature width.
        num_layers: backbone layers.
        cutoff: radius-edge cutoff in Angstrom (on the noisy coordinates; 0 = bond/extended edges only).
        num_rbf: radial basis size.
        sigma_embed_dim: Fourier features of log(sigma).
        sigma_max: largest training noise level.
        sigma_min: smallest training noise level.
        num_levels: number of levels of the geometric training schedule (:attr:`schedule`).
        atom_dim: atom feature width (featuriser's).
        edge_dim: edge feature width (featuriser's).
        precond: ``"eps"`` or ``"edm"`` (module docstring).
        sigma_data: data standard deviation per coordinate (Angstrom) of the ``"edm"`` preconditioning.
    """

    def __init__(self, *, backbone: str = "clofnet", hidden_dim: int = 64, num_layers: int = 4,
                 cutoff: float = 4.0, num_rbf: int = 16, sigma_embed_dim: int = 32, sigma_max: float = 10.0,
                 sigma_min: float = 0.01, num_levels: int = 50, atom_dim: int = ATOM_FEATURE_DIM,
                 edge_dim: int = EDGE_FEATURE_DIM, precond: str = "eps", sigma_data: float = 1.0):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r} (known: {', '.join(BACKBONES)})")
        if precond not in PRECONDITIONINGS:
            raise ValueError(f"unknown precond {precond!r} (known: {', '.join(PRECONDITIONINGS)})")
        if not sigma_data > 0:
            raise ValueError("sigma_data must be positive")
        self.backbone_name = backbone
        self.precond = precond
        self.sigma_data = float(sigma_data)
        self.cutoff = float(cutoff)
        # the schedule's levels (float32, descending) are stored in checkpoints as the buffer ``sigmas``; the EMA of
        # older confgen averaged it too, so a loaded buffer may differ from the config's levels in the last bits
        self.register_buffer("sigmas", NoiseSchedule(sigma_max, sigma_min, num_levels).sigmas(torch.float32))
        self.sigma_embed = SigmaEmbedding(sigma_embed_dim, hidden_dim)
        self.node_in = mlp([atom_dim + hidden_dim, hidden_dim, hidden_dim])
        self.edge_in = nn.Linear(edge_dim, hidden_dim)
        self.edge_sigma = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.edge_out = nn.Linear(hidden_dim, hidden_dim)
        self.backbone = BACKBONES[backbone](hidden_dim=hidden_dim, edge_dim=hidden_dim, num_layers=num_layers,
                                            num_rbf=num_rbf)

    @property
    def schedule(self) -> NoiseSchedule:
        """The training noise range as stored with the weights: the ``sigmas`` buffer's extremes (float32 values) and
        length, which is what samplers have always taken as the model's range."""
        return NoiseSchedule(sigma_max=float(self.sigmas.max()), sigma_min=float(self.sigmas.min()),
                             num_levels=int(self.sigmas.numel()))

    def forward(self, data: Data, pos: torch.Tensor, sigma: torch.Tensor,
                pairs: torch.Tensor | None = None) -> torch.Tensor:
        """Estimated score (:class:`confgen.models.interface.ScoreModelInterface`).

        Args:
            data: the molecular graphs: a :class:`~torch_geometric.data.Batch` (or one ``Data``) with ``x``
                [N, atom_dim], ``edge_index`` [2, E] and ``edge_attr`` [E, edge_dim] (:func:`featurize_mol`).
            pos: [N, 3] noisy coordinates (Angstrom).
            sigma: [N] noise level of each node (constant within a graph).
            pairs: optional ``confgen.data.graph.all_pairs(data.ptr)`` [2, P] to reuse across calls.

        Returns:
            [N, 3] score, centred per graph.
        """
        dtype = pos.dtype
        n = pos.shape[0]
        batch, ptr, g = graph_index(data)
        sigma = sigma.to(dtype)
        x = remove_com(pos, batch, g)  # [N, 3]
        edge_index, edge_attr = data.edge_index, data.edge_attr.to(dtype)
        if self.cutoff > 0:
            radius = radius_graph(x.detach(), self.cutoff, ptr, pairs=pairs)  # [2, R]
            edge_index, edge_attr = merge_radius_edges(edge_index, edge_attr, radius, n)
        sd2 = self.sigma_data ** 2 if self.precond == "edm" else 1.0
        norm = torch.sqrt(sigma * sigma + sd2).unsqueeze(-1)  # [N, 1]; c_in = 1 / norm
        x_in = x / norm  # [N, 3]
        s_emb = self.sigma_embed(sigma)  # [N, H]
        h = self.node_in(torch.cat([data.x.to(dtype), s_emb], -1))  # [N, H]
        # edge embedding MLP on cat(edge_attr, sigma embedding of the receiving node), first layer split
        e = self.edge_in(edge_attr) + self.edge_sigma(s_emb)[edge_index[0]]  # [E, H]
        e = self.edge_out(torch.nn.functional.silu(e))  # [E, H]
        _, vec = self.backbone(h, x_in, edge_index, e, batch=batch)
        vec = remove_com(vec, batch, g)  # [N, 3]
        sig = sigma.unsqueeze(-1)  # [N, 1]
        if self.precond == "edm":  # (D - x) / sigma^2 with D = c_skip x + c_out F
            return -x / (norm * norm) + (self.sigma_data / norm) * vec / sig
        return vec / sig

    @torch.no_grad()
    def score(self, mol, pos, sigma: float) -> torch.Tensor:
        """Score for one RDKit Mol (explicit hydrogens, any atom order).

        Args:
            mol: RDKit Mol with explicit H.
            pos: [N, 3] coordinates in Angstrom (Tensor or array), in the Mol's atom order.
            sigma: noise level (Angstrom).

        Returns:
            [N, 3] score on the model's device and dtype.
        """
        p = next(self.parameters())
        graph = Batch.from_data_list([featurize_mol(mol)]).to(p.device)
        pos = torch.as_tensor(pos, dtype=p.dtype, device=p.device).reshape(-1, 3)
        if pos.shape[0] != graph.num_nodes:
            raise ValueError(f"pos has {pos.shape[0]} atoms, the molecule {graph.num_nodes}")
        sig = torch.full((graph.num_nodes,), float(sigma), dtype=p.dtype, device=p.device)
        return self.forward(graph, pos, sig)


def model_kwargs(config) -> dict:
    """Keyword arguments of :class:`ScoreModel` from a :class:`confgen.config.Config`."""
    m, nz = config.model, config.noise
    return dict(backbone=m.backbone, hidden_dim=m.hidden_dim, num_layers=m.num_layers, cutoff=m.cutoff,
                num_rbf=m.num_rbf, sigma_embed_dim=m.sigma_embed_dim, sigma_max=nz.sigma_max,
                sigma_min=nz.sigma_min, num_levels=nz.num_levels, precond=m.precond, sigma_data=nz.sigma_data)


def build_model(config) -> ScoreModel:
    """Build the :class:`ScoreModel` described by a :class:`confgen.config.Config`.

    Raises:
        ConfgenError: unknown backbone.
    """
    from confgen.errors import ConfgenError

    if config.model.backbone not in BACKBONES:
        raise ConfgenError(f"unknown model.backbone {config.model.backbone!r} (known: {', '.join(BACKBONES)})")
    if config.model.precond not in PRECONDITIONINGS:
        raise ConfgenError(f"unknown model.precond {config.model.precond!r} (known: {', '.join(PRECONDITIONINGS)})")
    if not config.noise.sigma_data > 0:
        raise ConfgenError(f"noise.sigma_data must be positive, not {config.noise.sigma_data}")
    return ScoreModel(**model_kwargs(config))
