"""The checkpoint format (confgen.checkpoint): payload assembly, random states, provenance, atomic round trip."""

import random

import pytest
import torch

from confgen.checkpoint import (
    CHECKPOINT_FORMAT,
    dataset_provenance,
    inference_payload,
    model_from_checkpoint,
    read_checkpoint,
    restore_rng,
    save_checkpoint,
    training_payload,
)
from confgen.config import Config
from confgen.errors import ConfgenError
from confgen.models import build_model


def _model():
    cfg = Config()
    cfg.model.hidden_dim, cfg.model.num_layers = 8, 1
    torch.manual_seed(0)
    return cfg, build_model(cfg)


def test_payloads_hold_the_documented_keys_and_round_trip(tmp_path):
    cfg, model = _model()
    inf = inference_payload(version="9.9", config=cfg.to_dict(), weights=model.state_dict(), trained_on={"a": 1},
                            metrics={"val_loss": 0.5}, step=7, epoch=1)
    assert list(inf) == ["version", "config", "model", "trained_on", "metrics", "step", "epoch"]
    opt = torch.optim.AdamW(model.parameters())
    full = training_payload(inf, raw_weights=model.state_dict(), ema_decay=0.99, ema_updates=7,
                            optimizer=opt.state_dict(), scheduler={"last_epoch": 7})
    assert set(full) - set(inf) == {"raw_model", "ema", "optimizer", "scheduler", "rng"}
    assert full["ema"]["shadow"] is full["model"] and full["ema"]["num_updates"] == 7
    save_checkpoint(tmp_path / "sub" / "last.pt", full)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["last.pt"]  # no temp file left
    ck = read_checkpoint(tmp_path / "sub" / "last.pt")
    assert ck["format"] == CHECKPOINT_FORMAT and ck["step"] == 7
    loaded = model_from_checkpoint(ck)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert loaded.config == cfg and loaded.trained_on == {"a": 1} and loaded.checkpoint_version == "9.9"
    torch.save({"format": "other"}, tmp_path / "x.pt")
    with pytest.raises(ConfgenError, match="not a confgen checkpoint"):
        read_checkpoint(tmp_path / "x.pt")


def test_restore_rng_repeats_the_random_streams(tmp_path):
    _, model = _model()
    inf = inference_payload(version="x", config={}, weights={}, trained_on={}, metrics={}, step=0, epoch=0)
    torch.manual_seed(3)
    random.seed(3)
    payload = training_payload(inf, raw_weights=model.state_dict(), ema_decay=0.0, ema_updates=0, optimizer={},
                               scheduler={})
    save_checkpoint(tmp_path / "c.pt", {**payload, "config": Config().to_dict()})
    expect = (torch.rand(4), random.random())
    torch.manual_seed(99)
    random.seed(99)
    restore_rng(read_checkpoint(tmp_path / "c.pt"))
    assert torch.equal(torch.rand(4), expect[0]) and random.random() == expect[1]


def test_dataset_provenance_keeps_counts_sources_and_exclusions():
    summary = {"n_molecules": 3, "sources": ["a.sdf"], "excluded": {"n": 1}, "skipped": ["long list"],
               "trained_on": {"dataset": "inner"}}
    p = dataset_provenance("/data/x", summary, 10, 2)
    assert p == {"dataset": "/data/x", "n_train_conformers": 10, "n_val_conformers": 2, "n_molecules": 3,
                 "sources": ["a.sdf"], "excluded": {"n": 1}, "trained_on": {"dataset": "inner"}}
