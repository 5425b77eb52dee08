"""The score-model interface (confgen.models.interface): what the samplers rely on, met by every model."""

import torch

from confgen.checkpoint import load_model
from confgen.config import Config
from confgen.models import build_model
from confgen.models.interface import ScoreModelInterface
from confgen.noise import NoiseSchedule

from sample_models import TargetScore


def test_score_model_meets_the_interface():
    cfg = Config()
    cfg.noise.sigma_max, cfg.noise.sigma_min, cfg.noise.num_levels = 5.0, 0.02, 30
    model = build_model(cfg)
    assert isinstance(model, ScoreModelInterface)
    assert model.cutoff == cfg.model.cutoff
    # the extremes as stored with the weights (float32): what samplers have always read
    f32 = float(torch.tensor(0.02, dtype=torch.float32))
    assert model.schedule == NoiseSchedule(sigma_max=5.0, sigma_min=f32, num_levels=30)
    assert torch.equal(model.sigmas, NoiseSchedule(5.0, 0.02, 30).sigmas(torch.float32))


def test_shipped_model_schedule_is_what_it_stores():
    model = load_model(None)
    assert isinstance(model, ScoreModelInterface)
    # the stored levels (EMA-averaged by older confgen) define the range samplers take
    assert model.schedule.sigma_max == float(model.sigmas.max())
    assert model.schedule.sigma_min == float(model.sigmas.min())
    assert model.schedule.num_levels == model.sigmas.numel() == model.config.noise.num_levels


def test_test_models_meet_the_interface():
    assert isinstance(TargetScore([torch.zeros(3, 3)]), ScoreModelInterface)
    assert not isinstance(torch.nn.Linear(2, 2), ScoreModelInterface)
