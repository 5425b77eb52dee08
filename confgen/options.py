"""Defaults and choices shared by the library and the command line, importable without torch.

``confgen --help`` and ``confgen sample --help`` import only this module (and argparse): start-up of the
command line does not pay for torch, RDKit or the model. The modules that use these values
(:mod:`confgen.config`, :mod:`confgen.generation`, :mod:`confgen.io`) import them from here.
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

#: names of the built-in sampler presets (:data:`confgen.config.SAMPLER_PRESETS` holds their typed values) and the
#: default one
PRESET_NAMES = ("confgf", "fast", "refine", "edm", "edm-select", "auto")
DEFAULT_PRESET = "auto"
