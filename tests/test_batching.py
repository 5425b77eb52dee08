"""Batches by atom count that adapt to memory (confgen.batching): tested on CPU with a simulated out-of-memory."""

import numpy as np
import pytest
import torch
from torch import nn

from confgen.batching import BatchPacker, is_out_of_memory, sample_cost
from confgen.generation import GenerationRequest, GenerationStats, generate_conformers
from confgen.io import read_inputs

from sample_models import TINY_PRESET, tiny_checkpoint


class MemoryLimited(nn.Module):
    """A score model that raises CUDA's OutOfMemoryError when a batch's atom pairs exceed ``limit``."""

    def __init__(self, inner: nn.Module, limit: int):
        super().__init__()
        self.inner = inner
        self.limit = limit
        self.cutoff = inner.cutoff
        self.schedule = inner.schedule
        self.ooms = 0
        self.largest = 0

    def forward(self, batch, pos, sigma, pairs=None):
        sizes = (batch.ptr[1:] - batch.ptr[:-1]).tolist()
        cost = sum(sample_cost(n) for n in sizes)
        if cost > self.limit:
            self.ooms += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        self.largest = max(self.largest, cost)
        return self.inner(batch, pos, sigma, pairs=pairs)


def test_packer_keeps_cpu_slicing_and_sorts_and_shrinks_for_gpus():
    costs = [9, 100, 4, 49, 25]
    cpu = BatchPacker(2)
    items, c = cpu.order(list("abcde"), costs)
    assert items == list("abcde")
    batches = []
    while items:
        n = cpu.take(c)
        batches.append(items[:n])
        items, c = items[n:], c[n:]
    assert batches == [["a", "b"], ["c", "d"], ["e"]]  # what range(0, len, batch_size) slicing gives
    gpu = BatchPacker(10, by_size=True)
    items, c = gpu.order(list("abcde"), costs)
    assert items == list("bdeac") and gpu.take(c) == 5
    gpu.shrink(sum(c))  # 187 -> at most 93 per batch
    assert gpu.max_cost == 93 and gpu.take(c) == 1 and gpu.take(c[1:]) == 4  # [100] alone, then 49 + 25 + 9 + 4
    assert is_out_of_memory(torch.OutOfMemoryError("x")) and is_out_of_memory(RuntimeError("CUDA out of memory"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_out_of_memory_shrinks_batches_and_skips_a_molecule_too_large_for_any(shared_data, one_thread):
    """Real GEOM-Drugs molecules: the same coordinates with and without memory pressure; a molecule whose one
    conformer does not fit is reported and skipped, the others are written."""
    from confgen.checkpoint import load_model

    records = read_inputs(shared_data / "splits" / "geom_drugs" / "test_smiles.csv", errors=[])[:20]
    records = sorted(records, key=lambda r: r.mol.GetNumAtoms())[:5]  # the smallest: a quick test
    mols = [r.mol for r in records]
    sizes = [m.GetNumAtoms() for m in mols]
    model = load_model(tiny_checkpoint())
    kw = dict(preset=TINY_PRESET, seed=3, progress=False, relax="none", batch_size=12, workers=1)
    free = generate_conformers(GenerationRequest(mols, 2, model=model, **kw))
    # room for about two conformers of the largest molecule: batches of 12 must shrink
    limited = MemoryLimited(model, limit=2 * sample_cost(max(sizes)) + 1)
    stats = GenerationStats()
    squeezed = generate_conformers(GenerationRequest(mols, 2, model=limited, **kw), stats=stats)
    assert limited.ooms > 0 and limited.largest <= limited.limit
    for a, b in zip(free, squeezed):
        np.testing.assert_array_equal(np.stack([c.GetPositions() for c in a.GetConformers()]),
                                      np.stack([c.GetPositions() for c in b.GetConformers()]))
    # now the largest molecule(s) do not fit even alone
    limited = MemoryLimited(model, limit=sample_cost(max(sizes)) - 1)
    too_big = [i for i, n in enumerate(sizes) if n == max(sizes)]
    errors = []
    out = generate_conformers(GenerationRequest(mols, 2, model=limited, sources=[r.source for r in records],
                                                **kw), errors=errors)
    assert [i for i, m in enumerate(out) if m is None] == too_big and len(errors) == len(too_big)
    for i, exc in zip(too_big, errors):
        assert str(exc).startswith(records[i].source) and "too large for the cpu memory" in str(exc)
    assert all(m.GetNumConformers() == 2 for i, m in enumerate(out) if i not in too_big)
    with pytest.raises(Exception, match="too large"):
        generate_conformers(GenerationRequest(mols, 2, model=limited, **kw))  # errors=None: raised
