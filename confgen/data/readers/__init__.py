"""Streaming readers for the conformer datasets users have.

One entry point, :func:`iter_molecules`, reads any supported source and yields one :class:`MolRecord` per
molecule (all of its conformers as RDKit conformers of one Mol with explicit hydrogens). One module per format:

* :mod:`~confgen.data.readers.geom`: GEOM ``rdkit_folder`` (a directory with ``summary_*.json`` and
  per-molecule pickles, or one summary JSON); molecules are read one pickle at a time, the summary is decoded one
  entry at a time;
* :mod:`~confgen.data.readers.pickles`: torsional-diffusion style pickles ``dict[smiles -> list[Mol]]`` and
  single GEOM per-molecule pickles;
* :mod:`~confgen.data.readers.sdf`: multi-conformer SDF files (``.sdf``, ``.sdf.gz``): consecutive records with
  the same graph form one molecule;
* :mod:`~confgen.data.readers.qm9`: ``"qm9pack"`` (the data shipped in the ``qm9pack`` package) or a CSV with
  ``elements`` / ``xyz_ang`` columns: the DFT geometry is mapped onto the SMILES graph
  (:mod:`~confgen.data.readers.geometry`);
* :mod:`~confgen.data.readers.smiles`: SMILES files (``.smi`` / ``.smiles`` / ``.txt`` / ``.ism``:
  ``SMILES [name]`` per line, ``#`` comments; ``.csv`` with a ``smiles`` column and optional ``name``): molecules
  without conformers;
* :mod:`~confgen.data.readers.shard_dir`: directories of conformer shards (:mod:`confgen.data.shards`).

:mod:`~confgen.data.readers.records` holds what they share (records, conformer merging, filters, error
reporting), :mod:`~confgen.data.readers.sources` the format detection and :func:`iter_molecules`,
:mod:`~confgen.data.readers.exclusion` the exclusion lists.

All pickles go through :mod:`confgen.data.safe_pickle`. Conformers of one molecule are brought to the atom order
of the first (highest-weight) conformer; a conformer whose graph differs from that reference is dropped and
counted in ``stats["dropped_conformers"]``.
"""

import csv

from confgen.data.readers.exclusion import is_excluded, load_exclusion_set
from confgen.data.readers.geom import iter_json_object
from confgen.data.readers.geometry import map_geometry_to_smiles
from confgen.data.readers.pickles import PICKLE_SUFFIXES
from confgen.data.readers.qm9 import QM9PACK, qm9pack_files
from confgen.data.readers.records import MolRecord, merge_conformers
from confgen.data.readers.sdf import SDF_SUFFIXES
from confgen.data.readers.shard_dir import SHARD_ENERGY_WINDOW
from confgen.data.readers.smiles import SMILES_SUFFIXES
from confgen.data.readers.sources import detect_format, iter_molecules

csv.field_size_limit(1 << 30)  # QM9 geometry columns and GEOM SMILES lists exceed csv's default field limit

__all__ = [
    "MolRecord",
    "iter_molecules",
    "detect_format",
    "merge_conformers",
    "iter_json_object",
    "map_geometry_to_smiles",
    "qm9pack_files",
    "load_exclusion_set",
    "is_excluded",
    "QM9PACK",
    "SHARD_ENERGY_WINDOW",
    "SDF_SUFFIXES",
    "PICKLE_SUFFIXES",
    "SMILES_SUFFIXES",
]
