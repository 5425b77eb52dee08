"""Generation: molecules and a score model -> RDKit Mols with stereo-checked conformers.

A run is one :class:`GenerationRequest` (molecules, counts, sampler preset, relaxation, seed, batch size,
device, ...) through visible stages (:mod:`confgen.generation.pipeline`): initial guess
(:mod:`~confgen.generation.initial_guess`), sampling (:mod:`~confgen.generation.sampler`), check/repair
(:mod:`~confgen.generation.checks`), selection (:func:`confgen.chem.selection.most_diverse`) and relaxation
(:mod:`~confgen.generation.relaxation`), counted in :class:`GenerationStats`.

The names below are imported on first use, each from its module: ``from confgen.generation import
GenerationStats`` (what the library driver needs) does not import torch, RDKit or the model code.
"""

from __future__ import annotations

from confgen.lazy import lazy_exports

#: public name -> the module that defines it
_PUBLIC = {
    "GenerationRequest": "confgen.generation.request",
    "progress_budgets": "confgen.generation.request",
    "resolve_model": "confgen.generation.request",
    "generate": "confgen.generation.pipeline",
    "generate_conformers": "confgen.generation.pipeline",
    "seed_for": "confgen.generation.seeds",
    "GenerationStats": "confgen.generation.stats",
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
