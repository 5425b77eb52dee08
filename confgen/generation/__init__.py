"""Generation: molecules and a score model -> RDKit Mols with stereo-checked conformers.

A run is one :class:`GenerationRequest` (molecules, counts, sampler preset, relaxation, seed, batch size,
device, ...) through visible stages (:mod:`confgen.generation.pipeline`): initial guess
(:mod:`~confgen.generation.initial_guess`), sampling (:mod:`~confgen.generation.sampler`), check/repair
(:mod:`~confgen.generation.checks`), selection (:func:`confgen.chem.selection.most_diverse`) and relaxation
(:mod:`~confgen.generation.relaxation`), counted in :class:`GenerationStats`.
"""

from confgen.generation.pipeline import generate, generate_conformers
from confgen.generation.request import (
    GenerationRequest,
    progress_budgets,
    resolve_model,
)
from confgen.generation.seeds import seed_for
from confgen.generation.stats import GenerationStats

__all__ = ["GenerationRequest", "GenerationStats", "generate", "generate_conformers", "progress_budgets",
           "resolve_model", "seed_for"]
