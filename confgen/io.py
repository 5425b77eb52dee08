"""Inputs and outputs of ``confgen sample``: read .smi/.txt/.csv/.sdf molecules, write conformers as SDF.

This module is the one place that names the SDF properties confgen writes (:data:`PROP_SMILES` etc.).

Inputs:
    * ``.smi`` / ``.txt``: ``SMILES [name]`` per line; blank lines and ``#`` comments are skipped, as is a first
      line whose first field is ``smiles`` (a header).
    * ``.csv``: a ``smiles`` column (any case), optional ``name`` and ``n_conformers`` columns.
    * ``.sdf``: one molecule per record; stereo is taken from the record (3D coordinates or wedges).

Each usable molecule becomes an :class:`InputRecord` with explicit hydrogens and no conformers. A record that
cannot be used becomes one :class:`confgen.errors.InputError` naming its line or record (and SMILES or
name); the other records are still read.
"""

from __future__ import annotations

import csv
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rdkit import Chem

from confgen.data.features import MAX_HEAVY_ATOMS, check_mol
from confgen.errors import ConfgenError, InputError
from confgen.rdlog import quiet_rdkit

#: the input SMILES exactly as given (for SDF inputs: the record's canonical isomeric SMILES)
PROP_SMILES = "confgen_smiles"
#: index of the input record (0-based, counting every molecule record of the input, failed ones included)
PROP_INDEX = "confgen_index"
#: conformer number within its molecule (0-based)
PROP_CONF_ID = "confgen_conf_id"
#: MMFF94 energy (kcal/mol) after ``--relax mmff``
PROP_MMFF_ENERGY = "confgen_mmff_energy"

SMILES_SUFFIXES = (".smi", ".txt", ".smiles")
CSV_SUFFIXES = (".csv",)
SDF_SUFFIXES = (".sdf", ".sd", ".mol")


@dataclass
class InputRecord:
    """One input molecule.

    Attributes:
        index: record index in the input (0-based; failed records count too).
        smiles: the SMILES exactly as given (SDF: the record's canonical isomeric SMILES).
        name: the record's name (SMILES files: second field; CSV: ``name``; SDF: title), else ``mol{index}``.
        mol: RDKit Mol with explicit hydrogens and no conformers; stereo as specified by the input.
        source: where it came from, e.g. ``"mols.smi:3"`` or ``"mols.sdf:record 2"``.
        num_confs: the ``n_conformers`` column of a CSV input, else ``None``.
    """

    index: int
    smiles: str
    name: str
    mol: Chem.Mol
    source: str
    num_confs: int | None = None


def prepare_mol(mol: Chem.Mol, *, source: str, label: str, max_heavy_atoms: int = MAX_HEAVY_ATOMS) -> Chem.Mol:
    """Explicit hydrogens, no conformers, checked for the featuriser (elements, size).

    Args:
        mol: a sanitised RDKit Mol (hydrogens implicit or explicit).
        source: where it came from (for errors).
        label: its SMILES or name (for errors).
        max_heavy_atoms: size limit.

    Raises:
        InputError: unsupported element, no heavy atoms, too large.
    """
    mol = Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)
    try:
        check_mol(mol, max_heavy_atoms=max_heavy_atoms, source=source)
    except InputError as exc:
        raise InputError(exc.message, source=source, smiles=label) from None
    mol.RemoveAllConformers()
    return mol


def mol_from_smiles(smiles: str, *, source: str, max_heavy_atoms: int = MAX_HEAVY_ATOMS) -> Chem.Mol:
    """Parse and prepare a SMILES (see :func:`prepare_mol`).

    Raises:
        InputError: invalid SMILES, unsupported element, too large.
    """
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        raise InputError("invalid SMILES (RDKit cannot parse it)", source=source, smiles=smiles)
    return prepare_mol(mol, source=source, label=smiles, max_heavy_atoms=max_heavy_atoms)


def input_format(path: str | os.PathLike) -> str:
    """``"smi"``, ``"csv"`` or ``"sdf"`` from the file suffix.

    Raises:
        ConfgenError: unknown suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix in SMILES_SUFFIXES:
        return "smi"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in SDF_SUFFIXES:
        return "sdf"
    known = ", ".join(SMILES_SUFFIXES + CSV_SUFFIXES + SDF_SUFFIXES)
    raise ConfgenError(f"{path}: unknown input format {suffix or '(no suffix)'!r} (known: {known})")


def read_inputs(path: str | os.PathLike, *, errors: list | None = None,
                max_heavy_atoms: int = MAX_HEAVY_ATOMS) -> list[InputRecord]:
    """Read every molecule of a .smi/.txt/.csv/.sdf file.

    Args:
        path: input file.
        errors: receives one :class:`InputError` per unusable record; if ``None`` the first one is raised.
        max_heavy_atoms: larger molecules are rejected.

    Returns:
        The usable records, in input order.

    Raises:
        ConfgenError: the file is missing, unreadable, empty or has no ``smiles`` column (CSV).
    """
    records: list[InputRecord] = []
    for item in iter_inputs(path, max_heavy_atoms=max_heavy_atoms):
        if isinstance(item, InputError):
            if errors is None:
                raise item
            errors.append(item)
        else:
            records.append(item)
    return records


def iter_inputs(path: str | os.PathLike, *, start: int = 0, stop: int | None = None,
                max_heavy_atoms: int = MAX_HEAVY_ATOMS) -> Iterator[InputRecord | InputError]:
    """Stream the records of a .smi/.txt/.csv/.sdf file whose index is in ``[start, stop)``, in input order: an
    :class:`InputRecord` for each usable one, an :class:`InputError` for each other. Records outside the window
    are skipped unparsed (SMILES and CSV inputs), so a shard of a large library reads its slice cheaply.

    Raises:
        ConfgenError: the file is missing, unreadable, empty or has no ``smiles`` column (CSV).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfgenError(f"input file {path} does not exist")
    reader = {"smi": _iter_smi, "csv": _iter_csv, "sdf": _iter_sdf}[input_format(path)]

    def outside(index: int) -> bool:
        return index < start or (stop is not None and index >= stop)

    n_seen = 0
    for item in reader(path, max_heavy_atoms=max_heavy_atoms, skip=outside):
        n_seen += 1
        if not isinstance(item, int):
            yield item
        elif stop is not None and item >= stop:
            return
    if n_seen == 0:
        raise ConfgenError(f"{path}: no molecules in the file")


def count_inputs(path: str | os.PathLike) -> int:
    """Number of molecule records of an input file (failed ones included; the index range of
    :func:`iter_inputs`). SMILES and CSV records are counted without parsing them.

    Raises:
        ConfgenError: as :func:`iter_inputs`, including for a file without molecules.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfgenError(f"input file {path} does not exist")
    reader = {"smi": _iter_smi, "csv": _iter_csv, "sdf": _iter_sdf}[input_format(path)]
    n = sum(1 for _ in reader(path, max_heavy_atoms=MAX_HEAVY_ATOMS, skip=lambda i: True))
    if n == 0:
        raise ConfgenError(f"{path}: no molecules in the file")
    return n


def _iter_smi(path: Path, max_heavy_atoms: int, skip=None) -> Iterator[InputRecord | InputError | int]:
    index = 0
    first = True
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if first and fields[0].lower() == "smiles":
                first = False
                continue
            first = False
            smiles = fields[0]
            rest = []
            for tok in fields[1:]:  # '#' inside a SMILES is a triple bond; after it, a comment
                if tok.startswith("#"):
                    break
                rest.append(tok)
            name = " ".join(rest)
            source = f"{path.name}:{lineno}"
            if skip is not None and skip(index):  # outside the window: the index only
                yield index
                index += 1
                continue
            try:
                mol = mol_from_smiles(smiles, source=source, max_heavy_atoms=max_heavy_atoms)
                yield InputRecord(index=index, smiles=smiles, name=name or f"mol{index}", mol=mol, source=source)
            except InputError as exc:
                yield exc
            index += 1


def _iter_csv(path: Path, max_heavy_atoms: int, skip=None) -> Iterator[InputRecord | InputError | int]:
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfgenError(f"{path}: not a readable CSV file ({exc})") from None
        cols = {h.strip().lower(): i for i, h in enumerate(header)}
        if "smiles" not in cols:
            raise ConfgenError(f"{path}: no 'smiles' column in the header {header}")
        i_smi, i_name, i_n = cols["smiles"], cols.get("name"), cols.get("n_conformers")
        index = 0
        try:
            for row in reader:
                lineno = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                source = f"{path.name}:{lineno}"
                if skip is not None and skip(index):  # outside the window: the index only
                    yield index
                    index += 1
                    continue
                smiles = row[i_smi].strip() if i_smi < len(row) else ""
                name = row[i_name].strip() if i_name is not None and i_name < len(row) else ""
                try:
                    num = None
                    if i_n is not None and i_n < len(row) and row[i_n].strip():
                        try:
                            num = int(float(row[i_n]))
                        except ValueError:
                            raise InputError(f"n_conformers {row[i_n]!r} is not a number", source=source,
                                             smiles=smiles) from None
                        if num < 0:
                            raise InputError(f"n_conformers {num} is negative", source=source, smiles=smiles)
                    if not smiles:
                        raise InputError("empty SMILES", source=source, smiles=name or None)
                    mol = mol_from_smiles(smiles, source=source, max_heavy_atoms=max_heavy_atoms)
                    yield InputRecord(index=index, smiles=smiles, name=name or f"mol{index}", mol=mol, source=source,
                                      num_confs=num)
                except InputError as exc:
                    yield exc
                index += 1
        except csv.Error as exc:
            raise ConfgenError(f"{path}:{reader.line_num}: not a readable CSV file ({exc})") from None


def _iter_sdf(path: Path, max_heavy_atoms: int, skip=None) -> Iterator[InputRecord | InputError | int]:
    with quiet_rdkit():
        supplier = Chem.ForwardSDMolSupplier(str(path), removeHs=False, sanitize=True)
        for index, mol in enumerate(supplier):
            source = f"{path.name}:record {index + 1}"
            if skip is not None and skip(index):  # outside the window: the index only
                yield index
                continue
            if mol is None:
                yield InputError("unreadable SDF record (RDKit cannot parse it)", source=source)
                continue
            title = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
            try:
                if mol.GetNumConformers() and mol.GetConformer().Is3D():
                    Chem.AssignStereochemistryFrom3D(mol)
                smiles = Chem.MolToSmiles(Chem.RemoveHs(mol))
                label = title or smiles
                prepared = prepare_mol(mol, source=source, label=label, max_heavy_atoms=max_heavy_atoms)
                yield InputRecord(index=index, smiles=smiles, name=title or f"mol{index}", mol=prepared,
                                  source=source)
            except InputError as exc:
                yield exc
            except Exception as exc:  # noqa: BLE001 - RDKit raises many types on odd records
                yield InputError(f"unusable SDF record ({exc.__class__.__name__}: {exc})", source=source,
                                 smiles=title or None)


@contextmanager
def _open_text(path: Path):
    try:
        fh = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfgenError(f"cannot read {path}: {exc.strerror}") from None
    try:
        yield fh
    except UnicodeDecodeError:
        raise ConfgenError(f"{path}: not a text file (UTF-8 expected)") from None
    finally:
        fh.close()


class AtomicSDFWriter:
    """Write molecules to an SDF through a temporary file that replaces ``path`` only on success.

    An interrupted or failed run leaves no (truncated) output file. Use as a context manager::

        with AtomicSDFWriter("out.sdf") as w:
            w.write_conformers(mol, name=..., smiles=..., index=...)

    Args:
        path: output file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.num_written = 0
        self._tmp: str | None = None
        self._fh = None

    def __enter__(self) -> "AtomicSDFWriter":
        directory = self.path.parent if str(self.path.parent) else Path(".")
        if not directory.is_dir():
            raise ConfgenError(f"output directory {directory} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        self._fh = os.fdopen(fd, "w")
        return self

    def write_conformers(self, mol: Chem.Mol, *, name: str, smiles: str, index: int,
                         energies: list[float] | None = None) -> None:
        """Write every conformer of ``mol`` as one record: title ``name``, confgen properties.

        Args:
            mol: Mol with conformers (explicit hydrogens).
            name: record title.
            smiles: value of :data:`PROP_SMILES`.
            index: value of :data:`PROP_INDEX`.
            energies: per-conformer MMFF energies (:data:`PROP_MMFF_ENERGY`); ``None``: each conformer's own
                :data:`PROP_MMFF_ENERGY` property where it has one.
        """
        records = conformer_records(mol, name=name, smiles=smiles, index=index, energies=energies)
        self._fh.write("".join(records))
        self.num_written += len(records)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._fh.close()
        finally:
            if exc_type is None:
                _publish(self._tmp, self.path)
            elif os.path.exists(self._tmp):
                os.unlink(self._tmp)


def conformer_records(mol: Chem.Mol, *, name: str, smiles: str, index: int,
                      energies: list[float] | None = None) -> list[str]:
    """The SDF records of every conformer of ``mol`` (one string each), as :class:`AtomicSDFWriter` writes them:
    title ``name``, the confgen properties.

    A record does not depend on its position in the file (no running ``(n)`` number after the property names),
    so an output assembled from chunks computed elsewhere, or from the concatenated outputs of shards, is byte for
    byte the output of one run.
    """
    out = Chem.Mol(mol)
    out.SetProp("_Name", name)
    out.SetProp(PROP_SMILES, smiles)
    out.SetIntProp(PROP_INDEX, int(index))
    if out.HasProp(PROP_MMFF_ENERGY):
        out.ClearProp(PROP_MMFF_ENERGY)
    texts = []
    for k, conf in enumerate(out.GetConformers()):
        out.SetIntProp(PROP_CONF_ID, k)
        energy = energies[k] if energies is not None else (
            conf.GetDoubleProp(PROP_MMFF_ENERGY) if conf.HasProp(PROP_MMFF_ENERGY) else None)
        if energy is not None:
            out.SetDoubleProp(PROP_MMFF_ENERGY, float(energy))
        elif out.HasProp(PROP_MMFF_ENERGY):
            out.ClearProp(PROP_MMFF_ENERGY)
        texts.append(Chem.SDWriter.GetText(out, confId=conf.GetId()))
    return texts


def _publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give a finished temporary file the usual permissions (0666 less the umask; mkstemp makes it 0600) and
    rename it over ``path``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def atomic_write(path: str | os.PathLike, write, *, binary: bool = False) -> None:
    """Write a file atomically: ``write(fh)`` fills a temporary file beside ``path``, renamed at the end.

    An exception inside ``write`` leaves ``path`` untouched and no temporary file behind. Missing parent
    directories are created.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def with_conformers(template: Chem.Mol, conformers) -> Chem.Mol:
    """A copy of ``template`` (its graph and properties) carrying copies of ``conformers``, ids 0..k-1."""
    out = Chem.Mol(template)
    out.RemoveAllConformers()
    for k, conf in enumerate(conformers):
        c = Chem.Conformer(conf)
        c.SetId(k)
        out.AddConformer(c, assignId=False)
    return out


def read_sdf_conformers(path: str | os.PathLike) -> list[Chem.Mol]:
    """Read an SDF written by confgen (one Mol per record, hydrogens kept)."""
    return [m for m in Chem.SDMolSupplier(str(path), removeHs=False) if m is not None]
