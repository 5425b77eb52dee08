"""Configuration: typed dataclass sections loaded from YAML, with ``--set key=value`` overrides.

A config file has the sections ``data``, ``model``, ``noise`` and ``train`` (all optional; missing keys take
the defaults below). An unknown section or key, or a value of the wrong type, is a :class:`ConfgenError`
naming the key and the file.

Relative paths (``data.path``) written in a YAML file are resolved relative to **the directory of that YAML
file**, so a config works from any working directory; paths given with ``--set`` are resolved relative to
the current working directory.

Example::

    cfg = load_config("configs/tiny_egnn.yaml", overrides=["train.max_steps=20", "model.backbone=clofnet"])
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from confgen.chem.files import atomic_write
from confgen.errors import ConfgenError


@dataclass
class DataConfig:
    """Training data.

    Attributes:
        path: dataset directory written by ``confgen prepare`` (``summary.json`` + shards).
        max_confs: use at most this many conformers per molecule (``None`` = all).
    """

    path: str = ""
    max_confs: int | None = None


@dataclass
class ModelConfig:
    """Score network.

    Attributes:
        backbone: ``egnn`` or ``clofnet`` (see :data:`confgen.models.BACKBONES`).
        hidden_dim: width of node and edge features.
        num_layers: message-passing layers.
        cutoff: radius-edge cutoff in Angstrom added to the extended bond graph (0 = no radius edges).
        num_rbf: Gaussian radial basis functions for distances.
        sigma_embed_dim: Fourier features of log(sigma).
        precond: output parameterisation (see :class:`confgen.models.ScoreModel`): ``eps`` (the backbone
            predicts the unit noise, score = vec / sigma; the shipped models) or ``edm`` (Karras et al. 2022
            preconditioning: denoiser D = c_skip x + c_out F(c_in x), score = (D - x) / sigma^2, with
            ``noise.sigma_data``).
    """

    backbone: str = "clofnet"
    hidden_dim: int = 64
    num_layers: int = 4
    cutoff: float = 4.0
    num_rbf: int = 16
    sigma_embed_dim: int = 32
    precond: str = "eps"


@dataclass
class NoiseConfig:
    """Noise levels and how training draws them.

    Attributes:
        sigma_max: largest noise level (Angstrom).
        sigma_min: smallest noise level (Angstrom).
        num_levels: number of levels of the geometric schedule (ConfGF; ``model.sigmas``, what samplers take
            as the model's range).
        distribution: how training draws a conformer's sigma: ``levels`` (uniform over the geometric schedule,
            ConfGF), ``lognormal`` (``ln sigma ~ N(p_mean, p_std^2)``, clamped to [sigma_min, sigma_max];
            EDM) or ``loguniform`` (continuous, uniform in ln sigma over [sigma_min, sigma_max]).
        p_mean: mean of ln sigma for ``lognormal``.
        p_std: standard deviation of ln sigma for ``lognormal``.
        weighting: loss weight per conformer: ``sigma2`` (sigma^2-weighted DSM, ConfGF) or ``edm``
            (Karras et al. 2022: unit weight on the preconditioned network output, i.e. sigma^2 x
            (1 + sigma^2 / sigma_data^2) on the score error).
        sigma_data: per-coordinate standard deviation of centred clean coordinates (Angstrom), used by
            ``model.precond: edm`` and ``weighting: edm``.
    """

    sigma_max: float = 10.0
    sigma_min: float = 0.01
    num_levels: int = 50
    distribution: str = "levels"
    p_mean: float = 0.0
    p_std: float = 1.2
    weighting: str = "sigma2"
    sigma_data: float = 1.0


@dataclass
class TrainConfig:
    """Optimisation.

    Attributes:
        batch_size: conformers per step and per process (global batch = batch_size x processes).
        epochs: passes over the training set (ignored when ``max_steps`` is set).
        max_steps: total optimisation steps (``None`` = ``epochs`` x batches per epoch).
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps.
        lr_schedule: ``cosine`` (to ``min_lr_ratio`` x lr) or ``constant`` after warm-up.
        min_lr_ratio: final learning rate as a fraction of ``lr`` for the cosine schedule.
        grad_clip: clip the global gradient norm to this (0 = off).
        ema_decay: exponential moving average of the weights (0 = off; inference uses the EMA weights).
        val_every: validate every this many steps (0 = only at the end).
        ckpt_every: write ``last.pt`` every this many steps (0 = only at validation and the end).
        log_every: write a row of the CSV log every this many steps.
        val_max_confs: at most this many validation conformers (``None`` = all).
        seed: seed of the initial weights, the data order and the noise.
        init_from: start from the (EMA) weights of this checkpoint instead of random ones (fine-tuning; its
            model and noise sections must match this config).
    """

    batch_size: int = 32
    epochs: int = 10
    max_steps: int | None = None
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_schedule: str = "cosine"
    min_lr_ratio: float = 0.05
    grad_clip: float = 10.0
    ema_decay: float = 0.999
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 10
    val_max_confs: int | None = 2000
    seed: int = 0
    init_from: str | None = None


@dataclass
class Config:
    """The whole training configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (only str/int/float/bool/None), safe for ``torch.load(weights_only=True)``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None, source: str = "<dict>") -> "Config":
        """Build a config from a nested dict; unknown keys / wrong types raise :class:`ConfgenError`."""
        cfg = cls()
        if d is None:
            return cfg
        if not isinstance(d, dict):
            raise ConfgenError(f"{source}: a config must be a mapping of sections, got {type(d).__name__}")
        sections = {f.name for f in dataclasses.fields(cls)}
        for name, values in d.items():
            if name not in sections:
                raise ConfgenError(f"{source}: unknown config section '{name}' (known: {', '.join(sorted(sections))})")
            if values is None:
                continue
            if not isinstance(values, dict):
                raise ConfgenError(f"{source}: section '{name}' must be a mapping")
            for key, value in values.items():
                _set_field(getattr(cfg, name), name, key, value, source)
        return cfg


_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _field_types(obj) -> dict[str, Any]:
    hints = typing.get_type_hints(type(obj))
    return {f.name: hints[f.name] for f in dataclasses.fields(obj)}


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check ``value`` against the annotation ``tp``; returns (ok, value) with int -> float widening."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, v = _coerce(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):  # YAML 1.1 reads "1e-3" as a string
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    return False, value


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _set_field(section_obj, section: str, key: str, value: Any, source: str) -> None:
    types_ = _field_types(section_obj)
    if key not in types_:
        raise ConfgenError(f"{source}: unknown config key '{section}.{key}' (known: {', '.join(types_)})")
    ok, v = _coerce(value, types_[key])
    if not ok:
        raise ConfgenError(
            f"{source}: config key '{section}.{key}' must be {_type_name(types_[key])}, got {value!r}"
        )
    setattr(section_obj, key, v)


def apply_overrides(cfg: Config, overrides: list[str] | None, source: str = "--set") -> Config:
    """Apply ``section.key=value`` overrides (values parsed as YAML scalars) in place and return ``cfg``."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfgenError(f"{source}: override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if len(parts) != 2:
            raise ConfgenError(f"{source}: override key '{dotted}' must be section.key (e.g. train.lr)")
        section, key = parts
        if section not in {f.name for f in dataclasses.fields(cfg)}:
            raise ConfgenError(f"{source}: unknown config section '{section}' in override {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if section == "data" and key == "path" and isinstance(value, str) and value:
            value = str(Path(value).expanduser().resolve())
        _set_field(getattr(cfg, section), section, key, value, f"{source} {dotted}")
    return cfg


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, resolve ``data.path`` relative to the file, then apply overrides.

    Args:
        path: YAML file.
        overrides: ``["train.lr=1e-3", ...]``.

    Returns:
        The :class:`Config`.

    Raises:
        ConfgenError: missing/unreadable file, unknown key, wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfgenError(f"config file {path} does not exist")
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfgenError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    cfg = Config.from_dict(raw, source=str(path))
    if cfg.data.path and not os.path.isabs(os.path.expanduser(cfg.data.path)):
        cfg.data.path = str((path.resolve().parent / cfg.data.path).resolve())
    return apply_overrides(cfg, overrides)


def dump_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML to ``path`` atomically (absolute ``data.path``)."""
    atomic_write(path, lambda fh: yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False))
