"""Where chunks run: :class:`LocalPool` (worker processes on this machine) and :class:`DaskPool` (a Dask
``distributed`` cluster), with the same ``submit`` / ``wait`` / ``close``."""

from __future__ import annotations

import multiprocessing
import os
from concurrent import futures as cf
from pathlib import Path

from confgen.errors import ConfgenError
from confgen.library.chunks import Chunk
from confgen.library.options import RunOptions
from confgen.library.worker import init_local_worker, run_chunk

class LocalPool:
    """Worker processes on this machine (forkserver: each forks from a server that imported torch once)."""

    def __init__(self, workers: int, threads: int):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["confgen.generation.pipeline"])
        self._before = set(multiprocessing.active_children())
        self.size = workers
        self.threads = threads
        self._pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_local_worker,
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


class DaskPool:
    """A Dask ``distributed`` cluster: a LocalCluster of ``workers`` processes, or the cluster at ``scheduler``
    (an address such as ``tcp://host:8786``, or a scheduler file)."""

    def __init__(self, workers: int, threads: int, scheduler: str | None):
        distributed = require_dask()
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


def require_dask():
    try:
        import distributed
    except ImportError:
        raise ConfgenError("--backend dask needs Dask: pip install 'confgen[dask]' (dask[distributed])") from None
    return distributed
