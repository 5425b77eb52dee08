"""Cached training datasets written by ``confgen prepare`` and read by ``confgen train``.

Layout of a dataset directory::

    DIR/summary.json            n_molecules, n_conformers, n_skipped, skipped, sources, excluded, ...
    DIR/train_00000.pt ...      shards (torch.save of plain tensors/strings; loaded with weights_only=True)
    DIR/val_00000.pt ...

A shard is ``{"format": SHARD_FORMAT, "graphs": [dict, ...]}``, one dict per molecule with the keys
``atom_feat, edge_index, edge_attr, atomic_numbers, smiles, pos [C, N, 3], weights [C]`` (the format of
confgen 1; in memory a molecule is a :class:`torch_geometric.data.Data` with ``x, edge_index, edge_attr, z,
smiles, conformers [C, N, 3], weights [C]``).

:class:`ConformerDataset` yields one ``Data`` per conformer, with ``pos`` [N, 3]: batch them with
``torch_geometric.data.Batch.from_data_list`` or a ``torch_geometric.loader.DataLoader``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch_geometric.data import Data

from confgen.chem.files import atomic_write
from confgen.errors import ConfgenError

SHARD_FORMAT = "confgen-shard-v1"
#: shard key -> Data attribute
_SHARD_FIELDS = {"atom_feat": "x", "edge_index": "edge_index", "edge_attr": "edge_attr", "atomic_numbers": "z",
                 "smiles": "smiles", "pos": "conformers", "weights": "weights"}


def save_shard(path: str | os.PathLike, graphs: list[Data]) -> None:
    """Write molecules (each with ``conformers`` and ``weights``) to ``path`` atomically (temp file, then rename)."""
    payload = {"format": SHARD_FORMAT,
               "graphs": [{key: g[attr] for key, attr in _SHARD_FIELDS.items()} for g in graphs]}
    atomic_write(path, lambda fh: torch.save(payload, fh), binary=True)


def load_shard(path: str | os.PathLike) -> list[Data]:
    """Read a shard written by :func:`save_shard` (safe: ``weights_only=True``): one ``Data`` per molecule."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable shard is a user-facing error
        raise ConfgenError(f"{path}: not a readable confgen dataset shard ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != SHARD_FORMAT:
        raise ConfgenError(f"{path}: not a confgen dataset shard (format {SHARD_FORMAT} expected)")
    return [Data(**{attr: g[key] for key, attr in _SHARD_FIELDS.items() if g.get(key) is not None})
            for g in payload["graphs"]]


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


def conformer(molecule: Data, k: int) -> Data:
    """Conformer ``k`` of a molecule (from :func:`load_shard` or ``featurize_mol(..., with_pos=True)``): a ``Data``
    with ``x, z, edge_index, edge_attr, smiles`` and ``pos`` [N, 3] (no ``conformers``, so it batches)."""
    return Data(x=molecule.x, z=molecule.z, edge_index=molecule.edge_index, edge_attr=molecule.edge_attr,
                smiles=molecule.smiles, pos=molecule.conformers[k])


class ConformerDataset(torch.utils.data.Dataset):
    """All conformers of one split of a prepared dataset; item ``i`` is a ``Data`` with ``x, z, edge_index,
    edge_attr, smiles`` and the conformer's coordinates ``pos`` [N, 3].

    Args:
        directory: dataset directory written by ``confgen prepare``.
        split: ``"train"`` or ``"val"``.
        max_confs: keep at most this many conformers per molecule (the first ones, i.e. highest weight).
    """

    def __init__(self, directory: str | os.PathLike, split: str = "train", max_confs: int | None = None):
        self.directory = Path(directory)
        self.summary = read_summary(self.directory)
        self.graphs: list[Data] = []
        for shard in sorted(self.directory.glob(f"{split}_*.pt")):
            self.graphs.extend(load_shard(shard))
        self.index: list[tuple[int, int]] = []
        for gi, g in enumerate(self.graphs):
            n = g.conformers.shape[0] if "conformers" in g else 0
            if max_confs is not None:
                n = min(n, max_confs)
            self.index.extend((gi, ci) for ci in range(n))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Data:
        gi, ci = self.index[i]
        return conformer(self.graphs[gi], ci)
