"""The SDF properties confgen writes: the one place that names them (:data:`PROP_SMILES` etc.)."""

from __future__ import annotations


#: the input SMILES exactly as given (for SDF inputs: the record's canonical isomeric SMILES)
PROP_SMILES = "confgen_smiles"
#: index of the input record (0-based, counting every molecule record of the input, failed ones included)
PROP_INDEX = "confgen_index"
#: conformer number within its molecule (0-based)
PROP_CONF_ID = "confgen_conf_id"
#: MMFF94 energy after ``--relax mmff``, in kcal/mol (the unit is part of the name)
PROP_MMFF_ENERGY = "confgen_mmff_energy_kcal_mol"
#: 1 if the conformer passes PoseBusters' "mol" bond-length, bond-angle and clash limits, 0 if it was written
#: outside them (no retry got inside; see :mod:`confgen.validity`)
PROP_WITHIN_BOUNDS = "confgen_posebusters_bounds_ok"
#: fragments removed from a multi-fragment input (salt counter-ions, solvent), as dot-separated SMILES
PROP_REMOVED_FRAGMENTS = "confgen_removed_fragments"
#: how unspecified stereo was handled: "specified" (nothing unspecified), "one", "enumerate" (see module doc)
PROP_STEREO_POLICY = "confgen_stereo_policy"
#: canonical isomeric SMILES of the molecule generated (its stereo as written)
PROP_ISOMERIC_SMILES = "confgen_isomeric_smiles"
#: "k/n": stereoisomer k of the n enumerated for this input (``--stereo enumerate``)
PROP_STEREOISOMER = "confgen_stereoisomer"
#: per-conformer properties (set on the RDKit Conformer) that the writer copies to each SDF record
CONFORMER_PROPS = (PROP_MMFF_ENERGY, PROP_WITHIN_BOUNDS)
