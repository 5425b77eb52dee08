"""COV/MAT metrics of one molecule and their mean / median over molecules.

With L references and K generated conformers and the L x K RMSD matrix D (:mod:`confgen.chem.rmsd`):

* COV-R(delta) = fraction of references i with min_j D[i, j] < delta; MAT-R = mean_i min_j D[i, j];
* COV-P(delta) = fraction of generated j with min_i D[i, j] < delta; MAT-P = mean_j min_i D[i, j].
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np


DEFAULT_DELTAS: tuple[float, ...] = (0.5, 0.75, 1.25)


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


def headline(results: Sequence[dict], deltas: Iterable[float] = (0.75, 1.25)) -> dict:
    """The numbers presets and trials are compared by, flat, from :func:`aggregate`'s rows (an evaluation's
    ``results``): ``{"cov_r@D": %, "cov_p@D": % for each D of deltas, "mat_r": A, "mat_p": A}`` (means over
    molecules, COV in percent rounded to 0.1, MAT rounded to 0.001; a metric without a value is ``None``).

    Raises:
        KeyError: a delta of ``deltas`` that ``results`` has no row for.
    """
    rows = {float(r["delta"]): r for r in results}
    out: dict = {}
    for d in deltas:
        row = rows[float(d)]
        for key in ("cov_r", "cov_p"):
            v = row[f"{key}_mean"]
            out[f"{key}@{float(d)}"] = None if v is None else round(100.0 * v, 1)
    if rows:
        first = next(iter(rows.values()))
        for key in ("mat_r", "mat_p"):
            v = first[f"{key}_mean"]
            out[key] = None if v is None else round(v, 3)
    return out


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
