"""The training loop: denoising score matching with AdamW, warm-up + cosine LR, gradient clipping, EMA weights,
validation, atomic ``best.pt`` / ``last.pt`` checkpoints, exact resume and DDP (``torchrun``).

Exact resume: the data order of epoch ``e`` is a permutation seeded by ``(seed, e)`` (a
``DistributedSampler``, also with one process), and the noise of step ``s`` on rank ``r`` comes from a
generator seeded by ``(seed, s, r)``; with the model, optimiser, scheduler and EMA state restored, a run
stopped at step k and resumed reproduces the uninterrupted run bit for bit (same device and world size).

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is initialised with gloo on CPU and
nccl on CUDA; each process takes ``train.batch_size`` conformers per step from its shard of the
permutation; gradients are averaged by DDP; only rank 0 validates and writes files.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import random
import sys
import time
from pathlib import Path

import torch
from torch_geometric.data import Batch

from confgen import __version__
from confgen.checkpoint import dataset_provenance, inference_payload, save_checkpoint, training_payload
from confgen.chem.files import atomic_write
from confgen.config import Config, dump_config
from confgen.devices import resolve_device
from confgen.models.score_net import build_model
from confgen.training.resume import Progress, init_weights, open_run, restore
from confgen.training.setup import (
    LOG_FIELDS,
    DistInfo,
    TrainingError,
    check_config,
    dist_from_env,
    ema_updates,
    load_data,
    make_ema,
    make_optimizer,
    plan_steps,
)
from confgen.training.step import is_oom, step_generator, train_step
from confgen.training.validate import validation_batches, validation_loss


def train(config: Config, out_dir: str | os.PathLike, *, resume: bool = False, device: str | None = None,
          progress: bool = True, stop_after: int | None = None) -> dict:
    """Train a score model with denoising score matching.

    Args:
        config: the configuration (``data.path`` must point at a prepared dataset).
        out_dir: directory for ``best.pt``, ``last.pt``, ``log.csv`` and ``config.yaml``.
        resume: continue from ``out_dir/last.pt`` (model/noise config must match).
        device: ``cpu``, ``cuda`` or ``None`` (auto).
        progress: show a tqdm bar (rank 0).
        stop_after: stop after this many steps *in this call*, writing ``last.pt`` (as if pre-empted).

    Returns:
        Summary dict: ``step``, ``epoch``, ``train_loss``, ``val_loss``, ``best_val_loss``, ``out_dir``,
        ``finished`` (reached the total number of steps), ``weights_sha256`` (of this process's raw weights).

    Raises:
        ConfgenError: missing dataset, bad config, non-finite loss, out of memory, nothing to resume.
    """
    dist = dist_from_env()
    dev = resolve_device(device, dist.local_rank if dist.distributed else None)
    initialised_here = False
    if dist.distributed and not torch.distributed.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        initialised_here = True
    try:
        return _Run(config, Path(out_dir), resume=resume, dev=dev, dist=dist).run(progress, stop_after)
    finally:
        if initialised_here:
            torch.distributed.destroy_process_group()


def read_log_rows(path: Path, max_step: int) -> list[dict]:
    """The rows of an existing ``log.csv`` up to ``max_step`` (a resumed run continues the log)."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("step") and int(r["step"]) <= max_step]


def write_log(path: Path, rows: list[dict]) -> None:
    """Write ``log.csv`` atomically."""
    def write(fh) -> None:
        w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)

    atomic_write(path, write)


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict (names, shapes and bytes); equal on all DDP ranks when in sync."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        t = v.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class _Window:
    """Losses and throughput since the last log row."""

    def __init__(self):
        self.reset(time.perf_counter())

    def reset(self, now: float) -> None:
        self.loss, self.n, self.confs, self.t = 0.0, 0, 0, now

    def mean_loss(self) -> float:
        return self.loss / max(self.n, 1)


class _Run:
    """One call of :func:`train`: everything set up, then :meth:`run` steps until done or stopped."""

    def __init__(self, config: Config, out: Path, *, resume: bool, dev: torch.device, dist: DistInfo):
        check_config(config)
        self.config, self.tc, self.out, self.dev, self.dist = config, config.train, out, dev, dist
        self.data = load_data(config)
        self.last_path, self.best_path, self.log_path = out / "last.pt", out / "best.pt", out / "log.csv"
        ckpt = open_run(out, config, resume)
        self.plan = plan_steps(config, self.data.train, dist)
        torch.manual_seed(self.tc.seed)
        random.seed(self.tc.seed)
        self.model = build_model(config).to(dev)
        base = None
        if self.tc.init_from and ckpt is None:
            base = init_weights(self.model, config, self.tc.init_from)
            if dist.is_main and base["changed"]:
                print(f"confgen train: starting from {self.tc.init_from} with {', '.join(base['changed'])}",
                      file=sys.stderr)
        self.optimizer, self.scheduler = make_optimizer(self.model, config, self.plan.total_steps)
        self.ema = make_ema(self.model, self.tc.ema_decay)
        self.state = Progress()
        if ckpt is not None:
            self.state = restore(ckpt, self.model, self.optimizer, self.scheduler, self.ema)
        self.ddp = self.model
        if dist.distributed:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[dev.index] if dev.type == "cuda" else None)
        self.trained_on = dataset_provenance(config.data.path, self.data.summary, len(self.data.train),
                                             self.data.n_val)
        if base is not None:
            self.trained_on["init_from"] = base
        elif ckpt is not None and "init_from" in ckpt.get("trained_on", {}):
            self.trained_on["init_from"] = ckpt["trained_on"]["init_from"]
        self.val_batches = []
        if dist.is_main and self.data.n_val:
            self.val_batches = validation_batches(self.data.val, self.data.n_val, self.tc.batch_size)
        self.log_rows: list[dict] = []
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            self.log_rows = read_log_rows(self.log_path, self.state.step) if resume else []
            dump_config(config, out / "config.yaml")

    # ------------------------------------------------------------------------------------------------ files

    def payload(self, metrics: dict, training_state: bool = True) -> dict:
        """The checkpoint of the current state (``training_state=False``: ``best.pt``'s inference part only)."""
        inference = inference_payload(
            version=__version__, config=self.config.to_dict(), weights=self.ema.module.state_dict(),
            trained_on=self.trained_on, metrics=metrics, step=self.state.step,
            epoch=self.state.step // self.plan.batches_per_epoch)
        if not training_state:
            return inference
        return training_payload(inference, raw_weights=self.model.state_dict(), ema_decay=self.ema.decay,
                                ema_updates=ema_updates(self.ema), optimizer=self.optimizer.state_dict(),
                                scheduler=self.scheduler.state_dict())

    def write_last(self) -> None:
        if self.dist.is_main:
            save_checkpoint(self.last_path, self.payload(dict(self.state.metrics)))
            write_log(self.log_path, self.log_rows)

    # ------------------------------------------------------------------------------------------------ steps

    def batch_indices(self, step: int, perm_cache: dict) -> list[int]:
        """The dataset indices of ``step``'s batch (this process's share of the epoch's permutation)."""
        epoch, b = divmod(step, self.plan.batches_per_epoch)
        if perm_cache.get("epoch") != epoch:
            self.plan.sampler.set_epoch(epoch)
            perm_cache.update(epoch=epoch, perm=list(self.plan.sampler))
        bs = self.tc.batch_size
        return perm_cache["perm"][b * bs:(b + 1) * bs]

    def one_step(self, idx: list[int]) -> tuple[float, float]:
        graphs = Batch.from_data_list([self.data.train[i] for i in idx])
        self.model.train()
        try:
            return train_step(self.model, self.ddp, self.optimizer, self.scheduler, graphs.to(self.dev),
                              noise=self.config.noise, sigmas=self.model.sigmas,
                              generator=step_generator(self.tc.seed, self.state.step, self.dist.rank),
                              grad_clip=self.tc.grad_clip, dist=self.dist, step=self.state.step,
                              last_path=self.last_path)
        except TrainingError:
            raise
        except (RuntimeError, MemoryError) as exc:
            if is_oom(exc):
                bs = self.tc.batch_size
                raise TrainingError(
                    f"out of memory on a batch of {len(idx)} conformers ({graphs.num_nodes} atoms) at step "
                    f"{self.state.step}; lower train.batch_size (now {bs}), e.g. --set "
                    f"train.batch_size={max(bs // 2, 1)}") from None
            raise

    def validate(self, window: _Window) -> float:
        if self.val_batches:
            return validation_loss(self.ema.module, self.val_batches, self.model.sigmas, self.tc.seed, self.dev,
                                   self.config.noise)
        return window.mean_loss()  # no validation split: running train loss

    def after_step(self, window: _Window, grad_norm: float, bar, run_t0: float) -> None:
        """Validate, log and checkpoint as the schedule says."""
        tc, step, total, m = self.tc, self.state.step, self.plan.total_steps, self.state.metrics
        do_val = (tc.val_every > 0 and step % tc.val_every == 0) or step == total
        do_log = step % max(tc.log_every, 1) == 0 or do_val or step == total
        do_ckpt = do_val or (tc.ckpt_every > 0 and step % tc.ckpt_every == 0)
        row_val = ""
        if do_val and self.dist.is_main:
            self.val_loss = self.validate(window)
            row_val = f"{self.val_loss:.6g}"
        if do_log:
            now = time.perf_counter()
            train_loss = window.mean_loss()
            if self.dist.is_main:
                self.log_rows.append({
                    "step": step, "epoch": (step - 1) // self.plan.batches_per_epoch,
                    "lr": f"{self.scheduler.get_last_lr()[0]:.6g}",
                    "train_loss": f"{train_loss:.6g}", "grad_norm": f"{grad_norm:.4g}", "val_loss": row_val,
                    "conformers_per_s": f"{window.confs / max(now - window.t, 1e-9):.2f}",
                    "elapsed_s": f"{now - run_t0:.1f}"})
            bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{self.val_loss:.4f}" if row_val else "")
            m.update({"train_loss": train_loss, "step": step})
            window.reset(now)
        if do_val and self.dist.is_main:
            m["val_loss"] = self.val_loss
            if self.val_loss < self.state.best_val:
                self.state.best_val = self.val_loss
                m["best_val_loss"] = self.val_loss
                m["best_step"] = step
                save_checkpoint(self.best_path, self.payload(dict(m), training_state=False))
        if do_ckpt:
            self.write_last()

    def run(self, progress: bool, stop_after: int | None) -> dict:
        from tqdm.auto import tqdm

        total = self.plan.total_steps
        bar = tqdm(total=total, initial=self.state.step, disable=not (progress and self.dist.is_main),
                   desc="train", unit="step", dynamic_ncols=True)
        start_step = self.state.step
        perm_cache: dict = {}
        window, run_t0 = _Window(), time.perf_counter()
        self.val_loss = self.state.metrics.get("val_loss", math.nan)
        try:
            while self.state.step < total:
                if stop_after is not None and self.state.step - start_step >= stop_after:
                    break
                idx = self.batch_indices(self.state.step, perm_cache)
                loss, grad_norm = self.one_step(idx)
                self.ema.update_parameters(self.model)
                self.state.step += 1
                bar.update(1)
                window.loss += loss
                window.n += 1
                window.confs += len(idx) * self.dist.world_size
                self.after_step(window, grad_norm, bar, run_t0)
        finally:
            bar.close()
        return self.finish(start_step)

    def finish(self, start_step: int) -> dict:
        step, m = self.state.step, self.state.metrics
        if self.dist.is_main and (step != start_step or not self.last_path.exists()):
            self.write_last()
        if self.dist.distributed:
            torch.distributed.barrier()
        return {"out_dir": str(self.out), "step": step, "weights_sha256": weights_digest(self.model),
                "epoch": (step - 1) // self.plan.batches_per_epoch if step else 0,
                "total_steps": self.plan.total_steps, "finished": step >= self.plan.total_steps,
                "train_loss": m.get("train_loss", math.nan), "val_loss": m.get("val_loss", math.nan),
                "best_val_loss": m.get("best_val_loss", math.nan)}
