"""Copy a trained checkpoint into the package as the default model, recording its measured metrics.

    python scripts/ship_model.py runs/X/best.pt [--benchmark-json bench.json ...] [--note TEXT]

Writes confgen/checkpoints/default.pt (atomically). The checkpoint keeps its config, weights, version and
``trained_on``; ``metrics["benchmarks"]`` gets the headline numbers (per method: COV/MAT rows, speed, validity) of each ``confgen benchmark --json`` file, and
``metrics["git_commit"]`` the commit of the code that shipped it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from confgen.checkpoint import read_checkpoint, save_checkpoint

DEFAULT = Path(__file__).resolve().parents[1] / "confgen" / "checkpoints" / "default.pt"


#: per-method fields of a ``confgen benchmark --json`` result kept in the checkpoint (no per-molecule data)
_METHOD_KEYS = ("status", "n_requested", "n_generated", "conformers_per_s", "conformers_per_cpu_s", "peak_memory_mb",
                "posebusters", "stereo", "dft_recovered", "dft_recovered_with_conformers",
                "n_molecules_with_conformers", "mean_min_rmsd", "median_min_rmsd")


def _summary(result: dict) -> dict:
    """The headline numbers of a benchmark result: per method its COV/MAT rows, speed, validity and stereo."""
    out = {k: result.get(k) for k in ("references", "mode", "seed", "deltas", "n_molecules", "n_ref_conformers")}
    out["methods"] = {}
    for name, m in result.get("methods", {}).items():
        row = {k: m[k] for k in _METHOD_KEYS if k in m}
        if m.get("evaluation"):
            row["results"] = m["evaluation"].get("results")
        out["methods"][name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--benchmark-json", nargs="*", default=[])
    parser.add_argument("--note", default="")
    parser.add_argument("-o", "--output", default=str(DEFAULT))
    args = parser.parse_args()
    ckpt = read_checkpoint(args.checkpoint)
    metrics = dict(ckpt.get("metrics") or {})
    benches = {}
    for path in args.benchmark_json:
        with open(path) as fh:
            data = json.load(fh)
        benches[Path(path).name] = _summary(data)
    if benches:
        metrics["benchmarks"] = json.loads(json.dumps(benches))
    try:
        metrics["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    if args.note:
        metrics["note"] = args.note
    ckpt["metrics"] = metrics
    save_checkpoint(args.output, ckpt)
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output} ({size / 1e6:.2f} MB) from {args.checkpoint}")


if __name__ == "__main__":
    main()
