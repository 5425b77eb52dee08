"""ETKDG embedding: the one place confgen calls RDKit's distance-geometry embedder.

:func:`embed` returns up to ``n`` ETKDGv3 conformers of a molecule as ``[N, 3]`` position arrays:

* **seeds**: each caller derives its own RDKit seeds (they are part of its reproducible results) and passes
  them as ``seed_of(block, random_coords)``; a seed of 0 is replaced by :data:`SEED_FOR_ZERO`, because
  RDKit (2026.09) returns identical conformers for ``randomSeed=0``, which it takes as "no seed" only in
  part (:func:`rdkit_seed`);
* **blocks**: the conformers are embedded in blocks of ``block_size`` (one RDKit call each) and
  ``on_block(k)`` is called after each block of the first pass, so that a progress bar moves;
* **random-coordinate fallback**: hard molecules (large rings, cages, strained polycycles) often fail with
  ETKDG's default start; ``fallback="missing"`` embeds the conformers still missing after the first pass again
  from random coordinates, ``fallback="if_none"`` only when the first pass gave no conformer at all, and
  ``fallback="never"`` not at all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDistGeom

from confgen.rdlog import quiet_rdkit

__all__ = ["SEED_FOR_ZERO", "FALLBACKS", "rdkit_seed", "embed"]

#: RDKit seed used where a caller's seed is 0
SEED_FOR_ZERO = 0x5EED
#: ``fallback`` values of :func:`embed`
FALLBACKS = ("missing", "if_none", "never")


def rdkit_seed(seed: int) -> int:
    """``seed`` as RDKit's ``randomSeed``: 0 becomes :data:`SEED_FOR_ZERO` (see the module docstring)."""
    seed = int(seed)
    return seed if seed != 0 else SEED_FOR_ZERO


def embed(mol: Chem.Mol, n: int, seed_of: Callable[[int, bool], int], *, threads: int = 1,
          block_size: int | None = None, fallback: str = "missing",
          on_block: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Up to ``n`` ETKDGv3 conformers of ``mol`` (not modified), in embedding order.

    Args:
        mol: Mol with explicit hydrogens; its chiral tags and double-bond stereo are honoured.
        n: conformers wanted.
        seed_of: ``seed_of(block, random_coords)``: the RDKit seed of block ``block`` (0, 1, ...) of the first
            pass (``random_coords`` False) or of the random-coordinate pass (True); see :func:`rdkit_seed`.
        threads: RDKit embedding threads (the conformers do not depend on it).
        block_size: conformers per RDKit call (``None``: all in one call).
        fallback: ``"missing"``, ``"if_none"`` or ``"never"`` (see the module docstring).
        on_block: called with the number of conformers asked for after each block of the first pass.

    Returns:
        ``[N, 3]`` float64 arrays, first-pass conformers first (possibly fewer than ``n``).
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}, not {fallback!r}")
    out: list[np.ndarray] = []
    for random_coords in (False, True):
        need = n - len(out)
        if need <= 0 or (random_coords and (fallback == "never" or (fallback == "if_none" and out))):
            break
        step = need if block_size is None else block_size
        for block, start in enumerate(range(0, need, step)):
            k = min(step, need - start)
            params = rdDistGeom.ETKDGv3()
            params.randomSeed = rdkit_seed(seed_of(block, random_coords))
            params.numThreads = threads
            params.useRandomCoords = random_coords
            m = Chem.Mol(mol)
            m.RemoveAllConformers()
            with quiet_rdkit():
                cids = list(rdDistGeom.EmbedMultipleConfs(m, k, params))
            out.extend(m.GetConformer(c).GetPositions() for c in cids)
            if on_block is not None and not random_coords:
                on_block(k)
    return out
