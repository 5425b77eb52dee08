"""Batching of :class:`MolGraph` objects and radius edges, in plain torch (no torch_scatter/torch_cluster)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from confgen.data.features import EDGE_FEATURE_DIM, EDGE_TYPE_RADIUS, MolGraph


@dataclass
class GraphBatch:
    """Several molecular graphs as one disconnected graph.

    Attributes:
        atom_feat: [num_nodes, F] atom features.
        edge_index: [2, num_edges] edges (bond + extended), node indices offset per graph.
        edge_attr: [num_edges, EDGE_FEATURE_DIM] edge features.
        batch: [num_nodes] graph index of each node.
        ptr: [num_graphs + 1] node offsets.
        atomic_numbers: [num_nodes] long.
    """

    atom_feat: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    ptr: torch.Tensor
    atomic_numbers: torch.Tensor

    @property
    def num_graphs(self) -> int:
        return int(self.ptr.numel() - 1)

    @property
    def num_nodes(self) -> int:
        return int(self.atom_feat.shape[0])

    def to(self, device) -> "GraphBatch":
        return GraphBatch(*(getattr(self, f).to(device) for f in
                            ("atom_feat", "edge_index", "edge_attr", "batch", "ptr", "atomic_numbers")))


def collate(graphs: list[MolGraph]) -> GraphBatch:
    """Concatenate graphs into one :class:`GraphBatch` (conformers are not included; see callers)."""
    sizes = torch.tensor([g.num_nodes for g in graphs], dtype=torch.long)
    ptr = torch.zeros(len(graphs) + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(sizes, 0)
    edge_index = torch.cat([g.edge_index + ptr[i] for i, g in enumerate(graphs)], dim=1)
    return GraphBatch(
        atom_feat=torch.cat([g.atom_feat for g in graphs], 0),
        edge_index=edge_index,
        edge_attr=torch.cat([g.edge_attr for g in graphs], 0),
        batch=torch.repeat_interleave(torch.arange(len(graphs)), sizes),
        ptr=ptr,
        atomic_numbers=torch.cat([g.atomic_numbers for g in graphs], 0),
    )


def all_pairs(ptr: torch.Tensor) -> torch.Tensor:
    """All ordered pairs (i != j) of nodes within each graph.

    Args:
        ptr: [num_graphs + 1] node offsets.

    Returns:
        [2, sum_g n_g (n_g - 1)] long edge index.
    """
    sizes = ptr[1:] - ptr[:-1]  # [G]
    device = ptr.device
    pairs_per_graph = sizes * sizes  # [G]
    total = int(pairs_per_graph.sum())
    if total == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=device)
    graph_of_pair = torch.repeat_interleave(torch.arange(sizes.numel(), device=device), pairs_per_graph)
    start = torch.cumsum(pairs_per_graph, 0) - pairs_per_graph  # [G]
    local = torch.arange(total, device=device) - start[graph_of_pair]  # [P]
    n = sizes[graph_of_pair]
    i = local // n + ptr[graph_of_pair]
    j = local % n + ptr[graph_of_pair]
    keep = i != j
    return torch.stack([i[keep], j[keep]])


def radius_graph(pos: torch.Tensor, r: float, ptr: torch.Tensor, pairs: torch.Tensor | None = None) -> torch.Tensor:
    """Edges between distinct nodes of the same graph closer than ``r``.

    Args:
        pos: [num_nodes, 3] coordinates.
        r: cutoff radius (Angstrom).
        ptr: [num_graphs + 1] node offsets.
        pairs: optional precomputed ``all_pairs(ptr)`` (reuse it across sampling steps).

    Returns:
        [2, num_radius_edges] long edge index (both directions).
    """
    if pairs is None:
        pairs = all_pairs(ptr)
    d2 = (pos[pairs[0]] - pos[pairs[1]]).pow(2).sum(-1)  # [P]
    return pairs[:, d2 < r * r]


def merge_radius_edges(edge_index: torch.Tensor, edge_attr: torch.Tensor, radius_index: torch.Tensor,
                       num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Add radius edges that are not already graph edges, typed as ``EDGE_TYPE_RADIUS``.

    Args:
        edge_index: [2, E] graph edges.
        edge_attr: [E, EDGE_FEATURE_DIM] their features.
        radius_index: [2, R] radius edges.
        num_nodes: total number of nodes.

    Returns:
        (edge_index [2, E + R'], edge_attr [E + R', EDGE_FEATURE_DIM]).
    """
    key_graph = edge_index[0] * num_nodes + edge_index[1]
    key_radius = radius_index[0] * num_nodes + radius_index[1]
    new = ~torch.isin(key_radius, key_graph)
    extra = radius_index[:, new]
    extra_attr = torch.zeros(extra.shape[1], EDGE_FEATURE_DIM, dtype=edge_attr.dtype, device=edge_attr.device)
    extra_attr[:, EDGE_TYPE_RADIUS] = 1.0
    return torch.cat([edge_index, extra], 1), torch.cat([edge_attr, extra_attr], 0)
