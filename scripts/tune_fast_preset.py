"""Sweep parameters of the ``fast`` sampler preset on real GEOM-Drugs references (how its defaults were chosen).

    python scripts/tune_fast_preset.py [--model CKPT] [--references DIR] [--grid sigma_max=0.2,0.5 ...]

Each grid point runs ``confgen.benchmark.run_benchmark`` with the confgen method only (2 x references per
molecule, seed 42) and prints COV-R/MAT-R at 0.75 and 1.25 A, conformers per CPU-second and the PoseBusters pass
rate, one line per setting.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from confgen.benchmark import BenchmarkOptions, run_benchmark
from confgen.config import parse_preset_overrides, resolve_preset

REFS = Path(__file__).resolve().parents[2] / "shared" / "data" / "geom_drugs_tora3d7"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--references", default=str(REFS))
    parser.add_argument("--grid", nargs="*", default=["sigma_max=0.5,0.2"], metavar="KEY=V1,V2")
    parser.add_argument("--method", default="confgen")
    parser.add_argument("--max-posebusters", type=int, default=100)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    keys, values = [], []
    for item in args.grid:
        k, v = item.split("=", 1)
        keys.append(k)
        values.append([parse_preset_overrides([f"{k}={x}"])[k] for x in v.split(",")])
    rows = []
    for combo in itertools.product(*values):
        preset = dict(zip(keys, combo))  # overrides of the fast preset
        options = BenchmarkOptions(methods=[args.method], model=args.model, preset=resolve_preset("fast", preset),
                                   max_posebusters=args.max_posebusters, progress=False)
        res = run_benchmark(args.references, options, log=lambda *a, **k: None)
        m = res["methods"][args.method]
        rows.append({"preset": preset, "result": m})
        print(json.dumps({"preset": preset, "summary": _summary(m)}), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=str)


def _summary(m: dict) -> dict:
    out = {"status": m.get("status")}
    for r in (m.get("evaluation") or {}).get("results", []):
        if r["delta"] in (0.75, 1.25):
            out[f"cov_r@{r['delta']}"] = round(100 * r["cov_r_mean"], 1)
            out[f"mat_r@{r['delta']}"] = round(r["mat_r_mean"], 3)
    for k in ("conformers_per_cpu_s", "conformers_per_s"):
        out[k] = m.get(k)
    for k, v in m.items():
        if "posebusters" in k or "stereo" in k:
            out[k] = v
    return out


if __name__ == "__main__":
    main()
