"""Packing conformer samples into forward-pass batches that fit the accelerator's memory.

The score network's activations grow with the atom pairs of a batch (extended edges, or all pairs within the
cutoff), so a batch is bounded both by a number of samples (``--batch-size``) and by a cost, the sum over its
samples of (atoms)^2. On a GPU the samples are sorted by size (largest first) so that each batch holds molecules of
similar size, and the cost limit starts unbounded and adapts: an out-of-memory error halves it below the cost of
the batch that failed, and the batch is retried; a single sample that does not fit alone is reported by the
caller (its molecule is skipped) instead of crashing the run.
"""

from __future__ import annotations

__all__ = ["BatchPacker", "is_out_of_memory", "sample_cost"]


def sample_cost(num_atoms: int) -> int:
    """Memory cost of one sample: its atom pairs (the size of the network's pair tensors)."""
    return int(num_atoms) ** 2


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocator failure (CUDA's ``OutOfMemoryError``, or a RuntimeError saying "out of memory")."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class BatchPacker:
    """Greedy packing of samples into batches of at most ``max_items`` samples and ``max_cost`` cost.

    Args:
        max_items: samples per batch (``--batch-size``).
        max_cost: cost limit per batch (``None``: none until an out-of-memory error sets one).
        by_size: sort the samples by cost, largest first (GPU); otherwise keep their order (CPU: the batches are
            those of plain slicing).
    """

    def __init__(self, max_items: int, max_cost: int | None = None, by_size: bool = False):
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = int(max_items)
        self.max_cost = max_cost
        self.by_size = by_size
        self.shrinks = 0

    def order(self, items: list, costs: list[int]) -> tuple[list, list[int]]:
        """``items`` and their ``costs`` in packing order."""
        if not self.by_size:
            return list(items), list(costs)
        idx = sorted(range(len(items)), key=lambda i: -costs[i])
        return [items[i] for i in idx], [costs[i] for i in idx]

    def take(self, costs: list[int]) -> int:
        """How many of the leading samples (``costs`` in packing order) form the next batch (at least one)."""
        n, total = 0, 0
        for c in costs[:self.max_items]:
            if n and self.max_cost is not None and total + c > self.max_cost:
                break
            n += 1
            total += c
        return max(n, 1) if costs else 0

    def shrink(self, failed_cost: int) -> None:
        """After an out-of-memory error on a batch of cost ``failed_cost``: limit batches to half of it."""
        self.max_cost = max(1, failed_cost // 2)
        self.shrinks += 1
