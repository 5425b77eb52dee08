"""Samplers that only see a score function: annealed Langevin dynamics, predictor-corrector, and EDM's
stochastic second-order (Heun) sampler.

A score function maps ``(pos [N, 3], sigma [N]) -> score [N, 3]`` (grad_x log p_sigma(x), one noise level
per node, constant within a graph). The samplers know nothing about molecules: they are tested against the
analytic score of a Gaussian. Every graph of a batch is handled independently: its centre of mass is
removed every step, and a graph whose coordinates turn non-finite or fly apart is detected, frozen at its
last finite state and reported in :attr:`SampleResult.ok` so that the caller can retry it.

Sampler parameters are plain data: :data:`SAMPLER_PRESETS` maps a preset name to a dict of the keys in
:data:`PRESET_KEYS`; :func:`resolve_preset` validates a preset and applies overrides.

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

import numpy as np
import torch

from confgen.errors import ConfgenError
from confgen.noise import remove_com
from confgen.options import DEFAULT_PRESET, SAMPLER_PRESETS

#: ``score_fn(pos [N, 3], sigma [N]) -> score [N, 3]``
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Every sampler parameter, with its meaning. A preset must define all of them.
PRESET_KEYS: dict[str, str] = {
    "method": "'ald' (annealed Langevin), 'pc' (ancestral predictor + Langevin corrector) or 'heun' (EDM's "
              "stochastic second-order sampler: 2 x num_levels - 1 calls)",
    "init": "'noise' (pure noise, std init_std) or 'etkdg' (RDKit ETKDG conformer + noise of std sigma_max)",
    "init_std": "std of the pure-noise start in Angstrom (null = sigma_max); unused for init 'etkdg'",
    "sigma_max": "first noise level in Angstrom (null = the model's largest training level)",
    "sigma_min": "last noise level in Angstrom (null = the model's smallest training level)",
    "num_levels": "number of noise levels, geometric from sigma_max to sigma_min",
    "steps_per_level": "Langevin (corrector) steps at each level",
    "eps": "Langevin step size at sigma_min; a_i = eps * sigma_i^2 / sigma_min^2",
    "final_denoise": "finish with x + sigma_min^2 * s(x, sigma_min) (always done by 'pc')",
    "clip": "largest norm of one atom's score (ConfGF: 1000); null = no clipping",
    "max_retries": "how often a conformer that blew up or has wrong stereo is sampled again",
    "retry_step_factor": "step size factor per retry after a blow-up (eps * factor^attempt)",
    "noise_fallback_levels": "init 'etkdg' only: a conformer ETKDG cannot embed (strained polycycles) is sampled "
                             "from pure noise with the 'pc' sampler over this many levels from the model's "
                             "largest noise level to sigma_min (0 = drop it)",
    "rho": "null = geometric levels; a number = EDM's schedule with this rho (7 in the paper): more levels at "
           "small sigma",
    "churn": "'heun' only: EDM's S_churn, the noise re-injected before each step (gamma = min(churn / "
             "num_levels, sqrt(2) - 1)); 0 = the deterministic probability-flow ODE",
    "oversample": "make ceil(oversample x n) candidates and keep the n most diverse (greedy max-min heavy-atom "
                  "RMSD): init 'etkdg' selects among the ETKDG initial guesses and samples only those, init "
                  "'noise' samples all candidates and selects afterwards; 1 = no selection",
}

#: sampling methods of :func:`sample`
METHODS = ("ald", "pc", "heun")


def _parse_value(text: str):
    """Parse an override value: null/none, true/false, int, float, else the string."""
    low = text.strip().lower()
    if low in ("null", "none"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip()


def parse_overrides(items: Sequence[str] | None) -> dict:
    """``["steps_per_level=5", "eps=1e-5"]`` -> ``{"steps_per_level": 5, "eps": 1e-5}``.

    Raises:
        ConfgenError: an item without ``=``.
    """
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ConfgenError(f"preset override {item!r} is not KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value)
    return out


def resolve_preset(preset: str | dict | None = None, overrides: dict | None = None) -> dict:
    """A complete, validated sampler parameter dict.

    Args:
        preset: a name in :data:`SAMPLER_PRESETS` (``None`` = :data:`DEFAULT_PRESET`) or a dict; a dict may be
            partial when it names a base preset under the key ``"base"`` (default: the default preset).
        overrides: keys of :data:`PRESET_KEYS` to replace.

    Returns:
        A new dict with exactly the keys of :data:`PRESET_KEYS`.

    Raises:
        ConfgenError: unknown preset name, unknown key, or an invalid value.
    """
    if preset is None:
        preset = DEFAULT_PRESET
    if isinstance(preset, str):
        if preset not in SAMPLER_PRESETS:
            raise ConfgenError(f"unknown sampler preset {preset!r} (known: {', '.join(SAMPLER_PRESETS)})")
        params = dict(SAMPLER_PRESETS[preset])
    elif isinstance(preset, dict):
        preset = dict(preset)
        base = preset.pop("base", DEFAULT_PRESET)
        params = resolve_preset(base)
        params.update(preset)
    else:
        raise ConfgenError(f"a sampler preset is a name or a dict, not {type(preset).__name__}")
    params.update(overrides or {})
    unknown = sorted(set(params) - set(PRESET_KEYS))
    if unknown:
        raise ConfgenError(f"unknown sampler parameter(s) {', '.join(unknown)} (known: {', '.join(PRESET_KEYS)})")
    _validate(params)
    return params


def _validate(p: dict) -> None:
    def bad(key, why):
        raise ConfgenError(f"sampler parameter {key}={p[key]!r}: {why}")

    if p["method"] not in METHODS:
        bad("method", f"must be one of {', '.join(METHODS)}")
    if p["rho"] is not None and not (isinstance(p["rho"], (int, float)) and not isinstance(p["rho"], bool)
                                     and p["rho"] > 0):
        bad("rho", "must be a positive number or null")
    if not (isinstance(p["churn"], (int, float)) and not isinstance(p["churn"], bool) and p["churn"] >= 0):
        bad("churn", "must be a non-negative number")
    if p["init"] not in ("noise", "etkdg"):
        bad("init", "must be 'noise' or 'etkdg'")
    for key in ("sigma_max", "sigma_min", "init_std"):
        if p[key] is not None and not (isinstance(p[key], (int, float)) and p[key] > 0):
            bad(key, "must be a positive number or null")
    for key in ("num_levels", "steps_per_level", "max_retries", "noise_fallback_levels"):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 0:
            bad(key, "must be a non-negative integer")
    if p["num_levels"] < 1:
        bad("num_levels", "must be at least 1")
    if not (isinstance(p["eps"], (int, float)) and p["eps"] > 0):
        bad("eps", "must be a positive number")
    if not (isinstance(p["retry_step_factor"], (int, float)) and 0 < p["retry_step_factor"] <= 1):
        bad("retry_step_factor", "must be in (0, 1]")
    if p["clip"] is not None and not (isinstance(p["clip"], (int, float)) and p["clip"] > 0):
        bad("clip", "must be a positive number or null")
    if not (isinstance(p["oversample"], (int, float)) and not isinstance(p["oversample"], bool)
            and 1 <= p["oversample"] <= 10):
        bad("oversample", "must be a number from 1 to 10")
    if not isinstance(p["final_denoise"], bool):
        bad("final_denoise", "must be true or false")


def sigma_schedule(params: dict, model_sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """Noise levels of a preset: from ``sigma_max`` to ``sigma_min`` in ``num_levels`` levels, geometric or (``rho``
    set) EDM's ``(sigma_max^(1/rho) + i / (L-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``.

    Args:
        params: a resolved preset.
        model_sigmas: [L] the model's training schedule (descending), used where a preset says null.

    Returns:
        [num_levels] float64 tensor, descending.
    """
    hi, lo = params["sigma_max"], params["sigma_min"]
    if hi is None or lo is None:
        if model_sigmas is None:
            raise ConfgenError("the sampler preset takes sigma_max/sigma_min from the model, but none was given")
        hi = float(model_sigmas.max()) if hi is None else hi
        lo = float(model_sigmas.min()) if lo is None else lo
    if lo > hi:
        raise ConfgenError(f"sampler sigma_min {lo} is larger than sigma_max {hi}")
    n = params["num_levels"]
    if n == 1:
        return torch.tensor([float(lo)], dtype=torch.float64)
    rho = params.get("rho")
    if rho is not None:
        t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
        return (hi ** (1.0 / rho) + t * (lo ** (1.0 / rho) - hi ** (1.0 / rho))) ** rho
    return torch.exp(torch.linspace(math.log(hi), math.log(lo), n, dtype=torch.float64))


def noise_fallback_params(params: dict) -> dict | None:
    """The preset that samples from pure noise where ETKDG cannot embed (``None``: no fallback)."""
    levels = params.get("noise_fallback_levels", 0)
    if params["init"] != "etkdg" or not levels:
        return None
    return dict(params, method="pc", init="noise", init_std=None, sigma_max=None, num_levels=levels,
                steps_per_level=0, final_denoise=True, rho=None, churn=0.0)


def evals_per_sample(params: dict) -> int:
    """Score-function evaluations per conformer of a preset (no retries)."""
    levels, steps = params["num_levels"], params["steps_per_level"]
    if params["method"] == "pc":
        return levels * (steps + 1)
    if params["method"] == "heun":
        return levels * (steps + 2) - 1
    return levels * steps + int(params["final_denoise"])


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
        rmax = torch.zeros(self.num_graphs, dtype=r.dtype, device=r.device)
        rmax = rmax.scatter_reduce(0, self.batch, r, reduce="amax", include_self=True)  # [G]
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
           callback: Callable[[int, int], None] | None = None) -> SampleResult:
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
    x = remove_com(x, batch, num_graphs)
    return SampleResult(pos=x, ok=alive.clone(), num_evals=num_evals)


def seed_for(*keys: int) -> int:
    """A 63-bit seed derived from integers (e.g. run seed, molecule, conformer, attempt); stable across runs."""
    state = np.random.SeedSequence([int(k) % (2**63) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 ^ int(state[1])) % (2**63)
