"""The default model shipped inside the package: loads from importlib.resources, records what it was trained
on (evaluation sets excluded), and gives chemically sensible conformers out of the box."""

import math

import numpy as np
import pytest
from rdkit import Chem

import confgen
from confgen.checkpoint import default_checkpoint_path, read_checkpoint
from confgen.models.score_net import ScoreModel
from confgen.chem.stereo import check_stereo, stereo_spec

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


def test_molecule_that_etkdg_cannot_embed_is_sampled_from_noise():
    from confgen.generation import GenerationRequest, GenerationStats, generate_conformers

    smiles = "C#C[C@@]1(C)[C@H]2C[C@]1(C)C2"  # GEOM-QM9 test molecule: ETKDGv3 embeds no conformer of it
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    stats = GenerationStats()
    out = generate_conformers(GenerationRequest([mol], [4], seed=3, progress=False, preset="fast"), stats=stats)[0]
    from confgen.config import resolve_preset

    # every initial guess failed: every candidate conformer (oversampled by the preset) went to the noise sampler
    assert stats.from_noise == math.ceil(4 * resolve_preset("fast").oversample)
    assert 2 <= out.GetNumConformers() <= 4, stats.warnings  # the most diverse 4 of the candidates kept
    pos = np.stack([c.GetPositions() for c in out.GetConformers()])
    assert check_stereo(stereo_spec(out), pos).ok.all()
    for b in out.GetBonds():
        d = np.linalg.norm(pos[:, b.GetBeginAtomIdx()] - pos[:, b.GetEndAtomIdx()], axis=-1)
        assert ((d > 0.9) & (d < 1.75)).all(), (b.GetIdx(), d)
    # without the fallback those conformers are dropped and the molecule fails, clearly
    stats, errors = GenerationStats(), []
    preset = resolve_preset("fast", {"noise_fallback_levels": 0, "oversample": 1.0})
    out = generate_conformers(GenerationRequest([mol], [2], seed=3, progress=False, preset=preset), stats=stats,
                              errors=errors)
    assert (out[0] is None or out[0].GetNumConformers() == 0) and stats.dropped == 2 and stats.from_noise == 0
    assert len(errors) == 1


def test_mmff_relax_that_inverts_a_centre_writes_the_unrelaxed_conformer():
    from rdkit.Chem import AllChem

    from confgen.generation import GenerationStats
    from confgen.io import PROP_MMFF_ENERGY

    smiles = "C[C@@]1(CO)O[C@H]2C[C@]21O"  # GEOM-QM9 test molecule: MMFF94 pushes a bridgehead through
    stats = GenerationStats()
    mol = confgen.generate(smiles, 4, seed=1, relax="mmff", stats=stats)
    assert mol.GetNumConformers() == 4 and stats.dropped == 0
    assert stats.relax_reverted > 0, stats  # the case this test is about still happens
    assert "written unrelaxed" in stats.repairs()
    typed = Chem.Mol(mol)  # the force field keeps a pointer to this Mol: it must outlive ff
    props = AllChem.MMFFGetMoleculeProperties(typed)
    for conf in mol.GetConformers():
        # RDKit's own perception agrees: every written conformer has the input's stereo
        one = Chem.Mol(mol, confId=conf.GetId())
        Chem.AssignStereochemistryFrom3D(one)
        assert Chem.MolToSmiles(Chem.RemoveHs(one)) == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
        # the stored energy is MMFF94's energy of the written coordinates
        ff = AllChem.MMFFGetMoleculeForceField(typed, props, confId=conf.GetId())
        assert ff.CalcEnergy() == pytest.approx(conf.GetDoubleProp(PROP_MMFF_ENERGY), abs=1e-3)


def _assert_excludes(trained_on: dict, *names: str) -> None:
    """Every one of ``names`` is part of an exclusion file the checkpoint records."""
    excluded = " ".join(f["path"] for f in trained_on["exclusion_files"])
    for name in names:
        assert name in excluded, name


def test_edm_presets_use_the_shipped_edm_model_which_records_its_chain():
    from pathlib import Path

    from confgen.checkpoint import model_for_preset, shipped_checkpoint_path
    from confgen.config import resolve_preset
    from confgen.errors import ConfgenError
    from confgen.generation import GenerationRequest

    path = shipped_checkpoint_path("edm")
    assert path is not None and path.stat().st_size < 20e6
    # the package stays under 20 MB with every checkpoint it ships
    assert sum(p.stat().st_size for p in path.parent.glob("*.pt")) < 20e6
    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    assert Path(GenerationRequest([mol], [2], preset="edm").model) == path
    assert Path(GenerationRequest([mol], [2], preset="edm-select").model) == path
    assert GenerationRequest([mol], [2], preset="fast").model is None  # the default model
    assert GenerationRequest([mol], [2], preset="edm", model="mine.pt").model == "mine.pt"  # explicit wins
    with pytest.raises(ConfgenError, match="nothere.pt"):
        model_for_preset(None, resolve_preset("edm", {"model": "nothere"}))
    model = confgen.load_model(str(path))
    assert model.precond == "edm"
    chain = read_checkpoint(path)["trained_on"]
    _assert_excludes(chain, "geom_qm9/test_smiles.csv", "geom_drugs/test_smiles.csv", "geom_drugs_tora3d7")
    assert chain["init_from"]["path"].endswith("best.pt")  # fine-tuned from s1, itself from the issue-6 model
    assert chain["init_from"]["trained_on"]["init_from"]["path"].endswith("default.pt")


def test_refine_preset_uses_the_shipped_refiner_which_records_its_chain():
    """``refine`` (and ``auto`` without relaxation) uses confgen/checkpoints/refine.pt: the EDM model fine-tuned at
    small noise levels on GFN2-xTB + QM9 data, with every evaluation set and the held-out xTB references excluded."""
    from pathlib import Path

    from confgen.checkpoint import shipped_checkpoint_path
    from confgen.generation import GenerationRequest

    path = shipped_checkpoint_path("refine")
    assert path is not None and path != shipped_checkpoint_path("edm")
    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    assert Path(GenerationRequest([mol], [2], preset="refine").model) == path
    ckpt = read_checkpoint(path)
    assert ckpt["config"]["model"]["precond"] == "edm"
    assert ckpt["config"]["noise"]["p_mean"] < -1.5  # trained where refine queries it (0.01-0.2 A)
    chain = ckpt["trained_on"]
    _assert_excludes(chain, "geom_qm9/test_smiles.csv", "geom_drugs/test_smiles.csv", "geom_drugs_tora3d7",
                     "xtb_refs40.sdf")
    sources = {Path(src["path"]).name: src for src in chain["sources"]}
    assert set(sources) == {"qm9pack", "geom_drugs_xtb"} and sources["geom_drugs_xtb"]["n_excluded"] == 40
    assert chain["init_from"]["path"].endswith("edm_finetune_s2.pt")  # from the shipped EDM model's checkpoint
    assert chain["init_from"]["trained_on"]["init_from"]["path"].endswith("best.pt")


def test_edm_preset_gives_stereo_correct_conformers_from_noise():
    from confgen.generation import GenerationStats

    smiles = "CC(=O)N[C@@H](Cc1ccc(O)cc1)C(=O)O"  # N-acetyl-L-tyrosine: not in the evaluation sets
    stats = GenerationStats()
    mol = confgen.generate(smiles, 4, seed=3, preset="edm", stats=stats)
    assert mol.GetNumConformers() == 4 and stats.network_evals >= 4 * 11
    pos = np.stack([c.GetPositions() for c in mol.GetConformers()])
    assert check_stereo(stereo_spec(mol), pos).ok.all()
    for b in mol.GetBonds():  # MMFF94-relaxed: every bond near its length
        d = np.linalg.norm(pos[:, b.GetBeginAtomIdx()] - pos[:, b.GetEndAtomIdx()], axis=-1)
        assert ((d > 0.9) & (d < 1.6)).all(), (b.GetIdx(), d)


def test_edm_preset_turns_cis_amides_trans():
    from confgen.chem.amides import TRANS_MIN_DEG, amide_rotors, dihedrals
    from confgen.config import resolve_preset
    from confgen.generation import GenerationStats

    smiles = "CC(=O)Nc1ccc(C(=O)NC2CCCCC2)cc1"  # two secondary amides; not in the evaluation sets
    runs = {}
    for turn in (False, True):
        stats = GenerationStats()
        preset = resolve_preset("edm", {"trans_amides": turn})
        mol = confgen.generate(smiles, 8, seed=5, preset=preset, relax="none", stats=stats)
        pos = np.stack([c.GetPositions() for c in mol.GetConformers()])
        runs[turn] = (np.rad2deg(np.abs(dihedrals(pos, amide_rotors(mol).quads))), stats)
    phi_off, stats_off = runs[False]
    phi_on, stats_on = runs[True]
    assert stats_off.amides_turned == 0
    assert (phi_on >= TRANS_MIN_DEG).all()  # every amide written trans
    assert (phi_off < TRANS_MIN_DEG).any() and stats_on.amides_turned > 0  # the sampler alone leaves some cis
    assert "amides turned trans" in stats_on.repairs()


def test_auto_preset_samples_each_molecule_with_its_choice_and_model():
    """``auto``: the small molecule gets ``fast`` (ETKDG-seeded, default model), the drug-size one ``edm`` (from
    noise, EDM model); both exactly as in a run of that preset alone (same seed and molecule ids)."""
    from confgen.generation import GenerationRequest, GenerationStats, generate_conformers
    from confgen.io import mol_from_smiles

    mols = [mol_from_smiles(s, source="t") for s in ("CC(=O)Nc1ccc(C(=O)NC2CCCCC2)cc1", "OC1CCOC1")]
    stats = GenerationStats()
    out = generate_conformers(GenerationRequest(mols, [3, 4], preset="auto", seed=11, progress=False),
                              stats=stats)
    assert [m.GetNumConformers() for m in out] == [3, 4] and stats.seed == 11
    alone = {}
    for i, name in ((0, "edm"), (1, "fast")):
        st = GenerationStats()
        (alone[i],) = generate_conformers(GenerationRequest([mols[i]], [3, 4][i], preset=name, seed=11, ids=[i],
                                                            progress=False), stats=st)
        alone[(i, "evals")] = st.network_evals
        np.testing.assert_allclose(np.stack([c.GetPositions() for c in out[i].GetConformers()]),
                                   np.stack([c.GetPositions() for c in alone[i].GetConformers()]), atol=1e-4)
    assert stats.network_evals == alone[(0, "evals")] + alone[(1, "evals")]
    assert alone[(0, "evals")] >= 3 * 11 and alone[(1, "evals")] < 4 * 11  # edm: 11 calls, fast: 5


def test_auto_without_relaxation_uses_refine_whose_conformers_are_better_than_its_etkdg_guesses():
    """``--relax none`` under ``auto``: every molecule gets ``refine`` (exactly as in a run of it alone); its
    conformers keep the stereo, take at most 50 network calls each, and are lower in MMFF94 energy (an
    independent check of their local geometry) than the ETKDG guesses they start from (the network-off run)."""
    from confgen.chem.forcefield import mmff_energies
    from confgen.generation import GenerationRequest, GenerationStats, generate_conformers
    from confgen.io import mol_from_smiles

    mols = [mol_from_smiles(s, source="t") for s in ("CC(=O)N[C@@H](Cc1ccc(O)cc1)C(=O)O", "OC1CCOC1")]
    stats = GenerationStats()
    out = generate_conformers(GenerationRequest(mols, [6, 2], preset="auto", relax="none", seed=7, progress=False),
                              stats=stats)
    alone = generate_conformers(GenerationRequest(mols, [6, 2], preset="refine", relax="none", seed=7,
                                                  progress=False))
    for a, b in zip(out, alone):
        np.testing.assert_allclose(np.stack([c.GetPositions() for c in a.GetConformers()]),
                                   np.stack([c.GetPositions() for c in b.GetConformers()]), atol=1e-4)
    assert 8 * 47 <= stats.network_evals <= 8 * 50
    (guesses,) = generate_conformers(GenerationRequest(mols[:1], [6], preset="auto", relax="none", seed=7,
                                                       network=False, progress=False))
    pos = np.stack([c.GetPositions() for c in out[0].GetConformers()])
    assert check_stereo(stereo_spec(out[0]), pos).ok.all()
    assert mmff_energies(Chem.Mol(out[0])).mean() < mmff_energies(Chem.Mol(guesses)).mean() - 5.0
