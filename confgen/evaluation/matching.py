"""Evaluation of generated ensembles against references: molecules matched by graph (canonical SMILES), one
RMSD matrix per reference molecule (in worker processes if asked), COV/MAT per molecule and overall."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from rdkit import Chem

from confgen.chem.conformers import heavy_atom_copy, heavy_atom_indices, heavy_positions
from confgen.chem.rmsd import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_MATCHES, atom_mappings, rmsd_matrix_from_positions
from confgen.chem.smiles import canonical_smiles
from confgen.errors import InputError
from confgen.evaluation.metrics import DEFAULT_DELTAS, aggregate, cov_mat


@dataclass
class _Entry:
    """One molecule taking part in an evaluation (a reference or a generated ensemble)."""

    name: str
    source: str
    smiles: str
    mol: Chem.Mol | None
    iso: str | None = None  # canonical isomeric SMILES perceived from the Mol
    flat: str | None = None  # stereo-free canonical SMILES


def _as_entry(item, fallback: str) -> _Entry:
    """A MolRecord (``smiles, mol, source, name``) or a bare Mol -> :class:`_Entry` with graph keys."""
    if isinstance(item, Chem.Mol):
        mol = item
        name = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
        entry = _Entry(name=name or fallback, source=fallback, smiles="", mol=mol)
    else:
        mol = getattr(item, "mol", None)
        entry = _Entry(
            name=str(getattr(item, "name", "") or getattr(item, "smiles", "") or fallback),
            source=str(getattr(item, "source", "") or fallback),
            smiles=str(getattr(item, "smiles", "") or ""),
            mol=mol,
        )
    if mol is not None:
        try:
            entry.iso = canonical_smiles(mol, stereo=True)
            entry.flat = canonical_smiles(mol, stereo=False)
        except Exception:  # noqa: BLE001 - reported as a failed molecule by the caller
            entry.iso = entry.flat = None
        if not entry.smiles:
            entry.smiles = entry.iso or ""
    return entry


def _failure(entry: _Entry, side: str, reason: str) -> dict:
    return {"side": side, "name": entry.name, "source": entry.source, "smiles": entry.smiles, "reason": reason}


def _make_task(ref_mol: Chem.Mol, gen_mols: list[Chem.Mol], deltas, max_matches: int, chunk_size: int) -> tuple:
    """Pack one reference and its generated ensembles for a worker.

    Coordinates travel as float64 arrays: RDKit pickles conformers in single precision, which would move
    atoms by ~1e-7 A and change RMSDs in the 8th digit between ``workers=1`` and ``workers>1``.
    """
    ref = (ref_mol, heavy_positions(ref_mol, heavy_atom_indices(ref_mol)))
    gens = [(g, heavy_positions(g, heavy_atom_indices(g))) for g in gen_mols]
    return ref, gens, deltas, max_matches, chunk_size


def _evaluate_task(task: tuple) -> dict:
    """Worker: RMSD matrices of one reference against its generated ensembles, then COV/MAT.

    Args:
        task: from :func:`_make_task`: ``((ref_mol, ref_pos[L, N, 3]), [(gen_mol, gen_pos[K, N, 3]), ...],
            deltas, max_matches, chunk_size)``.

    Returns:
        ``{"ok": True, "metrics": cov_mat dict, "ref_min": [L], "gen_min": [K]}`` or
        ``{"ok": False, "reason": str}``.
    """
    (ref_mol, ref_pos), gens, deltas, max_matches, chunk_size = task
    try:
        ref_heavy, _ = heavy_atom_copy(ref_mol)
        blocks = []
        for gen_mol, gen_pos in gens:
            gen_heavy, _ = heavy_atom_copy(gen_mol)
            maps = atom_mappings(ref_heavy, gen_heavy, max_matches=max_matches)
            blocks.append(rmsd_matrix_from_positions(ref_pos, gen_pos, maps, chunk_size=chunk_size))
    except InputError as exc:
        return {"ok": False, "reason": exc.message}
    rmsd = np.concatenate(blocks, axis=1) if blocks else np.zeros((ref_pos.shape[0], 0))
    metrics = cov_mat(rmsd, deltas)
    ref_min = rmsd.min(axis=1) if rmsd.shape[1] else np.full(rmsd.shape[0], np.inf)
    gen_min = rmsd.min(axis=0) if rmsd.shape[0] else np.zeros(0)
    return {"ok": True, "metrics": metrics, "ref_min": ref_min.tolist(), "gen_min": gen_min.tolist()}


def _match(references: list[_Entry], generated: list[_Entry]) -> tuple[dict[int, list[int]], list[dict], dict[int, bool]]:
    """Match generated ensembles to references by graph: isomeric SMILES, then stereo-free if unambiguous.

    Returns:
        ``(assigned, failures, stereo_free)``: reference index -> generated indices, failure records for the
        generated side, and reference index -> True when some generated ensemble matched it only stereo-free.
    """
    by_iso: dict[str, list[int]] = {}
    by_flat: dict[str, list[int]] = {}
    for i, ref in enumerate(references):
        keys = {ref.iso}
        if ref.smiles:
            try:  # the source's own SMILES (e.g. the GEOM key) may name the stereo the Mol does not perceive
                keys.add(canonical_smiles(ref.smiles, stereo=True))
            except Exception:  # noqa: BLE001
                pass
        for key in keys - {None}:
            by_iso.setdefault(key, []).append(i)
        if ref.flat is not None:
            by_flat.setdefault(ref.flat, []).append(i)
    assigned: dict[int, list[int]] = {}
    stereo_free: dict[int, bool] = {}
    failures: list[dict] = []
    for j, gen in enumerate(generated):
        if gen.iso is None:
            failures.append(_failure(gen, "generated", "molecule could not be canonicalised"))
            continue
        hits = sorted(set(by_iso.get(gen.iso, [])))
        loose = False
        if not hits:
            hits = sorted(set(by_flat.get(gen.flat, [])))
            loose = True
        if not hits:
            failures.append(_failure(gen, "generated", "no reference molecule with this graph"))
            continue
        if len(hits) > 1 and loose:
            failures.append(
                _failure(
                    gen,
                    "generated",
                    f"ambiguous: its stereo matches none of the {len(hits)} reference stereoisomers with this graph",
                )
            )
            continue
        for i in hits[:1]:  # duplicated references: the first one takes the generated conformers
            assigned.setdefault(i, []).append(j)
            stereo_free[i] = stereo_free.get(i, False) or loose
    return assigned, failures, stereo_free


def evaluate_ensembles(
    generated: Iterable,
    references: Iterable,
    deltas: Iterable[float] = DEFAULT_DELTAS,
    *,
    workers: int = 1,
    max_matches: int = DEFAULT_MAX_MATCHES,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    failed: Sequence[dict] = (),
    progress: bool = False,
) -> dict:
    """COV/MAT of generated ensembles against reference ensembles, molecules matched by graph.

    Molecules are matched by canonical isomeric SMILES perceived from each Mol (the reference's source SMILES
    also counts), else by stereo-free SMILES when that names exactly one reference; titles are never used.
    Several generated ensembles of one molecule are pooled. Atom orders may differ between the two sides.

    Args:
        generated: MolRecords (``confgen.data.readers.MolRecord``) or Mols with conformers.
        references: MolRecords or Mols with conformers.
        deltas: COV thresholds in Angstrom.
        workers: processes evaluating molecules in parallel (1 = in this process).
        max_matches: most symmetry mappings per molecule (more: the molecule fails with a clear reason).
        chunk_size: memory bound of the RMSD computation (see :func:`rmsd_matrix_from_positions`).
        failed: failure records already collected by the caller (e.g. unreadable records); included as is.
        progress: show a progress bar.

    Returns:
        The JSON contract of design.md: ``{"deltas", "n_molecules", "n_failed", "n_missing", "results":
        [...], "per_molecule": [{smiles, name, source, n_ref, n_gen, cov_r, mat_r, cov_p, mat_p, status,
        stereo_free_match, ref_min, gen_min}], "missing": [...], "failed": [{side, name, source, smiles,
        reason}]}``. ``n_molecules`` counts the evaluated reference molecules, including those without any
        generated conformer (``status`` "missing", COV-R 0). ``failed`` lists generated molecules without a
        reference, references without conformers, graph or atom-count mismatches and unreadable records.
    """
    deltas = [float(d) for d in deltas]
    refs = [_as_entry(r, f"reference {i + 1}") for i, r in enumerate(references)]
    gens = [_as_entry(g, f"generated {i + 1}") for i, g in enumerate(generated)]
    failures: list[dict] = [dict(f) for f in failed]

    usable_refs: list[int] = []
    for i, ref in enumerate(refs):
        if ref.mol is None or ref.mol.GetNumConformers() == 0:
            failures.append(_failure(ref, "reference", "reference molecule has no conformers"))
        elif ref.iso is None:
            failures.append(_failure(ref, "reference", "molecule could not be canonicalised"))
        else:
            usable_refs.append(i)
    usable_gens: list[int] = []
    for j, gen in enumerate(gens):
        if gen.mol is None or gen.mol.GetNumConformers() == 0:
            failures.append(_failure(gen, "generated", "generated molecule has no conformers"))
        else:
            usable_gens.append(j)
    ref_list = [refs[i] for i in usable_refs]
    gen_list = [gens[j] for j in usable_gens]
    assigned, match_failures, stereo_free = _match(ref_list, gen_list)
    failures.extend(match_failures)

    tasks = [
        _make_task(ref.mol, [gen_list[j].mol for j in assigned.get(i, [])], deltas, max_matches, chunk_size)
        for i, ref in enumerate(ref_list)
    ]
    outputs = _run_tasks(tasks, workers=workers, progress=progress)

    per_molecule: list[dict] = []
    missing: list[dict] = []
    for i, (ref, out) in enumerate(zip(ref_list, outputs)):
        if not out["ok"]:
            failures.append(_failure(ref, "reference", out["reason"]))
            continue
        m = out["metrics"]
        status = "ok" if m["n_gen"] else "missing"
        row = {
            "smiles": ref.smiles,
            "name": ref.name,
            "source": ref.source,
            "n_ref": m["n_ref"],
            "n_gen": m["n_gen"],
            "cov_r": m["cov_r"],
            "mat_r": m["mat_r"],
            "cov_p": m["cov_p"],
            "mat_p": m["mat_p"],
            "status": status,
            "stereo_free_match": bool(stereo_free.get(i, False)),
            "ref_min": [None if not math.isfinite(v) else round(v, 6) for v in out["ref_min"]],
            "gen_min": [round(v, 6) for v in out["gen_min"]],
        }
        per_molecule.append(row)
        if status == "missing":
            missing.append({"name": ref.name, "source": ref.source, "smiles": ref.smiles, "n_ref": m["n_ref"]})
    return {
        "deltas": deltas,
        "n_molecules": len(per_molecule),
        "n_failed": len(failures),
        "n_missing": len(missing),
        "n_ref_conformers": int(sum(r["n_ref"] for r in per_molecule)),
        "n_gen_conformers": int(sum(r["n_gen"] for r in per_molecule)),
        "results": aggregate(per_molecule, deltas),
        "per_molecule": per_molecule,
        "missing": missing,
        "failed": failures,
    }


def _run_tasks(tasks: list[tuple], *, workers: int, progress: bool) -> list[dict]:
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="evaluate", unit="mol", disable=not progress, leave=False)
    try:
        if workers <= 1 or len(tasks) <= 1:
            out = []
            for task in tasks:
                out.append(_evaluate_task(task))
                bar.update(1)
            return out
        import multiprocessing as mp

        # large molecules first would balance better, but imap keeps order and memory flat
        with mp.get_context().Pool(processes=min(workers, len(tasks))) as pool:
            out = []
            for res in pool.imap(_evaluate_task, tasks, chunksize=1):
                out.append(res)
                bar.update(1)
            return out
    finally:
        bar.close()
