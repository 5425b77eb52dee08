"""Sampling stage: one batch of conformer slots through the score model with a sampler of
:mod:`confgen.sampling`.

Every conformer draws its noise from its own generator seeded by ``(seed, molecule id, conformer, attempt)``:
the same seed and device give the same coordinates, whatever the batch size or the other molecules of the run
(up to floating-point summation order inside the network). The model is used through
:class:`confgen.models.interface.ScoreModelInterface`: its ``schedule`` gives the noise range a preset leaves
open (``sigma_max`` / ``sigma_min`` null), its ``cutoff`` whether the atom pairs of the batch are precomputed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Batch

from confgen.config import SamplerPreset
from confgen.data.graph import all_pairs
from confgen.errors import ConfgenError
from confgen.generation.seeds import seed_for
from confgen.generation.state import MoleculeState
from confgen.models.interface import ScoreModelInterface
from confgen.noise import NoiseSchedule, remove_com
from confgen.sampling import NoiseSource, SampleResult, sample


def noise_levels(preset: SamplerPreset, model: ScoreModelInterface | None = None) -> torch.Tensor:
    """Noise levels of a preset: ``num_levels`` levels from ``sigma_max`` to ``sigma_min``, geometric or (``rho``
    set) EDM's; a null end comes from the model's training schedule.

    Returns:
        [num_levels] float64 tensor, descending (a single level is ``sigma_min``).

    Raises:
        ConfgenError: a null end without a model, or ``sigma_min > sigma_max``.
    """
    hi, lo = preset.sigma_max, preset.sigma_min
    if hi is None or lo is None:
        if model is None:
            raise ConfgenError("the sampler preset takes sigma_max/sigma_min from the model, but none was given")
        hi = model.schedule.sigma_max if hi is None else hi
        lo = model.schedule.sigma_min if lo is None else lo
    if lo > hi:
        raise ConfgenError(f"sampler sigma_min {lo} is larger than sigma_max {hi}")
    return NoiseSchedule(sigma_max=hi, sigma_min=lo, num_levels=preset.num_levels, rho=preset.rho).sigmas()


def sample_chunk(chunk: list[tuple[int, int]], states: list[MoleculeState], inits: dict, *,
                 model: ScoreModelInterface | None, preset: SamplerPreset, sigmas: torch.Tensor | None, seed: int,
                 device: torch.device, dtype: torch.dtype) -> tuple[SampleResult, object]:
    """Sample one batch of slots ``(molecule, conformer)``.

    ``model=None`` (network off): the ETKDG initial guesses come back as they are.

    Returns:
        ``(result, batch)``: the sampler's result and the collated graphs of the chunk.
    """
    graphs = [states[k].graph for k, _ in chunk]
    batch = Batch.from_data_list(graphs).to(device)
    sizes = [g.num_nodes for g in graphs]
    if model is None:
        x0 = torch.from_numpy(np.concatenate([inits[k][j] for k, j in chunk])).to(device=device, dtype=dtype)
        res = SampleResult(pos=remove_com(x0, batch.batch, batch.num_graphs),
                           ok=torch.ones(batch.num_graphs, dtype=torch.bool), num_evals=0)
        return res, batch
    attempt = [states[k].attempts.get(j, 0) for k, j in chunk]
    noise = NoiseSource(seeds=[seed_for(seed, states[k].uid, j, a) for (k, j), a in zip(chunk, attempt)],
                        sizes=sizes, device=device, dtype=dtype)
    sig0 = float(sigmas[0])
    if preset.init == "etkdg":
        x0 = torch.from_numpy(np.concatenate([inits[k][j] for k, j in chunk])).to(device=device, dtype=dtype)
        x0 = x0 + sig0 * noise.draw()
    else:
        std = preset.init_std if preset.init_std is not None else sig0
        x0 = std * noise.draw()
    eps = torch.tensor([preset.eps * preset.retry_step_factor ** states[k].blowups.get(j, 0) for k, j in chunk],
                       dtype=torch.float64)
    pairs = all_pairs(batch.ptr) if model.cutoff > 0 else None

    def score_fn(pos: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return model(batch, pos, sigma, pairs=pairs)

    res = sample(score_fn, x0, batch.batch, batch.num_graphs, sigmas.to(dtype), method=preset.method,
                 steps_per_level=preset.steps_per_level, eps=eps.to(device=device, dtype=dtype),
                 final_denoise=preset.final_denoise, clip=preset.clip, churn=preset.churn, noise=noise,
                 polish_steps=preset.polish_steps, polish_sigma=preset.polish_sigma, polish_rate=preset.polish_rate, polish_first=preset.polish_first)
    return res, batch
