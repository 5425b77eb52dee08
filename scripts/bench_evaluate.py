#!/usr/bin/env python
"""Timing and memory of the COV/MAT evaluation on real data (numbers of docs/benchmarks.md, "Evaluation").

Cases:
  1. the 7 GEOM-Drugs molecules of ../shared/data/geom_drugs_tora3d7 (129 references) against
     (a) the shipped Tora3D predictions (236 conformers) and (b) ETKDGv3 ensembles of 2 x 129 = 258
     conformers: library time (``evaluate_ensembles``) and wall time of the whole ``confgen evaluate`` command;
  2. one molecule, 468 references against 936 generated: the largest real GEOM ensemble in ../shared
     (``CCN(CC)C(C(=O)NC1CCCCC1)c1ccc(C)cc1``, 151 GEOM-Drugs conformers of geom_drugs_train10, 22 heavy atoms,
     8 symmetry mappings) repeated to 468 references (copies after the first 151 get 0.1 A Gaussian noise),
     against 936 ETKDGv3 conformers (seed 42) of the same molecule; time, peak traced memory (tracemalloc) and
     max RSS for several ``chunk_size`` values, and agreement between chunk sizes.

Usage:
    python scripts/bench_evaluate.py [--shared ../shared/data] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from rdkit import Chem

from confgen.benchmark import generate_rdkit
from confgen.chem.conformers import heavy_atom_copy, heavy_positions
from confgen.chem.rmsd import DEFAULT_CHUNK_SIZE, atom_mappings, rmsd_matrix_from_positions
from confgen.evaluation import evaluate_ensembles, load_ensembles

BIG_SMILES_NO_STEREO = "CCN(CC)C(C(=O)NC1CCCCC1)c1ccc(C)cc1"


def _write_sdf(path: Path, mols) -> None:
    writer = Chem.SDWriter(str(path))
    for mol in mols:
        for conf in mol.GetConformers():
            writer.write(mol, confId=conf.GetId())
    writer.close()


def case_tora3d7(shared: Path, tmp: Path) -> dict:
    root = shared / "geom_drugs_tora3d7"
    refs, _, _ = load_ensembles(root, side="reference")
    preds, _, _ = load_ensembles(root, side="generated")
    etkdg = []
    t0 = time.perf_counter()
    for rec in refs:
        mol = Chem.Mol(rec.mol)
        mol.RemoveAllConformers()
        gen = generate_rdkit(mol, 2 * rec.mol.GetNumConformers(), seed=42, mmff=False)
        gen.SetProp("_Name", rec.name)
        etkdg.append(gen)
    t_gen = time.perf_counter() - t0
    out: dict = {"n_ref": sum(r.mol.GetNumConformers() for r in refs), "etkdg_generation_s": round(t_gen, 2)}
    gen_sdf = tmp / "etkdg.sdf"
    _write_sdf(gen_sdf, etkdg)
    for label, gens, gen_path in (("tora3d_predictions", preds, root), ("etkdg", etkdg, gen_sdf)):
        t0 = time.perf_counter()
        res = evaluate_ensembles(gens, refs)
        t_lib = time.perf_counter() - t0
        t0 = time.perf_counter()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(
            [sys.executable, "-m", "confgen", "evaluate", str(gen_path), str(root), "--no-progress"],
            capture_output=True,
            text=True,
        )
        t_cli = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_cli = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"confgen evaluate failed: {proc.stderr}")
        r125 = res["results"][-1]
        out[label] = {
            "n_gen": res["n_gen_conformers"],
            "library_s": round(t_lib, 3),
            "cli_wall_s": round(t_cli, 2),
            "cli_cpu_s": round(cpu_cli, 2),
            "cov_r_mean_1.25": round(r125["cov_r_mean"], 4),
            "mat_r_mean": round(r125["mat_r_mean"], 4),
            "cov_p_mean_1.25": round(r125["cov_p_mean"], 4),
            "mat_p_mean": round(r125["mat_p_mean"], 4),
        }
        print(f"tora3d7 vs {label}: {res['n_gen_conformers']} generated, library {t_lib:.2f} s, "
              f"confgen evaluate {t_cli:.2f} s wall, {cpu_cli:.2f} s CPU", flush=True)
    return out


def case_big(shared: Path) -> dict:
    pkl = shared / "geom_drugs_train10" / "true_conformers_train_first_10smis.pkl"
    recs, _, _ = load_ensembles(pkl)
    from confgen.chem.smiles import canonical_smiles

    want = canonical_smiles(BIG_SMILES_NO_STEREO, stereo=False)
    rec = next(r for r in recs if canonical_smiles(r.mol, stereo=False) == want)
    n_real = rec.mol.GetNumConformers()
    ref_h, ref_idx = heavy_atom_copy(rec.mol)
    real = heavy_positions(rec.mol, ref_idx)  # [151, N, 3]
    rng = np.random.default_rng(0)
    reps = [real] + [real + rng.normal(0.0, 0.1, real.shape) for _ in range(468 // n_real + 1)]
    ref_pos = np.concatenate(reps)[:468]
    mol = Chem.Mol(rec.mol)
    mol.RemoveAllConformers()
    t0 = time.perf_counter()
    gen = generate_rdkit(mol, 936, seed=42, mmff=False)  # ETKDGv3, seed 42, one thread
    t_gen = time.perf_counter() - t0
    gen_h, gen_idx = heavy_atom_copy(gen)
    gen_pos = heavy_positions(gen, gen_idx)
    print(f"big case: {rec.smiles}: {n_real} GEOM conformers -> 468 references; {gen_pos.shape[0]} ETKDG "
          f"conformers in {t_gen:.1f} s", flush=True)
    out: dict = {"smiles": rec.smiles, "n_real_references": n_real, "n_ref": 468, "n_gen": int(gen_pos.shape[0]),
                 "heavy_atoms": int(ref_pos.shape[1]), "runs": []}
    t0 = time.perf_counter()
    maps = atom_mappings(ref_h, gen_h)
    t_maps = time.perf_counter() - t0
    out["n_mappings"] = int(maps.shape[0])
    out["mappings_s"] = round(t_maps, 4)
    baseline = None
    for chunk in (DEFAULT_CHUNK_SIZE, 1 << 14, 1 << 18, 1 << 20):
        tracemalloc.start()
        t0 = time.perf_counter()
        c0 = time.process_time()
        d = rmsd_matrix_from_positions(ref_pos, gen_pos, maps, chunk_size=chunk)
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if baseline is None:
            baseline = d
        triples = maps.shape[0] * d.size
        run = {"chunk_size": chunk, "seconds": round(dt + t_maps, 3), "cpu_seconds": round(dc + t_maps, 3),
               "peak_traced_mb": round(peak / 2**20, 1),
               "alignments_per_s": round(triples / dt), "max_abs_diff_vs_default": float(np.abs(d - baseline).max())}
        out["runs"].append(run)
        print(f"  chunk {chunk:>8}: {dt + t_maps:.2f} s wall, {dc + t_maps:.2f} s CPU, peak traced {peak / 2**20:.1f} MB, "
              f"{triples / dt / 1e6:.2f} M alignments/s", flush=True)
    out["cov_r_1.25"] = float(np.mean(baseline.min(axis=1) < 1.25))
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    shared = Path(args.shared)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"tora3d7": case_tora3d7(shared, Path(tmp)), "big": case_big(shared),
                  "cpu_count": os.cpu_count()}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
