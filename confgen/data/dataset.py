"""Cached training datasets written by ``confgen prepare`` and read by ``confgen train``.

Layout of a dataset directory::

    DIR/summary.json            n_molecules, n_conformers, n_skipped, skipped, sources, excluded, ...
    DIR/train_00000.pt ...      shards (torch.save of plain tensors/strings; loaded with weights_only=True)
    DIR/val_00000.pt ...

A shard is ``{"format": SHARD_FORMAT, "graphs": [dict, ...]}`` where each dict holds the fields of a
:class:`MolGraph` (``atom_feat, edge_index, edge_attr, atomic_numbers, smiles, pos [C, N, 3], weights [C]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from confgen.chem.files import atomic_write
from confgen.data.features import MolGraph
from confgen.data.graph import GraphBatch, collate
from confgen.errors import ConfgenError

SHARD_FORMAT = "confgen-shard-v1"
_FIELDS = ("atom_feat", "edge_index", "edge_attr", "atomic_numbers", "smiles", "pos", "weights")


def save_shard(path: str | os.PathLike, graphs: list[MolGraph]) -> None:
    """Write graphs (each with ``pos``) to ``path`` atomically (temp file, then rename)."""
    payload = {"format": SHARD_FORMAT, "graphs": [{f: getattr(g, f) for f in _FIELDS} for g in graphs]}
    atomic_write(path, lambda fh: torch.save(payload, fh), binary=True)


def load_shard(path: str | os.PathLike) -> list[MolGraph]:
    """Read a shard written by :func:`save_shard` (safe: ``weights_only=True``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable shard is a user-facing error
        raise ConfgenError(f"{path}: not a readable confgen dataset shard ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != SHARD_FORMAT:
        raise ConfgenError(f"{path}: not a confgen dataset shard (format {SHARD_FORMAT} expected)")
    return [MolGraph(**g) for g in payload["graphs"]]


def read_summary(directory: str | os.PathLike) -> dict:
    """Read ``DIR/summary.json``; a clear error if the directory is not a prepared dataset."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfgenError(f"dataset directory {directory} does not exist (build it with 'confgen prepare')")
    summary = directory / "summary.json"
    if not summary.is_file():
        raise ConfgenError(f"{directory} is not a confgen dataset: no summary.json (build it with 'confgen prepare')")
    with open(summary) as fh:
        return json.load(fh)


class ConformerDataset(torch.utils.data.Dataset):
    """All conformers of one split of a prepared dataset; item ``i`` is ``(MolGraph, pos [N, 3])``.

    Args:
        directory: dataset directory written by ``confgen prepare``.
        split: ``"train"`` or ``"val"``.
        max_confs: keep at most this many conformers per molecule (the first ones, i.e. highest weight).
    """

    def __init__(self, directory: str | os.PathLike, split: str = "train", max_confs: int | None = None):
        self.directory = Path(directory)
        self.summary = read_summary(self.directory)
        self.graphs: list[MolGraph] = []
        for shard in sorted(self.directory.glob(f"{split}_*.pt")):
            self.graphs.extend(load_shard(shard))
        self.index: list[tuple[int, int]] = []
        for gi, g in enumerate(self.graphs):
            n = g.pos.shape[0] if g.pos is not None else 0
            if max_confs is not None:
                n = min(n, max_confs)
            self.index.extend((gi, ci) for ci in range(n))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[MolGraph, torch.Tensor]:
        gi, ci = self.index[i]
        g = self.graphs[gi]
        return g, g.pos[ci]


def collate_conformers(items: list[tuple[MolGraph, torch.Tensor]]) -> tuple[GraphBatch, torch.Tensor]:
    """Collate ``(MolGraph, pos)`` items into ``(GraphBatch, pos [num_nodes, 3])``."""
    graphs = [g for g, _ in items]
    return collate(graphs), torch.cat([p for _, p in items], 0)
