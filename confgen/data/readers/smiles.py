"""SMILES files: ``.smi`` / ``.smiles`` / ``.txt`` / ``.ism`` (``SMILES [name]`` per line) and CSV files with a SMILES
column. :func:`iter_smiles_file` is the one parser of SMILES lines (``confgen.io``'s input reader uses it too):
blank lines and lines starting with ``#`` are skipped, as is a first line whose first field is ``smiles`` (a
header); the name is the rest of the fields up to a ``#`` field (a comment; ``#`` inside a SMILES is a triple
bond)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from rdkit import Chem

from confgen.chem.smiles import parse_smiles
from confgen.data.readers.records import MolRecord
from confgen.errors import ConfgenError, InputError


#: suffixes of SMILES files (one ``SMILES [name]`` per line)
SMILES_SUFFIXES = (".smi", ".smiles", ".txt", ".ism")
#: CSV columns holding SMILES, in order of preference (any column named ``smiles`` in any case comes after)
SMILES_COLUMNS = ("smiles", "SMILES", "geom_smiles", "corrected_smiles", "qm9_smiles", "canonical_smiles")


def iter_smiles_file(lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """``(line number, SMILES, name)`` of each molecule line of a SMILES file (see the module docstring)."""
    first = True
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if first and fields[0].lower() == "smiles":  # a header
            first = False
            continue
        first = False
        rest = []
        for tok in fields[1:]:  # '#' inside a SMILES is a triple bond; after it, a comment
            if tok.startswith("#"):
                break
            rest.append(tok)
        yield lineno, fields[0], " ".join(rest)


def smiles_column(header: list[str]) -> int | None:
    """Index of the SMILES column of a CSV header: the first of :data:`SMILES_COLUMNS` present, else the first
    column named ``smiles`` in any case (surrounding spaces ignored); ``None`` when there is none."""
    for name in SMILES_COLUMNS:
        if name in header:
            return header.index(name)
    return next((i for i, h in enumerate(header) if h.strip().lower() == "smiles"), None)


def csv_header(path: Path) -> list[str]:
    try:
        with open(path, newline="") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfgenError(f"{path}: cannot read file ({exc})") from None


def iter_smiles_lines(path: Path) -> Iterator[tuple[str, str, str]]:
    """Yield ``(smiles, name, source)`` from a .smi/.txt (``SMILES [name]``) or .csv (``smiles`` column) file.

    Raises:
        ConfgenError: unreadable or empty file, CSV without a SMILES column.
    """
    try:
        fh = open(path, newline="")
    except OSError as exc:
        raise ConfgenError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    n = 0
    try:
        with fh:
            if path.name.lower().endswith(".csv"):
                reader = csv.DictReader(fh)
                fields = reader.fieldnames or []
                index = smiles_column(fields)
                if index is None:
                    raise ConfgenError(f"{path}: CSV has no 'smiles' column")
                col = fields[index]
                for i, row in enumerate(reader, start=2):
                    smi = (row.get(col) or "").strip()
                    if smi:
                        n += 1
                        yield smi, (row.get("name") or "").strip(), f"{path}:{i}"
            else:
                for i, smiles, name in iter_smiles_file(fh):
                    n += 1
                    yield smiles, name, f"{path}:{i}"
    except UnicodeDecodeError:
        raise ConfgenError(f"{path}: not a text file") from None
    if n == 0:
        raise ConfgenError(f"{path}: empty file (no SMILES found)")


def iter_smiles(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    try:
        for smi, name, source in iter_smiles_lines(p):
            if not filt.in_split(smi):
                continue
            mol = parse_smiles(smi)
            if mol is None:
                report(InputError("invalid SMILES", source=source, smiles=smi))
                continue
            yield MolRecord(smiles=smi, mol=Chem.AddHs(mol), weights=None, source=source, name=name or smi)
    except ConfgenError as exc:
        report(InputError(str(exc)))
