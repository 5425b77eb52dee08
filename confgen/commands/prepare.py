"""`confgen prepare` (not implemented yet)."""

from confgen.errors import ConfgenError


def add_arguments(parser):
    pass


def run(args):
    raise ConfgenError("'prepare' is not implemented yet")
