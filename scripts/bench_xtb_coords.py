#!/usr/bin/env python
"""GFN2-xTB minimisation in Cartesian against delocalised internal coordinates (confgen.chem.xtb).

Start geometries: ETKDG + MMFF94 minima, ``--confs`` per molecule, of the 17 GEOM-Drugs molecules of
../shared/data (geom_drugs_tora3d7 + geom_drugs_train10) and of ``--pool`` molecules spread evenly over the
second half of ../shared/data/splits/geom_drugs/train_pool_smiles.smi (molecules the dataset build has not
reached; one conformer each). Per conformer:

* the Cartesian optimiser (the one the dataset build used first) to xtb's "extreme" level, traced: its
  ``--level`` stopping point (steps, CPU-s) and the fully converged reference;
* the internal-coordinate optimiser to ``--level``: steps, CPU-s, whether it converged, and how far its end
  point lies from the reference (heavy-atom RMSD, symmetry-aware as in ``confgen evaluate``, and the energy
  difference). The same level means the same test in both (energy change and the norm of the Cartesian
  gradient off rigid motions), so a minimum reached by both differs by convergence noise only; a larger RMSD at
  the same energy is a symmetry-equivalent or another, equally low, minimum, and the energy difference says
  which of the two ended lower.

Usage:
    python scripts/bench_xtb_coords.py [--shared ../shared/data] [--confs 2] [--pool 16] [--level vtight]
        [--seed 7] [--json out.json]

CPU-s are process time of this single-threaded process (OpenMP and BLAS pinned to one thread).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from rdkit import Chem  # noqa: E402

from confgen.chem.conformers import with_positions  # noqa: E402
from confgen.chem.forcefield import KCAL_PER_HARTREE  # noqa: E402
from confgen.chem.internals import primitives  # noqa: E402
from confgen.chem.rmsd import rmsd_matrix  # noqa: E402
from confgen.chem.xtb import LEVELS, XtbCalculator, XtbOptions, xtb_optimise  # noqa: E402


def pool_smiles(shared: Path, n: int) -> list[str]:
    lines = (shared / "splits" / "geom_drugs" / "train_pool_smiles.smi").read_text().split("\n")
    lines = [ln.split()[0] for ln in lines if ln.strip()]
    half = len(lines) // 2
    return [lines[half + k * (len(lines) - half) // max(n, 1)] for k in range(n)]


def heavy_rmsd(mol: Chem.Mol, a: np.ndarray, b: np.ndarray) -> float:
    return float(rmsd_matrix(with_positions(mol, [a]), with_positions(mol, [b]))[0, 0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--confs", type=int, default=2, help="conformers per GEOM reference molecule")
    ap.add_argument("--pool", type=int, default=16, help="train-pool molecules (one conformer each)")
    ap.add_argument("--level", default="vtight", choices=list(LEVELS))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_xtb_opt import extreme_reference, reference_smiles, start_conformers

    shared = Path(args.shared)
    jobs = [(s, args.confs, "geom17") for s in reference_smiles(shared)] + [(s, 1, "pool") for s in pool_smiles(shared, args.pool)]
    e_conv, g_conv = LEVELS[args.level]
    rows = []
    for smi, n_confs, group in jobs:
        mol = start_conformers(smi, n_confs, args.seed)
        prims = primitives(mol)
        calc = XtbCalculator.for_mol(mol)
        for conf in mol.GetConformers():
            pos, hess, t_hess, ref, trace, per_call = extreme_reference(calc, mol, conf.GetId())
            stop = next((t for t in trace if t[2] < g_conv and abs(t[3]) < e_conv), None)
            cart_steps, cart_e, cart_pos = (stop[0], stop[1], stop[4]) if stop else (ref.n_steps, ref.energy, ref.pos)
            t0 = time.process_time()
            res = xtb_optimise(calc, pos, hess, XtbOptions(level=args.level, coords="internal"), prims=prims)
            t_int = time.process_time() - t0 + t_hess
            row = {"group": group, "smiles": smi, "n_atoms": mol.GetNumAtoms(), "conf": conf.GetId(),
                   "cart_steps": cart_steps, "cart_cpu_s": t_hess + cart_steps * per_call,
                   "cart_rmsd": heavy_rmsd(mol, cart_pos, ref.pos), "cart_de_kcal": (cart_e - ref.energy) * KCAL_PER_HARTREE,
                   "int_steps": res.n_steps, "int_cpu_s": t_int, "int_converged": res.converged,
                   "int_rmsd": heavy_rmsd(mol, res.pos, ref.pos), "int_de_kcal": (res.energy - ref.energy) * KCAL_PER_HARTREE,
                   "ref_converged": ref.converged}
            rows.append(row)
            print(f"{group} {smi[:40]:40s} conf {conf.GetId()} atoms {mol.GetNumAtoms()}: cartesian {cart_steps} steps "
                  f"{row['cart_cpu_s']:.1f} s, internal {res.n_steps} steps {t_int:.1f} s, RMSD {row['int_rmsd']:.3f} A, "
                  f"dE {row['int_de_kcal']:+.3f} kcal/mol", file=sys.stderr, flush=True)

    print(f"{len(rows)} conformers (ETKDG + MMFF94 minima); level {args.level}; reference: the Cartesian optimiser "
          f"to 'extreme'\n")
    print("| set | conformers | optimiser | median / mean steps | median / mean CPU-s | median / max heavy-atom RMSD "
          "to reference (A) | median / min / max dE (kcal/mol) | converged |")
    print("|---|---|---|---|---|---|---|---|")
    for name, sub in (("GEOM 17", [r for r in rows if r["group"] == "geom17"]),
                      ("train pool", [r for r in rows if r["group"] == "pool"]), ("all", rows)):
        if not sub:
            continue
        for opt, key in (("Cartesian", "cart"), ("internal", "int")):
            steps = [r[f"{key}_steps"] for r in sub]
            cpu = [r[f"{key}_cpu_s"] for r in sub]
            rm = [r[f"{key}_rmsd"] for r in sub]
            de = [r[f"{key}_de_kcal"] for r in sub]
            conv = sum(r["int_converged"] for r in sub) if key == "int" else sum(r["ref_converged"] for r in sub)
            print(f"| {name} | {len(sub)} | {opt} | {np.median(steps):.0f} / {np.mean(steps):.0f} | "
                  f"{np.median(cpu):.2f} / {np.mean(cpu):.2f} | {np.median(rm):.3f} / {np.max(rm):.3f} | "
                  f"{np.median(de):.3f} / {np.min(de):.3f} / {np.max(de):.3f} | {conv}/{len(sub)} |")
    ratio = np.sum([r["cart_cpu_s"] for r in rows]) / np.sum([r["int_cpu_s"] for r in rows])
    print(f"\ntotal CPU-s Cartesian / internal: {ratio:.2f}x; conformers with internal RMSD > 0.25 A: "
          f"{sum(r['int_rmsd'] > 0.25 for r in rows)} (of them lower in energy than the reference: "
          f"{sum(r['int_rmsd'] > 0.25 and r['int_de_kcal'] < -0.01 for r in rows)}, higher: "
          f"{sum(r['int_rmsd'] > 0.25 and r['int_de_kcal'] > 0.01 for r in rows)})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seed": args.seed, "confs": args.confs, "level": args.level, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
