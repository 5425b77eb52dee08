"""Build a cached training dataset (``confgen prepare``) from any mix of conformer sources.

Sources are streamed molecule by molecule (:func:`confgen.data.readers.iter_molecules`), molecules found in the
exclusion files are dropped, each kept molecule is assigned to ``train`` or ``val`` by a seeded hash of its
stereo-free canonical SMILES (so a molecule never lands in both, whatever source it comes from), featurised in
worker processes, and written in shards of about ``shard_confs`` conformers with
:func:`confgen.data.dataset.save_shard`. SMILES-only sources get conformer ensembles built first
(:mod:`confgen.data.ensembles`).

Everything is written into ``DIR.tmp-XXXX`` next to ``DIR`` and renamed to ``DIR`` at the end; a failed or
interrupted run removes the temporary directory, so no half-written dataset is ever left under ``DIR``.
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from torch_geometric.data import Data

from confgen import __version__
from confgen.chem.files import install_directory, write_json
from confgen.chem.smiles import canonical_smiles, try_canonical_smiles
from confgen.data.dataset import save_shard
from confgen.data.ensembles import EnsembleOptions, build_ensemble
from confgen.data.features import MAX_HEAVY_ATOMS, featurize_mol
from confgen.data.readers import (
    QM9PACK,
    detect_format,
    iter_molecules,
    load_exclusion_set,
)
from confgen.errors import ConfgenError, InputError
from confgen.workers import init_worker, mp_context

DATASET_FORMAT = "confgen-dataset-v1"
_GRAPH_FIELDS = ("x", "edge_index", "edge_attr", "z")


@dataclass
class PrepareOptions:
    """Options of :func:`prepare_dataset` (the ``confgen prepare`` flags).

    Attributes:
        exclude: evaluation files whose molecules must not be in the dataset.
        max_confs: at most this many conformers per molecule (highest weight first).
        min_heavy_atoms, max_heavy_atoms: heavy-atom range of kept molecules.
        split_csv: keep only molecules listed here (GEOM split files).
        val_fraction: fraction of molecules assigned to ``val`` (by seeded hash of the molecule).
        seed: seed of the split and of ensemble building.
        workers: featurisation / ensemble processes (1 = in process).
        from_smiles: SMILES files whose molecules get ensembles built.
        ensemble: :class:`EnsembleOptions` for those.
        shard_confs: about this many conformers per shard.
        overwrite: replace an existing output directory.
        progress: show a progress bar.
    """

    exclude: list[str] = field(default_factory=list)
    max_confs: int | None = None
    min_heavy_atoms: int | None = None
    max_heavy_atoms: int | None = None
    split_csv: str | None = None
    val_fraction: float = 0.05
    seed: int = 0
    workers: int = 1
    from_smiles: list[str] = field(default_factory=list)
    ensemble: EnsembleOptions = field(default_factory=EnsembleOptions)
    shard_confs: int = 4096
    overwrite: bool = False
    progress: bool = True


# ------------------------------------------------------------------------------------------------ worker side


def _process(task: tuple) -> tuple:
    """Featurise one record (building its ensemble first if needed). Runs in a worker process.

    Returns ``(index, payload | None, error message | None)``; the payload holds numpy arrays only.
    """
    index, mol_bytes, weights, needs_ensemble, ens_opts, seed, max_heavy = task
    try:
        mol = Chem.Mol(mol_bytes)
        if needs_ensemble:
            ens = build_ensemble(mol, ens_opts, seed=seed)
            mol, weights = ens.mol, ens.weights
        g = featurize_mol(mol, max_heavy_atoms=max_heavy, with_pos=True)
        if "conformers" not in g or g.conformers.shape[0] == 0:
            return index, None, "molecule has no conformers"
        pos = g.conformers.numpy()
        if not np.isfinite(pos).all():
            return index, None, "non-finite coordinates"
        c = pos.shape[0]
        w = np.full(c, 1.0 / c, dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        payload = {f: getattr(g, f).numpy() for f in _GRAPH_FIELDS}
        payload.update(smiles=g.smiles, conformers=pos, weights=w)
        return index, payload, None
    except InputError as exc:
        return index, None, exc.message
    except Exception as exc:  # noqa: BLE001 - one bad molecule must not stop the dataset
        return index, None, f"{exc.__class__.__name__}: {str(exc).strip()[:200]}"


def _graph(payload: dict) -> Data:
    return Data(**{k: v if k == "smiles" else torch.from_numpy(v) for k, v in payload.items()})


# ------------------------------------------------------------------------------------------------ main side


def split_of(key: str, seed: int, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` from a seeded hash of the molecule key (stable across runs and sources)."""
    if val_fraction <= 0:
        return "train"
    h = hashlib.blake2b(f"{seed}\t{key}".encode(), digest_size=8).digest()
    return "val" if int.from_bytes(h, "big") / 2**64 < val_fraction else "train"


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _source_fingerprint(src: str) -> dict:
    """Provenance of one source: path, format and a sha256 (of the file, or of a folder's summary JSONs)."""
    if src == QM9PACK:
        try:
            from importlib.metadata import version

            return {"path": src, "format": "qm9pack", "version": version("qm9pack")}
        except Exception:  # noqa: BLE001
            return {"path": src, "format": "qm9pack"}
    p = Path(src)
    out = {"path": str(p.resolve()), "format": detect_format(p)}
    if p.is_file():
        out["sha256"] = file_sha256(p)
    elif p.is_dir():
        out["sha256_summaries"] = {s.name: file_sha256(s) for s in sorted(p.glob("summary*.json"))}
    return out


class _ShardWriter:
    """Buffers graphs per split and writes a shard whenever ``shard_confs`` conformers are buffered."""

    def __init__(self, directory: Path, shard_confs: int):
        self.directory = directory
        self.shard_confs = shard_confs
        self.buffers: dict[str, list[Data]] = {"train": [], "val": []}
        self.buffered: dict[str, int] = {"train": 0, "val": 0}
        self.counts = {s: {"n_molecules": 0, "n_conformers": 0, "n_shards": 0} for s in ("train", "val")}

    def add(self, split: str, graph: Data) -> None:
        n = int(graph.conformers.shape[0])
        self.buffers[split].append(graph)
        self.buffered[split] += n
        self.counts[split]["n_molecules"] += 1
        self.counts[split]["n_conformers"] += n
        if self.buffered[split] >= self.shard_confs:
            self.flush(split)

    def flush(self, split: str) -> None:
        if not self.buffers[split]:
            return
        k = self.counts[split]["n_shards"]
        save_shard(self.directory / f"{split}_{k:05d}.pt", self.buffers[split])
        self.counts[split]["n_shards"] += 1
        self.buffers[split] = []
        self.buffered[split] = 0


class _SigtermAsInterrupt:
    """Turn SIGTERM into KeyboardInterrupt while preparing (main thread only), so cleanup runs."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                raise KeyboardInterrupt

            self.old = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare_dataset(sources: list[str], out_dir: str | os.PathLike, options: PrepareOptions | None = None, *,
                    max_reported: int = 20) -> dict:
    """Build a training dataset directory from conformer sources.

    Args:
        sources: paths (GEOM rdkit_folder, pickle, SDF, QM9 CSV, SMILES file) or ``"qm9pack"``. SMILES files
            listed here are treated like ``options.from_smiles`` (ensembles are built for them).
        out_dir: output directory ``DIR`` (must not exist unless ``options.overwrite``).
        options: :class:`PrepareOptions`.
        max_reported: skipped inputs printed to stderr (all are in ``summary.json``).

    Returns:
        The summary written to ``DIR/summary.json`` (``n_molecules, n_conformers, n_skipped, skipped, sources,
        excluded, splits, trained_on, ...``); ``summary["failed_sources"]`` lists sources that gave nothing.

    Raises:
        ConfgenError: bad options, unreadable exclusion file, output exists, or nothing usable was read (then
            nothing is left on disk).
    """
    opt = options or PrepareOptions()
    all_sources = [(s, False) for s in sources] + [(s, True) for s in opt.from_smiles]
    out_dir = Path(out_dir)
    _check_options(opt, all_sources, out_dir)
    exclusion = load_exclusion_set(opt.exclude) if opt.exclude else set()
    exclusion_info = [{"path": str(Path(f).resolve()), "sha256": file_sha256(f) if Path(f).is_file() else None}
                      for f in opt.exclude]

    tmp = Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.tmp-", dir=out_dir.parent))
    pool = None
    try:
        with _SigtermAsInterrupt():
            pool = mp_context().Pool(opt.workers, initializer=init_worker) if opt.workers > 1 else None
            summary = _run(all_sources, tmp, opt, exclusion, exclusion_info, pool, max_reported)
            if pool is not None:
                pool.close()
                pool.join()
                pool = None
            if summary["n_molecules"] == 0:
                raise ConfgenError("nothing usable was read from " + ", ".join(s for s, _ in all_sources)
                                   + (f" ({summary['n_skipped']} inputs skipped, {summary['excluded']} excluded)"))
            write_json(tmp / "summary.json", summary)
            os.chmod(tmp, 0o755)
            install_directory(tmp, out_dir, overwrite=opt.overwrite)
        return summary
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_options(opt: PrepareOptions, all_sources: list, out_dir: Path) -> None:
    if not all_sources:
        raise ConfgenError("no SOURCE given (and no --from-smiles file)")
    if not 0.0 <= opt.val_fraction < 1.0:
        raise ConfgenError(f"--val-fraction must be in [0, 1), got {opt.val_fraction}")
    if opt.workers < 1:
        raise ConfgenError(f"--workers must be at least 1, got {opt.workers}")
    if opt.max_confs is not None and opt.max_confs < 1:
        raise ConfgenError(f"--max-confs must be at least 1, got {opt.max_confs}")
    opt.ensemble.check()
    if out_dir.exists() and not opt.overwrite:
        raise ConfgenError(f"output {out_dir} already exists (use --overwrite to replace it)")
    if not out_dir.parent.is_dir():
        raise ConfgenError(f"parent directory of {out_dir} does not exist")


class _Builder:
    """The dataset being built: molecules streamed from the sources, featurised (in ``pool`` or in process) and
    written by a :class:`_ShardWriter`; what was skipped, excluded and read from each source."""

    def __init__(self, tmp: Path, opt: PrepareOptions, exclusion: set, pool, max_reported: int):
        from tqdm.auto import tqdm

        self.opt, self.exclusion, self.pool, self.max_reported = opt, exclusion, pool, max_reported
        self.writer = _ShardWriter(tmp, opt.shard_confs)
        self.max_heavy = opt.max_heavy_atoms if opt.max_heavy_atoms is not None else MAX_HEAVY_ATOMS
        self.skipped: list[dict] = []
        self.source_info: list[dict] = []
        self.failed_sources: list[str] = []
        self.stats: dict = {}
        self.n_excluded = 0
        self.seen: set[str] = set()
        self.n_duplicates = 0
        self.pending: collections.deque = collections.deque()
        self.meta: dict[int, tuple] = {}
        self.max_pending = 4 * opt.workers
        self.index = 0
        self.bar = tqdm(unit="mol", desc="prepare", disable=not opt.progress, dynamic_ncols=True)

    def skip(self, input_: str, reason: str) -> None:
        if reason.startswith(input_ + ": "):  # file-level errors already name the file
            reason = reason[len(input_) + 2:]
        self.skipped.append({"input": input_, "reason": reason})
        if len(self.skipped) <= self.max_reported:
            self.bar.write(f"confgen prepare: skipped {input_}: {reason}", file=sys.stderr)

    def handle(self, result, info: dict) -> None:
        """Store one featurised molecule (or record why it was skipped)."""
        index, payload, err = result
        source, smiles, split, key = self.meta.pop(index)
        if err is not None:
            self.skip(f"{source} {smiles!r}", err)
            info["n_skipped"] += 1
            return
        graph = _graph(payload)
        self.writer.add(split, graph)
        info["n_molecules"] += 1
        info["n_conformers"] += int(graph.conformers.shape[0])
        if key in self.seen:
            self.n_duplicates += 1
        self.seen.add(key)
        self.bar.update(1)
        counts = self.writer.counts
        self.bar.set_postfix(confs=counts["train"]["n_conformers"] + counts["val"]["n_conformers"],
                             skipped=len(self.skipped), refresh=False)

    def drain(self, info: dict, down_to: int) -> None:
        while len(self.pending) > down_to:
            self.handle(self.pending.popleft().get(), info)

    def report_errors(self, errors: list, start: int, src: str, info: dict) -> int:
        """Record the reader's errors from ``start`` on; returns how many have been recorded."""
        for err in errors[start:]:
            self.skip(err.source or src, err.message if err.smiles is None else f"{err.smiles!r}: {err.message}")
            info["n_skipped"] += 1
        return len(errors)

    def excluded(self, key: str, rec) -> bool:
        return bool(self.exclusion) and (key in self.exclusion or rec.smiles in self.exclusion
                                         or try_canonical_smiles(rec.smiles, stereo=False) in self.exclusion)

    def submit(self, rec, key: str, smiles_only: bool, info: dict) -> None:
        """Queue one record for featurisation (and ensemble building when ``smiles_only``)."""
        opt = self.opt
        split = split_of(key, opt.seed, opt.val_fraction)
        self.meta[self.index] = (rec.source, rec.smiles, split, key)
        task = (self.index, rec.mol.ToBinary(Chem.PropertyPickleOptions.AllProps), rec.weights, smiles_only,
                opt.ensemble, opt.seed + self.index, self.max_heavy)
        self.index += 1
        if self.pool is None:
            self.handle(_process(task), info)
        else:
            self.pending.append(self.pool.apply_async(_process, (task,)))
            self.drain(info, self.max_pending)

    def add_source(self, src: str, smiles_only: bool) -> None:
        """Read every molecule of one source."""
        opt = self.opt
        info = {"path": src, "n_molecules": 0, "n_conformers": 0, "n_skipped": 0, "n_excluded": 0,
                "ensembles": smiles_only}
        try:
            info.update(_source_fingerprint(src))
        except (ConfgenError, OSError) as exc:
            info["error"] = str(exc)
        try:
            fmt = detect_format(src)
        except ConfgenError:
            fmt = None  # iter_molecules reports the error
        smiles_only = smiles_only or fmt in ("smiles", "smiles_csv")
        info["ensembles"] = smiles_only
        errors: list[InputError] = []
        records = iter_molecules(src, split_csv=opt.split_csv, max_confs=opt.max_confs,
                                 min_heavy_atoms=opt.min_heavy_atoms, max_heavy_atoms=opt.max_heavy_atoms,
                                 errors=errors, stats=self.stats, stereo="split")
        n_reported = 0
        for rec in records:
            n_reported = self.report_errors(errors, n_reported, src, info)
            try:
                key = canonical_smiles(rec.mol, stereo=False)
            except Exception:  # noqa: BLE001
                key = rec.smiles
            if self.excluded(key, rec):
                self.n_excluded += 1
                info["n_excluded"] += 1
                continue
            if not smiles_only and rec.num_confs == 0:
                self.skip(f"{rec.source} {rec.smiles!r}", "molecule has no conformers")
                info["n_skipped"] += 1
                continue
            self.submit(rec, key, smiles_only, info)
        self.report_errors(errors, n_reported, src, info)
        self.drain(info, 0)
        if info["n_molecules"] == 0 and info["n_excluded"] == 0:
            self.failed_sources.append(src)
        self.source_info.append(info)

    def trained_on(self, exclusion_info: list) -> dict:
        """The provenance block of the summary (what ``confgen train`` copies into checkpoints)."""
        opt = self.opt
        ens = asdict(opt.ensemble) if (opt.from_smiles or any(s["ensembles"] for s in self.source_info)) else None
        keep = ("path", "format", "sha256", "sha256_summaries", "version")
        return {
            "format": DATASET_FORMAT,
            "sources": [{k: v for k, v in s.items() if k in keep} for s in self.source_info],
            "exclude": exclusion_info,
            "split_csv": str(Path(opt.split_csv).resolve()) if opt.split_csv else None,
            "max_confs": opt.max_confs,
            "min_heavy_atoms": opt.min_heavy_atoms,
            "max_heavy_atoms": opt.max_heavy_atoms,
            "val_fraction": opt.val_fraction,
            "seed": opt.seed,
            "ensemble": ens,
            "confgen_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }

    def summary(self, exclusion_info: list) -> dict:
        counts, stats = self.writer.counts, self.stats
        return {
            "format": DATASET_FORMAT,
            "n_molecules": counts["train"]["n_molecules"] + counts["val"]["n_molecules"],
            "n_conformers": counts["train"]["n_conformers"] + counts["val"]["n_conformers"],
            "n_skipped": len(self.skipped),
            "skipped": self.skipped,
            "excluded": self.n_excluded,
            "n_duplicate_molecules": self.n_duplicates,
            "filtered": {"heavy_atoms": stats.get("filtered_heavy_atoms", 0),
                         "split": stats.get("filtered_split", 0),
                         "conformers_with_other_graph": stats.get("dropped_conformers", 0),
                         "conformers_outside_energy_window": stats.get("outside_energy_window", 0)},
            "splits": counts,
            "sources": self.source_info,
            "failed_sources": self.failed_sources,
            "exclusion_files": exclusion_info,
            "n_exclusion_smiles": len(self.exclusion),
            "trained_on": self.trained_on(exclusion_info),
        }


def _run(all_sources, tmp: Path, opt: PrepareOptions, exclusion: set, exclusion_info: list, pool,
         max_reported: int) -> dict:
    builder = _Builder(tmp, opt, exclusion, pool, max_reported)
    try:
        for src, smiles_only in all_sources:
            builder.add_source(src, smiles_only)
        for split in ("train", "val"):
            builder.writer.flush(split)
    finally:
        builder.bar.close()
    if len(builder.skipped) > max_reported:
        _log(f"confgen prepare: ... {len(builder.skipped) - max_reported} more skipped inputs (see summary.json)")
    return builder.summary(exclusion_info)
