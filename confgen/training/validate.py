"""Validation: the mean denoising loss of fixed validation batches with fixed noise (comparable across steps)."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch

from confgen.config import NoiseConfig
from confgen.data.dataset import ConformerDataset
from confgen.training.step import denoising_loss, step_generator


def validation_batches(val_ds: ConformerDataset, n_val: int, batch_size: int) -> list[Batch]:
    """The first ``n_val`` validation conformers in batches of ``batch_size`` (on the CPU)."""
    items = [val_ds[i] for i in range(n_val)]
    return [Batch.from_data_list(items[k:k + batch_size]) for k in range(0, n_val, batch_size)]


def validation_loss(model: torch.nn.Module, batches: list[Batch], sigmas: torch.Tensor, seed: int,
                    device: torch.device, noise: NoiseConfig) -> float:
    """Mean DSM loss per conformer over ``batches``, with noise seeded by ``seed`` and the batch number.

    Args:
        model: the model to validate (the EMA weights); put in eval mode.
        batches: from :func:`validation_batches`.
        sigmas: [L] the training schedule.
        seed: the run's seed.
        device: where the model is.
        noise: the noise config.
    """
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for k, graphs in enumerate(batches):
            gen = step_generator(seed + 7919, k, 0)
            graphs = graphs.to(device)
            loss = denoising_loss(model, graphs, graphs.pos, noise=noise, sigmas=sigmas, generator=gen)
            total += float(loss) * graphs.num_graphs
            count += graphs.num_graphs
    return total / max(count, 1)
