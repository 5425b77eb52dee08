"""``confgen benchmark REFERENCES``: confgen and RDKit baselines on the same molecules, one table."""

from __future__ import annotations

import sys
from pathlib import Path

from confgen.benchmark import (
    DEFAULT_METHODS,
    METHODS,
    BenchmarkOptions,
    benchmark_markdown,
    format_benchmark,
    run_benchmark,
)
from confgen.chem.files import atomic_write, write_json
from confgen.chem.rmsd import DEFAULT_MAX_MATCHES


def add_arguments(parser) -> None:
    parser.add_argument(
        "references",
        help="reference ensembles (SDF, torsional-diffusion pickle, GEOM rdkit_folder) or a QM9 DFT-geometry CSV",
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, from {', '.join(METHODS)} (confgen-mmff is what 'confgen sample' writes by default, "
        "confgen is 'confgen sample --relax none'; etkdg-select and etkdg-select-mmff are the same pipeline with "
        "the score network switched off: the preset's ETKDG oversampling and diverse selection, with and without "
        "MMFF94, to show what the network adds); confgen@PRESET / etkdg-select@PRESET etc. use that sampler "
        "preset (e.g. confgen@confgf) (default: %(default)s)",
    )
    parser.add_argument("--model", default=None, help="confgen checkpoint (default: the shipped model)")
    parser.add_argument("--preset", default=None, help="sampler preset of the confgen methods without @PRESET")
    parser.add_argument("--max-molecules", type=int, default=None, metavar="N", help="first N reference molecules")
    parser.add_argument("--num-confs", type=int, default=None, metavar="N",
                        help="conformers per molecule (default: 2 x the reference count; QM9 CSV: 2 x n_conformers)")
    parser.add_argument("--seed", type=int, default=42, help="random seed, non-zero (default: %(default)s)")
    parser.add_argument("--delta", type=float, nargs="+", default=None, metavar="D",
                        help="COV thresholds in Angstrom (default: 0.5 0.75 1.25; QM9 CSV: 0.5)")
    parser.add_argument("--split", default=None, metavar="CSV", help="keep only reference molecules listed here")
    parser.add_argument("--max-posebusters", type=int, default=200, metavar="N",
                        help="PoseBusters-check at most N conformers per method, evenly spread; 0 = none, "
                        "-1 = all (default: %(default)s)")
    parser.add_argument("--max-automorphisms", type=int, default=DEFAULT_MAX_MATCHES, metavar="N",
                        help="symmetry-mapping cap per molecule for the RMSD (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="processes for evaluation and PoseBusters")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the full result as JSON")
    parser.add_argument("--markdown", default=None, metavar="OUT", help="write the table as markdown")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    max_pb = None if args.max_posebusters < 0 else args.max_posebusters
    options = BenchmarkOptions(methods=methods, model=args.model, preset=args.preset,
                               max_molecules=args.max_molecules, seed=args.seed, num_confs=args.num_confs,
                               deltas=args.delta, split_csv=args.split, workers=args.workers, max_posebusters=max_pb,
                               max_matches=args.max_automorphisms, progress=not args.no_progress)
    result = run_benchmark(args.references, options, log=lambda msg: print(msg, file=sys.stderr))
    print(format_benchmark(result))
    for f in result["failed_references"]:
        print(f"failed (reference): {f['source']} {f['name']!r}: {f['reason']}", file=sys.stderr)
    for name, m in result["methods"].items():
        for f in (m.get("evaluation") or {}).get("failed", []):
            if f["side"] != "reference" or f not in result["failed_references"]:
                print(f"{name}: failed ({f['side']}): {f['source']} {f['name']!r}: {f['reason']}", file=sys.stderr)
        for row in (m.get("evaluation") or {}).get("missing", []):
            print(f"{name}: no conformers generated for {row['name']!r} (counted as COV 0)", file=sys.stderr)
    if args.json:
        write_json(args.json, result, finite=True)
    if args.markdown:
        text = benchmark_markdown(result)
        atomic_write(Path(args.markdown), lambda fh: fh.write(text), binary=False)
    failed = any(m["status"] != "ok" for m in result["methods"].values()) or bool(result["failed_references"])
    return 1 if failed else 0
