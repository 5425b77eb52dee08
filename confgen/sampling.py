"""Samplers that only see a score function: annealed Langevin dynamics, predictor-corrector, and EDM's
stochastic second-order (Heun) sampler.

A score function maps ``(pos [N, 3], sigma [N]) -> score [N, 3]`` (grad_x log p_sigma(x), one noise level
per node, constant within a graph). The samplers know nothing about molecules: they are tested against the
analytic score of a Gaussian. Every graph of a batch is handled independently: its centre of mass is
removed every step, and a graph whose coordinates turn non-finite or fly apart is detected, frozen at its
last finite state and reported in :attr:`SampleResult.ok` so that the caller can retry it.

Only the integrators live here: which sampler, which noise levels and which initial guess a run uses is a
:class:`confgen.config.SamplerPreset`, applied by :mod:`confgen.generation`.

Annealed Langevin dynamics (Song & Ermon 2019; ConfGF's position sampler), for levels
``sigma_1 > ... > sigma_L`` and ``T`` steps per level::

    a_i = eps * sigma_i^2 / sigma_L^2
    x <- x + a_i / 2 * s(x, sigma_i) + sqrt(a_i) * z,        z ~ N(0, I), centred per graph

followed by an optional denoising step ``x <- x + sigma_L^2 s(x, sigma_L)`` (Tweedie's formula: the
posterior mean of the clean coordinates). ConfGF writes the same update as
``x + step * s + sqrt(2 step) z`` with ``step = step_lr * (sigma_i / sigma_L)^2``, so ``eps = 2 * step_lr``.

Predictor-corrector (Song et al. 2021, variance-exploding SDE): at each level ``T`` Langevin corrector steps,
then an ancestral-sampling predictor step to the next level (their eq. 47)
``x <- x + (sigma_i^2 - sigma_{i+1}^2) s(x, sigma_i) + (sigma_{i+1} / sigma_i) sqrt(sigma_i^2 - sigma_{i+1}^2) z``,
i.e. a draw from the Gaussian posterior of x at sigma_{i+1} given x at sigma_i (exact for Gaussian data as
the levels shrink; the plain reverse-diffusion predictor, with noise sqrt(sigma_i^2 - sigma_{i+1}^2) z,
over-disperses when the levels are few); the last predictor step (to sigma = 0) is the noise-free denoising
step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch_geometric.utils import scatter

from confgen.config import SAMPLER_METHODS
from confgen.noise import remove_com

#: ``score_fn(pos [N, 3], sigma [N]) -> score [N, 3]``
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: sampling methods of :func:`sample`
METHODS = SAMPLER_METHODS


class NoiseSource:
    """Standard normal noise [N, 3] for a batch, one independent stream per graph.

    Each graph draws from its own ``torch.Generator`` seeded by the caller, so a conformer's trajectory does
    not depend on which other conformers share its batch. Noise is drawn in blocks of ``block`` steps to keep
    the number of generator calls low.

    Args:
        seeds: one integer seed per graph.
        sizes: number of nodes of each graph.
        device: where the noise lives.
        dtype: floating dtype.
        block: steps drawn per refill.
    """

    def __init__(self, *, seeds: Sequence[int], sizes: Sequence[int], device="cpu", dtype=torch.float32,
                 block: int = 32):
        if len(seeds) != len(sizes):
            raise ValueError("one seed per graph is needed")
        self.device = torch.device(device)
        self.dtype = dtype
        self.sizes = [int(s) for s in sizes]
        self.block = int(block)
        gen_device = self.device if self.device.type == "cuda" else "cpu"
        self.generators = []
        for s in seeds:
            g = torch.Generator(device=gen_device)
            g.manual_seed(int(s) % (2**63))
            self.generators.append(g)
        self._gen_device = gen_device
        self._buffer: torch.Tensor | None = None
        self._next = 0

    def _refill(self) -> None:
        parts = [torch.randn((self.block, n, 3), generator=g, dtype=self.dtype, device=self._gen_device)
                 for g, n in zip(self.generators, self.sizes)]
        self._buffer = torch.cat(parts, 1).to(self.device)  # [block, N, 3]
        self._next = 0

    def draw(self) -> torch.Tensor:
        """One sample [N, 3] of independent standard normal noise."""
        if self._buffer is None or self._next >= self.block:
            self._refill()
        z = self._buffer[self._next]
        self._next += 1
        return z


@dataclass
class SampleResult:
    """Output of a sampler.

    Attributes:
        pos: [N, 3] final coordinates (centred per graph); a failed graph keeps its last finite state.
        ok: [G] bool, False for graphs that turned non-finite or flew apart.
        num_evals: score-function calls made.
    """

    pos: torch.Tensor
    ok: torch.Tensor
    num_evals: int


class _Guard:
    """Per-graph blow-up detection: non-finite values, or an atom farther from the centre than a bound."""

    def __init__(self, batch: torch.Tensor, num_graphs: int, radius: torch.Tensor):
        self.batch = batch
        self.num_graphs = num_graphs
        self.radius = radius  # [G]

    def bad_graphs(self, pos: torch.Tensor, sigma: float) -> torch.Tensor:
        """[G] bool: graphs whose coordinates are non-finite or beyond ``radius + 6 sigma``."""
        r = pos.norm(dim=-1)  # [N], centred positions
        r = torch.where(torch.isfinite(r), r, torch.full_like(r, float("inf")))
        rmax = scatter(r, self.batch, dim=0, dim_size=self.num_graphs, reduce="max")  # [G]; 0 for no atom
        return ~(rmax <= self.radius.to(r.dtype) + 6.0 * sigma)


def default_blowup_radius(sizes: torch.Tensor) -> torch.Tensor:
    """Largest plausible distance of an atom from its molecule's centre: 10 A + 1.6 A per atom.

    Args:
        sizes: [G] number of atoms of each graph.

    Returns:
        [G] radius in Angstrom (a fully stretched chain has at most about 1.3 A per atom).
    """
    return 10.0 + 1.6 * sizes.to(torch.float64)


def _clip(score: torch.Tensor, clip: float | None) -> torch.Tensor:
    if clip is None:
        return score
    norm = score.norm(dim=-1, keepdim=True)  # [N, 1]
    return torch.where(norm > clip, score * (clip / norm.clamp(min=1e-30)), score)


@torch.no_grad()
def sample(score_fn: ScoreFn, pos: torch.Tensor, batch: torch.Tensor, num_graphs: int, sigmas: torch.Tensor, *,
           method: str = "ald", steps_per_level: int, eps: float | torch.Tensor, final_denoise: bool = True,
           clip: float | None = None, churn: float = 0.0, noise: NoiseSource | None = None,
           generator: torch.Generator | None = None,
           blowup_radius: torch.Tensor | None = None,
           callback: Callable[[int, int], None] | None = None,
           polish_steps: int = 0, polish_sigma: float = 0.1, polish_rate: float = 0.5,
           polish_first: bool = False) -> SampleResult:
    """Run annealed Langevin dynamics (``"ald"``), predictor-corrector (``"pc"``) or Heun (``"heun"``) sampling.

    Args:
        score_fn: ``(pos [N, 3], sigma [N]) -> score [N, 3]``.
        pos: [N, 3] initial coordinates (already perturbed at ``sigmas[0]``); centred here.
        batch: [N] graph index of each node.
        num_graphs: number of graphs G.
        sigmas: [L] noise levels, descending.
        method: ``"ald"``, ``"pc"`` or ``"heun"``.
        steps_per_level: Langevin (corrector) steps per level.
        eps: step size at the last level, a float or one per graph [G]; ``a_i = eps * sigma_i^2 / sigma_L^2``.
        final_denoise: ``"ald"`` only: finish with ``x + sigma_L^2 s(x, sigma_L)``.
        clip: largest per-atom score norm (``None`` = no clipping).
        churn: ``"heun"`` only: EDM's S_churn (0 = deterministic ODE steps).
        noise: per-graph noise streams; if ``None``, noise comes from ``generator``.
        generator: used when ``noise`` is ``None``.
        blowup_radius: [G] bound on an atom's distance from its centre (default
            :func:`default_blowup_radius`); the bound grows by ``6 sigma`` at level sigma.
        callback: called as ``callback(level, num_levels)`` after each level.
        polish_steps, polish_sigma, polish_rate: after the last level, ``polish_steps`` deterministic steps
            ``x + polish_rate * polish_sigma^2 * s(x, polish_sigma)`` (mean-shift towards a mode of the density
            smoothed at ``polish_sigma``); ``polish_first``: before the first level instead (the levels then
            restore the local geometry the smoothed density blurs).

    Returns:
        :class:`SampleResult`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}")
    device, dtype = pos.device, pos.dtype
    n = pos.shape[0]
    sizes = torch.bincount(batch, minlength=num_graphs)  # [G]
    if blowup_radius is None:
        blowup_radius = default_blowup_radius(sizes)
    guard = _Guard(batch, num_graphs, blowup_radius.to(device))

    def draw() -> torch.Tensor:
        z = noise.draw() if noise is not None else torch.randn(n, 3, generator=generator, dtype=dtype,
                                                               device=device)
        return remove_com(z.to(dtype), batch, num_graphs)  # [N, 3]

    sig_list = [float(s) for s in sigmas]
    sigma_last = sig_list[-1]
    x = remove_com(pos, batch, num_graphs)
    alive = torch.ones(num_graphs, dtype=torch.bool, device=device)  # [G]
    alive &= ~guard.bad_graphs(x, sig_list[0])
    x = torch.where(alive[batch].unsqueeze(-1), x, torch.zeros_like(x))
    num_evals = 0

    def score(x: torch.Tensor, sigma: float) -> torch.Tensor:
        nonlocal num_evals
        num_evals += 1
        sig = torch.full((n,), sigma, dtype=dtype, device=device)
        s = score_fn(x, sig)
        return remove_com(_clip(s, clip), batch, num_graphs)  # [N, 3]

    def accept(x_old: torch.Tensor, x_new: torch.Tensor, sigma: float) -> torch.Tensor:
        """Keep the update for live graphs that did not blow up; freeze the others."""
        nonlocal alive
        alive = alive & ~guard.bad_graphs(x_new, sigma)
        return torch.where(alive[batch].unsqueeze(-1), x_new, x_old)

    if torch.is_tensor(eps):
        eps = eps.to(device=device, dtype=dtype)[batch].unsqueeze(-1)  # [N, 1] per-graph step sizes

    def langevin(x: torch.Tensor, sigma: float) -> torch.Tensor:
        a = eps * (sigma / sigma_last) ** 2  # float or [N, 1]
        for _ in range(steps_per_level):
            if not alive.any():  # every graph blew up: nothing left to integrate
                break
            s = score(x, sigma)
            x_new = x + 0.5 * a * s + a ** 0.5 * draw()
            x = accept(x, x_new, sigma)
        return x

    def polish(x: torch.Tensor) -> torch.Tensor:
        for _ in range(polish_steps):
            if not alive.any():
                break
            s = score(x, polish_sigma)
            x = accept(x, x + polish_rate * polish_sigma * polish_sigma * s, polish_sigma)
        return x

    if polish_first:
        x = polish(x)
    levels = len(sig_list)
    gamma = min(churn / levels, math.sqrt(2.0) - 1.0) if method == "heun" else 0.0
    for i, sigma in enumerate(sig_list):
        x = langevin(x, sigma)
        if method == "heun" and alive.any():
            nxt = sig_list[i + 1] if i + 1 < levels else 0.0
            s_hat = min(sigma * (1.0 + gamma), sig_list[0])  # churn: raise the noise, never above level 0
            if s_hat > sigma:
                x = accept(x, x + math.sqrt(s_hat * s_hat - sigma * sigma) * draw(), s_hat)
            d = -s_hat * score(x, s_hat)  # dx/dsigma of the probability-flow ODE
            x_new = x + (nxt - s_hat) * d
            if nxt > 0:  # trapezoidal correction; the last step (to 0) is Euler: Tweedie's denoising step
                x_new = x + (nxt - s_hat) * 0.5 * (d - nxt * score(x_new, nxt))
            x = accept(x, x_new, max(nxt, sigma_last))
        if method == "pc" and alive.any():
            nxt = sig_list[i + 1] if i + 1 < levels else 0.0
            var = sigma * sigma - nxt * nxt
            s = score(x, sigma)
            x_new = x + var * s
            if nxt > 0:  # ancestral step: the posterior std of x_{i+1} given x_i and the denoised mean
                x_new = x_new + math.sqrt(var) * (nxt / sigma) * draw()
            x = accept(x, x_new, max(nxt, sigma_last))
        if callback is not None:
            callback(i + 1, levels)
    if method == "ald" and final_denoise and alive.any():
        s = score(x, sigma_last)
        x = accept(x, x + sigma_last * sigma_last * s, sigma_last)
    if not polish_first:
        x = polish(x)
    x = remove_com(x, batch, num_graphs)
    return SampleResult(pos=x, ok=alive.clone(), num_evals=num_evals)

