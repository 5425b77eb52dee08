"""``confgen evaluate GENERATED REFERENCES``: COV/MAT of generated conformers against reference ensembles."""

from __future__ import annotations

import sys

from confgen.chem.files import write_json
from confgen.chem.rmsd import DEFAULT_MAX_MATCHES
from confgen.evaluation import (
    DEFAULT_DELTAS,
    coverage_curve,
    evaluate_ensembles,
    format_table,
    load_ensembles,
    plot_coverage,
)


def add_arguments(parser) -> None:
    parser.add_argument("generated", help="generated conformers (SDF, or any format the readers support)")
    parser.add_argument(
        "references",
        help="reference ensembles: SDF ensemble file, torsional-diffusion pickle dict[smiles -> list[Mol]], "
        "GEOM rdkit_folder directory, or a directory with an index.csv listing one SDF per molecule "
        "(true_file / pred_file columns, as ../shared/data/geom_drugs_tora3d7)",
    )
    parser.add_argument(
        "--delta",
        type=float,
        nargs="+",
        default=list(DEFAULT_DELTAS),
        metavar="D",
        help="COV thresholds in Angstrom (default: %(default)s)",
    )
    parser.add_argument("--split", default=None, metavar="CSV", help="keep only reference molecules listed here")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the full result as JSON")
    parser.add_argument("--plot", default=None, metavar="OUT.png", help="plot COV-R and COV-P against delta")
    parser.add_argument("--workers", type=int, default=1, help="processes evaluating molecules in parallel")
    parser.add_argument(
        "--max-automorphisms",
        type=int,
        default=DEFAULT_MAX_MATCHES,
        metavar="N",
        help="molecules with more symmetry mappings fail with a clear reason (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    refs, ref_failed, ref_stats = load_ensembles(args.references, split_csv=args.split, side="reference")
    gens, gen_failed, gen_stats = load_ensembles(args.generated, side="generated")
    result = evaluate_ensembles(
        gens,
        refs,
        args.delta,
        workers=args.workers,
        max_matches=args.max_automorphisms,
        failed=ref_failed + gen_failed,
        progress=not args.no_progress,
    )
    result["generated"] = str(args.generated)
    result["references"] = str(args.references)
    result["reader_stats"] = {"references": ref_stats, "generated": gen_stats}
    print(format_table(result, title=f"confgen evaluate {args.generated} vs {args.references}"))
    for row in result["missing"]:
        print(f"missing: {row['source']} {row['name']!r}: no generated conformers (counted as COV 0)", file=sys.stderr)
    for side, stats in (("reference", ref_stats), ("generated", gen_stats)):
        if stats.get("dropped_conformers"):
            print(
                f"warning: {stats['dropped_conformers']} {side} conformer(s) dropped by the reader: their bond graph "
                f"differs from their molecule's first conformer (see reader_stats in the JSON)",
                file=sys.stderr,
            )
    for f in result["failed"]:
        print(f"failed ({f['side']}): {f['source']} {f['name']!r}: {f['reason']}", file=sys.stderr)
    if args.json:
        write_json(args.json, result, finite=True)
    if args.plot:
        top = max(2.5, 1.2 * max(args.delta))
        grid = [round(0.025 * i, 4) for i in range(int(top / 0.025) + 1)]
        plot_coverage(
            {"generated": coverage_curve(result["per_molecule"], grid)},
            args.plot,
            title=f"{result['n_molecules']} molecules",
            marks=args.delta,
        )
    return 1 if result["n_failed"] else 0
