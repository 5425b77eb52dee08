"""`confgen train` (not implemented yet)."""

from confgen.errors import ConfgenError


def add_arguments(parser):
    pass


def run(args):
    raise ConfgenError("'train' is not implemented yet")
