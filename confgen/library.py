"""Large libraries: streamed, resumable, sharded ``confgen sample`` on local worker processes or a Dask cluster.

:func:`sample_library` reads the input in chunks of ``chunk_size`` records, hands each chunk to a worker
(:func:`run_chunk`: :func:`confgen.generation.generate_conformers`, then the chunk's SDF text), and appends the
finished chunks to the output **in input order** as they come back:

* **Atomic per chunk.** A chunk's records are appended with one ``write`` and ``fsync``; then the progress file
  ``OUT.resume.json`` (written with :func:`confgen.chem.files.atomic_write`) records the byte length and the next input
  record. The output always ends at a chunk boundary that the progress file names: an interruption (Ctrl-C,
  SIGTERM, a killed worker or driver) leaves a valid SDF of the molecules finished so far, no temporary file, and
  the progress file; the progress file is removed when the run completes.
* **Resume.** ``resume=True`` checks that the options, seed, model, input and shard are those of the progress file
  (one line per difference otherwise), cuts the output back to the recorded length (bytes of a chunk that was
  being appended when the driver was SIGKILLed), skips the records already done and continues.
* **Seeds per molecule.** Every conformer's noise and ETKDG guess are seeded by (seed, input record index,
  conformer) (:mod:`confgen.generation`): the coordinates do not depend on the chunk size, the number of workers,
  the backend or the shard, so an interrupted-and-resumed run, a run on 2 workers and 4 concatenated shards
  give the same file as one uninterrupted run.
* **Shards.** ``shard=(k, n)`` processes records ``[(k-1) M / n, k M / n)`` of the M input records (counted
  without parsing): the n shards of a job array cover the input exactly once, and ``cat`` of their outputs in
  shard order is the output of the whole input.
* **Workers.** ``backend="local"``: a pool of worker processes (forkserver: torch is imported once, in the
  server), one core each. ``backend="dask"``: the same :func:`run_chunk` on a Dask ``distributed`` cluster (an
  optional extra, ``pip install 'confgen[dask]'``): a ``LocalCluster`` of ``workers`` processes, or an existing
  cluster given by its scheduler address or scheduler file (``dask-jobqueue``, ``dask-mpi`` on SLURM/PBS). The
  model is loaded once per worker process and cached there.
* **Signals.** The driver does no chemistry: it only reads input, waits and writes. SIGINT and SIGTERM set a flag
  that the driver checks every 0.2 s; it then kills the workers (which may be inside a long RDKit call) and
  returns within seconds with exit status 130 / 143.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from concurrent import futures as cf
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from confgen.errors import ConfgenError, InputError
from confgen.chem.files import atomic_write
from confgen.io import conformer_records, count_inputs, iter_inputs

__all__ = ["RunOptions", "Chunk", "ChunkResult", "LibraryReport", "sample_library", "run_chunk", "parse_shard",
           "progress_path", "BACKENDS", "DEFAULT_CHUNK_SIZE"]

#: molecules per chunk: the unit of work of a worker and of an atomic append to the output
DEFAULT_CHUNK_SIZE = 32
BACKENDS = ("local", "dask")
#: suffix of the progress file beside the output
PROGRESS_SUFFIX = ".resume.json"
_FORMAT = 1
_POLL_S = 0.2


@dataclass(frozen=True)
class RunOptions:
    """What decides the coordinates of a run (recorded in the progress file and checked on resume).

    Attributes:
        seed: random seed (per molecule: combined with each record's input index); ``None``: the seed of the run
            being resumed, else a random one (logged).
        num_confs: conformers per molecule; ``None``: a CSV's ``n_conformers`` (x ``num_confs_factor``), else 10.
        num_confs_factor: CSV input: ``num_confs_factor`` x ``n_conformers`` conformers per molecule.
        model: checkpoint path, ``None`` = the shipped default model.
        preset: sampler preset name (``None`` = the default preset).
        preset_overrides: sampler parameters replacing the preset's.
        relax: ``"mmff"`` or ``"none"``.
        batch_size: conformers per forward pass (does not change the coordinates).
        device: torch device of the workers.
        fragments, stereo, max_stereoisomers, count_column: input handling, as :func:`confgen.io.read_inputs`
            and :func:`confgen.io.resolve_stereo`.
    """

    seed: int | None = None
    num_confs: int | None = None
    num_confs_factor: float | None = None
    model: str | None = None
    preset: str | None = None
    preset_overrides: dict = field(default_factory=dict)
    relax: str = "mmff"
    batch_size: int = 64
    device: str = "cpu"
    fragments: str = "largest"
    stereo: str = "one"
    max_stereoisomers: int = 8
    count_column: str | None = None

    def num_confs_for(self, record) -> int:
        """Conformers to generate for one :class:`confgen.io.InputRecord`.

        Raises:
            InputError: ``num_confs_factor`` without an ``n_conformers`` value for this record.
        """
        if self.num_confs is not None:
            return self.num_confs
        if self.num_confs_factor is not None:
            if record.num_confs is None:
                raise InputError("--num-confs-factor needs a conformer count for every molecule (empty count cell)",
                                 source=record.source, smiles=record.smiles)
            return int(round(self.num_confs_factor * record.num_confs))
        return record.num_confs if record.num_confs is not None else 10


@dataclass
class Chunk:
    """Input records ``[start, stop)`` of the input file, the unit of work of a worker.

    Attributes:
        number: position of the chunk in the run (0, 1, ...).
        start: index of its first input record.
        stop: one past the index of its last input record.
        records: the usable :class:`confgen.io.InputRecord` of the range.
        counts: conformers per record.
        errors: ``(input index, line)`` per unusable record of the range (found while reading).
        warnings: lines about records of the range (unspecified stereo resolved).
        salts: records of the range whose extra fragments were removed.
    """

    number: int
    start: int
    stop: int
    records: list = field(default_factory=list)
    counts: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    salts: int = 0

    def __getstate__(self):  # Mols travel with their properties (fragments removed, stereo policy, ...)
        from rdkit import Chem

        state = dict(self.__dict__)
        state["records"] = [replace(r, mol=r.mol.ToBinary(Chem.PropertyPickleOptions.AllProps))
                            for r in self.records]
        return state

    def __setstate__(self, state):
        from rdkit import Chem

        state["records"] = [replace(r, mol=Chem.Mol(r.mol)) for r in state["records"]]
        self.__dict__.update(state)


@dataclass
class ChunkResult:
    """What a worker returns for a :class:`Chunk`: its SDF text (records in input order) and counters."""

    number: int
    start: int
    stop: int
    sdf: str
    conformers: int
    molecules: int
    errors: list
    warnings: list
    counters: dict
    salts: int
    phase_work: dict
    phase_seconds: dict
    pid: int
    peak_rss_mb: float
    model_loads: int
    seconds: float


@dataclass
class LibraryReport:
    """Outcome of :func:`sample_library` (totals include the parts written before a resume).

    Attributes:
        complete: every record of the shard was processed (the progress file is removed).
        signal: the signal that interrupted the run (``signal.SIGINT`` / ``SIGTERM``), else ``None``.
        conformers / molecules / failed: conformers and molecules written, input records that failed.
        counters: summed :class:`confgen.generation.GenerationStats` counters.
        next_index: the first input record not yet written.
        records: number of input records of the shard; ``start`` / ``stop`` its index range.
        resumed_from: the input record this invocation started at.
        workers: per worker process id: ``{"peak_rss_mb", "model_loads", "chunks"}`` (this invocation).
        seconds: wall time of this invocation's sampling (start of the pool to the last chunk written).
    """

    complete: bool
    signal: int | None
    conformers: int
    molecules: int
    failed: int
    counters: dict
    next_index: int
    start: int
    stop: int
    resumed_from: int
    workers: dict
    seconds: float
    salts: int = 0
    phase_work: dict = field(default_factory=dict)
    phase_seconds: dict = field(default_factory=dict)

    def rates(self) -> str:
        """Per-phase work and worker-seconds of this invocation, summed over the workers (one line)."""
        from confgen.progress import Progress

        line = Progress({}, enabled=False)
        line.work.update(self.phase_work)
        line.seconds.update(self.phase_seconds)
        return line.summary()

    @property
    def exit_code(self) -> int:
        if self.signal is not None:
            return 128 + int(self.signal)
        return 1 if self.failed else 0


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N.

    Raises:
        ConfgenError: anything else.
    """
    try:
        k, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ConfgenError(f"--shard {text!r}: expected K/N, e.g. 3/8") from None
    if not 1 <= k <= n:
        raise ConfgenError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def shard_range(total: int, shard: tuple[int, int]) -> tuple[int, int]:
    """Input record range ``[start, stop)`` of shard ``(k, n)`` of ``total`` records (contiguous, in order)."""
    k, n = shard
    return (k - 1) * total // n, k * total // n


def progress_path(output: str | os.PathLike) -> Path:
    """The progress file of an output: ``OUT.sdf.resume.json`` beside it."""
    output = Path(output)
    return output.with_name(output.name + PROGRESS_SUFFIX)


# --------------------------------------------------------------------------------------------- worker side
_MODELS: dict = {}
_MODEL_LOADS = 0


def _worker_model(model: str | None, device: str):
    """The score model of this worker process, loaded on first use and cached (once per worker)."""
    global _MODEL_LOADS
    key = (model, device)
    if key not in _MODELS:
        from confgen.checkpoint import load_model

        _MODELS.clear()
        _MODELS[key] = load_model(model, device=device)
        _MODEL_LOADS += 1
    return _MODELS[key]


def _init_local_worker(threads: int, driver: int) -> None:
    """Local pool workers leave Ctrl-C to the driver (which kills them), use one core each, and exit when the
    driver process ``driver`` is gone (SIGKILLed: nothing else would end them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import torch

    torch.set_num_threads(threads)
    _thread_lock_for_tqdm()
    threading.Thread(target=_exit_with, args=(driver,), daemon=True, name="confgen-driver-watch").start()


def _exit_with(pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # a process of another user took the id: ours is gone
            os._exit(1)


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
        model = _worker_model(options.model, options.device)
        request = GenerationRequest(
            [r.mol for r in chunk.records], chunk.counts, model=model, preset=preset, seed=options.seed,
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
                       model_loads=_MODEL_LOADS, seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------- executors
class _LocalPool:
    """Worker processes on this machine (forkserver: each forks from a server that imported torch once)."""

    def __init__(self, workers: int, threads: int):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["confgen.generation.pipeline"])
        self._before = set(multiprocessing.active_children())
        self.size = workers
        self.threads = threads
        self._pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_local_worker,
                                            initargs=(threads, os.getpid()))

    def submit(self, chunk: Chunk, options: RunOptions):
        return self._pool.submit(run_chunk, chunk, options, self.threads)

    @staticmethod
    def wait(pending, timeout: float):
        return cf.wait(pending, timeout=timeout, return_when=cf.FIRST_COMPLETED)[0]

    def close(self, kill: bool) -> None:
        if not kill:
            self._pool.shutdown(wait=True)
            return
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in set(multiprocessing.active_children()) - self._before:  # workers busy in RDKit/torch
            proc.kill()
        for proc in set(multiprocessing.active_children()) - self._before:
            proc.join(timeout=5)
        self._pool.shutdown(wait=True)  # the pool's manager thread sees the dead workers and frees its queues


class _DaskPool:
    """A Dask ``distributed`` cluster: a LocalCluster of ``workers`` processes, or the cluster at ``scheduler``
    (an address such as ``tcp://host:8786``, or a scheduler file)."""

    def __init__(self, workers: int, threads: int, scheduler: str | None):
        distributed = _require_dask()
        import logging

        self._distributed = distributed
        self.threads = threads
        self._cluster = None
        if scheduler:
            if Path(scheduler).is_file():
                self._client = distributed.Client(scheduler_file=scheduler)
            else:
                self._client = distributed.Client(scheduler)
            self.size = max(1, sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values()))
        else:
            self._cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                     dashboard_address=None, silence_logs=logging.ERROR)
            self._client = distributed.Client(self._cluster)
            self.size = workers

    def submit(self, chunk: Chunk, options: RunOptions):
        return self._client.submit(run_chunk, chunk, options, self.threads, pure=False)

    def wait(self, pending, timeout: float):
        try:
            return self._distributed.wait(list(pending), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return set()

    def close(self, kill: bool) -> None:
        try:
            self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()


def _require_dask():
    try:
        import distributed
    except ImportError:
        raise ConfgenError("--backend dask needs Dask: pip install 'confgen[dask]' (dask[distributed])") from None
    return distributed


# --------------------------------------------------------------------------------------------- driver
def _zero_counters() -> dict:
    from confgen.generation import GenerationStats

    return GenerationStats().counters()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fingerprint(input_path: Path, options: RunOptions, shard: tuple[int, int], total: int) -> dict:
    """Everything a resumed run must share with the interrupted one (JSON-able)."""
    from confgen.checkpoint import default_checkpoint_path
    from confgen.config import resolve_preset

    model = Path(options.model) if options.model else default_checkpoint_path()
    if model is None or not model.is_file():
        raise ConfgenError(f"model checkpoint {options.model or '(shipped default)'} does not exist")
    sampler = resolve_preset(options.preset, dict(options.preset_overrides)).to_dict()
    import torch

    return {"input_sha256": _sha256(input_path), "input_records": total, "shard": list(shard),
            "model_sha256": _sha256(model), "sampler": sampler, "seed": options.seed,
            "num_confs": options.num_confs, "num_confs_factor": options.num_confs_factor, "relax": options.relax,
            "device": torch.device(options.device).type, "fragments": options.fragments, "stereo": options.stereo,
            "max_stereoisomers": options.max_stereoisomers, "count_column": options.count_column}


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


def _chunks(input_path: Path, start: int, stop: int, chunk_size: int, options: RunOptions, first_number: int):
    """Chunks of ``chunk_size`` consecutive input records in ``[start, stop)``."""
    from confgen.io import resolve_stereo

    chunk = Chunk(number=first_number, start=start, stop=start)
    for item in iter_inputs(input_path, start=start, stop=stop, fragments=options.fragments,
                            count_column=options.count_column):
        index = chunk.stop
        if isinstance(item, InputError):
            chunk.errors.append((index, str(item)))
        else:
            try:
                n = options.num_confs_for(item)
                mols, note = resolve_stereo(item.mol, options.stereo, max_isomers=options.max_stereoisomers,
                                            source=item.source, label=item.smiles, name=item.name)
            except InputError as exc:
                chunk.errors.append((index, str(exc)))
            else:
                if note:
                    chunk.warnings.append(note)
                chunk.salts += bool(getattr(item, "removed_fragments", None))
                for k, mol in enumerate(mols):
                    name = item.name if len(mols) == 1 else f"{item.name}_iso{k + 1}"
                    chunk.records.append(replace(item, mol=mol, name=name))
                    chunk.counts.append(n)
        chunk.stop += 1
        if chunk.stop - chunk.start == chunk_size:
            yield chunk
            chunk = Chunk(number=chunk.number + 1, start=chunk.stop, stop=chunk.stop)
    if chunk.stop > chunk.start:
        yield chunk


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
        _require_dask()  # before anything is written
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise ConfgenError(f"output directory {directory} does not exist")
    total = count_inputs(input_path, count_column=options.count_column)
    lo, hi = shard_range(total, shard)
    state_path = progress_path(output)
    if options.seed is None:
        seed = _load_state(state_path)["run"]["seed"] if resume and state_path.exists() else None
        if seed is None:
            import secrets

            seed = secrets.randbits(31)
            log(f"random seed {seed} (pass --seed {seed} to reproduce)")
        options = replace(options, seed=seed)
    fingerprint = _fingerprint(input_path, options, shard, total)
    totals = {"conformers": 0, "molecules": 0, "failed": 0, "salts": 0, "counters": _zero_counters()}

    with _Signals() as signals:
        if state_path.exists():
            if not resume:
                raise ConfgenError(f"{output}: an interrupted run left {state_path.name}; pass --resume to "
                                   "continue it, or remove both files to start again")
            state = _load_state(state_path)
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
            state = {"format": _FORMAT, "run": fingerprint, "next_index": lo, "bytes": 0, "totals": totals}
            atomic_write(state_path, lambda fh: json.dump(state, fh, indent=1))
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


def _load_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
        if state.get("format") != _FORMAT:
            raise ValueError(f"format {state.get('format')!r}")
        for key in ("run", "next_index", "bytes", "totals"):
            state[key]  # noqa: B018 - presence check
        return state
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfgenError(f"{path}: unreadable progress file ({exc}); remove it and the output to start "
                           "again") from None


def _drive(input_path, output, state_path, state, options, *, start, stop, lo, chunk_size, workers, threads,
           backend, scheduler, progress, log, signals, report) -> None:
    """Submit chunks with a bounded window, append results in input order, stop on a signal."""
    from tqdm.auto import tqdm

    if start >= stop:
        return
    t0 = time.perf_counter()
    pool = _LocalPool(workers, threads) if backend == "local" else _DaskPool(workers, threads, scheduler)
    killed = True
    bar = tqdm(total=stop - lo, initial=start - lo, disable=not progress, unit="mol", desc="molecules")
    fd = os.open(output, os.O_WRONLY)
    try:
        os.lseek(fd, state["bytes"], os.SEEK_SET)
        source = _chunks(input_path, start, stop, chunk_size, options, 0)
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
                _commit(fd, state_path, state, result)
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


def _commit(fd: int, state_path: Path, state: dict, result: ChunkResult) -> None:
    """Append one chunk's records (one write, fsync), then record it in the progress file (atomic rename)."""
    data = result.sdf.encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)
    totals = state["totals"]
    totals["conformers"] += result.conformers
    totals["molecules"] += result.molecules
    totals["failed"] += len(result.errors)
    totals["salts"] = totals.get("salts", 0) + result.salts
    for k, v in result.counters.items():
        totals["counters"][k] = totals["counters"].get(k, 0) + v
    state["bytes"] += len(data)
    state["next_index"] = result.stop
    atomic_write(state_path, lambda fh: json.dump(state, fh, indent=1))
