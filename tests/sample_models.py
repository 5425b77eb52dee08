"""Score models for the sampling tests: a tiny trained checkpoint, and analytic stand-ins.

``tiny_checkpoint()`` returns the shipped default model's checkpoint if the package has one, else trains the
tiny EGNN config (configs/tiny_egnn.yaml, 150 steps on 200 QM9 molecules, about 10 s) once per test process.
The tiny model denoises only small noise well, so tests that use it sample with ``TINY_PRESET``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from confgen.config import resolve_preset
from confgen.noise import NoiseSchedule

REPO = Path(__file__).resolve().parents[1]

#: sampler settings the tiny test model handles (it was trained for seconds): the fast preset with these overrides
TINY_OVERRIDES = {"method": "pc", "init": "etkdg", "sigma_max": 0.05, "sigma_min": 0.01, "num_levels": 3,
                  "steps_per_level": 1}
TINY_PRESET = resolve_preset("fast", TINY_OVERRIDES)


@functools.lru_cache(maxsize=None)
def tiny_checkpoint() -> str:
    """Path of a small trained checkpoint (the shipped default if any, else trained now, once)."""
    from confgen.checkpoint import default_checkpoint_path
    from confgen.config import load_config
    from confgen.training import train

    shipped = default_checkpoint_path()
    if shipped is not None:
        return str(shipped)
    out = Path(tempfile.mkdtemp(prefix="confgen-tiny-model-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    cfg = load_config(REPO / "configs" / "tiny_egnn.yaml")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, out, progress=False, device="cpu")
    finally:
        torch.set_num_threads(threads)
    return str(out / "best.pt")


class TargetScore(nn.Module):
    """Exact score of N(target, s0^2) blurred by sigma: ``-(x - target) / (s0^2 + sigma^2)`` per graph.

    Every graph of a batch must be the same molecule; ``targets`` cycles over the graphs (graph g gets
    ``targets[g % len(targets)]``). ``explode_calls`` makes the first calls return an exploding score (to test
    blow-up handling).

    Args:
        targets: list of [N, 3] coordinates.
        s0: spread of the target distribution (Angstrom).
        explode_calls: number of initial forward calls whose score pushes atoms apart.
    """

    def __init__(self, targets: list[torch.Tensor], s0: float = 0.02, explode_calls: int = 0):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.cutoff = 0.0  # no radius edges: the sampler precomputes no atom pairs
        self.schedule = NoiseSchedule(sigma_max=10.0, sigma_min=0.01, num_levels=2)
        self.targets = [t - t.mean(0) for t in targets]
        self.s0 = s0
        self.explode_calls = explode_calls
        self.calls = 0

    def forward(self, batch, pos, sigma, pairs=None):
        self.calls += 1
        g = batch.num_graphs
        target = torch.cat([self.targets[i % len(self.targets)] for i in range(g)]).to(pos)  # [N, 3]
        if self.calls <= self.explode_calls:
            return 1e3 * pos / sigma.unsqueeze(-1) ** 2
        centred = pos - torch.zeros(g, 3, dtype=pos.dtype).index_add_(0, batch.batch, pos)[batch.batch] / (
            torch.bincount(batch.batch, minlength=g).to(pos.dtype)[batch.batch].unsqueeze(-1))
        return -(centred - target) / (self.s0 ** 2 + sigma.unsqueeze(-1) ** 2)
