"""Side-by-side benchmark: confgen and RDKit baselines on the same reference molecules, in one run.

For every reference molecule each method generates ``2 x n_references`` conformers (or ``--num-confs``) from
the molecule's graph with the stereochemistry of its reference geometry; the ensembles are evaluated with
:mod:`confgen.evaluation` (COV/MAT) and checked for physical validity (PoseBusters "mol" checks) and for stereo
errors (RDKit's perception from 3D against the input's specified stereo, independent of confgen's own
stereo code). Generation runs in a fresh process per method (spawn), one thread, so that its wall time and
peak memory (max RSS of that process) are comparable between methods.

Methods:
    * ``etkdg``: RDKit ETKDGv3 (``EmbedMultipleConfs``, seed != 0: RDKit 2026.09 returns identical
      conformers with ``randomSeed=0``);
    * ``etkdg-mmff``: the same conformers minimised with MMFF94 (``MMFFOptimizeMoleculeConfs``);
    * ``confgen``: :func:`confgen.generation.generate_conformers` with ``--model`` / ``--preset`` and
      ``relax="none"``: the score model's conformers as sampled (``confgen sample --relax none``);
    * ``confgen-mmff``: the same with ``relax="mmff"`` (MMFF94 minimisation of confgen's conformers): what
      ``confgen sample`` writes by default;
    * ``confgen@PRESET`` / ``confgen-mmff@PRESET``: confgen with a named sampler preset (e.g. ``confgen@confgf``),
      so that presets are compared side by side in one run;
    * ``etkdg-select`` / ``etkdg-select-mmff``: the ablation of ``confgen`` / ``confgen-mmff``: the same
      pipeline (:func:`confgen.generation.generate_conformers` with the same preset: its ETKDG oversampling,
      diverse selection, stereo and geometry checks, relaxation) with the score network switched off
      (``network=False``), so that a table shows what the network adds to each (``@PRESET`` works too).

A QM9 DFT-geometry CSV (``geom_qm9_test_matched_qm9_dft_geometry.csv``) is detected: each molecule has one
reference (its DFT minimum) and the benchmark reports the fraction of molecules whose generated ensemble
contains it (RMSD < 0.5 A) and the mean smallest RMSD.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from rdkit import Chem

from confgen.chem import embed as etkdg
from confgen.chem.conformers import with_positions
from confgen.chem.forcefield import minimise
from confgen.chem.rmsd import DEFAULT_MAX_MATCHES
from confgen.errors import ConfgenError
from confgen.evaluation import (
    DEFAULT_DELTAS,
    evaluate_ensembles,
    index_listed_files,
    load_ensembles,
)

METHODS = ("confgen", "confgen-mmff", "etkdg", "etkdg-mmff", "etkdg-select", "etkdg-select-mmff")
#: methods that run confgen's pipeline (and take a sampler preset); the ``etkdg-select`` ones without the network
PIPELINE_METHODS = ("confgen", "confgen-mmff", "etkdg-select", "etkdg-select-mmff")
DEFAULT_METHODS = ("confgen", "confgen-mmff", "etkdg", "etkdg-mmff")
QM9_DELTA = 0.5
MMFF_MAX_ITERS = 2000

__all__ = [
    "METHODS",
    "PIPELINE_METHODS",
    "BenchmarkOptions",
    "run_benchmark",
    "generate_rdkit",
    "stereo_errors",
    "posebusters_pass",
    "format_benchmark",
    "benchmark_markdown",
    "run_method",
]


# ------------------------------------------------------------------------------------------- generation
def generate_rdkit(mol: Chem.Mol, num_confs: int, *, seed: int, mmff: bool) -> Chem.Mol:
    """ETKDGv3 conformers (optionally MMFF94-minimised) of ``mol``, one thread.

    Args:
        mol: Mol with explicit hydrogens; its chiral tags and double-bond stereo are honoured.
        num_confs: conformers wanted.
        seed: RDKit random seed (non-zero).
        mmff: minimise each conformer with MMFF94 (up to ``MMFF_MAX_ITERS`` iterations).

    Returns:
        A copy of ``mol`` carrying the embedded conformers (possibly fewer than asked when embedding fails).
    """
    def seed_of(block: int, random_coords: bool) -> int:  # hard cases: the missing ones from random coordinates
        return int(seed) + 7919 if random_coords else int(seed)

    out = with_positions(mol, etkdg.embed(mol, int(num_confs), seed_of))
    if mmff and out.GetNumConformers():
        # MMFF setup re-perceives aromaticity on the Mol it is given: minimise a copy, keep the input's graph
        work = Chem.Mol(out)
        if minimise(work, max_iters=MMFF_MAX_ITERS, uff_fallback=False) is not None:
            for src, dst in zip(work.GetConformers(), out.GetConformers()):
                dst.SetPositions(src.GetPositions())
    return out


def _generate_worker(job: dict) -> dict:
    """Run in a fresh process: generate for all molecules with one method; time it; report peak RSS."""
    import resource

    method, mols, nums, seed = job["method"], job["mols"], job["num_confs"], job["seed"]
    errors: list[str] = []
    out: list[Chem.Mol | None] = []
    counters = None
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        if method in ("etkdg", "etkdg-mmff"):
            for mol, n in zip(mols, nums):
                try:
                    out.append(generate_rdkit(mol, n, seed=seed, mmff=method == "etkdg-mmff"))
                except Exception as exc:  # noqa: BLE001 - one molecule failing must not stop the run
                    errors.append(f"{mol.GetProp('_Name') if mol.HasProp('_Name') else ''}: {exc}")
                    out.append(None)
        elif method in PIPELINE_METHODS:
            import torch

            from confgen.checkpoint import model_for_preset
            from confgen.config import resolve_preset
            from confgen.generation import GenerationRequest, GenerationStats, generate_conformers
            from confgen.generation.request import resolve_model

            torch.set_num_threads(1)
            network = method.startswith("confgen")
            # None: each preset's shipped model; the network-off ablation loads none. Loaded before the clock
            # starts (resolve_model keeps them for the request)
            model = job.get("model")
            if network:
                for choice in resolve_preset(job.get("preset")).choices():
                    resolve_model(model_for_preset(model, choice), torch.device("cpu"))
            errs: list = []
            t0 = time.perf_counter()  # generation only, not model loading
            c0 = time.process_time()
            request = GenerationRequest(mols, list(nums), model=model, preset=job.get("preset"), seed=seed,
                                        relax="mmff" if method.endswith("-mmff") else "none", progress=False,
                                        network=network)
            stats = GenerationStats()
            out = list(generate_conformers(request, errors=errs, stats=stats))
            errors.extend(str(e) for e in errs)
            counters = stats.counters()
        else:
            raise ConfgenError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    except ConfgenError as exc:
        return {"ok": False, "error": str(exc), "peak_rss_mb": _peak_rss_mb(resource)}
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    # RDKit pickles conformers in single precision: send the coordinates as float64 arrays too
    positions = [None if m is None else [c.GetPositions() for c in m.GetConformers()] for m in out]
    return {"ok": True, "mols": out, "positions": positions, "wall_s": wall, "cpu_s": cpu, "errors": errors,
            "counters": counters, "peak_rss_mb": _peak_rss_mb(resource)}


def _parse_method(name: str, preset) -> tuple[str, object]:
    """``"confgen@confgf"`` -> ``("confgen", "confgf")``; a method without ``@`` gets ``preset``.

    Raises:
        ConfgenError: unknown method, a preset on an RDKit method, or an unknown preset.
    """
    base, sep, own = name.partition("@")
    if base not in METHODS:
        raise ConfgenError(f"unknown method {name!r} (choose from {', '.join(METHODS)}, or METHOD@PRESET)")
    pipeline = base in PIPELINE_METHODS
    if sep and not pipeline:
        raise ConfgenError(f"method {name!r}: only confgen and etkdg-select methods take a sampler preset")
    chosen = own if sep else preset
    if sep and not own:
        raise ConfgenError(f"method {name!r}: no preset after '@'")
    if chosen is not None and pipeline:
        from confgen.config import resolve_preset

        resolve_preset(chosen)  # unknown preset: a clear error before any generation starts
    return base, chosen if pipeline else None


def _peak_rss_mb(resource) -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _worker_main(worker, job: dict, conn) -> None:
    """Entry point of the generation process: send ``worker(job)``'s result (or the error) back, then exit."""
    Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
    try:
        result = worker(job)
    except BaseException as exc:  # noqa: BLE001 - reported as a failed method, not as a traceback
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "peak_rss_mb": None}
    try:
        conn.send(result)
    finally:
        conn.close()


def run_method(job: dict, worker=None) -> dict:
    """Run ``worker(job)`` (default :func:`_generate_worker`) in a fresh spawned process and return its result.

    A worker that dies (killed, out of memory, a crash in native code) gives ``{"ok": False, "error": reason}``
    instead of hanging or raising; a plain process and a one-way pipe (no pool) leave no semaphores or
    broken pipes behind.
    """
    import multiprocessing as mp
    import signal

    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker_main, args=(worker or _generate_worker, job, send), daemon=True)
    Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
    proc.start()
    send.close()  # the parent keeps only the reading end: EOF when the worker dies
    result = None
    try:
        result = recv.recv()
    except (EOFError, OSError):
        pass
    finally:
        recv.close()
        proc.join()
    if result is not None:
        return result
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            why = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            why = f"killed by signal {-code}"
        if -code == signal.SIGKILL:
            why += " (out of memory?)"
    else:
        why = f"exit status {code}"
    return {"ok": False, "error": f"the generation worker died before reporting ({why})", "peak_rss_mb": None}


# ---------------------------------------------------------------------------------------------- checks
def _specified_stereo(mol: Chem.Mol) -> tuple[dict[int, str], dict[int, str]]:
    """CIP labels of the tetrahedral centres and E/Z of the double bonds that ``mol``'s graph specifies."""
    m = Chem.Mol(mol)
    Chem.AssignStereochemistry(m, cleanIt=True, force=True)
    centres = {a.GetIdx(): a.GetProp("_CIPCode") for a in m.GetAtoms() if a.HasProp("_CIPCode")}
    bonds = {
        b.GetIdx(): {Chem.BondStereo.STEREOE: "E", Chem.BondStereo.STEREOZ: "Z"}[b.GetStereo()]
        for b in m.GetBonds()
        if b.GetStereo() in (Chem.BondStereo.STEREOE, Chem.BondStereo.STEREOZ)
    }
    return centres, bonds


def stereo_errors(input_mol: Chem.Mol, generated: Chem.Mol) -> tuple[int, int]:
    """Count generated conformers whose stereo, perceived by RDKit from 3D, differs from the input's.

    Only stereo the input specifies is compared (CIP labels of its tetrahedral centres, E/Z of its double
    bonds); ``generated`` must have the input's atom order.

    Returns:
        ``(n_errors, n_checked)``.
    """
    centres, bonds = _specified_stereo(input_mol)
    n = generated.GetNumConformers()
    if not centres and not bonds:
        return 0, n
    errors = 0
    base = Chem.Mol(generated)
    base.RemoveAllConformers()
    for conf in generated.GetConformers():
        m = Chem.Mol(base)
        m.AddConformer(Chem.Conformer(conf), assignId=True)
        Chem.AssignStereochemistryFrom3D(m)
        got_c = {a.GetIdx(): a.GetProp("_CIPCode") if a.HasProp("_CIPCode") else "?" for a in m.GetAtoms()}
        got_b = {
            b.GetIdx(): {Chem.BondStereo.STEREOE: "E", Chem.BondStereo.STEREOZ: "Z"}.get(b.GetStereo(), "?")
            for b in m.GetBonds()
        }
        if any(got_c[i] != v for i, v in centres.items()) or any(got_b[i] != v for i, v in bonds.items()):
            errors += 1
    return errors, n


def posebusters_pass(items: Sequence[tuple[Chem.Mol, list[int]]]) -> list[bool]:
    """PoseBusters molecule checks (config "mol", via :mod:`confgen.validity`) per conformer.

    Args:
        items: ``(mol, conf_ids)`` pairs.

    Returns:
        One flag per conformer, in order: True when every check passed (a check PoseBusters could not
        compute counts as failed).
    """
    import warnings

    from confgen.validity import check_validity_many

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_validity_many([(m, list(ids)) for m, ids in items])
    return [r.passed for per_mol in results for r in per_mol]


def pick_evenly(n_total: int, n_max: int | None) -> list[int]:
    """Indices of at most ``n_max`` of ``n_total`` items, evenly spread from the first to the last (all when
    ``n_max`` is ``None``)."""
    if n_max is None or n_total <= n_max:
        return list(range(n_total))
    return sorted({int(round(x)) for x in np.linspace(0, n_total - 1, n_max)})


def _posebusters_rate(generated: list[Chem.Mol | None], max_conformers: int | None, workers: int) -> dict:
    pairs = [(k, c.GetId()) for k, m in enumerate(generated) if m is not None for c in m.GetConformers()]
    picked = [pairs[i] for i in pick_evenly(len(pairs), max_conformers)]
    if not picked:
        return {"checked": 0, "passed": 0, "rate": None}
    items: list[tuple[Chem.Mol, list[int]]] = []
    for k, cid in picked:  # picked is sorted by molecule: one item per molecule
        if items and items[-1][0] is generated[k]:
            items[-1][1].append(cid)
        else:
            items.append((generated[k], [cid]))
    if workers > 1 and len(items) > 1:
        import multiprocessing as mp

        parts = [items[i::workers] for i in range(workers)]
        with mp.get_context().Pool(min(workers, len(items))) as pool:
            flags = [f for part in pool.map(posebusters_pass, parts) for f in part]
    else:
        flags = posebusters_pass(items)
    passed = int(sum(flags))
    return {"checked": len(flags), "passed": passed, "rate": passed / len(flags)}


# -------------------------------------------------------------------------------------------- benchmark
def qm9_num_confs(path: Path) -> dict[str, int]:
    """``geom_smiles -> n_conformers`` from a QM9 DFT CSV (the GEOM ensemble size used for 2 x n)."""
    out: dict[str, int] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            smi = (row.get("geom_smiles") or row.get("smiles") or "").strip()
            try:
                out[smi] = int(row.get("n_conformers") or 0)
            except ValueError:
                continue
    return out


def input_mol(record) -> Chem.Mol:
    """The generation input: the reference graph with explicit H and the stereo of its reference geometry."""
    mol = Chem.Mol(record.mol)
    mol.RemoveAllConformers()
    mol.SetProp("_Name", record.name or record.smiles)
    return mol


@dataclass
class BenchmarkOptions:
    """What :func:`run_benchmark` runs and how.

    Attributes:
        methods: any of ``METHODS`` (``METHOD@PRESET`` for the pipeline methods).
        model: confgen checkpoint (``None`` = the shipped model).
        preset: sampler preset (name or :class:`confgen.config.SamplerPreset`) of the pipeline methods without
            ``@PRESET``.
        max_molecules: keep the first N reference molecules.
        seed: random seed of every method (non-zero).
        num_confs: conformers per molecule; default 2 x the number of reference conformers (QM9 CSV:
            2 x its ``n_conformers`` column).
        deltas: COV thresholds (default 0.5, 0.75, 1.25; QM9: 0.5).
        split_csv: keep only reference molecules listed here.
        workers: processes for evaluation and PoseBusters (generation is always one process, one thread).
        max_posebusters: check at most this many conformers per method (evenly spread); None = all.
        max_matches: symmetry-mapping cap of the RMSD (see :func:`confgen.evaluation.atom_mappings`).
        progress: progress bars.
    """

    methods: Sequence[str] = DEFAULT_METHODS
    model: str | None = None
    preset: object = None
    max_molecules: int | None = None
    seed: int = 42
    num_confs: int | None = None
    deltas: Sequence[float] | None = None
    split_csv: str | Path | None = None
    workers: int = 1
    max_posebusters: int | None = 200
    max_matches: int = DEFAULT_MAX_MATCHES
    progress: bool = True


def run_benchmark(references, options: BenchmarkOptions | None = None, *,
                  log: Callable[[str], None] = print) -> dict:
    """Generate with every method for the same reference molecules, then evaluate and check them.

    Args:
        references: reference ensembles (SDF, pickle, GEOM rdkit_folder) or a QM9 DFT-geometry CSV.
        options: methods and settings (default :class:`BenchmarkOptions`).
        log: where one-line progress messages go.

    Returns:
        ``{"references", "mode" ("ensembles" | "qm9_dft"), "seed", "deltas", "n_molecules",
        "n_ref_conformers", "failed_references", "methods": {name: {...}}}``; per method: ``status``,
        ``error``, ``n_requested``, ``n_generated``, ``generation_s``, ``conformers_per_s``,
        ``generation_cpu_s``, ``conformers_per_cpu_s``, ``peak_memory_mb``, ``posebusters``, ``stereo``,
        ``evaluation`` (the evaluate_ensembles result), for the pipeline methods ``generation_counters``
        (:class:`confgen.generation.GenerationStats`) and ``network_calls_per_conformer`` (network calls of
        every sample, retries and the oversampled candidates included, per written conformer) and, for QM9, ``dft_recovered`` (molecules without any
        generated conformer count as not recovered), ``dft_recovered_with_conformers``,
        ``n_molecules_with_conformers``, ``mean_min_rmsd`` and ``median_min_rmsd`` (over molecules with
        conformers).
    """
    opt = options if options is not None else BenchmarkOptions()
    seed, max_posebusters, workers = opt.seed, opt.max_posebusters, opt.workers
    from confgen.data.readers import detect_format

    if int(seed) == 0:
        raise ConfgenError("--seed must be non-zero (RDKit 2026.09 returns identical conformers for seed 0)")
    methods = list(dict.fromkeys(opt.methods))  # each method once, in the order given
    parsed = {m: _parse_method(m, opt.preset) for m in methods}
    qm9 = index_listed_files(references, "reference") is None and detect_format(references) == "qm9_csv"
    deltas = [float(d) for d in (opt.deltas if opt.deltas is not None else ([QM9_DELTA] if qm9 else DEFAULT_DELTAS))]

    records, ref_failed, reader_stats = load_ensembles(references, split_csv=opt.split_csv, side="reference")
    if opt.max_molecules is not None:
        records = records[: int(opt.max_molecules)]
    qm9_counts = qm9_num_confs(Path(references)) if qm9 else {}
    inputs, nums, kept = [], [], []
    for rec in records:
        if rec.mol.GetNumConformers() == 0:
            ref_failed.append({"side": "reference", "name": rec.name, "source": rec.source,
                               "smiles": rec.smiles, "reason": "reference molecule has no conformers"})
            continue
        base = qm9_counts.get(rec.smiles, 0) if qm9 else rec.mol.GetNumConformers()
        n = int(opt.num_confs) if opt.num_confs is not None else 2 * max(1, base)
        inputs.append(input_mol(rec))
        nums.append(n)
        kept.append(rec)
    if not kept:
        raise ConfgenError(f"{references}: no reference molecule with conformers")
    log(
        f"benchmark: {len(kept)} molecules, {sum(r.mol.GetNumConformers() for r in kept)} reference conformers, "
        f"{sum(nums)} conformers to generate per method; methods: {', '.join(methods)}"
    )
    result: dict = {
        "references": str(references),
        "mode": "qm9_dft" if qm9 else "ensembles",
        "seed": int(seed),
        "deltas": deltas,
        "n_molecules": len(kept),
        "n_ref_conformers": int(sum(r.mol.GetNumConformers() for r in kept)),
        "n_requested_per_method": int(sum(nums)),
        "max_posebusters": max_posebusters,
        "failed_references": ref_failed,
        "reader_stats": reader_stats,
        "methods": {},
    }
    for method in methods:
        log(f"benchmark: {method}: generating ...")
        base, method_preset = parsed[method]
        job = {"method": base, "mols": inputs, "num_confs": nums, "seed": int(seed), "model": opt.model,
               "preset": method_preset}
        gen = run_method(job)
        entry: dict = {"status": "ok" if gen["ok"] else "failed", "error": gen.get("error"),
                       "n_requested": int(sum(nums)),
                       "peak_memory_mb": None if gen.get("peak_rss_mb") is None else round(gen["peak_rss_mb"], 1)}
        result["methods"][method] = entry
        if not gen["ok"]:
            log(f"benchmark: {method}: failed: {gen['error']}")
            continue
        mols = gen["mols"]
        for m, pos in zip(mols, gen["positions"]):
            if m is not None:
                for conf, xyz in zip(m.GetConformers(), pos):
                    conf.SetPositions(xyz)
        n_gen = sum(m.GetNumConformers() for m in mols if m is not None)
        entry.update(
            n_generated=int(n_gen),
            generation_s=round(gen["wall_s"], 3),
            generation_cpu_s=round(gen["cpu_s"], 3),
            conformers_per_s=round(n_gen / gen["wall_s"], 2) if gen["wall_s"] > 0 else None,
            conformers_per_cpu_s=round(n_gen / gen["cpu_s"], 2) if gen["cpu_s"] > 0 else None,
            generation_errors=gen["errors"],
        )
        if gen.get("counters"):  # pipeline methods: what the generation did (GenerationStats)
            c = gen["counters"]
            entry.update(generation_counters=c, network_calls_per_conformer=round(
                c["network_evals"] / c["written"], 1) if c["written"] else None)
        log(f"benchmark: {method}: {n_gen} conformers in {gen['wall_s']:.1f} s; evaluating ...")
        for m, rec in zip(mols, kept):
            if m is not None:
                m.SetProp("_Name", rec.name)
        evaluation = evaluate_ensembles(
            [m for m in mols if m is not None and m.GetNumConformers()],
            kept,
            deltas,
            workers=workers,
            max_matches=opt.max_matches,
            failed=ref_failed,
            progress=opt.progress,
        )
        entry["evaluation"] = evaluation
        if qm9:
            row = evaluation["results"][0]
            with_confs = [p for p in evaluation["per_molecule"] if p["n_gen"]]
            entry["dft_recovered"] = row["cov_r_mean"]  # molecules without a conformer count as not recovered
            entry["n_molecules_with_conformers"] = len(with_confs)
            entry["dft_recovered_with_conformers"] = (
                float(np.mean([p["cov_r"][0] for p in with_confs])) if with_confs else None
            )
            entry["mean_min_rmsd"] = row["mat_r_mean"]  # over molecules with conformers
            entry["median_min_rmsd"] = row["mat_r_median"]
        n_err = n_chk = 0
        for inp, m in zip(inputs, mols):
            if m is not None and m.GetNumConformers():
                e, c = stereo_errors(inp, m)
                n_err += e
                n_chk += c
        entry["stereo"] = {"checked": n_chk, "errors": n_err}
        log(f"benchmark: {method}: PoseBusters ...")
        entry["posebusters"] = _posebusters_rate(mols, max_posebusters, workers)
    return result


# ----------------------------------------------------------------------------------------------- tables
def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100.0 * v:.1f}"


def _num(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _rows(result: dict) -> tuple[list[str], list[list[str]]]:
    if result["mode"] == "qm9_dft":
        header = ["method", "DFT min recovered % (<0.5 A): all / with conformers", "mean min RMSD",
                  "median min RMSD", "molecules with conformers",
                  "conformers/s (wall / CPU)", "peak MB", "PoseBusters pass %", "stereo errors"]
    else:
        header = ["method", "delta", "COV-R % mean/med", "MAT-R mean/med", "COV-P % mean/med", "MAT-P mean/med",
                  "conformers/s (wall / CPU)", "peak MB", "PoseBusters pass %", "stereo errors"]
    rows = []
    for name, m in result["methods"].items():
        if m["status"] != "ok":
            rows.append([name, f"failed: {m['error']}"] + [""] * (len(header) - 2))
            continue
        pb = m["posebusters"]
        pb_s = f"{_pct(pb['rate'])} ({pb['passed']}/{pb['checked']})" if pb["checked"] else "-"
        st = m["stereo"]
        st_s = f"{st['errors']}/{st['checked']}"
        speed = f"{_num(m.get('conformers_per_s'), 1)} / {_num(m.get('conformers_per_cpu_s'), 1)}"
        mem = _num(m.get("peak_memory_mb"), 0)
        ev = m["evaluation"]
        if result["mode"] == "qm9_dft":
            rows.append([name, f"{_pct(m['dft_recovered'])} / {_pct(m['dft_recovered_with_conformers'])}",
                         _num(m["mean_min_rmsd"]), _num(m["median_min_rmsd"]),
                         f"{m['n_molecules_with_conformers']} of {ev['n_molecules']}", speed, mem, pb_s, st_s])
            continue
        for i, r in enumerate(ev["results"]):
            first = i == 0
            rows.append([
                name if first else "",
                f"{r['delta']:.2f}",
                f"{_pct(r['cov_r_mean'])} / {_pct(r['cov_r_median'])}",
                f"{_num(r['mat_r_mean'])} / {_num(r['mat_r_median'])}",
                f"{_pct(r['cov_p_mean'])} / {_pct(r['cov_p_median'])}",
                f"{_num(r['mat_p_mean'])} / {_num(r['mat_p_median'])}",
                speed if first else "",
                mem if first else "",
                pb_s if first else "",
                st_s if first else "",
            ])
    return header, rows


def format_benchmark(result: dict) -> str:
    """Plain-text table of a :func:`run_benchmark` result."""
    header, rows = _rows(result)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    out = [
        f"benchmark on {result['references']}: {result['n_molecules']} molecules, {result['n_ref_conformers']} "
        f"reference conformers, {result['n_requested_per_method']} requested per method, seed {result['seed']}",
        line(header),
        line(["-" * w for w in widths]),
    ]
    out += [line(r) for r in rows]
    n_bad = len(result["failed_references"])
    if n_bad:
        out.append(f"{n_bad} reference inputs failed (see the JSON 'failed_references')")
    return "\n".join(out)


def benchmark_markdown(result: dict) -> str:
    """Markdown table of a :func:`run_benchmark` result (the format of docs/benchmarks.md)."""
    header, rows = _rows(result)
    out = [
        f"References: `{result['references']}` ({result['n_molecules']} molecules, {result['n_ref_conformers']} "
        f"reference conformers; {result['n_requested_per_method']} conformers requested per method; seed "
        f"{result['seed']}; COV in %, MAT in Angstrom, mean / median over molecules; PoseBusters on "
        + ("all" if result["max_posebusters"] is None else f"at most {result['max_posebusters']}")
        + " conformers per method).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"
