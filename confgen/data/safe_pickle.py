"""A restricted unpickler for conformer pickles (GEOM ``rdkit_folder``, torsional-diffusion ``dict[smiles->list[Mol]]``).

Pickle can execute arbitrary code: any global named in the stream is imported and may be called. The
:class:`RestrictedUnpickler` admits only

* RDKit molecules (``rdkit.Chem.rdchem.Mol`` and its subclasses ``RWMol`` / ``EditableMol``-free variants),
  which RDKit rebuilds from its own binary format;
* plain Python containers and scalars (dict, list, tuple, str, bytes, int, float, bool, None are pickle
  opcodes and need no import; ``set``, ``frozenset``, ``complex``, ``bytearray``, ``collections.OrderedDict``
  are admitted by name);
* numpy scalars and numeric arrays (``numpy`` dtype reconstruction), which some GEOM-derived pickles carry as
  energies or weights. Object arrays unpickle their items through this same unpickler.

Any other global is refused *before* it is imported or called, so nothing from a hostile pickle is executed;
the refusal is a :class:`confgen.errors.ConfgenError` naming the file and the offending global.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

from confgen.errors import ConfgenError

_ALLOWED: dict[str, frozenset[str]] = {
    "rdkit.Chem.rdchem": frozenset({"Mol", "RWMol"}),
    "builtins": frozenset({"set", "frozenset", "complex", "bytearray"}),
    "__builtin__": frozenset({"set", "frozenset", "complex", "bytearray"}),
    "collections": frozenset({"OrderedDict"}),
    "numpy": frozenset({"dtype", "ndarray"}),
    "numpy.core.multiarray": frozenset({"scalar", "_reconstruct"}),
    "numpy._core.multiarray": frozenset({"scalar", "_reconstruct"}),
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only RDKit Mols, plain containers and numpy numbers."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - see class docstring
        if name in _ALLOWED.get(module, ()):
            return super().find_class(module, name)
        raise UnsafePickleError(f"refused to load {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        raise UnsafePickleError("refused persistent id")


def loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    Args:
        data: the pickle bytes.
        source: name used in error messages (usually the file path).

    Raises:
        ConfgenError: the pickle names a forbidden global, is corrupted or truncated.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        raise ConfgenError(f"{source}: unsafe pickle, {exc} (only RDKit molecules and plain containers are "
                           "accepted; nothing from it was executed)") from None
    except MemoryError:
        raise ConfgenError(f"{source}: corrupted pickle (out of memory while reading it)") from None
    except Exception as exc:  # noqa: BLE001 - corrupted data raises many exception types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ConfgenError(f"{source}: corrupted or unreadable pickle ({detail[:200]})") from None


def load(path: str | os.PathLike) -> Any:
    """Read and unpickle the file at ``path`` with :class:`RestrictedUnpickler`.

    Raises:
        ConfgenError: unreadable file, forbidden global, corrupted pickle; the message names ``path``.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfgenError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ConfgenError(f"{path}: empty file")
    return loads(data, source=str(path))
