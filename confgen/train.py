"""Training loop: denoising score matching with AdamW, warm-up + cosine LR, gradient clipping, EMA weights,
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

import copy
import csv
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data.distributed import DistributedSampler
from torch_geometric.data import Batch

from confgen import __version__
from confgen.checkpoint import read_checkpoint, save_checkpoint
from confgen.chem.files import atomic_write
from confgen.config import Config, NoiseConfig
from confgen.data.dataset import ConformerDataset, read_summary
from confgen.errors import ConfgenError
from confgen.losses import WEIGHTINGS, dsm_loss
from confgen.models.score_net import build_model
from confgen.noise import SIGMA_DISTRIBUTIONS, draw_sigmas, perturb

LOG_FIELDS = ("step", "epoch", "lr", "train_loss", "grad_norm", "val_loss", "conformers_per_s", "elapsed_s")


class TrainingError(ConfgenError):
    """Training cannot go on (non-finite loss, out of memory, ...)."""


@dataclass
class DistInfo:
    """Process layout: ``world_size`` processes, this one is ``rank`` (``local_rank`` on its node)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> DistInfo:
    """Read ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` set by ``torchrun`` (defaults: one process)."""
    return DistInfo(world_size=int(os.environ.get("WORLD_SIZE", "1")), rank=int(os.environ.get("RANK", "0")),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


class EMA:
    """Exponential moving average of parameters, with the usual warm-up ``min(decay, (1+n)/(10+n))``.

    Args:
        model: the model whose parameters are averaged.
        decay: target decay (0 disables averaging: the shadow equals the weights).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates)) if self.decay > 0 else 0.0
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, schedule: str, min_ratio: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine to ``min_ratio`` or constant."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        t = min(max(step - warmup_steps, 0) / span, 1.0)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
    raise ConfgenError(f"unknown train.lr_schedule {schedule!r} (known: cosine, constant)")


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step) * 1009 + rank)
    return g


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()
        or "can't allocate memory" in str(exc).lower())


def resolve_device(device: str | None, dist: DistInfo) -> torch.device:
    """``None``/``"auto"`` -> cuda if available else cpu; under torchrun, cuda means ``cuda:LOCAL_RANK``."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfgenError("--device cuda requested but CUDA is not available (use --device cpu)")
        if device == "cuda":
            device = f"cuda:{dist.local_rank}" if dist.distributed else "cuda"
    elif device != "cpu":
        raise ConfgenError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfgenError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from None


def dataset_provenance(directory: str, summary: dict, n_train: int, n_val: int) -> dict:
    """What a model was trained on, stored in its checkpoint: the dataset directory, its counts, sources and
    exclusion lists (``summary.json`` of ``confgen prepare``, including its ``trained_on`` block when present;
    per-input skip lists are left out)."""
    keys = ("format", "n_molecules", "n_conformers", "n_skipped", "excluded", "n_exclusion_smiles", "sources",
            "exclusion_files", "splits", "trained_on")
    out = {"dataset": str(directory), "n_train_conformers": n_train, "n_val_conformers": n_val}
    out.update({k: summary[k] for k in keys if k in summary})
    return out


def denoising_loss(model, graphs, pos: torch.Tensor, *, noise: NoiseConfig, sigmas: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """One denoising score matching loss: draw a sigma per conformer, perturb, score, weight.

    Args:
        model: ``model(graphs, x [N, 3], sigma [N]) -> score [N, 3]`` (a ScoreModel or its DDP wrapper).
        graphs: the batch's graphs (on the device).
        pos: [N, 3] clean coordinates.
        noise: how sigma is drawn (``distribution``, ``p_mean``, ``p_std``) and the loss weighted
            (``weighting``, ``sigma_data``).
        sigmas: [L] the model's schedule (bounds of the continuous distributions).
        generator: CPU generator of the sigmas and the noise.

    Returns:
        Scalar loss.
    """
    sig_g = draw_sigmas(graphs.num_graphs, distribution=noise.distribution, sigmas=sigmas.cpu(),
                        p_mean=noise.p_mean, p_std=noise.p_std, generator=generator).to(pos.device)
    sig = sig_g[graphs.batch]  # [N]
    x, eps = perturb(pos, sig, graphs.batch, graphs.num_graphs, generator=generator)
    return dsm_loss(model(graphs, x, sig), eps, sig, graphs.batch, graphs.num_graphs, weighting=noise.weighting,
                    sigma_data=noise.sigma_data)


def _val_loss(model: torch.nn.Module, batches: list, sigmas: torch.Tensor, seed: int,
              device: torch.device, noise: NoiseConfig) -> float:
    """Mean DSM loss over fixed validation batches with fixed noise (comparable across steps)."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for k, graphs in enumerate(batches):
            gen = _step_generator(seed + 7919, k, 0)
            graphs = graphs.to(device)
            loss = denoising_loss(model, graphs, graphs.pos, noise=noise, sigmas=sigmas, generator=gen)
            total += float(loss) * graphs.num_graphs
            count += graphs.num_graphs
    return total / max(count, 1)


def _read_log_rows(path: Path, max_step: int) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("step") and int(r["step"]) <= max_step]


def _write_log(path: Path, rows: list[dict]) -> None:
    def write(fh) -> None:
        w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)

    atomic_write(path, write)


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
    dev = resolve_device(device, dist)
    initialised_here = False
    if dist.distributed and not torch.distributed.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        initialised_here = True
    try:
        return _train(config, Path(out_dir), resume=resume, dev=dev, dist=dist, progress=progress,
                      stop_after=stop_after)
    finally:
        if initialised_here:
            torch.distributed.destroy_process_group()


def _init_weights(model: torch.nn.Module, config: Config, path: str) -> None:
    """Load the inference weights of checkpoint ``path`` into ``model`` (``train.init_from``)."""
    src = read_checkpoint(path)
    for section in ("model", "noise"):
        if src["config"].get(section) != config.to_dict()[section]:
            raise ConfgenError(f"train.init_from: the '{section}' section of {path} differs from this config")
    model.load_state_dict(src["model"])


#: train settings that a resumed run may change (how long it runs and how often it logs/validates/saves)
_RESUME_MAY_CHANGE = ("max_steps", "epochs", "val_every", "ckpt_every", "log_every")


def _resume_differences(saved: Config, config: Config) -> list[str]:
    """Settings of ``config`` that differ from the checkpoint's (``data.*`` and ``train.*``), as ``key (a -> b)``."""
    out = []
    for key in vars(saved.data):
        a, b = getattr(saved.data, key), getattr(config.data, key)
        if key == "path":
            a, b = os.path.realpath(a), os.path.realpath(b)
        if a != b:
            out.append(f"data.{key} ({a} -> {b})")
    for key in vars(saved.train):
        if key not in _RESUME_MAY_CHANGE and getattr(saved.train, key) != getattr(config.train, key):
            out.append(f"train.{key} ({getattr(saved.train, key)} -> {getattr(config.train, key)})")
    return out


def _train(config: Config, out: Path, *, resume: bool, dev: torch.device, dist: DistInfo, progress: bool,
           stop_after: int | None) -> dict:
    tc = config.train
    if not config.data.path:
        raise ConfgenError("data.path is not set: point it at a dataset directory written by 'confgen prepare'")
    if tc.batch_size < 1:
        raise ConfgenError("train.batch_size must be at least 1")
    if config.noise.distribution not in SIGMA_DISTRIBUTIONS:
        raise ConfgenError(f"unknown noise.distribution {config.noise.distribution!r} "
                           f"(known: {', '.join(SIGMA_DISTRIBUTIONS)})")
    if config.noise.weighting not in WEIGHTINGS:
        raise ConfgenError(f"unknown noise.weighting {config.noise.weighting!r} (known: {', '.join(WEIGHTINGS)})")
    summary = read_summary(config.data.path)
    train_ds = ConformerDataset(config.data.path, "train", max_confs=config.data.max_confs)
    if len(train_ds) == 0:
        raise ConfgenError(f"{config.data.path}: no training conformers (no train_*.pt shards with conformers)")
    val_ds = ConformerDataset(config.data.path, "val")
    n_val = len(val_ds) if tc.val_max_confs is None else min(len(val_ds), tc.val_max_confs)

    last_path, best_path = out / "last.pt", out / "best.pt"
    ckpt = None
    if resume:
        if not last_path.is_file():
            raise ConfgenError(f"--resume: {last_path} does not exist (nothing to resume)")
        ckpt = read_checkpoint(last_path, device="cpu")
        saved = Config.from_dict(ckpt["config"], source=str(last_path))
        for section in ("model", "noise"):
            if getattr(saved, section) != getattr(config, section):
                raise ConfgenError(f"--resume: the '{section}' section of the config differs from {last_path}")
        changed = _resume_differences(saved, config)
        if changed:
            raise ConfgenError(f"--resume: {', '.join(changed)} differ from {last_path} (give the same config and "
                               f"--set options as the run being resumed; only the length and logging settings "
                               f"{', '.join('train.' + k for k in _RESUME_MAY_CHANGE)} may change)")
    elif last_path.exists():
        raise ConfgenError(f"{out} already holds a training run (last.pt); use --resume or another --out")

    sampler = DistributedSampler(train_ds, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                 seed=tc.seed, drop_last=False)
    batches_per_epoch = math.ceil(len(sampler) / tc.batch_size)
    total_steps = tc.max_steps if tc.max_steps is not None else tc.epochs * batches_per_epoch
    if total_steps < 1:
        raise ConfgenError("nothing to train: train.max_steps / train.epochs give 0 steps")

    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    model = build_model(config).to(dev)
    if tc.init_from and ckpt is None:
        _init_weights(model, config, tc.init_from)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup_steps=tc.warmup_steps, total_steps=total_steps,
                                       schedule=tc.lr_schedule, min_ratio=tc.min_lr_ratio))
    ema = EMA(model, tc.ema_decay)
    step = 0
    best_val = math.inf
    metrics: dict = {}
    if ckpt is not None:
        model.load_state_dict(ckpt["raw_model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        ema.load_state_dict(ckpt["ema"])
        step = int(ckpt["step"])
        metrics = dict(ckpt.get("metrics", {}))
        best_val = float(metrics.get("best_val_loss", math.inf))
        rng = ckpt.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "python" in rng:
            random.setstate(_to_tuple(rng["python"]))
    eval_model = copy.deepcopy(model)

    ddp = model
    if dist.distributed:
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)

    trained_on = dataset_provenance(config.data.path, summary, len(train_ds), n_val)
    val_batches = []
    if dist.is_main and n_val:
        items = [val_ds[i] for i in range(n_val)]
        val_batches = [Batch.from_data_list(items[k:k + tc.batch_size]) for k in range(0, n_val, tc.batch_size)]

    log_path = out / "log.csv"
    log_rows: list[dict] = []
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        log_rows = _read_log_rows(log_path, step) if resume else []
        from confgen.config import dump_config
        dump_config(config, out / "config.yaml")

    def payload(final_metrics: dict, training_state: bool = True) -> dict:
        ema_state = {k: v.detach().cpu() for k, v in ema.shadow.items()}
        out = {
            "version": __version__, "config": config.to_dict(), "model": ema_state,
            "trained_on": trained_on, "metrics": final_metrics, "step": step,
            "epoch": step // batches_per_epoch,
        }
        if not training_state:  # best.pt: inference weights and provenance only
            return out
        return {
            **out,
            "raw_model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "ema": {"decay": ema.decay, "num_updates": ema.num_updates, "shadow": ema_state},
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": list(_to_list(random.getstate()))},
        }

    def write_last(m: dict) -> None:
        if dist.is_main:
            save_checkpoint(last_path, payload(m))
            _write_log(log_path, log_rows)

    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=step, disable=not (progress and dist.is_main), desc="train",
               unit="step", dynamic_ncols=True)
    start_step = step
    perm_epoch, perm = -1, []
    window_loss, window_n, window_confs, window_t = 0.0, 0, 0, time.perf_counter()
    run_t0 = time.perf_counter()
    last_loss = math.nan
    val_loss = metrics.get("val_loss", math.nan)
    grad_norm = math.nan
    try:
        while step < total_steps:
            if stop_after is not None and step - start_step >= stop_after:
                break
            epoch, b = divmod(step, batches_per_epoch)
            if epoch != perm_epoch:
                sampler.set_epoch(epoch)
                perm, perm_epoch = list(sampler), epoch
            idx = perm[b * tc.batch_size:(b + 1) * tc.batch_size]
            graphs = Batch.from_data_list([train_ds[i] for i in idx])
            model.train()
            try:
                graphs = graphs.to(dev)
                pos = graphs.pos
                gen = _step_generator(tc.seed, step, dist.rank)
                loss = denoising_loss(ddp, graphs, pos, noise=config.noise, sigmas=model.sigmas, generator=gen)
                loss_val = loss.detach().clone()
                if dist.distributed:
                    torch.distributed.all_reduce(loss_val)
                    loss_val /= dist.world_size
                last_loss = float(loss_val)
                if not math.isfinite(last_loss):
                    raise TrainingError(
                        f"loss became {last_loss} at step {step}; stopped, the last good checkpoint is kept in "
                        f"{last_path} (try a lower train.lr or train.grad_clip)")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if tc.grad_clip > 0:
                    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                else:
                    gn = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in model.parameters()
                                        if p.grad is not None))
                grad_norm = float(gn)
                if not math.isfinite(grad_norm):
                    raise TrainingError(
                        f"gradient became {grad_norm} at step {step}; stopped, the last good checkpoint is kept "
                        f"in {last_path} (try a lower train.lr)")
                optimizer.step()
                scheduler.step()
            except TrainingError:
                raise
            except (RuntimeError, MemoryError) as exc:
                if _is_oom(exc):
                    raise TrainingError(
                        f"out of memory on a batch of {len(idx)} conformers ({graphs.num_nodes} atoms) at step "
                        f"{step}; lower train.batch_size (now {tc.batch_size}), e.g. --set "
                        f"train.batch_size={max(tc.batch_size // 2, 1)}") from None
                raise
            ema.update(model)
            step += 1
            bar.update(1)
            window_loss += last_loss
            window_n += 1
            window_confs += len(idx) * dist.world_size

            do_val = (tc.val_every > 0 and step % tc.val_every == 0) or step == total_steps
            do_log = step % max(tc.log_every, 1) == 0 or do_val or step == total_steps
            do_ckpt = do_val or (tc.ckpt_every > 0 and step % tc.ckpt_every == 0)
            row_val = ""
            if do_val and dist.is_main:
                if val_batches:
                    for k, v in ema.shadow.items():
                        eval_model.state_dict()[k].copy_(v)
                    val_loss = _val_loss(eval_model, val_batches, model.sigmas, tc.seed, dev, config.noise)
                else:
                    val_loss = window_loss / max(window_n, 1)  # no validation split: running train loss
                row_val = f"{val_loss:.6g}"
            if do_log:
                now = time.perf_counter()
                train_loss = window_loss / max(window_n, 1)
                if dist.is_main:
                    log_rows.append({
                        "step": step, "epoch": (step - 1) // batches_per_epoch,
                        "lr": f"{scheduler.get_last_lr()[0]:.6g}",
                        "train_loss": f"{train_loss:.6g}", "grad_norm": f"{grad_norm:.4g}", "val_loss": row_val,
                        "conformers_per_s": f"{window_confs / max(now - window_t, 1e-9):.2f}",
                        "elapsed_s": f"{now - run_t0:.1f}"})
                bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val_loss:.4f}" if row_val else "")
                metrics.update({"train_loss": train_loss, "step": step})
                window_loss, window_n, window_confs, window_t = 0.0, 0, 0, now
            if do_val and dist.is_main:
                metrics["val_loss"] = val_loss
                if val_loss < best_val:
                    best_val = val_loss
                    metrics["best_val_loss"] = best_val
                    metrics["best_step"] = step
                    save_checkpoint(best_path, payload(dict(metrics), training_state=False))
            if do_ckpt:
                write_last(dict(metrics))
    finally:
        bar.close()
    if dist.is_main and (step != start_step or not last_path.exists()):
        write_last(dict(metrics))
    if dist.distributed:
        torch.distributed.barrier()
    return {"out_dir": str(out), "step": step, "weights_sha256": weights_digest(model),
            "epoch": (step - 1) // batches_per_epoch if step else 0,
            "total_steps": total_steps, "finished": step >= total_steps,
            "train_loss": metrics.get("train_loss", math.nan), "val_loss": metrics.get("val_loss", math.nan),
            "best_val_loss": metrics.get("best_val_loss", math.nan)}


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict (names, shapes and bytes); equal on all DDP ranks when in sync."""
    import hashlib

    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        t = v.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _to_list(x):
    """Nested tuples -> nested lists (for storing ``random.getstate()``)."""
    if isinstance(x, tuple):
        return [_to_list(v) for v in x]
    return x


def _to_tuple(x):
    if isinstance(x, list):
        return tuple(_to_tuple(v) for v in x)
    return x
