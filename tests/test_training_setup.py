"""Training setup (confgen.training.setup): the learning-rate schedule, the EMA (AveragedModel), config checks."""

import math

import pytest
import torch

from confgen.config import Config
from confgen.errors import ConfgenError
from confgen.models import build_model
from confgen.training.setup import (
    check_config,
    ema_decay_at,
    ema_updates,
    load_ema_state,
    lr_factor,
    make_ema,
    make_optimizer,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_lr_factor_warmup_then_cosine_or_constant():
    kw = dict(warmup_steps=10, total_steps=110, min_ratio=0.05)
    assert [lr_factor(s, schedule="cosine", **kw) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_factor(10, schedule="cosine", **kw) == 1.0
    assert lr_factor(60, schedule="cosine", **kw) == pytest.approx(0.05 + 0.95 * 0.5)
    assert lr_factor(110, schedule="cosine", **kw) == pytest.approx(0.05)
    assert lr_factor(500, schedule="cosine", **kw) == pytest.approx(0.05)  # stays at the floor
    values = [lr_factor(s, schedule="cosine", **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone decay after warm-up
    assert [lr_factor(s, schedule="constant", **kw) for s in (0, 9, 10, 1000)] == [0.1, 1.0, 1.0, 1.0]
    assert lr_factor(0, warmup_steps=0, total_steps=1, schedule="cosine", min_ratio=0.0) == 1.0
    with pytest.raises(ConfgenError, match="unknown train.lr_schedule"):
        lr_factor(20, schedule="linear", **kw)


def test_optimizer_schedule_applies_lr_factor_per_step():
    cfg = Config()
    cfg.model.hidden_dim, cfg.model.num_layers = 8, 1
    cfg.train.lr, cfg.train.warmup_steps, cfg.train.min_lr_ratio = 1e-3, 3, 0.1
    model = build_model(cfg)
    opt, sched = make_optimizer(model, cfg, total_steps=13)
    lrs = []
    for _ in range(14):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    expect = [1e-3 * lr_factor(s, warmup_steps=3, total_steps=13, schedule="cosine", min_ratio=0.1)
              for s in range(14)]
    assert lrs == pytest.approx(expect, rel=1e-12)
    assert isinstance(opt, torch.optim.AdamW)


class _ReferenceEMA:
    """confgen 1's hand-written EMA (the numbers AveragedModel must reproduce)."""

    def __init__(self, model, decay):
        self.decay, self.num_updates = decay, 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, model):
        self.num_updates += 1
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates)) if self.decay > 0 else 0.0
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.shadow[k].copy_(v)


@pytest.mark.parametrize("decay", [0.9, 0.999, 0.0])
def test_averaged_model_ema_matches_the_hand_written_one_bit_for_bit(decay):
    cfg = Config()
    cfg.model.hidden_dim, cfg.model.num_layers = 8, 2
    torch.manual_seed(0)
    model = build_model(cfg)
    ema, ref = make_ema(model, decay), _ReferenceEMA(model, decay)
    assert isinstance(ema, torch.optim.swa_utils.AveragedModel) and ema_updates(ema) == 0
    g = torch.Generator().manual_seed(1)
    for _ in range(25):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        ema.update_parameters(model)
        ref.update(model)
    assert ema_updates(ema) == ref.num_updates == 25
    averaged = ema.module.state_dict()
    for name, p in model.named_parameters():
        assert torch.equal(averaged[name], ref.shadow[name]), name
        if decay == 0.0:
            assert torch.equal(averaged[name], p)
    assert torch.equal(averaged["sigmas"], model.sigmas)  # buffers follow the model (not averaged)
    assert ema_decay_at(0.999, 1) == pytest.approx(2 / 11) and ema_decay_at(0.999, 10**6) == 0.999


def test_ema_state_round_trip_continues_identically():
    cfg = Config()
    cfg.model.hidden_dim, cfg.model.num_layers = 8, 1
    torch.manual_seed(0)
    model = build_model(cfg)
    ema = make_ema(model, 0.99)
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.01)
        ema.update_parameters(model)
    state = {"decay": ema.decay, "num_updates": ema_updates(ema), "shadow": ema.module.state_dict()}
    other = make_ema(model, 0.99)
    load_ema_state(other, state)
    assert ema_updates(other) == 3
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.97)
    ema.update_parameters(model)
    other.update_parameters(model)
    for (k, a), b in zip(ema.module.state_dict().items(), other.module.state_dict().values()):
        assert torch.equal(a, b), k


def test_check_config_names_the_bad_setting():
    cfg = Config()
    with pytest.raises(ConfgenError, match="data.path is not set"):
        check_config(cfg)
    cfg.data.path = "x"
    check_config(cfg)
    for section, key, value, msg in [("train", "batch_size", 0, "batch_size must be at least 1"),
                                     ("noise", "distribution", "uniform", "unknown noise.distribution"),
                                     ("noise", "weighting", "l1", "unknown noise.weighting")]:
        bad = Config()
        bad.data.path = "x"
        setattr(getattr(bad, section), key, value)
        with pytest.raises(ConfgenError, match=msg):
            check_config(bad)
    assert math.isfinite(lr_factor(0, warmup_steps=1, total_steps=1, schedule="cosine", min_ratio=0.0))
