"""Noise schedule, centred perturbation and the sigma^2-weighted DSM loss."""

import math

import pytest
import torch

from confgen.losses import dsm_loss
from confgen.noise import NoiseSchedule, draw_sigmas, perturb, remove_com, sample_sigmas


def test_default_schedule_is_confgf_geometric():
    s = NoiseSchedule(10.0, 0.01, 50).sigmas(torch.float32)
    assert s.shape == (50,) and s.dtype == torch.float32
    assert s[0].item() == pytest.approx(10.0) and s[-1].item() == pytest.approx(0.01)
    ratios = s[1:] / s[:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, (0.01 / 10.0) ** (1 / 49)), rtol=1e-5)
    assert (s[1:] < s[:-1]).all()
    # computed in the requested dtype: float32 gives the models' stored levels bit for bit, float64 the samplers'
    assert torch.equal(s, torch.exp(torch.linspace(math.log(10.0), math.log(0.01), 50)))
    s64 = NoiseSchedule(10.0, 0.01, 50).sigmas()
    assert s64.dtype == torch.float64
    assert torch.equal(s64, torch.exp(torch.linspace(math.log(10.0), math.log(0.01), 50, dtype=torch.float64)))
    for bad in ((1.0, 0.0, 10), (0.0, 1.0, 10), (1.0, 2.0, 10), (1.0, 0.1, 0), (1.0, 0.1, 2.0), (1.0, 0.1, True)):
        with pytest.raises(ValueError):
            NoiseSchedule(*bad)
    with pytest.raises(ValueError):
        NoiseSchedule(1.0, 0.1, 3, rho=0.0)
    with pytest.raises(AttributeError):  # frozen
        NoiseSchedule(1.0, 0.1, 3).num_levels = 4


def test_schedule_edge_cases_and_karras():
    # one level: a single step at the smallest level
    assert NoiseSchedule(10.0, 0.01, 1).sigmas().tolist() == [0.01]
    assert NoiseSchedule(10.0, 0.01, 1, rho=7.0).sigmas().tolist() == [0.01]
    k = NoiseSchedule(80.0, 0.002, 18, rho=7.0).sigmas()
    i = torch.arange(18, dtype=torch.float64)
    expect = (80.0 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7
    torch.testing.assert_close(k, expect, rtol=1e-14, atol=0)
    assert k[0].item() == pytest.approx(80.0) and k[-1].item() == pytest.approx(0.002)
    assert (k[1:] < k[:-1]).all()
    torch.testing.assert_close(NoiseSchedule(3.0, 3.0, 4).sigmas(), torch.full((4,), 3.0, dtype=torch.float64))


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
    s = NoiseSchedule(10, 0.01, 5).sigmas(torch.float32)
    draws = sample_sigmas(s, 2000, generator=torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == set(s.tolist())
    assert math.isclose(float((draws == s[0]).float().mean()), 0.2, abs_tol=0.05)


def test_draw_sigmas_continuous_distributions():
    s = NoiseSchedule(10, 0.01, 50).sigmas(torch.float32)
    g = torch.Generator().manual_seed(0)
    levels = draw_sigmas(500, distribution="levels", sigmas=s, generator=torch.Generator().manual_seed(1))
    assert torch.equal(levels, sample_sigmas(s, 500, generator=torch.Generator().manual_seed(1)))  # old runs
    ln = draw_sigmas(20000, distribution="lognormal", sigmas=s, p_mean=-0.5, p_std=1.0, generator=g).log()
    assert ln.min() >= math.log(0.01) - 1e-6 and ln.max() <= math.log(10) + 1e-6
    assert float(ln.median()) == pytest.approx(-0.5, abs=0.03)
    assert len(set(ln.tolist())) > 19000  # continuous, not a few levels
    lu = draw_sigmas(20000, distribution="loguniform", sigmas=s, generator=g).log()
    assert float(lu.mean()) == pytest.approx(0.5 * (math.log(10) + math.log(0.01)), abs=0.05)
    assert float(lu.std()) == pytest.approx((math.log(10) - math.log(0.01)) / math.sqrt(12), rel=0.03)
    with pytest.raises(ValueError, match="unknown sigma distribution"):
        draw_sigmas(3, distribution="uniform", sigmas=s)


def test_edm_weighting_definition_and_gaussian_minimiser():
    """EDM weight = lambda(sigma) |D - x0|^2 with D = x + sigma^2 s; over Gaussian data its expected loss is
    minimised by the exact blurred score -x / (s0^2 + sigma^2)."""
    g = torch.Generator().manual_seed(0)
    batch = torch.tensor([0, 0, 0, 1, 1])
    x0 = remove_com(torch.randn(5, 3, generator=g, dtype=torch.float64), batch)
    eps = remove_com(torch.randn(5, 3, generator=g, dtype=torch.float64), batch)
    sigma = torch.tensor([0.1, 0.1, 0.1, 3.0, 3.0], dtype=torch.float64)
    x = x0 + sigma[:, None] * eps
    score = torch.randn(5, 3, generator=g, dtype=torch.float64)
    sd = 1.3
    lam = (sigma**2 + sd**2) / (sigma * sd) ** 2
    per_atom = lam * ((x + sigma[:, None] ** 2 * score - x0) ** 2).sum(-1)
    expected = 0.5 * (per_atom[:3].mean() + per_atom[3:].mean())
    got = dsm_loss(score, eps, sigma, batch, 2, weighting="edm", sigma_data=sd)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    assert dsm_loss(-eps / sigma[:, None], eps, sigma, batch, 2, weighting="edm").item() == pytest.approx(0, abs=1e-20)
    with pytest.raises(ValueError, match="unknown loss weighting"):
        dsm_loss(score, eps, sigma, batch, 2, weighting="karras")

    # Gaussian data N(0, s0^2) (centred, 8 atoms x 4000 conformers), EDM sigmas: scan the score family
    # -x / (a + sigma^2); the loss is smallest at the true a = s0^2
    n_at, n_g, s0 = 8, 4000, 1.5
    b = torch.arange(n_g).repeat_interleave(n_at)
    data = remove_com(s0 * torch.randn(n_g * n_at, 3, generator=g, dtype=torch.float64), b, n_g)
    sig_g = draw_sigmas(n_g, distribution="lognormal", sigmas=NoiseSchedule(10, 0.01, 50).sigmas(torch.float32),
                        p_mean=0.0,
                        p_std=1.2, generator=g).double()
    xn, e = perturb(data, sig_g[b], b, n_g, generator=g)
    losses = {a: dsm_loss(-xn / (a + sig_g[b, None] ** 2), e, sig_g[b], b, n_g, weighting="edm",
                          sigma_data=s0).item() for a in (0.5 * s0**2, s0**2, 2 * s0**2)}
    assert min(losses, key=losses.get) == s0**2
