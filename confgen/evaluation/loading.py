"""Reading the ensembles to evaluate: any source of :mod:`confgen.data.readers`, or an ``index.csv`` directory
listing one SDF per molecule (the layout of ../shared/data/geom_drugs_tora3d7)."""

from __future__ import annotations

import csv
from pathlib import Path

from confgen.data.readers import iter_molecules
from confgen.errors import ConfgenError


def index_listed_files(path, side: str) -> list | None:
    """SDF files listed by an ``index.csv`` directory (the layout of ../shared/data/geom_drugs_tora3d7).

    A directory holding ``index.csv`` with columns ``dir`` and ``true_file`` (references) / ``pred_file``
    (generated, when ``side == "generated"``) names one SDF per molecule under ``molecules/<dir>/``.

    Returns:
        The listed paths, or ``None`` when ``path`` is not such a directory.
    """
    root = Path(path)
    index = root / "index.csv"
    if not root.is_dir() or not index.is_file():
        return None
    column = "pred_file" if side == "generated" else "true_file"
    try:
        with open(index, newline="") as fh:
            reader = csv.DictReader(fh)
            if column not in (reader.fieldnames or []) or "dir" not in (reader.fieldnames or []):
                return None
            files = []
            for row in reader:
                sub = root / "molecules" / row["dir"]
                files.append((sub if sub.is_dir() else root / row["dir"]) / row[column])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfgenError(f"{index}: cannot read file ({exc})") from None
    return files


def load_ensembles(
    path,
    *,
    split_csv=None,
    side: str = "reference",
    max_confs: int | None = None,
) -> tuple[list, list[dict], dict]:
    """Read every molecule of a file/directory with ``confgen.data.readers.iter_molecules``.

    All conformers of a molecule are kept together even where their 3D stereo differs (GEOM ensembles hold
    E and Z amidines, ...): the published COV numbers count every reference conformer.

    Args:
        path: SDF, torsional-diffusion pickle, GEOM rdkit_folder (or any source the readers support), or a
            directory with an ``index.csv`` listing one SDF per molecule (``dir``, ``true_file``,
            ``pred_file`` columns: the layout of ../shared/data/geom_drugs_tora3d7).
        split_csv: optional split list (references only).
        side: "reference" or "generated": used in failure records, and picks ``true_file`` or ``pred_file``
            of an index.csv directory.
        max_confs: passed to the readers.

    Returns:
        ``(records, failures, stats)``: MolRecords, one failure record per unreadable input, reader counters.

    Raises:
        ConfgenError: nothing at all could be read (the message names the file and the first problem).
    """
    errors: list = []
    stats: dict = {}
    kwargs = {"split_csv": split_csv, "max_confs": max_confs, "errors": errors, "stats": stats, "stereo": "keep"}
    listed = index_listed_files(path, side)
    records = []
    for source in listed if listed is not None else [path]:
        for rec in iter_molecules(source, **kwargs):
            if listed is not None and rec.name in ("", rec.smiles):  # untitled SDF: the index's name (dir)
                rec.name = Path(source).parent.name
            records.append(rec)
    failures = [
        {
            "side": side,
            "name": getattr(e, "smiles", None) or "",
            "source": getattr(e, "source", None) or str(path),
            "smiles": getattr(e, "smiles", None) or "",
            "reason": getattr(e, "message", str(e)),
        }
        for e in errors
    ]
    if not records:
        first = f": {errors[0]}" if errors else ""
        raise ConfgenError(f"{path}: no {side} molecules could be read{first}")
    return records, failures, stats
