"""``confgen sample INPUT -o OUT.sdf``: 3D conformers for SMILES / CSV / SDF input, written as SDF."""

from __future__ import annotations

import os
import sys

from confgen.errors import ConfgenError


def add_arguments(parser) -> None:
    from confgen.options import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_FRAGMENTS,
        DEFAULT_MAX_STEREOISOMERS,
        DEFAULT_PRESET,
        DEFAULT_STEREO,
        FRAGMENT_CHOICES,
        PRESET_NAMES,
        RELAX_CHOICES,
        STEREO_CHOICES,
    )

    parser.add_argument("input", help="molecules: .smi/.txt ('SMILES [name]' per line), .csv (smiles[, name, "
                                      "n_conformers]) or .sdf")
    parser.add_argument("--count-column", default=None, metavar="NAME",
                        help="CSV column with the conformer count (default: n_conformers, num_conformers, n_confs, "
                             "num_confs or n_true, the first present)")
    parser.add_argument("-o", "--output", required=True, help="output SDF (written atomically)")
    count = parser.add_mutually_exclusive_group()
    count.add_argument("-n", "--num-confs", type=int, default=None,
                       help="conformers per molecule (default: the CSV's n_conformers, else 10)")
    count.add_argument("--num-confs-factor", type=float, default=None, metavar="K",
                       help="CSV input: K x n_conformers conformers per molecule (2 = the GEOM convention)")
    parser.add_argument("--model", default=None, help="checkpoint (default: the model shipped with confgen)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESET_NAMES),
                        help=f"sampler preset (default: {DEFAULT_PRESET})")
    parser.add_argument("--preset-override", action="append", default=[], metavar="KEY=VALUE",
                        help="change one sampler parameter of the preset (repeatable), e.g. steps_per_level=5")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed; the same seed and device give the same coordinates (default: random, "
                             "printed; with --resume: the interrupted run's)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"conformers per forward pass (default: {DEFAULT_BATCH_SIZE}; on cuda the most per pass, "
                             "packed by size, fewer where GPU memory runs out)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 (default: cpu)")
    parser.add_argument("--workers", type=int, default=0,
                        help="worker processes, one CPU core each (default 0: one per core; with --device cuda: 1 "
                             "worker using every core for RDKit)")
    parser.add_argument("--relax", default="mmff", choices=RELAX_CHOICES,
                        help="post-processing: mmff (default: MMFF94 minimisation, energy in "
                             "confgen_mmff_energy_kcal_mol; a conformer whose stereo it would change is written "
                             "unrelaxed), or none (the score model's conformers as sampled)")
    parser.add_argument("--fragments", default=DEFAULT_FRAGMENTS, choices=FRAGMENT_CHOICES,
                        help="multi-fragment inputs (salts, solvates): largest (default: keep the largest organic "
                             "fragment; the removed ones are listed in confgen_removed_fragments) or all (keep every "
                             "fragment, placed apart without overlap)")
    parser.add_argument("--stereo", default=DEFAULT_STEREO, choices=STEREO_CHOICES,
                        help="unspecified stereocentres / stereo bonds: one (default: one stereoisomer per molecule, "
                             "the same for all its conformers, with a warning), enumerate (each stereoisomer, up to "
                             "--max-stereoisomers, written as its own molecule) or refuse (reject the molecule); "
                             "recorded in confgen_stereo_policy and confgen_isomeric_smiles")
    parser.add_argument("--max-stereoisomers", type=int, default=DEFAULT_MAX_STEREOISOMERS, metavar="N",
                        help=f"--stereo enumerate: at most N isomers per input (default: {DEFAULT_MAX_STEREOISOMERS})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    library = parser.add_argument_group("large libraries (README: resumable, sharded, distributed)")
    library.add_argument("--resume", action="store_true",
                         help="continue the interrupted run that wrote OUT (same input, options and seed: checked); "
                              "the output is written chunk by chunk, its progress in OUT.resume.json")
    library.add_argument("--shard", default=None, metavar="K/N",
                         help="process only the K-th of N contiguous slices of the input (job arrays); "
                              "'cat' of the N outputs in order is the output of the whole input")
    library.add_argument("--chunk-size", type=int, default=None, metavar="M",
                         help="input molecules per chunk: the unit of work and of an atomic append (default 32)")
    library.add_argument("--backend", default="local", choices=("local", "dask"),
                         help="local worker processes (default) or a Dask cluster (optional extra confgen[dask])")
    library.add_argument("--scheduler", default=None, metavar="ADDRESS|FILE",
                         help="--backend dask: scheduler address (tcp://host:8786) or scheduler file (default: a "
                              "local cluster of --workers processes)")



def run(args) -> int:
    from confgen.config import parse_preset_overrides, resolve_preset
    from confgen.library import DEFAULT_CHUNK_SIZE, RunOptions, parse_shard, sample_library

    if args.num_confs is not None and args.num_confs < 1:
        raise ConfgenError("-n/--num-confs must be at least 1")
    if args.num_confs_factor is not None and args.num_confs_factor <= 0:
        raise ConfgenError("--num-confs-factor must be positive")
    if args.batch_size < 1:
        raise ConfgenError("--batch-size must be at least 1")
    if args.workers < 0:
        raise ConfgenError("--workers must be 0 (one per core) or more")
    if args.max_stereoisomers < 1:
        raise ConfgenError("--max-stereoisomers must be at least 1")
    if args.num_confs_factor is not None and not _has_count_column(args.input, args.count_column):
        raise ConfgenError(f"{args.input}: --num-confs-factor needs a CSV count column (n_conformers, "
                           "num_conformers, n_confs, num_confs or n_true; or name it with --count-column)")
    overrides = parse_preset_overrides(args.preset_override)
    resolve_preset(args.preset, overrides)  # fail early on a bad override
    shard = parse_shard(args.shard) if args.shard else (1, 1)
    cores = os.cpu_count() or 1
    gpu = args.device.startswith("cuda")
    if gpu:
        from confgen.devices import resolve_device

        resolve_device(args.device)
    workers = args.workers or (1 if gpu else cores)
    threads = max(1, cores // workers) if gpu else 1
    options = RunOptions(seed=args.seed, num_confs=args.num_confs, num_confs_factor=args.num_confs_factor,
                         model=args.model, preset=args.preset, preset_overrides=overrides, relax=args.relax,
                         batch_size=args.batch_size, device=args.device, fragments=args.fragments,
                         stereo=args.stereo, max_stereoisomers=args.max_stereoisomers,
                         count_column=args.count_column)
    report = sample_library(args.input, args.output, options, shard=shard,
                            chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE, workers=workers, threads=threads,
                            backend=args.backend, scheduler=args.scheduler, resume=args.resume,
                            progress=not args.no_progress, log=lambda line: print(f"confgen sample: {line}",
                                                                                   file=sys.stderr))
    if report.signal is not None:
        held = (f"the molecules of input records {report.start} to {report.next_index - 1}"
                if report.next_index > report.start else "no molecule yet")
        print(f"confgen sample: interrupted ({signal_name(report.signal)}): {args.output} holds {held}; continue "
              "with --resume", file=sys.stderr)
        return report.exit_code
    if args.resume and report.resumed_from >= report.stop and not report.counters:
        return 0  # the output was complete: nothing to do (said in the library's note)
    from confgen.generation import GenerationStats

    stats = GenerationStats(**report.counters)
    resumed = f" (resumed at input record {report.resumed_from})" if args.resume else ""
    if report.conformers:
        where = f"to {args.output}{resumed}"
    else:  # no conformer at all: no (empty) output file
        os.unlink(args.output)
        where = f"(no output file: {args.output} was not written)"
    salts = (f"; fragments removed from {report.salts} input(s) (confgen_removed_fragments; --fragments all keeps "
             "them)" if report.salts else "")
    print(f"confgen sample: wrote {report.conformers} conformers of {report.molecules} molecules {where} "
          f"({report.failed} input(s) failed; {stats.repairs()}{salts})", file=sys.stderr)
    if report.rates():
        print(f"confgen sample: {report.rates()} (worker-seconds)", file=sys.stderr)
    return 1 if report.exit_code or not report.conformers else 0


def _has_count_column(path, count_column) -> bool:
    """Whether a CSV input has the conformer-count column that --num-confs-factor needs (other inputs: no)."""
    import csv

    from confgen.io import COUNT_COLUMNS, input_format

    if not os.path.isfile(path):
        return True  # a missing input is reported by the run
    if input_format(path) != "csv":
        return False
    with open(path, encoding="utf-8", newline="") as fh:
        header = {h.strip().lower() for h in next(csv.reader(fh), [])}
    return (count_column.strip().lower() in header) if count_column else bool(header & set(COUNT_COLUMNS))


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name
