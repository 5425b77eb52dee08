"""Molecules as PyTorch Geometric graphs (featuriser, extended/radius edges), datasets and dataset readers."""

from confgen.data.features import (
    ATOM_FEATURE_DIM,
    EDGE_FEATURE_DIM,
    ELEMENTS,
    featurize_mol,
)
from confgen.data.graph import radius_graph

__all__ = [
    "ATOM_FEATURE_DIM",
    "EDGE_FEATURE_DIM",
    "ELEMENTS",
    "featurize_mol",
    "radius_graph",
]
