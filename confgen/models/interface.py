"""What a score model must provide to be trained and sampled by confgen.

Any ``torch.nn.Module`` with these attributes and this ``forward`` works with :mod:`confgen.sampling` and
:mod:`confgen.generation` (:class:`confgen.models.ScoreModel` is the shipped one; the test suite's analytic models are
others). ``isinstance(model, ScoreModelInterface)`` checks the attributes and the method's presence (not their types).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch_geometric.data import Batch

from confgen.noise import NoiseSchedule


@runtime_checkable
class ScoreModelInterface(Protocol):
    """A noise-conditional score model ``s(x, sigma | graph)`` ~ grad_x log p_sigma(x).

    Attributes:
        cutoff: radius-edge cutoff in Angstrom the model adds on the noisy coordinates (0 = no radius edges; then
            ``pairs`` is never needed).
        schedule: the training noise range (what samplers use where a preset leaves ``sigma_max`` / ``sigma_min``
            unset).
    """

    cutoff: float
    schedule: NoiseSchedule

    def forward(self, data: Batch, pos: torch.Tensor, sigma: torch.Tensor,
                pairs: torch.Tensor | None = None) -> torch.Tensor:
        """Score of the coordinates.

        Args:
            data: the molecular graphs (``x``, ``z``, ``edge_index``, ``edge_attr``, ``batch``, ``ptr``).
            pos: [N, 3] noisy coordinates (Angstrom).
            sigma: [N] noise level of each node (constant within a graph).
            pairs: optional [2, P] candidate pairs for radius edges (``confgen.data.graph.all_pairs(data.ptr)``),
                reused across calls; a model may ignore it.

        Returns:
            [N, 3] score, centred per graph.
        """
        ...
