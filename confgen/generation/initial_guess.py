"""Initial-guess stage: RDKit ETKDG conformers to start the sampler from (preset init ``etkdg``).

ETKDG guesses are embedded in blocks of :data:`EMBED_BLOCK` so that the progress bar moves; block b > 0 of a
molecule is seeded from (its seed, b), so the guesses do not depend on the number of threads. In the first
round of an oversampled preset only the most diverse guesses are kept (:func:`confgen.chem.selection
.most_diverse`). A slot whose guess ETKDG cannot embed goes to the preset's pure-noise fallback, or is dropped.
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem

from confgen.chem import embed as etkdg
from confgen.chem.selection import most_diverse
from confgen.config import SamplerPreset
from confgen.generation.seeds import seed_for
from confgen.generation.state import MoleculeState
from confgen.generation.stats import GenerationStats
from confgen.progress import Progress

#: ETKDG initial guesses embedded per RDKit call (the bar moves between calls)
EMBED_BLOCK = 8


def etkdg_guesses(mol: Chem.Mol, n: int, seed: int, workers: int,
                  progress: Progress | None = None) -> list[np.ndarray]:
    """Up to ``n`` ETKDGv3 conformers [N, 3] (:func:`confgen.chem.embed.embed`, random-coordinate embedding as a
    fallback), in blocks of :data:`EMBED_BLOCK` (``progress`` advances after each block of the first pass)."""
    def seed_of(block: int, random_coords: bool) -> int:  # never 0: 0 gives identical conformers (RDKit 2026.09)
        return int((seed if block == 0 else seed_for(seed, block)) % 2_000_000_000) + 1

    return etkdg.embed(mol, n, seed_of, threads=workers, block_size=EMBED_BLOCK,
                       on_block=progress.advance if progress is not None else None)


def embed_round(states: list[MoleculeState], pending: list[tuple[int, int]], inits: dict, *, seed: int, round_: int,
                workers: int, fallback: SamplerPreset | None, stats: GenerationStats,
                progress: Progress | None) -> tuple[list, list]:
    """ETKDG initial guesses for the pending slots (into ``inits``); in round 0, only the most diverse are kept.

    Returns:
        ``(pending, from_noise)``: the slots to sample from their guess, and those to sample from noise.
    """
    by_mol: dict[int, list[int]] = {}
    for k, j in pending:
        if j not in states[k].from_noise:
            by_mol.setdefault(k, []).append(j)
    for k, slots in by_mol.items():
        st = states[k]
        confs = etkdg_guesses(st.mol, len(slots), seed_for(seed, st.uid, round_, 1), workers, progress)
        inits[k] = dict(zip(slots, confs))
    missing = [(k, j) for k, j in pending if j not in inits.get(k, {}) and j not in states[k].from_noise]
    if missing and fallback is not None:
        for k, j in missing:
            states[k].from_noise.add(j)
        stats.from_noise += len(missing)
        stats.warnings.append(f"ETKDG could not embed {len(missing)} initial guesses; those conformers "
                              f"were sampled from noise ({fallback.num_levels} levels)")
    elif missing:
        stats.dropped += len(missing)
        stats.warnings.append(f"ETKDG could not embed {len(missing)} initial guesses; those "
                              "conformers were dropped")
    from_noise = [(k, j) for k, j in pending if j in states[k].from_noise]
    pending = [(k, j) for k, j in pending if j in inits.get(k, {})]
    if round_ == 0:  # oversampled: sample only the most diverse initial guesses
        for k, init in inits.items():
            st = states[k]
            if len(init) > st.n_keep:
                slots = sorted(init)
                keep = {slots[i] for i in most_diverse(st.mol, [init[j] for j in slots], st.n_keep)}
                inits[k] = {j: init[j] for j in slots if j in keep}
        pending = [(k, j) for k, j in pending if j in inits[k]]
    return pending, from_noise
