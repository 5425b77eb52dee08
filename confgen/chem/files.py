"""Atomic file writing: the one implementation every writer of confgen uses.

A file is written to a temporary file beside its destination (``.NAME.XXXX.tmp`` in the same directory, so the
final rename stays on one file system) and renamed over the destination only when the writing succeeded: a
reader never sees a truncated file, and an interrupted or failed run leaves the old file (or none) and no
temporary file behind. The finished file gets the usual permissions (0666 less the umask; ``mkstemp`` makes it
0600) unless a mode is given.

* :func:`atomic_write`: a callback ``write(fh)``, or the text / bytes to write;
* :func:`write_json`: JSON (indent 1, trailing newline), optionally with NaN / inf written as ``null``;
* :class:`AtomicFile`: the same as an object, for writers that stream and decide at the end whether to publish
  (e.g. ``confgen.io``'s SDF writer keeps no empty output);
* :func:`install_directory`: put a finished temporary directory in place of another (datasets).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from confgen.errors import ConfgenError

__all__ = ["AtomicFile", "atomic_write", "write_json", "json_clean", "install_directory"]


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class AtomicFile:
    """A temporary file beside ``path`` that replaces ``path`` on :meth:`commit` and vanishes on :meth:`discard`.

    As a context manager it commits when the block ends normally and discards on an exception.

    Args:
        path: destination.
        binary: open the temporary file in binary mode (else text).
        mode: permissions of the finished file (default: 0666 less the umask).
        make_dirs: create missing parent directories (else a missing directory raises ``ConfgenError``).

    Attributes:
        fh: the open temporary file.
    """

    def __init__(self, path: str | os.PathLike, *, binary: bool = False, mode: int | None = None,
                 make_dirs: bool = True):
        self.path = Path(path)
        directory = self.path.parent if str(self.path.parent) else Path(".")
        if make_dirs:
            directory.mkdir(parents=True, exist_ok=True)
        elif not directory.is_dir():
            raise ConfgenError(f"output directory {directory} does not exist")
        self.mode = mode
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        self.fh = os.fdopen(fd, "wb" if binary else "w")

    def commit(self) -> None:
        """Close the temporary file and rename it over the destination."""
        try:
            self.fh.close()
            os.chmod(self.tmp, _default_mode() if self.mode is None else self.mode)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and delete the temporary file; the destination is left as it was."""
        try:
            self.fh.close()
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def atomic_write(path: str | os.PathLike, data: Callable | str | bytes, *, binary: bool = False,
                 mode: int | None = None) -> None:
    """Write a file atomically; missing parent directories are created.

    Args:
        path: destination.
        data: ``write(fh)`` filling the open temporary file, or the ``str`` / ``bytes`` to write.
        binary: open the file in binary mode (implied by ``bytes`` data).
        mode: permissions of the finished file (default: 0666 less the umask).

    An exception inside ``write`` leaves ``path`` untouched and no temporary file behind.
    """
    binary = binary or isinstance(data, (bytes, bytearray))
    with AtomicFile(path, binary=binary, mode=mode) as out:
        if callable(data):
            data(out.fh)
        else:
            out.fh.write(data)


def json_clean(obj):
    """``obj`` with numpy scalars as Python numbers, tuples as lists, keys as strings and NaN / inf as ``None``."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path: str | os.PathLike, obj, *, finite: bool = False) -> None:
    """Write ``obj`` as JSON (indent 1, trailing newline) atomically.

    Args:
        finite: write NaN / inf as ``null`` and numpy scalars as numbers (:func:`json_clean`).
    """
    text = json.dumps(json_clean(obj) if finite else obj, indent=1)
    atomic_write(path, text + "\n")


def install_directory(tmp: str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool) -> None:
    """Move the finished directory ``tmp`` to ``out_dir`` (same file system), replacing it if ``overwrite``.

    The old directory is first renamed aside, so ``out_dir`` is at every moment either the old or the new one.

    Raises:
        ConfgenError: ``out_dir`` exists and ``overwrite`` is false.
    """
    tmp, out_dir = Path(tmp), Path(out_dir)
    if out_dir.exists():
        if not overwrite:  # appeared while we were working
            raise ConfgenError(f"output {out_dir} already exists (use --overwrite to replace it)")
        old = Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.old-", dir=out_dir.parent))
        os.rmdir(old)
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.replace(tmp, out_dir)
