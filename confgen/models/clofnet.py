"""ClofNet (Du et al., ICML 2022): complete local frames per edge, SE(3)-equivariant.

For an edge (i, j) with coordinates centred per graph, the frame is
``e1 = (x_i - x_j)/|.|``, ``e2 = (x_i x x_j)/|.|``, ``e3 = e1 x e2``. Geometry is scalarised by projecting
onto the frame, messages are computed on invariants, and vector outputs are rebuilt as ``c1 e1 + c2 e2 + c3 e3``.
``e2`` is a cross product (a pseudovector), so the network is equivariant under rotations and translations
but *not* reflections: it can tell a molecule from its mirror image.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import reset

from confgen.models.layers import EdgeMLP, GaussianRBF, inverse_degree, mlp
from confgen.noise import remove_com

_EPS = 1e-6


def frames_of(xi: torch.Tensor, xj: torch.Tensor) -> torch.Tensor:
    """Complete local frames of edges from their end points ``xi``, ``xj`` [E, 3] (centred per graph).

    Returns:
        [E, 3, 3] frames; ``frames[:, k]`` is the k-th unit basis vector (zero where degenerate).
    """
    a = xi - xj  # [E, 3]
    b = torch.cross(xi, xj, dim=-1)  # [E, 3]
    e1 = a / (a.norm(dim=-1, keepdim=True) + _EPS)
    e2 = b / (b.norm(dim=-1, keepdim=True) + _EPS)
    e3 = torch.cross(e1, e2, dim=-1)
    return torch.stack([e1, e2, e3], dim=1)


def edge_frames(x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Complete local frame of each edge.

    Args:
        x: [N, 3] coordinates, centred per graph.
        edge_index: [2, E].

    Returns:
        [E, 3, 3] frames (:func:`frames_of`).
    """
    return frames_of(x[edge_index[0]], x[edge_index[1]])


class ClofLayer(MessagePassing):
    """One ClofNet layer. Messages flow j -> i with ``i = edge_index[0]`` (``flow="target_to_source"``); the sums
    over neighbours are divided by the degree given to :meth:`forward`.

    Args:
        hidden_dim: node feature width.
        edge_dim: edge attribute width.
        num_rbf: radial basis size.
        rbf_cutoff: largest RBF centre (in the units of the coordinates).
        update_h: also update node features (the last layer does not need to).
    """

    def __init__(self, hidden_dim: int, edge_dim: int, num_rbf: int, rbf_cutoff: float = 8.0,
                 update_h: bool = True):
        super().__init__(aggr="sum", flow="target_to_source")
        self.rbf = GaussianRBF(num_rbf, rbf_cutoff)
        # invariants: 6 frame projections of x_i and x_j, |x_i - x_j|^2, RBF(|x_i - x_j|)
        self.edge_mlp = EdgeMLP(hidden_dim, edge_dim + num_rbf + 7, hidden_dim)
        self.coord_mlp = mlp([hidden_dim, hidden_dim, 3])
        self.update_h = update_h
        if update_h:
            self.node_norm = nn.LayerNorm(hidden_dim)
            self.node_mlp = mlp([2 * hidden_dim, hidden_dim, hidden_dim])

    def reset_parameters(self) -> None:
        """Re-initialise the weights (in construction order: the same seed gives the same weights)."""
        super().reset_parameters()
        for module in (self.edge_mlp, self.coord_mlp, *((self.node_norm, self.node_mlp) if self.update_h else ())):
            reset(module)

    def forward(self, h: torch.Tensor, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                inv_deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: [N, H], x: [N, 3] centred per graph, edge_index: [2, E], edge_attr: [E, F], inv_deg: [N, 1]
        -> (h [N, H], x [N, 3] before re-centring)."""
        a, b = self.edge_mlp.node_parts(h)
        agg = self.propagate(edge_index, x=x, a=a, b=b, edge_attr=edge_attr) * inv_deg  # [N, 3 (+ H)]
        x = x + agg[:, :3]
        if self.update_h:
            h = h + self.node_mlp(torch.cat([self.node_norm(h), agg[:, 3:]], -1))
        return h, x

    def message(self, x_i: torch.Tensor, x_j: torch.Tensor, a_i: torch.Tensor, b_j: torch.Tensor,
                edge_attr: torch.Tensor) -> torch.Tensor:
        """[E, 3] coordinate updates (and [E, H] feature messages when the layer updates h), concatenated."""
        frames = frames_of(x_i, x_j)  # [E, 3, 3]
        proj_i = torch.einsum("ekc,ec->ek", frames, x_i)  # [E, 3]
        proj_j = torch.einsum("ekc,ec->ek", frames, x_j)  # [E, 3]
        d2 = (x_i - x_j).pow(2).sum(-1, keepdim=True)  # [E, 1]
        d = torch.sqrt(d2 + 1e-12).squeeze(-1)
        m = self.edge_mlp(a_i, b_j, torch.cat([edge_attr, self.rbf(d), proj_i, proj_j, d2], -1))  # [E, H]
        coef = self.coord_mlp(m)  # [E, 3]
        trans = torch.einsum("ek,ekc->ec", coef, frames)  # [E, 3]
        return torch.cat([trans, m], -1) if self.update_h else trans


class ClofNet(nn.Module):
    """ClofNet backbone: ``forward(h, pos, edge_index, edge_attr, batch=None) -> (h, vec)``.

    Args:
        hidden_dim: node feature width H (input ``h`` must have it).
        edge_dim: edge attribute width.
        num_layers: number of layers.
        num_rbf: Gaussian radial basis size for distances.
        rbf_cutoff: largest RBF centre (in the units of ``pos``).
    """

    def __init__(self, hidden_dim: int = 96, edge_dim: int = 96, num_layers: int = 4, num_rbf: int = 16,
                 rbf_cutoff: float = 8.0):
        super().__init__()
        self.layers = nn.ModuleList(
            ClofLayer(hidden_dim, edge_dim, num_rbf, rbf_cutoff, update_h=(k < num_layers - 1))
            for k in range(num_layers)
        )

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def forward(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                batch: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            h: [N, H] node features.
            pos: [N, 3] coordinates.
            edge_index: [2, E] directed edges (both directions present).
            edge_attr: [E, F] edge features.
            batch: [N] graph index for per-graph centring (``None`` = one graph).

        Returns:
            (h [N, H], vec [N, 3]): final node features and the total (centred) coordinate displacement.
        """
        num_graphs = int(batch.max()) + 1 if batch is not None and batch.numel() else None
        inv_deg = inverse_degree(edge_index[0], h.shape[0], pos.dtype)
        x0 = remove_com(pos, batch, num_graphs)
        x = x0
        for layer in self.layers:
            h, x = layer(h, x, edge_index, edge_attr, inv_deg)
            x = remove_com(x, batch, num_graphs)
        return h, x - x0
