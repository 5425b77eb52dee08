"""Pickles (through :mod:`confgen.data.safe_pickle`): torsional-diffusion ``dict[smiles -> list[Mol]]`` and GEOM
per-molecule pickles (a dict with a ``conformers`` list)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rdkit import Chem

from confgen.data import safe_pickle
from confgen.data.readers.records import MolRecord, Reporter, build_records
from confgen.errors import ConfgenError, InputError


PICKLE_SUFFIXES = (".pkl", ".pickle", ".pkl.gz", ".pickle.gz")


def _is_mol_list(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(m, Chem.Mol) for m in value)


def iter_pickle(path, *, filt, report, max_confs, stats) -> Iterator[MolRecord]:
    p = Path(path)
    try:
        data = safe_pickle.load(p)
    except ConfgenError as exc:
        report(InputError(str(exc)))
        return
    if isinstance(data, dict) and "conformers" in data:  # one GEOM rdkit_folder pickle
        yield from geom_records(data, key=str(data.get("smiles", "")), source=str(p), filt=filt, report=report,
                                 max_confs=max_confs, stats=stats)
        return
    if not isinstance(data, dict) or not data:
        report(InputError(f"{p}: unknown pickle layout (expected dict[smiles -> list[Mol]] or a GEOM "
                          f"rdkit_folder molecule pickle, got {type(data).__name__}"
                          f"{' (empty)' if isinstance(data, dict) else ''})"))
        return
    for i, (key, value) in enumerate(data.items()):
        source = f"{p}:{key}"
        if isinstance(value, Chem.Mol):
            value = [value]
        if isinstance(value, dict) and "conformers" in value:
            yield from geom_records(value, key=str(key), source=source, filt=filt, report=report,
                                     max_confs=max_confs, stats=stats)
            continue
        if not isinstance(key, str) or not _is_mol_list(value):
            report(InputError(f"entry {i} is not a list of RDKit Mols", source=str(p), smiles=str(key)[:200]))
            continue
        if not filt.smiles_heavy_ok(key):
            continue
        recs = build_records(list(value), smiles=key, name=key, source=source, weights=None, max_confs=max_confs,
                        stereo=filt.stereo, stats=stats)
        if not recs:
            report(InputError("no conformers", source=source, smiles=key))
            continue
        yield from (r for r in recs if filt.in_split(key, r.mol))


def geom_records(data: dict, *, key: str, source: str, filt, report: Reporter,
                  max_confs: int | None, stats: dict) -> Iterator[MolRecord]:
    """The molecule of a GEOM per-molecule pickle dict (``conformers`` list with ``rd_mol``)."""
    confs = data.get("conformers")
    if not isinstance(confs, list):
        report(InputError("GEOM pickle without a 'conformers' list", source=source, smiles=key or None))
        return
    key = key or str(data.get("smiles", ""))
    items = []
    for c in confs:
        if not isinstance(c, dict) or not isinstance(c.get("rd_mol"), Chem.Mol):
            continue
        w = c.get("boltzmannweight")
        try:
            w = float(w) if w is not None else float("nan")
        except (TypeError, ValueError):
            w = float("nan")
        items.append((w, c["rd_mol"]))
    if not items:
        report(InputError("no conformers with an RDKit Mol ('rd_mol')", source=source, smiles=key or None))
        return
    # highest Boltzmann weight first; conformers without a weight go last, in file order
    order = sorted(range(len(items)), key=lambda i: (-(items[i][0]) if np.isfinite(items[i][0]) else np.inf, i))
    recs = build_records([items[i][1] for i in order], smiles=key, name=key, source=source,
                    weights=[items[i][0] for i in order], max_confs=max_confs, stereo=filt.stereo, stats=stats)
    if not recs:
        report(InputError("no conformers", source=source, smiles=key or None))
    for rec in recs:
        if filt.in_split(rec.smiles, rec.mol):
            yield rec
