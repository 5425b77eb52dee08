"""Small building blocks shared by the backbones."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.utils import degree


def mlp(dims: list[int], act_last: bool = False) -> nn.Sequential:
    """Linear layers with SiLU between them (and after the last one if ``act_last``)."""
    layers: list[nn.Module] = []
    for k in range(len(dims) - 1):
        layers.append(nn.Linear(dims[k], dims[k + 1]))
        if k < len(dims) - 2 or act_last:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def inverse_degree(index: torch.Tensor, num_nodes: int, dtype: torch.dtype) -> torch.Tensor:
    """1 / (number of edges aggregated at each node), 1 for isolated nodes. Returns [num_nodes, 1]."""
    return (1.0 / degree(index, num_nodes, dtype=dtype).clamp(min=1.0)).unsqueeze(-1)


class GaussianRBF(nn.Module):
    """Gaussian radial basis expansion of distances.

    Args:
        num_rbf: number of Gaussians, centres evenly spaced on [0, cutoff].
        cutoff: largest centre.
    """

    def __init__(self, num_rbf: int = 16, cutoff: float = 8.0):
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, num_rbf), persistent=False)
        self.gamma = 0.5 / (cutoff / max(num_rbf - 1, 1)) ** 2

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """d: [E] distances -> [E, num_rbf]."""
        return torch.exp(-self.gamma * (d.unsqueeze(-1) - self.centers.to(d.dtype)) ** 2)


class SigmaEmbedding(nn.Module):
    """Fourier features of log(sigma) followed by an MLP.

    Args:
        dim: number of Fourier features (sin and cos of dim // 2 frequencies).
        out_dim: output width.
    """

    def __init__(self, dim: int = 32, out_dim: int = 64):
        super().__init__()
        half = max(dim // 2, 1)
        freqs = torch.exp(torch.linspace(math.log(0.1), math.log(10.0), half))
        self.register_buffer("freqs", freqs, persistent=False)
        self.net = mlp([2 * half + 1, out_dim, out_dim])

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        """sigma: [M] noise levels -> [M, out_dim]."""
        t = torch.log(sigma).unsqueeze(-1)  # [M, 1]
        ang = t * self.freqs.to(t.dtype)  # [M, half]
        return self.net(torch.cat([torch.sin(ang), torch.cos(ang), t / 5.0], -1))


class EdgeMLP(nn.Module):
    """Two-layer MLP on ``cat([h_i, h_j, f_ij])`` computed without materialising the concatenation.

    The first linear layer is split into per-node parts (:meth:`node_parts`, applied to N nodes, then gathered per
    edge by message passing) and a per-edge part, which is several times cheaper than applying it to E
    concatenated rows.

    Args:
        node_dim: width of h.
        edge_in_dim: width of the per-edge features f_ij.
        out_dim: output width.
    """

    def __init__(self, node_dim: int, edge_in_dim: int, out_dim: int):
        super().__init__()
        self.lin_i = nn.Linear(node_dim, out_dim)
        self.lin_j = nn.Linear(node_dim, out_dim, bias=False)
        self.lin_e = nn.Linear(edge_in_dim, out_dim, bias=False)
        self.out = nn.Linear(out_dim, out_dim)
        self.act = nn.SiLU()

    def node_parts(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: [N, node_dim] -> (receiver part [N, out_dim], sender part [N, out_dim])."""
        return self.lin_i(h), self.lin_j(h)

    def forward(self, a_i: torch.Tensor, b_j: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """a_i, b_j: [E, out_dim] node parts gathered at each edge's receiver and sender, f: [E, edge_in_dim]
        -> [E, out_dim] (SiLU applied)."""
        z = a_i + b_j + self.lin_e(f)
        return self.act(self.out(self.act(z)))
