#!/usr/bin/env python
"""Peak memory of ``confgen prepare`` on a GEOM rdkit_folder with about 100,000 real GEOM conformers.

Builds an rdkit_folder in GEOM's documented format (tests/geom_fixture.py) from the 503 real GEOM-Drugs
conformers of ../shared/data/geom_drugs_train10, written ``--copies`` times under distinct keys (200 copies =
100,600 conformers in 2,000 molecule pickles), then runs ``python -m confgen prepare`` on it in a subprocess and
measures (a) the peak RSS of the largest process (getrusage RUSAGE_CHILDREN ru_maxrss) and (b) the peak of the
summed RSS of the prepare process and its workers (sampled from /proc every 0.1 s).

Usage:
    python scripts/bench_prepare_memory.py [--copies 200] [--workers 2] [--workdir /tmp/confgen_bench_mem]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from geom_fixture import build_rdkit_folder  # noqa: E402


def _tree_rss_kb(pid: int) -> int:
    """Summed VmRSS (kB) of ``pid`` and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/confgen_bench_mem")
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--keep", action="store_true", help="keep the fixture and dataset")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.time()
    root = build_rdkit_folder(work / "rdkit_folder", Path(args.shared), copies=args.copies)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    print(f"fixture: {root} ({size / 1e6:.0f} MB on disk) built in {time.time() - t0:.0f} s", flush=True)

    out = work / "dataset"
    cmd = [sys.executable, "-m", "confgen", "prepare", str(root), "-o", str(out), "--workers", str(args.workers),
           "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env)
    peak_tree = 0
    while proc.poll() is None:
        peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
        time.sleep(0.1)
    wall = time.time() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(f"prepare failed with exit status {proc.returncode}")
        return 1
    summary = json.loads((out / "summary.json").read_text())
    shards = sorted(out.glob("*.pt"))
    t1 = time.time()
    from confgen.data.dataset import ConformerDataset

    n_loaded = len(ConformerDataset(out, "train")) + len(ConformerDataset(out, "val"))
    load_s = time.time() - t1
    print(f"command: {' '.join(cmd)}")
    print(f"prepared {summary['n_molecules']} molecules, {summary['n_conformers']} conformers in {len(shards)} shards "
          f"({sum(s.stat().st_size for s in shards) / 1e6:.0f} MB); wall {wall:.0f} s, "
          f"cpu {usage.ru_utime + usage.ru_stime:.0f} s (load avg {os.getloadavg()[0]:.1f})")
    print(f"peak RSS, largest process: {usage.ru_maxrss / 1024:.0f} MB")
    print(f"peak RSS, prepare + {args.workers} workers summed: {peak_tree / 1024:.0f} MB")
    print(f"loading the dataset (ConformerDataset train + val): {n_loaded} conformers in {load_s:.1f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
