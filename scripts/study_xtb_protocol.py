#!/usr/bin/env python
"""Which cheap protocol builds ensembles most like GEOM's (CREST, GFN2-xTB)? Scored on the 17 real GEOM-Drugs
molecules of ../shared/data (geom_drugs_tora3d7 + geom_drugs_train10) with COV/MAT at 0.75 and 1.25 A.

For each molecule with L GEOM conformers and each ensemble size K in (L, 2L), candidates (K conformers unless an
energy window leaves fewer):

* ``mmff-diverse`` (today's builder): 3K ETKDGv3 conformers -> MMFF94 -> prune 0.25 A -> K most diverse.
* ``mmff-pool10-diverse``: the same from a 10K pool (larger ETKDG pools).
* ``mmff-lowest``: the K lowest MMFF94 energies of the pruned 3K pool.
* ``mmff-window6-diverse``: MMFF94 energies within GEOM's 6 kcal/mol window, then the K most diverse.
* ``xtbsp-window6-diverse``: GFN2-xTB single points on the 3K MMFF94 minima, 6 kcal/mol window, K most diverse.
* ``xtbsp-boltzmann``: K drawn without replacement with Boltzmann weights (298.15 K) of the single points.
* ``xtbopt-diverse``: the 2L most diverse MMFF94 minima minimised with GFN2-xTB (confgen.chem.xtb, level
  ``--level``), pruned at 0.25 A; the K most diverse of them.
* ``xtbopt-window6-diverse``: the same within 6 kcal/mol of the lowest GFN2-xTB minimum.
* ``xtbopt-boltzmann``: K drawn with Boltzmann weights of the GFN2-xTB minima.
* ``xtbopt-mmff10-window6-diverse``: as ``xtbopt-window6-diverse``, but the 2L minimised are the most diverse of
  the pruned MMFF94 minima within ``--preselect`` (10) kcal/mol of the lowest MMFF94 minimum (fewer where fewer
  lie there): a conformer's MMFF94 energy predicts whether its GFN2-xTB minimum lands in the 6 kcal/mol window
  (scripts/xtb_window_yield.py), so fewer minimisations are wasted outside it.

CPU-s per conformer: the CPU time of the stages a candidate needs (ETKDG + MMFF94 of its pool, single points,
minimisations), divided by the conformers it returns. Per-molecule results are cached in ``--cache`` (JSON), so
an interrupted study continues where it stopped; ``--report`` prints the table from the cache.

Usage:
    python scripts/study_xtb_protocol.py [--shared ../shared/data] [--cache docs/results/xtb_protocol_study_v2]
        [--level normal] [--seed 42] [--preselect 10] [--largest-first] [--report]

docs/results/xtb_protocol_study holds the first study (before xtbopt-mmff10-window6-diverse, GFN2-xTB minimised in
Cartesian coordinates); ``--cache docs/results/xtb_protocol_study --report`` prints its table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from rdkit import Chem  # noqa: E402

from confgen.chem.conformers import with_conformers  # noqa: E402
from confgen.chem.forcefield import KCAL_PER_HARTREE, minimise  # noqa: E402
from confgen.chem.rmsd import rmsd_matrix, self_rmsd  # noqa: E402
from confgen.chem.selection import boltzmann_weights, prune, select, within_window  # noqa: E402
from confgen.chem.xtb import XtbCalculator, xtb_minimise  # noqa: E402
from confgen.data.ensembles import embed_conformers  # noqa: E402
from confgen.data.readers import iter_molecules  # noqa: E402
from confgen.evaluation import cov_mat  # noqa: E402

DELTAS = (0.75, 1.25)
WINDOW = 6.0  # kcal/mol, GEOM's CREST energy window
TEMPERATURE = 298.15
CANDIDATES = ("mmff-diverse", "mmff-pool10-diverse", "mmff-lowest", "mmff-window6-diverse", "xtbsp-window6-diverse",
              "xtbsp-boltzmann", "xtbopt-diverse", "xtbopt-window6-diverse", "xtbopt-boltzmann",
              "xtbopt-mmff10-window6-diverse")


def references(shared: Path) -> list[tuple[str, Chem.Mol]]:
    out = []
    root = shared / "geom_drugs_tora3d7"
    with open(root / "index.csv") as fh:
        for row in csv.DictReader(fh):
            rec = next(iter_molecules(root / "molecules" / row["dir"] / row["true_file"]))
            out.append((row["smiles"], rec.mol))
    for rec in iter_molecules(shared / "geom_drugs_train10" / "true_conformers_train_first_10smis.sdf"):
        out.append((rec.smiles.replace("_", "/"), rec.mol))  # GEOM's file-name form writes "/" as "_"
    return out


def _pool(smiles: str, n: int, seed: int) -> tuple[Chem.Mol, np.ndarray, float]:
    """n ETKDG conformers, MMFF94-minimised: (mol, energies kcal/mol, CPU-s)."""
    t0 = time.process_time()
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    template = Chem.Mol(mol)
    mol = embed_conformers(mol, n, seed)
    energies, _ = minimise(mol)
    # MMFF typing re-perceives aromaticity in place: keep the input's chemistry (as the ensemble builder does)
    return with_conformers(template, list(mol.GetConformers())), energies, time.process_time() - t0


def _boltzmann_draw(cands: list[int], energies: np.ndarray, k: int, rng) -> list[int]:
    if len(cands) <= k:
        return list(cands)
    w = boltzmann_weights(energies[cands], TEMPERATURE)
    return rng.choice(cands, size=k, replace=False, p=w).tolist()


def _window(order: list[int], energies: np.ndarray) -> list[int]:
    return within_window(order, energies, WINDOW)


def _minimise_groups(pool: Chem.Mol, groups: list[list[int]], level: str) -> tuple[dict, dict]:
    """GFN2-xTB minimisation of the union of ``groups`` (pool conformer indices), each conformer once.

    Returns:
        ``({index: (minimised conformer, Hartree, failure reason or None)}, {index: CPU-s})``; the CPU time of a
        conformer is its share of the minimisation call it was part of (one call per distinct group membership).
    """
    confs = list(pool.GetConformers())
    membership: dict[tuple, list[int]] = {}
    for i in sorted(set().union(*groups)):
        membership.setdefault(tuple(i in g for g in groups), []).append(i)
    minimised, cpu_of = {}, {}
    for ids in membership.values():
        sub = with_conformers(pool, [confs[i] for i in ids])
        t0 = time.process_time()
        hartree, reasons = xtb_minimise(sub, level=level, max_steps=300)
        share = (time.process_time() - t0) / len(ids)
        for i, conf, h, r in zip(ids, sub.GetConformers(), hartree, reasons):
            minimised[i], cpu_of[i] = (Chem.Conformer(conf), float(h), r), share
    return minimised, cpu_of


def study_molecule(smiles: str, ref: Chem.Mol, seed: int, level: str, preselect: float = 10.0) -> dict:
    n_ref = ref.GetNumConformers()
    rng = np.random.default_rng(seed)
    out: dict = {"smiles": smiles, "n_ref": n_ref, "results": {}}

    def score(name: str, k_label: str, mol: Chem.Mol, ids: list[int], cpu: float) -> None:
        confs = list(mol.GetConformers())
        gen = with_conformers(mol, [confs[i] for i in ids])
        res = cov_mat(rmsd_matrix(ref, gen), DELTAS)
        out["results"][f"{name}@{k_label}"] = {"n_gen": len(ids), "cpu_s_per_conf": cpu / max(len(ids), 1),
                                              "cov_r": res["cov_r"], "cov_p": res["cov_p"],
                                              "mat_r": res["mat_r"], "mat_p": res["mat_p"]}

    # the 3 x 2L pool serves both sizes (its first 3K conformers are the 3K pool of size K)
    big_mol, big_e, big_cpu = _pool(smiles, 6 * n_ref, seed)
    per_conf_pool = big_cpu / max(big_mol.GetNumConformers(), 1)
    calc = XtbCalculator.for_mol(big_mol)
    t0 = time.process_time()
    sp = np.array([calc(c.GetPositions() * (1 / 0.529177210903))[0] for c in big_mol.GetConformers()]) * KCAL_PER_HARTREE
    sp_cpu_per_conf = (time.process_time() - t0) / big_mol.GetNumConformers()
    rmsd_all = self_rmsd(big_mol)

    # GFN2-xTB minimisation of the 2L most diverse pruned MMFF94 minima of the 6L pool (``pre``), and of the 2L most
    # diverse of those within ``preselect`` kcal/mol of MMFF94 (``pre_mmff``); each conformer is minimised once
    order = prune(list(np.argsort(big_e, kind="stable")), rmsd_all, 0.25)
    pre = select(order, rmsd_all, 2 * n_ref, "diverse", rng)
    low = within_window(order, big_e, preselect)
    pre_mmff = select(low, rmsd_all, 2 * n_ref, "diverse", np.random.default_rng(seed))
    minimised, cpu_of = _minimise_groups(big_mol, [pre, pre_mmff], level)
    out["xtb_failed"] = [r for i, (_, _, r) in minimised.items() if r is not None and i in set(pre)]
    out["xtb_cpu_s_per_conf"] = sum(cpu_of[i] for i in pre) / max(len(pre), 1)

    def xtb_set(ids: list[int]):
        """(mol of the good GFN2-xTB minima of pool conformers ``ids``, their kcal/mol, pruned order, RMSD, CPU-s)"""
        good = [i for i in ids if minimised[i][2] is None]
        xmol = with_conformers(big_mol, [minimised[i][0] for i in good])
        x_e = np.array([minimised[i][1] for i in good]) * KCAL_PER_HARTREE
        x_rmsd = self_rmsd(xmol) if len(good) > 1 else np.zeros((len(good), len(good)))
        x_order = prune(list(np.argsort(x_e, kind="stable")), x_rmsd, 0.25)
        # the 6L pool per minimised conformer is 3 conformers each
        return xmol, x_e, x_order, x_rmsd, len(ids) * (3 * per_conf_pool) + sum(cpu_of[i] for i in ids)

    xmol, x_e, x_order, x_rmsd, x_cost = xtb_set(pre)
    pmol, p_e, p_order, p_rmsd, p_cost = xtb_set(pre_mmff)
    out["preselect"] = {"kcal": preselect, "candidates": len(low), "minimised": len(pre_mmff),
                        "overlap": len(set(pre) & set(pre_mmff))}

    for k_label, k in (("L", n_ref), ("2L", 2 * n_ref)):
        n_pool = min(3 * k, big_mol.GetNumConformers())
        ids = list(range(n_pool))
        sub_e = big_e
        order_k = prune(sorted(ids, key=lambda i: sub_e[i]), rmsd_all, 0.25)
        pool_cost = n_pool * per_conf_pool
        score("mmff-diverse", k_label, big_mol, select(order_k, rmsd_all, k, "diverse", rng), pool_cost)
        score("mmff-lowest", k_label, big_mol, order_k[:k], pool_cost)
        score("mmff-window6-diverse", k_label, big_mol,
              select(_window(order_k, big_e), rmsd_all, k, "diverse", rng), pool_cost)
        sp_order = prune(sorted(ids, key=lambda i: sp[i]), rmsd_all, 0.25)
        sp_cost = pool_cost + n_pool * sp_cpu_per_conf
        score("xtbsp-window6-diverse", k_label, big_mol,
              select(_window(sp_order, sp), rmsd_all, k, "diverse", rng), sp_cost)
        score("xtbsp-boltzmann", k_label, big_mol, _boltzmann_draw(sp_order, sp, k, rng), sp_cost)
        if len(x_order):
            score("xtbopt-diverse", k_label, xmol, select(x_order, x_rmsd, k, "diverse", rng), x_cost)
            score("xtbopt-window6-diverse", k_label, xmol,
                  select(_window(x_order, x_e), x_rmsd, k, "diverse", rng), x_cost)
            score("xtbopt-boltzmann", k_label, xmol, _boltzmann_draw(x_order, x_e, k, rng), x_cost)
        if len(p_order):
            score("xtbopt-mmff10-window6-diverse", k_label, pmol,
                  select(_window(p_order, p_e), p_rmsd, k, "diverse", rng), p_cost)
        # larger ETKDG pool: 10K conformers
        p10_mol, p10_e, p10_cpu = _pool(smiles, 10 * k, seed + 1)
        r10 = self_rmsd(p10_mol)
        o10 = prune(list(np.argsort(p10_e, kind="stable")), r10, 0.25)
        score("mmff-pool10-diverse", k_label, p10_mol, select(o10, r10, k, "diverse", rng), p10_cpu)
    return out


def report(cache: Path) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(cache.glob("*.json"))]
    if not rows:
        print(f"no results in {cache}")
        return
    print(f"{len(rows)} GEOM-Drugs molecules, {sum(r['n_ref'] for r in rows)} GEOM conformers; means over molecules "
          "(COV in %, MAT in A)\n")
    print("| protocol | size | conformers | COV-R@0.75 | COV-R@1.25 | MAT-R | COV-P@0.75 | COV-P@1.25 | MAT-P | "
          "CPU-s / conformer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k_label in ("L", "2L"):
        for name in CANDIDATES:
            key = f"{name}@{k_label}"
            res = [r["results"][key] for r in rows if key in r["results"]]
            if not res:
                continue
            covr = np.mean([x["cov_r"] for x in res], axis=0) * 100
            covp = np.mean([x["cov_p"] for x in res], axis=0) * 100
            missing = len(rows) - len(res)
            print(f"| {name} | {k_label} | {sum(x['n_gen'] for x in res)} | {covr[0]:.1f} | {covr[1]:.1f} | "
                  f"{np.mean([x['mat_r'] for x in res]):.3f} | {covp[0]:.1f} | {covp[1]:.1f} | "
                  f"{np.mean([x['mat_p'] for x in res]):.3f} | {np.mean([x['cpu_s_per_conf'] for x in res]):.2f} |"
                  + (f" ({missing} molecules missing)" if missing else ""))
    fails = sum(len(r.get("xtb_failed", [])) for r in rows)
    print(f"\nGFN2-xTB minimisation: {np.mean([r['xtb_cpu_s_per_conf'] for r in rows]):.2f} CPU-s per conformer "
          f"(mean over molecules), {fails} conformers dropped (SCF failure / changed bonds / not converged)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--cache", default=str(Path(__file__).resolve().parents[1] / "docs" / "results" /
                                           "xtb_protocol_study_v2"))
    ap.add_argument("--level", default="normal", help="GFN2-xTB convergence level of the minimisations")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--preselect", type=float, default=10.0,
                    help="kcal/mol above the lowest MMFF94 minimum for xtbopt-mmff10-window6-diverse")
    ap.add_argument("--report", action="store_true", help="print the table from the cache and exit")
    ap.add_argument("--largest-first", action="store_true",
                    help="study the molecules with the most GEOM conformers first (a second process run with this "
                         "flag shares the work with one run without it)")
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if not args.report:
        refs = sorted(references(Path(args.shared)), key=lambda r: r[1].GetNumConformers(),
                      reverse=args.largest_first)  # cheapest first by default
        for smiles, ref in refs:
            key = hashlib.sha256(f"{smiles}|{args.seed}|{args.level}|{args.preselect}".encode()).hexdigest()[:16]
            path = cache / f"{key}.json"
            if path.exists():
                continue
            t0 = time.time()
            res = study_molecule(smiles, ref, args.seed, args.level, args.preselect)
            res.update(seed=args.seed, level=args.level)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(res, indent=1))
            os.replace(tmp, path)
            print(f"{smiles}: {ref.GetNumConformers()} references, {time.time() - t0:.0f} s", file=sys.stderr,
                  flush=True)
    report(cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
