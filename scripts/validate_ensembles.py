#!/usr/bin/env python
"""Validate ensemble-builder settings against real GEOM ensembles (geom_drugs_tora3d7, 7 molecules).

Builder output is the "generated" side, the GEOM conformers (t_*_true_confs_aligned.sdf) the references;
2 x references are built per molecule (except the "defaults" row). COV-R / MAT-R (and COV-P / MAT-P) at 0.75 and 1.25 A with heavy-atom,
symmetry-aware RMSD (confgen.chem.rmsd.rmsd_matrix, GetBestRMS semantics). Means over the 7 molecules.

Usage:
    python scripts/validate_ensembles.py [--shared ../shared/data] [--workers 2] [--seed 42] [--json out.json]
        [--configs NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from rdkit import Chem  # noqa: E402

from confgen.data.ensembles import EnsembleOptions, build_ensemble  # noqa: E402
from confgen.data.readers import iter_molecules  # noqa: E402
from confgen.chem.rmsd import rmsd_matrix  # noqa: E402
from confgen.evaluation import cov_mat  # noqa: E402

DELTAS = (0.75, 1.25)

# name -> (options without n_confs; n_confs is set to 2 x references)
CONFIGS = {
    "ETKDG (plain)": dict(method="etkdg", oversample=1, rmsd_threshold=0.0, select="energy"),
    "ETKDG + MMFF": dict(method="etkdg-mmff", oversample=1, rmsd_threshold=0.0, select="energy"),
    "3x ETKDG, prune 0.25, diverse": dict(method="etkdg", oversample=3, rmsd_threshold=0.25, select="diverse"),
    "3x +MMFF, prune 0.25, lowest E": dict(method="etkdg-mmff", oversample=3, rmsd_threshold=0.25, select="energy"),
    "3x +MMFF, prune 0.25, random": dict(method="etkdg-mmff", oversample=3, rmsd_threshold=0.25, select="random"),
    "3x +MMFF, prune 0.25, diverse": dict(method="etkdg-mmff", oversample=3, rmsd_threshold=0.25, select="diverse"),
    "3x +MMFF, prune 0.5, diverse": dict(method="etkdg-mmff", oversample=3, rmsd_threshold=0.5, select="diverse"),
    "3x +MMFF, window 10, prune 0.25, diverse": dict(method="etkdg-mmff", oversample=3, energy_window=10.0,
                                                     rmsd_threshold=0.25, select="diverse"),
    "2x +MMFF, prune 0.25, diverse": dict(method="etkdg-mmff", oversample=2, rmsd_threshold=0.25, select="diverse"),
    # the builder exactly as `confgen prepare --from-smiles` runs it: EnsembleOptions() defaults, 30 kept
    # whatever the number of references (so K != 2L here)
    "defaults (EnsembleOptions(), 30 kept)": dict(),
}


def _task(args):
    name, smiles, ref_bytes, n_ref, seed = args
    ref = Chem.Mol(ref_bytes)
    kwargs = {"n_confs": 2 * n_ref, **CONFIGS[name]} if CONFIGS[name] else {}
    opts = EnsembleOptions(seed=seed, **kwargs)
    t0 = time.process_time()
    ens = build_ensemble(Chem.MolFromSmiles(smiles), opts)
    cpu = time.process_time() - t0
    res = cov_mat(rmsd_matrix(ref, ens.mol), DELTAS)
    return name, smiles, res, cpu, ens.mol.GetNumConformers()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", default=None)
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    args = ap.parse_args(argv)
    root = Path(args.shared) / "geom_drugs_tora3d7"
    with open(root / "index.csv") as fh:
        rows = list(csv.DictReader(fh))
    tasks = []
    for row in rows:
        ref = next(iter_molecules(root / "molecules" / row["dir"] / row["true_file"]))
        for name in args.configs:
            tasks.append((name, row["smiles"], ref.mol.ToBinary(), ref.num_confs, args.seed))
    t0 = time.time()
    with mp.get_context("fork").Pool(args.workers) as pool:
        results = pool.map(_task, tasks, chunksize=1)
    wall = time.time() - t0
    table = {}
    for name, smiles, res, cpu, n_gen in results:
        t = table.setdefault(name, {"per_molecule": [], "cpu_s": 0.0, "n_gen": 0})
        t["per_molecule"].append({"smiles": smiles, **res})
        t["cpu_s"] += cpu
        t["n_gen"] += n_gen
    print(f"geom_drugs_tora3d7: {len(rows)} molecules, {sum(int(r['n_true']) for r in rows)} GEOM references, "
          f"2 x references built, seed {args.seed}; wall {wall:.0f} s on {args.workers} workers\n")
    print("| builder | conformers kept | COV-R@0.75 | COV-R@1.25 | MAT-R | COV-P@0.75 | COV-P@1.25 | MAT-P | "
          "CPU s / kept conformer |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for name in args.configs:
        pm = table[name]["per_molecule"]
        covr = np.mean([m["cov_r"] for m in pm], axis=0) * 100
        covp = np.mean([m["cov_p"] for m in pm], axis=0) * 100
        matr = np.mean([m["mat_r"] for m in pm])
        matp = np.mean([m["mat_p"] for m in pm])
        cps = table[name]["cpu_s"] / max(table[name]["n_gen"], 1)
        print(f"| {name} | {table[name]['n_gen']} | {covr[0]:.1f} | {covr[1]:.1f} | {matr:.3f} | {covp[0]:.1f} | {covp[1]:.1f} | "
              f"{matp:.3f} | {cps:.3f} |")
        summary[name] = {"options": CONFIGS[name], "cov_r_mean": covr.tolist(), "mat_r_mean": matr,
                         "cov_p_mean": covp.tolist(), "mat_p_mean": matp, "cpu_s_per_conformer": cps,
                         "per_molecule": pm}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"deltas": DELTAS, "seed": args.seed, "defaults": asdict(EnsembleOptions()),
                       "results": summary}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
