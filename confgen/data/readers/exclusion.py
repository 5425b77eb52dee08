"""Exclusion lists: the stereo-free canonical SMILES of evaluation sets, kept out of training data."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from confgen.chem.smiles import canonical_smiles, try_canonical_smiles
from confgen.data.readers.geom import find_summaries, iter_json_object
from confgen.data.readers.records import MolRecord
from confgen.data.readers.smiles import iter_smiles_lines
from confgen.data.readers.sources import detect_format, iter_molecules
from confgen.errors import ConfgenError, InputError


def load_exclusion_set(files: Iterable[str | os.PathLike]) -> set[str]:
    """Stereo-free canonical SMILES of every molecule in the given evaluation files.

    Accepts SMILES files (.smi/.txt, .csv with SMILES columns: every SMILES-like column is used), SDF files,
    pickles, GEOM rdkit_folder directories (summary keys) and QM9 CSVs. SMILES that RDKit cannot parse are kept
    verbatim so that an identical string still matches.

    Raises:
        ConfgenError: a file is missing, unreadable or holds no molecule (an exclusion list must not fail silently).
    """
    out: set[str] = set()
    for f in files:
        before = len(out)
        fmt = detect_format(f)
        p = Path(f)
        if fmt in ("smiles", "smiles_csv", "qm9_csv"):
            if p.name.lower().endswith(".csv"):
                out |= _exclusion_from_csv(p)
            else:
                for smi, _name, _src in iter_smiles_lines(p):
                    out.add(smi)
                    can = try_canonical_smiles(smi, stereo=False)
                    if can is not None:
                        out.add(can)
        elif fmt == "rdkit_folder":
            summaries = find_summaries(p) if p.is_dir() else [p]
            if not summaries:
                raise ConfgenError(f"{p}: no summary_*.json to take the molecule list from")
            for summary in summaries:
                for key, _entry in iter_json_object(summary):
                    out.add(key)
                    can = try_canonical_smiles(key, stereo=False)
                    if can is not None:
                        out.add(can)
        else:
            errors: list[InputError] = []
            for rec in iter_molecules(p, errors=errors):
                out.add(rec.smiles)
                can = try_canonical_smiles(rec.smiles, stereo=False)
                if can is not None:
                    out.add(can)
                if rec.mol.GetNumAtoms():
                    out.add(canonical_smiles(rec.mol, stereo=False))
            if errors and len(out) == before:
                raise ConfgenError(f"exclusion file {errors[0]}")
        if len(out) == before:
            raise ConfgenError(f"{p}: exclusion file holds no molecule")
    return out


def _exclusion_from_csv(p: Path) -> set[str]:
    out: set[str] = set()
    try:
        with open(p, newline="") as fh:
            reader = csv.DictReader(fh)
            cols = [c for c in (reader.fieldnames or []) if c and "smiles" in c.lower()]
            if not cols:
                raise ConfgenError(f"{p}: CSV has no SMILES column")
            for row in reader:
                for c in cols:
                    smi = (row.get(c) or "").strip()
                    if smi:
                        out.add(smi)
                        can = try_canonical_smiles(smi, stereo=False)
                        if can is not None:
                            out.add(can)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfgenError(f"{p}: cannot read file ({exc})") from None
    return out


def is_excluded(record: MolRecord, exclusion: set[str]) -> bool:
    """True when the record's molecule (by its Mol or its source SMILES, stereo-free) is in ``exclusion``."""
    if not exclusion:
        return False
    if record.smiles in exclusion:
        return True
    if canonical_smiles(record.mol, stereo=False) in exclusion:
        return True
    can = try_canonical_smiles(record.smiles, stereo=False)
    return can is not None and can in exclusion
