"""The datasets committed under data/ (built by scripts/build_dataset.py) hold no evaluation molecule.

The build excludes evaluation molecules as it goes; this checks the result as it is committed, shard by shard,
against every evaluation set of ../shared/data (both GEOM test splits with their corrected SMILES, the 17 GEOM
reference molecules, the QM9 test geometries and the GEOM sample files), by stereo-free canonical SMILES of the
molecule whose conformers are stored (the shard's mapped SMILES), and of the SMILES as the source wrote it.
"""

from pathlib import Path

import numpy as np
import pytest

from confgen.chem.smiles import canonical_smiles
from confgen.data.readers import load_exclusion_set
from confgen.data.shards import mol_from_mapped_smiles, shard_paths
from confgen.rdlog import quiet_rdkit

DATA = Path(__file__).resolve().parents[1] / "data"
DATASETS = ("geom_drugs_xtb", "geom_drugs_mmff")


def _evaluation_files(shared: Path) -> list[Path]:
    files = sorted((shared / "splits").glob("*/test_*.csv"))
    files += [shared / "geom_drugs_tora3d7" / "index.csv",
              shared / "geom_drugs_train10" / "true_conformers_train_first_10smis.sdf",
              shared / "qm9" / "geom_qm9_test_matched_qm9_dft_geometry.csv"]
    files += sorted((shared / "geom_samples").glob("*.mol"))
    return files


@pytest.fixture(scope="module")
def evaluation_keys(shared_data) -> set[str]:
    files = _evaluation_files(shared_data)
    assert len(files) == 8 and all(f.exists() for f in files), files
    with quiet_rdkit():
        return load_exclusion_set(files)


@pytest.mark.parametrize("name", DATASETS)
def test_committed_dataset_holds_no_evaluation_molecule(name, evaluation_keys):
    paths = shard_paths(DATA / name)
    if not paths:
        pytest.skip(f"data/{name} has no shards")
    n_mols, hits = 0, []
    with quiet_rdkit():
        for path in paths:
            with np.load(path, allow_pickle=False) as z:
                for src, mapped in zip(z["smiles"].tolist(), z["mapped_smiles"].tolist()):
                    n_mols += 1
                    keys = {canonical_smiles(src, stereo=False),
                            canonical_smiles(mol_from_mapped_smiles(mapped), stereo=False)}
                    if keys & evaluation_keys:
                        hits.append((path.name, src))
    assert n_mols > 0
    assert not hits, f"{len(hits)} evaluation molecules in data/{name}: {hits[:5]}"


def test_evaluation_keys_catch_a_test_split_molecule_written_another_way(evaluation_keys):
    # the check above compares stereo-free canonical SMILES: a GEOM-Drugs test molecule written with its stereo
    # removed and its atoms in another order must still be caught
    from rdkit import Chem

    smiles = "C#CCNC(=O)C1=C[C@@H](c2ccc(Br)cc2)C[C@@H](OCc2ccc(CO)cc2)O1"  # first line of the drugs test split
    mol = Chem.MolFromSmiles(smiles)
    for atom in mol.GetAtoms():
        atom.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
    shuffled = Chem.RenumberAtoms(mol, list(range(mol.GetNumAtoms()))[::-1])
    written = Chem.MolToSmiles(shuffled, canonical=False)
    assert written != smiles
    assert canonical_smiles(written, stereo=False) in evaluation_keys
