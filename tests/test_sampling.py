"""Samplers against the analytic score of a Gaussian: right mean and spread, centring, blow-up guard, seeds."""

import math

import pytest
import torch

from confgen.config import resolve_preset
from confgen.errors import ConfgenError
from confgen.generation.sampler import noise_levels
from confgen.sampling import NoiseSource, sample

N_NODES = 5


pytestmark = pytest.mark.usefixtures("one_thread")


def _gaussian(num_graphs: int, s0: float, seed: int = 0):
    """Data: x = mu + s0 * z per graph (then centred). Returns (mu_centred [n,3], score_fn, batch)."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(N_NODES, 3, generator=g, dtype=torch.float64) * 2.0
    mu = mu - mu.mean(0)
    big_mu = mu.repeat(num_graphs, 1)
    batch = torch.arange(num_graphs).repeat_interleave(N_NODES)

    def score_fn(x, sigma):
        # p_sigma = N(mu, (s0^2 + sigma^2) I), restricted to the centred subspace (mu is centred)
        return -(x - big_mu) / (s0 ** 2 + sigma.unsqueeze(-1) ** 2)

    return mu, score_fn, batch


def _moments(pos: torch.Tensor, num_graphs: int):
    x = pos.view(num_graphs, N_NODES, 3)
    return x.mean(0), x.var(0).mean()


@pytest.mark.parametrize("method", ["ald", "pc"])
def test_sampler_reproduces_a_gaussian(method):
    """From pure noise at sigma=10, 50 levels: mean and spread of N(mu, s0^2) in the centred subspace."""
    G, s0 = 400, 0.5
    mu, score_fn, batch = _gaussian(G, s0)
    params = resolve_preset("confgf", {"method": method, "num_levels": 25,
                                       "steps_per_level": 10 if method == "ald" else 2, "eps": 2e-4})
    sigmas = noise_levels(params)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(G * N_NODES, 3, generator=g, dtype=torch.float64) * float(sigmas[0])
    res = sample(score_fn, x0, batch, G, sigmas, method=method, steps_per_level=params.steps_per_level,
                 eps=params.eps, final_denoise=True, clip=params.clip, generator=g)
    assert res.ok.all()
    mean, var = _moments(res.pos, G)
    # centred subspace: per-coordinate variance s0^2 (1 - 1/n); the final denoising step shrinks it by
    # s0^2 / (s0^2 + sigma_min^2) (negligible here)
    expected_var = s0 ** 2 * (1 - 1 / N_NODES) * s0 ** 2 / (s0 ** 2 + 0.01 ** 2)
    se_mean = math.sqrt(expected_var / G)
    assert (mean - mu).abs().max() < 5 * se_mean + 0.02
    assert abs(var / expected_var - 1) < 0.1, (float(var), expected_var)
    # centre of mass removed per graph
    com = res.pos.view(G, N_NODES, 3).mean(1)
    assert com.abs().max() < 1e-9


@pytest.mark.parametrize("churn", [0.0, 5.0])
def test_heun_from_pure_noise_in_49_calls_reproduces_a_gaussian(churn):
    """The edm presets' Heun sampler at 25 EDM levels (2 x 25 - 1 score calls): right mean and spread.

    Starting from N(0, sigma_max^2) instead of N(mu, s0^2 + sigma_max^2), the deterministic flow keeps a
    fraction ~ s0 / sigma_max of that offset (|mu| ~ 2 A here, unlike rotation-averaged molecules whose mean is
    0): sigma_max = 80 (EDM's) makes it negligible. With 25 levels the spread is 5 % (churn 0) to 9 % (churn 5)
    too wide (discretisation error; 3 % at 50 levels), hence the 12 % tolerance."""
    G, s0 = 400, 0.5
    mu, score_fn, batch = _gaussian(G, s0)
    params = resolve_preset("edm", {"sigma_max": 80.0, "sigma_min": 0.01, "churn": churn, "num_levels": 25})
    sigmas = noise_levels(params)
    assert len(sigmas) == 25 and params.evals_per_sample == 49
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(G * N_NODES, 3, generator=g, dtype=torch.float64) * float(sigmas[0])
    res = sample(score_fn, x0, batch, G, sigmas, method="heun", steps_per_level=0, eps=params.eps,
                 churn=churn, clip=params.clip, generator=g)
    assert res.ok.all() and res.num_evals == 49
    mean, var = _moments(res.pos, G)
    expected_var = s0 ** 2 * (1 - 1 / N_NODES) * s0 ** 2 / (s0 ** 2 + 0.01 ** 2)  # last step: Tweedie at 0.01
    assert (mean - mu).abs().max() < 5 * math.sqrt(expected_var / G) + 0.02
    assert abs(var / expected_var - 1) < 0.12, (float(var), expected_var)
    assert res.pos.view(G, N_NODES, 3).mean(1).abs().max() < 1e-9


def test_heun_with_too_few_levels_or_first_order_steps_misses_the_spread():
    """The Heun test can fail: 3 levels from sigma=10 leave the sample far too wide or too narrow."""
    G, s0 = 400, 0.5
    mu, score_fn, batch = _gaussian(G, s0)
    params = resolve_preset("edm", {"sigma_max": 10.0, "sigma_min": 0.01, "num_levels": 3, "churn": 0.0})
    sigmas = noise_levels(params)
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(G * N_NODES, 3, generator=g, dtype=torch.float64) * float(sigmas[0])
    res = sample(score_fn, x0, batch, G, sigmas, method="heun", steps_per_level=0, eps=1e-5, generator=g)
    _, var = _moments(res.pos, G)
    assert abs(var / (s0 ** 2 * (1 - 1 / N_NODES)) - 1) > 0.3


def test_polishing_steps_contract_towards_the_mode_at_the_analytic_rate():
    """Each polishing step moves x by rate * sigma_p^2 * score(x, sigma_p); for N(mu, s0^2) that shrinks the
    offset from mu by 1 - rate * sigma_p^2 / (s0^2 + sigma_p^2), without noise; the calls are counted."""
    G, s0, sp, rate, k = 50, 0.5, 0.3, 0.5, 12
    mu, score_fn, batch = _gaussian(G, s0)
    g = torch.Generator().manual_seed(5)
    x0 = mu.repeat(G, 1) + 0.4 * torch.randn(G * N_NODES, 3, generator=g, dtype=torch.float64)
    x0 = x0 - x0.view(G, N_NODES, 3).mean(1).repeat_interleave(N_NODES, 0)
    one_level = torch.tensor([0.01], dtype=torch.float64)
    base = sample(score_fn, x0, batch, G, one_level, method="pc", steps_per_level=0, eps=1e-5, generator=g)
    polished = sample(score_fn, x0, batch, G, one_level, method="pc", steps_per_level=0, eps=1e-5, generator=g,
                      polish_steps=k, polish_sigma=sp, polish_rate=rate)
    assert polished.num_evals == base.num_evals + k
    factor = (1 - rate * sp ** 2 / (s0 ** 2 + sp ** 2)) ** k
    big_mu = mu.repeat(G, 1)
    assert torch.allclose(polished.pos - big_mu, factor * (base.pos - big_mu), atol=1e-9)
    # before the first level instead: the same contraction here (both steps are scalings about mu)
    first = sample(score_fn, x0, batch, G, one_level, method="pc", steps_per_level=0, eps=1e-5, generator=g,
                   polish_steps=k, polish_sigma=sp, polish_rate=rate, polish_first=True)
    assert first.num_evals == polished.num_evals and torch.allclose(first.pos, polished.pos, atol=1e-9)
    assert resolve_preset("fast", {"polish_steps": k}).evals_per_sample == resolve_preset("fast").evals_per_sample + k
    with pytest.raises(ConfgenError, match="polish_rate"):
        resolve_preset("fast", {"polish_rate": 1.5})


def test_edm_schedule_with_rho():
    p = resolve_preset("edm", {"sigma_max": 10.0, "sigma_min": 0.002, "num_levels": 18})
    sig = noise_levels(p)
    assert sig[0] == pytest.approx(10.0) and sig[-1] == pytest.approx(0.002)
    assert (sig[:-1] > sig[1:]).all()
    ref = [(10 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 10 ** (1 / 7))) ** 7 for i in range(18)]
    assert sig.tolist() == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ConfgenError, match="rho"):
        resolve_preset("edm", {"rho": -1.0})
    with pytest.raises(ConfgenError, match="churn"):
        resolve_preset("edm", {"churn": -1.0})


def test_wrong_step_size_gives_the_wrong_spread():
    """The Gaussian test can fail: a too small step leaves the noise of the first level in the sample."""
    G, s0 = 200, 0.5
    mu, score_fn, batch = _gaussian(G, s0)
    sigmas = noise_levels(resolve_preset("confgf", {"num_levels": 10}))
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(G * N_NODES, 3, generator=g, dtype=torch.float64) * float(sigmas[0])
    res = sample(score_fn, x0, batch, G, sigmas, steps_per_level=2, eps=1e-9, final_denoise=False, generator=g)
    _, var = _moments(res.pos, G)
    assert var > 10 * s0 ** 2


def test_confgf_preset_levels():
    sig = noise_levels(resolve_preset("confgf"))
    assert len(sig) == 50 and sig[0] == pytest.approx(10.0) and sig[-1] == pytest.approx(0.01)


def test_null_sigmas_come_from_the_models_schedule():
    from confgen.noise import NoiseSchedule

    class _Model:
        schedule = NoiseSchedule(sigma_max=4.0, sigma_min=0.5, num_levels=3)

    p = resolve_preset("fast", {"sigma_max": None, "sigma_min": None, "num_levels": 3})
    sig = noise_levels(p, _Model())
    assert sig.tolist() == pytest.approx([4.0, math.sqrt(2.0), 0.5])
    with pytest.raises(ConfgenError, match="from the model"):
        noise_levels(p)
    assert noise_levels(resolve_preset("fast", {"num_levels": 1})).tolist() == [0.01]  # one level: sigma_min


def test_blowup_and_nan_are_detected_per_graph_and_frozen():
    G = 6
    mu, score_fn, batch = _gaussian(G, 0.5)

    def bad_score(x, sigma):
        s = score_fn(x, sigma)
        s = s.clone()
        s[batch == 1] = 50.0 * x[batch == 1] / sigma.unsqueeze(-1)[batch == 1] ** 2  # explodes
        s[batch == 4] = float("nan")
        return s

    sigmas = noise_levels(resolve_preset("fast"))
    g = torch.Generator().manual_seed(0)
    x0 = mu.repeat(G, 1) + 0.3 * torch.randn(G * N_NODES, 3, generator=g, dtype=torch.float64)
    res = sample(bad_score, x0, batch, G, sigmas, steps_per_level=3, eps=2e-5, clip=None, generator=g)
    assert res.ok.tolist() == [True, False, True, True, False, True]
    assert torch.isfinite(res.pos).all()  # frozen at the last finite state
    good = res.pos.view(G, N_NODES, 3)[[0, 2, 3, 5]]
    assert (good - mu).abs().max() < 2.0


def test_per_graph_noise_makes_a_sample_independent_of_its_batch():
    """A graph's trajectory depends on its own seed only, not on the other graphs of the batch."""
    mu, score_fn, batch = _gaussian(3, 0.5)
    sigmas = noise_levels(resolve_preset("fast"))
    seeds = [11, 22, 33]
    x0 = mu.repeat(3, 1)

    def run(idx):
        sel = torch.cat([torch.arange(i * N_NODES, (i + 1) * N_NODES) for i in idx])
        b = torch.arange(len(idx)).repeat_interleave(N_NODES)
        sub_mu = mu.repeat(len(idx), 1)
        noise = NoiseSource(seeds=[seeds[i] for i in idx], sizes=[N_NODES] * len(idx), dtype=torch.float64,
                            block=4)
        return sample(lambda x, s: -(x - sub_mu) / (0.25 + s.unsqueeze(-1) ** 2), x0[sel], b, len(idx), sigmas,
                      steps_per_level=3, eps=2e-5, noise=noise).pos

    together = run([0, 1, 2]).view(3, N_NODES, 3)
    alone = run([1]).view(1, N_NODES, 3)
    reordered = run([2, 1]).view(2, N_NODES, 3)
    assert torch.equal(together[1], alone[0])
    assert torch.equal(together[1], reordered[1])
    assert not torch.equal(together[0], together[1])
