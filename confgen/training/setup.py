"""What a training run is made of before its first step: process layout, checked config, datasets, model,
optimiser, learning-rate schedule and the EMA of the weights."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch.optim.swa_utils import AveragedModel
from torch.utils.data.distributed import DistributedSampler

from confgen.config import Config
from confgen.data.dataset import ConformerDataset, read_summary
from confgen.errors import ConfgenError
from confgen.losses import WEIGHTINGS
from confgen.noise import SIGMA_DISTRIBUTIONS

#: columns of ``log.csv``
LOG_FIELDS = ("step", "epoch", "lr", "train_loss", "grad_norm", "val_loss", "conformers_per_s", "elapsed_s")


class TrainingError(ConfgenError):
    """Training cannot go on (non-finite loss, out of memory, ...)."""


@dataclass
class DistInfo:
    """Process layout: ``world_size`` processes, this one is ``rank`` (``local_rank`` on its node)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> DistInfo:
    """Read ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` set by ``torchrun`` (defaults: one process)."""
    return DistInfo(world_size=int(os.environ.get("WORLD_SIZE", "1")), rank=int(os.environ.get("RANK", "0")),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def check_config(config: Config) -> None:
    """Raise :class:`ConfgenError` for settings training cannot run with (before any file is read)."""
    if not config.data.path:
        raise ConfgenError("data.path is not set: point it at a dataset directory written by 'confgen prepare'")
    if config.train.batch_size < 1:
        raise ConfgenError("train.batch_size must be at least 1")
    if config.noise.distribution not in SIGMA_DISTRIBUTIONS:
        raise ConfgenError(f"unknown noise.distribution {config.noise.distribution!r} "
                           f"(known: {', '.join(SIGMA_DISTRIBUTIONS)})")
    if config.noise.weighting not in WEIGHTINGS:
        raise ConfgenError(f"unknown noise.weighting {config.noise.weighting!r} (known: {', '.join(WEIGHTINGS)})")


@dataclass
class RunData:
    """The datasets of a run: ``summary`` (``summary.json``), ``train`` and ``val`` conformers, ``n_val`` of which
    are validated."""

    summary: dict
    train: ConformerDataset
    val: ConformerDataset
    n_val: int


def load_data(config: Config) -> RunData:
    """Open the prepared dataset of ``config.data.path`` (clear errors for a missing or empty one)."""
    summary = read_summary(config.data.path)
    train_ds = ConformerDataset(config.data.path, "train", max_confs=config.data.max_confs)
    if len(train_ds) == 0:
        raise ConfgenError(f"{config.data.path}: no training conformers (no train_*.pt shards with conformers)")
    val_ds = ConformerDataset(config.data.path, "val")
    vmax = config.train.val_max_confs
    return RunData(summary, train_ds, val_ds, len(val_ds) if vmax is None else min(len(val_ds), vmax))


@dataclass
class Plan:
    """The data order and length of a run: ``sampler`` (the seeded permutation of each epoch), batches per epoch
    and total steps."""

    sampler: DistributedSampler
    batches_per_epoch: int
    total_steps: int


def plan_steps(config: Config, train_ds: ConformerDataset, dist: DistInfo) -> Plan:
    """The epoch permutation (a ``DistributedSampler``, also with one process) and the number of steps."""
    tc = config.train
    sampler = DistributedSampler(train_ds, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                 seed=tc.seed, drop_last=False)
    batches_per_epoch = math.ceil(len(sampler) / tc.batch_size)
    total_steps = tc.max_steps if tc.max_steps is not None else tc.epochs * batches_per_epoch
    if total_steps < 1:
        raise ConfgenError("nothing to train: train.max_steps / train.epochs give 0 steps")
    return Plan(sampler, batches_per_epoch, total_steps)


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, schedule: str, min_ratio: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine to ``min_ratio`` or constant."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        t = min(max(step - warmup_steps, 0) / span, 1.0)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
    raise ConfgenError(f"unknown train.lr_schedule {schedule!r} (known: cosine, constant)")


def make_optimizer(model: torch.nn.Module, config: Config,
                   total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and its per-step :func:`lr_factor` schedule."""
    tc = config.train
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup_steps=tc.warmup_steps, total_steps=total_steps,
                                       schedule=tc.lr_schedule, min_ratio=tc.min_lr_ratio))
    return optimizer, scheduler


def ema_decay_at(decay: float, num_updates: int) -> float:
    """Decay of EMA update number ``num_updates`` (1, 2, ...): ``min(decay, (1 + n) / (10 + n))`` (0 = off)."""
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates)) if decay > 0 else 0.0


def make_ema(model: torch.nn.Module, decay: float) -> AveragedModel:
    """Exponential moving average of the weights as a :class:`torch.optim.swa_utils.AveragedModel`, with the
    warm-up of :func:`ema_decay_at`.

    ``ema.module`` is the averaged model (used to validate and saved for inference); its buffers follow the
    model's. Update it with ``ema.update_parameters(model)`` after each optimiser step; :func:`ema_updates` counts
    those updates (the averaged model starts as a copy of the initial weights, which is not an update).
    """
    decay = float(decay)

    @torch.no_grad()
    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        d = ema_decay_at(decay, int(num_averaged))  # num_averaged counts the initial copy: = update number
        for a, c in zip(averaged, current):
            a.mul_(d).add_(c, alpha=1.0 - d)

    ema = AveragedModel(model, multi_avg_fn=average, use_buffers=False)
    ema.update_parameters(model)  # the initial copy
    ema.decay = decay
    return ema


def ema_updates(ema: AveragedModel) -> int:
    """Number of :meth:`AveragedModel.update_parameters` calls after :func:`make_ema` (the stored ``num_updates``)."""
    return int(ema.n_averaged) - 1


def load_ema_state(ema: AveragedModel, state: dict) -> None:
    """Restore a checkpoint's ``ema`` entry (``decay``, ``num_updates``, ``shadow``) into ``ema``."""
    ema.module.load_state_dict(state["shadow"])
    ema.n_averaged.fill_(int(state["num_updates"]) + 1)
