"""Relaxation stage: MMFF94 minimisation of the selected conformers, guarded by a second stereo check."""

from __future__ import annotations

import numpy as np
from rdkit import Chem

from confgen.chem.forcefield import has_mmff_params, minimise, mmff_energies
from confgen.chem.stereo import check_stereo
from confgen.generation.state import MoleculeState
from confgen.generation.stats import GenerationStats
from confgen.io import PROP_MMFF_ENERGY
from confgen.progress import Progress

#: conformers per MMFF94 minimisation call (the bar moves between calls)
RELAX_BLOCK = 8


def relax_mmff(mol: Chem.Mol, st: MoleculeState, workers: int, stats: GenerationStats, source: str,
               progress: Progress | None = None, reverted: list | None = None) -> Chem.Mol:
    """MMFF94-minimise every conformer (in blocks of :data:`RELAX_BLOCK`); store energies on the conformers.

    A conformer whose stereo the minimisation changed (strained polycycles: MMFF94 can push a bridgehead
    through its neighbours) is written unrelaxed, with its MMFF94 single-point energy. MMFF typing
    re-perceives aromaticity in place, so the force field works on a copy and the returned Mol keeps the
    input's chemistry (bond types, aromatic flags) with the minimised coordinates. ``reverted`` receives one
    flag per conformer: written unrelaxed.
    """
    work = Chem.Mol(mol)
    if not has_mmff_params(work):
        stats.relax_skipped += 1
        stats.warnings.append(f"{source}: MMFF94 has no parameters for this molecule; written unrelaxed")
        if progress is not None:
            progress.advance(mol.GetNumConformers(), work=0)
        return mol
    energies, _ = minimise(work, threads=workers, uff_fallback=False, block_size=RELAX_BLOCK,
                           on_block=progress.advance if progress is not None else None)
    pos = np.stack([c.GetPositions() for c in work.GetConformers()])
    good = check_stereo(st.spec, pos).ok
    if reverted is not None:
        reverted.extend(bool(not g) for g in good)
    out = Chem.Mol(mol)
    out.RemoveAllConformers()
    for k, (before, after, energy, g) in enumerate(zip(mol.GetConformers(), work.GetConformers(), energies, good)):
        if g:
            c = Chem.Conformer(after)
        else:  # keep the checked, unrelaxed conformer
            stats.relax_reverted += 1
            c = Chem.Conformer(before)
            energy = mmff_energies(work, [before.GetPositions()], conf_ids=[after.GetId()])[0]
        c.SetId(k)
        c.SetDoubleProp(PROP_MMFF_ENERGY, float(energy))
        out.AddConformer(c, assignId=False)
    if not good.all():
        stats.warnings.append(f"{source}: MMFF94 changed the stereo of {int((~good).sum())} conformer(s); "
                              "written unrelaxed")
    return out
