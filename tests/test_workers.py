"""confgen.workers: the one initialisation of pool workers (signals, threads, parent watch), torch-free."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confgen.workers import init_worker, mp_context


def _probe():
    torch = sys.modules.get("torch")
    return {"sigint_ignored": signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
            "sigterm_default": signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,
            "omp": os.environ.get("OMP_NUM_THREADS"),
            "torch_threads": torch.get_num_threads() if torch is not None else None}


def _raise(signum, frame):
    raise KeyboardInterrupt


def test_workers_leave_ctrl_c_to_the_parent_and_use_their_threads(monkeypatch):
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    old = signal.signal(signal.SIGTERM, _raise)  # as prepare's SIGTERM-as-interrupt handler
    try:
        with mp_context().Pool(1, initializer=init_worker) as pool:  # prepare's featurisers
            got = pool.apply(_probe)
        assert got == {"sigint_ignored": True, "sigterm_default": True, "omp": None, "torch_threads": 1}
        init = functools.partial(init_worker, 1, sigterm_default=False, omp_env=True)  # ensemble builders
        with mp_context().Pool(1, initializer=init) as pool:
            got = pool.apply(_probe)
        assert got == {"sigint_ignored": True, "sigterm_default": False, "omp": "1", "torch_threads": 1}
        with mp_context().Pool(1, initializer=init_worker, initargs=(None,)) as pool:  # threads left alone
            assert pool.apply(_probe)["torch_threads"] == torch.get_num_threads()
    finally:
        signal.signal(signal.SIGTERM, old)


def test_a_worker_exits_when_its_parent_is_gone(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = ("import os, sys, time\n"
            "from confgen.workers import init_worker\n"
            "if os.fork() == 0:\n"
            "    init_worker(None, parent=os.getppid())\n"
            f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            "    time.sleep(30)\n"
            "    os._exit(0)\n"
            "time.sleep(0.5)\n")
    subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, timeout=60, check=True)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        stat = Path(f"/proc/{child}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":  # exited, not yet reaped
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the worker outlived its parent")


def test_workers_module_imports_no_torch():
    code = "import sys, confgen.workers; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
