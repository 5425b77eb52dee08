"""``confgen sample INPUT -o OUT.sdf``: 3D conformers for SMILES / CSV / SDF input, written as SDF."""

from __future__ import annotations

import dataclasses
import os
import sys

from confgen.errors import ConfgenError

#: molecules handed to the generator at a time (conformers of several molecules share each forward pass)
MOLECULES_PER_ROUND = 256


def add_arguments(parser) -> None:
    from confgen.options import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_FRAGMENTS,
        DEFAULT_MAX_STEREOISOMERS,
        DEFAULT_PRESET,
        DEFAULT_STEREO,
        FRAGMENT_CHOICES,
        RELAX_CHOICES,
        SAMPLER_PRESETS,
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
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(SAMPLER_PRESETS),
                        help=f"sampler preset (default: {DEFAULT_PRESET})")
    parser.add_argument("--preset-override", action="append", default=[], metavar="KEY=VALUE",
                        help="change one sampler parameter of the preset (repeatable), e.g. steps_per_level=5")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed; the same seed and device give the same coordinates (default: random, "
                             "printed)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"conformers per forward pass (default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 (default: cpu)")
    parser.add_argument("--workers", type=int, default=0,
                        help="CPU threads for the network, RDKit embedding and MMFF (default 0: all cores)")
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


def _num_confs(args, record) -> int:
    if args.num_confs is not None:
        return args.num_confs
    if args.num_confs_factor is not None:
        if record.num_confs is None:
            raise ValueError("--num-confs-factor needs a conformer count for every molecule (empty count cell)")
        return int(round(args.num_confs_factor * record.num_confs))
    return record.num_confs if record.num_confs is not None else 10


def run(args) -> int:
    import torch

    from confgen.errors import InputError
    from confgen.generate import GenerationStats, generate_conformers, progress_budgets, _resolve_device
    from confgen.io import AtomicSDFWriter, read_inputs, resolve_stereo
    from confgen.progress import Progress
    from confgen.sampling import parse_overrides, resolve_preset

    if args.num_confs is not None and args.num_confs < 1:
        raise ConfgenError("-n/--num-confs must be at least 1")
    if args.num_confs_factor is not None and args.num_confs_factor <= 0:
        raise ConfgenError("--num-confs-factor must be positive")
    if args.batch_size < 1:
        raise ConfgenError("--batch-size must be at least 1")
    if args.workers < 0:
        raise ConfgenError("--workers must be 0 (all cores) or more")
    if args.max_stereoisomers < 1:
        raise ConfgenError("--max-stereoisomers must be at least 1")
    overrides = parse_overrides(args.preset_override)
    resolve_preset(args.preset, overrides)  # fail early on a bad override
    device = _resolve_device(args.device)
    workers = args.workers or (os.cpu_count() or 1)
    if device.type == "cpu":
        torch.set_num_threads(workers)

    errors: list[InputError] = []
    records = read_inputs(args.input, errors=errors, fragments=args.fragments, count_column=args.count_column)
    if args.num_confs_factor is not None and records and all(r.num_confs is None for r in records):
        raise ConfgenError(f"{args.input}: --num-confs-factor needs a CSV count column (n_conformers, "
                           "num_conformers, n_confs, num_confs or n_true; or name it with --count-column)")

    counts, usable, notes = [], [], []
    for rec in records:
        try:
            n = _num_confs(args, rec)
            mols, note = resolve_stereo(rec.mol, args.stereo, max_isomers=args.max_stereoisomers,
                                        source=rec.source, label=rec.smiles, name=rec.name)
        except ValueError as exc:
            errors.append(InputError(str(exc), source=rec.source, smiles=rec.smiles))
            continue
        except InputError as exc:
            errors.append(exc)
            continue
        if note:
            notes.append(note)
        for k, mol in enumerate(mols):
            name = rec.name if len(mols) == 1 else f"{rec.name}_iso{k + 1}"
            usable.append(dataclasses.replace(rec, mol=mol, name=name))
            counts.append(n)
    errors.sort(key=_input_order)
    for exc in errors:
        print(f"confgen sample: error: {exc}", file=sys.stderr)
    n_failed = len(errors)
    for note in notes:
        print(f"confgen sample: warning: {note}", file=sys.stderr)

    from confgen.generate import _resolve_model

    model = _resolve_model(args.model, device) if usable else None
    stats = GenerationStats(seed=args.seed)
    seed = args.seed
    if seed is None:
        import secrets

        seed = secrets.randbits(31)
        print(f"confgen sample: random seed {seed} (pass --seed {seed} to reproduce)", file=sys.stderr)

    # one bar for the whole run: its total (embedding, sampling, relaxation, writing) is fixed here
    bar = Progress(progress_budgets(counts, args.preset, args.relax, write=True, preset_overrides=overrides),
                   enabled=not args.no_progress)
    with bar, AtomicSDFWriter(args.output) as writer:
        for start in range(0, len(usable), MOLECULES_PER_ROUND):
            part = usable[start:start + MOLECULES_PER_ROUND]
            gen_errors: list[InputError] = []
            mols = generate_conformers(
                [r.mol for r in part], counts[start:start + len(part)], model=model, preset=args.preset,
                preset_overrides=overrides, seed=seed, batch_size=args.batch_size, device=device,
                relax=args.relax, progress=bar, errors=gen_errors, workers=workers, stats=stats,
                ids=[r.index for r in part], sources=[r.source for r in part])
            for exc in gen_errors:
                bar.write(f"confgen sample: error: {exc}")
            n_failed += len(gen_errors)
            with bar.phase("writing"):
                for rec, n, mol in zip(part, counts[start:start + len(part)], mols):
                    if mol is not None:
                        writer.write_conformers(mol, name=rec.name, smiles=rec.smiles, index=rec.index)
                    bar.advance(n, work=0 if mol is None else mol.GetNumConformers())
        n_written = writer.num_written

    for note in stats.warnings:
        print(f"confgen sample: warning: {note}", file=sys.stderr)
    n_mols = len(usable) - stats.failed_molecules
    n_salts = sum(1 for r in usable if r.removed_fragments)
    salts = (f"; fragments removed from {n_salts} input(s) (confgen_removed_fragments; --fragments all keeps them)"
             if n_salts else "")
    where = f"to {args.output}" if n_written else f"(no output file: {args.output} was not written)"
    print(f"confgen sample: wrote {n_written} conformers of {n_mols} molecules {where} "
          f"({n_failed} input(s) failed; {stats.repairs()}{salts})", file=sys.stderr)
    if bar.summary():
        print(f"confgen sample: {bar.summary()}", file=sys.stderr)
    return 1 if n_failed or not n_written else 0


def _input_order(exc) -> int:
    """Sort key of an input error: its record's line (errors of reading and of checking in file order)."""
    source = exc.source or ""
    digits = "".join(ch for ch in source.rsplit(":", 1)[-1] if ch.isdigit())
    return int(digits) if digits else 0
