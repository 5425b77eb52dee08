"""Checkpoints: the format (assembled here), atomic writing, rebuilding a :class:`ScoreModel` from a checkpoint alone.

A checkpoint is a dict of plain Python values and tensors (loadable with ``torch.load(weights_only=True)``)::

    {"format": "confgen-checkpoint-v1", "version": confgen.__version__, "config": Config.to_dict(),
     "model": state_dict (EMA weights when EMA is on; used for inference),
     "trained_on": {dataset, n_molecules, n_conformers, sources, excluded, ...},
     "metrics": {...}, "step": int, "epoch": int,
     # training state (last.pt only, enough to resume exactly; best.pt holds just the part above):
     "raw_model", "ema": {"decay", "num_updates", "shadow"}, "optimizer", "scheduler",
     "rng": {"torch", "python"}}
"""

from __future__ import annotations

import os
import random
from importlib import resources
from pathlib import Path

import torch

from confgen.chem.files import atomic_write
from confgen.errors import ConfgenError

CHECKPOINT_FORMAT = "confgen-checkpoint-v1"
DEFAULT_CHECKPOINT = "default.pt"


#: ``dataset_provenance`` keys copied from a dataset's ``summary.json``
_PROVENANCE_KEYS = ("format", "n_molecules", "n_conformers", "n_skipped", "excluded", "n_exclusion_smiles", "sources",
                    "exclusion_files", "splits", "trained_on")


def dataset_provenance(directory: str, summary: dict, n_train: int, n_val: int) -> dict:
    """What a model was trained on, stored in its checkpoint: the dataset directory, its counts, sources and
    exclusion lists (``summary.json`` of ``confgen prepare``, including its ``trained_on`` block when present;
    per-input skip lists are left out)."""
    out = {"dataset": str(directory), "n_train_conformers": n_train, "n_val_conformers": n_val}
    out.update({k: summary[k] for k in _PROVENANCE_KEYS if k in summary})
    return out


def _cpu_state(state: dict) -> dict:
    return {k: v.detach().cpu() for k, v in state.items()}


def inference_payload(*, version: str, config: dict, weights: dict, trained_on: dict, metrics: dict, step: int,
                      epoch: int) -> dict:
    """The part of a checkpoint that inference needs (all of ``best.pt``): ``weights`` is the state dict used for
    sampling (the EMA weights)."""
    return {"version": version, "config": config, "model": _cpu_state(weights), "trained_on": trained_on,
            "metrics": metrics, "step": step, "epoch": epoch}


def training_payload(inference: dict, *, raw_weights: dict, ema_decay: float, ema_updates: int, optimizer: dict,
                     scheduler: dict) -> dict:
    """``inference`` plus what resuming needs (``last.pt``): raw weights, the EMA's state (its shadow is the
    inference weights), optimiser, scheduler and the torch / Python random states of this process."""
    return {**inference, "raw_model": _cpu_state(raw_weights),
            "ema": {"decay": ema_decay, "num_updates": ema_updates, "shadow": inference["model"]},
            "optimizer": optimizer, "scheduler": scheduler,
            "rng": {"torch": torch.get_rng_state(), "python": _to_list(random.getstate())}}


def restore_rng(ckpt: dict) -> None:
    """Restore the random states a :func:`training_payload` stored (missing ones are left alone)."""
    rng = ckpt.get("rng", {})
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "python" in rng:
        random.setstate(_to_tuple(rng["python"]))


def _to_list(x):
    """Nested tuples -> nested lists (``random.getstate()`` stored with ``weights_only`` types)."""
    if isinstance(x, tuple):
        return [_to_list(v) for v in x]
    return x


def _to_tuple(x):
    if isinstance(x, list):
        return tuple(_to_tuple(v) for v in x)
    return x


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically (temp file in the same directory, then ``os.replace``)."""
    atomic_write(path, lambda fh: torch.save({"format": CHECKPOINT_FORMAT, **payload}, fh), binary=True)


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict safely (``weights_only=True``); clear errors for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise ConfgenError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise ConfgenError(f"{path}: not a readable confgen checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or "config" not in ckpt:
        raise ConfgenError(f"{path}: not a confgen checkpoint (format {CHECKPOINT_FORMAT} expected)")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu", weights: str = "model"):
    """Rebuild the model of a checkpoint dict.

    Args:
        ckpt: dict from :func:`read_checkpoint`.
        device: torch device.
        weights: ``"model"`` (EMA / inference weights) or ``"raw_model"`` (raw training weights).

    Returns:
        :class:`confgen.models.score_net.ScoreModel` in eval mode, with attributes ``config`` (Config),
        ``trained_on``, ``metrics`` and ``checkpoint_version``.
    """
    from confgen.config import Config
    from confgen.models.score_net import build_model

    config = Config.from_dict(ckpt["config"], source="checkpoint config")
    model = build_model(config)
    model.load_state_dict(ckpt[weights] if weights in ckpt else ckpt["model"])
    model.to(device).eval()
    model.config = config
    model.trained_on = ckpt.get("trained_on", {})
    model.metrics = ckpt.get("metrics", {})
    model.checkpoint_version = ckpt.get("version")
    return model


def default_checkpoint_path() -> Path | None:
    """Path of the shipped default checkpoint, or ``None`` if the package ships none."""
    return shipped_checkpoint_path(DEFAULT_CHECKPOINT[:-3])


def shipped_checkpoint_path(name: str) -> Path | None:
    """Path of the checkpoint ``confgen/checkpoints/<name>.pt`` shipped in the package, or ``None``."""
    ref = resources.files("confgen.checkpoints").joinpath(f"{name}.pt")
    if ref.is_file():
        return Path(str(ref))
    return None


def model_for_preset(model, preset) -> object:
    """The model a run uses: ``model`` when given, else the shipped checkpoint the sampler preset names
    (:attr:`confgen.config.SamplerPreset.model`; ``None`` = the default model).

    Raises:
        ConfgenError: the preset names a checkpoint this installation does not ship.
    """
    if model is not None or preset is None or getattr(preset, "model", None) is None:
        return model
    path = shipped_checkpoint_path(preset.model)
    if path is None:
        raise ConfgenError(f"the sampler preset needs the model confgen/checkpoints/{preset.model}.pt, which this "
                           "installation does not ship; pass one with --model")
    return str(path)


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
    """Load a score model from a checkpoint; ``None`` = the default model shipped with the package.

    Args:
        path: checkpoint file (``best.pt`` / ``last.pt`` written by ``confgen train``) or ``None``.
        device: torch device string.

    Returns:
        :class:`confgen.models.score_net.ScoreModel` in eval mode.

    Raises:
        ConfgenError: missing or unreadable file, or no default model shipped.
    """
    if path is None:
        path = default_checkpoint_path()
        if path is None:
            raise ConfgenError("no default model shipped with this confgen installation "
                               "(confgen/checkpoints/default.pt); pass a checkpoint trained with 'confgen train'")
    return model_from_checkpoint(read_checkpoint(path, device=device), device=device)
