"""``confgen train CONFIG.yaml [--out DIR] [--resume] [--set key=value ...] [--device cpu|cuda]``.

Runs the same way under ``torchrun --nproc_per_node=N -m confgen train ...`` (DDP).
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("config", help="YAML config (sections data, model, noise, train; see configs/)")
    parser.add_argument("--out", default=None,
                        help="output directory for best.pt, last.pt, log.csv (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue exactly from OUT/last.pt")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=1e-3 (repeatable)")
    parser.add_argument("--device", default=None,
                        help="training device: cpu, cuda, cuda:1, or auto (default: auto = cuda if available, else "
                             "cpu); under torchrun, cuda means each process's local GPU")
    parser.add_argument("--stop-after", type=int, default=None, metavar="STEPS",
                        help="stop after this many steps in this run and write last.pt (resume later)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads per process (default: torch's; 1 is fastest for small models on a "
                             "busy machine)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import os
    import sys
    from pathlib import Path

    from confgen.config import load_config
    from confgen.training import dist_from_env, train

    from confgen.errors import ConfgenError

    config = load_config(args.config, overrides=args.overrides)
    if args.threads is not None:
        if args.threads < 1:
            raise ConfgenError("--threads must be at least 1")
        import torch

        torch.set_num_threads(args.threads)
    out = args.out or os.path.join("runs", Path(args.config).stem)
    result = train(config, out, resume=args.resume, device=args.device, progress=not args.no_progress,
                   stop_after=args.stop_after)
    if dist_from_env().is_main:
        state = "finished" if result["finished"] else "stopped"
        print(f"{state} at step {result['step']}/{result['total_steps']}: train loss {result['train_loss']:.4f}, "
              f"val loss {result['val_loss']:.4f}, best {result['best_val_loss']:.4f}; checkpoints in {out}",
              file=sys.stderr)
    return 0
