"""Package namespaces whose public names are imported on first use (PEP 562 module ``__getattr__``).

A package that re-exports names from heavy modules (torch, PyTorch Geometric) uses this so that importing one
light submodule of it does not import them all::

    __getattr__, __dir__ = lazy_exports(__name__, {"featurize_mol": "confgen.data.features", ...})
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, public: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package`` that import each name of ``public`` (name -> the
    module defining it) on first use and keep it in the package's namespace."""

    def __getattr__(name: str):
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(public[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
