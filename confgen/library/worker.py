"""The worker side: :func:`run_chunk` (a chunk's conformers and SDF text) and the initialisation of a local pool
worker. A worker loads each checkpoint once (:func:`confgen.generation.request.resolve_model` keeps it)."""

from __future__ import annotations

import os
import resource
import threading
import time

from confgen.errors import InputError
from confgen.io import conformer_records
from confgen.library.chunks import Chunk, ChunkResult
from confgen.library.options import RunOptions
from confgen.workers import init_worker

def init_local_worker(threads: int, driver: int) -> None:
    """Local pool workers leave Ctrl-C to the driver (which kills them), use ``threads`` cores each, and exit when
    the driver process ``driver`` is gone (SIGKILLed: nothing else would end them)."""
    init_worker(threads, parent=driver)  # torch's threads: the forkserver preloaded it (run_chunk checks them too)
    _thread_lock_for_tqdm()


def _thread_lock_for_tqdm() -> None:
    """tqdm's default lock is a multiprocessing semaphore registered with the resource tracker: a worker killed
    mid-run would leave it "leaked" (a warning at exit). Workers draw no bars: a thread lock does."""
    from tqdm import tqdm

    if not isinstance(getattr(tqdm, "_lock", None), type(threading.RLock())):
        tqdm.set_lock(threading.RLock())


def run_chunk(chunk: Chunk, options: RunOptions, threads: int = 1) -> ChunkResult:
    """Generate the conformers of one chunk and render its SDF text (runs on a worker).

    Args:
        chunk: the records.
        options: the run's options.
        threads: CPU threads for the network, ETKDG and MMFF94.

    Returns:
        The chunk's SDF records (those of :class:`confgen.io.AtomicSDFWriter`, byte for byte) and counters.
    """
    import torch

    from confgen.config import resolve_preset
    from confgen.generation import GenerationRequest, GenerationStats, generate_conformers, progress_budgets
    from confgen.generation.request import loaded_models
    from confgen.progress import Progress

    t0 = time.perf_counter()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _thread_lock_for_tqdm()
    stats = GenerationStats()
    gen_errors: list[InputError] = []
    mols = []
    preset = resolve_preset(options.preset, dict(options.preset_overrides))
    bar = Progress(progress_budgets(chunk.counts, preset, options.relax, write=True), enabled=False)
    if chunk.records:
        request = GenerationRequest(
            [r.mol for r in chunk.records], chunk.counts, model=options.model, preset=preset, seed=options.seed,
            batch_size=options.batch_size, device=options.device, relax=options.relax, progress=bar,
            workers=threads, ids=[r.index for r in chunk.records], sources=[r.source for r in chunk.records])
        mols = generate_conformers(request, errors=gen_errors, stats=stats)
    parts, n_conf, n_mol = [], 0, 0
    with bar.phase("writing"):
        for rec, mol in zip(chunk.records, mols):
            if mol is None:
                continue
            texts = conformer_records(mol, name=rec.name, smiles=rec.smiles, index=rec.index)
            parts.extend(texts)
            n_conf += len(texts)
            n_mol += 1
            bar.advance(len(texts))
    index_of = {r.source: r.index for r in chunk.records}
    errors = list(chunk.errors) + [(index_of.get(e.source, chunk.stop), str(e)) for e in gen_errors]
    errors.sort(key=lambda e: e[0])  # input order
    return ChunkResult(number=chunk.number, start=chunk.start, stop=chunk.stop, sdf="".join(parts),
                       conformers=n_conf, molecules=n_mol, errors=[line for _, line in errors],
                       warnings=list(chunk.warnings) + list(stats.warnings), salts=chunk.salts,
                       counters=stats.counters(), phase_work=dict(bar.work),
                       phase_seconds=dict(bar.seconds),
                       pid=os.getpid(), peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                       model_loads=loaded_models(), seconds=time.perf_counter() - t0)
