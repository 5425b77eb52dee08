"""Worker processes: the one initialisation of a pool worker and the start method of process pools (torch-free).

Every process pool of confgen (``prepare``'s featurisers, ``data.ensembles``' ensemble builders, the library's
local workers, scripts) starts its workers with :func:`init_worker`: Ctrl-C is left to the parent (which stops
the pool), SIGTERM ends the worker, and the worker uses ``threads`` CPU threads.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["init_worker", "mp_context"]


def init_worker(threads: int | None = 1, *, sigterm_default: bool = True, omp_env: bool = False,
                parent: int | None = None) -> None:
    """Initialise a pool worker process (pass as the pool's ``initializer``).

    Args:
        threads: CPU threads of torch in this worker, if torch is imported here (a pool forked or forkserved
            from a process that imported torch); ``None``: leave the thread counts alone.
        sigterm_default: restore SIGTERM's default action (a forked worker inherits the parent's handler, which
            may raise ``KeyboardInterrupt``); ``False`` keeps the inherited handler.
        omp_env: also set ``OMP_NUM_THREADS`` to ``threads`` unless it is set, so that a library imported later in
            the worker (torch included) starts with that many threads.
        parent: exit (status 1) when the process with this id is gone: a worker whose parent was SIGKILLed would
            otherwise live on.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sigterm_default:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if threads is not None:
        if omp_env:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="confgen-parent-watch").start()


def _exit_with(pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # a process of another user took the id: ours is gone
            os._exit(1)


def mp_context():
    """Fork where it is safe (Linux), spawn elsewhere."""
    import multiprocessing

    return multiprocessing.get_context("fork" if os.name == "posix" and os.uname().sysname == "Linux" else "spawn")
