"""Inputs:
    * ``.smi`` / ``.smiles`` / ``.txt`` / ``.ism``: ``SMILES [name]`` per line, parsed as every SMILES file of
      confgen is (:func:`confgen.data.readers.smiles.iter_smiles_file`): blank lines and ``#`` comments are
      skipped, as is a first line whose first field is ``smiles`` (a header).
    * ``.csv``: a ``smiles`` column (any case), optional ``name`` and count (:data:`COUNT_COLUMNS`, e.g.
      ``n_conformers``) columns.
    * ``.sdf`` / ``.sd`` / ``.mol`` (also gzipped, ``.sdf.gz``): one molecule per record; stereo is taken from the
      record (3D coordinates or wedges).

Each usable molecule becomes an :class:`InputRecord` with explicit hydrogens and no conformers. A record that
cannot be used becomes one :class:`confgen.errors.InputError` naming its line or record (and SMILES or
name); the other records are still read.

Multi-fragment records (salts, solvates: ``CC(=O)[O-].[Na+]``): by default (``fragments="largest"``) only the
largest organic fragment is kept, chosen as RDKit's standardiser does (``LargestFragmentChooser`` with
``preferOrganic`` and heavy atoms counted); the removed fragments are recorded in the Mol property
:data:`PROP_REMOVED_FRAGMENTS` (written to the SDF). Counter-ions the model cannot handle (Na+, K+, Mg2+, ...)
are removed before the element check, so they never make a record fail. ``fragments="all"`` keeps every
fragment (the generator then places them apart without overlap).

Unspecified stereocentres and stereo bonds (:func:`resolve_stereo`): one policy for every input, recorded in
the Mol property :data:`PROP_STEREO_POLICY` (and :data:`PROP_ISOMERIC_SMILES`): ``"one"`` (default) generates
one stereoisomer, the first of RDKit's ``EnumerateStereoisomers`` (deterministic), for every conformer of the
molecule; ``"enumerate"`` makes each stereoisomer, up to a limit, its own molecule; ``"refuse"`` rejects the
molecule. Without this, ETKDG would resolve each unspecified centre at random per conformer. Untagged
three-coordinate nitrogens (aziridines, ring fusions) are not stereocentres to any policy: a pyramidal nitrogen
inverts, so its configurations are conformers and each conformer may have either
(:func:`confgen.chem.molprep.invertible_nitrogens`).
"""

from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rdkit import Chem

from confgen.chem.molprep import is_organic, keep_largest_fragment, stereoisomers
from confgen.chem.smiles import parse_smiles
from confgen.data.features import MAX_HEAVY_ATOMS, check_mol
from confgen.data.readers.sdf import SDF_SUFFIXES, open_sdf
from confgen.data.readers.smiles import SMILES_SUFFIXES, iter_smiles_file, smiles_column
from confgen.errors import ConfgenError, InputError
from confgen.io.properties import (
    PROP_ISOMERIC_SMILES,
    PROP_REMOVED_FRAGMENTS,
    PROP_STEREO_POLICY,
    PROP_STEREOISOMER,
)
from confgen.options import DEFAULT_FRAGMENTS, DEFAULT_MAX_STEREOISOMERS, FRAGMENT_CHOICES, STEREO_CHOICES
from confgen.rdlog import quiet_rdkit

CSV_SUFFIXES = (".csv",)


#: CSV column names read as the conformer count, in order of preference (``n_true``: GEOM reference files)
COUNT_COLUMNS = ("n_conformers", "num_conformers", "n_confs", "num_confs", "n_true")


@dataclass
class InputRecord:
    """One input molecule.

    Attributes:
        index: record index in the input (0-based; failed records count too).
        smiles: the SMILES exactly as given (SDF: the record's canonical isomeric SMILES).
        name: the record's name (SMILES files: second field; CSV: ``name``; SDF: title), else ``mol{index}``.
        mol: RDKit Mol with explicit hydrogens and no conformers; stereo as specified by the input.
        source: where it came from, e.g. ``"mols.smi:3"`` or ``"mols.sdf:record 2"``.
        num_confs: the count column of a CSV input (:data:`COUNT_COLUMNS`), else ``None``.
    """

    index: int
    smiles: str
    name: str
    mol: Chem.Mol
    source: str
    num_confs: int | None = None

    @property
    def removed_fragments(self) -> str:
        """Dot-separated SMILES of the fragments removed from this input ('' if none)."""
        return self.mol.GetProp(PROP_REMOVED_FRAGMENTS) if self.mol.HasProp(PROP_REMOVED_FRAGMENTS) else ""


def prepare_mol(mol: Chem.Mol, *, source: str, label: str, max_heavy_atoms: int = MAX_HEAVY_ATOMS,
                fragments: str = DEFAULT_FRAGMENTS) -> Chem.Mol:
    """Explicit hydrogens, no conformers, one fragment (by default), checked for the featuriser.

    Args:
        mol: a sanitised RDKit Mol (hydrogens implicit or explicit).
        source: where it came from (for errors).
        label: its SMILES or name (for errors).
        max_heavy_atoms: size limit.
        fragments: ``"largest"`` keeps the largest organic fragment (see :func:`keep_largest_fragment`) and
            records the others in :data:`PROP_REMOVED_FRAGMENTS`; ``"all"`` keeps every fragment.

    Raises:
        InputError: unsupported element, no heavy atoms, too large.
    """
    if fragments not in FRAGMENT_CHOICES:
        raise ConfgenError(f"fragments must be one of {', '.join(FRAGMENT_CHOICES)}, not {fragments!r}")
    removed: list[str] = []
    if fragments == "largest":
        mol, removed = keep_largest_fragment(mol)
        if removed and not is_organic(mol):
            raise InputError("no organic fragment (an inorganic salt or mixture); nothing to generate",
                             source=source, smiles=label)
    mol = Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)
    if removed:
        mol.SetProp(PROP_REMOVED_FRAGMENTS, ".".join(removed))
    try:
        check_mol(mol, max_heavy_atoms=max_heavy_atoms, source=source)
    except InputError as exc:
        raise InputError(exc.message, source=source, smiles=label) from None
    mol.RemoveAllConformers()
    return mol


def mol_from_smiles(smiles: str, *, source: str, max_heavy_atoms: int = MAX_HEAVY_ATOMS,
                    fragments: str = DEFAULT_FRAGMENTS) -> Chem.Mol:
    """Parse and prepare a SMILES (see :func:`prepare_mol`).

    Raises:
        InputError: invalid SMILES, unsupported element, too large.
    """
    mol = parse_smiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        raise InputError("invalid SMILES (RDKit cannot parse it)", source=source, smiles=smiles)
    return prepare_mol(mol, source=source, label=smiles, max_heavy_atoms=max_heavy_atoms, fragments=fragments)


def resolve_stereo(mol: Chem.Mol, policy: str = "one", *, max_isomers: int = DEFAULT_MAX_STEREOISOMERS,
                   source: str | None = None, label: str | None = None,
                   name: str | None = None) -> tuple[list[Chem.Mol], str | None]:
    """Apply a policy for unspecified stereo; the Mols returned have it recorded in their properties.

    Args:
        mol: prepared Mol (explicit hydrogens).
        policy: ``"one"``, ``"enumerate"`` or ``"refuse"`` (see the module docstring).
        max_isomers: ``"enumerate"``: at most this many stereoisomers.
        source, label: where the molecule came from and its SMILES (for the warning and errors).
        name: the molecule's name, added to the warning where it differs from ``label``.

    Returns:
        ``(mols, warning)``: the molecule(s) to generate, each with :data:`PROP_STEREO_POLICY` and
        :data:`PROP_ISOMERIC_SMILES` set (and :data:`PROP_STEREOISOMER` when enumerated), and one line naming
        the molecule when unspecified stereo was resolved (else ``None``).

    Raises:
        InputError: ``"refuse"`` and the molecule has unspecified stereo.
    """
    if policy not in STEREO_CHOICES:
        raise ConfgenError(f"stereo policy must be one of {', '.join(STEREO_CHOICES)}, not {policy!r}")
    if max_isomers < 1:
        raise ConfgenError("the stereoisomer limit must be at least 1")
    isomers, more = stereoisomers(mol, 1 if policy != "enumerate" else max_isomers)
    if isomers == [mol]:
        out = Chem.Mol(mol)
        out.SetProp(PROP_STEREO_POLICY, "specified")
        out.SetProp(PROP_ISOMERIC_SMILES, Chem.MolToSmiles(Chem.RemoveHs(mol)))
        return [out], None
    prefix = InputError("", source=source, smiles=label).format().rstrip(": ")
    if name and name != label:
        prefix = f"{prefix} ({name})" if prefix else name
    prefix = f"{prefix}: " if prefix else ""
    if policy == "refuse":
        raise InputError("unspecified stereocentre(s) or stereo bond(s) (--stereo refuse); specify them, or use "
                         "--stereo one / --stereo enumerate", source=source, smiles=label)
    smiles = [Chem.MolToSmiles(Chem.RemoveHs(iso)) for iso in isomers]
    out = []
    for k, (iso, smi) in enumerate(zip(isomers, smiles)):
        iso = Chem.Mol(iso)
        iso.SetProp(PROP_STEREO_POLICY, policy)
        iso.SetProp(PROP_ISOMERIC_SMILES, smi)
        if policy == "enumerate":
            iso.SetProp(PROP_STEREOISOMER, f"{k + 1}/{len(isomers)}")
        out.append(iso)
    if policy == "one":
        note = (f"{prefix}unspecified stereo: generated one stereoisomer, {smiles[0]} (--stereo enumerate for "
                "every isomer, --stereo refuse to reject)")
    else:
        note = (f"{prefix}unspecified stereo: {len(isomers)} stereoisomers generated as separate molecules"
                + (f" (more exist: the limit --max-stereoisomers {max_isomers} was reached)" if more else ""))
    return out, note


def input_format(path: str | os.PathLike) -> str:
    """``"smi"``, ``"csv"`` or ``"sdf"`` from the file suffix.

    Raises:
        ConfgenError: unknown suffix.
    """
    name = Path(path).name.lower()
    for fmt, suffixes in (("smi", SMILES_SUFFIXES), ("csv", CSV_SUFFIXES), ("sdf", SDF_SUFFIXES)):
        if name.endswith(suffixes):
            return fmt
    suffix = Path(path).suffix.lower()
    known = ", ".join(SMILES_SUFFIXES + CSV_SUFFIXES + SDF_SUFFIXES)
    raise ConfgenError(f"{path}: unknown input format {suffix or '(no suffix)'!r} (known: {known})")


def read_inputs(path: str | os.PathLike, *, errors: list | None = None,
                max_heavy_atoms: int = MAX_HEAVY_ATOMS, fragments: str = DEFAULT_FRAGMENTS,
                count_column: str | None = None) -> list[InputRecord]:
    """Read every molecule of a .smi/.txt/.csv/.sdf file.

    Args:
        path: input file.
        errors: receives one :class:`InputError` per unusable record; if ``None`` the first one is raised.
        max_heavy_atoms: larger molecules are rejected.
        fragments: multi-fragment records: ``"largest"`` or ``"all"`` (see :func:`prepare_mol`).
        count_column: CSV column holding the conformer count (default: the first of :data:`COUNT_COLUMNS`
            present, any case).

    Returns:
        The usable records, in input order.

    Raises:
        ConfgenError: the file is missing, a directory, unreadable, empty, has no ``smiles`` column (CSV) or no
            ``count_column``.
    """
    records: list[InputRecord] = []
    for item in iter_inputs(path, max_heavy_atoms=max_heavy_atoms, fragments=fragments, count_column=count_column):
        if isinstance(item, InputError):
            if errors is None:
                raise item
            errors.append(item)
        else:
            records.append(item)
    return records


def _reader(path: Path, count_column: str | None):
    if path.is_dir():
        raise ConfgenError(f"input {path} is a directory; give a .smi/.txt/.csv/.sdf file")
    if not path.is_file():
        raise ConfgenError(f"input file {path} does not exist")
    fmt = input_format(path)
    if count_column is not None and fmt != "csv":
        raise ConfgenError(f"{path}: a count column applies to CSV input only")
    reader = {"smi": _iter_smi, "csv": _iter_csv, "sdf": _iter_sdf}[fmt]
    kwargs = {"count_column": count_column} if fmt == "csv" else {}
    return reader, kwargs


def iter_inputs(path: str | os.PathLike, *, start: int = 0, stop: int | None = None,
                max_heavy_atoms: int = MAX_HEAVY_ATOMS, fragments: str = DEFAULT_FRAGMENTS,
                count_column: str | None = None) -> Iterator[InputRecord | InputError]:
    """Stream the records of a .smi/.txt/.csv/.sdf file whose index is in ``[start, stop)``, in input order: an
    :class:`InputRecord` for each usable one, an :class:`InputError` for each other (arguments as
    :func:`read_inputs`). Records outside the window are skipped unparsed (SMILES and CSV inputs), so a shard of
    a large library reads its slice cheaply.

    Raises:
        ConfgenError: as :func:`read_inputs`.
    """
    path = Path(path)
    reader, kwargs = _reader(path, count_column)

    def outside(index: int) -> bool:
        return index < start or (stop is not None and index >= stop)

    n_seen = 0
    for item in reader(path, max_heavy_atoms=max_heavy_atoms, fragments=fragments, skip=outside, **kwargs):
        n_seen += 1
        if not isinstance(item, int):
            yield item
        elif stop is not None and item >= stop:
            return
    if n_seen == 0:
        raise ConfgenError(f"{path}: no molecules in the file")


def count_inputs(path: str | os.PathLike, count_column: str | None = None) -> int:
    """Number of molecule records of an input file (failed ones included; the index range of
    :func:`iter_inputs`). SMILES and CSV records are counted without parsing them.

    Raises:
        ConfgenError: as :func:`read_inputs`, including for a file without molecules.
    """
    path = Path(path)
    reader, kwargs = _reader(path, count_column)
    n = sum(1 for _ in reader(path, max_heavy_atoms=MAX_HEAVY_ATOMS, fragments=DEFAULT_FRAGMENTS,
                              skip=lambda i: True, **kwargs))
    if n == 0:
        raise ConfgenError(f"{path}: no molecules in the file")
    return n


def _iter_smi(path: Path, max_heavy_atoms: int, fragments: str,
              skip=None) -> Iterator[InputRecord | InputError | int]:
    index = 0
    with _open_text(path) as fh:
        for lineno, smiles, name in iter_smiles_file(fh):
            source = f"{path.name}:{lineno}"
            if skip is not None and skip(index):  # outside the window: the index only
                yield index
                index += 1
                continue
            try:
                mol = mol_from_smiles(smiles, source=source, max_heavy_atoms=max_heavy_atoms, fragments=fragments)
                yield InputRecord(index=index, smiles=smiles, name=name or f"mol{index}", mol=mol, source=source)
            except InputError as exc:
                yield exc
            index += 1


def _iter_csv(path: Path, max_heavy_atoms: int, fragments: str, count_column: str | None,
              skip=None) -> Iterator[InputRecord | InputError | int]:
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfgenError(f"{path}: not a readable CSV file ({exc})") from None
        cols = {h.strip().lower(): i for i, h in enumerate(header)}
        i_smi = smiles_column(header)
        if i_smi is None:
            raise ConfgenError(f"{path}: no 'smiles' column in the header {header}")
        if count_column is not None:
            if count_column.strip().lower() not in cols:
                raise ConfgenError(f"{path}: no count column {count_column!r} in the header {header}")
            count_name = count_column.strip().lower()
        else:
            count_name = next((c for c in COUNT_COLUMNS if c in cols), None)
        i_name, i_n = cols.get("name"), cols.get(count_name)
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
                            raise InputError(f"{count_name} {row[i_n]!r} is not a number", source=source,
                                             smiles=smiles) from None
                        if num < 0:
                            raise InputError(f"{count_name} {num} is negative", source=source, smiles=smiles)
                    if not smiles:
                        raise InputError("empty SMILES", source=source, smiles=name or None)
                    mol = mol_from_smiles(smiles, source=source, max_heavy_atoms=max_heavy_atoms,
                                          fragments=fragments)
                    yield InputRecord(index=index, smiles=smiles, name=name or f"mol{index}", mol=mol, source=source,
                                      num_confs=num)
                except InputError as exc:
                    yield exc
                index += 1
        except csv.Error as exc:
            raise ConfgenError(f"{path}:{reader.line_num}: not a readable CSV file ({exc})") from None


def _iter_sdf(path: Path, max_heavy_atoms: int, fragments: str,
              skip=None) -> Iterator[InputRecord | InputError | int]:
    try:
        fh = open_sdf(path)
    except OSError as exc:
        raise ConfgenError(f"cannot read {path}: {exc.strerror}") from None
    with fh, quiet_rdkit():
        supplier = Chem.ForwardSDMolSupplier(fh, removeHs=False, sanitize=True)
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
                prepared = prepare_mol(mol, source=source, label=label, max_heavy_atoms=max_heavy_atoms,
                                       fragments=fragments)
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
