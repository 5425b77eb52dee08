"""Directories of conformer shards (:mod:`confgen.data.shards`), read the way GEOM builds its ensembles."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from confgen.chem.conformers import with_positions
from confgen.chem.forcefield import KCAL_PER_HARTREE
from confgen.chem.selection import boltzmann_weights, within_window
from confgen.data.readers.records import MolRecord, build_records
from confgen.data.shards import iter_shard, shard_meta, shard_paths
from confgen.errors import InputError


#: kcal/mol above a molecule's lowest energy within which conformer shards are read (GEOM's CREST window; the
#: window raised COV-P@0.75 of GFN2-xTB ensembles against GEOM from 70.5 to 76.9 % at 2L on 13 molecules in
#: scripts/study_xtb_protocol.py)
SHARD_ENERGY_WINDOW = 6.0


def energy_reading(meta: dict) -> tuple[float, float | None]:
    """``(kcal/mol per stored energy unit, energy window in kcal/mol or None)`` from a shard's meta; shards that
    name neither (the first GFN2-xTB shards) hold Hartree and are read with :data:`SHARD_ENERGY_WINDOW`."""
    unit = meta.get("energy_unit", "hartree")
    if unit not in ("hartree", "kcal/mol"):
        raise ValueError(f"unknown energy unit {unit!r}")
    return (KCAL_PER_HARTREE if unit == "hartree" else 1.0), meta.get("read_energy_window_kcal", SHARD_ENERGY_WINDOW)


def in_window(energies: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(indices of the conformers read, their energies in kcal/mol)``: the stored ``energies`` of one
    molecule within the energy window that its shard's ``meta`` names (all of them where it names none)."""
    to_kcal, window = energy_reading(meta)
    kcal = np.asarray(energies, dtype=np.float64) * to_kcal
    keep = np.asarray(within_window(range(len(kcal)), kcal, np.inf if window is None else window), dtype=np.int64)
    return keep, kcal


def iter_shard_dir(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    """Conformer shards (:mod:`confgen.data.shards`), GEOM's way: conformers within the energy window the shard
    names (:data:`SHARD_ENERGY_WINDOW` kcal/mol of the molecule's lowest stored energy for GFN2-xTB shards, none
    for MMFF94 shards), with Boltzmann weights at 298.15 K; the others are counted in
    ``stats["outside_energy_window"]``."""

    for shard in shard_paths(path):
        try:
            meta = shard_meta(shard)
            energy_reading(meta)  # an unknown energy unit makes the shard unreadable, here
            molecules = list(iter_shard(shard))
        except (OSError, ValueError) as exc:
            report(InputError(f"unreadable conformer shard ({exc})", source=str(shard)))
            continue
        for m in molecules:
            source = f"{shard.name}:line {m.index + 1}"
            if not filt.smiles_heavy_ok(m.smiles):
                continue
            keep, kcal = in_window(m.energies, meta)
            stats["outside_energy_window"] = stats.get("outside_energy_window", 0) + len(kcal) - len(keep)
            weights = np.zeros(len(kcal))
            weights[keep] = boltzmann_weights(kcal[keep], 298.15)
            order = [i for i in np.argsort(-weights, kind="stable") if i in set(keep.tolist())]
            confs = list(m.mol.GetConformers())
            mols = [with_positions(m.mol, [confs[i].GetPositions()]) for i in order]
            recs = build_records(mols, smiles=m.smiles, name=m.smiles, source=source, weights=weights[order].tolist(),
                            max_confs=max_confs, stereo=filt.stereo, stats=stats)
            if not recs:
                report(InputError("no conformers", source=source, smiles=m.smiles))
            for rec in recs:
                if filt.in_split(rec.smiles, rec.mol):
                    yield rec
