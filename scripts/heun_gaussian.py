#!/usr/bin/env python
"""Spread error of the from-noise samplers on an analytic Gaussian score (what tests/test_sampling.py checks).

Data N(mu, s0^2) on 5 atoms (s0 = 0.5 A, |mu| ~ 2 A), 400 samples from N(0, sigma_max^2) noise; prints the
sampled / exact per-coordinate variance and the largest error of the mean for each (levels, churn, sigma_max)
of the Heun sampler (network calls = 2 x levels - 1).

    python scripts/heun_gaussian.py
"""

from __future__ import annotations

import torch

from confgen.config import resolve_preset
from confgen.generation.sampler import noise_levels
from confgen.sampling import sample

N_NODES, G, S0 = 5, 400, 0.5


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(N_NODES, 3, generator=g, dtype=torch.float64) * 2.0
    mu = mu - mu.mean(0)
    big_mu = mu.repeat(G, 1)
    batch = torch.arange(G).repeat_interleave(N_NODES)

    def score_fn(x, sigma):
        return -(x - big_mu) / (S0 ** 2 + sigma.unsqueeze(-1) ** 2)

    print("levels  calls  churn  sigma_max  var/exact  max|mean-mu|")
    for levels, churn, smax in [(10, 0, 80), (15, 0, 80), (25, 0, 80), (25, 5, 80), (25, 10, 80), (25, 10, 10),
                                (50, 10, 80)]:
        p = resolve_preset("edm", {"sigma_max": float(smax), "sigma_min": 0.01, "num_levels": levels,
                                   "churn": float(churn)})
        sig = noise_levels(p)
        gen = torch.Generator().manual_seed(3)
        x0 = torch.randn(G * N_NODES, 3, generator=gen, dtype=torch.float64) * float(sig[0])
        res = sample(score_fn, x0, batch, G, sig, method="heun", steps_per_level=0, eps=1e-5, churn=float(churn),
                     generator=gen)
        x = res.pos.view(G, N_NODES, 3)
        exact = S0 ** 2 * (1 - 1 / N_NODES) * S0 ** 2 / (S0 ** 2 + 0.01 ** 2)
        print(f"{levels:6d}  {p.evals_per_sample:5d}  {churn:5.0f}  {smax:9.0f}  {float(x.var(0).mean()) / exact:9.3f}"
              f"  {float((x.mean(0) - mu).abs().max()):12.3f}")


if __name__ == "__main__":
    main()
