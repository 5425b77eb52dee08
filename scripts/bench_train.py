#!/usr/bin/env python
"""Benchmark the score networks: inference forward time and training throughput / peak memory.

    python scripts/bench_train.py [--device cpu|cuda] [--threads 1] [--backbones egnn clofnet]
                                  [--set model.hidden_dim=96 ...] [--steps 20] [--json OUT]

Data (all real): GEOM-Drugs conformers of ../shared/data/geom_drugs_train10 (drug size, 503 conformers of 10
molecules) and the QM9 molecules shipped in tests/data/tiny_qm9.

* forward: one no-grad call of the score model on a batch of ``--forward-batch`` (64) drug conformers, minimum
  over repeats; "conformers/s at K calls" = batch / time / K is the sampling rate a sampler with K network
  calls per conformer could reach on this device.
* train: optimisation steps (forward, backward, AdamW, EMA) at ``train.batch_size`` on each dataset;
  conformers/s over ``--steps`` steps after 2 warm-up steps; peak memory = the process's peak resident set
  size on CPU (each measurement runs in a fresh subprocess), ``torch.cuda.max_memory_allocated`` on GPU.
* CPU time (``time.process_time``) is reported beside wall time: on a shared machine it shows the cost
  without the time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRUGS_SDF = REPO.parent / "shared" / "data" / "geom_drugs_train10" / "true_conformers_train_first_10smis.sdf"
TINY = REPO / "tests" / "data" / "tiny_qm9"


def drug_graphs(path=DRUGS_SDF):
    from confgen.data.features import featurize_mol
    from confgen.data.readers import iter_molecules

    out = []
    for rec in iter_molecules(str(path)):
        g = featurize_mol(rec.mol, with_pos=True)
        out.append(g)
    return out


def qm9_graphs():
    from confgen.data.dataset import load_shard

    return load_shard(TINY / "train_00000.pt")


def items(graphs):
    """All conformer items (Data with ``pos``), interleaving molecules so every batch mixes sizes."""
    from confgen.data.dataset import conformer

    per = [[conformer(g, c) for c in range(g.conformers.shape[0])] for g in graphs]
    out, k = [], 0
    while any(k < len(p) for p in per):
        out += [p[k] for p in per if k < len(p)]
        k += 1
    return out


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def one(args) -> dict:
    """Measure one (backbone, mode, dataset) in this process."""
    import torch

    torch.set_num_threads(args.threads)
    from confgen.config import Config, apply_overrides
    from torch_geometric.data import Batch

    from confgen.models import build_model
    from confgen.noise import perturb
    from confgen.training.setup import make_ema
    from confgen.training.step import denoising_loss

    device = torch.device(args.device)
    cfg = apply_overrides(Config(), args.set)
    cfg.model.backbone = args.backbone
    model = build_model(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    data = items(drug_graphs(args.drugs_sdf) if args.dataset == "drugs" else qm9_graphs())
    gen = torch.Generator().manual_seed(0)
    res = {"backbone": args.backbone, "mode": args.mode, "dataset": args.dataset, "params": n_params,
           "hidden_dim": cfg.model.hidden_dim, "num_layers": cfg.model.num_layers, "cutoff": cfg.model.cutoff,
           "device": str(device), "threads": args.threads}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if args.mode == "forward":
        model.eval()
        b = args.forward_batch
        graphs = Batch.from_data_list((data * (b // len(data) + 1))[:b]).to(device)
        pos = graphs.pos
        sig = torch.full((pos.shape[0],), 0.3, device=device)
        x, _ = perturb(pos, sig, graphs.batch, graphs.num_graphs, generator=gen)
        times, cpu_times = [], []
        with torch.no_grad():
            for _ in range(args.repeats + 1):
                sync()
                t, c = time.perf_counter(), time.process_time()
                model(graphs, x, sig)
                sync()
                times.append(time.perf_counter() - t)
                cpu_times.append(time.process_time() - c)
        t = min(times[1:])
        res.update(batch=b, atoms_per_conformer=pos.shape[0] / b, forward_s=t, forward_cpu_s=min(cpu_times[1:]),
                   conformer_calls_per_s=b / t,
                   conformers_per_s_at_20_calls=b / t / 20, conformers_per_s_at_40_calls=b / t / 40)
    else:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ema = make_ema(model, 0.999)
        bs = cfg.train.batch_size
        n_conf, t0 = 0, None
        for step in range(args.steps + 2):
            if step == 2:
                sync()
                t0, c0 = time.perf_counter(), time.process_time()
            chunk = [data[(step * bs + k) % len(data)] for k in range(bs)]
            graphs = Batch.from_data_list(chunk).to(device)
            pos = graphs.pos
            loss = denoising_loss(model, graphs, pos, noise=cfg.noise, sigmas=model.sigmas, generator=gen)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            ema.update_parameters(model)
            if step >= 2:
                n_conf += bs
        sync()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        res.update(batch_size=bs, steps=args.steps, train_conformers_per_s=n_conf / dt, step_s=dt / args.steps,
                   train_conformers_per_cpu_s=n_conf / dc)
    res["peak_memory_mb"] = peak_memory_mb(device)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backbones", nargs="+", default=["egnn", "clofnet"])
    ap.add_argument("--datasets", nargs="+", default=["drugs", "qm9"])
    ap.add_argument("--modes", nargs="+", default=["forward", "train"])
    ap.add_argument("--set", action="append", default=[], help="config override, e.g. model.hidden_dim=64")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--forward-batch", type=int, default=64)
    ap.add_argument("--json", default=None, help="write all results to this JSON file")
    ap.add_argument("--drugs-sdf", default=str(DRUGS_SDF), help="drug-size conformers (default: %(default)s)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--backbone", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.one:
        print(json.dumps(one(args)))
        return 0
    results = []
    for backbone in args.backbones:
        for mode in args.modes:
            for dataset in (["drugs"] if mode == "forward" else args.datasets):
                cmd = [sys.executable, __file__, "--one", "--backbone", backbone, "--mode", mode, "--dataset",
                       dataset, "--device", args.device, "--threads", str(args.threads), "--steps",
                       str(args.steps), "--repeats", str(args.repeats), "--forward-batch", str(args.forward_batch),
                       "--drugs-sdf", args.drugs_sdf]
                for s in args.set:
                    cmd += ["--set", s]
                env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    print(proc.stderr, file=sys.stderr)
                    return 1
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                results.append(r)
                if mode == "forward":
                    print(f"{backbone:8s} forward  drugs  params {r['params']:>9,d}  batch {r['batch']} "
                          f"({r['atoms_per_conformer']:.1f} atoms)  {r['forward_s'] * 1000:7.1f} ms "
                          f"(CPU {r['forward_cpu_s'] * 1000:.0f} ms)  "
                          f"-> {r['conformers_per_s_at_20_calls']:.1f} / {r['conformers_per_s_at_40_calls']:.1f} "
                          f"conformers/s at 20 / 40 calls  peak {r['peak_memory_mb']:.0f} MB", flush=True)
                else:
                    print(f"{backbone:8s} train    {dataset:5s}  params {r['params']:>9,d}  batch {r['batch_size']}  "
                          f"{r['train_conformers_per_s']:7.1f} conformers/s  ({r['step_s'] * 1000:.0f} ms/step; "
                          f"{r['train_conformers_per_cpu_s']:.1f} conformers per CPU-s)  "
                          f"peak {r['peak_memory_mb']:.0f} MB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
