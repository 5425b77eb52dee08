#!/usr/bin/env python
"""Record, and compare, what confgen produces for fixed seeds: the check that a refactor changed no result.

    python scripts/check_same_results.py record OUT_DIR [--repo DIR] [--quick]
    python scripts/check_same_results.py compare BEFORE_DIR AFTER_DIR

``record`` runs the confgen found in ``--repo`` (default: this checkout; each step is a fresh
``python -m confgen`` process with ``PYTHONPATH=DIR``, one thread) and keeps its outputs in OUT_DIR:

* ``sample_mmff.sdf`` / ``sample_none.sdf``: ``confgen sample examples/molecules.smi -n 3 --seed 11``, with and
  without MMFF94 relaxation;
* ``bench.json``: ``confgen benchmark ../shared/data/geom_drugs_tora3d7`` with the confgen and RDKit methods
  (PoseBusters on 20 conformers per method) -- skipped with ``--quick``;
* ``prep/``: ``confgen prepare`` on the geom_drugs_train10 SDF (5 conformers per molecule);
* ``train_egnn/log.csv``, ``train_clofnet/log.csv``: 30 steps of the tiny configs.

``compare`` prints every difference and exits 1 if any is larger than allowed: coordinates 1e-4 A per atom,
SDF properties and names identical (timings excepted), benchmark COV/MAT equal to the digits the tables report
(0.1 % and 0.001 A), training losses within a relative 1e-4, prepared-dataset summaries identical.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TRAIN10 = SHARED / "geom_drugs_train10" / "true_conformers_train_first_10smis.sdf"


def _run(repo: Path, out: Path, name: str, args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "confgen", *args], cwd=repo, env=env, capture_output=True,
                          text=True)
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}); see {out / (name + '.log')}")
    return time.time() - t0


def record(out: Path, repo: Path, quick: bool) -> None:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    for relax in ("mmff", "none"):
        times[f"sample_{relax}"] = _run(repo, out, f"sample_{relax}", [
            "sample", "examples/molecules.smi", "-n", "3", "--seed", "11", "--relax", relax, "--workers", "1",
            "-o", str(out / f"sample_{relax}.sdf"), "--no-progress"])
    if not quick:
        times["benchmark"] = _run(repo, out, "benchmark", [
            "benchmark", str(SHARED / "geom_drugs_tora3d7"), "--methods",
            "confgen,confgen-mmff,etkdg,etkdg-mmff,etkdg-select,etkdg-select-mmff", "--max-posebusters", "20",
            "--workers", "1", "--json", str(out / "bench.json"), "--no-progress"])
    times["prepare"] = _run(repo, out, "prepare", [
        "prepare", str(TRAIN10), "-o", str(out / "prep"), "--max-confs", "5", "--overwrite", "--no-progress"])
    for backbone in ("egnn", "clofnet"):
        times[f"train_{backbone}"] = _run(repo, out, f"train_{backbone}", [
            "train", f"configs/tiny_{backbone}.yaml", "--out", str(out / f"train_{backbone}"), "--threads", "1",
            "--set", "train.max_steps=30", "--set", "train.val_every=15", "--set", "train.log_every=5",
            "--no-progress"])
    (out / "times.json").write_text(json.dumps(times, indent=1))
    print(json.dumps(times, indent=1))


TIMING_PROPS = ("time", "_s", "seconds")


def _sdf_records(path: Path):
    from rdkit import Chem
    return [m for m in Chem.SDMolSupplier(str(path), removeHs=False, sanitize=False)]


def _compare_sdf(a: Path, b: Path, problems: list[str]) -> None:
    ma, mb = _sdf_records(a), _sdf_records(b)
    if len(ma) != len(mb):
        problems.append(f"{a.name}: {len(ma)} vs {len(mb)} records")
        return
    worst = 0.0
    for k, (x, y) in enumerate(zip(ma, mb)):
        if x.GetProp("_Name") != y.GetProp("_Name"):
            problems.append(f"{a.name} record {k}: name {x.GetProp('_Name')!r} vs {y.GetProp('_Name')!r}")
        px, py = x.GetPropsAsDict(), y.GetPropsAsDict()
        for key in sorted(set(px) | set(py)):
            if any(t in key for t in TIMING_PROPS):
                continue
            if px.get(key) != py.get(key):
                vx, vy = px.get(key), py.get(key)
                if isinstance(vx, float) and isinstance(vy, float) and abs(vx - vy) <= 1e-3 * max(1.0, abs(vx)):
                    continue
                problems.append(f"{a.name} record {k}: property {key}: {vx!r} vs {vy!r}")
        pa, pb = x.GetConformer().GetPositions(), y.GetConformer().GetPositions()
        if pa.shape != pb.shape:
            problems.append(f"{a.name} record {k}: {pa.shape} vs {pb.shape} atoms")
            continue
        worst = max(worst, float(abs(pa - pb).max()) if pa.size else 0.0)
    print(f"{a.name}: {len(ma)} records, largest coordinate difference {worst:.2e} A")
    if worst > 1e-4:
        problems.append(f"{a.name}: coordinates differ by up to {worst:.2e} A")


def _compare_bench(a: Path, b: Path, problems: list[str]) -> None:
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    for method, ra in ja["methods"].items():
        rb = jb["methods"].get(method)
        if rb is None:
            problems.append(f"bench: method {method} missing")
            continue
        for key in ("status", "n_generated"):
            if ra.get(key) != rb.get(key):
                problems.append(f"bench {method}: {key} {ra.get(key)} vs {rb.get(key)}")
        for k, (x, y) in enumerate(zip(ra["evaluation"]["results"], rb["evaluation"]["results"])):
            for key, vx in x.items():
                vy = y.get(key)
                digits = 3 if key.startswith("mat") or key == "delta" else 1
                scale = 1.0 if key.startswith("mat") or key == "delta" else 100.0
                if round(vx * scale, digits) != round(vy * scale, digits):
                    problems.append(f"bench {method} delta#{k} {key}: {vx} vs {vy}")
        print(f"bench {method}: {ra.get('conformers_per_cpu_s')} vs {rb.get('conformers_per_cpu_s')} conformers/CPU-s")


def _compare_log(a: Path, b: Path, problems: list[str]) -> None:
    import csv
    ra, rb = list(csv.DictReader(a.open())), list(csv.DictReader(b.open()))
    if len(ra) != len(rb):
        problems.append(f"{a}: {len(ra)} vs {len(rb)} rows")
    worst = 0.0
    for x, y in zip(ra, rb):
        for key, vx in x.items():
            if "time" in key or key.endswith("_s") or "per_s" in key:
                continue
            vy = y.get(key)
            try:
                fx, fy = float(vx), float(vy)
            except (TypeError, ValueError):
                if vx != vy:
                    problems.append(f"{a.parent.name} {key}: {vx!r} vs {vy!r}")
                continue
            if math.isnan(fx) and math.isnan(fy):
                continue
            rel = abs(fx - fy) / max(abs(fx), 1e-12)
            worst = max(worst, rel)
    print(f"{a.parent.name}/log.csv: {len(ra)} rows, largest relative difference {worst:.2e}")
    if worst > 1e-4:
        problems.append(f"{a.parent.name}: training log differs by up to {worst:.2e} (relative)")


def _volatile(key: str) -> bool:
    return key in ("created", "command", "elapsed_s", "confgen_version", "output", "sources") or "time" in key


def _stable(obj):
    """``obj`` without its volatile keys (timestamps, versions, paths), at any depth."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if not _volatile(k)}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def _compare_prep(a: Path, b: Path, problems: list[str]) -> None:
    sa, sb = (_stable(json.loads((d / "summary.json").read_text())) for d in (a, b))
    for key in sorted(set(sa) | set(sb)):
        if sa.get(key) != sb.get(key):
            problems.append(f"prep summary {key}: {str(sa.get(key))[:200]} vs {str(sb.get(key))[:200]}")
    print(f"prep: summary keys {len(sa)} vs {len(sb)}")


def compare(before: Path, after: Path) -> int:
    problems: list[str] = []
    for name in ("sample_mmff.sdf", "sample_none.sdf"):
        _compare_sdf(before / name, after / name, problems)
    if (before / "bench.json").exists() and (after / "bench.json").exists():
        _compare_bench(before / "bench.json", after / "bench.json", problems)
    _compare_prep(before / "prep", after / "prep", problems)
    for backbone in ("egnn", "clofnet"):
        _compare_log(before / f"train_{backbone}" / "log.csv", after / f"train_{backbone}" / "log.csv", problems)
    tb, ta = (json.loads((d / "times.json").read_text()) for d in (before, after))
    for key in tb:
        print(f"time {key}: {tb[key]:.1f} s before, {ta.get(key, float('nan')):.1f} s after (wall, shared cores)")
    for p in problems:
        print("DIFFERENT:", p)
    print("same results" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("out", type=Path)
    r.add_argument("--repo", type=Path, default=REPO)
    r.add_argument("--quick", action="store_true", help="skip the benchmark")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = ap.parse_args()
    if args.cmd == "record":
        record(args.out, args.repo.resolve(), args.quick)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
