"""Training: overfitting lowers the loss, checkpoints round-trip, resume is exact, bad input is reported."""

import copy
import csv
import math
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch

from confgen.checkpoint import load_model, read_checkpoint, save_checkpoint
from confgen.cli import main as cli_main
from confgen.config import Config, load_config
from confgen.data.dataset import conformer, load_shard, save_shard
from confgen.errors import ConfgenError
from confgen.models import build_model
from confgen.training import train

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny_qm9"


pytestmark = pytest.mark.usefixtures("one_thread")


def _small_dataset(tmp_path: Path, n_train: int = 8, n_val: int = 4) -> Path:
    d = tmp_path / "ds"
    d.mkdir()
    save_shard(d / "train_00000.pt", load_shard(TINY / "train_00000.pt")[:n_train])
    save_shard(d / "val_00000.pt", load_shard(TINY / "val_00000.pt")[:n_val])
    (d / "summary.json").write_text((TINY / "summary.json").read_text())
    return d


def _config(data: Path, **train) -> Config:
    cfg = load_config(REPO / "configs" / "tiny_egnn.yaml")
    cfg.data.path = str(data)
    cfg.model.hidden_dim = 16
    cfg.model.num_layers = 2
    cfg.train.batch_size = 4
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def _fixed_loss(model, graphs, seed=0, weighting="sigma2", sigma_range=(0.0, math.inf)) -> float:
    from confgen.losses import dsm_loss
    from confgen.noise import perturb
    batch = Batch.from_data_list([conformer(g, 0) for g in graphs])
    pos = torch.cat([g.conformers[0] for g in graphs])
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    levels = [s for s in model.sigmas[::5] if sigma_range[0] <= s <= sigma_range[1]]
    with torch.no_grad():
        for sigma in levels:
            sig = torch.full((pos.shape[0],), float(sigma))
            x, eps = perturb(pos, sig, batch.batch, batch.num_graphs, generator=g)
            total += float(dsm_loss(model(batch, x, sig), eps, sig, batch.batch, batch.num_graphs,
                                    weighting=weighting, sigma_data=model.sigma_data))
    return total / len(levels)


def test_overfitting_a_tiny_set_lowers_the_loss(tmp_path):
    data = _small_dataset(tmp_path)
    cfg = _config(data, max_steps=100, lr=5e-3, warmup_steps=5, val_every=50, ckpt_every=0, ema_decay=0.9)
    torch.manual_seed(cfg.train.seed)
    before = _fixed_loss(build_model(cfg).eval(), load_shard(data / "train_00000.pt"))
    res = train(cfg, tmp_path / "run", progress=False, device="cpu")
    assert res["finished"] and res["step"] == 100
    after = _fixed_loss(load_model(tmp_path / "run" / "last.pt"), load_shard(data / "train_00000.pt"))
    print("fixed-noise DSM loss before / after", before, after)
    assert after < 0.75 * before, (before, after)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(r["step"]) for r in rows][-1] == 100
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    best = read_checkpoint(tmp_path / "run" / "best.pt")
    assert best["metrics"]["best_val_loss"] == pytest.approx(min(float(r["val_loss"]) for r in rows if r["val_loss"]),
                                                             rel=1e-5)
    assert best["trained_on"]["n_train_conformers"] == 8
    assert "optimizer" not in best and "raw_model" not in best  # best.pt: inference weights only
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    assert {"optimizer", "scheduler", "raw_model", "ema", "rng", "version", "config"} <= set(last)
    assert best["trained_on"]["excluded"]["files"]


@pytest.mark.parametrize("backbone", ["egnn", "clofnet"])
def test_edm_training_lowers_the_edm_loss_and_round_trips(tmp_path, backbone):
    """configs/tiny_edm.yaml's EDM path (preconditioning, log-normal sigma, EDM weighting) learns."""
    data = _small_dataset(tmp_path)
    cfg = load_config(REPO / "configs" / "tiny_edm.yaml")
    cfg.data.path = str(data)
    cfg.model.backbone, cfg.model.hidden_dim, cfg.model.num_layers = backbone, 16, 2
    for k, v in dict(batch_size=4, max_steps=100, lr=5e-3, warmup_steps=5, val_every=50, ckpt_every=0,
                     ema_decay=0.9).items():
        setattr(cfg.train, k, v)
    torch.manual_seed(cfg.train.seed)
    graphs = load_shard(data / "train_00000.pt")
    untrained = build_model(cfg).eval()
    ranges = ((0.0, math.inf), (0.2, 3.0))
    before = [_fixed_loss(untrained, graphs, weighting="edm", sigma_range=r) for r in ranges]
    train(cfg, tmp_path / "run", progress=False, device="cpu")
    model = load_model(tmp_path / "run" / "best.pt")
    assert model.precond == "edm" and model.sigma_data == pytest.approx(1.3)
    assert model.config.noise.distribution == "lognormal" and model.config.noise.weighting == "edm"
    after = [_fixed_loss(model, graphs, weighting="edm", sigma_range=r) for r in ranges]
    print("EDM loss (all levels; 0.2-3 A) before / after", before, after)
    # 100 steps learn where the log-normal puts its mass (0.2-3 A: the loss falls by about a third there); the
    # largest levels keep an irreducible error (the structure from almost pure noise), the smallest are rarely
    # drawn
    assert after[0] < 0.95 * before[0] and after[1] < 0.8 * before[1], (before, after)


def test_resume_is_exact(tmp_path):
    data = _small_dataset(tmp_path, n_train=10)
    cfg = _config(data, max_steps=12, val_every=5, ckpt_every=0, batch_size=3)
    train(cfg, tmp_path / "straight", progress=False, device="cpu")
    r1 = train(cfg, tmp_path / "resumed", progress=False, device="cpu", stop_after=7)
    assert not r1["finished"] and r1["step"] == 7
    with pytest.raises(ConfgenError, match="already holds"):
        train(cfg, tmp_path / "resumed", progress=False, device="cpu")
    r2 = train(cfg, tmp_path / "resumed", resume=True, progress=False, device="cpu")
    assert r2["finished"] and r2["step"] == 12
    a = read_checkpoint(tmp_path / "straight" / "last.pt")
    b = read_checkpoint(tmp_path / "resumed" / "last.pt")
    for key in ("raw_model", "model"):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), (key, k)
    assert a["metrics"]["val_loss"] == b["metrics"]["val_loss"]


def test_checkpoint_round_trip_gives_identical_scores(tmp_path):
    cfg = Config()
    cfg.model.backbone = "clofnet"
    cfg.model.hidden_dim = 24
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    save_checkpoint(tmp_path / "m.pt", {"config": cfg.to_dict(), "model": model.state_dict(), "version": "x"})
    loaded = load_model(tmp_path / "m.pt")
    graphs = load_shard(TINY / "val_00000.pt")[:3]
    batch = Batch.from_data_list([conformer(g, 0) for g in graphs])
    pos = torch.cat([g.conformers[0] for g in graphs])
    sig = torch.full((pos.shape[0],), 0.3)
    with torch.no_grad():
        assert torch.equal(model(batch, pos, sig), loaded(batch, pos, sig))
    assert loaded.config == cfg


def test_cli_train_tiny_config_and_errors(tmp_path, capsys):
    data = _small_dataset(tmp_path)
    out = tmp_path / "cli"
    rc = cli_main(["train", str(REPO / "configs" / "tiny_clofnet.yaml"), "--out", str(out), "--device", "cpu",
                   "--no-progress", "--set", f"data.path={data}", "--set", "train.max_steps=6",
                   "--set", "model.hidden_dim=16"])
    assert rc == 0
    m = load_model(out / "best.pt")
    assert m.backbone_name == "clofnet" and not math.isnan(m.metrics["val_loss"])
    rc = cli_main(["train", str(REPO / "configs" / "tiny_clofnet.yaml"), "--out", str(tmp_path / "x"),
                   "--set", f"data.path={tmp_path / 'missing'}", "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "missing" in err and "does not exist" in err and "Traceback" not in err


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    import confgen.training.step as train_mod

    data = _small_dataset(tmp_path)
    cfg = _config(data, max_steps=10, ckpt_every=2, val_every=0)
    calls = {"n": 0}
    real = train_mod.dsm_loss

    def nan_after_five(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 5 else loss

    monkeypatch.setattr(train_mod, "dsm_loss", nan_after_five)
    with pytest.raises(ConfgenError, match=r"loss became nan at step 5.*last good checkpoint"):
        train(cfg, tmp_path / "run", progress=False, device="cpu")
    kept = read_checkpoint(tmp_path / "run" / "last.pt")
    assert kept["step"] == 4
    for v in kept["raw_model"].values():
        assert torch.isfinite(v).all()


def test_load_model_without_default_is_a_clear_error(monkeypatch):
    import confgen.checkpoint as ckpt_mod
    monkeypatch.setattr(ckpt_mod, "default_checkpoint_path", lambda: None)  # a build without the weights
    with pytest.raises(ConfgenError, match="no default model"):
        load_model(None)


def test_out_of_memory_names_the_batch_size(tmp_path, monkeypatch):
    from confgen.models.score_net import ScoreModel

    def oom(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    data = _small_dataset(tmp_path)
    cfg = _config(data, max_steps=3)
    monkeypatch.setattr(ScoreModel, "forward", oom)
    with pytest.raises(ConfgenError, match=r"out of memory on a batch of 4 conformers .*train\.batch_size=2"):
        train(cfg, tmp_path / "run", progress=False, device="cpu")


def test_resume_refuses_a_different_model(tmp_path):
    data = _small_dataset(tmp_path)
    cfg = _config(data, max_steps=4)
    train(cfg, tmp_path / "run", progress=False, device="cpu", stop_after=2)
    cfg.model.hidden_dim = 8
    with pytest.raises(ConfgenError, match="'model' section of the config differs"):
        train(cfg, tmp_path / "run", resume=True, progress=False, device="cpu")
    with pytest.raises(ConfgenError, match="nothing to resume"):
        train(cfg, tmp_path / "other", resume=True, progress=False, device="cpu")


def test_resume_refuses_other_data_or_optimiser_settings_but_may_run_longer(tmp_path):
    data = _small_dataset(tmp_path)
    cfg = _config(data, max_steps=4)
    train(cfg, tmp_path / "run", progress=False, device="cpu", stop_after=2)
    changed = copy.deepcopy(cfg)
    changed.train.lr *= 2
    changed.data.max_confs = 1
    with pytest.raises(ConfgenError, match=r"data\.max_confs \(.*\), train\.lr \(.* -> .*\) differ"):
        train(changed, tmp_path / "run", resume=True, progress=False, device="cpu")
    longer = copy.deepcopy(cfg)
    longer.train.max_steps = 6
    train(longer, tmp_path / "run", resume=True, progress=False, device="cpu")
    assert read_checkpoint(tmp_path / "run" / "last.pt")["step"] == 6


def test_init_from_starts_from_the_checkpoint_weights(tmp_path):
    data = _small_dataset(tmp_path)
    cfg = _config(data, max_steps=3, val_every=0, ckpt_every=0)
    train(cfg, tmp_path / "base", progress=False, device="cpu")
    base = read_checkpoint(tmp_path / "base" / "best.pt")
    tuned_cfg = _config(data, max_steps=1, val_every=0, ckpt_every=0, lr=0.0, warmup_steps=0, seed=123,
                        init_from=str(tmp_path / "base" / "best.pt"))
    train(tuned_cfg, tmp_path / "tuned", progress=False, device="cpu")
    tuned = read_checkpoint(tmp_path / "tuned" / "best.pt")
    for k, v in base["model"].items():
        assert torch.allclose(v, tuned["model"][k]), k  # lr 0: weights stay those it started from
    assert tuned["trained_on"]["init_from"]["path"] == str(tmp_path / "base" / "best.pt")
    assert tuned["trained_on"]["init_from"]["trained_on"] == base["trained_on"]
    assert tuned["trained_on"]["init_from"]["changed"] == []
    other = _config(data, init_from=str(tmp_path / "base" / "best.pt"))
    other.model.hidden_dim = 8
    with pytest.raises(ConfgenError, match=r"init_from: model\.hidden_dim"):
        train(other, tmp_path / "other", progress=False, device="cpu")


def test_init_from_turns_an_eps_model_into_an_edm_one(tmp_path):
    data = _small_dataset(tmp_path)
    train(_config(data, max_steps=2, val_every=0, ckpt_every=0), tmp_path / "base", progress=False,
          device="cpu")
    cfg = _config(data, max_steps=1, val_every=0, ckpt_every=0, lr=0.0, warmup_steps=0,
                  init_from=str(tmp_path / "base" / "best.pt"))
    cfg.model.precond = "edm"
    cfg.noise.distribution = "lognormal"
    train(cfg, tmp_path / "edm", progress=False, device="cpu")
    base = read_checkpoint(tmp_path / "base" / "best.pt")
    tuned = read_checkpoint(tmp_path / "edm" / "best.pt")
    assert tuned["config"]["model"]["precond"] == "edm"
    assert all(torch.equal(v, tuned["model"][k]) for k, v in base["model"].items())
    assert tuned["trained_on"]["init_from"]["changed"] == [
        "model.precond (eps -> edm)", "noise.distribution (levels -> lognormal)"]
