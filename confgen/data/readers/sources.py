"""The entry point of the readers: :func:`detect_format` names the reader of a source, :func:`iter_molecules`
streams its molecules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from confgen.data.readers.geom import find_summaries, iter_rdkit_folder
from confgen.data.readers.pickles import PICKLE_SUFFIXES, iter_pickle
from confgen.data.readers.qm9 import QM9PACK, iter_qm9_csv, iter_qm9pack
from confgen.data.readers.records import MolRecord, RecordFilter, Reporter, finish_record
from confgen.data.readers.sdf import SDF_SUFFIXES, iter_sdf
from confgen.data.readers.shard_dir import iter_shard_dir
from confgen.data.readers.smiles import SMILES_SUFFIXES, csv_header, iter_smiles, iter_smiles_lines, smiles_column
from confgen.data.shards import is_shard_dir
from confgen.errors import ConfgenError, InputError


def detect_format(path: str | os.PathLike) -> str:
    """Name the reader for ``path``: rdkit_folder, pickle, sdf, qm9pack, qm9_csv, smiles_csv, smiles.

    Raises:
        ConfgenError: path missing or format unknown (the message names the path).
    """
    if str(path) == QM9PACK:
        return "qm9pack"
    p = Path(path)
    if p.is_dir():
        if find_summaries(p) or any(p.glob("*/*.pickle")):
            return "rdkit_folder"
        if is_shard_dir(p):
            return "shards"
        raise ConfgenError(f"{p}: unknown format (a directory without summary_*.json, */*.pickle or *.npz "
                           "conformer shards; expected a GEOM rdkit_folder or a shard directory)")
    if not p.exists():
        raise ConfgenError(f"{p}: no such file or directory")
    name = p.name.lower()
    if name.endswith(SDF_SUFFIXES):
        return "sdf"
    if name.endswith(PICKLE_SUFFIXES):
        return "pickle"
    if name.endswith(".json"):
        return "rdkit_folder"
    if name.endswith(SMILES_SUFFIXES):
        return "smiles"
    if name.endswith(".csv"):
        header = csv_header(p)
        lower = {h.strip().lower() for h in header}
        if {"xyz_ang", "elements"} <= lower:
            return "qm9_csv"
        if smiles_column(header) is not None:
            return "smiles_csv"
        raise ConfgenError(f"{p}: unknown CSV layout (no 'smiles' column, no 'elements'/'xyz_ang' columns)")
    raise ConfgenError(f"{p}: unknown format (supported: GEOM rdkit_folder directory or summary .json, conformer shard directory, "
                       ".pkl/.pickle, .sdf, .smi/.txt, .csv, or 'qm9pack')")


def iter_molecules(path: str | os.PathLike, *, split_csv: str | os.PathLike | None = None,
                   max_confs: int | None = None, min_heavy_atoms: int | None = None,
                   max_heavy_atoms: int | None = None, errors: list | None = None,
                   stats: dict | None = None, stereo: str = "keep") -> Iterator[MolRecord]:
    """Stream the molecules of any supported source, one :class:`MolRecord` per molecule.

    Args:
        path: a GEOM ``rdkit_folder`` directory (or its summary JSON), a pickle, an SDF, a QM9 CSV,
            ``"qm9pack"``, or a SMILES file (.smi/.txt/.csv).
        split_csv: keep only molecules listed in this SMILES file/CSV (``smiles`` column or first token);
            matched by exact string, then by stereo-free canonical SMILES.
        max_confs: keep at most this many conformers per molecule (highest Boltzmann weight first where the
            source has weights, else file order).
        min_heavy_atoms, max_heavy_atoms: keep molecules whose heavy-atom count lies in this range.
        errors: if given, receives one :class:`InputError` per skipped input instead of raising it.
        stats: optional dict of counters (``filtered_split``, ``filtered_heavy_atoms``, ``dropped_conformers``;
            ``outside_energy_window`` for conformer shards).
        stereo: ``"keep"``: a molecule's conformers stay together even where their 3D stereo differs (reference
            ensembles); ``"split"``: one record per stereoisomer found in the 3D geometries (training data).

    Yields:
        :class:`MolRecord` objects.

    Raises:
        InputError: the first bad input, when ``errors`` is None.
    """
    report = Reporter(errors)
    if stats is None:
        stats = {}
    try:
        fmt = detect_format(path)
        if stereo not in ("keep", "split"):
            raise ConfgenError(f"stereo must be 'keep' or 'split', not {stereo!r}")
        split = None if split_csv is None else [smi for smi, _, _ in iter_smiles_lines(Path(split_csv))]
        filt = RecordFilter(split, min_heavy_atoms, max_heavy_atoms, stats, stereo=stereo)
    except InputError as exc:
        report(exc)
        return
    except ConfgenError as exc:
        report(InputError(str(exc)))
        return
    reader = {
        "rdkit_folder": iter_rdkit_folder,
        "pickle": iter_pickle,
        "sdf": iter_sdf,
        "qm9pack": iter_qm9pack,
        "qm9_csv": iter_qm9_csv,
        "smiles": iter_smiles,
        "smiles_csv": iter_smiles,
        "shards": iter_shard_dir,
    }[fmt]
    for record in reader(path, filt=filt, report=report, max_confs=max_confs, stats=stats):
        record = finish_record(record, filt, report)
        if record is not None:
            yield record
