#!/usr/bin/env python
"""Fast GFN2-xTB minimisation (confgen.chem.xtb): cost per conformer and error of each convergence level.

For the 17 GEOM-Drugs molecules of ../shared/data (geom_drugs_tora3d7 + geom_drugs_train10), ``--confs`` ETKDG
conformers each are MMFF94-minimised, then minimised with GFN2-xTB to xtb's "extreme" level while every accepted
point is traced. Because the optimiser's path does not depend on the level (the level only decides where it
stops), one traced run shows where each looser level would have stopped: its cost (single points, CPU-s) and its
error against the fully converged geometry (heavy-atom and all-atom RMSD after superposition, energy
difference). ``--old K`` also runs the previous implementation (scipy L-BFGS-B on Cartesian coordinates, gtol
1e-4, no SCF restart) on the first K conformers, for the before/after cost.

Usage:
    python scripts/bench_xtb_opt.py [--shared ../shared/data] [--confs 2] [--old 4] [--seed 7] [--json out.json]

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

from confgen.chem.forcefield import BOHR_PER_ANGSTROM, KCAL_PER_HARTREE, minimise, mmff_hessian  # noqa: E402
from confgen.chem.xtb import LEVELS, XtbCalculator, XtbOptions, xtb_optimise  # noqa: E402
from confgen.data.ensembles import embed_conformers  # noqa: E402

REPORT_LEVELS = ("crude", "sloppy", "loose", "lax", "normal", "tight", "vtight")


def reference_smiles(shared: Path) -> list[str]:
    """The 17 GEOM-Drugs molecules of ../shared/data, loaded as the protocol study loads them."""
    from study_xtb_protocol import references  # scripts/ is on sys.path when a script there runs

    return [smiles for smiles, _ in references(shared)]


def kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean(0)
    b = b - b.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    return float(np.sqrt(((a @ rot - b) ** 2).sum(1).mean()))


def start_conformers(smiles: str, n: int, seed: int) -> Chem.Mol:
    """``n`` ETKDG conformers of ``smiles`` (explicit hydrogens), MMFF94-minimised: the optimisers' start."""
    mol = embed_conformers(Chem.AddHs(Chem.MolFromSmiles(smiles)), n, seed)
    minimise(mol)
    return mol


def extreme_reference(calc: XtbCalculator, mol: Chem.Mol, conf_id: int):
    """The Cartesian optimiser from conformer ``conf_id`` to xtb's "extreme" level, traced.

    Returns:
        ``(start pos, MMFF94 Hessian, its CPU-s, XtbResult, trace, CPU-s per single point)``.
    """
    pos = mol.GetConformer(conf_id).GetPositions()
    t0 = time.process_time()
    hess = mmff_hessian(mol, conf_id)
    t_hess = time.process_time() - t0
    trace: list = []
    calc.n_calls = 0
    t0 = time.process_time()
    res = xtb_optimise(calc, pos, hess, XtbOptions(level="extreme", max_steps=1000), trace=trace)
    return pos, hess, t_hess, res, trace, (time.process_time() - t0) / max(calc.n_calls, 1)


def old_minimise(calc: XtbCalculator, pos: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The previous implementation: scipy L-BFGS-B, gtol 1e-4, 300 steps, a fresh SCF each call."""
    from scipy.optimize import minimize

    def fun(x):
        calc._res = None
        e, g = calc(x.reshape(-1, 3))
        return e, g.reshape(-1)

    calc.n_calls = 0
    opt = minimize(fun, pos.reshape(-1) * BOHR_PER_ANGSTROM, jac=True, method="L-BFGS-B",
                   options={"maxiter": 300, "gtol": 1e-4})
    return opt.x.reshape(-1, 3) / BOHR_PER_ANGSTROM, float(opt.fun), calc.n_calls


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--confs", type=int, default=2, help="conformers per molecule")
    ap.add_argument("--old", type=int, default=4, help="conformers also minimised by the previous implementation")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    rows = []
    n_old = 0
    for smi in reference_smiles(Path(args.shared)):
        mol = start_conformers(smi, args.confs, args.seed)
        heavy = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() > 1]
        calc = XtbCalculator.for_mol(mol)
        for conf in mol.GetConformers():
            pos, hess, t_hess, res, trace, per_call = extreme_reference(calc, mol, conf.GetId())
            total = per_call * calc.n_calls  # the CPU time of the whole extreme run
            row = {"smiles": smi, "n_atoms": mol.GetNumAtoms(), "conf": conf.GetId(), "hessian_cpu_s": t_hess,
                   "extreme_steps": res.n_steps, "extreme_converged": res.converged, "extreme_cpu_s": total + t_hess,
                   "levels": {}}
            for level in REPORT_LEVELS:
                e_conv, g_conv = LEVELS[level]
                stop = next((t for t in trace if t[2] < g_conv and abs(t[3]) < e_conv), None)
                if stop is None:
                    stop = (res.n_steps, res.energy, res.grad_norm, 0.0, res.pos)
                steps, energy, _, _, p = stop
                row["levels"][level] = {
                    "steps": steps, "cpu_s": t_hess + steps * per_call,
                    "rmsd_heavy": kabsch_rmsd(p[heavy], res.pos[heavy]), "rmsd_all": kabsch_rmsd(p, res.pos),
                    "de_kcal": (energy - res.energy) * KCAL_PER_HARTREE}
            if n_old < args.old:
                n_old += 1
                t0 = time.process_time()
                p_old, e_old, calls = old_minimise(calc, pos)
                row["old"] = {"cpu_s": time.process_time() - t0, "steps": calls,
                              "rmsd_heavy": kabsch_rmsd(p_old[heavy], res.pos[heavy]),
                              "de_kcal": (e_old - res.energy) * KCAL_PER_HARTREE}
            rows.append(row)
            print(f"{smi[:40]:40s} conf {conf.GetId()} atoms {mol.GetNumAtoms()}: extreme {res.n_steps} steps "
                  f"{total:.1f} s; normal {row['levels']['normal']['steps']} steps", file=sys.stderr, flush=True)

    drug = [r for r in rows if 30 <= r["n_atoms"] <= 50]
    print(f"{len(rows)} conformers of {len(rows) // args.confs} GEOM-Drugs molecules ({len(drug)} with 30-50 atoms); "
          f"start: ETKDG + MMFF94 minimum; reference: the same optimiser run to xtb's 'extreme' level\n")
    print("| level (dE Eh, |g| Eh/Bohr) | median steps | median CPU-s (all) | median CPU-s (30-50 atoms) | "
          "median / max heavy-atom RMSD to converged (A) | median / max all-atom RMSD (A) | median / max dE (kcal/mol) |")
    print("|---|---|---|---|---|---|---|")
    for level in REPORT_LEVELS + ("extreme",):
        if level == "extreme":
            steps = [r["extreme_steps"] for r in rows]
            cpu = [r["extreme_cpu_s"] for r in rows]
            cpu_d = [r["extreme_cpu_s"] for r in drug]
            rh = ra = de = [0.0]
        else:
            lv = [r["levels"][level] for r in rows]
            steps = [v["steps"] for v in lv]
            cpu = [v["cpu_s"] for v in lv]
            cpu_d = [r["levels"][level]["cpu_s"] for r in drug]
            rh = [v["rmsd_heavy"] for v in lv]
            ra = [v["rmsd_all"] for v in lv]
            de = [v["de_kcal"] for v in lv]
        e_conv, g_conv = LEVELS[level]
        print(f"| {level} ({e_conv:g}, {g_conv:g}) | {np.median(steps):.0f} | {np.median(cpu):.2f} | "
              f"{np.median(cpu_d) if cpu_d else float('nan'):.2f} | {np.median(rh):.3f} / {np.max(rh):.3f} | "
              f"{np.median(ra):.3f} / {np.max(ra):.3f} | {np.median(de):.3f} / {np.max(de):.3f} |")
    old = [r["old"] for r in rows if "old" in r]
    if old:
        print(f"\nprevious implementation (scipy L-BFGS-B, gtol 1e-4) on {len(old)} conformers: median "
              f"{np.median([o['cpu_s'] for o in old]):.1f} CPU-s, {np.median([o['steps'] for o in old]):.0f} single "
              f"points; heavy-atom RMSD to converged median {np.median([o['rmsd_heavy'] for o in old]):.3f} A, "
              f"dE median {np.median([o['de_kcal'] for o in old]):.3f} kcal/mol")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seed": args.seed, "confs": args.confs, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
