"""DDP under torchrun: 2 CPU processes (gloo) train a few steps and end with identical weights."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from confgen.checkpoint import read_checkpoint
from confgen.data.dataset import load_shard, save_shard
from confgen.training import weights_digest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny_qm9"

WORKER = textwrap.dedent('''
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from confgen.config import load_config
    from confgen.training import train
    cfg = load_config(sys.argv[1], overrides=sys.argv[3:])
    res = train(cfg, sys.argv[2], device="cpu", progress=False)
    rank = os.environ["RANK"]
    with open(os.path.join(sys.argv[2] + ".ranks", f"rank{rank}.json"), "w") as fh:
        json.dump({"sha": res["weights_sha256"], "step": res["step"], "world": os.environ["WORLD_SIZE"]}, fh)
''')


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    data = tmp_path / "ds"
    data.mkdir()
    save_shard(data / "train_00000.pt", load_shard(TINY / "train_00000.pt")[:12])
    save_shard(data / "val_00000.pt", load_shard(TINY / "val_00000.pt")[:4])
    shutil.copy(TINY / "summary.json", data / "summary.json")
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "run"
    (tmp_path / "run.ranks").mkdir()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = torchrun + [str(worker), str(REPO / "configs" / "tiny_egnn.yaml"), str(out), f"data.path={data}",
                      "train.max_steps=5", "train.batch_size=3", "train.val_every=5", "model.hidden_dim=16",
                      "model.num_layers=2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / "run.ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == ["2", "2"]
    assert [r["step"] for r in ranks] == [5, 5]
    assert ranks[0]["sha"] == ranks[1]["sha"]
    # rank 0 wrote the checkpoint, holding the same weights; the initial weights were trained
    ckpt = read_checkpoint(out / "last.pt")
    assert ckpt["step"] == 5
    from confgen.checkpoint import model_from_checkpoint
    assert weights_digest(model_from_checkpoint(ckpt, weights="raw_model")) == ranks[0]["sha"]
    assert ckpt["trained_on"]["n_train_conformers"] == 12
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "config.yaml", "last.pt", "log.csv"]
