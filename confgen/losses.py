"""Denoising score matching (NCSN / ConfGF), weighted by sigma^2."""

from __future__ import annotations

import torch

from confgen.noise import scatter_mean


def dsm_loss(score: torch.Tensor, eps: torch.Tensor, sigma_node: torch.Tensor, batch: torch.Tensor,
             num_graphs: int) -> torch.Tensor:
    """sigma^2-weighted denoising score matching loss.

    With ``x_noisy = x + sigma * eps`` the target score is ``-eps / sigma``; the weighted loss
    ``sigma^2 * |score - (-eps / sigma)|^2 = |sigma * score + eps|^2`` has the same scale at every level.
    Summed over the 3 coordinates, averaged over the atoms of each conformer, then over conformers.

    Args:
        score: [N, 3] predicted score.
        eps: [N, 3] centred unit noise that was added.
        sigma_node: [N] noise level of each node.
        batch: [N] graph index.
        num_graphs: number of conformers in the batch.

    Returns:
        Scalar loss.
    """
    per_node = (sigma_node.unsqueeze(-1) * score + eps).pow(2).sum(-1, keepdim=True)  # [N, 1]
    per_graph = scatter_mean(per_node, batch, num_graphs)  # [G, 1]
    return per_graph.mean()
