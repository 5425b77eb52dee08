"""One optimisation step: the denoising score matching loss of a batch, backward, clipping, optimiser and
scheduler step; its noise comes from a generator seeded by (seed, step, rank), so a resumed run repeats it."""

from __future__ import annotations

import math

import torch
from torch_geometric.data import Batch

from confgen.config import NoiseConfig
from confgen.losses import dsm_loss
from confgen.noise import draw_sigmas, perturb
from confgen.training.setup import DistInfo, TrainingError


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The CPU generator of the sigmas and noise of ``step`` on process ``rank``."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step) * 1009 + rank)
    return g


def is_oom(exc: BaseException) -> bool:
    """An allocator failure: CUDA's ``OutOfMemoryError``, ``MemoryError``, or a RuntimeError saying so."""
    if isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()
        or "can't allocate memory" in str(exc).lower())


def denoising_loss(model, graphs: Batch, pos: torch.Tensor, *, noise: NoiseConfig, sigmas: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """One denoising score matching loss: draw a sigma per conformer, perturb, score, weight.

    Args:
        model: ``model(graphs, x [N, 3], sigma [N]) -> score [N, 3]`` (a ScoreModel or its DDP wrapper).
        graphs: the batch's graphs (on the device).
        pos: [N, 3] clean coordinates.
        noise: how sigma is drawn (``distribution``, ``p_mean``, ``p_std``) and the loss weighted
            (``weighting``, ``sigma_data``).
        sigmas: [L] the model's schedule (bounds of the continuous distributions).
        generator: CPU generator of the sigmas and the noise.

    Returns:
        Scalar loss.
    """
    sig_g = draw_sigmas(graphs.num_graphs, distribution=noise.distribution, sigmas=sigmas.cpu(),
                        p_mean=noise.p_mean, p_std=noise.p_std, generator=generator).to(pos.device)
    sig = sig_g[graphs.batch]  # [N]
    x, eps = perturb(pos, sig, graphs.batch, graphs.num_graphs, generator=generator)
    return dsm_loss(model(graphs, x, sig), eps, sig, graphs.batch, graphs.num_graphs, weighting=noise.weighting,
                    sigma_data=noise.sigma_data)


def grad_norm(parameters, clip: float) -> torch.Tensor:
    """Global gradient norm, clipped to ``clip`` in place when ``clip > 0``."""
    parameters = list(parameters)
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(parameters, clip)
    return torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in parameters if p.grad is not None))


def train_step(model: torch.nn.Module, ddp: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, graphs: Batch, *, noise: NoiseConfig,
               sigmas: torch.Tensor, generator: torch.Generator, grad_clip: float, dist: DistInfo,
               step: int, last_path) -> tuple[float, float]:
    """Forward, backward and update on one batch (``graphs.pos`` the clean coordinates, on the device).

    Args:
        model: the raw model (its parameters are clipped and stepped).
        ddp: what is called: ``model`` or its DistributedDataParallel wrapper.
        last_path: the ``last.pt`` named in errors.

    Returns:
        (loss averaged over processes, gradient norm before clipping).

    Raises:
        TrainingError: non-finite loss or gradient (before the weights change).
    """
    loss = denoising_loss(ddp, graphs, graphs.pos, noise=noise, sigmas=sigmas, generator=generator)
    loss_val = loss.detach().clone()
    if dist.distributed:
        torch.distributed.all_reduce(loss_val)
        loss_val /= dist.world_size
    loss_f = float(loss_val)
    if not math.isfinite(loss_f):
        raise TrainingError(
            f"loss became {loss_f} at step {step}; stopped, the last good checkpoint is kept in "
            f"{last_path} (try a lower train.lr or train.grad_clip)")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    gn = float(grad_norm(model.parameters(), grad_clip))
    if not math.isfinite(gn):
        raise TrainingError(
            f"gradient became {gn} at step {step}; stopped, the last good checkpoint is kept "
            f"in {last_path} (try a lower train.lr)")
    optimizer.step()
    scheduler.step()
    return loss_f, gn
