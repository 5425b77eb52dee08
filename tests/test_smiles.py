"""confgen.chem.smiles: canonical SMILES, parsing, heavy-atom counts."""

import pytest
from rdkit import Chem

from confgen.chem.smiles import canonical_smiles, heavy_atom_count, parse_smiles, safe_smiles, try_canonical_smiles
from confgen.errors import InputError


def test_canonical_smiles():
    assert canonical_smiles("C[C@H](N)O", stereo=False) == "CC(N)O"
    assert canonical_smiles("C[C@H](N)O", stereo=True) == canonical_smiles("O[C@@H](N)C", stereo=True)
    assert canonical_smiles(Chem.AddHs(Chem.MolFromSmiles("OCC")), stereo=False) == "CCO"
    with pytest.raises(InputError, match="invalid SMILES"):
        canonical_smiles("C1CC", stereo=False)


def test_parse_and_try_canonical():
    assert parse_smiles("C1CC") is None
    assert try_canonical_smiles("C1CC", stereo=True) is None
    assert try_canonical_smiles("OC[C@H](C)N", stereo=False) == canonical_smiles("NC(C)CO", stereo=False)
    assert heavy_atom_count(Chem.AddHs(Chem.MolFromSmiles("CCO"))) == 3
    assert safe_smiles(Chem.AddHs(Chem.MolFromSmiles("CCO"))) == "CCO"
