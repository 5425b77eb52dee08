"""ClofNet (Du et al., ICML 2022): complete local frames per edge, SE(3)-equivariant.

For an edge (i, j) with coordinates centred per graph, the frame is
``e1 = (x_i - x_j)/|.|``, ``e2 = (x_i x x_j)/|.|``, ``e3 = e1 x e2``. Geometry is scalarised by projecting
onto the frame, messages are computed on invariants, and vector outputs are rebuilt as ``c1 e1 + c2 e2 + c3 e3``.
``e2`` is a cross product (a pseudovector), so the network is equivariant under rotations and translations
but *not* reflections: it can tell a molecule from its mirror image.
"""

from __future__ import annotations

import torch

from confgen.models.layers import EquivariantLayer, LayerStack

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


class ClofLayer(EquivariantLayer):
    """One ClofNet layer: messages from node features, edge attributes, RBF(|x_i - x_j|), |x_i - x_j|^2 and the
    projections of x_i and x_j on the edge's frame; coordinate updates rebuilt in that frame
    (arguments as :class:`~confgen.models.layers.EquivariantLayer`'s).
    """

    def __init__(self, hidden_dim: int, edge_dim: int, num_rbf: int, rbf_cutoff: float = 8.0,
                 update_h: bool = True):
        # invariants: 6 frame projections of x_i and x_j, |x_i - x_j|^2 (besides the RBF)
        super().__init__(hidden_dim, edge_dim, num_rbf, rbf_cutoff, update_h, num_invariants=7, coord_dim=3)

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
        return self.combine(torch.einsum("ek,ekc->ec", coef, frames), m)


class ClofNet(LayerStack):
    """ClofNet backbone (:class:`~confgen.models.layers.LayerStack` of :class:`ClofLayer`, coordinates centred
    per graph around every layer)."""

    layer_class = ClofLayer
    centred = True
