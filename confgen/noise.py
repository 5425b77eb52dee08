"""Noise levels, perturbation and centre-of-mass handling for denoising score matching.

Positions live in the translation-free subspace: every graph's coordinates, noise and scores are centred
(unweighted centroid, called "centre of mass" here as in the literature).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch_geometric.utils import scatter


@dataclass(frozen=True)
class NoiseSchedule:
    """Noise levels from ``sigma_max`` down to ``sigma_min``: the one schedule of training and sampling.

    Attributes:
        sigma_max: largest level (Angstrom), positive.
        sigma_min: smallest level (Angstrom), positive and at most ``sigma_max``.
        num_levels: number of levels, at least 1.
        rho: ``None`` for a geometric schedule (ConfGF / NCSN: 50 levels from 10 to 0.01 Angstrom), else EDM's
            (Karras et al. 2022) ``(sigma_max^(1/rho) + i / (L-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``.
    """

    sigma_max: float
    sigma_min: float
    num_levels: int
    rho: float | None = None

    def __post_init__(self):
        if not (self.sigma_max > 0 and self.sigma_min > 0):
            raise ValueError("sigma_max and sigma_min must be positive")
        if self.sigma_min > self.sigma_max:
            raise ValueError(f"sigma_min {self.sigma_min} is larger than sigma_max {self.sigma_max}")
        if isinstance(self.num_levels, bool) or not isinstance(self.num_levels, int) or self.num_levels < 1:
            raise ValueError("num_levels must be an integer of at least 1")
        if self.rho is not None and not self.rho > 0:
            raise ValueError("rho must be positive or None")

    def sigmas(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The levels, descending, computed in ``dtype``.

        Returns:
            [num_levels] tensor, ``[0] = sigma_max`` and ``[-1] = sigma_min``; one level is ``[sigma_min]`` (a single
            denoising step at the smallest level).
        """
        hi, lo, n = float(self.sigma_max), float(self.sigma_min), self.num_levels
        if n == 1:
            return torch.tensor([lo], dtype=dtype)
        if self.rho is not None:
            t = torch.linspace(0.0, 1.0, n, dtype=dtype)
            return (hi ** (1.0 / self.rho) + t * (lo ** (1.0 / self.rho) - hi ** (1.0 / self.rho))) ** self.rho
        return torch.exp(torch.linspace(math.log(hi), math.log(lo), n, dtype=dtype))


def remove_com(x: torch.Tensor, batch: torch.Tensor | None, num_graphs: int | None = None) -> torch.Tensor:
    """Subtract each graph's centroid.

    Args:
        x: [N, 3] positions, noise or scores.
        batch: [N] graph index of each node (``None`` = one graph).
        num_graphs: number of graphs (default ``batch.max() + 1``).

    Returns:
        [N, 3] with zero mean per graph.
    """
    if batch is None:
        return x - x.mean(0, keepdim=True)
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    return x - scatter(x, batch, 0, num_graphs, reduce="mean")[batch]


def sample_sigmas(sigmas: torch.Tensor, num_graphs: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One noise level per graph, uniform over the schedule.

    Returns:
        [num_graphs] noise levels.
    """
    idx = torch.randint(0, sigmas.numel(), (num_graphs,), generator=generator, device=sigmas.device)
    return sigmas[idx]


#: how training draws noise levels (``NoiseConfig.distribution``)
SIGMA_DISTRIBUTIONS = ("levels", "lognormal", "loguniform")


def draw_sigmas(num_graphs: int, *, distribution: str, sigmas: torch.Tensor, p_mean: float = 0.0,
                p_std: float = 1.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """One training noise level per graph.

    Args:
        num_graphs: number of graphs G.
        distribution: ``"levels"`` (uniform over ``sigmas``, :func:`sample_sigmas`), ``"lognormal"``
            (``ln sigma ~ N(p_mean, p_std^2)`` clamped to ``[sigmas.min(), sigmas.max()]``, EDM) or
            ``"loguniform"`` (uniform in ``ln sigma`` over that range).
        sigmas: [L] the model's schedule; its extremes bound the continuous distributions.
        p_mean, p_std: parameters of ``"lognormal"``.
        generator: random generator (CPU).

    Returns:
        [G] noise levels, on ``sigmas``' device and dtype.
    """
    if distribution == "levels":
        return sample_sigmas(sigmas, num_graphs, generator=generator)
    lo, hi = math.log(float(sigmas.min())), math.log(float(sigmas.max()))
    if distribution == "lognormal":
        ln = p_mean + p_std * torch.randn(num_graphs, generator=generator, dtype=torch.float64)
        ln = ln.clamp(lo, hi)
    elif distribution == "loguniform":
        ln = lo + (hi - lo) * torch.rand(num_graphs, generator=generator, dtype=torch.float64)
    else:
        raise ValueError(f"unknown sigma distribution {distribution!r} (known: {', '.join(SIGMA_DISTRIBUTIONS)})")
    return torch.exp(ln).to(device=sigmas.device, dtype=sigmas.dtype)


def perturb(pos: torch.Tensor, sigma_node: torch.Tensor, batch: torch.Tensor | None,
            num_graphs: int | None = None,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Add centred Gaussian noise: ``x_noisy = x + sigma * eps`` with ``eps`` centred per graph.

    Args:
        pos: [N, 3] clean positions.
        sigma_node: [N] noise level of each node (its graph's).
        batch: [N] graph index.
        num_graphs: number of graphs.
        generator: random generator for ``eps``.

    Returns:
        (x_noisy [N, 3], eps [N, 3]); ``x_noisy`` is centred too.
    """
    eps = torch.randn(pos.shape, generator=generator, dtype=pos.dtype, device="cpu").to(pos.device)
    eps = remove_com(eps, batch, num_graphs)
    x = remove_com(pos, batch, num_graphs) + sigma_node.unsqueeze(-1) * eps
    return x, eps
