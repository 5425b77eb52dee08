"""Noise schedule, centred perturbation and the sigma^2-weighted DSM loss."""

import math

import pytest
import torch

from confgen.losses import dsm_loss
from confgen.noise import geometric_sigmas, perturb, remove_com, sample_sigmas


def test_default_schedule_is_confgf_geometric():
    s = geometric_sigmas()
    assert s.shape == (50,)
    assert s[0].item() == pytest.approx(10.0) and s[-1].item() == pytest.approx(0.01)
    ratios = s[1:] / s[:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, (0.01 / 10.0) ** (1 / 49)), rtol=1e-5)
    assert (s[1:] < s[:-1]).all()
    with pytest.raises(ValueError):
        geometric_sigmas(1.0, 0.0, 10)


def test_remove_com_per_graph():
    x = torch.randn(7, 3, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    y = remove_com(x, batch)
    for g in range(3):
        assert y[batch == g].mean(0).abs().max() < 1e-12
        torch.testing.assert_close(y[batch == g], x[batch == g] - x[batch == g].mean(0))


def test_perturb_noise_is_centred_and_scaled():
    torch.manual_seed(0)
    n = 4000
    batch = torch.repeat_interleave(torch.arange(200), 20)
    pos = torch.randn(n, 3, dtype=torch.float64) * 3 + 5
    sigma = torch.full((n,), 0.5, dtype=torch.float64)
    x, eps = perturb(pos, sigma, batch, 200, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x, remove_com(pos, batch) + 0.5 * eps)
    assert remove_com(eps, batch).sub(eps).abs().max() < 1e-12
    # centred noise of 20 atoms: per-coordinate variance (n-1)/n
    assert eps.var().item() == pytest.approx(19 / 20, rel=0.05)


def test_dsm_loss_is_zero_for_the_true_score_and_matches_definition():
    g = torch.Generator().manual_seed(0)
    batch = torch.tensor([0, 0, 0, 1, 1])
    eps = remove_com(torch.randn(5, 3, generator=g, dtype=torch.float64), batch)
    sigma = torch.tensor([0.1, 0.1, 0.1, 2.0, 2.0], dtype=torch.float64)
    true_score = -eps / sigma[:, None]
    assert dsm_loss(true_score, eps, sigma, batch, 2).item() == pytest.approx(0.0, abs=1e-20)
    score = torch.randn(5, 3, generator=g, dtype=torch.float64)
    per_atom = sigma**2 * ((score - true_score) ** 2).sum(-1)  # definition: sigma^2 |s - (-eps/sigma)|^2
    expected = 0.5 * (per_atom[:3].mean() + per_atom[3:].mean())
    assert dsm_loss(score, eps, sigma, batch, 2).item() == pytest.approx(expected.item(), rel=1e-12)
    # predicting zero costs E|eps|^2, the same at every noise level
    assert dsm_loss(torch.zeros(5, 3, dtype=torch.float64), eps, sigma, batch, 2).item() == pytest.approx(
        0.5 * ((eps[:3] ** 2).sum(-1).mean() + (eps[3:] ** 2).sum(-1).mean()).item())


def test_sample_sigmas_covers_the_schedule():
    s = geometric_sigmas(10, 0.01, 5)
    draws = sample_sigmas(s, 2000, generator=torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == set(s.tolist())
    assert math.isclose(float((draws == s[0]).float().mean()), 0.2, abs_tol=0.05)
