"""E(n)-equivariant graph network (Satorras, Hoogeboom & Welling, ICML 2021) as a score backbone.

E(3)-equivariant: rotations, translations *and reflections*; it cannot tell a molecule from its mirror image.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import reset

from confgen.models.layers import EdgeMLP, GaussianRBF, inverse_degree, mlp


class EGNNLayer(MessagePassing):
    """One EGNN layer: messages from (h_i, h_j, |x_i - x_j|^2, RBF(|x_i - x_j|), edge attributes).

    Coordinates move along ``(x_i - x_j) / (|x_i - x_j| + 1)`` (normalised, so updates stay bounded),
    averaged over neighbours. Messages flow j -> i with ``i = edge_index[0]`` (``flow="target_to_source"``); the
    sums over neighbours are divided by the degree given to :meth:`forward` (computed once per backbone pass).

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
        self.edge_mlp = EdgeMLP(hidden_dim, edge_dim + num_rbf + 1, hidden_dim)
        self.coord_mlp = mlp([hidden_dim, hidden_dim, 1])
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
        """h: [N, H], x: [N, 3], edge_index: [2, E], edge_attr: [E, F], inv_deg: [N, 1] -> (h [N, H], x [N, 3])."""
        a, b = self.edge_mlp.node_parts(h)
        agg = self.propagate(edge_index, x=x, a=a, b=b, edge_attr=edge_attr) * inv_deg  # [N, 3 (+ H)]
        x = x + agg[:, :3]
        if self.update_h:
            h = h + self.node_mlp(torch.cat([self.node_norm(h), agg[:, 3:]], -1))
        return h, x

    def message(self, x_i: torch.Tensor, x_j: torch.Tensor, a_i: torch.Tensor, b_j: torch.Tensor,
                edge_attr: torch.Tensor) -> torch.Tensor:
        """[E, 3] coordinate updates (and [E, H] feature messages when the layer updates h), concatenated."""
        diff = x_i - x_j  # [E, 3]
        d2 = diff.pow(2).sum(-1, keepdim=True)  # [E, 1]
        d = torch.sqrt(d2 + 1e-12)  # [E, 1]
        m = self.edge_mlp(a_i, b_j, torch.cat([edge_attr, self.rbf(d.squeeze(-1)), d2], -1))  # [E, H]
        trans = diff / (d + 1.0) * self.coord_mlp(m)  # [E, 3]
        return torch.cat([trans, m], -1) if self.update_h else trans


class EGNN(nn.Module):
    """EGNN backbone: ``forward(h, pos, edge_index, edge_attr) -> (h, vec)``.

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
            EGNNLayer(hidden_dim, edge_dim, num_rbf, rbf_cutoff, update_h=(k < num_layers - 1))
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
            batch: [N] graph index (unused: EGNN needs no per-graph centring).

        Returns:
            (h [N, H], vec [N, 3]): final node features and the total coordinate displacement.
        """
        inv_deg = inverse_degree(edge_index[0], h.shape[0], pos.dtype)
        x = pos
        for layer in self.layers:
            h, x = layer(h, x, edge_index, edge_attr, inv_deg)
        return h, x - pos
