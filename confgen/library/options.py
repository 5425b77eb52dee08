"""What a library run is asked and what it reports: :class:`RunOptions` (what decides the coordinates), the shard
of the input (``--shard K/N``), the progress file's path and :class:`LibraryReport`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from confgen.errors import ConfgenError, InputError

#: molecules per chunk: the unit of work of a worker and of an atomic append to the output
DEFAULT_CHUNK_SIZE = 32
BACKENDS = ("local", "dask")
#: suffix of the progress file beside the output
PROGRESS_SUFFIX = ".resume.json"


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

