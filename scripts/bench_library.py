"""Large-library checks of ``confgen sample`` (issue 14): the Target check and the numbers of docs/benchmarks.md.

``target``  (the issue's Target): on the first N SMILES of an input, ``confgen sample -n 2`` once uninterrupted
(the reference), then once killed twice (SIGTERM, as a job scheduler preempts; then SIGKILL of the driver) and
resumed to the end, then as 4 shards concatenated with ``cat``: both must be byte for byte the reference.
Reports wall times and the peak resident memory of the process tree of the reference run.

``speed``: conformers/s of the same input on 1 and 2 local worker processes and on a Dask LocalCluster of 2
workers, in one run (the 1-vs-2 ratio and the Dask overhead against ``--workers 2``), with the load average.

``memory``: peak resident memory per worker (and of the driver) with ``-n 1`` on the first 1,000 and the first
10,000 molecules (``--memory-sizes``): flat when nothing grows with the input.

Usage::

    python scripts/bench_library.py target --input ../shared/data/splits/geom_drugs/train_pool_smiles.smi \
        --n-mols 2000 --work-dir /tmp/target --json target.json
    python scripts/bench_library.py speed --n-mols 200 --json speed.json
    python scripts/bench_library.py memory --memory-sizes 1000,10000 --json memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "splits" / "geom_drugs" / "train_pool_smiles.smi"


def _prefix(src: Path, n: int, work: Path) -> Path:
    path = work / f"first{n}.smi"
    with open(src) as fh:
        path.write_text("".join(line for _, line in zip(range(n), fh)))
    return path


def _cmd(inp: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "confgen", "sample", str(inp), "-o", str(out), "-n", "2", "--seed", "1",
            "--no-progress", *extra]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


class _TreeMemory(threading.Thread):
    """Polls the resident memory of a process and its descendants (psutil): the peak of the sum and of each."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_total, self.peak_each, self._done = pid, 0, 0, threading.Event()

    def run(self):
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.is_set():
            try:
                procs = [root] + root.children(recursive=True)
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.NoSuchProcess:
                        pass
                self.peak_total = max(self.peak_total, sum(rss))
                self.peak_each = max([self.peak_each] + rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.5)

    def stop(self):
        self._done.set()
        self.join()


def _run(cmd: list[str], log: Path) -> dict:
    t0 = time.perf_counter()
    with open(log, "a") as err:
        proc = subprocess.Popen(cmd, stderr=err, env=_env())
        mem = _TreeMemory(proc.pid)
        mem.start()
        rc = proc.wait()
        mem.stop()
    return {"rc": rc, "seconds": round(time.perf_counter() - t0, 1), "peak_rss_tree_mb": round(mem.peak_total / 2**20),
            "peak_rss_process_mb": round(mem.peak_each / 2**20)}


def _progress(out: Path) -> int:
    try:
        return json.loads(Path(str(out) + ".resume.json").read_text())["next_index"]
    except (OSError, ValueError, KeyError):
        return 0


def _interrupt_at(cmd: list[str], out: Path, at: int, sig: int, log: Path) -> dict:
    """Run until the progress file passes input record ``at``, then send ``sig`` to the driver."""
    t0 = time.perf_counter()
    with open(log, "a") as err:
        proc = subprocess.Popen(cmd, stderr=err, env=_env())
        while proc.poll() is None and _progress(out) < at:
            time.sleep(0.2)
        sent = time.perf_counter()
        if proc.poll() is None:
            proc.send_signal(sig)
        rc = proc.wait()
    return {"signal": signal.Signals(sig).name, "at_record": _progress(out), "rc": rc,
            "stop_seconds": round(time.perf_counter() - sent, 2), "seconds": round(time.perf_counter() - t0, 1)}


def target(args) -> dict:
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    inp = _prefix(Path(args.input), args.n_mols, work)
    log = work / "stderr.log"
    extra = ["--workers", str(args.workers)]
    res: dict = {"input": str(inp), "n_mols": args.n_mols, "workers": args.workers, "load_before": os.getloadavg()}
    ref = work / "reference.sdf"
    res["reference"] = _run(_cmd(inp, ref, *extra), log)
    out = work / "resumed.sdf"
    for p in (out, Path(str(out) + ".resume.json")):
        p.unlink(missing_ok=True)
    res["kill1"] = _interrupt_at(_cmd(inp, out, *extra), out, args.n_mols // 3, signal.SIGTERM, log)
    res["kill2"] = _interrupt_at(_cmd(inp, out, *extra, "--resume"), out, 2 * args.n_mols // 3, signal.SIGKILL, log)
    time.sleep(3)  # the SIGKILLed driver's workers notice and exit
    res["resume"] = _run(_cmd(inp, out, *extra, "--resume"), log)
    res["resumed_identical"] = out.read_bytes() == ref.read_bytes()
    shards = []
    for k in range(1, 5):
        s = work / f"shard{k}.sdf"
        res[f"shard{k}"] = _run(_cmd(inp, s, *extra, "--shard", f"{k}/4"), log)
        shards.append(s.read_bytes())
    res["shards_identical"] = b"".join(shards) == ref.read_bytes()
    res["leftover_files"] = sorted(p.name for p in work.iterdir() if p.name.endswith((".tmp", ".resume.json")))
    res["load_after"] = os.getloadavg()
    return res


def _api_run(inp: Path, out: Path, *, num_confs: int, workers: int, backend: str = "local",
             resume: bool = False) -> dict:
    from confgen.library import RunOptions, progress_path, sample_library

    if not resume:
        out.unlink(missing_ok=True)
        progress_path(out).unlink(missing_ok=True)
    t0 = time.perf_counter()
    rep = sample_library(inp, out, RunOptions(seed=1, num_confs=num_confs), workers=workers, backend=backend,
                         log=lambda line: None, resume=resume)
    wall = time.perf_counter() - t0
    return {"backend": backend, "workers": workers, "complete": rep.complete, "resumed_from": rep.resumed_from,
            "stopped_at": rep.next_index, "molecules": rep.molecules, "conformers": rep.conformers,
            "seconds_total": round(wall, 1), "seconds_sampling": round(rep.seconds, 1),
            "conformers_per_s": round(rep.conformers / wall, 2),
            "peak_rss_per_worker_mb": sorted(round(w["peak_rss_mb"]) for w in rep.workers.values()),
            "model_loads_per_worker": sorted(w["model_loads"] for w in rep.workers.values())}


def speed(args) -> dict:
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    inp = _prefix(Path(args.input), args.n_mols, work)
    res: dict = {"n_mols": args.n_mols, "num_confs": 2, "cpu_count": os.cpu_count(), "load_before": os.getloadavg()}
    res["local_1"] = _api_run(inp, work / "w1.sdf", num_confs=2, workers=1)
    res["local_2"] = _api_run(inp, work / "w2.sdf", num_confs=2, workers=2)
    res["ratio_2_vs_1"] = round(res["local_2"]["conformers_per_s"] / res["local_1"]["conformers_per_s"], 2)
    try:
        import distributed  # noqa: F401

        res["dask_2"] = _api_run(inp, work / "d2.sdf", num_confs=2, workers=2, backend="dask")
        res["dask_overhead_pct"] = round(100 * (res["dask_2"]["seconds_total"] / res["local_2"]["seconds_total"] - 1), 1)
        res["dask_identical"] = (work / "d2.sdf").read_bytes() == (work / "w2.sdf").read_bytes()
    except ImportError:
        res["dask_2"] = "not installed"
    res["identical_1_vs_2"] = (work / "w1.sdf").read_bytes() == (work / "w2.sdf").read_bytes()
    res["load_after"] = os.getloadavg()
    return res


def memory(args) -> dict:
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"num_confs": 1, "workers": args.workers, "load_before": os.getloadavg()}
    if args.deadline_s:  # stop gracefully (as SIGTERM from a scheduler does): partial numbers, resumable
        threading.Timer(args.deadline_s, os.kill, (os.getpid(), signal.SIGTERM)).start()
    for n in (int(x) for x in args.memory_sizes.split(",")):
        inp = _prefix(Path(args.input), n, work)
        r = _api_run(inp, work / f"mem{n}.sdf", num_confs=1, workers=args.workers, resume=args.resume)
        r["driver_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        res[str(n)] = r
    res["load_after"] = os.getloadavg()
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("target", "speed", "memory"))
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument("--n-mols", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-sizes", default="1000,10000")
    parser.add_argument("--work-dir", default="/tmp/confgen-bench-library")
    parser.add_argument("--json", default=None)
    parser.add_argument("--resume", action="store_true", help="memory: continue an interrupted run")
    parser.add_argument("--deadline-s", type=float, default=None, help="memory: SIGTERM after this many seconds")
    args = parser.parse_args()
    res = {"target": target, "speed": speed, "memory": memory}[args.what](args)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
