"""``confgen prepare SOURCE... -o DIR``: build a cached training dataset (logic in :mod:`confgen.prepare`)."""

from __future__ import annotations

import argparse
import sys

from confgen.data.ensembles import METHODS, SELECTIONS, EnsembleOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="GEOM rdkit_folder directory (or its summary_*.json), torsional-diffusion pickle, "
                             "multi-conformer SDF, QM9 CSV, 'qm9pack', a directory of conformer shards "
                             "(scripts/build_dataset.py, e.g. data/geom_drugs_xtb), or a SMILES file "
                             "(ensembles are built)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="dataset directory to create")
    parser.add_argument("--exclude", nargs="+", action="extend", default=[], metavar="FILE",
                        help="evaluation files (.smi/.csv/.sdf/.pkl/rdkit_folder): their molecules are left out "
                             "(list SOURCEs before this option, or repeat it)")
    parser.add_argument("--max-confs", type=int, default=None, metavar="K",
                        help="at most K conformers per molecule (highest Boltzmann weight first)")
    parser.add_argument("--max-heavy-atoms", type=int, default=None, metavar="N", help="skip larger molecules")
    parser.add_argument("--min-heavy-atoms", type=int, default=None, metavar="N", help="skip smaller molecules")
    parser.add_argument("--split-csv", default=None, metavar="FILE",
                        help="keep only molecules listed in this SMILES file / CSV (e.g. a GEOM train split)")
    parser.add_argument("--val-fraction", type=float, default=0.05, metavar="F",
                        help="fraction of molecules (not conformers) in the validation split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split and of ensemble building")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="worker processes")
    parser.add_argument("--shard-confs", type=int, default=4096, metavar="C", help="about C conformers per shard")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--strict", action="store_true", help="exit non-zero if any input was skipped")
    ens = parser.add_argument_group("ensembles for SMILES-only sources")
    ens.add_argument("--from-smiles", nargs="+", action="extend", default=[], metavar="FILE",
                     help="SMILES files (.smi/.txt/.csv) whose molecules get conformer ensembles built")
    d = EnsembleOptions()
    ens.add_argument("--ensemble", choices=METHODS, default=d.method,
                     help="ETKDG only, ETKDG + MMFF94, or ETKDG + MMFF94 + GFN2-xTB minimisation of the most diverse MMFF94 "
                          "minima (tblite, confgen.chem.xtb; a few CPU-s per drug-size conformer)")
    ens.add_argument("--ensemble-confs", type=int, default=d.n_confs, metavar="N", help="conformers kept per molecule")
    ens.add_argument("--ensemble-oversample", type=int, default=d.oversample, metavar="X",
                     help="embed X times --ensemble-confs before pruning")
    ens.add_argument("--ensemble-window", type=float, default=d.energy_window, metavar="KCAL",
                     help="energy window above the minimum in kcal/mol (None: no window)")
    ens.add_argument("--ensemble-rmsd", type=float, default=d.rmsd_threshold, metavar="A",
                     help="heavy-atom RMSD pruning threshold")
    ens.add_argument("--ensemble-select", choices=SELECTIONS, default=d.select,
                     help="which conformers to keep when more than --ensemble-confs remain")


def run(args: argparse.Namespace) -> int:
    from confgen.prepare import PrepareOptions, prepare_dataset

    options = PrepareOptions(
        exclude=args.exclude, max_confs=args.max_confs, min_heavy_atoms=args.min_heavy_atoms,
        max_heavy_atoms=args.max_heavy_atoms, split_csv=args.split_csv, val_fraction=args.val_fraction,
        seed=args.seed, workers=args.workers, from_smiles=args.from_smiles, shard_confs=args.shard_confs,
        overwrite=args.overwrite, progress=not args.no_progress,
        ensemble=EnsembleOptions(method=args.ensemble, n_confs=args.ensemble_confs,
                                 oversample=args.ensemble_oversample, energy_window=args.ensemble_window,
                                 rmsd_threshold=args.ensemble_rmsd, select=args.ensemble_select),
    )
    summary = prepare_dataset(args.sources, args.output, options)
    sp = summary["splits"]
    print(f"confgen prepare: wrote {args.output}: {summary['n_molecules']} molecules, {summary['n_conformers']} "
          f"conformers (train {sp['train']['n_molecules']}/{sp['train']['n_conformers']}, val "
          f"{sp['val']['n_molecules']}/{sp['val']['n_conformers']}), {summary['n_skipped']} skipped, "
          f"{summary['excluded']} excluded", file=sys.stderr)
    for src in summary["failed_sources"]:
        print(f"confgen prepare: error: nothing read from {src}", file=sys.stderr)
    if summary["failed_sources"] or (args.strict and summary["n_skipped"]):
        return 1
    return 0
