import csv
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem

from confgen.cli import main
from confgen.data.dataset import ConformerDataset, load_shard

from geom_fixture import build_rdkit_folder, load_train10

TRAIN10_PKL = "geom_drugs_train10/true_conformers_train_first_10smis.pkl"
TEST_SPLIT = "splits/geom_drugs/test_smiles.csv"
REPO = Path(__file__).resolve().parents[1]


def _nostereo(mol_or_smiles):
    mol = Chem.MolFromSmiles(mol_or_smiles) if isinstance(mol_or_smiles, str) else Chem.RemoveHs(mol_or_smiles)
    return Chem.MolToSmiles(mol, isomericSmiles=False) if mol is not None else None


def _graphs(directory, split=None):
    out = []
    for shard in sorted(Path(directory).glob(f"{split or '*'}_*.pt")):
        out.extend((shard.name.split("_")[0], g) for g in load_shard(shard))
    return out


def _no_leftovers(parent: Path, name: str):
    return not any(p.name.startswith(name + ".tmp-") or p.name.startswith(name + ".old-") for p in parent.iterdir())


def test_prepare_end_to_end_with_exclusion(tmp_path, shared_data, capsys):
    train10 = load_train10(shared_data)
    test_set = set()
    with open(shared_data / TEST_SPLIT) as fh:
        for row in csv.DictReader(fh):
            test_set.add(_nostereo(row["smiles"]))
    # which train10 molecules are in the test split, and their conformer counts (majority graph), independently
    in_test = {k for k, mols in train10.items() if _nostereo(mols[0]) in test_set}
    assert len(in_test) == 1
    n_conf = {k: Counter(_nostereo(m) for m in mols).most_common(1)[0][1] for k, mols in train10.items()}

    out = tmp_path / "ds"
    rc = main(["prepare", str(shared_data / TRAIN10_PKL), "-o", str(out), "--exclude", str(shared_data / TEST_SPLIT),
               "--val-fraction", "0.3", "--seed", "1", "--no-progress", "--shard-confs", "100"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["excluded"] == 1
    assert summary["n_molecules"] == 9
    assert summary["n_conformers"] == sum(v for k, v in n_conf.items() if k not in in_test)
    assert summary["n_skipped"] == 0 and summary["skipped"] == []
    graphs = _graphs(out)
    assert len(graphs) == 9 and sum(g.conformers.shape[0] for _, g in graphs) == summary["n_conformers"]
    assert len(list(out.glob("*.pt"))) == summary["splits"]["train"]["n_shards"] + summary["splits"]["val"]["n_shards"]
    assert summary["splits"]["train"]["n_shards"] >= 3  # about 100 conformers a shard
    # the excluded molecule never reaches the dataset
    assert not any(_nostereo(g.smiles) in test_set for _, g in graphs)
    # split by molecule: counts match the shards, both splits used
    for split in ("train", "val"):
        gs = [g for s, g in graphs if s == split]
        assert summary["splits"][split]["n_molecules"] == len(gs) > 0
        assert summary["splits"][split]["n_conformers"] == sum(g.conformers.shape[0] for g in gs)
        assert len(ConformerDataset(out, split)) == summary["splits"][split]["n_conformers"]
    for _, g in graphs:
        assert g.conformers.shape[1] == g.num_nodes and torch.isfinite(g.conformers).all()
        assert g.weights.shape == (g.conformers.shape[0],) and float(g.weights.sum()) == pytest.approx(1.0, abs=1e-5)
    # provenance
    prov = summary["trained_on"]
    assert prov["exclude"][0]["path"].endswith("test_smiles.csv") and len(prov["exclude"][0]["sha256"]) == 64
    assert prov["sources"][0]["format"] == "pickle" and len(prov["sources"][0]["sha256"]) == 64
    assert prov["seed"] == 1 and prov["val_fraction"] == 0.3
    assert _no_leftovers(tmp_path, "ds")

    # same seed -> same split; the split is by molecule
    out2 = tmp_path / "ds2"
    assert main(["prepare", str(shared_data / TRAIN10_PKL), "-o", str(out2), "--exclude",
                 str(shared_data / TEST_SPLIT), "--val-fraction", "0.3", "--seed", "1", "--no-progress",
                 "--workers", "2"]) == 0
    split_of = lambda d: sorted((s, g.smiles) for s, g in _graphs(d))  # noqa: E731
    assert split_of(out) == split_of(out2)
    # existing output is not overwritten without --overwrite
    assert main(["prepare", str(shared_data / TRAIN10_PKL), "-o", str(out), "--no-progress"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["prepare", str(shared_data / TRAIN10_PKL), "-o", str(out), "--no-progress", "--overwrite",
                 "--val-fraction", "0"]) == 0
    assert json.loads((out / "summary.json").read_text())["splits"]["val"]["n_molecules"] == 0
    assert _no_leftovers(tmp_path, "ds")


def test_prepare_rdkit_folder_filters(tmp_path, shared_data):
    root = build_rdkit_folder(tmp_path / "rdkit_folder", shared_data)
    keys = list(json.loads((root / "summary_drugs.json").read_text()))
    heavy = {k: Chem.MolFromSmiles(k).GetNumHeavyAtoms() for k in keys}
    out = tmp_path / "ds"
    rc = main(["prepare", str(root), "-o", str(out), "--max-confs", "4", "--max-heavy-atoms", "25", "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    expected = [k for k in keys if heavy[k] <= 25]
    assert summary["n_molecules"] == len(expected) and summary["filtered"]["heavy_atoms"] == len(keys) - len(expected)
    graphs = [g for _, g in _graphs(out)]
    assert sorted(_nostereo(g.smiles) for g in graphs) == sorted(_nostereo(k) for k in expected)
    assert all(g.conformers.shape[0] == 4 for g in graphs)
    # weights are the four highest GEOM Boltzmann weights, renormalised, highest first
    for g in graphs:
        w = g.weights.numpy()
        assert np.all(np.diff(w) <= 1e-7) and w.sum() == pytest.approx(1.0, abs=1e-5)


def test_prepare_bad_inputs_reported_one_line_each(tmp_path, shared_data, capsys):
    marker = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "hostile.pkl").write_bytes(pickle.dumps({"CCO": Hostile()}))
    (bad / "corrupt.pkl").write_bytes(b"\x80\x04\x95garbage")
    (bad / "empty.sdf").write_bytes(b"")
    (bad / "mols.xyz").write_text("3\n\nO 0 0 0\n")
    smi = bad / "mols.smi"
    smi.write_text("CCO ethanol\nC1CC broken_ring\n[Na+].[Cl-] salt\n[H][H] dihydrogen\nc1ccccc1O phenol\n")
    out = tmp_path / "ds"
    sources = [bad / "missing.sdf", bad / "hostile.pkl", bad / "corrupt.pkl", bad / "empty.sdf", bad / "mols.xyz",
               shared_data / TRAIN10_PKL]
    rc = main(["prepare", *map(str, sources), "--from-smiles", str(smi), "-o", str(out), "--no-progress",
               "--ensemble", "etkdg", "--ensemble-confs", "2", "--ensemble-oversample", "1"])
    err = capsys.readouterr().err
    assert rc == 1  # whole sources failed
    assert not marker.exists()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "skipped" in ln and "wrote" not in ln]
    expect = {
        "missing.sdf": "no such file", "hostile.pkl": "unsafe pickle", "corrupt.pkl": "corrupted",
        "empty.sdf": "empty file", "mols.xyz": "unknown format", "mols.smi:2": "invalid SMILES",
        "mols.smi:3": "unsupported element Na", "mols.smi:4": "no heavy atoms",
    }
    for needle, msg in expect.items():
        hits = [ln for ln in lines if needle in ln]
        assert len(hits) == 1 and msg in hits[0], (needle, lines)
    assert len(lines) == len(expect)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_skipped"] == len(expect)
    assert sorted(Path(s).name for s in summary["failed_sources"]) == sorted(
        ["missing.sdf", "hostile.pkl", "corrupt.pkl", "empty.sdf", "mols.xyz"])
    # the good inputs are all there: 10 GEOM molecules + ethanol + phenol with built conformers
    names = Counter(_nostereo(g.smiles) for _, g in _graphs(out))
    assert names["CCO"] == 1 and names["Oc1ccccc1"] == 1 and summary["n_molecules"] == 12
    assert all(g.conformers.shape[0] >= 1 for _, g in _graphs(out))


def test_nothing_usable_leaves_nothing(tmp_path, capsys):
    empty = tmp_path / "empty.smi"
    empty.write_text("# nothing here\n")
    out = tmp_path / "ds"
    assert main(["prepare", str(empty), str(tmp_path / "nope.pkl"), "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "nothing usable was read" in err and "Traceback" not in err
    assert not out.exists() and _no_leftovers(tmp_path, "ds")
    # a missing exclusion file is an error before anything is written
    assert main(["prepare", str(empty), "-o", str(out), "--exclude", str(tmp_path / "x.smi"), "--no-progress"]) == 1
    assert "x.smi: no such file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [empty]


def test_interrupted_run_leaves_nothing(tmp_path, shared_data, monkeypatch, capsys):
    import confgen.prepare as prep

    calls = []

    def interrupted(path, graphs):
        calls.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(prep, "save_shard", interrupted)
    out = tmp_path / "ds"
    assert main(["prepare", str(shared_data / TRAIN10_PKL), "-o", str(out), "--no-progress"]) == 130
    assert calls and not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_subprocess_and_sigterm(tmp_path, shared_data):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "ds"
    proc = subprocess.run([sys.executable, "-m", "confgen", "prepare", str(shared_data / TRAIN10_PKL), "-o",
                           str(out), "--max-confs", "2", "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and json.loads((out / "summary.json").read_text())["n_conformers"] == 20
    # SIGTERM while building ensembles: the temporary directory is removed, no dataset appears
    smi = tmp_path / "many.smi"
    with open(shared_data / "splits/geom_drugs/train_pool_smiles.smi") as fh:
        smi.write_text("".join(next(fh) for _ in range(200)))
    out2 = tmp_path / "ds2"
    p = subprocess.Popen([sys.executable, "-m", "confgen", "prepare", "--from-smiles", str(smi), "-o", str(out2),
                          "--no-progress"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(x.name.startswith("ds2.tmp-") for x in tmp_path.iterdir()):
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not out2.exists() and _no_leftovers(tmp_path, "ds2")
