"""GEOM ``rdkit_folder``: a directory with ``summary_*.json`` and per-molecule pickles (or one summary JSON). The
summary is decoded one entry at a time (:func:`iter_json_object`), the molecules one pickle at a time."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from confgen.data import safe_pickle
from confgen.data.readers.pickles import geom_records, iter_pickle
from confgen.data.readers.records import MolRecord, NoSplit
from confgen.errors import ConfgenError, InputError


def find_summaries(root: Path) -> list[Path]:
    return sorted(root.glob("summary*.json"))


def iter_json_object(path: str | os.PathLike) -> Iterator[tuple[str, object]]:
    """Yield ``(key, value)`` of a top-level JSON object one entry at a time.

    The text is held once; each value is decoded only when reached, so a summary of hundreds of thousands of
    molecules never becomes one big Python dict.

    Raises:
        ConfgenError: unreadable file or invalid JSON (with the file and character offset).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfgenError(f"{path}: cannot read file ({exc})") from None
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    idx = ws.match(text, 0).end()
    if idx >= len(text):
        raise ConfgenError(f"{path}: empty file")
    if text[idx] != "{":
        raise ConfgenError(f"{path}: not a JSON object (a GEOM summary maps SMILES to summaries)")
    idx = ws.match(text, idx + 1).end()
    if idx < len(text) and text[idx] == "}":
        return
    try:
        while True:
            key, idx = decoder.raw_decode(text, idx)
            idx = ws.match(text, idx).end()
            if text[idx] != ":":
                raise ValueError("':' expected")
            idx = ws.match(text, idx + 1).end()
            value, idx = decoder.raw_decode(text, idx)
            yield key, value
            idx = ws.match(text, idx).end()
            if text[idx] == ",":
                idx = ws.match(text, idx + 1).end()
                continue
            if text[idx] == "}":
                return
            raise ValueError("',' or '}' expected")
    except (ValueError, IndexError) as exc:
        raise ConfgenError(f"{path}: invalid JSON near character {idx} ({exc})") from None


def iter_rdkit_folder(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    if p.is_dir():
        root, summaries = p, find_summaries(p)
    else:
        root, summaries = p.parent, [p]
    if not summaries:  # no summary: every */*.pickle
        for pk in sorted(root.glob("*/*.pickle")):
            yield from iter_pickle(pk, filt=filt, report=report, max_confs=max_confs, stats=stats)
        return
    for summary in summaries:
        subset = summary.stem[len("summary_"):] if summary.stem.startswith("summary_") else ""
        try:
            for key, entry in iter_json_object(summary):
                if not isinstance(entry, dict):
                    report(InputError("summary entry is not an object", source=str(summary), smiles=key))
                    continue
                if not filt.smiles_heavy_ok(key):
                    continue
                if filt.split_raw is not None and not filt.in_split(key):
                    continue
                rel = entry.get("pickle_path")
                if rel:
                    pk = root / rel
                    if not pk.exists() and subset:
                        pk = root / subset / Path(rel).name
                elif subset:
                    pk = root / subset / (key.replace("/", "_") + ".pickle")
                else:
                    report(InputError("summary entry has no pickle_path", source=str(summary), smiles=key))
                    continue
                if not pk.is_file():
                    report(InputError(f"molecule pickle {pk} not found", source=str(summary), smiles=key))
                    continue
                try:
                    data = safe_pickle.load(pk)
                except ConfgenError as exc:
                    report(InputError(str(exc), smiles=key))
                    continue
                if not isinstance(data, dict):
                    report(InputError(f"{pk}: not a GEOM molecule pickle (a dict with 'conformers')", smiles=key))
                    continue
                yield from geom_records(data, key=key, source=str(pk), filt=NoSplit(filt.stereo), report=report,
                                         max_confs=max_confs, stats=stats)
                del data
        except ConfgenError as exc:
            report(InputError(str(exc)))
