"""Exploration: does over-generation + duplicate pruning + diverse selection raise COV/MAT?

Generates K x N candidates per molecule once (N = 2 x references) and evaluates several ways of keeping N of
them against the references; prints one row per (method, selection). Methods: ``confgen-mmff`` (fast preset
without oversampling, MMFF94, then selection), ``confgen-pre`` (selection on the sampled geometries, then
MMFF94: what the pipeline does), ``etkdg-mmff``. "first" = the first N candidates (no selection);
``kF_pT_wW_how`` = the first F x N candidates, duplicates within T A pruned, an MMFF window of W kcal/mol,
``diverse`` (greedy max-min RMSD) or ``energy`` choice. Results: docs/results/selection_*.txt.

    python scripts/explore_selection.py ../shared/data/geom_drugs_tora3d7 --oversample 3 --full-grid
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from rdkit import Chem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("references")
    ap.add_argument("--oversample", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--methods", nargs="+", default=["confgen-mmff", "etkdg-mmff"])
    ap.add_argument("--json", default=None)
    ap.add_argument("--full-grid", action="store_true",
                    help="also duplicate pruning (0.25, 0.5 A), a 10 kcal/mol MMFF window and lowest-energy choice")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from confgen.benchmark import generate_rdkit, input_mol
    from confgen.checkpoint import load_model
    from confgen.chem.conformers import with_conformers
    from confgen.chem.forcefield import mmff_energies
    from confgen.chem.rmsd import rmsd_matrix
    from confgen.chem.selection import prune, select
    from confgen.config import resolve_preset
    from confgen.evaluation import evaluate_ensembles, load_ensembles
    from confgen.generation import GenerationRequest, generate_conformers

    records, _, _ = load_ensembles(args.references, side="reference")
    records = [r for r in records if r.mol.GetNumConformers()]
    inputs = [input_mol(r) for r in records]
    nums = [2 * r.mol.GetNumConformers() for r in records]
    k = args.oversample
    model = load_model(None, device="cpu")
    rows = []
    for method in args.methods:
        t0 = time.process_time()
        if method.startswith("confgen"):
            request = GenerationRequest(inputs, [k * n for n in nums], model=model, seed=args.seed,
                                        preset=resolve_preset("fast", {"oversample": 1.0}),
                                        relax="mmff" if method.endswith("mmff") else "none", progress=False)
            cands = generate_conformers(request, errors=[])
        else:
            cands = [generate_rdkit(m, k * n, seed=args.seed, mmff=True) for m, n in zip(inputs, nums)]
        gen_cpu = time.process_time() - t0
        t1 = time.process_time()
        prepared = []
        for m in cands:
            e = mmff_energies(Chem.Mol(m))
            r = rmsd_matrix(m, m)
            prepared.append((m, e, r))
        sel_cpu = time.process_time() - t1
        ways = {"first": None}
        for frac in (1.5, 2, 3):
            if frac <= k:
                for thr in ((0.0, 0.25, 0.5) if args.full_grid else (0.0,)):
                    for win in ((None, 10.0) if args.full_grid else (None,)):
                        for how in (("diverse", "energy") if args.full_grid else ("diverse",)):
                            ways[f"k{frac}_p{thr}_w{win}_{how}"] = (frac, thr, win, how)
        for name, spec in ways.items():
            gens = []
            for m, n, (mm, e, r) in zip(inputs, nums, prepared):
                c = mm.GetNumConformers()
                if spec is None:
                    idx = list(range(min(n, c)))
                else:
                    frac, thr, win, how = spec
                    pool = list(range(min(int(round(frac * n)), c)))
                    order = sorted(pool, key=lambda i: e[i]) if e is not None else pool
                    if win is not None and e is not None:
                        order = [i for i in order if e[i] - e[order[0]] <= win]
                    order = prune(order, r, thr)
                    if len(order) < n:  # fill back with pruned ones, lowest energy first
                        rest = [i for i in sorted(pool, key=lambda i: e[i]) if i not in order]
                        chosen = order + rest[: n - len(order)]
                    else:
                        chosen = select(order, r, n, how, np.random.default_rng(0))
                    idx = chosen
                confs = list(mm.GetConformers())
                gens.append(with_conformers(mm, [confs[i] for i in idx]))
            if method == "confgen-pre":  # selected on sampled geometries, then minimised
                from rdkit.Chem import AllChem
                for g in gens:
                    w = Chem.Mol(g)
                    AllChem.MMFFOptimizeMoleculeConfs(w, numThreads=1, maxIters=2000)
                    for src, dst in zip(w.GetConformers(), g.GetConformers()):
                        dst.SetPositions(src.GetPositions())
            ev = evaluate_ensembles(gens, records, [0.5, 0.75, 1.25])
            res = {r_["delta"]: r_ for r_ in ev["results"]}
            row = {"method": method, "way": name, "cov_r_075": res[0.75]["cov_r_mean"],
                   "cov_r_125": res[1.25]["cov_r_mean"], "mat_r": res[0.75]["mat_r_mean"],
                   "cov_p_075": res[0.75]["cov_p_mean"], "mat_p": res[0.75]["mat_p_mean"],
                   "gen_cpu_s": gen_cpu, "sel_cpu_s": sel_cpu}
            rows.append(row)
            print(f"{method:14s} {name:28s} COV-R@0.75 {100 * row['cov_r_075']:5.1f} @1.25 "
                  f"{100 * row['cov_r_125']:5.1f} MAT-R {row['mat_r']:.3f} COV-P@0.75 {100 * row['cov_p_075']:5.1f}"
                  f" MAT-P {row['mat_p']:.3f}", flush=True)
        print(f"{method}: {sum(k * n for n in nums)} candidates in {gen_cpu:.1f} CPU-s, energies+RMSD {sel_cpu:.1f} CPU-s",
              flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
