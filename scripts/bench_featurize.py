#!/usr/bin/env python
"""Benchmark the featuriser on GEOM-Drugs-size molecules with explicit hydrogens.

Reads the first N SMILES of ../shared/data/splits/geom_drugs/train_pool_smiles.smi, adds hydrogens, and
featurises every molecule with confgen.data.features.featurize_mol (in 1 process, then in W processes).
Reports wall-clock and CPU seconds (the machine is shared, so CPU time is the fairer number).

Usage:
    python scripts/bench_featurize.py [--n 10000] [--workers 2] [--smiles FILE]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from rdkit import Chem  # noqa: E402

from confgen.data.features import featurize_mol  # noqa: E402

torch.set_num_threads(1)


def _featurize_chunk(smiles: list[str]) -> tuple[int, int, float]:
    t0 = time.process_time()
    atoms = 0
    for s in smiles:
        g = featurize_mol(Chem.AddHs(Chem.MolFromSmiles(s)))
        atoms += g.num_nodes
    return len(smiles), atoms, time.process_time() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--smiles", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "splits"
                                        / "geom_drugs" / "train_pool_smiles.smi"))
    args = ap.parse_args(argv)
    with open(args.smiles) as fh:
        smiles = [ln.split()[0] for ln in fh if ln.strip()][: args.n]

    t0, c0 = time.time(), time.process_time()
    mols = [Chem.AddHs(Chem.MolFromSmiles(s)) for s in smiles]
    parse_wall, parse_cpu = time.time() - t0, time.process_time() - c0
    n_atoms = sum(m.GetNumAtoms() for m in mols)
    n_heavy = sum(m.GetNumHeavyAtoms() for m in mols)

    t0, c0 = time.time(), time.process_time()
    n_edges = 0
    for m in mols:
        n_edges += featurize_mol(m).num_edges
    feat_wall, feat_cpu = time.time() - t0, time.process_time() - c0

    chunks = [smiles[i::args.workers * 8] for i in range(args.workers * 8)]
    t0 = time.time()
    with mp.get_context("fork").Pool(args.workers) as pool:
        res = pool.map(_featurize_chunk, chunks)
    par_wall = time.time() - t0
    par_cpu = sum(r[2] for r in res)
    assert sum(r[0] for r in res) == len(smiles)

    print(f"molecules: {len(mols)} (mean {n_atoms / len(mols):.1f} atoms with H, {n_heavy / len(mols):.1f} heavy; "
          f"{n_edges / len(mols):.0f} edges)  cores: {os.cpu_count()}  load avg: {os.getloadavg()[0]:.1f}")
    print(f"parse + AddHs:             wall {parse_wall:6.1f} s  cpu {parse_cpu:6.1f} s")
    print(f"featurize_mol, 1 process:  wall {feat_wall:6.1f} s  cpu {feat_cpu:6.1f} s  "
          f"({1e3 * feat_cpu / len(mols):.2f} ms/molecule)")
    print(f"parse+AddHs+featurize, {args.workers} processes: wall {par_wall:6.1f} s  cpu {par_cpu:6.1f} s")
    print(f"peak RSS (main process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
