"""The default model shipped inside the package: loads from importlib.resources, records what it was trained
on (evaluation sets excluded), and gives chemically sensible conformers out of the box."""

import numpy as np
import pytest
from rdkit import Chem

import confgen
from confgen.checkpoint import default_checkpoint_path, read_checkpoint
from confgen.models.score_net import ScoreModel
from confgen.stereo import check_stereo, stereo_spec

pytestmark = pytest.mark.skipif(default_checkpoint_path() is None, reason="no default model in this build")


def test_default_checkpoint_is_small_and_records_provenance():
    path = default_checkpoint_path()
    assert path.stat().st_size < 20e6
    ckpt = read_checkpoint(path)
    assert ckpt["version"] and ckpt["config"]["model"]["backbone"] in ("egnn", "clofnet")
    trained_on = ckpt["trained_on"]
    excluded = " ".join(f["path"] for f in trained_on["exclusion_files"])
    for split in ("geom_qm9/test_smiles.csv", "geom_drugs/test_smiles.csv", "geom_drugs_tora3d7"):
        assert split in excluded, split
    assert all(len(f["sha256"]) == 64 for f in trained_on["exclusion_files"])
    assert "val_loss" in ckpt["metrics"]


def test_load_model_default_is_a_small_score_model():
    model = confgen.load_model()
    assert isinstance(model, ScoreModel)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000


def test_default_model_gives_sensible_stereo_correct_conformers():
    smiles = "CC(=O)N[C@@H](Cc1ccc(O)cc1)C(=O)O"  # N-acetyl-L-tyrosine: not in the evaluation sets
    mol = confgen.generate(smiles, 4, seed=3)
    assert mol.GetNumConformers() == 4
    assert check_stereo(stereo_spec(mol), np.stack([c.GetPositions() for c in mol.GetConformers()])).ok.all()
    heavy_bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()
                   if b.GetBeginAtom().GetAtomicNum() > 1 and b.GetEndAtom().GetAtomicNum() > 1]
    for conf in mol.GetConformers():
        pos = conf.GetPositions()
        lengths = np.array([np.linalg.norm(pos[i] - pos[j]) for i, j in heavy_bonds])
        assert lengths.min() > 1.1 and lengths.max() < 1.7, lengths  # C-C/C-N/C-O bonds: 1.2-1.55 A
    assert Chem.MolToSmiles(Chem.RemoveHs(mol)) == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
