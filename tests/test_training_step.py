"""One training step (confgen.training.step): seeded noise, the denoising loss, clipping and non-finite checks."""

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch

from confgen.config import Config
from confgen.data.dataset import ConformerDataset
from confgen.models import build_model
from confgen.training.setup import DistInfo, TrainingError, make_optimizer
from confgen.training.step import denoising_loss, grad_norm, is_oom, step_generator, train_step

TINY = Path(__file__).parent / "data" / "tiny_qm9"
pytestmark = pytest.mark.usefixtures("one_thread")


def _setup():
    cfg = Config()
    cfg.model.hidden_dim, cfg.model.num_layers, cfg.model.backbone = 16, 2, "egnn"
    torch.manual_seed(0)
    model = build_model(cfg)
    ds = ConformerDataset(TINY, "val")
    return cfg, model, Batch.from_data_list([ds[i] for i in range(4)])


def test_step_generator_is_a_function_of_seed_step_and_rank():
    draw = lambda *a: torch.rand(3, generator=step_generator(*a))  # noqa: E731
    assert torch.equal(draw(0, 5, 0), draw(0, 5, 0))
    assert not torch.equal(draw(0, 5, 0), draw(0, 6, 0))
    assert not torch.equal(draw(0, 5, 0), draw(0, 5, 1))
    assert not torch.equal(draw(0, 5, 0), draw(1, 5, 0))


def test_denoising_loss_is_reproducible_from_the_generator():
    cfg, model, batch = _setup()
    a = denoising_loss(model, batch, batch.pos, noise=cfg.noise, sigmas=model.sigmas, generator=step_generator(0, 1, 0))
    b = denoising_loss(model, batch, batch.pos, noise=cfg.noise, sigmas=model.sigmas, generator=step_generator(0, 1, 0))
    c = denoising_loss(model, batch, batch.pos, noise=cfg.noise, sigmas=model.sigmas, generator=step_generator(0, 2, 0))
    assert a.ndim == 0 and torch.isfinite(a) and torch.equal(a, b) and not torch.equal(a, c)


def test_train_step_updates_and_clips():
    cfg, model, batch = _setup()
    opt, sched = make_optimizer(model, cfg, total_steps=10)
    before = [p.detach().clone() for p in model.parameters()]
    loss, gn = train_step(model, model, opt, sched, batch, noise=cfg.noise, sigmas=model.sigmas,
                          generator=step_generator(0, 0, 0), grad_clip=1e-3, dist=DistInfo(), step=0,
                          last_path="last.pt")
    assert loss > 0 and gn > 1e-3
    assert float(grad_norm(model.parameters(), 0.0)) == pytest.approx(1e-3, rel=1e-4)  # clipped in place
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert sched.last_epoch == 1


def test_non_finite_loss_raises_before_the_weights_change():
    cfg, model, batch = _setup()
    opt, sched = make_optimizer(model, cfg, total_steps=10)
    batch.pos = batch.pos * float("nan")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainingError, match="loss became nan at step 7.*run/last.pt"):
        train_step(model, model, opt, sched, batch, noise=cfg.noise, sigmas=model.sigmas,
                   generator=step_generator(0, 7, 0), grad_clip=10.0, dist=DistInfo(), step=7,
                   last_path="run/last.pt")
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_is_oom():
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"))
    assert is_oom(MemoryError())
    assert not is_oom(RuntimeError("shape mismatch"))
