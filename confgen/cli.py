"""``confgen`` command line: one subcommand per job; the logic lives in the library.

Each subcommand is a module ``confgen.commands.<name>`` with ``add_arguments(parser)`` and ``run(args) -> int``.
Only the module of the command being run is imported (``confgen --help`` imports none, so no torch), and a
command's ``add_arguments`` imports only light modules (:mod:`confgen.options`): ``--help`` starts fast.
User errors (:class:`confgen.errors.ConfgenError`) are printed as one line without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from confgen import __version__
from confgen.errors import ConfgenError

COMMANDS = {
    "sample": "generate 3D conformers for SMILES / CSV / SDF input and write them as SDF",
    "train": "train a score network from a YAML config",
    "evaluate": "COV/MAT of generated conformers against reference ensembles",
    "prepare": "build a cached training dataset from GEOM / pickles / SDF / QM9 / SMILES",
    "benchmark": "run confgen and RDKit baselines on the same references and compare them",
}


def build_parser(commands=None) -> argparse.ArgumentParser:
    """The ``confgen`` parser; the options of only ``commands`` (names; default: all) are added."""
    parser = argparse.ArgumentParser(prog="confgen", description="Score-based 3D conformer generation.")
    parser.add_argument("--version", action="version", version=f"confgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if commands is None or name in commands:
            module = importlib.import_module(f"confgen.commands.{name}")
            module.add_arguments(p)
            p.set_defaults(command_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(commands=[a for a in argv[:1] if a in COMMANDS])
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.command_module.run(args) or 0)
    except ConfgenError as exc:
        print(f"confgen {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"confgen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
