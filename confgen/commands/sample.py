"""`confgen sample` (not implemented yet)."""

from confgen.errors import ConfgenError


def add_arguments(parser):
    pass


def run(args):
    raise ConfgenError("'sample' is not implemented yet")
