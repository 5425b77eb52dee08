"""COV/MAT of generated conformer ensembles against reference ensembles (RMSD: :mod:`confgen.chem.rmsd`).

COV/MAT (per molecule, then mean and median over molecules), with L references and K generated
conformers and the L x K RMSD matrix D:

* COV-R(delta) = fraction of references i with min_j D[i, j] < delta; MAT-R = mean_i min_j D[i, j];
* COV-P(delta) = fraction of generated j with min_i D[i, j] < delta; MAT-P = mean_j min_i D[i, j].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from rdkit import Chem

from confgen.chem.conformers import heavy_atom_copy, heavy_atom_indices, heavy_positions
from confgen.chem.files import atomic_write
from confgen.chem.rmsd import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_MATCHES, atom_mappings, rmsd_matrix_from_positions
from confgen.chem.smiles import canonical_smiles
from confgen.errors import ConfgenError, InputError

DEFAULT_DELTAS: tuple[float, ...] = (0.5, 0.75, 1.25)


__all__ = [
    "DEFAULT_DELTAS",
    "DEFAULT_MAX_MATCHES",
    "cov_mat",
    "aggregate",
    "evaluate_ensembles",
    "load_ensembles",
    "coverage_curve",
    "format_table",
    "plot_coverage",
]


# ------------------------------------------------------------------------------------------ COV / MAT
def cov_mat(rmsd: np.ndarray, deltas: Iterable[float] = DEFAULT_DELTAS) -> dict:
    """COV/MAT of one molecule from its RMSD matrix.

    Args:
        rmsd: ``[L, K]`` RMSD between L references and K generated conformers (K may be 0).
        deltas: coverage thresholds in Angstrom (a pair covers when ``rmsd < delta``).

    Returns:
        ``{"n_ref", "n_gen", "deltas", "cov_r": [per delta], "mat_r", "cov_p": [per delta] | None,
        "mat_p"}``. With no generated conformers COV-R is 0 at every delta and MAT-R, COV-P, MAT-P are
        ``None`` (undefined); with no references everything but the counts is ``None``.
    """
    deltas = [float(d) for d in deltas]
    rmsd = np.asarray(rmsd, dtype=np.float64)
    n_ref, n_gen = rmsd.shape
    res: dict = {"n_ref": int(n_ref), "n_gen": int(n_gen), "deltas": deltas}
    if n_ref == 0:
        res.update(cov_r=None, mat_r=None, cov_p=None, mat_p=None)
        return res
    if n_gen == 0:
        res.update(cov_r=[0.0] * len(deltas), mat_r=None, cov_p=None, mat_p=None)
        return res
    ref_min = rmsd.min(axis=1)  # [L]
    gen_min = rmsd.min(axis=0)  # [K]
    res["cov_r"] = [float(np.mean(ref_min < d)) for d in deltas]
    res["mat_r"] = float(ref_min.mean())
    res["cov_p"] = [float(np.mean(gen_min < d)) for d in deltas]
    res["mat_p"] = float(gen_min.mean())
    return res


def _stats(values: list) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    arr = np.asarray(vals, dtype=np.float64)
    return float(arr.mean()), float(np.median(arr))


def aggregate(per_molecule: Sequence[dict], deltas: Iterable[float] = DEFAULT_DELTAS) -> list[dict]:
    """Mean and median over molecules of each metric, one row per delta (the JSON contract's ``results``).

    Molecules whose metric is ``None`` (undefined, e.g. MAT-R with no generated conformer) are left out
    of that metric only; COV-R of a molecule without generated conformers is 0 and counts.

    Args:
        per_molecule: dicts from :func:`cov_mat` (``cov_r``/``cov_p`` lists aligned with ``deltas``).
        deltas: the thresholds, in the same order as the per-molecule lists.

    Returns:
        ``[{delta, cov_r_mean, cov_r_median, mat_r_mean, mat_r_median, cov_p_mean, cov_p_median,
        mat_p_mean, mat_p_median}]``.
    """
    deltas = [float(d) for d in deltas]
    mat_r = _stats([m.get("mat_r") for m in per_molecule])
    mat_p = _stats([m.get("mat_p") for m in per_molecule])
    rows = []
    for i, d in enumerate(deltas):
        cov_r = _stats([m["cov_r"][i] if m.get("cov_r") is not None else None for m in per_molecule])
        cov_p = _stats([m["cov_p"][i] if m.get("cov_p") is not None else None for m in per_molecule])
        rows.append(
            {
                "delta": d,
                "cov_r_mean": cov_r[0],
                "cov_r_median": cov_r[1],
                "mat_r_mean": mat_r[0],
                "mat_r_median": mat_r[1],
                "cov_p_mean": cov_p[0],
                "cov_p_median": cov_p[1],
                "mat_p_mean": mat_p[0],
                "mat_p_median": mat_p[1],
            }
        )
    return rows


# ---------------------------------------------------------------------------------- ensembles & matching
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


def index_listed_files(path, side: str) -> list | None:
    """SDF files listed by an ``index.csv`` directory (the layout of ../shared/data/geom_drugs_tora3d7).

    A directory holding ``index.csv`` with columns ``dir`` and ``true_file`` (references) / ``pred_file``
    (generated, when ``side == "generated"``) names one SDF per molecule under ``molecules/<dir>/``.

    Returns:
        The listed paths, or ``None`` when ``path`` is not such a directory.
    """
    import csv
    from pathlib import Path

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
    from confgen.data.readers import iter_molecules

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


# --------------------------------------------------------------------------------------- reporting
def coverage_curve(per_molecule: Sequence[dict], grid: Sequence[float]) -> dict:
    """Mean COV-R and COV-P over molecules on a grid of thresholds (from the per-molecule minima).

    Returns:
        ``{"delta": [G], "cov_r": [G], "cov_p": [G]}`` (fractions; molecules without generated conformers
        count as COV-R 0 and are left out of COV-P).
    """
    grid = np.asarray(list(grid), dtype=np.float64)
    cov_r = np.zeros(len(grid))
    cov_p = np.zeros(len(grid))
    n_r = n_p = 0
    for row in per_molecule:
        ref_min = np.asarray([np.inf if v is None else v for v in row["ref_min"]], dtype=np.float64)
        if len(ref_min):
            cov_r += (ref_min[None, :] < grid[:, None]).mean(axis=1)
            n_r += 1
        gen_min = np.asarray(row["gen_min"], dtype=np.float64)
        if len(gen_min):
            cov_p += (gen_min[None, :] < grid[:, None]).mean(axis=1)
            n_p += 1
    return {
        "delta": grid.tolist(),
        "cov_r": (cov_r / max(n_r, 1)).tolist(),
        "cov_p": (cov_p / max(n_p, 1)).tolist(),
    }


def plot_coverage(curves: dict[str, dict], path, *, title: str = "", marks: Sequence[float] = ()) -> None:
    """PNG of COV-R and COV-P (percent) against delta, one line per method; written atomically.

    Args:
        curves: label -> :func:`coverage_curve` output.
        path: output PNG path.
        title: figure title.
        marks: thresholds to mark with vertical lines (e.g. the evaluation deltas).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, label in zip(axes, ("cov_r", "cov_p"), ("COV-R (recall)", "COV-P (precision)")):
        for name, curve in curves.items():
            ax.plot(curve["delta"], [100.0 * v for v in curve[key]], label=name)
        for d in marks:
            ax.axvline(d, color="0.7", lw=0.8, ls="--")
        ax.set_xlabel("delta (Angstrom)")
        ax.set_title(label)
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("coverage (%)")
    axes[1].legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120), binary=True)


def _fmt(v, pct: bool) -> str:
    if v is None:
        return "-"
    return f"{100.0 * v:.1f}" if pct else f"{v:.3f}"


def format_table(result: dict, title: str = "") -> str:
    """A plain-text table of the aggregated metrics (COV in %, MAT in Angstrom, mean / median)."""
    lines = []
    if title:
        lines.append(title)
    lines.append(
        f"{result['n_molecules']} reference molecules ({result.get('n_ref_conformers', '?')} conformers), "
        f"{result.get('n_gen_conformers', '?')} generated conformers; {result.get('n_missing', 0)} without "
        f"generated conformers (COV 0), {result['n_failed']} failed"
    )
    header = f"{'delta':>6}  {'COV-R %':>13}  {'MAT-R A':>13}  {'COV-P %':>13}  {'MAT-P A':>13}"
    lines.append(header)
    lines.append("-" * len(header))
    for r in result["results"]:
        cells = []
        for key, pct in (("cov_r", True), ("mat_r", False), ("cov_p", True), ("mat_p", False)):
            cells.append(f"{_fmt(r[key + '_mean'], pct)} / {_fmt(r[key + '_median'], pct)}".rjust(13))
        lines.append(f"{r['delta']:>6.2f}  " + "  ".join(cells))
    lines.append("(mean / median over molecules)")
    return "\n".join(lines)
