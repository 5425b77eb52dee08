"""Graph indexing of PyG batches and radius edges (through PyG where torch_cluster is installed, else plain torch).

Batches are :class:`torch_geometric.data.Batch` objects (``Batch.from_data_list``); a single
:class:`torch_geometric.data.Data` works too (:func:`graph_index` gives its one-graph ``batch`` and ``ptr``).
"""

from __future__ import annotations

import importlib.util

import torch
from torch_geometric.data import Data

from confgen.data.features import EDGE_FEATURE_DIM, EDGE_TYPE_RADIUS

#: torch_cluster (PyG's radius search) is installed: :func:`radius_graph` uses ``torch_geometric.nn.radius_graph``
HAS_TORCH_CLUSTER = importlib.util.find_spec("torch_cluster") is not None


def graph_index(data: Data) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(batch [N], ptr [G + 1], G)`` of a :class:`~torch_geometric.data.Batch`, or of a single ``Data`` (G = 1)."""
    batch = getattr(data, "batch", None)
    ptr = getattr(data, "ptr", None)
    if batch is not None and ptr is not None:
        return batch, ptr, int(ptr.numel() - 1)
    n = int(data.num_nodes)
    device = data.edge_index.device
    return (torch.zeros(n, dtype=torch.long, device=device),
            torch.tensor([0, n], dtype=torch.long, device=device), 1)


def all_pairs(ptr: torch.Tensor) -> torch.Tensor:
    """All ordered pairs (i != j) of nodes within each graph, in lexicographic order.

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


def pyg_radius_candidates(pos: torch.Tensor, r: float, ptr: torch.Tensor) -> torch.Tensor:
    """Candidate radius edges from torch_cluster (through PyG), both directions, any order."""
    from torch_geometric.nn import radius_graph as pyg_radius_graph

    sizes = ptr[1:] - ptr[:-1]
    batch = torch.repeat_interleave(torch.arange(sizes.numel(), device=pos.device), sizes)
    return pyg_radius_graph(pos, r, batch, loop=False, max_num_neighbors=max(int(sizes.max()), 1))


def radius_graph(pos: torch.Tensor, r: float, ptr: torch.Tensor, pairs: torch.Tensor | None = None) -> torch.Tensor:
    """Edges between distinct nodes of the same graph closer than ``r`` (strictly), in lexicographic order.

    With torch_cluster installed the search is PyG's ``radius_graph`` (no neighbour limit; ``pairs`` is not
    needed); without it, the distances of all pairs of each graph are computed. Both give the same edges in the
    same order.

    Args:
        pos: [num_nodes, 3] coordinates.
        r: cutoff radius (Angstrom).
        ptr: [num_graphs + 1] node offsets.
        pairs: optional precomputed ``all_pairs(ptr)`` for the fallback (reuse it across sampling steps).

    Returns:
        [2, num_radius_edges] long edge index (both directions).
    """
    if HAS_TORCH_CLUSTER and pos.shape[0]:
        cand = pyg_radius_candidates(pos, r, ptr)
        key = cand[0] * pos.shape[0] + cand[1]
        cand = cand[:, torch.argsort(key)]
    else:
        cand = all_pairs(ptr) if pairs is None else pairs
    d2 = (pos[cand[0]] - pos[cand[1]]).pow(2).sum(-1)  # [P]
    return cand[:, d2 < r * r]


def merge_radius_edges(edge_index: torch.Tensor, edge_attr: torch.Tensor, radius_index: torch.Tensor,
                       num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Add radius edges that are not already graph edges, typed as ``EDGE_TYPE_RADIUS``.

    The graph edges keep their order and the new ones follow in theirs (so message sums add in the same order as
    ever; ``torch_geometric.utils.coalesce`` would sort them and change the last bits).

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
