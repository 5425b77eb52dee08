"""Large libraries (confgen.library, ``confgen sample --resume / --shard / --backend``): the output of a chunked,
multi-worker, sharded, interrupted-and-resumed or Dask run is byte for byte the output of one in-process run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rdkit import Chem

from confgen.errors import ConfgenError
from confgen.generation import GenerationRequest, generate_conformers
from confgen.io import PROP_INDEX, AtomicSDFWriter, count_inputs, iter_inputs, read_inputs, read_sdf_conformers
from confgen.library import RunOptions, parse_shard, progress_path, sample_library

from sample_models import TINY_OVERRIDES, TINY_PRESET, tiny_checkpoint

TINY_ARGS = ["--preset=fast"] + [f"--preset-override={k}={v}" for k, v in TINY_OVERRIDES.items()]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def library(tmp_path_factory, request) -> Path:
    """The first 14 GEOM-Drugs training-pool SMILES plus two bad lines (a broken SMILES, an unsupported element)."""
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    pool = shared / "splits" / "geom_drugs" / "train_pool_smiles.smi"
    if not pool.is_file():
        pytest.skip(f"shared reference data not found at {shared}")
    lines = pool.read_text().splitlines()[:14]
    lines.insert(3, "C1CC broken")
    lines.insert(9, "CC[Te]CC telluride")
    path = tmp_path_factory.mktemp("library") / "library.smi"
    path.write_text("\n".join(lines) + "\n")
    return path


def _options(**kw):
    base = dict(seed=11, num_confs=2, model=tiny_checkpoint(), preset="fast", preset_overrides=TINY_OVERRIDES,
                relax="mmff")
    base.update(kw)
    return RunOptions(**base)


@pytest.fixture(scope="module")
def reference(library, tmp_path_factory) -> bytes:
    """One in-process generate_conformers call on every record, written with AtomicSDFWriter (no chunks)."""
    torch.set_num_threads(1)
    records = read_inputs(library, errors=[])
    opts = _options()
    request = GenerationRequest([r.mol for r in records], 2, model=opts.model, preset=TINY_PRESET, seed=opts.seed,
                                progress=False, workers=1, ids=[r.index for r in records],
                                sources=[r.source for r in records])
    mols = generate_conformers(request, errors=[])
    out = tmp_path_factory.mktemp("ref") / "ref.sdf"
    with AtomicSDFWriter(out) as w:
        for rec, mol in zip(records, mols):
            if mol is not None:
                w.write_conformers(mol, name=rec.name, smiles=rec.smiles, index=rec.index)
    return out.read_bytes()


def test_input_windows_and_counting(library):
    every = list(iter_inputs(library))
    assert count_inputs(library) == len(every) == 16
    bad = [str(e) for e in every if isinstance(e, ConfgenError)]
    assert len(bad) == 2 and bad[0].startswith("library.smi:4 'C1CC': invalid SMILES")
    assert bad[1].startswith("library.smi:10 'CC[Te]CC': unsupported element Te")
    window = list(iter_inputs(library, start=3, stop=10))
    assert len(window) == 7 and isinstance(window[0], ConfgenError) and isinstance(window[-1], ConfgenError)
    assert [r.index for r in window if not isinstance(r, ConfgenError)] == [4, 5, 6, 7, 8]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(ConfgenError, match="--shard"):
            parse_shard(bad)


def test_cli_bad_shard_and_missing_extra_are_one_line(library, tmp_path, capsys, monkeypatch):
    from confgen.cli import main

    out = tmp_path / "out.sdf"
    assert main(["sample", str(library), "-o", str(out), "--shard", "5/4", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shard '5/4'" in err and not out.exists()
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the dask extra were not installed
    code = main(["sample", str(library), "-o", str(out), "--backend", "dask", "--seed", "1", "--no-progress",
                 "--model", tiny_checkpoint(), *TINY_ARGS])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "pip install 'confgen[dask]'" in err
    assert sorted(os.listdir(tmp_path)) == []  # nothing written


def test_chunks_workers_and_shards_give_the_file_of_one_run(library, reference, tmp_path):
    log = []
    whole = tmp_path / "whole.sdf"
    rep = sample_library(library, whole, _options(), chunk_size=3, workers=2, log=log.append)
    assert rep.complete and rep.failed == 2 and rep.molecules == 14 and rep.conformers == 28
    assert whole.read_bytes() == reference
    assert not progress_path(whole).exists() and sorted(os.listdir(tmp_path)) == ["whole.sdf"]
    errors = [ln for ln in log if ln.startswith("error")]
    assert len(errors) == 2 and errors[0].startswith("error: library.smi:4 'C1CC': invalid SMILES")
    assert errors[1].startswith("error: library.smi:10 'CC[Te]CC': unsupported element Te")
    # the model is loaded once per worker process, not once per chunk
    assert len(rep.workers) == 2 and all(w["model_loads"] == 1 for w in rep.workers.values())
    assert sum(w["chunks"] for w in rep.workers.values()) == 6
    # 4 shards (a job array), each with other chunk sizes, concatenated in shard order
    parts = []
    for k in range(1, 5):
        out = tmp_path / f"shard{k}.sdf"
        rep = sample_library(library, out, _options(), shard=(k, 4), chunk_size=k, workers=1)
        assert rep.complete and (rep.start, rep.stop) == ((k - 1) * 4, k * 4)
        parts.append(out.read_bytes())
    assert b"".join(parts) == reference
    indices = [m.GetIntProp(PROP_INDEX) for m in read_sdf_conformers(whole)]
    assert indices == sorted(indices) and len(set(indices)) == 14


def test_resume_checks_the_run_and_cuts_a_half_written_chunk(library, reference, tmp_path):
    out = tmp_path / "out.sdf"
    rep = sample_library(library, out, _options(), chunk_size=4, workers=1)
    assert rep.complete
    # simulate a driver killed (SIGKILL) while appending chunk 3: progress file at chunk 2, half a chunk after it
    records = reference.split(b"$$$$\n")
    keep = sum(len(r) + 5 for r in records[:14])  # inputs 0-7: 7 molecules (input 3 is bad), 2 conformers each
    state = {"format": 1, "next_index": 8, "bytes": keep,
             "totals": {"conformers": 14, "molecules": 7, "failed": 1, "counters": {}}}
    from confgen.library.state import fingerprint

    state["run"] = fingerprint(library, _options(), (1, 1), 16)
    out.write_bytes(reference[:keep] + reference[keep:keep + 700])  # a torn record
    progress_path(out).write_text(json.dumps(state))
    with pytest.raises(ConfgenError, match="pass --resume"):
        sample_library(library, out, _options(), chunk_size=4)
    with pytest.raises(ConfgenError, match="cannot resume: num_confs, seed differ"):
        sample_library(library, out, _options(seed=12, num_confs=3), resume=True)
    rep = sample_library(library, out, _options(), chunk_size=5, workers=2, resume=True)
    assert rep.complete and rep.resumed_from == 8 and rep.molecules == 14 and rep.failed == 2
    assert out.read_bytes() == reference and not progress_path(out).exists()
    log = []
    rep = sample_library(library, out, _options(), resume=True, log=log.append)  # completed: nothing to do
    assert rep.complete and "nothing to resume" in log[0] and out.read_bytes() == reference


def test_dask_backend_on_a_local_cluster_of_two_workers(library, reference, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "dask.sdf"
    rep = sample_library(library, out, _options(), chunk_size=2, workers=2, backend="dask")
    assert rep.complete and out.read_bytes() == reference
    assert len(rep.workers) == 2 and all(w["model_loads"] == 1 for w in rep.workers.values())


# ---------------------------------------------------------------- interruptions, as users do them (subprocesses)
def _cli(library, out, *extra):
    cmd = [sys.executable, "-m", "confgen", "sample", str(library), "-o", str(out), "-n", "2", "--seed", "11",
           "--model", tiny_checkpoint(), "--no-progress", "--chunk-size", "1", *TINY_ARGS, *extra]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_progress(proc, out, beyond: int, timeout=240.0) -> int:
    """Wait until the progress file records more than ``beyond`` input records; return that number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            done = json.loads(progress_path(out).read_text())["next_index"]
            if done > beyond:
                return done
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("no progress")


def _valid_prefix(out, reference: bytes) -> None:
    data = out.read_bytes()
    assert reference.startswith(data) and (not data or data.endswith(b"$$$$\n"))
    assert all(m is not None for m in Chem.SDMolSupplier(str(out), removeHs=False))


def _stops_within(proc, seconds: float) -> str:
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < seconds, err
    assert "Traceback" not in err, err
    return err


def test_interrupted_twice_and_a_killed_worker_then_resumed(library, reference, tmp_path):
    psutil = pytest.importorskip("psutil")
    big = tmp_path / "library.smi"  # four copies: enough work to interrupt in the middle
    big.write_text(library.read_text() * 4)
    ref = tmp_path / "ref.sdf"
    assert sample_library(big, ref, _options(), chunk_size=16, workers=1).complete
    reference = ref.read_bytes()
    out = tmp_path / "out.sdf"

    proc = _cli(big, out, "--workers", "2")
    _wait_for_progress(proc, out, 0)
    proc.send_signal(signal.SIGINT)
    err = _stops_within(proc, 10)
    assert proc.returncode == 130 and "interrupted (SIGINT)" in err and "--resume" in err
    _valid_prefix(out, reference)
    assert sorted(os.listdir(tmp_path)) == ["library.smi", "out.sdf", "out.sdf.resume.json", "ref.sdf"]

    proc = _cli(big, out, "--workers", "1", "--resume")
    _wait_for_progress(proc, out, json.loads(progress_path(out).read_text())["next_index"])
    proc.send_signal(signal.SIGTERM)
    err = _stops_within(proc, 10)
    assert proc.returncode == 143 and "interrupted (SIGTERM)" in err
    _valid_prefix(out, reference)

    resumed_at = json.loads(progress_path(out).read_text())["next_index"]  # chunks may have finished after SIGTERM
    proc = _cli(big, out, "--workers", "2", "--resume")
    _wait_for_progress(proc, out, resumed_at)  # a chunk of this run was committed: its workers are running
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if p.ppid() != proc.pid]
    assert workers, "no worker processes found"
    workers[0].kill()  # SIGKILL one worker (out-of-memory killer, node failure)
    err = _stops_within(proc, 30)
    assert proc.returncode == 1 and "worker process died" in err and "--resume" in err
    _valid_prefix(out, reference)

    proc = _cli(big, out, "--workers", "2", "--resume")
    err = _stops_within(proc, 600)
    assert proc.returncode == 1 and "resumed at input record" in err  # 1: the bad input lines
    assert out.read_bytes() == reference
    assert sorted(os.listdir(tmp_path)) == ["library.smi", "out.sdf", "ref.sdf"]
