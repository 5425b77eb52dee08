"""Conformer shards: round trip, content addressing, resumable build bookkeeping, and reading by confgen prepare."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem

from confgen.data.ensembles import EnsembleOptions, build_ensemble
from confgen.data.readers import detect_format, iter_molecules
from confgen.data.shards import (
    ShardBuffer,
    done_indices,
    failures,
    iter_shard,
    mapped_smiles,
    mol_from_mapped_smiles,
    shard_paths,
    write_shard,
)

ROOT = Path(__file__).resolve().parents[1]


def _ensemble(smiles: str, n: int = 3):
    ens = build_ensemble(Chem.MolFromSmiles(smiles), EnsembleOptions(n_confs=n, oversample=2, seed=5))
    return ens.mol, np.array(ens.energies) - 100.0


def test_mapped_smiles_keeps_atom_order():
    mol = Chem.AddHs(Chem.MolFromSmiles("O=C1N[C@@H](Cc2ccccc2)[C@@H](c2ccco2)O1"))
    back = mol_from_mapped_smiles(mapped_smiles(mol))
    assert [a.GetAtomicNum() for a in back.GetAtoms()] == [a.GetAtomicNum() for a in mol.GetAtoms()]
    bonds = lambda m: sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx(), str(b.GetBondType())) for b in m.GetBonds())  # noqa: E731
    assert bonds(back) == bonds(mol)
    assert Chem.MolToSmiles(Chem.RemoveHs(back)) == Chem.MolToSmiles(Chem.RemoveHs(mol))  # stereo kept
    assert all(a.GetAtomMapNum() == 0 for a in back.GetAtoms())


def test_shard_round_trip_and_content_address(tmp_path):
    buf = ShardBuffer()
    mol_a, e_a = _ensemble("CC(=O)Nc1ccc(O)cc1")
    mol_b, e_b = _ensemble("CCOC(=O)c1ccccc1")
    buf.add(7, "CC(=O)Nc1ccc(O)cc1", mol_a, e_a, e_a * 2)
    buf.add(3, "CCOC(=O)c1ccccc1", mol_b, e_b, e_b * 2)
    buf.fail(5, "C1CC", "RDKit cannot parse the SMILES")
    path = write_shard(tmp_path, buf, {"protocol": "test", "source": "x.smi"})
    assert path.name.startswith("shard-") and path.suffix == ".npz"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    assert write_shard(tmp_path, buf, {"protocol": "test", "source": "x.smi"}) == path  # same content, same name
    other = write_shard(tmp_path, buf, {"protocol": "test", "source": "y.smi"})
    assert other != path
    other.unlink()
    with np.load(path, allow_pickle=False) as data:  # loads without pickle
        assert data["pos"].dtype == np.float32
    mols = list(iter_shard(path))
    assert [m.index for m in mols] == [3, 7]  # sorted by source line
    for m, (orig, e) in zip(mols, [(mol_b, e_b), (mol_a, e_a)]):
        assert m.mol.GetNumConformers() == orig.GetNumConformers()
        for c_new, c_old in zip(m.mol.GetConformers(), orig.GetConformers()):
            assert np.allclose(c_new.GetPositions(), c_old.GetPositions(), atol=1e-5)
        assert np.allclose(m.energies, e) and np.allclose(m.aux_energies, 2 * e)
    assert done_indices(tmp_path) == {3, 5, 7}
    assert done_indices(tmp_path, source="other.smi") == set()
    assert failures(tmp_path) == [(5, "C1CC", "RDKit cannot parse the SMILES")]


def test_shard_directory_is_a_prepare_source(tmp_path):
    buf = ShardBuffer()
    mol, e = _ensemble("CCCCOC(=O)c1ccccc1CC(=O)NCC", n=4)
    hartree = np.array([-50.0, -50.001, -49.99, -50.0005])[:mol.GetNumConformers()]
    buf.add(0, "CCCCOC(=O)c1ccccc1CC(=O)NCC", mol, hartree, e)
    write_shard(tmp_path / "shards", buf, {"protocol": "test", "source": "x.smi"})
    assert detect_format(tmp_path / "shards") == "shards"
    stats: dict = {}
    recs = list(iter_molecules(tmp_path / "shards", stats=stats))
    within = int(((hartree - hartree.min()) * 627.509474 <= 6.0).sum())  # -49.99 Eh lies 6.9 kcal/mol up
    assert mol.GetNumConformers() >= 3 and within == mol.GetNumConformers() - 1
    assert len(recs) == 1 and recs[0].num_confs == within  # GEOM's 6 kcal/mol window
    assert stats["outside_energy_window"] == 1 and stats.get("dropped_conformers", 0) == 0  # not a graph change
    w = np.array(recs[0].weights)
    assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w) <= 1e-12)  # Boltzmann weights, highest first
    assert w[0] > 0.5  # -50.001 Eh lies 0.6 kcal/mol below the next conformer

    from confgen.prepare import PrepareOptions, prepare_dataset

    excl = tmp_path / "eval.smi"
    excl.write_text("CCCCOC(=O)c1ccccc1CC(=O)NCC\n")
    from confgen.errors import ConfgenError

    with pytest.raises(ConfgenError, match="1 excluded"):  # the only molecule is an evaluation molecule
        prepare_dataset([str(tmp_path / "shards")], tmp_path / "ds", PrepareOptions(exclude=[str(excl)], progress=False))
    summary = prepare_dataset([str(tmp_path / "shards")], tmp_path / "ds2", PrepareOptions(progress=False))
    assert summary["n_molecules"] == 1
    assert summary["filtered"]["conformers_outside_energy_window"] == 1
    assert summary["filtered"]["conformers_with_other_graph"] == 0


@pytest.mark.skipif(importlib.util.find_spec("tblite") is None, reason="tblite not installed")
def test_build_script_resumes_after_sigterm_and_never_builds_evaluation_molecules(tmp_path, shared_data):
    """The build writes finished molecules on SIGTERM, skips them on restart, and records what it refused."""
    source = tmp_path / "pool.smi"
    eval_smiles = "O=C1N[C@@H](Cc2ccccc2)[C@@H](c2ccco2)O1"  # geom_drugs_tora3d7 mol06 (an evaluation molecule)
    source.write_text("\n".join(["CCO", "CCN", eval_smiles.replace("[C@@H]", "C"), "not_a_smiles", "CCCO", "CCOC",
                                 "CC(C)O", "CCCN"]) + "\n")
    out = tmp_path / "shards"
    cmd = [sys.executable, str(ROOT / "scripts" / "build_xtb_dataset.py"), "--source", str(source), "--out", str(out),
           "--shared", str(shared_data), "--shard-size", "1", "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(shard_paths(out) if out.exists() else []) < 4:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing half-written
    first = done_indices(out)
    assert len(first) >= 4
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} already done" in done.stderr
    assert done_indices(out) == set(range(8))
    reasons = {i: r for i, _, r in failures(out)}
    assert reasons[2] == "evaluation molecule" and "parse" in reasons[3]
    built = {m.index: m for p in shard_paths(out) for m in iter_shard(p)}
    assert set(built) == {0, 1, 4, 5, 6, 7}
    for m in built.values():
        assert m.mol.GetNumConformers() >= 1 and np.all(np.isfinite(m.energies))
        assert np.all(m.energies < 0)  # GFN2-xTB total energies in Hartree
    meta = json.loads(str(np.load(shard_paths(out)[0], allow_pickle=False)["meta"]))
    assert meta["protocol"]["xtb_level"] and "splits/geom_drugs/test_smiles.csv" in meta["excluded_sets"]
    assert meta["implementation"] == {"xtb_coords": "internal"}  # recorded, not part of the compared protocol
    assert all(np.load(p, allow_pickle=False)["pos"].dtype == np.int16 for p in shard_paths(out))  # milli-Angstrom


def test_quantized_shard_positions_are_int16_within_half_a_milli_angstrom(tmp_path):
    mol, e = _ensemble("CC(=O)Nc1ccc(O)cc1")
    buf = ShardBuffer()
    buf.add(0, "CC(=O)Nc1ccc(O)cc1", mol, e, e)
    path = write_shard(tmp_path, buf, {"protocol": "test", "source": "x.smi"}, quantize=True)
    with np.load(path, allow_pickle=False) as data:
        assert data["pos"].dtype == np.int16
    back = next(iter_shard(path)).mol
    for c_new, c_old in zip(back.GetConformers(), mol.GetConformers()):
        assert np.abs(c_new.GetPositions() - c_old.GetPositions()).max() <= 5.01e-4
    far = Chem.Mol(mol)  # a coordinate beyond +-32.7 A cannot be int16 milli-Angstrom: stored as float32
    far.GetConformer(0).SetAtomPosition(0, (40.0, 0.0, 0.0))
    buf = ShardBuffer()
    buf.add(0, "CC(=O)Nc1ccc(O)cc1", far, e, e)
    path = write_shard(tmp_path / "far", buf, {"protocol": "test", "source": "x.smi"}, quantize=True)
    with np.load(path, allow_pickle=False) as data:
        assert data["pos"].dtype == np.float32
    assert next(iter_shard(path)).mol.GetConformer(0).GetAtomPosition(0).x == pytest.approx(40.0)


def test_mmff_shards_are_read_in_kcal_per_mol_without_an_energy_window(tmp_path):
    """Shards that say their energies are MMFF94 kcal/mol get no 6 kcal/mol window, and Boltzmann weights in kcal."""
    mol, e = _ensemble("CCCCOC(=O)c1ccccc1CC(=O)NCC", n=4)
    kcal = np.array([0.0, 0.8, 9.0, 2.0])[:mol.GetNumConformers()]
    buf = ShardBuffer()
    buf.add(0, "CCCCOC(=O)c1ccccc1CC(=O)NCC", mol, kcal, kcal)
    write_shard(tmp_path / "s", buf, {"protocol": "test", "source": "x.smi", "energy_unit": "kcal/mol",
                                      "read_energy_window_kcal": None})
    stats: dict = {}
    recs = list(iter_molecules(tmp_path / "s", stats=stats))
    assert len(recs) == 1 and recs[0].num_confs == mol.GetNumConformers()  # 9 kcal/mol up is kept
    assert stats.get("outside_energy_window", 0) == 0
    w = np.array(recs[0].weights)
    expected = np.sort(np.exp(-kcal / (0.0019872 * 298.15)))[::-1]
    assert np.allclose(w, expected / expected.sum(), rtol=1e-3)  # kcal/mol, not Hartree


def test_mmff_build_writes_relative_kcal_energies_and_skips_evaluation_molecules(tmp_path, shared_data):
    source = tmp_path / "pool.smi"
    eval_smiles = "O=C1N[C@@H](Cc2ccccc2)[C@@H](c2ccco2)O1"  # geom_drugs_tora3d7 mol06 (an evaluation molecule)
    source.write_text("\n".join(["CCOC(=O)c1ccccc1", eval_smiles.replace("[C@@H]", "C"), "CCCCOCC(=O)N"]) + "\n")
    out = tmp_path / "mmff"
    cmd = [sys.executable, str(ROOT / "scripts" / "build_dataset.py"), "--protocol", "mmff", "--source", str(source),
           "--out", str(out), "--shared", str(shared_data), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {i: r for i, _, r in failures(out)} == {1: "evaluation molecule"}
    built = {m.index: m for p in shard_paths(out) for m in iter_shard(p)}
    assert set(built) == {0, 2}
    for m in built.values():
        assert 2 <= m.mol.GetNumConformers() <= 8
        assert m.energies.min() == 0.0 and np.all(m.energies >= 0)  # relative MMFF94 kcal/mol
    with np.load(shard_paths(out)[0], allow_pickle=False) as data:
        assert data["pos"].dtype == np.int16
        meta = json.loads(str(data["meta"]))
    assert meta["protocol"]["name"] == "etkdg-mmff-diverse" and meta["energy_unit"] == "kcal/mol"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "3 already done, building 0" in again.stderr
    xtb = subprocess.run(cmd[:2] + ["--protocol", "xtb"] + cmd[4:], env=env, capture_output=True, text=True, timeout=60)
    assert xtb.returncode == 2 and "another protocol" in xtb.stderr  # one directory, one protocol


def test_build_status_counts_conformers_both_as_stored_and_as_read_through_the_energy_window(tmp_path):
    """--status reports molecules with >= 8 conformers as stored and as confgen prepare reads them (6 kcal/mol)."""
    mol, e = _ensemble("CCCCCCOC(=O)c1ccccc1CCC(=O)NCCC", n=9)
    assert mol.GetNumConformers() == 9
    hartree = -60.0 + np.array([0.0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.02, 0.03])  # last two > 6 kcal/mol
    buf = ShardBuffer()
    buf.add(0, "CCCCCCOC(=O)c1ccccc1CCC(=O)NCCC", mol, hartree, e)
    # CPU-s recorded for molecule 7 too, which has no stored conformer (as for a molecule whose build failed)
    write_shard(tmp_path / "s", buf, {"protocol": "test", "source": "x.smi", "cpu_s": {"0": 12.5, "7": 2.5}})
    cmd = [sys.executable, str(ROOT / "scripts" / "build_dataset.py"), "--status", "--out", str(tmp_path / "s")]
    done = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 molecules, 9 conformers" in done.stdout and "1 molecules with >= 8 conformers;" in done.stdout
    assert "7 conformers, 0 molecules with >= 8 conformers" in done.stdout  # as read: 7 within 6 kcal/mol
    assert ("by outcome: >= 8 within the window 0 % (0 molecules), >= 8 stored, < 8 within the window 83 % "
            "(1 molecules), < 8 stored 0 % (0 molecules), failed or excluded 17 % (1 molecules)") in done.stdout
    assert "CPU-s per molecule with >= 8" not in done.stdout and "more, about" not in done.stdout  # none counts yet


def test_build_status_since_counts_only_new_shards_and_splits_cpu_by_minimiser(tmp_path):
    """--status --since REV counts only the shards REV does not hold; CPU-s is given per GFN2-xTB optimiser."""
    out = tmp_path / "s"
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(git + ["init", "-q"], check=True)
    xtb = {"name": "etkdg-mmff-diverse-xtb", "xtb_level": "vtight"}
    for index, (smiles, n, coords, cpu) in enumerate([("CCCCOC(=O)c1ccccc1", 3, None, 80.0),
                                                      ("CCCCCCOC(=O)c1ccccc1CCC(=O)NCCC", 9, "internal", 40.0)]):
        mol, e = _ensemble(smiles, n=n)
        buf = ShardBuffer()
        buf.add(index, smiles, mol, -60.0 + 0.0001 * np.arange(mol.GetNumConformers()), e)
        meta = {"protocol": xtb, "source": "x.smi", "read_energy_window_kcal": 6.0, "cpu_s": {str(index): cpu}}
        if coords:
            meta["implementation"] = {"xtb_coords": coords}
        write_shard(out, buf, meta)
        if index == 0:  # the first shard is committed; the second is new since that commit
            subprocess.run(git + ["add", "-A"], check=True)
            subprocess.run(git + ["commit", "-q", "-m", "first"], check=True)
    cmd = [sys.executable, str(ROOT / "scripts" / "build_dataset.py"), "--status", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    every = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert every.returncode == 0, every.stderr
    assert "2 molecules" in every.stdout and "median 60.0, mean 60.0 (2 attempted molecules)" in every.stdout
    assert "GFN2-xTB in cartesian coordinates: median 80.0, mean 80.0 (1 molecules)" in every.stdout
    assert "GFN2-xTB in internal coordinates: median 40.0, mean 40.0 (1 molecules)" in every.stdout
    # the CPU account: 120 CPU-s, a third on the molecule that counts toward the target (9 within the window)
    assert ">= 8 within the window 33 % (1 molecules)" in every.stdout and "< 8 stored 67 % (1 molecules)" in every.stdout
    assert "internal coordinates: 40.0 CPU-s per molecule with >= 8 within the window (1 of 1" in every.stdout
    assert "cartesian coordinates: " not in every.stdout.split("CPU spent")[1]  # none of its molecules counts
    assert "2999 more, about 33 CPU-h at the rate of GFN2-xTB in internal coordinates" in every.stdout
    new = subprocess.run(cmd + ["--since", "HEAD"], env=env, capture_output=True, text=True, timeout=120)
    assert new.returncode == 0, new.stderr
    assert "shards added since HEAD: 1" in new.stdout and "1 molecules, 9 conformers" in new.stdout
    assert "median 40.0, mean 40.0 (1 attempted molecules)" in new.stdout and "cartesian" not in new.stdout
    assert "GFN2-xTB in internal coordinates: median 40.0, mean 40.0 (1 molecules)" in new.stdout
    assert ">= 8 within the window 100 % (1 molecules)" in new.stdout and "more, about" not in new.stdout
    bad = subprocess.run(cmd + ["--since", "no-such-revision"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--since no-such-revision" in bad.stderr and "Traceback" not in bad.stderr
