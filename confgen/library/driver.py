"""The driver of a library run: :func:`sample_library` reads the input in chunks, hands them to a backend, appends
the results in input order and records each in the progress file; SIGINT / SIGTERM stop it within seconds."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent import futures as cf
from dataclasses import replace
from pathlib import Path
from typing import Callable

from confgen.errors import ConfgenError
from confgen.io import count_inputs
from confgen.library.backends import DaskPool, LocalPool, require_dask
from confgen.library.chunks import read_chunks
from confgen.library.options import BACKENDS, DEFAULT_CHUNK_SIZE, LibraryReport, RunOptions, progress_path, \
    shard_range
from confgen.library.state import commit, fingerprint as run_fingerprint, load_state, new_state, save_state

#: seconds between the driver's checks for a signal
_POLL_S = 0.2


def _zero_counters() -> dict:
    from confgen.generation import GenerationStats

    return GenerationStats().counters()


class _Signals:
    """SIGINT / SIGTERM set a flag that the driver polls (only in the main thread; elsewhere a no-op)."""

    def __init__(self):
        self.received: int | None = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def sample_library(input_path: str | os.PathLike, output: str | os.PathLike, options: RunOptions, *,
                   shard: tuple[int, int] = (1, 1), chunk_size: int = DEFAULT_CHUNK_SIZE, workers: int = 1,
                   threads: int = 1, backend: str = "local", scheduler: str | None = None, resume: bool = False,
                   progress: bool = False, log: Callable[[str], None] | None = None) -> LibraryReport:
    """Generate conformers for every molecule of a (large) input file into one SDF, streamed and resumable.

    Args:
        input_path: .smi/.txt/.csv/.sdf input.
        output: output SDF (written in place chunk by chunk; its progress file ``OUT.resume.json`` exists
            until the run completes).
        options: what decides the coordinates.
        shard: ``(k, n)``: process only the k-th of n contiguous slices of the input.
        chunk_size: input records per chunk (does not change the coordinates).
        workers: worker processes (local backend, or the size of a Dask LocalCluster).
        threads: CPU threads per worker.
        backend: ``"local"`` or ``"dask"``.
        scheduler: Dask scheduler address or scheduler file (``None``: a LocalCluster of ``workers``).
        resume: continue the interrupted run that wrote ``output`` (a completed output is left as is).
        progress: show a progress bar (molecules).
        log: receives one line per input error (``"error: ..."``) and warning (``"warning: ..."``) as chunks are
            written; default: stderr.

    Returns:
        A :class:`LibraryReport`.

    Raises:
        ConfgenError: unreadable input, missing model, bad arguments, a progress file from a different run, a
            worker that died (the output and progress file are kept: continue with ``resume=True``).
    """
    log = log or (lambda line: print(line, file=sys.stderr))
    input_path, output = Path(input_path), Path(output)
    if chunk_size < 1:
        raise ConfgenError("--chunk-size must be at least 1")
    if workers < 1:
        raise ConfgenError("workers must be at least 1")
    if backend not in BACKENDS:
        raise ConfgenError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "dask":
        require_dask()  # before anything is written
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise ConfgenError(f"output directory {directory} does not exist")
    total = count_inputs(input_path, count_column=options.count_column)
    lo, hi = shard_range(total, shard)
    state_path = progress_path(output)
    if options.seed is None:
        seed = load_state(state_path)["run"]["seed"] if resume and state_path.exists() else None
        if seed is None:
            import secrets

            seed = secrets.randbits(31)
            log(f"random seed {seed} (pass --seed {seed} to reproduce)")
        options = replace(options, seed=seed)
    fingerprint = run_fingerprint(input_path, options, shard, total)
    totals = {"conformers": 0, "molecules": 0, "failed": 0, "salts": 0, "counters": _zero_counters()}

    with _Signals() as signals:
        if state_path.exists():
            if not resume:
                raise ConfgenError(f"{output}: an interrupted run left {state_path.name}; pass --resume to "
                                   "continue it, or remove both files to start again")
            state = load_state(state_path)
            diff = [k for k in sorted(set(fingerprint) | set(state["run"]))
                    if fingerprint.get(k) != state["run"].get(k)]
            if diff:
                raise ConfgenError(f"{output}: cannot resume: {', '.join(diff)} differ from the interrupted run "
                                   f"(recorded in {state_path.name})")
            if not output.exists() and state["bytes"] == 0:  # killed before the output was created
                output.touch()
            size = output.stat().st_size if output.exists() else -1
            if size < state["bytes"]:
                raise ConfgenError(f"{output}: shorter than the {state['bytes']} bytes its progress file records; "
                                   "cannot resume (remove both files to start again)")
            with open(output, "r+b") as fh:  # drop a chunk half-appended when the driver was killed
                fh.truncate(state["bytes"])
            totals = state["totals"]
            start = state["next_index"]
        elif resume and output.exists():
            log(f"note: {output} has no progress file: its run completed; nothing to resume")
            return LibraryReport(complete=True, signal=None, conformers=0, molecules=0, failed=0, counters={},
                                 next_index=hi, start=lo, stop=hi, resumed_from=hi, workers={}, seconds=0.0)
        else:
            start = lo
            state = new_state(fingerprint, lo, totals)
            save_state(state_path, state)
            with open(output, "wb"):
                pass
        report = LibraryReport(complete=False, signal=None, conformers=0, molecules=0, failed=0, counters={},
                               next_index=start, start=lo, stop=hi, resumed_from=start, workers={}, seconds=0.0)
        _drive(input_path, output, state_path, state, options, start=start, stop=hi, lo=lo,
               chunk_size=chunk_size, workers=workers, threads=threads, backend=backend, scheduler=scheduler,
               progress=progress, log=log, signals=signals, report=report)
    totals = state["totals"]
    report.conformers, report.molecules, report.failed = totals["conformers"], totals["molecules"], totals["failed"]
    report.salts = totals.get("salts", 0)
    report.counters = dict(totals["counters"])
    report.next_index = state["next_index"]
    if report.signal is None and state["next_index"] >= hi:
        report.complete = True
        state_path.unlink(missing_ok=True)
    return report


def _drive(input_path, output, state_path, state, options, *, start, stop, lo, chunk_size, workers, threads,
           backend, scheduler, progress, log, signals, report) -> None:
    """Submit chunks with a bounded window, append results in input order, stop on a signal."""
    from tqdm.auto import tqdm

    if start >= stop:
        return
    t0 = time.perf_counter()
    pool = LocalPool(workers, threads) if backend == "local" else DaskPool(workers, threads, scheduler)
    killed = True
    bar = tqdm(total=stop - lo, initial=start - lo, disable=not progress, unit="mol", desc="molecules")
    fd = os.open(output, os.O_WRONLY)
    try:
        os.lseek(fd, state["bytes"], os.SEEK_SET)
        source = read_chunks(input_path, start, stop, chunk_size, options, 0)
        window = 2 * pool.size + 1
        in_flight: dict = {}  # future -> chunk number
        done: dict[int, object] = {}  # chunk number -> finished future
        next_commit = 0
        exhausted = False
        while True:
            if signals.received is not None:
                report.signal = signals.received
                return
            while not exhausted and len(in_flight) + len(done) < window:
                chunk = next(source, None)
                if chunk is None:
                    exhausted = True
                    break
                in_flight[pool.submit(chunk, options)] = chunk.number
            if not in_flight and not done:
                break
            for fut in pool.wait(set(in_flight), _POLL_S) if in_flight else ():
                done[in_flight.pop(fut)] = fut
            while next_commit in done and signals.received is None:
                fut = done.pop(next_commit)
                try:
                    result = fut.result()
                except cf.process.BrokenProcessPool:
                    raise ConfgenError(_died(output, state)) from None
                except Exception as exc:  # noqa: BLE001 - a worker failure (Dask wraps a killed worker too)
                    if type(exc).__name__ == "KilledWorker":
                        raise ConfgenError(_died(output, state)) from None
                    raise
                commit(fd, state_path, state, result)
                for line in result.errors:
                    log(f"error: {line}")
                for line in result.warnings:
                    log(f"warning: {line}")
                w = report.workers.setdefault(result.pid, {"peak_rss_mb": 0.0, "model_loads": 0, "chunks": 0})
                w["peak_rss_mb"] = max(w["peak_rss_mb"], result.peak_rss_mb)
                w["model_loads"] = max(w["model_loads"], result.model_loads)
                w["chunks"] += 1
                for k, v in result.phase_work.items():
                    report.phase_work[k] = report.phase_work.get(k, 0) + v
                for k, v in result.phase_seconds.items():
                    report.phase_seconds[k] = report.phase_seconds.get(k, 0.0) + v
                bar.update(result.stop - result.start)
                next_commit += 1
        killed = False
    finally:
        os.close(fd)
        bar.close()
        pool.close(kill=killed)
        report.seconds = time.perf_counter() - t0


def _died(output: Path, state: dict) -> str:
    return (f"a worker process died (killed, or out of memory); {output} holds the molecules of the input records "
            f"before {state['next_index']}: continue with --resume")

