"""`confgen benchmark` (not implemented yet)."""

from confgen.errors import ConfgenError


def add_arguments(parser):
    pass


def run(args):
    raise ConfgenError("'benchmark' is not implemented yet")
