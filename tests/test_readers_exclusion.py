"""confgen.data.readers.exclusion: exclusion sets from every kind of evaluation file."""

import csv

import pytest

from confgen.chem.smiles import canonical_smiles
from confgen.data.readers import is_excluded, iter_molecules, load_exclusion_set

from geom_fixture import build_rdkit_folder

TRAIN10_PKL = "geom_drugs_train10/true_conformers_train_first_10smis.pkl"


def test_exclusion_set(tmp_path, shared_data):
    root = shared_data / "geom_drugs_tora3d7"
    with open(root / "index.csv") as fh:
        rows = list(csv.DictReader(fh))
    sdfs = [root / "molecules" / r["dir"] / r["true_file"] for r in rows]
    excl = load_exclusion_set(sdfs)
    for r in rows:
        assert canonical_smiles(r["smiles"], stereo=False) in excl
    excl_csv = load_exclusion_set([root / "index.csv", shared_data / "splits/geom_drugs/test_smiles.csv"])
    assert canonical_smiles(rows[6]["smiles"], stereo=False) in excl_csv
    # records of the training pickle that are in the GEOM-Drugs test split are flagged
    test_split = load_exclusion_set([shared_data / "splits/geom_drugs/test_smiles.csv"])
    flagged = [r for r in iter_molecules(shared_data / TRAIN10_PKL) if is_excluded(r, test_split)]
    assert len(flagged) == 1  # as documented in ../shared/data/README.md
    rf = build_rdkit_folder(tmp_path / "rf", shared_data, max_mols=2)
    assert len(load_exclusion_set([rf])) >= 2
    with pytest.raises(Exception, match="no such file"):
        load_exclusion_set([tmp_path / "nope.smi"])
