"""Inputs and outputs of ``confgen sample``: :mod:`confgen.io.inputs` reads .smi/.csv/.sdf molecules (fragment
and stereo policy included), :mod:`confgen.io.sdf` writes conformers as SDF records, whose property names are
in :mod:`confgen.io.properties`. The names below are the package's public interface."""

from confgen.io.inputs import (
    COUNT_COLUMNS,
    InputRecord,
    count_inputs,
    input_format,
    iter_inputs,
    mol_from_smiles,
    prepare_mol,
    read_inputs,
    resolve_stereo,
)
from confgen.io.properties import (
    CONFORMER_PROPS,
    PROP_CONF_ID,
    PROP_INDEX,
    PROP_ISOMERIC_SMILES,
    PROP_MMFF_ENERGY,
    PROP_REMOVED_FRAGMENTS,
    PROP_SMILES,
    PROP_STEREO_POLICY,
    PROP_STEREOISOMER,
    PROP_WITHIN_BOUNDS,
)
from confgen.io.sdf import AtomicSDFWriter, conformer_records, read_sdf_conformers

__all__ = [
    "COUNT_COLUMNS", "InputRecord", "count_inputs", "input_format", "iter_inputs", "mol_from_smiles", "prepare_mol",
    "read_inputs", "resolve_stereo", "CONFORMER_PROPS", "PROP_CONF_ID", "PROP_INDEX", "PROP_ISOMERIC_SMILES",
    "PROP_MMFF_ENERGY", "PROP_REMOVED_FRAGMENTS", "PROP_SMILES", "PROP_STEREO_POLICY", "PROP_STEREOISOMER",
    "PROP_WITHIN_BOUNDS", "AtomicSDFWriter", "conformer_records", "read_sdf_conformers",
]
