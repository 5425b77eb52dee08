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

The package, one job per module: :mod:`~confgen.library.options` (:class:`RunOptions`, shards,
:class:`LibraryReport`), :mod:`~confgen.library.chunks` (the unit of work and its result),
:mod:`~confgen.library.worker` (:func:`run_chunk`, the worker's model), :mod:`~confgen.library.backends` (local
process pool, Dask), :mod:`~confgen.library.state` (the progress file) and :mod:`~confgen.library.driver`
(:func:`sample_library`).
"""

from confgen.library.chunks import Chunk, ChunkResult
from confgen.library.driver import sample_library
from confgen.library.options import (
    BACKENDS,
    DEFAULT_CHUNK_SIZE,
    PROGRESS_SUFFIX,
    LibraryReport,
    RunOptions,
    parse_shard,
    progress_path,
    shard_range,
)
from confgen.library.worker import run_chunk

__all__ = ["RunOptions", "Chunk", "ChunkResult", "LibraryReport", "sample_library", "run_chunk", "parse_shard",
           "progress_path", "shard_range", "BACKENDS", "DEFAULT_CHUNK_SIZE", "PROGRESS_SUFFIX"]
