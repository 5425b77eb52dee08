"""RDKit's C++ log, silenced where confgen reports problems itself (one line per bad input)."""

from __future__ import annotations

from contextlib import contextmanager

from rdkit import rdBase


@contextmanager
def quiet_rdkit():
    """Block RDKit's log messages inside the ``with`` block (restored on exit, also after an exception)."""
    block = rdBase.BlockLogs()
    try:
        yield
    finally:
        del block
