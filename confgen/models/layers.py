"""Small building blocks shared by the backbones."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import reset
from torch_geometric.utils import degree

from confgen.noise import remove_com


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


class EquivariantLayer(MessagePassing):
    """Base of the backbones' layers: an edge MLP on node features, edge attributes and geometric invariants, a
    coordinate update from its output, and (``update_h``) a residual node update from the messages.

    Messages flow j -> i with ``i = edge_index[0]`` (``flow="target_to_source"``); the sums over neighbours are
    multiplied by the inverse degree given to :meth:`forward` (computed once per backbone pass). A subclass's
    :meth:`message` returns the [E, 3] coordinate updates, followed by the [E, H] messages when ``update_h``.

    Args:
        hidden_dim: node feature width.
        edge_dim: edge attribute width.
        num_rbf: radial basis size.
        rbf_cutoff: largest RBF centre (in the units of the coordinates).
        update_h: also update node features (the last layer does not need to).
        num_invariants: geometric invariants per edge besides the RBF (subclass's).
        coord_dim: outputs of the coordinate MLP per edge (subclass's).
    """

    def __init__(self, hidden_dim: int, edge_dim: int, num_rbf: int, rbf_cutoff: float = 8.0,
                 update_h: bool = True, *, num_invariants: int, coord_dim: int):
        super().__init__(aggr="sum", flow="target_to_source")
        self.rbf = GaussianRBF(num_rbf, rbf_cutoff)
        self.edge_mlp = EdgeMLP(hidden_dim, edge_dim + num_rbf + num_invariants, hidden_dim)
        self.coord_mlp = mlp([hidden_dim, hidden_dim, coord_dim])
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

    def combine(self, trans: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """What :meth:`message` returns: ``trans`` [E, 3], with ``m`` [E, H] appended when ``update_h``."""
        return torch.cat([trans, m], -1) if self.update_h else trans


class LayerStack(nn.Module):
    """A backbone: ``num_layers`` layers of :attr:`layer_class` (the last one does not update h), called as
    ``forward(h, pos, edge_index, edge_attr, batch=None) -> (h, vec)``.

    Args:
        hidden_dim: node feature width H (input ``h`` must have it).
        edge_dim: edge attribute width.
        num_layers: number of layers.
        num_rbf: Gaussian radial basis size for distances.
        rbf_cutoff: largest RBF centre (in the units of ``pos``).
    """

    #: the :class:`EquivariantLayer` subclass (set by each backbone)
    layer_class: type = EquivariantLayer
    #: re-centre the coordinates of each graph before and after every layer (frame-based layers need it)
    centred: bool = False

    def __init__(self, hidden_dim: int = 96, edge_dim: int = 96, num_layers: int = 4, num_rbf: int = 16,
                 rbf_cutoff: float = 8.0):
        super().__init__()
        self.layers = nn.ModuleList(
            self.layer_class(hidden_dim, edge_dim, num_rbf, rbf_cutoff, update_h=(k < num_layers - 1))
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
            batch: [N] graph index for per-graph centring (``None`` = one graph; unused unless :attr:`centred`).

        Returns:
            (h [N, H], vec [N, 3]): final node features and the total coordinate displacement (centred per graph
            when :attr:`centred`).
        """
        num_graphs = int(batch.max()) + 1 if self.centred and batch is not None and batch.numel() else None
        inv_deg = inverse_degree(edge_index[0], h.shape[0], pos.dtype)
        x0 = remove_com(pos, batch, num_graphs) if self.centred else pos
        x = x0
        for layer in self.layers:
            h, x = layer(h, x, edge_index, edge_attr, inv_deg)
            if self.centred:
                x = remove_com(x, batch, num_graphs)
        return h, x - x0
