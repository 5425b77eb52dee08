"""Sweep the settings of a sampler preset on real GEOM-Drugs references (how the presets were chosen).

    python scripts/tune_preset.py [--preset fast|edm|...] [--model CKPT] [--references DIR_OR_SDF ...] \\
        [--grid num_levels=8,12 churn=0,5 ...] [--method confgen|confgen-mmff] [--json OUT]

Each grid point (the product of the ``--grid`` values, applied as overrides of ``--preset``) runs
``confgen.benchmark.run_benchmark`` with one method (2 x references per molecule, seed 42) on each reference
set and prints one JSON line: COV-R / COV-P / MAT-R / MAT-P at 0.75 and 1.25 A (means over molecules; for a
QM9 DFT-geometry CSV the share of DFT minima recovered within 0.5 A and the mean minimum RMSD),
network calls per conformer, conformers per CPU-second, conformers written, stereo errors and the PoseBusters
pass rate. ``--json`` keeps every full result.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from confgen.benchmark import BenchmarkOptions, run_benchmark
from confgen.config import parse_preset_overrides, resolve_preset
from confgen.evaluation import headline

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REFS = [str(SHARED / "geom_drugs_tora3d7"),
        str(SHARED / "geom_drugs_train10" / "true_conformers_train_first_10smis.sdf")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fast", help="base preset the grid overrides (default: fast)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--references", nargs="+", default=REFS)
    parser.add_argument("--grid", nargs="*", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--method", default="confgen")
    parser.add_argument("--max-molecules", type=int, default=None)
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
        overrides = dict(zip(keys, combo))
        preset = resolve_preset(args.preset, overrides)
        for ref in args.references:
            options = BenchmarkOptions(methods=[args.method], model=args.model, preset=preset,
                                       max_molecules=args.max_molecules, max_posebusters=args.max_posebusters,
                                       progress=False)
            res = run_benchmark(ref, options, log=lambda *a, **k: None)
            m = res["methods"][args.method]
            rows.append({"preset": args.preset, "overrides": overrides, "references": ref, "result": m})
            print(json.dumps({"preset": args.preset, "overrides": overrides, "references": Path(ref).name,
                              "summary": summarise(m)}), flush=True)
            if args.json:  # rewritten after every point: an interrupted sweep keeps what it measured
                with open(args.json, "w") as fh:
                    json.dump(rows, fh, indent=1, default=str)


def summarise(m: dict) -> dict:
    """The numbers a preset is chosen by, from one method's benchmark result."""
    out = {"status": m.get("status")}
    if (m.get("evaluation") or {}).get("results"):
        out.update(headline(m["evaluation"]["results"]))
    for k in ("dft_recovered", "mean_min_rmsd", "n_requested", "n_generated", "network_calls_per_conformer",
              "conformers_per_cpu_s", "conformers_per_s"):
        if k in m:
            out[k] = m[k]
    for k, v in m.items():
        if "posebusters" in k or "stereo" in k:
            out[k] = v
    return out


if __name__ == "__main__":
    main()
