"""Molecular graphs (featuriser, extended/radius edges, batching) and dataset readers."""

from confgen.data.features import (
    ATOM_FEATURE_DIM,
    EDGE_FEATURE_DIM,
    ELEMENTS,
    MolGraph,
    featurize_mol,
)
from confgen.data.graph import GraphBatch, collate, radius_graph

__all__ = [
    "ATOM_FEATURE_DIM",
    "EDGE_FEATURE_DIM",
    "ELEMENTS",
    "MolGraph",
    "featurize_mol",
    "GraphBatch",
    "collate",
    "radius_graph",
]
