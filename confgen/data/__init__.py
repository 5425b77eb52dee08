"""Molecules as PyTorch Geometric graphs (featuriser, extended/radius edges), datasets and dataset readers.

The names below are imported on first use, each from its module: ``import confgen.data.readers`` (and
:mod:`confgen.evaluation`, :mod:`confgen.io`) do not import torch or PyTorch Geometric.
"""

from __future__ import annotations

from confgen.lazy import lazy_exports

#: public name -> the module that defines it
_PUBLIC = {
    "ATOM_FEATURE_DIM": "confgen.data.features",
    "EDGE_FEATURE_DIM": "confgen.data.features",
    "ELEMENTS": "confgen.data.features",
    "featurize_mol": "confgen.data.features",
    "radius_graph": "confgen.data.graph",
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
