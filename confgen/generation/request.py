"""What a generation run is asked to do: :class:`GenerationRequest`, one object over every stage."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from confgen.config import SamplerPreset, resolve_preset
from confgen.errors import ConfgenError
from confgen.models.interface import ScoreModelInterface
from confgen.options import DEFAULT_BATCH_SIZE, DEFAULT_STEREO, RELAX_CHOICES
from confgen.progress import Progress


@dataclass
class GenerationRequest:
    """Molecules, conformer counts and every setting of one :func:`confgen.generation.generate_conformers` run.

    Attributes:
        mols: RDKit Mols with explicit hydrogens (implicit ones are added); any conformers are ignored.
        num_confs: conformers per molecule (one int for all, or one per molecule; a list after construction).
        model: a score model (:class:`confgen.models.interface.ScoreModelInterface`), a checkpoint path, or
            ``None`` for the shipped default model.
        preset: sampler preset: a name, a :class:`confgen.config.SamplerPreset`, or ``None`` (the default);
            a :class:`SamplerPreset` after construction. A preset that chooses per molecule (``auto``:
            ``small_preset``) runs each molecule with its choice and that choice's model (unless ``model`` names
            one); without the network, with its ETKDG-seeded choice.
        seed: random seed (``None`` = a fresh random seed, reported in ``stats.seed``).
        batch_size: conformers per forward pass (on a GPU: sorted by size, and fewer where memory runs out, see
            :mod:`confgen.batching`; a molecule whose one conformer does not fit is reported and skipped).
        device: torch device.
        relax: ``"mmff"`` (MMFF94 minimisation; energy in conformer property ``confgen_mmff_energy``; a
            conformer whose stereo it would change is returned unrelaxed) or ``"none"``.
        workers: CPU threads for RDKit embedding and MMFF.
        progress: show a progress bar (fixed total over embedding, sampling and relaxation), or a
            :class:`confgen.progress.Progress` made by the caller (budgets from :meth:`progress_budgets`) to
            advance; it is not closed here.
        ids: per-molecule ids used in the seeds (default 0..len-1); keeps results stable when a run is split.
        sources: per-molecule source strings for error messages.
        stereo: unspecified stereo of a molecule not already resolved by :func:`confgen.io.resolve_stereo`:
            ``"one"`` (one stereoisomer for all its conformers, noted in ``stats.warnings``) or ``"refuse"``.
        network: ``False`` switches the score network off (an ablation): the preset's ETKDG initial guesses
            go through the same oversampling, diverse selection, stereo/geometry checks (failures re-embedded)
            and relaxation, unchanged by any network step (no noise is added); ``model`` is not loaded and a
            conformer ETKDG cannot embed is dropped (no noise fallback). Needs a preset with init ``etkdg``.

    Raises:
        ConfgenError: (on construction) unknown preset, bad arguments.
    """

    mols: list
    num_confs: list[int] | int
    model: object = None
    preset: SamplerPreset | str | None = None
    seed: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    device: str | torch.device = "cpu"
    relax: str = "mmff"
    workers: int = 1
    progress: bool | Progress = True
    ids: list[int] | None = None
    sources: list[str] | None = None
    stereo: str = DEFAULT_STEREO
    network: bool = True

    def __post_init__(self):
        if self.relax not in RELAX_CHOICES:
            raise ConfgenError(f"relax must be one of {', '.join(RELAX_CHOICES)}, not {self.relax!r}")
        if self.batch_size < 1:
            raise ConfgenError("batch_size must be at least 1")
        self.mols = list(self.mols)
        self.preset = resolve_preset(self.preset)
        if self.network and self.preset.small_preset is None:  # a per-molecule choice resolves it per group
            from confgen.checkpoint import model_for_preset

            self.model = model_for_preset(self.model, self.preset)
        if not self.network:
            if self.preset.small_preset is not None:  # the ablation of a per-molecule choice: its ETKDG preset
                self.preset = self.preset.choices()[1]
            if self.preset.init != "etkdg":
                raise ConfgenError("network=False needs a sampler preset with init 'etkdg' (nothing to start from)")
            self.preset = self.preset.replace(noise_fallback_levels=0)
        n = len(self.mols)
        if isinstance(self.num_confs, (int, np.integer)):
            self.num_confs = [int(self.num_confs)] * n
        else:
            self.num_confs = [int(k) for k in self.num_confs]
        if len(self.num_confs) != n:
            raise ConfgenError(f"{n} molecules but {len(self.num_confs)} conformer counts")
        self.ids = list(range(n)) if self.ids is None else list(self.ids)
        self.sources = [f"molecule {i}" for i in range(n)] if self.sources is None else list(self.sources)
        self.workers = max(int(self.workers), 0)
        self.batch_size = int(self.batch_size)

    def progress_budgets(self, write: bool = False) -> dict[str, int]:
        """The steps of each phase of this run (see :func:`progress_budgets`)."""
        return progress_budgets(self.num_confs, self.preset, self.relax, write=write)


def loaded_models() -> int:
    """How many checkpoints :func:`resolve_model` has loaded in this process."""
    return len(_LOADED)


def progress_budgets(num_confs: list[int], preset: SamplerPreset, relax: str = "mmff",
                     write: bool = False) -> dict[str, int]:
    """The steps of each phase of a run (for :class:`confgen.progress.Progress`; its total never changes).

    Args:
        num_confs: conformers requested per molecule.
        preset: the sampler preset.
        relax: ``"mmff"`` or ``"none"``.
        write: count a writing phase (the caller advances it).
    """
    if preset.small_preset is not None:  # chosen per molecule: enough steps for either choice
        each = [progress_budgets(num_confs, p, relax, write=write) for p in preset.choices()]
        return {phase: max(b[phase] for b in each) for phase in each[0]}
    cands = sum(math.ceil(preset.oversample * int(n) - 1e-9) for n in num_confs)
    keep = sum(int(n) for n in num_confs)
    etkdg = preset.init == "etkdg"
    relaxed = cands if not etkdg and preset.energy_window is not None else keep  # every candidate relaxed
    return {"embedding": cands if etkdg else 0, "sampling": keep if etkdg else cands,
            "relaxing": relaxed if relax == "mmff" else 0, "writing": keep if write else 0}


#: checkpoints loaded in this process: (path, device, mtime, size) -> model (eval mode, never changed)
_LOADED: dict[tuple, ScoreModelInterface] = {}


def resolve_model(model, device: torch.device) -> ScoreModelInterface:
    """The score model of a request on ``device``, in eval mode: ``None`` = the shipped default, a path = that
    checkpoint (loaded once per process and file version: :func:`loaded_models`), else the model itself.

    Raises:
        ConfgenError: a missing checkpoint, or a model without what :class:`ScoreModelInterface` asks for.
    """
    if model is None or isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        import os

        from confgen.checkpoint import default_checkpoint_path, load_model

        path = default_checkpoint_path() if model is None else model
        try:
            st = os.stat(path)
            key = (os.path.abspath(os.fsdecode(path)), str(device), st.st_mtime_ns, st.st_size)
        except (OSError, TypeError):  # missing: load_model says so clearly
            return load_model(model, device=device)
        if key not in _LOADED:
            _LOADED[key] = load_model(path, device=device)
        return _LOADED[key]
    if not isinstance(model, ScoreModelInterface):
        raise ConfgenError(f"{type(model).__name__} is not a score model: confgen needs the attributes cutoff and "
                           "schedule and forward(data, pos, sigma, pairs=None) (confgen.models.interface)")
    return model.to(device).eval()

