"""Benchmark: RDKit baselines end to end on real GEOM molecules, QM9 DFT recovery, stereo-error counting."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from rdkit import Chem

from confgen.benchmark import BenchmarkOptions, generate_rdkit, input_mol, run_benchmark, stereo_errors
from confgen.errors import ConfgenError
from confgen.chem.rmsd import rmsd_matrix
from mol_helpers import sdf_ensemble




def test_stereo_errors_counts_mirrored_conformers():
    mol = Chem.AddHs(Chem.MolFromSmiles("C[C@H](N)C(=O)O"))  # L-alanine
    gen = generate_rdkit(mol, 4, seed=3, mmff=False)
    assert stereo_errors(mol, gen) == (0, 4)
    mirrored = Chem.Mol(gen)
    for conf in list(mirrored.GetConformers())[:3]:
        pos = conf.GetPositions()
        pos[:, 2] *= -1.0
        conf.SetPositions(pos)
    assert stereo_errors(mol, mirrored) == (3, 4)


def test_stereo_errors_double_bond():
    mol = Chem.AddHs(Chem.MolFromSmiles("C/C=C/C"))  # E-2-butene
    gen = generate_rdkit(mol, 2, seed=5, mmff=False)
    assert stereo_errors(mol, gen) == (0, 2)
    z = generate_rdkit(Chem.AddHs(Chem.MolFromSmiles("C/C=C\\C")), 2, seed=5, mmff=False)
    assert stereo_errors(mol, z) == (2, 2)


def test_generate_rdkit_mmff_keeps_graph_and_moves_atoms():
    mol = Chem.AddHs(Chem.MolFromSmiles("Cc1ccc(-n2cccn2)cc1"))
    raw = generate_rdkit(mol, 3, seed=7, mmff=False)
    opt = generate_rdkit(mol, 3, seed=7, mmff=True)
    assert raw.GetNumConformers() == opt.GetNumConformers() == 3
    assert Chem.MolToSmiles(opt) == Chem.MolToSmiles(mol)
    d = rmsd_matrix(raw, opt)  # same graph (aromaticity untouched by the MMFF setup), geometry changed
    assert np.all(np.diag(d) > 1e-3)
    seeds = generate_rdkit(mol, 3, seed=8, mmff=False)
    assert np.abs(rmsd_matrix(raw, seeds)).max() > 1e-3  # another seed, other conformers


def test_bad_arguments():
    with pytest.raises(ConfgenError, match="non-zero"):
        run_benchmark("x.sdf", BenchmarkOptions(seed=0, methods=["etkdg"]))
    with pytest.raises(ConfgenError, match="unknown method"):
        run_benchmark("x.sdf", BenchmarkOptions(methods=["bogus"]))
    with pytest.raises(ConfgenError, match="only confgen and etkdg-select methods take a sampler preset"):
        run_benchmark("x.sdf", BenchmarkOptions(methods=["etkdg@fast"]))
    with pytest.raises(ConfgenError, match="unknown sampler preset 'bogus'"):
        run_benchmark("x.sdf", BenchmarkOptions(methods=["confgen@bogus"]))


def test_benchmark_end_to_end_two_geom_molecules(shared_data, tmp_path, capsys):
    """ETKDG and ETKDG+MMFF on mol00 (3 references) and mol06 (15 references, two stereocentres)."""
    from confgen.cli import main

    root = shared_data / "geom_drugs_tora3d7"
    with open(root / "index.csv", newline="") as fh:
        rows = {r["dir"]: r for r in csv.DictReader(fh)}
    refs = tmp_path / "refs.sdf"
    with open(refs, "w") as out:
        for d in ("mol00", "mol06"):
            out.write((root / "molecules" / d / rows[d]["true_file"]).read_text())
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    code = main(["benchmark", str(refs), "--methods", "etkdg,etkdg-mmff", "--max-posebusters", "4", "--json",
                 str(out_json), "--markdown", str(out_md), "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0
    assert "etkdg-mmff" in text and "COV-R" in text
    res = json.loads(out_json.read_text())
    assert res["n_molecules"] == 2 and res["n_ref_conformers"] == 18 and res["n_requested_per_method"] == 36
    for name in ("etkdg", "etkdg-mmff"):
        m = res["methods"][name]
        assert m["status"] == "ok" and m["n_generated"] == 36
        assert m["conformers_per_s"] > 0 and m["peak_memory_mb"] > 10
        assert m["stereo"] == {"checked": 36, "errors": 0}  # mol06's two centres come out right
        assert m["posebusters"]["checked"] == 4 and m["posebusters"]["passed"] >= 3
        ev = m["evaluation"]
        assert ev["n_molecules"] == 2 and ev["n_failed"] == 0
        assert [p["n_gen"] for p in ev["per_molecule"]] == [6, 30]
        # per-molecule COV-R agrees with the per-reference minimum RMSDs written beside it
        for p in ev["per_molecule"]:
            assert p["cov_r"][2] == pytest.approx(np.mean(np.asarray(p["ref_min"]) < 1.25))
    md = out_md.read_text()
    assert md.count("| etkdg") == 2 and "COV-R" in md


def test_qm9_dft_recovery(shared_data, tmp_path):
    csv_path = shared_data / "qm9" / "geom_qm9_test_matched_qm9_dft_geometry.csv"
    res = run_benchmark(csv_path, BenchmarkOptions(methods=["etkdg"], max_molecules=4, num_confs=6, max_posebusters=0,
                                                   progress=False), log=lambda msg: None)
    assert res["mode"] == "qm9_dft" and res["deltas"] == [0.5]
    m = res["methods"]["etkdg"]
    per = m["evaluation"]["per_molecule"]
    assert len(per) == res["n_molecules"] > 0 and all(p["n_ref"] == 1 and p["n_gen"] == 6 for p in per)
    mins = np.array([p["ref_min"][0] for p in per])
    assert m["dft_recovered"] == pytest.approx(np.mean(mins < 0.5))
    assert m["n_molecules_with_conformers"] == len(per)
    assert m["dft_recovered_with_conformers"] == pytest.approx(m["dft_recovered"])
    assert m["mean_min_rmsd"] == pytest.approx(mins.mean())
    assert 0.0 <= mins.min() < 1.0  # small rigid QM9 molecules: ETKDG lands near the DFT minimum


def _one_molecule_sdf(shared_data, tmp_path, d="mol00"):
    root = shared_data / "geom_drugs_tora3d7"
    with open(root / "index.csv", newline="") as fh:
        rows = {r["dir"]: r for r in csv.DictReader(fh)}
    refs = tmp_path / "refs.sdf"
    refs.write_text((root / "molecules" / d / rows[d]["true_file"]).read_text())
    return refs


def test_benchmark_confgen_method_with_a_trained_checkpoint(shared_data, tmp_path):
    from sample_models import TINY_PRESET, tiny_checkpoint

    refs = _one_molecule_sdf(shared_data, tmp_path)
    res = run_benchmark(refs, BenchmarkOptions(methods=["confgen"], model=tiny_checkpoint(), preset=TINY_PRESET,
                                               max_posebusters=2, progress=False), log=lambda msg: None)
    m = res["methods"]["confgen"]
    assert m["status"] == "ok", m["error"]
    assert m["n_generated"] == 6 and m["stereo"]["errors"] == 0
    assert m["evaluation"]["n_molecules"] == 1 and m["evaluation"]["per_molecule"][0]["n_gen"] == 6
    c = m["generation_counters"]
    assert c["written"] == 6 and c["samples"] >= 6
    # every sample costs the preset's calls; the per-conformer figure counts retries too
    assert c["network_evals"] >= 6 * TINY_PRESET.num_levels
    assert m["network_calls_per_conformer"] == round(c["network_evals"] / 6, 1)


def test_benchmark_compares_presets_side_by_side(shared_data, tmp_path):
    from sample_models import TINY_PRESET, tiny_checkpoint

    refs = _one_molecule_sdf(shared_data, tmp_path)
    res = run_benchmark(refs, BenchmarkOptions(methods=["confgen", "confgen@fast", "confgen@fast"],
                                               model=tiny_checkpoint(), preset=TINY_PRESET, max_posebusters=0,
                                               progress=False), log=lambda msg: None)
    assert list(res["methods"]) == ["confgen", "confgen@fast"]
    tiny, fast = res["methods"]["confgen"], res["methods"]["confgen@fast"]
    assert tiny["status"] == fast["status"] == "ok", (tiny["error"], fast["error"])
    assert tiny["n_generated"] == fast["n_generated"] == 6
    # same seed and model: only the preset differs (sigma_max 0.05 vs 0.3), so the ensembles must differ
    ref_min = [np.asarray(m["evaluation"]["per_molecule"][0]["ref_min"]) for m in (tiny, fast)]
    assert np.abs(ref_min[0] - ref_min[1]).max() > 1e-3


def test_benchmark_confgen_missing_model_fails_clearly(shared_data, tmp_path):
    refs = _one_molecule_sdf(shared_data, tmp_path)
    res = run_benchmark(refs, BenchmarkOptions(methods=["confgen", "etkdg"], model=str(tmp_path / "missing.pt"),
                                               max_posebusters=0, progress=False), log=lambda msg: None)
    assert res["methods"]["confgen"]["status"] == "failed"
    assert "missing.pt" in res["methods"]["confgen"]["error"]
    assert res["methods"]["etkdg"]["status"] == "ok"  # the other methods still run


def test_benchmark_network_off_ablation(shared_data, tmp_path):
    """etkdg-select(-mmff): the confgen pipeline without the network (no model needed), with and without MMFF."""
    refs = _one_molecule_sdf(shared_data, tmp_path)
    res = run_benchmark(refs, BenchmarkOptions(methods=["etkdg-select", "etkdg-select-mmff", "etkdg-select@confgf"],
                                               model=str(tmp_path / "missing.pt"), max_posebusters=0,
                                               progress=False), log=lambda msg: None)
    plain, mmff = res["methods"]["etkdg-select"], res["methods"]["etkdg-select-mmff"]
    assert plain["status"] == mmff["status"] == "ok", (plain["error"], mmff["error"])
    assert plain["n_generated"] == mmff["n_generated"] == 6
    assert plain["stereo"]["errors"] == mmff["stereo"]["errors"] == 0
    assert plain["network_calls_per_conformer"] == 0  # the network is off
    ref_min = [np.asarray(m["evaluation"]["per_molecule"][0]["ref_min"]) for m in (plain, mmff)]
    assert np.abs(ref_min[0] - ref_min[1]).max() > 1e-3  # MMFF94 moved the selected guesses
    # a preset that starts from noise has nothing to select without the network: reported, not crashed
    assert res["methods"]["etkdg-select@confgf"]["status"] == "failed"
    assert "init 'etkdg'" in res["methods"]["etkdg-select@confgf"]["error"]


def _die(job):
    """A generation worker killed mid-run (as the kernel's OOM killer would)."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_a_dying_worker_fails_its_method_with_the_reason(shared_data, tmp_path, monkeypatch):
    from confgen import benchmark

    assert "SIGKILL" in benchmark.run_method({}, worker=_die)["error"]
    real = benchmark.run_method
    monkeypatch.setattr(benchmark, "run_method",
                        lambda job, worker=None: real(job, worker=_die if job["method"] == "etkdg-mmff" else worker))
    refs = _one_molecule_sdf(shared_data, tmp_path)
    res = run_benchmark(refs, BenchmarkOptions(methods=["etkdg-mmff", "etkdg"], max_posebusters=0,
                                               progress=False), log=lambda msg: None)
    dead = res["methods"]["etkdg-mmff"]
    assert dead["status"] == "failed" and "died" in dead["error"] and "SIGKILL" in dead["error"]
    assert res["methods"]["etkdg"]["status"] == "ok" and res["methods"]["etkdg"]["n_generated"] == 6


def test_benchmark_command_prints_no_traceback_and_leaks_nothing(shared_data, tmp_path):
    """Run as users do (a subprocess, so that the interpreter's exit-time warnings are seen)."""
    import subprocess
    import sys

    from sample_models import tiny_checkpoint

    refs = _one_molecule_sdf(shared_data, tmp_path)
    out_json = tmp_path / "b.json"
    proc = subprocess.run([sys.executable, "-m", "confgen", "benchmark", str(refs), "--methods", "etkdg,confgen",
                           "--model", tiny_checkpoint(), "--preset", "fast", "--max-posebusters", "2", "--json",
                           str(out_json), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for bad in ("Traceback", "leaked", "BrokenPipeError", "Warning"):
        assert bad not in proc.stderr, proc.stderr
    res = json.loads(out_json.read_text())
    assert all(m["status"] == "ok" for m in res["methods"].values())


def _qm9_rows(shared_data, tmp_path, ids):
    csv_path = shared_data / "qm9" / "geom_qm9_test_matched_qm9_dft_geometry.csv"
    lines = csv_path.read_text().splitlines()
    rows = [ln for ln in lines[1:] if ln.split(",")[2] in ids]
    assert len(rows) == len(ids)
    sub = tmp_path / "qm9_rows.csv"
    sub.write_text("\n".join([lines[0], *rows]) + "\n")
    return sub


def test_qm9_bridged_aziridine_gets_conformers(shared_data, tmp_path):
    """An untagged bridgehead nitrogen is not fixed to a configuration its rings forbid before sampling.

    GEOM-QM9 test molecule 91973: when the stereo policy tagged its nitrogen, no conformer could have the tag's
    configuration and none was written.
    """
    sub = _qm9_rows(shared_data, tmp_path, {"91973"})  # C#C[C@H]1[C@@H](C)C[C@H]2CN21
    res = run_benchmark(sub, BenchmarkOptions(methods=["confgen-mmff"], num_confs=4, max_posebusters=0, workers=1,
                                              progress=False), log=lambda msg: None)
    m = res["methods"]["confgen-mmff"]
    assert m["generation_errors"] == []
    (p,) = m["evaluation"]["per_molecule"]
    assert p["n_gen"] == 4 and p["ref_min"][0] < 0.5


def test_qm9_aziridine_nitrogen_inverts_between_conformers(shared_data, tmp_path):
    """Both invertomers of an untagged aziridine nitrogen are sampled, not one chosen for every conformer.

    GEOM-QM9 test molecule 7855 (C[C@H]1CN1CC(N)=O): its DFT minimum has the nitrogen substituent cis to the
    methyl, the invertomer ETKDG makes less often; the pipeline lost it when the policy tagged the nitrogen.
    """
    from confgen.data.readers.sources import iter_molecules
    from confgen.generation import generate

    (rec,) = list(iter_molecules(_qm9_rows(shared_data, tmp_path, {"7855"})))
    mol = input_mol(rec)
    (n_idx,) = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 7 and a.IsInRingSize(3)]
    nbrs = [n.GetIdx() for n in mol.GetAtomWithIdx(n_idx).GetNeighbors()]

    def pyramid_sign(pos):
        v = pos[nbrs] - pos[n_idx]
        return np.sign(np.dot(v[0], np.cross(v[1], v[2])))

    dft = pyramid_sign(rec.mol.GetConformer().GetPositions())
    out = generate(mol, 16, seed=3, progress=False)
    signs = [pyramid_sign(c.GetPositions()) for c in out.GetConformers()]
    assert len(signs) == 16 and set(signs) == {-1.0, 1.0} and dft in signs
