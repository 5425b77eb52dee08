"""QM9: ``"qm9pack"`` (the CSV parts shipped in the ``qm9pack`` package) or a CSV with ``elements`` / ``xyz_ang``
columns (e.g. ``geom_qm9_test_matched_qm9_dft_geometry.csv``); the DFT geometry is mapped onto the SMILES graph."""

from __future__ import annotations

import ast
import csv
import importlib.util
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from confgen.data.readers.geometry import map_geometry_to_smiles
from confgen.data.readers.records import MolRecord
from confgen.errors import ConfgenError, InputError


QM9PACK = "qm9pack"


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _parse_xyz(text: str) -> np.ndarray:
    """A JSON-like list of [x, y, z] (QM9 writes numbers such as ``0.``) -> [num_atoms, 3] array."""
    text = text.strip()
    if not text.startswith("[") or not text.endswith("]"):
        raise ValueError("not a coordinate list")
    values = np.asarray([float(v) for v in _NUMBER.findall(text)], dtype=np.float64)
    if len(values) == 0 or len(values) % 3:
        raise ValueError("coordinate count is not a multiple of 3")
    return values.reshape(-1, 3)


def _qm9_rows(csv_path: Path) -> Iterator[tuple[dict, int]]:
    with open(csv_path, newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            yield row, i


def _qm9_from_rows(rows: Iterable[tuple[dict, int]], csv_path: Path, *, filt, report, stats) -> Iterator[MolRecord]:
    for row, line in rows:
        lower = {k.strip().lower(): v for k, v in row.items() if k is not None}
        smiles_candidates = [lower.get(c) for c in ("geom_smiles", "smiles", "qm9_smiles")]
        smiles_candidates = [s.split()[0] for s in smiles_candidates if s and s.strip()]
        ident = lower.get("qm9_index") or lower.get("index") or str(line)
        source = f"{csv_path}:{line}"
        if not smiles_candidates:
            report(InputError("row without SMILES", source=source))
            continue
        smiles = smiles_candidates[0]
        if not filt.in_split(smiles) or not filt.smiles_heavy_ok(smiles):
            continue
        try:
            elements = ast.literal_eval(lower.get("elements", ""))
            xyz = _parse_xyz(lower.get("xyz_ang", ""))
            if not isinstance(elements, (list, tuple)) or xyz.ndim != 2 or xyz.shape[1] != 3:
                raise ValueError
        except (ValueError, SyntaxError, TypeError):
            report(InputError("unreadable 'elements' / 'xyz_ang' columns", source=source, smiles=smiles))
            continue
        mol, last_err = None, None
        for smi in dict.fromkeys(smiles_candidates):
            try:
                mol = map_geometry_to_smiles(smi, [str(e) for e in elements], xyz)
                break
            except InputError as exc:
                last_err = exc
        if mol is None:
            stats["qm9_unmapped"] = stats.get("qm9_unmapped", 0) + 1
            report(InputError(f"QM9 geometry cannot be mapped onto the SMILES graph: {last_err.message}",
                              source=source, smiles=smiles))
            continue
        name = f"qm9_{ident}"
        mol.SetProp("_Name", name)
        yield MolRecord(smiles=smiles, mol=mol, weights=[1.0], source=source, name=name)


def iter_qm9_csv(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    try:
        yield from _qm9_from_rows(_qm9_rows(p), p, filt=filt, report=report, stats=stats)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        report(InputError(f"{p}: cannot read file ({exc})"))


def qm9pack_files() -> list[Path]:
    """The QM9 CSV parts shipped inside the ``qm9pack`` package.

    Raises:
        ConfgenError: ``qm9pack`` is not installed or ships no data.
    """
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ConfgenError("qm9pack is not installed (pip install 'confgen[qm9]')")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    files = sorted(data.glob("qm9_part*.csv"))
    if not files:
        raise ConfgenError(f"qm9pack installed but no qm9_part*.csv found in {data}")
    return files


def iter_qm9pack(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    try:
        files = qm9pack_files()
    except ConfgenError as exc:
        report(InputError(str(exc)))
        return
    for f in files:
        yield from iter_qm9_csv(f, filt=filt, report=report, max_confs=max_confs, stats=stats)
