"""Check/repair stage: every sampled conformer is checked, repaired where a mirror fixes it, or sent back.

1. blow-up (non-finite or flown-apart coordinates, or a bond stretched beyond :data:`BOND_MAX_FACTOR` x or
   squeezed below :data:`BOND_MIN_FACTOR` x the sum of covalent radii): the conformer is sampled again with a
   smaller step size;
2. multi-fragment molecules (a salt kept whole): the smaller fragments are translated rigidly away from the
   larger ones (:func:`confgen.validity.separate_fragments`);
3. stereo (:mod:`confgen.chem.stereo`): a conformer whose specified centres are all inverted is mirrored; any other
   stereo error is resampled; a conformer is never returned with the wrong specified stereo;
4. amides (preset ``trans_amides``): acyclic secondary amides left cis or twisted are turned trans
   (:func:`confgen.chem.amides.turn_amides_trans`);
5. physical validity: heavy-atom bond lengths, bond angles and clashes within the limits of PoseBusters' "mol"
   checks (:func:`confgen.validity.geometry_bounds`); a conformer outside them is sampled again, and kept as
   the last resort should no retry get inside. When MMFF94 relaxation follows (``check_bounds=False``) this
   check waits for the relaxed coordinates (the pipeline marks them): the minimisation repairs bond lengths,
   angles and clashes, so resampling for them would only spend network calls.
"""

from __future__ import annotations

import numpy as np
import torch

from confgen.generation.state import MoleculeState
from confgen.generation.stats import GenerationStats
from confgen.sampling import SampleResult
from confgen.chem.amides import turn_amides_trans
from confgen.chem.stereo import repair_stereo
from confgen.validity import separate_fragments, within_bounds

#: bonds longer than this factor x (sum of covalent radii), or shorter than BOND_MIN_FACTOR x, are broken
BOND_MAX_FACTOR = 1.6
BOND_MIN_FACTOR = 0.5


def geometry_ok(state: MoleculeState, pos: np.ndarray) -> bool:
    """No bond broken or collapsed (pos [N, 3])."""
    if not np.isfinite(pos).all():
        return False
    if not len(state.bonds):
        return True
    d = np.linalg.norm(pos[state.bonds[:, 0]] - pos[state.bonds[:, 1]], axis=-1)
    return bool(((d <= BOND_MAX_FACTOR * state.bond_ref) & (d >= BOND_MIN_FACTOR * state.bond_ref)).all())


def accept_chunk(chunk: list[tuple[int, int]], states: list[MoleculeState], res: SampleResult, batch,
                 stats: GenerationStats, *, check_bounds: bool = True) -> list[tuple[int, int]]:
    """Check one sampled batch (blow-up, bonds, stereo repair and, with ``check_bounds``, PoseBusters bounds);
    accept the good conformers into their state; return the slots to retry."""
    stats.samples += len(chunk)
    pos_all = res.pos.detach().to("cpu", torch.float64).numpy()
    ok = res.ok.cpu().numpy()
    ptr = batch.ptr.cpu().numpy()
    retry = []
    # group accepted conformers per molecule for a vectorised stereo check
    per_mol: dict[int, list[tuple[int, np.ndarray]]] = {}
    for g, (k, j) in enumerate(chunk):
        st = states[k]
        st.attempts[j] = st.attempts.get(j, 0) + 1
        pos = pos_all[ptr[g]:ptr[g + 1]]
        if not ok[g] or not geometry_ok(st, pos):
            st.blowups[j] = st.blowups.get(j, 0) + 1
            if ok[g]:
                stats.bad_geometry += 1
            else:
                stats.blowups += 1
            retry.append((k, j))
            continue
        if st.fragments is not None:  # a salt kept whole: no fragment inside another
            pos = separate_fragments(pos, st.fragments, st.radii)
        per_mol.setdefault(k, []).append((j, pos))
    for k, items in per_mol.items():
        st = states[k]
        pos = np.stack([p for _, p in items])  # [K, N, 3]
        fixed, good, mirrored = repair_stereo(st.spec, pos)
        stats.stereo_mirrored += int(mirrored.sum())
        if st.amides is not None and len(st.amides):  # preset trans_amides: a rigid rotation, stereo unchanged
            fixed, turned = turn_amides_trans(st.amides, fixed)
            stats.amides_turned += int(turned[good].sum())
        in_bounds = (within_bounds(st.bounds, fixed) if check_bounds and st.bounds is not None
                     else np.ones(len(items), bool))
        for (j, _), p, g_ok, b_ok in zip(items, fixed, good, in_bounds):
            if g_ok and b_ok:
                st.pos[j] = p
                st.fallback.pop(j, None)
            elif g_ok:
                st.fallback[j] = p
                st.blowups[j] = st.blowups.get(j, 0) + 1
                stats.bad_geometry += 1
                retry.append((k, j))
            else:
                stats.stereo_resampled += 1
                retry.append((k, j))
    return retry
