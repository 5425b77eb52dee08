#!/usr/bin/env python
"""Start-up of the command line: ``confgen --help``, ``confgen sample --help`` and ``confgen sample`` for one
small molecule (ibuprofen, 1 conformer, default preset and MMFF94, one thread), each run ``--repeats`` times as
a fresh process, as a user runs them.

Reports the median wall time and the median CPU time (user + sys of the child). On a busy machine the wall
time includes waiting for a core; the CPU time is what the command costs on an idle core (it is single
threaded with ``--workers 1``). The commands run in a temporary directory, so ``python -m confgen`` imports
the confgen that the environment (or ``PYTHONPATH``) provides, not a ``confgen/`` in the current directory.
Also reports whether ``--help`` imported torch, and the time ``import torch``
alone takes in this environment.

    python scripts/bench_startup.py --repeats 5 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IBUPROFEN = "CC(C)Cc1ccc(cc1)[C@H](C)C(=O)O ibuprofen"


def _run(cmd: list[str], cwd: str) -> tuple[float, float]:
    """(wall s, CPU s) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        smi = Path(tmp) / "ibuprofen.smi"
        smi.write_text(IBUPROFEN + "\n")
        out = Path(tmp) / "out.sdf"
        cases = {
            "import torch": [py, "-c", "import torch"],
            "confgen --help": [py, "-m", "confgen", "--help"],
            "confgen sample --help": [py, "-m", "confgen", "sample", "--help"],
            "confgen sample (ibuprofen, 1 conformer)": [py, "-m", "confgen", "sample", str(smi), "-o", str(out),
                                                        "-n", "1", "--seed", "1", "--workers", "1",
                                                        "--no-progress"],
        }
        os.environ.update(env)
        results = {}
        for name, cmd in cases.items():
            _run(cmd, tmp)  # warm the file cache
            runs = [_run(cmd, tmp) for _ in range(args.repeats)]
            results[name] = {"wall_s": statistics.median(w for w, _ in runs),
                             "cpu_s": statistics.median(c for _, c in runs)}
        probe = ("import sys\nfrom confgen.cli import main\ntry:\n    main(['sample', '--help'])\nexcept SystemExit:\n"
                 "    pass\nprint('torch' in sys.modules, file=sys.stderr)\n")
        torch_in_help = subprocess.run([py, "-c", probe], capture_output=True, text=True, cwd=tmp).stderr.strip()
    load = os.getloadavg()[0]
    import confgen

    print(f"confgen from {Path(confgen.__file__).parent}")
    print(f"load average {load:.1f} on {os.cpu_count()} cores; median of {args.repeats} runs")
    print("| command | wall s | CPU s |\n|---|---|---|")
    for name, r in results.items():
        print(f"| `{name}` | {r['wall_s']:.2f} | {r['cpu_s']:.2f} |")
    print(f"'confgen sample --help' imports torch: {torch_in_help}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load_average": load, "cores": os.cpu_count(),
                                               "repeats": args.repeats, "results": results,
                                               "help_imports_torch": torch_in_help == "True"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
