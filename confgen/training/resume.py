"""Continuing a run (``--resume``) from ``last.pt``, and starting from another checkpoint's weights
(``train.init_from``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel

from confgen.checkpoint import read_checkpoint, restore_rng
from confgen.config import Config
from confgen.errors import ConfgenError
from confgen.training.setup import load_ema_state

#: train settings that a resumed run may change (how long it runs and how often it logs/validates/saves)
RESUME_MAY_CHANGE = ("max_steps", "epochs", "val_every", "ckpt_every", "log_every")


def resume_differences(saved: Config, config: Config) -> list[str]:
    """Settings of ``config`` that differ from the checkpoint's (``data.*`` and ``train.*``), as ``key (a -> b)``."""
    out = []
    for key in vars(saved.data):
        a, b = getattr(saved.data, key), getattr(config.data, key)
        if key == "path":
            a, b = os.path.realpath(a), os.path.realpath(b)
        if a != b:
            out.append(f"data.{key} ({a} -> {b})")
    for key in vars(saved.train):
        if key not in RESUME_MAY_CHANGE and getattr(saved.train, key) != getattr(config.train, key):
            out.append(f"train.{key} ({getattr(saved.train, key)} -> {getattr(config.train, key)})")
    return out


def open_run(out: Path, config: Config, resume: bool) -> dict | None:
    """The checkpoint to resume from (``None`` for a new run), after checking that it may be resumed.

    Raises:
        ConfgenError: nothing to resume, a different model/noise/data/optimiser config, or a new run into a
            directory that already holds one.
    """
    last_path = out / "last.pt"
    if not resume:
        if last_path.exists():
            raise ConfgenError(f"{out} already holds a training run (last.pt); use --resume or another --out")
        return None
    if not last_path.is_file():
        raise ConfgenError(f"--resume: {last_path} does not exist (nothing to resume)")
    ckpt = read_checkpoint(last_path, device="cpu")
    saved = Config.from_dict(ckpt["config"], source=str(last_path))
    for section in ("model", "noise"):
        if getattr(saved, section) != getattr(config, section):
            raise ConfgenError(f"--resume: the '{section}' section of the config differs from {last_path}")
    changed = resume_differences(saved, config)
    if changed:
        raise ConfgenError(f"--resume: {', '.join(changed)} differ from {last_path} (give the same config and "
                           f"--set options as the run being resumed; only the length and logging settings "
                           f"{', '.join('train.' + k for k in RESUME_MAY_CHANGE)} may change)")
    return ckpt


#: model settings that fix the weights' shapes and meaning: ``train.init_from`` needs them equal
ARCHITECTURE_FIELDS = ("backbone", "hidden_dim", "num_layers", "cutoff", "num_rbf", "sigma_embed_dim")


def init_weights(model: torch.nn.Module, config: Config, path: str) -> dict:
    """Load the inference weights of checkpoint ``path`` into ``model`` (``train.init_from``).

    The architecture (:data:`ARCHITECTURE_FIELDS`) must be the checkpoint's. The output parameterisation
    (``model.precond``) and the noise section may differ: fine-tuning an ``eps`` model into an ``edm`` one
    starts from features that already know molecules.

    Returns:
        the provenance of the starting weights, for the new checkpoint's ``trained_on``: ``path``, the
        settings that differ (``changed``, as ``"section.key (old -> new)"``) and what the checkpoint
        itself was ``trained_on``.
    """
    src = read_checkpoint(path)
    # the checkpoint's settings with today's defaults for keys it predates (model.precond, noise.distribution...)
    saved_cfg = Config.from_dict({k: src["config"].get(k, {}) for k in ("model", "noise")}, source=str(path))
    saved_all = saved_cfg.to_dict()
    ours = config.to_dict()
    wrong = [k for k in ARCHITECTURE_FIELDS if saved_all["model"][k] != ours["model"][k]]
    if wrong:
        raise ConfgenError(f"train.init_from: {', '.join('model.' + k for k in wrong)} of {path} differ from "
                           f"this config (the architecture must be the same)")
    model.load_state_dict(src["model"])
    changed = []
    for section in ("model", "noise"):
        saved = saved_all[section]
        for key, value in ours[section].items():
            if saved[key] != value:
                changed.append(f"{section}.{key} ({saved[key]} -> {value})")
    return {"path": str(path), "changed": changed, "trained_on": src.get("trained_on")}


@dataclass
class Progress:
    """Where a run stands: ``step`` done, ``metrics`` so far and the best validation loss."""

    step: int = 0
    metrics: dict = field(default_factory=dict)
    best_val: float = math.inf


def restore(ckpt: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler, ema: AveragedModel) -> Progress:
    """Load a ``last.pt``'s training state (weights, optimiser, scheduler, EMA, random states) into a new run."""
    model.load_state_dict(ckpt["raw_model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    load_ema_state(ema, ckpt["ema"])
    metrics = dict(ckpt.get("metrics", {}))
    restore_rng(ckpt)
    return Progress(step=int(ckpt["step"]), metrics=metrics, best_val=float(metrics.get("best_val_loss", math.inf)))
