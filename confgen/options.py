"""Defaults and choices shared by the library and the command line, importable without torch.

``confgen --help`` and ``confgen sample --help`` import only this module (and argparse): start-up of the
command line does not pay for torch, RDKit or the model. The modules that use these values
(:mod:`confgen.sampling`, :mod:`confgen.generate`, :mod:`confgen.io`) import them from here.
"""

from __future__ import annotations

#: conformers per forward pass
DEFAULT_BATCH_SIZE = 64
#: post-processing after sampling: MMFF94 minimisation or none
RELAX_CHOICES = ("none", "mmff")

#: multi-fragment inputs (salts, solvates): keep the largest organic fragment (RDKit's standardiser rule) and
#: record what was removed, or keep every fragment and place them apart without overlap
FRAGMENT_CHOICES = ("largest", "all")
DEFAULT_FRAGMENTS = "largest"

#: unspecified stereocentres / stereo bonds: generate one stereoisomer (the first of RDKit's
#: EnumerateStereoisomers, the same for every conformer), every stereoisomer up to a limit (each its own
#: molecule), or refuse the molecule
STEREO_CHOICES = ("one", "enumerate", "refuse")
DEFAULT_STEREO = "one"
DEFAULT_MAX_STEREOISOMERS = 8

#: Named sampler settings. ``confgf`` reproduces ConfGF's position sampler (50 levels x 100 steps from
#: N(0, 1) noise, 10 -> 0.01 A, step_lr 2.4e-6, score clipped at 1000), 5,000 network calls per conformer.
#: ``fast`` starts from an ETKDG conformer perturbed at an intermediate noise level and anneals over a few
#: levels with a few steps each, then denoises, and keeps the most diverse half of twice the conformers asked
#: for; its numbers were chosen by measurement (scripts/bench_sample.py, scripts/explore_selection.py,
#: docs/benchmarks.md). ``edm`` samples from pure noise over the model's whole noise range with the Heun
#: sampler in 25 levels (49 network calls per conformer), for models trained with ``model.precond: edm``; its
#: churn and levels are a starting point, to be chosen by measurement once such a model is trained.
SAMPLER_PRESETS: dict[str, dict] = {
    "confgf": {
        "method": "ald",
        "init": "noise",
        "init_std": 1.0,
        "sigma_max": 10.0,
        "sigma_min": 0.01,
        "num_levels": 50,
        "steps_per_level": 100,
        "eps": 4.8e-6,
        "final_denoise": True,
        "clip": 1000.0,
        "max_retries": 3,
        "retry_step_factor": 0.5,
        "noise_fallback_levels": 0,
        "rho": None,
        "churn": 0.0,
        "oversample": 1.0,
    },
    "fast": {
        "method": "pc",
        "init": "etkdg",
        "init_std": None,
        "sigma_max": 0.3,
        "sigma_min": 0.01,
        "num_levels": 5,
        "steps_per_level": 0,
        "eps": 2.0e-5,
        "final_denoise": True,
        "clip": 1000.0,
        "max_retries": 3,
        "retry_step_factor": 0.5,
        "noise_fallback_levels": 50,
        "rho": None,
        "churn": 0.0,
        "oversample": 2.0,
    },
    "edm": {
        "method": "heun",
        "init": "noise",
        "init_std": None,
        "sigma_max": None,
        "sigma_min": None,
        "num_levels": 25,
        "steps_per_level": 0,
        "eps": 2.0e-5,
        "final_denoise": True,
        "clip": None,
        "max_retries": 3,
        "retry_step_factor": 0.5,
        "noise_fallback_levels": 0,
        "rho": 7.0,
        "churn": 5.0,
        "oversample": 1.0,
    },
}

DEFAULT_PRESET = "fast"
