"""E(n)-equivariant graph network (Satorras, Hoogeboom & Welling, ICML 2021) as a score backbone.

E(3)-equivariant: rotations, translations *and reflections*; it cannot tell a molecule from its mirror image.
"""

from __future__ import annotations

import torch

from confgen.models.layers import EquivariantLayer, LayerStack


class EGNNLayer(EquivariantLayer):
    """One EGNN layer: messages from (h_i, h_j, |x_i - x_j|^2, RBF(|x_i - x_j|), edge attributes).

    Coordinates move along ``(x_i - x_j) / (|x_i - x_j| + 1)`` (normalised, so updates stay bounded),
    averaged over neighbours. Arguments as :class:`~confgen.models.layers.EquivariantLayer`'s.
    """

    def __init__(self, hidden_dim: int, edge_dim: int, num_rbf: int, rbf_cutoff: float = 8.0,
                 update_h: bool = True):
        super().__init__(hidden_dim, edge_dim, num_rbf, rbf_cutoff, update_h, num_invariants=1, coord_dim=1)

    def message(self, x_i: torch.Tensor, x_j: torch.Tensor, a_i: torch.Tensor, b_j: torch.Tensor,
                edge_attr: torch.Tensor) -> torch.Tensor:
        """[E, 3] coordinate updates (and [E, H] feature messages when the layer updates h), concatenated."""
        diff = x_i - x_j  # [E, 3]
        d2 = diff.pow(2).sum(-1, keepdim=True)  # [E, 1]
        d = torch.sqrt(d2 + 1e-12)  # [E, 1]
        m = self.edge_mlp(a_i, b_j, torch.cat([edge_attr, self.rbf(d.squeeze(-1)), d2], -1))  # [E, H]
        return self.combine(diff / (d + 1.0) * self.coord_mlp(m), m)


class EGNN(LayerStack):
    """EGNN backbone (:class:`~confgen.models.layers.LayerStack` of :class:`EGNNLayer`; no per-graph centring
    needed)."""

    layer_class = EGNNLayer
