"""Denoising score matching: sigma^2-weighted (NCSN / ConfGF) or EDM-weighted (Karras et al. 2022)."""

from __future__ import annotations

import torch

from torch_geometric.utils import scatter


#: loss weightings (``NoiseConfig.weighting``)
WEIGHTINGS = ("sigma2", "edm")


def dsm_loss(score: torch.Tensor, eps: torch.Tensor, sigma_node: torch.Tensor, batch: torch.Tensor,
             num_graphs: int, *, weighting: str = "sigma2", sigma_data: float = 1.0) -> torch.Tensor:
    """Weighted denoising score matching loss.

    With ``x_noisy = x + sigma * eps`` the target score is ``-eps / sigma``; the ``"sigma2"`` loss
    ``sigma^2 * |score - (-eps / sigma)|^2 = |sigma * score + eps|^2`` has the same scale at every level.
    ``"edm"`` is EDM's ``lambda(sigma) |D(x) - x_0|^2`` with ``lambda = (sigma^2 + sigma_data^2) /
    (sigma sigma_data)^2`` and the denoiser ``D = x + sigma^2 score`` (Tweedie), i.e.
    ``(1 + sigma^2 / sigma_data^2) |sigma * score + eps|^2``: unit weight on the preconditioned network
    output ``F`` (:class:`confgen.models.ScoreModel` with ``precond="edm"``), so every level gets a target of
    unit scale. Summed over the 3 coordinates, averaged over the atoms of each conformer, then over conformers.

    Args:
        score: [N, 3] predicted score.
        eps: [N, 3] centred unit noise that was added.
        sigma_node: [N] noise level of each node.
        batch: [N] graph index.
        num_graphs: number of conformers in the batch.
        weighting: ``"sigma2"`` or ``"edm"``.
        sigma_data: data standard deviation per coordinate (``"edm"`` only).

    Returns:
        Scalar loss.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown loss weighting {weighting!r} (known: {', '.join(WEIGHTINGS)})")
    sig = sigma_node.unsqueeze(-1)  # [N, 1]
    per_node = (sig * score + eps).pow(2).sum(-1, keepdim=True)  # [N, 1]
    if weighting == "edm":
        per_node = per_node * (1.0 + sig * sig / sigma_data ** 2)
    per_graph = scatter(per_node, batch, 0, num_graphs, reduce="mean")  # [G, 1]
    return per_graph.mean()
