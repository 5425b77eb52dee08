"""``confgen sample INPUT -o OUT.sdf``: 3D conformers for SMILES / CSV / SDF input, written as SDF."""

from __future__ import annotations

import os
import sys

from confgen.errors import ConfgenError

#: molecules handed to the generator at a time (conformers of several molecules share each forward pass)
MOLECULES_PER_ROUND = 256


def add_arguments(parser) -> None:
    from confgen.options import DEFAULT_BATCH_SIZE, DEFAULT_PRESET, RELAX_CHOICES, SAMPLER_PRESETS

    parser.add_argument("input", help="molecules: .smi/.txt ('SMILES [name]' per line), .csv (smiles[, name, "
                                      "n_conformers]) or .sdf")
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
                        help="post-processing: mmff (default: MMFF94 minimisation, energy in confgen_mmff_energy; a "
                             "conformer whose stereo it would change is written unrelaxed), or none (the score "
                             "model's conformers as sampled)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _num_confs(args, record) -> int:
    if args.num_confs is not None:
        return args.num_confs
    if args.num_confs_factor is not None:
        if record.num_confs is None:
            raise ValueError("--num-confs-factor needs an n_conformers value for every molecule")
        return int(round(args.num_confs_factor * record.num_confs))
    return record.num_confs if record.num_confs is not None else 10


def run(args) -> int:
    import torch

    from confgen.errors import InputError
    from confgen.generate import GenerationStats, generate_conformers, _resolve_device
    from confgen.io import AtomicSDFWriter, read_inputs
    from confgen.sampling import parse_overrides, resolve_preset

    if args.num_confs is not None and args.num_confs < 1:
        raise ConfgenError("-n/--num-confs must be at least 1")
    if args.num_confs_factor is not None and args.num_confs_factor <= 0:
        raise ConfgenError("--num-confs-factor must be positive")
    if args.batch_size < 1:
        raise ConfgenError("--batch-size must be at least 1")
    if args.workers < 0:
        raise ConfgenError("--workers must be 0 (all cores) or more")
    overrides = parse_overrides(args.preset_override)
    resolve_preset(args.preset, overrides)  # fail early on a bad override
    device = _resolve_device(args.device)
    workers = args.workers or (os.cpu_count() or 1)
    if device.type == "cpu":
        torch.set_num_threads(workers)

    errors: list[InputError] = []
    records = read_inputs(args.input, errors=errors)
    for exc in errors:
        print(f"confgen sample: error: {exc}", file=sys.stderr)
    n_failed = len(errors)

    counts, usable = [], []
    for rec in records:
        try:
            counts.append(_num_confs(args, rec))
            usable.append(rec)
        except ValueError as exc:
            print(f"confgen sample: error: {InputError(str(exc), source=rec.source, smiles=rec.smiles)}",
                  file=sys.stderr)
            n_failed += 1

    from confgen.generate import _resolve_model

    model = _resolve_model(args.model, device) if usable else None
    stats = GenerationStats(seed=args.seed)
    seed = args.seed
    if seed is None:
        import secrets

        seed = secrets.randbits(31)
        print(f"confgen sample: random seed {seed} (pass --seed {seed} to reproduce)", file=sys.stderr)

    with AtomicSDFWriter(args.output) as writer:
        for start in range(0, len(usable), MOLECULES_PER_ROUND):
            part = usable[start:start + MOLECULES_PER_ROUND]
            gen_errors: list[InputError] = []
            mols = generate_conformers(
                [r.mol for r in part], counts[start:start + len(part)], model=model, preset=args.preset,
                preset_overrides=overrides, seed=seed, batch_size=args.batch_size, device=device,
                relax=args.relax, progress=not args.no_progress, errors=gen_errors, workers=workers, stats=stats,
                ids=[r.index for r in part], sources=[r.source for r in part])
            for exc in gen_errors:
                print(f"confgen sample: error: {exc}", file=sys.stderr)
            n_failed += len(gen_errors)
            for rec, mol in zip(part, mols):
                if mol is None:
                    continue
                writer.write_conformers(mol, name=rec.name, smiles=rec.smiles, index=rec.index)
        n_written = writer.num_written

    for note in stats.warnings:
        print(f"confgen sample: warning: {note}", file=sys.stderr)
    n_mols = len(usable) - stats.failed_molecules
    print(f"confgen sample: wrote {n_written} conformers of {n_mols} molecules to {args.output} "
          f"({n_failed} input(s) failed; {stats.repairs()})", file=sys.stderr)
    return 1 if n_failed else 0
