"""SMILES: parsing without RDKit's log noise, canonical (stereo / stereo-free) SMILES, heavy-atom counts.

Canonical SMILES are the keys by which confgen matches molecules between files (evaluation, exclusion lists,
dataset splits): always without explicit hydrogens; ``stereo=False`` also drops stereo and isotopes.
"""

from __future__ import annotations

from rdkit import Chem

from confgen.errors import InputError
from confgen.rdlog import quiet_rdkit

__all__ = ["parse_smiles", "canonical_smiles", "try_canonical_smiles", "heavy_atom_count", "safe_smiles"]


def parse_smiles(smiles: str) -> Chem.Mol | None:
    """RDKit's ``MolFromSmiles`` without its log messages; ``None`` when the SMILES cannot be parsed."""
    with quiet_rdkit():
        return Chem.MolFromSmiles(smiles)


def canonical_smiles(mol_or_smiles: Chem.Mol | str, stereo: bool) -> str:
    """Canonical SMILES without explicit hydrogens; ``stereo=False`` drops stereo (and isotopes).

    Used for exclusion lists and for matching molecules between files by graph.

    Args:
        mol_or_smiles: an RDKit Mol (stereo as set on the Mol) or a SMILES string.
        stereo: keep stereochemistry (isomeric SMILES) or not.

    Raises:
        InputError: the SMILES cannot be parsed.
    """
    if isinstance(mol_or_smiles, str):
        mol = parse_smiles(mol_or_smiles)
        if mol is None:
            raise InputError("invalid SMILES", smiles=mol_or_smiles)
    else:
        mol = mol_or_smiles
    params = Chem.RemoveHsParameters()
    if not stereo:
        params.removeDefiningBondStereo = True  # an imine's N-H otherwise stays as [H]
    try:
        mol = Chem.RemoveHs(mol, params)
    except Exception:  # noqa: BLE001 - odd valences: drop H without sanitising
        mol = Chem.RemoveHs(mol, params, sanitize=False)
    return Chem.MolToSmiles(mol, isomericSmiles=stereo)


def try_canonical_smiles(smiles: str, stereo: bool) -> str | None:
    """:func:`canonical_smiles` of a SMILES string, or ``None`` where it cannot be parsed."""
    mol = parse_smiles(smiles)
    return None if mol is None else canonical_smiles(mol, stereo=stereo)


def heavy_atom_count(mol: Chem.Mol) -> int:
    """Atoms other than hydrogen (explicit ones)."""
    return sum(1 for a in mol.GetAtoms() if a.GetAtomicNum() > 1)


def safe_smiles(mol: Chem.Mol, *, remove_hs: bool = True, default: str | None = None) -> str | None:
    """A SMILES naming ``mol`` in a message, or ``default`` where RDKit cannot write one (never raises).

    Args:
        remove_hs: remove explicit hydrogens first (as in the input files), else write the Mol as it is.
    """
    try:
        return Chem.MolToSmiles(Chem.RemoveHs(mol) if remove_hs else mol)
    except Exception:  # noqa: BLE001 - only used to name a molecule in an error message
        return default
