"""confgen.generation: a GenerationRequest through its stages -- stereo repair and resampling, blow-up retries,
seeds, MMFF relax, the Python API."""

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

import confgen
from confgen.errors import ConfgenError, InputError
from confgen.config import resolve_preset
from confgen.generation import GenerationRequest, GenerationStats, generate, generate_conformers
from confgen.io import PROP_MMFF_ENERGY, PROP_WITHIN_BOUNDS, mol_from_smiles
from confgen.chem.stereo import check_stereo, mirror, stereo_spec

from sample_models import TINY_PRESET, TargetScore, tiny_checkpoint

CHIRAL = "CC/C=C\\C[C@@H](O)/C=C/[C@H](C)Cl"  # two centres, two specified double bonds
STUB_PRESET = resolve_preset("fast", {"method": "pc", "init": "etkdg", "sigma_max": 0.5, "num_levels": 6,
                                     "steps_per_level": 1, "max_retries": 2, "oversample": 1.0})


@pytest.fixture(scope="module")
def tiny_model():
    from confgen.checkpoint import load_model

    return load_model(tiny_checkpoint())


pytestmark = pytest.mark.usefixtures("one_thread")


def _positions(mol):
    return np.stack([c.GetPositions() for c in mol.GetConformers()])


def _rdkit_stereo_matches(mol, conf_id) -> bool:
    m = Chem.Mol(mol, confId=conf_id)
    Chem.AssignStereochemistryFrom3D(m, confId=conf_id)
    return Chem.MolToSmiles(Chem.RemoveHs(m)) == Chem.MolToSmiles(Chem.RemoveHs(mol))


def _reference(smiles: str, seed: int = 4) -> tuple[Chem.Mol, torch.Tensor]:
    mol = mol_from_smiles(smiles, source="test")
    ref = Chem.Mol(mol)
    AllChem.EmbedMolecule(ref, randomSeed=seed)
    return mol, torch.tensor(ref.GetConformer().GetPositions(), dtype=torch.float32)


def test_enantiomeric_samples_are_mirrored_back():
    """A score that pulls every sample to the mirror image: every conformer is repaired by a mirror."""
    mol, ref = _reference(CHIRAL)
    model = TargetScore([torch.from_numpy(mirror(ref.numpy())).float()])
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [6], model=model, preset=STUB_PRESET, relax="none", seed=3,
                                                   progress=False), stats=stats)
    assert out.GetNumConformers() == 6 and stats.stereo_mirrored == 6 and stats.stereo_resampled == 0
    assert check_stereo(stereo_spec(mol), _positions(out)).ok.all()
    assert all(_rdkit_stereo_matches(out, c.GetId()) for c in out.GetConformers())
    # and they are the target's mirror image, i.e. the reference itself (up to the small target spread)
    ref_c = ref.numpy() - ref.numpy().mean(0)
    assert np.abs(_positions(out) - ref_c).max() < 0.3


def test_wrong_diastereomer_is_never_written():
    """A score that always gives a diastereomer: every sample is resampled, none is written, the failure is reported."""
    mol, _ = _reference(CHIRAL)
    _, wrong = _reference("CC/C=C\\C[C@H](O)/C=C/[C@H](C)Cl")  # same atom order, one centre inverted
    stats, errors = GenerationStats(), []
    out = generate_conformers(GenerationRequest([mol], [3], model=TargetScore([wrong]), preset=STUB_PRESET,
                                                relax="none", seed=1, progress=False,
                                                sources=["in.smi:1"]), stats=stats, errors=errors)
    assert out == [None] and len(errors) == 1
    assert errors[0].source == "in.smi:1" and "no conformer passed" in str(errors[0])
    assert stats.stereo_resampled == 3 * (STUB_PRESET.max_retries + 1) and stats.dropped == 3
    assert stats.stereo_mirrored == 0 and stats.written == 0 and stats.failed_molecules == 1


class StartDependentScore(torch.nn.Module):
    """Pulls a batch to ``from_noise`` when its first call came at a large sigma (a start from noise), else to
    ``from_guess`` (a start from an ETKDG guess at the fast refinement's 0.3 A)."""

    def __init__(self, from_noise, from_guess):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.noise_model, self.guess_model = TargetScore([from_noise]), TargetScore([from_guess])
        self.cutoff, self.schedule = 0.0, self.noise_model.schedule
        self.start: dict[int, tuple] = {}  # id(batch) -> (started from noise, the batch: keeps its id unique)

    def forward(self, batch, pos, sigma, pairs=None):
        noisy, _ = self.start.setdefault(id(batch), (float(sigma.max()) > 1.0, batch))
        return (self.noise_model if noisy else self.guess_model)(batch, pos, sigma)


def test_retry_from_etkdg_resamples_stereo_failures_from_a_guess():
    mol, right = _reference(CHIRAL)
    _, wrong = _reference("CC/C=C\\C[C@H](O)/C=C/[C@H](C)Cl")  # same atom order, one centre inverted
    noise = resolve_preset("edm", {"num_levels": 4, "churn": 0.0, "sigma_max": 2.0, "sigma_min": 0.01,
                                   "max_retries": 2, "retry_from_etkdg": False})

    def run(**changes):
        stats, errors = GenerationStats(), []
        (out,) = generate_conformers(GenerationRequest([mol], [3], model=StartDependentScore(wrong, right),
                                                       preset=noise.replace(**changes), relax="none", seed=2,
                                                       progress=False), stats=stats, errors=errors)
        return out, stats

    out, stats = run()  # every retry from noise again: every sample has the wrong diastereomer
    assert out is None and stats.dropped == 3 and stats.network_evals == 3 * 3 * noise.evals_per_sample
    out, stats = run(retry_from_etkdg=True)
    assert out.GetNumConformers() == 3 and stats.stereo_resampled == 3 and stats.dropped == 0
    assert check_stereo(stereo_spec(mol), _positions(out)).ok.all()
    retry = noise.replace(retry_from_etkdg=True).etkdg_refinement()
    assert (retry.init, retry.method, retry.sigma_max, retry.num_levels) == ("etkdg", "pc", 0.3, 5)
    assert stats.network_evals == 3 * noise.evals_per_sample + 3 * retry.evals_per_sample


def test_blowups_are_retried_with_smaller_steps():
    mol, ref = _reference("C[C@H](N)O")
    model = TargetScore([ref], explode_calls=3)
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [4], model=model, preset=STUB_PRESET, relax="none", seed=2,
                                                   progress=False), stats=stats)
    assert stats.blowups == 4 and stats.samples == 8 and stats.dropped == 0
    assert out.GetNumConformers() == 4
    assert np.isfinite(_positions(out)).all()
    assert check_stereo(stereo_spec(mol), _positions(out)).ok.all()


def test_samples_outside_posebusters_bounds_are_resampled_then_kept_as_last_resort():
    mol, ref = _reference("CC(C)Cc1ccc([C@H](C)C(=O)O)cc1")
    good = TargetScore([ref])
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [3], model=good, preset=STUB_PRESET, relax="none", seed=4,
                                                   progress=False), stats=stats)
    assert out.GetNumConformers() == 3 and stats.bad_geometry == 0 and stats.outside_bounds == 0
    stretched = ref.clone()
    # move the terminal methyl (atom 0 and its hydrogens) out along its C-C bond: 40 % longer, no bond broken
    methyl = [0] + [n.GetIdx() for n in mol.GetAtomWithIdx(0).GetNeighbors() if n.GetAtomicNum() == 1]
    stretched[methyl] += 0.4 * (stretched[0] - stretched[1])
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [3], model=TargetScore([stretched]), preset=STUB_PRESET,
                                                   relax="none", seed=4, progress=False), stats=stats)
    assert out.GetNumConformers() == 3 and stats.dropped == 0
    assert stats.outside_bounds == 3 and stats.bad_geometry == 3 * (STUB_PRESET.max_retries + 1)
    assert check_stereo(stereo_spec(mol), _positions(out)).ok.all()
    # with MMFF94 after sampling, the bounds are judged on the relaxed coordinates: no network call is spent
    # resampling what the minimisation repairs
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [3], model=TargetScore([stretched]), preset=STUB_PRESET,
                                                   relax="mmff", seed=4, progress=False), stats=stats)
    assert out.GetNumConformers() == 3 and stats.samples == 3 and stats.bad_geometry == 0
    assert stats.outside_bounds == 0
    assert [c.GetIntProp(PROP_WITHIN_BOUNDS) for c in out.GetConformers()] == [1, 1, 1]
    assert check_stereo(stereo_spec(mol), _positions(out)).ok.all()


def _first_relaxed_out_once(monkeypatch) -> list[int]:
    """Make the pipeline's bounds check call the first conformer of its first call outside; returns the list
    that receives the number of conformers of every call."""
    import confgen.generation.pipeline as pipeline

    real = pipeline.within_bounds
    calls: list[int] = []

    def first_out_once(bounds, pos):
        ok = real(bounds, pos)
        if not calls:
            ok = ok.copy()
            ok[0] = False
        calls.append(len(pos))
        return ok

    monkeypatch.setattr(pipeline, "within_bounds", first_out_once)
    return calls


def test_relaxed_conformers_outside_the_bounds_are_resampled_then_kept(monkeypatch):
    """With MMFF94, PoseBusters' bounds are judged on the relaxed coordinates; a slot outside them is sampled and
    relaxed again, and after max_retries retries its last relaxed sample is written, marked outside."""
    import confgen.generation.pipeline as pipeline

    mol, ref = _reference("CC(C)Cc1ccc([C@H](C)C(=O)O)cc1")
    calls = _first_relaxed_out_once(monkeypatch)
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [3], model=TargetScore([ref]), preset=STUB_PRESET,
                                                   relax="mmff", seed=4, progress=False), stats=stats)
    assert calls[:2] == [3, 1]  # all three relaxed, then the resampled slot alone
    assert stats.samples == 4 and stats.bad_geometry == 1 and stats.outside_bounds == 0
    assert [c.GetIntProp(PROP_WITHIN_BOUNDS) for c in out.GetConformers()] == [1, 1, 1]
    assert all(c.HasProp(PROP_MMFF_ENERGY) for c in out.GetConformers())
    assert check_stereo(stereo_spec(mol), _positions(out)).ok.all()

    monkeypatch.setattr(pipeline, "within_bounds", lambda bounds, pos: np.zeros(len(pos), bool))
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [3], model=TargetScore([ref]), preset=STUB_PRESET,
                                                   relax="mmff", seed=4, progress=False), stats=stats)
    assert stats.samples == 3 * (STUB_PRESET.max_retries + 1) and stats.dropped == 0
    assert out.GetNumConformers() == 3 and stats.outside_bounds == 3
    assert [c.GetIntProp(PROP_WITHIN_BOUNDS) for c in out.GetConformers()] == [0, 0, 0]
    assert all(c.HasProp(PROP_MMFF_ENERGY) for c in out.GetConformers())


def test_energy_window_relaxes_every_candidate_and_keeps_low_energies():
    """Preset energy_window (init noise, oversampled, MMFF94): all candidates are relaxed and the kept ones are
    the most diverse within the window of the lowest energy (window 0: the lowest energies)."""
    smiles = "CCCCOc1ccc(CC(=O)O)cc1"
    targets = [_reference(smiles, seed=s)[1] for s in range(1, 7)]
    mol = mol_from_smiles(smiles, source="test")
    noise = resolve_preset("edm", {"num_levels": 4, "churn": 0.0, "sigma_max": 2.0, "sigma_min": 0.01})

    def run(n, **changes):
        stats = GenerationStats()
        (out,) = generate_conformers(GenerationRequest([mol], [n], model=TargetScore(targets),
                                                       preset=noise.replace(**changes), seed=5, progress=False),
                                     stats=stats)
        return sorted(c.GetDoubleProp(PROP_MMFF_ENERGY) for c in out.GetConformers()), stats

    every, _ = run(6)  # the same six candidates (same slots, seeds and batch), all relaxed
    lowest, stats = run(3, oversample=2.0, energy_window=0.0)
    assert lowest == pytest.approx(every[:3], abs=1e-6)
    assert stats.written == 3 and stats.samples == 6
    spread, _ = run(3, oversample=2.0, energy_window=1e9)
    assert spread[0] == pytest.approx(every[0], abs=1e-6)  # the diverse pick starts from the lowest energy
    assert all(any(abs(e - x) < 1e-6 for x in every) for e in spread)



def test_energy_window_candidates_outside_the_bounds_are_resampled(monkeypatch):
    """edm-select's path (noise, oversampled, energy window): a candidate whose relaxed coordinates are outside
    PoseBusters' bounds is sampled and relaxed again before the window selection, like any preset's conformer."""
    smiles = "CCCCOc1ccc(CC(=O)O)cc1"
    targets = [_reference(smiles, seed=s)[1] for s in range(1, 7)]
    mol = mol_from_smiles(smiles, source="test")
    noise = resolve_preset("edm", {"num_levels": 4, "churn": 0.0, "sigma_max": 2.0, "sigma_min": 0.01,
                                   "oversample": 2.0, "energy_window": 1e9})
    calls = _first_relaxed_out_once(monkeypatch)
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [3], model=TargetScore(targets), preset=noise, seed=5,
                                                   progress=False), stats=stats)
    assert calls[:2] == [6, 1]  # all six candidates relaxed, then the resampled one alone
    assert stats.samples == 7 and stats.bad_geometry == 1 and stats.written == 3
    assert all(c.HasProp(PROP_MMFF_ENERGY) for c in out.GetConformers())
    assert [c.GetIntProp(PROP_WITHIN_BOUNDS) for c in out.GetConformers()] == [1, 1, 1]

def test_trained_model_same_seed_same_coordinates(tiny_model):
    mols = [mol_from_smiles(s, source="t") for s in (CHIRAL, "CC(C)Cc1ccc([C@H](C)C(=O)O)cc1", "c1ccncc1")]
    kw = dict(model=tiny_model, preset=TINY_PRESET, progress=False)
    a = generate_conformers(GenerationRequest(mols, [3, 4, 2], seed=7, batch_size=64, **kw))
    b = generate_conformers(GenerationRequest(mols, [3, 4, 2], seed=7, batch_size=64, **kw))
    c = generate_conformers(GenerationRequest(mols, [3, 4, 2], seed=8, batch_size=64, **kw))
    d = generate_conformers(GenerationRequest(mols[1:2], [4], seed=7, batch_size=3, ids=[1], **kw))
    for x, y in zip(a, b):
        assert np.array_equal(_positions(x), _positions(y))
    assert not np.allclose(_positions(a[0]), _positions(c[0]))
    # another batch size and without the other molecules: same trajectories up to float summation order
    np.testing.assert_allclose(_positions(d[0]), _positions(a[1]), atol=1e-3)
    for m, n in zip(a, [3, 4, 2]):
        assert m.GetNumConformers() == n
        assert m.GetNumAtoms() == Chem.AddHs(Chem.RemoveHs(m)).GetNumAtoms()  # explicit hydrogens
        assert check_stereo(stereo_spec(m), _positions(m)).ok.all()
        assert all(_rdkit_stereo_matches(m, cf.GetId()) for cf in m.GetConformers())


def test_python_api_relax_and_bad_input(tiny_model):
    stats = GenerationStats()
    mol = confgen.generate("C[C@@H](C1=CC2=C(C=C1)C=C(C=C2)OC)C(=O)O", 3, model=tiny_model, seed=0,
                           preset=TINY_PRESET)
    assert isinstance(mol, Chem.Mol) and mol.GetNumConformers() == 3
    assert all(_rdkit_stereo_matches(mol, c.GetId()) for c in mol.GetConformers())
    relaxed = generate(Chem.MolFromSmiles("C/C=C\\C(=O)O"), 2, model=tiny_model, seed=0, preset=TINY_PRESET,
                       relax="mmff", stats=stats)
    energies = [c.GetDoubleProp(PROP_MMFF_ENERGY) for c in relaxed.GetConformers()]
    assert len(energies) == 2 and all(np.isfinite(energies))
    # MMFF minima: the energy does not go down any further
    props = AllChem.MMFFGetMoleculeProperties(relaxed)
    ff = AllChem.MMFFGetMoleculeForceField(relaxed, props, confId=relaxed.GetConformer(0).GetId())
    assert ff.CalcEnergy() == pytest.approx(energies[0], abs=1e-3)
    assert check_stereo(stereo_spec(relaxed), _positions(relaxed)).ok.all()
    with pytest.raises(InputError, match="invalid SMILES"):
        generate("C1CC", 2, model=tiny_model)
    with pytest.raises(ConfgenError, match="unknown sampler preset"):
        generate("CCO", 2, model=tiny_model, preset="nope")
    errors = []
    mols = [mol_from_smiles("CCO", source="x"), Chem.AddHs(Chem.MolFromSmiles("[Na+].[Cl-]"))]
    out = generate_conformers(GenerationRequest(mols, [2, 2], model=tiny_model, preset=TINY_PRESET, seed=0,
                                                progress=False), errors=errors)
    assert out[0].GetNumConformers() == 2 and out[1] is None
    assert len(errors) == 1 and "unsupported element Na" in str(errors[0])


def test_mmff_relax_keeps_the_input_chemistry(tiny_model):
    # MMFF typing re-perceives aromaticity in place (fused heteroaromatics, pyridones): the relaxed Mol must
    # still have the input's graph, or evaluation cannot match it to the references.
    smiles = "CCc1c(C)nc2[nH]nc(-c3ccccc3)n2c1=O"
    relaxed = generate(smiles, 2, model=tiny_model, seed=0, preset=TINY_PRESET, relax="mmff")
    assert relaxed.GetNumConformers() == 2
    assert Chem.MolToSmiles(Chem.RemoveHs(relaxed)) == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


def test_oversampling_keeps_the_most_diverse_conformers(tiny_model):
    from confgen.chem.rmsd import rmsd_matrix

    mol = mol_from_smiles("CCCCOc1ccc(CC(=O)NCCO)cc1", source="t")  # flexible: conformers differ a lot
    kw = dict(model=tiny_model, seed=11, relax="none", progress=False)
    first = generate_conformers(GenerationRequest([mol], [4], preset=TINY_PRESET.replace(oversample=1.0), **kw))[0]
    pool = generate_conformers(GenerationRequest([mol], [12], preset=TINY_PRESET.replace(oversample=1.0), **kw))[0]
    stats = GenerationStats()
    kept = generate_conformers(GenerationRequest([mol], [4], preset=TINY_PRESET.replace(oversample=3.0),
                                                 **kw), stats=stats)[0]
    # 12 ETKDG guesses, only the 4 most diverse sampled: the network runs for the conformers returned only
    assert kept.GetNumConformers() == 4 and stats.requested == 4 and stats.written == 4 and stats.samples == 4
    # the candidates are the 12 a plain run samples (per-slot seeds), the first 4 of them the plain 4-run
    assert np.array_equal(_positions(first), _positions(pool)[:4])
    cross = rmsd_matrix(kept, pool)
    assert (cross.min(axis=1) < 1e-6).all()
    picked = cross.argmin(axis=1)
    assert picked[0] == 0 and len(set(picked.tolist())) == 4

    def min_pairwise(m):
        r = rmsd_matrix(m, m)
        return r[np.triu_indices(len(r), 1)].min()

    assert min_pairwise(kept) > min_pairwise(first)
    with pytest.raises(ConfgenError, match="oversample"):
        generate("CCO", 2, model=tiny_model, preset=resolve_preset("fast").replace(oversample=0.5))


def test_network_off_selects_and_returns_the_etkdg_guesses_unchanged(tiny_model, tmp_path):
    """The benchmark's etkdg-select ablation: same oversampling and diverse selection, no network step."""
    from confgen.chem.rmsd import rmsd_matrix

    mol = mol_from_smiles("CCCCOc1ccc(CC(=O)NCCO)cc1", source="t")
    preset = TINY_PRESET.replace(oversample=3.0)
    stats = GenerationStats()
    # the model is not loaded at all: a missing checkpoint path is no error
    off = generate_conformers(GenerationRequest([mol], [4], model=str(tmp_path / "missing.pt"), preset=preset, seed=11,
                                                relax="none", progress=False, network=False), stats=stats)[0]
    assert off.GetNumConformers() == 4 and stats.network_evals == 0 and stats.samples == 4
    # the 12 ETKDG guesses of round 0 (the same per-molecule seed), returned as they are without selection
    pool = generate_conformers(GenerationRequest([mol], [12], preset=preset.replace(oversample=1.0), seed=11,
                                                 relax="none", progress=False, network=False))[0]
    assert pool.GetNumConformers() == 12
    cross = rmsd_matrix(off, pool)
    assert (cross.min(axis=1) < 1e-6).all()  # every returned conformer is one of the guesses, unchanged
    picked = cross.argmin(axis=1)
    assert picked[0] == 0 and len(set(picked.tolist())) == 4
    # with the network on, the same four guesses are selected and then moved by the network
    on = generate_conformers(GenerationRequest([mol], [4], model=tiny_model, preset=preset, seed=11, relax="none",
                                               progress=False))[0]
    moved = np.diag(rmsd_matrix(on, off))
    assert (moved > 1e-4).all() and (moved < 0.5).all()
    relaxed = generate_conformers(GenerationRequest([mol], [4], preset=preset, seed=11, relax="mmff", progress=False,
                                                    network=False))[0]
    assert relaxed.GetNumConformers() == 4
    assert all(c.HasProp(PROP_MMFF_ENERGY) for c in relaxed.GetConformers())
    assert (np.diag(rmsd_matrix(relaxed, off)) > 1e-3).all()
    with pytest.raises(ConfgenError, match="init 'etkdg'"):
        generate_conformers(GenerationRequest([mol], [2], preset="confgf", network=False, progress=False))


def test_edm_preset_from_pure_noise_counts_calls_and_keeps_stereo():
    """The from-noise Heun preset (no ETKDG when nothing fails): 11 network calls per conformer, mirror images
    repaired."""

    mol, ref = _reference(CHIRAL)
    model = TargetScore([torch.from_numpy(mirror(ref.numpy())).float()], s0=0.05)
    stats = GenerationStats()
    (out,) = generate_conformers(GenerationRequest([mol], [5], model=model, preset="edm", relax="none", seed=4,
                                                   progress=False), stats=stats)
    assert resolve_preset("edm").evals_per_sample == 11 <= 50
    assert out.GetNumConformers() == 5 and stats.samples == 5 and stats.network_evals == 5 * 11
    assert stats.stereo_mirrored == 5 and stats.stereo_resampled == 0
    assert all(_rdkit_stereo_matches(out, c.GetId()) for c in out.GetConformers())
    ref_c = ref.numpy() - ref.numpy().mean(0)
    assert np.abs(_positions(out) - ref_c).max() < 0.5


def test_sampled_phosphorus_centre_rdkit_calls_non_tetrahedral_is_never_written():
    """train10's phosphonate with a score that pulls every sample to a seesaw P (=O opposite the propyl carbon):
    RDKit perceives a trigonal bipyramid (no R/S); the old volume check wrote these conformers, now they are
    resampled and, failing every retry, dropped."""
    from confgen.benchmark import stereo_errors

    mol, ref = _reference("[NH3+]CCC[P@](=O)(O)CCc1ccccc1")
    bad = ref.numpy().astype(np.float64)
    p, o, c = 4, 5, 3  # P, its =O, the propyl carbon (input order)
    assert [mol.GetAtomWithIdx(i).GetSymbol() for i in (p, o, c)] == ["P", "O", "C"]
    d = bad[p] - bad[c]
    bad[o] = bad[p] + np.linalg.norm(bad[o] - bad[p]) * d / np.linalg.norm(d)
    model = TargetScore([torch.from_numpy(bad).float()])
    stats, errors = GenerationStats(), []
    (out,) = generate_conformers(GenerationRequest([mol], [4], model=model, preset=STUB_PRESET, relax="none", seed=3,
                                                   progress=False), stats=stats, errors=errors)
    assert out is None or stereo_errors(mol, out)[0] == 0
    assert stats.stereo_resampled >= 4 and stats.stereo_mirrored == 0
    assert out is None and "no conformer passed the checks" in str(errors[0])


def test_api_unspecified_stereo_gives_one_isomer_and_marks_bounds():
    from confgen.io import PROP_STEREO_POLICY
    from confgen.validity import geometry_bounds, within_bounds

    stats = GenerationStats()
    mol = confgen.generate("CC(C)Cc1ccc(cc1)C(C)C(=O)O", 6, model=tiny_checkpoint(), preset=TINY_PRESET, seed=3,
                           relax="none", stats=stats)
    labels = set()
    for conf in mol.GetConformers():
        m = Chem.Mol(mol, confId=conf.GetId())
        Chem.AssignStereochemistryFrom3D(m)
        labels.add(Chem.MolToSmiles(Chem.RemoveHs(m)))
    assert len(labels) == 1 and mol.GetProp(PROP_STEREO_POLICY) == "one"
    assert any("unspecified stereo" in w for w in stats.warnings)
    bounds = geometry_bounds(mol)
    flags = [conf.GetIntProp(PROP_WITHIN_BOUNDS) for conf in mol.GetConformers()]
    pos = np.stack([c.GetPositions() for c in mol.GetConformers()])
    assert flags == within_bounds(bounds, pos).astype(int).tolist()
    assert stats.outside_bounds == flags.count(0)
    with pytest.raises(InputError, match="unspecified stereo"):
        confgen.generate("CC(C)Cc1ccc(cc1)C(C)C(=O)O", 2, model=tiny_checkpoint(), preset=TINY_PRESET, seed=3,
                         stereo="refuse")


def test_request_checks_its_settings_and_budgets_the_progress_bar():
    from confgen.generation import progress_budgets, resolve_model

    mol = mol_from_smiles("CCO", source="t")
    req = GenerationRequest([mol, mol], 3, preset="fast", relax="none")
    assert req.num_confs == [3, 3] and req.ids == [0, 1] and req.sources == ["molecule 0", "molecule 1"]
    assert req.preset is resolve_preset("fast")
    # fast: 2 x oversampled ETKDG guesses, the kept half sampled; nothing relaxed or written
    assert req.progress_budgets() == {"embedding": 12, "sampling": 6, "relaxing": 0, "writing": 0}
    assert progress_budgets([3], resolve_preset("edm"), "mmff", write=True) == {
        "embedding": 0, "sampling": 3, "relaxing": 3, "writing": 3}
    # edm-select: 1.5 x candidates from noise, every candidate relaxed before the selection
    assert progress_budgets([4], resolve_preset("edm-select"), "mmff") == {
        "embedding": 0, "sampling": 6, "relaxing": 6, "writing": 0}
    assert GenerationRequest([mol], 2, network=False).preset.noise_fallback_levels == 0
    with pytest.raises(ConfgenError, match="relax"):
        GenerationRequest([mol], 2, relax="uff")
    with pytest.raises(ConfgenError, match="batch_size"):
        GenerationRequest([mol], 2, batch_size=0)
    with pytest.raises(ConfgenError, match="conformer counts"):
        GenerationRequest([mol, mol], [2])
    with pytest.raises(ConfgenError, match="unknown sampler preset"):
        GenerationRequest([mol], 2, preset="nope")
    with pytest.raises(ConfgenError, match="not a score model"):
        resolve_model(torch.nn.Linear(3, 3), torch.device("cpu"))
