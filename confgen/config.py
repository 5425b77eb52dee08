"""Configuration: typed dataclass sections loaded from YAML, with ``--set key=value`` overrides.

A config file has the sections ``data``, ``model``, ``noise`` and ``train`` (all optional; missing keys take
the defaults below). An unknown section or key, or a value of the wrong type, is a :class:`ConfgenError`
naming the key and the file.

Relative paths (``data.path``, ``train.init_from``) written in a YAML file are resolved relative to **the directory of that YAML
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
from confgen.options import DEFAULT_PRESET, PRESET_NAMES


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
            architecture must match this config, its ``model.precond`` and noise section may differ, and it
            is recorded under ``trained_on.init_from`` of the new checkpoints).
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
        if (section, key) in PATH_FIELDS and isinstance(value, str) and value:
            value = str(Path(value).expanduser().resolve())
        _set_field(getattr(cfg, section), section, key, value, f"{source} {dotted}")
    return cfg


#: config entries that are file paths: relative ones are resolved relative to the YAML file (or, given with
#: ``--set``, to the working directory)
PATH_FIELDS = (("data", "path"), ("train", "init_from"))


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, resolve its paths (:data:`PATH_FIELDS`) relative to the file, then apply overrides.

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
    for section, key in PATH_FIELDS:
        value = getattr(getattr(cfg, section), key)
        if value and not os.path.isabs(os.path.expanduser(value)):
            setattr(getattr(cfg, section), key, str((path.resolve().parent / value).resolve()))
    return apply_overrides(cfg, overrides)


def dump_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML to ``path`` atomically (absolute ``data.path``)."""
    atomic_write(path, lambda fh: yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False))


# =============================================================================================================
# Sampler presets: the typed settings of confgen's sampler (``confgen sample --preset``), validated with the same
# machinery as the training config (unknown keys, types, ranges). Torch-free: ``confgen sample`` checks a
# ``--preset-override`` before anything heavy is imported.
# =============================================================================================================

#: sampling methods of :func:`confgen.sampling.sample`
SAMPLER_METHODS = ("ald", "pc", "heun")
#: first level and number of levels of the ETKDG-seeded retries of a noise-start preset (``retry_from_etkdg``):
#: the ``fast`` preset's refinement
RETRY_SIGMA_MAX = 0.3
RETRY_LEVELS = 5
#: initial guesses of the sampler
SAMPLER_INITS = ("noise", "etkdg")


@dataclass(frozen=True, kw_only=True)
class SamplerPreset:
    """Every parameter of confgen's sampler; :data:`SAMPLER_PRESETS` holds the named ones.

    Attributes:
        method: ``ald`` (annealed Langevin), ``pc`` (ancestral predictor + Langevin corrector) or ``heun`` (EDM's
            stochastic second-order sampler: 2 x num_levels - 1 calls).
        init: ``noise`` (pure noise, std ``init_std``) or ``etkdg`` (RDKit ETKDG conformer + noise of std
            ``sigma_max``).
        init_std: std of the pure-noise start in Angstrom (``None`` = sigma_max); unused for init ``etkdg``.
        sigma_max: first noise level in Angstrom (``None`` = the model's largest training level).
        sigma_min: last noise level in Angstrom (``None`` = the model's smallest training level).
        num_levels: number of noise levels, geometric from sigma_max to sigma_min.
        steps_per_level: Langevin (corrector) steps at each level.
        eps: Langevin step size at sigma_min; ``a_i = eps * sigma_i^2 / sigma_min^2``.
        final_denoise: finish with ``x + sigma_min^2 * s(x, sigma_min)`` (always done by ``pc``).
        clip: largest norm of one atom's score (ConfGF: 1000); ``None`` = no clipping.
        max_retries: how often a conformer that blew up or has wrong stereo is sampled again.
        retry_step_factor: step size factor per retry after a blow-up (``eps * factor^attempt``).
        noise_fallback_levels: a conformer ETKDG cannot embed (strained polycycles; init ``etkdg``, or a retry
            with ``retry_from_etkdg``) is sampled from pure noise with the ``pc`` sampler over this many levels
            from the model's largest noise level to sigma_min (0 = drop it, or for ``retry_from_etkdg``: sample
            it with this preset again).
        rho: ``None`` = geometric levels; a number = EDM's schedule with this rho (7 in the paper): more levels
            at small sigma.
        churn: ``heun`` only: EDM's S_churn, the noise re-injected before each step (``gamma = min(churn /
            num_levels, sqrt(2) - 1)``); 0 = the deterministic probability-flow ODE.
        oversample: make ceil(oversample x n) candidates and keep the n most diverse (greedy max-min heavy-atom
            RMSD): init ``etkdg`` selects among the ETKDG initial guesses and samples only those, init ``noise``
            samples all candidates and selects afterwards; 1 = no selection.
        retry_from_etkdg: init ``noise`` only: a conformer sent back by the checks (wrong stereo a mirror cannot
            fix, a broken bond) is sampled again from an RDKit ETKDG guess with the ``fast`` preset's refinement
            (:meth:`etkdg_refinement`)
            (``pc``, 5 levels from 0.3 A) instead of from noise again; strained polycycles whose stereo the
            sampler rarely gets right from noise still get conformers. A slot ETKDG cannot embed stays on noise.
        model: the checkpoint shipped in ``confgen/checkpoints`` (its name without ``.pt``) that this preset
            uses when the caller gives no model (``None`` = ``default``); an explicit model always wins.
        energy_window: init ``noise`` with ``oversample`` > 1 and MMFF94 relaxation only: every candidate is
            relaxed, and the n kept are the most diverse of those within this many kcal/mol of the lowest MMFF94
            energy (topped up by energy when fewer are within); ``None`` = diverse selection before relaxation.
        trans_amides: turn every acyclic secondary amide that a sample leaves cis or twisted trans before the
            checks (:func:`confgen.chem.amides.turn_amides_trans`: a rigid rotation about the C-N bond; stereo,
            bond lengths and angles unchanged), as nearly all of them are in GEOM's and in GFN2-xTB ensembles.
        small_preset: a per-molecule choice (:meth:`for_molecule`): molecules of at most ``small_max_heavy_atoms``
            heavy atoms, and every molecule when no MMFF94 relaxation follows (unless ``raw_preset`` is set),
            are generated with this named preset (and its model) instead; ``None`` = every molecule with this
            preset.
        small_max_heavy_atoms: see ``small_preset``.
        raw_preset: with ``small_preset``: the named preset (and its model) of every molecule when no MMFF94
            relaxation follows (``None`` = ``small_preset``).
        polish_steps: after the last level (before the first with ``polish_first``), this many deterministic
            steps ``x + polish_rate * polish_sigma^2 * s(x, polish_sigma)``: mean-shift towards a mode of the
            learned density smoothed at ``polish_sigma``, the network's own relaxation (no force field, no
            noise); 0 = none.
        polish_sigma: the noise level (Angstrom) the polishing steps query the network at.
        polish_rate: the share of a full denoising step (Tweedie's) each polishing step takes, in (0, 1].
        polish_first: polish the initial coordinates, before the first level (the levels then restore the local
            geometry that the smoothed density blurs), instead of after the last.

    Raises:
        ConfgenError: (on construction) a value of the wrong type or out of range.
    """

    method: str
    init: str
    init_std: float | None
    sigma_max: float | None
    sigma_min: float | None
    num_levels: int
    steps_per_level: int
    eps: float
    final_denoise: bool
    clip: float | None
    max_retries: int
    retry_step_factor: float
    noise_fallback_levels: int
    rho: float | None
    churn: float
    oversample: float
    retry_from_etkdg: bool = False
    energy_window: float | None = None
    model: str | None = None
    trans_amides: bool = False
    small_preset: str | None = None
    small_max_heavy_atoms: int = 0
    raw_preset: str | None = None
    polish_steps: int = 0
    polish_sigma: float = 0.1
    polish_rate: float = 0.5
    polish_first: bool = False

    def __post_init__(self):
        for key, tp in _field_types(self).items():
            value = getattr(self, key)
            ok, v = _coerce(value, tp)
            if not ok:
                raise ConfgenError(f"sampler parameter {key}={value!r}: must be {_type_name(tp)}")
            object.__setattr__(self, key, v)
        self._check_ranges()

    def _check_ranges(self) -> None:
        def bad(key, why):
            raise ConfgenError(f"sampler parameter {key}={getattr(self, key)!r}: {why}")

        if self.method not in SAMPLER_METHODS:
            bad("method", f"must be one of {', '.join(SAMPLER_METHODS)}")
        if self.init not in SAMPLER_INITS:
            bad("init", "must be 'noise' or 'etkdg'")
        for key in ("sigma_max", "sigma_min", "init_std", "rho", "clip"):
            if getattr(self, key) is not None and not getattr(self, key) > 0:
                bad(key, "must be a positive number or null")
        for key in ("num_levels", "steps_per_level", "max_retries", "noise_fallback_levels", "polish_steps"):
            if getattr(self, key) < 0:
                bad(key, "must be a non-negative integer")
        if self.num_levels < 1:
            bad("num_levels", "must be at least 1")
        if not self.eps > 0:
            bad("eps", "must be a positive number")
        if not self.polish_sigma > 0:
            bad("polish_sigma", "must be a positive number")
        if not 0 < self.polish_rate <= 1:
            bad("polish_rate", "must be in (0, 1]")
        if not 0 < self.retry_step_factor <= 1:
            bad("retry_step_factor", "must be in (0, 1]")
        if self.energy_window is not None and not self.energy_window >= 0:
            bad("energy_window", "must be a non-negative number or null")
        if not self.churn >= 0:
            bad("churn", "must be a non-negative number")
        if not 1 <= self.oversample <= 10:
            bad("oversample", "must be a number from 1 to 10")
        if self.small_max_heavy_atoms < 0:
            bad("small_max_heavy_atoms", "must be a non-negative integer")
        for key in ("small_preset", "raw_preset"):
            if getattr(self, key) is not None and getattr(self, key) not in PRESET_NAMES:
                bad(key, f"must be one of {', '.join(PRESET_NAMES)} or null")
        if self.raw_preset is not None and self.small_preset is None:
            bad("raw_preset", "needs a small_preset (a per-molecule choice)")

    @classmethod
    def named(cls, name: str) -> "SamplerPreset":
        """The built-in preset ``name`` (a key of :data:`SAMPLER_PRESETS`).

        Raises:
            ConfgenError: unknown name.
        """
        if name not in SAMPLER_PRESETS:
            raise ConfgenError(f"unknown sampler preset {name!r} (known: {', '.join(SAMPLER_PRESETS)})")
        return SAMPLER_PRESETS[name]

    def replace(self, **changes) -> "SamplerPreset":
        """A copy with some parameters changed (validated).

        Raises:
            ConfgenError: an unknown parameter or an invalid value.
        """
        known = _field_types(self)
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ConfgenError(f"unknown sampler parameter(s) {', '.join(unknown)} (known: {', '.join(known)})")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict of every parameter (JSON-able)."""
        return dataclasses.asdict(self)

    def for_molecule(self, heavy_atoms: int, relax: str) -> "SamplerPreset":
        """The preset a molecule of ``heavy_atoms`` heavy atoms is generated with (``relax``: ``"mmff"`` or
        ``"none"``): without MMFF94 relaxation ``raw_preset`` (else ``small_preset``), with it ``small_preset``
        for small molecules, else this one.

        Raises:
            ConfgenError: ``small_preset`` or ``raw_preset`` itself chooses per molecule.
        """
        if self.small_preset is None:
            return self
        large, small, *raw = self.choices()
        if relax != "mmff":
            return raw[0] if raw else small
        return large if heavy_atoms > self.small_max_heavy_atoms else small

    def choices(self) -> "tuple[SamplerPreset, ...]":
        """Every preset :meth:`for_molecule` can return: this one (without ``small_preset``), then
        ``small_preset``'s, then ``raw_preset``'s if set.

        Raises:
            ConfgenError: ``small_preset`` or ``raw_preset`` itself chooses per molecule.
        """
        if self.small_preset is None:
            return (self,)
        out = [self.replace(small_preset=None, small_max_heavy_atoms=0, raw_preset=None)]
        for key in ("small_preset", "raw_preset"):
            if getattr(self, key) is None:
                continue
            other = SamplerPreset.named(getattr(self, key))
            if other.small_preset is not None:
                raise ConfgenError(f"sampler parameter {key}={getattr(self, key)!r}: that preset chooses per "
                                   "molecule itself")
            out.append(other)
        return tuple(out)

    @property
    def evals_per_sample(self) -> int:
        """Score-function evaluations per conformer (no retries)."""
        levels, steps = self.num_levels, self.steps_per_level
        if self.method == "pc":
            return levels * (steps + 1) + self.polish_steps
        if self.method == "heun":
            return levels * (steps + 2) - 1 + self.polish_steps
        return levels * steps + int(self.final_denoise) + self.polish_steps

    def etkdg_refinement(self) -> "SamplerPreset | None":
        """The preset of the ETKDG-seeded retries of a noise-start preset (``retry_from_etkdg``): the ``fast``
        preset's refinement; ``None`` when it has none."""
        if self.init != "noise" or not self.retry_from_etkdg:
            return None
        return self.replace(method="pc", init="etkdg", init_std=None, sigma_max=RETRY_SIGMA_MAX, sigma_min=None,
                            num_levels=RETRY_LEVELS, steps_per_level=0, final_denoise=True, rho=None, churn=0.0,
                            oversample=1.0, retry_from_etkdg=False)

    def noise_fallback(self) -> "SamplerPreset | None":
        """The preset that samples from pure noise where ETKDG cannot embed (``None``: no fallback): for init
        ``etkdg`` and for the ETKDG-seeded retries of init ``noise`` (``retry_from_etkdg``)."""
        if not self.noise_fallback_levels:
            return None
        return self.replace(method="pc", init="noise", init_std=None, sigma_max=None,
                            num_levels=self.noise_fallback_levels, steps_per_level=0, final_denoise=True, rho=None,
                            churn=0.0)


def resolve_preset(preset: "str | SamplerPreset | None" = None, overrides: dict | None = None) -> SamplerPreset:
    """A validated sampler preset: a built-in one by name (``None`` = ``options.DEFAULT_PRESET``) or a
    :class:`SamplerPreset`, with ``overrides`` (parameter -> value) applied.

    Raises:
        ConfgenError: unknown preset name, unknown parameter, or an invalid value.
    """
    if preset is None:
        preset = DEFAULT_PRESET
    name = preset if isinstance(preset, str) else None
    if isinstance(preset, str):
        preset = SamplerPreset.named(preset)
    elif not isinstance(preset, SamplerPreset):
        raise ConfgenError(f"a sampler preset is a name or a SamplerPreset, not {type(preset).__name__}")
    sampler_keys = sorted(set(overrides or ()) - {"small_preset", "small_max_heavy_atoms", "raw_preset"})
    if preset.small_preset is not None and sampler_keys:
        large = preset.choices()[0]
        other = next((k for k, v in SAMPLER_PRESETS.items() if v == large), None)
        names = f"--preset {other} or --preset {preset.small_preset}" if other else f"--preset {preset.small_preset}"
        raise ConfgenError(f"sampler preset {name or 'given'} chooses per molecule between two presets "
                           f"({preset.small_preset} for small molecules); override {', '.join(sampler_keys)} of one "
                           f"of them by naming it ({names})")
    return preset.replace(**overrides) if overrides else preset


def _parse_override_value(text: str):
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


def parse_preset_overrides(items: "list[str] | tuple[str, ...] | None") -> dict:
    """``["steps_per_level=5", "eps=1e-5"]`` (``--preset-override``) -> ``{"steps_per_level": 5, "eps": 1e-5}``.

    Values: ``null``/``none``, ``true``/``false``, integers, floats, else strings; their types are checked when
    the overrides are applied (:func:`resolve_preset`).

    Raises:
        ConfgenError: an item without ``=``.
    """
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ConfgenError(f"preset override {item!r} is not KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_override_value(value)
    return out


#: Named sampler settings. ``confgf`` reproduces ConfGF's position sampler (50 levels x 100 steps from
#: N(0, 1) noise, 10 -> 0.01 A, step_lr 2.4e-6, score clipped at 1000), 5,000 network calls per conformer.
#: ``fast`` starts from an ETKDG conformer perturbed at an intermediate noise level and anneals over a few
#: levels with a few steps each, then denoises, and keeps the most diverse half of twice the conformers asked
#: for; its numbers were chosen by measurement (scripts/bench_sample.py, scripts/explore_selection.py,
#: docs/benchmarks.md). ``edm`` samples from pure noise over the model's whole noise range with the Heun
#: sampler (EDM's rho-7 levels, churn 5) in 6 levels, 11 network calls per conformer, for models trained with
#: ``model.precond: edm``; a conformer the checks send back is resampled from an ETKDG guess (the ``fast``
#: refinement). ``edm-select`` samples 1.5 x the conformers asked for the same way, relaxes them all with MMFF94
#: and keeps the most diverse within 4 kcal/mol of the lowest energy (more precise, less recall). Both use the
#: shipped EDM model (``confgen/checkpoints/edm.pt``) unless a model is given. Levels,
#: churn, oversampling and window were chosen by measurement (scripts/tune_preset.py, docs/benchmarks.md).
#: ``refine`` is ``fast``'s ETKDG-seeded selection, each guess first moved by 40 mean-shift steps with the
#: shipped refiner (``confgen/checkpoints/refine.pt``, the EDM model fine-tuned at small noise levels on GFN2-xTB
#: data) at 0.2 A (``polish_steps``; full denoising steps towards a mode of the learned density), then refined by
#: it (Heun, 4 levels from 0.1 to 0.01 A, restoring the local geometry): 47 calls per conformer; its raw output
#: is closer to GEOM's than ``fast``'s and ETKDG's (docs/benchmarks.md, "A GEOM-level refiner").
#: ``auto`` chooses per molecule: ``edm`` (its settings) for molecules of more than 12 heavy atoms when MMFF94
#: relaxation follows, ``fast`` for smaller ones, and ``refine`` for every molecule when the output is not
#: relaxed; measured: ``fast`` recovers more QM9 DFT minima (small, rigid), ``edm`` + MMFF94 covers GEOM-Drugs
#: ensembles better, ``refine`` is the best raw output (docs/benchmarks.md).
#: The names are :data:`confgen.options.PRESET_NAMES` (what ``confgen sample --help`` lists without this module).
SAMPLER_PRESETS: dict[str, SamplerPreset] = {
    "confgf": SamplerPreset(method="ald", init="noise", init_std=1.0, sigma_max=10.0, sigma_min=0.01, num_levels=50,
                            steps_per_level=100, eps=4.8e-6, final_denoise=True, clip=1000.0, max_retries=3,
                            retry_step_factor=0.5, noise_fallback_levels=0, rho=None, churn=0.0, oversample=1.0),
    "fast": SamplerPreset(method="pc", init="etkdg", init_std=None, sigma_max=0.3, sigma_min=0.01, num_levels=5,
                          steps_per_level=0, eps=2.0e-5, final_denoise=True, clip=1000.0, max_retries=3,
                          retry_step_factor=0.5, noise_fallback_levels=50, rho=None, churn=0.0, oversample=2.0,
                          trans_amides=True),
    "refine": SamplerPreset(method="heun", init="etkdg", init_std=None, sigma_max=0.1, sigma_min=0.01,
                            num_levels=4, steps_per_level=0, eps=2.0e-5, final_denoise=True, clip=1000.0,
                            max_retries=3, retry_step_factor=0.5, noise_fallback_levels=50, rho=7.0, churn=0.0,
                            oversample=2.0, model="refine", trans_amides=True, polish_steps=40, polish_sigma=0.2,
                            polish_rate=1.0, polish_first=True),
    "edm": SamplerPreset(method="heun", init="noise", init_std=None, sigma_max=None, sigma_min=None, num_levels=6,
                         steps_per_level=0, eps=2.0e-5, final_denoise=True, clip=None, max_retries=3,
                         retry_step_factor=0.5, noise_fallback_levels=0, rho=7.0, churn=5.0, oversample=1.0,
                         retry_from_etkdg=True, model="edm", trans_amides=True),
    "edm-select": SamplerPreset(method="heun", init="noise", init_std=None, sigma_max=None, sigma_min=None,
                                num_levels=6, steps_per_level=0, eps=2.0e-5, final_denoise=True, clip=None,
                                max_retries=3, retry_step_factor=0.5, noise_fallback_levels=0, rho=7.0, churn=5.0,
                                oversample=1.5, retry_from_etkdg=True, energy_window=4.0, model="edm",
                                trans_amides=True),
    "auto": SamplerPreset(method="heun", init="noise", init_std=None, sigma_max=None, sigma_min=None, num_levels=6,
                          steps_per_level=0, eps=2.0e-5, final_denoise=True, clip=None, max_retries=3,
                          retry_step_factor=0.5, noise_fallback_levels=0, rho=7.0, churn=5.0, oversample=1.0,
                          retry_from_etkdg=True, model="edm", trans_amides=True, small_preset="fast",
                          small_max_heavy_atoms=12, raw_preset="refine"),
}
