"""Inputs and outputs of ``confgen sample``: read .smi/.txt/.csv/.sdf molecules, write conformers as SDF.

This module is the one place that names the SDF properties confgen writes (:data:`PROP_SMILES` etc.).

Inputs:
    * ``.smi`` / ``.txt``: ``SMILES [name]`` per line; blank lines and ``#`` comments are skipped, as is a first
      line whose first field is ``smiles`` (a header).
    * ``.csv``: a ``smiles`` column (any case), optional ``name`` and count (:data:`COUNT_COLUMNS`, e.g.
      ``n_conformers``) columns.
    * ``.sdf``: one molecule per record; stereo is taken from the record (3D coordinates or wedges).

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
molecule. Without this, ETKDG would resolve each unspecified centre at random per conformer.
"""

from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rdkit import Chem

from confgen.chem.files import AtomicFile
from confgen.chem.smiles import parse_smiles
from confgen.data.features import MAX_HEAVY_ATOMS, check_mol
from confgen.errors import ConfgenError, InputError
from confgen.options import DEFAULT_FRAGMENTS, DEFAULT_MAX_STEREOISOMERS, FRAGMENT_CHOICES, STEREO_CHOICES
from confgen.rdlog import quiet_rdkit

#: the input SMILES exactly as given (for SDF inputs: the record's canonical isomeric SMILES)
PROP_SMILES = "confgen_smiles"
#: index of the input record (0-based, counting every molecule record of the input, failed ones included)
PROP_INDEX = "confgen_index"
#: conformer number within its molecule (0-based)
PROP_CONF_ID = "confgen_conf_id"
#: MMFF94 energy after ``--relax mmff``, in kcal/mol (the unit is part of the name)
PROP_MMFF_ENERGY = "confgen_mmff_energy_kcal_mol"
#: 1 if the conformer passes PoseBusters' "mol" bond-length, bond-angle and clash limits, 0 if it was written
#: outside them (no retry got inside; see :mod:`confgen.validity`)
PROP_WITHIN_BOUNDS = "confgen_posebusters_bounds_ok"
#: fragments removed from a multi-fragment input (salt counter-ions, solvent), as dot-separated SMILES
PROP_REMOVED_FRAGMENTS = "confgen_removed_fragments"
#: how unspecified stereo was handled: "specified" (nothing unspecified), "one", "enumerate" (see module doc)
PROP_STEREO_POLICY = "confgen_stereo_policy"
#: canonical isomeric SMILES of the molecule generated (its stereo as written)
PROP_ISOMERIC_SMILES = "confgen_isomeric_smiles"
#: "k/n": stereoisomer k of the n enumerated for this input (``--stereo enumerate``)
PROP_STEREOISOMER = "confgen_stereoisomer"

#: CSV column names read as the conformer count, in order of preference (``n_true``: GEOM reference files)
COUNT_COLUMNS = ("n_conformers", "num_conformers", "n_confs", "num_confs", "n_true")

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


def _is_organic(mol: Chem.Mol) -> bool:
    return any(a.GetAtomicNum() == 6 for a in mol.GetAtoms())


def keep_largest_fragment(mol: Chem.Mol) -> tuple[Chem.Mol, list[str]]:
    """The largest organic fragment of ``mol`` and the SMILES of the others.

    The choice follows RDKit's ``LargestFragmentChooser(preferOrganic=True)`` counting heavy atoms (RDKit's
    own chooser counts explicit hydrogens as atoms, so it would pick cyclohexane over benzoic acid in an SDF
    with hydrogens): a fragment with carbon before one without, then more heavy atoms, then more atoms, then
    the larger mass, then the earlier one. Stereo, properties and coordinates of the kept fragment are kept.

    Returns:
        ``(mol, removed)``: ``mol`` itself and ``[]`` for a single-fragment molecule.
    """
    if len(Chem.GetMolFrags(mol)) < 2:
        return mol, []
    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=True)
    if len(frags) < 2:
        return mol, []

    def key(k):
        f = frags[k]
        heavy = sum(a.GetAtomicNum() > 1 for a in f.GetAtoms())
        mass = sum(a.GetMass() for a in f.GetAtoms())
        return (_is_organic(f), heavy, f.GetNumAtoms() + sum(a.GetTotalNumHs() for a in f.GetAtoms()), mass, -k)

    best = max(range(len(frags)), key=key)
    kept = Chem.Mol(frags[best])
    for name in mol.GetPropNames():
        kept.SetProp(name, mol.GetProp(name))
    removed = [Chem.MolToSmiles(Chem.RemoveHs(f, sanitize=False)) for k, f in enumerate(frags) if k != best]
    return kept, removed


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
        if removed and not _is_organic(mol):
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


def stereoisomers(mol: Chem.Mol, max_isomers: int) -> tuple[list[Chem.Mol], bool]:
    """The stereoisomers of ``mol`` over its unspecified stereocentres and stereo bonds.

    RDKit's ``EnumerateStereoisomers`` (only unassigned stereo, unique isomers, no embedding test), in its
    deterministic order; specified stereo is kept.

    Returns:
        ``(isomers, more)``: at most ``max_isomers`` Mols (same atom order and properties as ``mol``; just
        ``[mol]`` when nothing is unspecified) and whether more isomers exist than were returned.
    """
    from rdkit.Chem.EnumerateStereoisomers import EnumerateStereoisomers, StereoEnumerationOptions

    options = StereoEnumerationOptions(onlyUnassigned=True, unique=True, tryEmbedding=False,
                                       maxIsomers=0)
    isomers = []
    more = False
    with quiet_rdkit():
        for iso in EnumerateStereoisomers(mol, options=options):
            if len(isomers) == max_isomers:
                more = True
                break
            isomers.append(iso)
    if len(isomers) == 1 and Chem.MolToSmiles(isomers[0]) == Chem.MolToSmiles(mol):
        return [mol], False
    return isomers, more


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
        if "smiles" not in cols:
            raise ConfgenError(f"{path}: no 'smiles' column in the header {header}")
        if count_column is not None:
            if count_column.strip().lower() not in cols:
                raise ConfgenError(f"{path}: no count column {count_column!r} in the header {header}")
            count_name = count_column.strip().lower()
        else:
            count_name = next((c for c in COUNT_COLUMNS if c in cols), None)
        i_smi, i_name, i_n = cols["smiles"], cols.get("name"), cols.get(count_name)
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


#: per-conformer properties (set on the RDKit Conformer) that the writer copies to each SDF record
CONFORMER_PROPS = (PROP_MMFF_ENERGY, PROP_WITHIN_BOUNDS)


class AtomicSDFWriter:
    """Write molecules to an SDF through a temporary file that replaces ``path`` only on success.

    An interrupted or failed run leaves no (truncated) output file, and a run that writes no conformer leaves
    no (empty) one: ``path`` is then left as it was. Use as a context manager::

        with AtomicSDFWriter("out.sdf") as w:
            w.write_conformers(mol, name=..., smiles=..., index=...)

    Args:
        path: output file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.num_written = 0
        self._file: AtomicFile | None = None

    def __enter__(self) -> "AtomicSDFWriter":
        if self.path.is_dir():
            raise ConfgenError(f"output {self.path} is a directory")
        self._file = AtomicFile(self.path, make_dirs=False)
        return self

    def write_conformers(self, mol: Chem.Mol, *, name: str, smiles: str, index: int,
                         energies: list[float] | None = None) -> None:
        """Write every conformer of ``mol`` as one record: title ``name``, confgen properties.

        The Mol's own properties (e.g. :data:`PROP_REMOVED_FRAGMENTS`, :data:`PROP_STEREO_POLICY`) are written
        too; the per-conformer properties of :data:`CONFORMER_PROPS` go to that conformer's record.

        Args:
            mol: Mol with conformers (explicit hydrogens).
            name: record title.
            smiles: value of :data:`PROP_SMILES`.
            index: value of :data:`PROP_INDEX`.
            energies: per-conformer MMFF energies (:data:`PROP_MMFF_ENERGY`); ``None``: each conformer's own
                :data:`PROP_MMFF_ENERGY` property where it has one.
        """
        records = conformer_records(mol, name=name, smiles=smiles, index=index, energies=energies)
        self._file.fh.write("".join(records))
        self.num_written += len(records)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and self.num_written:
            self._file.commit()
        else:
            self._file.discard()


def conformer_records(mol: Chem.Mol, *, name: str, smiles: str, index: int,
                      energies: list[float] | None = None) -> list[str]:
    """The SDF records of every conformer of ``mol`` (one string each), as :class:`AtomicSDFWriter` writes them:
    title ``name``, the confgen properties, the Mol's own properties, the conformer's :data:`CONFORMER_PROPS`.

    A record does not depend on its position in the file (no running ``(n)`` number after the property names),
    so an output assembled from chunks computed elsewhere, or from the concatenated outputs of shards, is byte for
    byte the output of one run.
    """
    out = Chem.Mol(mol)
    out.SetProp("_Name", name)
    out.SetProp(PROP_SMILES, smiles)
    out.SetIntProp(PROP_INDEX, int(index))
    texts = []
    for k, conf in enumerate(out.GetConformers()):
        out.SetIntProp(PROP_CONF_ID, k)
        for prop in CONFORMER_PROPS:
            value = conf.GetPropsAsDict().get(prop) if conf.HasProp(prop) else None
            if prop == PROP_MMFF_ENERGY and energies is not None:
                value = energies[k]
            if value is None:
                if out.HasProp(prop):
                    out.ClearProp(prop)
            elif isinstance(value, float):
                out.SetDoubleProp(prop, value)
            else:
                out.SetIntProp(prop, int(value))
        texts.append(Chem.SDWriter.GetText(out, confId=conf.GetId()))
    return texts


def read_sdf_conformers(path: str | os.PathLike) -> list[Chem.Mol]:
    """Read an SDF written by confgen (one Mol per record, hydrogens kept)."""
    return [m for m in Chem.SDMolSupplier(str(path), removeHs=False) if m is not None]
