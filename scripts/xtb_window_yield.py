#!/usr/bin/env python
"""How many built GFN2-xTB conformers survive the 6 kcal/mol window that ``confgen prepare`` applies, and why not.

Reads the shards of ``data/geom_drugs_xtb`` (or ``--out``) and prints:

* per molecule: stored conformers against conformers within the shard's energy window (the dataset target
  counts molecules with >= 8), by number of rotatable bonds;
* per conformer: the fraction inside the GFN2-xTB window by the MMFF94 energy of its start (relative to the
  molecule's lowest stored start), i.e. how well an MMFF94 energy predicts GEOM's window, the data for
  deciding whether a preselection by MMFF94 energy would raise the yield (the protocol study found that such a
  preselection lowers COV-R against GEOM: docs/benchmarks.md, "MMFF94 preselection");
* the near misses, molecules that a top-up of further minimisations could lift to 8 within the window.

Usage:
    python scripts/xtb_window_yield.py [--out data/geom_drugs_xtb]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rdkit.Chem import rdMolDescriptors

from confgen.data.readers.shard_dir import in_window
from confgen.data.shards import iter_shard, shard_meta, shard_paths

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "data" / "geom_drugs_xtb"))
    args = ap.parse_args(argv)
    mols, confs = [], []
    for path in shard_paths(Path(args.out)):
        meta = shard_meta(path)
        for m in iter_shard(path):
            keep, _ = in_window(m.energies, meta)
            inside = np.zeros(len(m.energies), dtype=bool)
            inside[keep] = True
            mols.append((m.mol.GetNumConformers(), len(keep), rdMolDescriptors.CalcNumRotatableBonds(m.mol)))
            mmff = np.asarray(m.aux_energies, dtype=np.float64)
            confs.extend(zip(mmff - mmff.min(), inside))
    if not mols:
        print(f"{args.out}: no shards")
        return 1
    r = np.array(mols)
    print(f"{len(r)} molecules: {int((r[:, 0] >= 8).sum())} with >= 8 conformers stored, "
          f"{int((r[:, 1] >= 8).sum())} with >= 8 within the energy window; "
          f"{int(((r[:, 0] >= 10) & (r[:, 1] < 8)).sum())} have >= 10 stored but < 8 within the window; "
          f"{int(((r[:, 1] >= 6) & (r[:, 1] < 8) & (r[:, 0] > r[:, 1])).sum())} are near misses (6 or 7 within the "
          "window and some stored outside it: what minimising further MMFF94 minima could lift to 8)\n")
    print("| rotatable bonds | molecules | >= 8 stored | >= 8 within the window |")
    print("|---|---|---|---|")
    for lo, hi in ((0, 3), (3, 5), (5, 7), (7, 9), (9, 100)):
        s = (r[:, 2] >= lo) & (r[:, 2] < hi)
        if s.any():
            label = f"{lo}-{hi - 1}" if hi < 100 else f">= {lo}"
            print(f"| {label} | {int(s.sum())} | {(r[s, 0] >= 8).mean():.0%} | {(r[s, 1] >= 8).mean():.0%} |")
    c = np.array(confs, dtype=np.float64)
    print("\n| MMFF94 energy of the start above the molecule's lowest (kcal/mol) | conformers | within the GFN2-xTB window |")
    print("|---|---|---|")
    for lo, hi in ((0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 15), (15, np.inf)):
        s = (c[:, 0] >= lo) & (c[:, 0] < hi)
        if s.any():
            label = f"{lo}-{hi}" if np.isfinite(hi) else f">= {lo}"
            print(f"| {label} | {int(s.sum())} | {c[s, 1].mean():.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
