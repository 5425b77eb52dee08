"""Multi-conformer SDF files (``.sdf``, ``.sdf.gz``): consecutive records of one molecule form one record."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from rdkit import Chem

from confgen.chem.smiles import canonical_smiles
from confgen.data.readers.records import MolRecord, build_records
from confgen.errors import InputError
from confgen.rdlog import quiet_rdkit


SDF_SUFFIXES = (".sdf", ".sd", ".mol", ".sdf.gz", ".sd.gz")


def open_sdf(p: Path):
    if p.name.lower().endswith(".gz"):
        return gzip.open(p, "rb")
    return open(p, "rb")


def iter_sdf(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    try:
        fh = open_sdf(p)
        # a gzip file opens lazily; read one byte to surface errors here
        first = fh.peek(1) if hasattr(fh, "peek") else b"x"
    except (OSError, EOFError) as exc:
        report(InputError(f"{p}: cannot read file ({exc})"))
        return
    if not first:
        fh.close()
        report(InputError(f"{p}: empty file"))
        return
    n_records = 0
    n_good = 0
    group: list[Chem.Mol] = []
    group_key: tuple | None = None
    group_start = 0

    def flush() -> list[MolRecord]:
        first_mol = group[0]
        smiles = first_mol.GetProp("geom_smiles") if first_mol.HasProp("geom_smiles") else ""
        name = first_mol.GetProp("_Name").strip() if first_mol.HasProp("_Name") else ""
        recs = build_records(group, smiles=smiles, name=name, source=f"{p}:record {group_start}", weights=None,
                        max_confs=max_confs, stereo=filt.stereo, stats=stats)
        return [r for r in recs if filt.in_split(r.smiles, r.mol)]

    try:
        with fh, quiet_rdkit():
            supplier = Chem.ForwardSDMolSupplier(fh, removeHs=False)
            for i, mol in enumerate(supplier, start=1):
                n_records += 1
                if mol is None:
                    report(InputError("SDF record could not be parsed", source=f"{p}:record {i}"))
                    continue
                n_good += 1
                try:
                    # a source's own molecule id (GEOM exports) groups conformers even if one is broken
                    key = ("prop", mol.GetProp("geom_smiles")) if mol.HasProp("geom_smiles") else (
                        "graph", canonical_smiles(mol, stereo=False))
                except Exception:  # noqa: BLE001
                    report(InputError("SDF record could not be canonicalised", source=f"{p}:record {i}"))
                    continue
                if group and key != group_key:
                    yield from flush()
                    group = []
                if not group:
                    group_key, group_start = key, i
                group.append(mol)
            if group:
                yield from flush()
    except (OSError, EOFError) as exc:
        report(InputError(f"{p}: cannot read file ({exc})"))
        return
    if n_records == 0:
        report(InputError(f"{p}: no SDF records found (empty or not an SDF file)"))
