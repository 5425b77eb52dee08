#!/usr/bin/env python
"""Sampling benchmark: speed of each preset beside RDKit ETKDG (+ MMFF94), validity, stereo and memory.

Sections (each optional):

* ``speed``: conformers/s (wall and CPU time) for GEOM-Drugs-size molecules (the GEOM-Drugs SMILES of
  ../shared/data, 17 molecules of 15-33 heavy atoms), for RDKit ETKDGv3, ETKDGv3 + MMFF94 and confgen with each
  preset, in the same run and the same number of threads. Slow presets (``confgf``: 5,000 network calls per
  conformer) run on a subset (``--slow-confs``).
* ``validity``: PoseBusters "mol" checks (:mod:`confgen.validity`) of the conformers of the speed section.
* ``stereo``: the stereo-rich examples/molecules.smi (not in ../shared): stereo errors judged by RDKit's
  perception from 3D, independently of confgen's own check, plus confgen's repair counters.
* ``quality``: COV/MAT (0.75 and 1.25 A) against the GEOM ensembles of geom_drugs_tora3d7, 2 x references
  generated per molecule (to compare presets and preset overrides).
* ``memory``: 1,000 conformers of a 50-heavy-atom molecule (ritonavir) in a fresh process; its peak RSS.

Examples::

    python scripts/bench_sample.py --model runs/drugs/best.pt --sections speed validity --json out.json
    python scripts/bench_sample.py --model M --presets fast --preset-override num_levels=8 \
        --preset-override steps_per_level=2 --sections speed validity
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
#: 50 heavy atoms (C37H48N6O5S2), four stereocentres
RITONAVIR = ("CC(C)c1nc(CN(C)C(=O)N[C@@H](C(C)C)C(=O)N[C@@H](Cc2ccccc2)C[C@H](O)[C@H](Cc2ccccc2)NC(=O)OCc2cncs2)"
             "cs1")


def drugs_smiles() -> list[str]:
    """GEOM-Drugs SMILES of the shared data: geom_drugs_tora3d7 (7) and geom_drugs_train10 (10)."""
    out = []
    with open(SHARED / "geom_drugs_tora3d7" / "index.csv") as fh:
        out += [row["smiles"] for row in csv.DictReader(fh)]
    from rdkit import Chem

    seen = set()
    for m in Chem.SDMolSupplier(str(SHARED / "geom_drugs_train10" / "true_conformers_train_first_10smis.sdf")):
        key = m.GetProp("geom_smiles").replace("_", "/") if m is not None and m.HasProp("geom_smiles") else None
        if key and key not in seen:  # the keys are GEOM pickle names: '/' written as '_'
            seen.add(key)
            out.append(key)
    return out


def _mols(smiles: list[str]):
    from confgen.io import mol_from_smiles

    return [mol_from_smiles(s, source=f"bench:{i}") for i, s in enumerate(smiles)]


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_rdkit(mols, n: int, mmff: bool, threads: int, seed: int):
    from rdkit import Chem
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

    out = []
    for i, mol in enumerate(mols):
        m = Chem.Mol(mol)
        p = rdDistGeom.ETKDGv3()
        p.randomSeed = seed + 1 + i
        p.numThreads = threads
        rdDistGeom.EmbedMultipleConfs(m, n, p)
        if mmff and m.GetNumConformers():
            rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(m, numThreads=threads, maxIters=2000)
        out.append(m)
    return out


#: post-processing of every confgen run (set from --relax; the default is that of confgen sample)
RELAX = "mmff"


def run_confgen(mols, nums, model, preset, overrides, threads: int, seed: int, batch_size: int):
    from confgen.config import resolve_preset
    from confgen.generation import GenerationRequest, GenerationStats, generate_conformers

    stats = GenerationStats()
    errors: list = []
    request = GenerationRequest(mols, nums, model=model, preset=resolve_preset(preset, overrides), seed=seed,
                                batch_size=batch_size, workers=threads, progress=False, relax=RELAX)
    out = generate_conformers(request, errors=errors, stats=stats)
    return out, stats, errors


def rdkit_stereo_errors(inputs, generated) -> tuple[int, int]:
    """(conformers checked, conformers whose RDKit-perceived stereo differs from the input's *specified* stereo).

    Uses :func:`confgen.benchmark.stereo_errors` (CIP labels and E/Z perceived by RDKit from 3D), which is
    independent of confgen's own stereo check.
    """
    from confgen.benchmark import stereo_errors

    checked = wrong = 0
    for inp, gen in zip(inputs, generated):
        if gen is not None and gen.GetNumConformers():
            e, n = stereo_errors(inp, gen)
            checked += n
            wrong += e
    return checked, wrong


def validity(generated) -> dict:
    from confgen.validity import check_validity_many

    items = [(m, None) for m in generated if m is not None and m.GetNumConformers()]
    t0 = time.perf_counter()
    res = [r for per_mol in check_validity_many(items) for r in per_mol]
    dt = time.perf_counter() - t0
    failed: dict[str, int] = {}
    for r in res:
        for f in r.failed:
            failed[f] = failed.get(f, 0) + 1
    n = len(res)
    return {"checked": n, "passed": sum(r.passed for r in res),
            "pass_rate": sum(r.passed for r in res) / n if n else None, "failed_checks": failed,
            "seconds": dt, "seconds_per_conformer": dt / n if n else None}


def section_speed(args, model, out: dict, do_validity: bool) -> None:
    smiles = drugs_smiles()[: args.molecules]
    mols = _mols(smiles)
    heavy = [m.GetNumHeavyAtoms() for m in mols]
    n = args.confs
    res = {"molecules": len(mols), "heavy_atoms_mean": sum(heavy) / len(heavy), "heavy_atoms_range":
           [min(heavy), max(heavy)], "threads": args.threads, "methods": {}}
    print(f"speed: {len(mols)} GEOM-Drugs molecules ({min(heavy)}-{max(heavy)} heavy atoms, mean "
          f"{res['heavy_atoms_mean']:.1f}), {n} conformers each, {args.threads} thread(s)", flush=True)
    res["cpu_s_per_network_call"] = network_call_cost(model, mols, args.batch_size)
    print(f"  network: {1000 * res['cpu_s_per_network_call']:.2f} CPU-ms per conformer per call "
          f"(batches of {args.batch_size})", flush=True)
    for name, mmff in (("ETKDGv3", False), ("ETKDGv3+MMFF94", True)):
        gen, wall, cpu = _timed(lambda: run_rdkit(mols, n, mmff, args.threads, args.seed))
        k = sum(m.GetNumConformers() for m in gen)
        entry = {"conformers": k, "wall_s": wall, "cpu_s": cpu, "conformers_per_s": k / wall,
                 "conformers_per_cpu_s": k / cpu}
        if do_validity:
            entry["validity"] = validity(gen)
        res["methods"][name] = entry
        _print_entry(name, entry)
    for preset in args.presets:
        from confgen.config import resolve_preset

        params = resolve_preset(preset, _overrides(args))
        slow = params.evals_per_sample > 500
        sub = mols[: args.slow_molecules] if slow else mols
        nums = [args.slow_confs if slow else n] * len(sub)
        (gen, stats, errors), wall, cpu = _timed(
            lambda: run_confgen(sub, nums, model, preset, _overrides(args), args.threads, args.seed, args.batch_size))
        k = sum(m.GetNumConformers() for m in gen if m is not None)
        checked, wrong = rdkit_stereo_errors(sub, gen)
        calls = params.evals_per_sample
        entry = {"params": params.to_dict(), "network_calls_per_conformer": calls,
                 "network_only_conformers_per_cpu_s": 1.0 / (calls * res["cpu_s_per_network_call"]),
                 "molecules": len(sub), "requested": sum(nums), "conformers": k, "wall_s": wall, "cpu_s": cpu,
                 "conformers_per_s": k / wall, "conformers_per_cpu_s": k / cpu,
                 "samples_per_cpu_s": stats.samples / cpu,
                 "samples": stats.samples, "blowups": stats.blowups, "bad_geometry": stats.bad_geometry,
                 "stereo_mirrored": stats.stereo_mirrored, "stereo_resampled": stats.stereo_resampled,
                 "dropped": stats.dropped, "failed_molecules": len(errors),
                 "rdkit_stereo_errors": wrong, "rdkit_stereo_checked": checked}
        if do_validity:
            entry["validity"] = validity(gen)
        res["methods"][f"confgen:{preset}"] = entry
        _print_entry(f"confgen:{preset}", entry)
    out["speed"] = res


def network_call_cost(model, mols, batch_size: int, repeats: int = 5) -> float:
    """CPU seconds per conformer per score-network call (no grad), batches of ``batch_size`` conformers."""
    import torch

    from torch_geometric.data import Batch

    from confgen.data import featurize_mol
    from confgen.data.graph import all_pairs
    from confgen.chem.embed import embed

    graphs, pos = [], []
    for i in range(batch_size):
        mol = mols[i % len(mols)]
        graphs.append(featurize_mol(mol))
        pos.append(embed(mol, 1, lambda block, random_coords, seed=i + 1: seed)[0])
    batch = Batch.from_data_list(graphs)
    x = torch.tensor(np.concatenate(pos), dtype=torch.float32)
    sig = torch.full((x.shape[0],), 0.1)
    pairs = all_pairs(batch.ptr)
    best = float("inf")
    with torch.no_grad():
        model(batch, x, sig, pairs=pairs)
        for _ in range(repeats):
            c0 = time.process_time()
            model(batch, x, sig, pairs=pairs)
            best = min(best, time.process_time() - c0)
    return best / batch_size


def _print_entry(name: str, e: dict) -> None:
    line = (f"  {name:22s} {e['conformers']:5d} conformers  {e['conformers_per_s']:7.2f} conf/s wall  "
            f"{e['conformers_per_cpu_s']:7.2f} conf/CPU-s")
    if "samples" in e:
        line += (f"  ({e['samples_per_cpu_s']:.2f} samples/CPU-s; network alone "
                 f"{e['network_only_conformers_per_cpu_s']:.2f}/CPU-s)  samples {e['samples']} (blow-ups {e['blowups']}, broken {e['bad_geometry']}, mirrored "
                 f"{e['stereo_mirrored']}, resampled {e['stereo_resampled']}, dropped {e['dropped']}), RDKit "
                 f"stereo errors {e['rdkit_stereo_errors']}/{e['rdkit_stereo_checked']}")
    if "validity" in e:
        v = e["validity"]
        line += f"  PoseBusters {v['passed']}/{v['checked']} ({100 * (v['pass_rate'] or 0):.1f}%) {v['failed_checks']}"
    print(line, flush=True)


def section_stereo(args, model, out: dict) -> None:
    from confgen.io import read_inputs

    recs = read_inputs(REPO / "examples" / "molecules.smi")
    mols = [r.mol for r in recs]
    res = {}
    for preset in args.presets[:1]:
        (gen, stats, errors), wall, _ = _timed(
            lambda: run_confgen(mols, [args.confs] * len(mols), model, preset, _overrides(args), args.threads,
                                args.seed, args.batch_size))
        checked, wrong = rdkit_stereo_errors(mols, gen)
        res[preset] = {"molecules": len(mols), "conformers": checked, "rdkit_stereo_errors": wrong,
                       "stereo_mirrored": stats.stereo_mirrored, "stereo_resampled": stats.stereo_resampled,
                       "dropped": stats.dropped, "failed_molecules": len(errors), "wall_s": wall}
        print(f"stereo ({preset}, examples/molecules.smi): {res[preset]}", flush=True)
    out["stereo"] = res


def quality_references(path, max_molecules: int | None):
    """Reference ensembles (any source ``confgen.evaluation.load_ensembles`` reads), the first ``max_molecules``."""
    from confgen.evaluation import load_ensembles

    records, _, _ = load_ensembles(path)
    records = [r for r in records if r.mol.GetNumConformers()]
    return records[:max_molecules] if max_molecules else records


def section_quality(args, model, out: dict) -> None:
    """COV/MAT against reference ensembles (default: the GEOM ensembles of geom_drugs_tora3d7, 2 x references
    per molecule), per preset: the measure for tuning preset parameters."""
    from rdkit import Chem

    from confgen.evaluation import evaluate_ensembles

    refs = quality_references(args.references, args.quality_molecules)
    inputs = []
    for rec in refs:
        m = Chem.Mol(rec.mol)
        Chem.AssignStereochemistryFrom3D(m)  # the reference geometry's stereo
        m.RemoveAllConformers()
        inputs.append(m)
    nums = [args.quality_confs or 2 * rec.mol.GetNumConformers() for rec in refs]
    print(f"quality: {len(refs)} molecules of {args.references}, {sum(nums)} conformers per method", flush=True)
    res = {}
    methods = [("ETKDGv3", None), ("ETKDGv3+MMFF94", None)] if args.quality_baselines else []
    methods += [(f"confgen:{p}", p) for p in args.presets]
    for name, preset in methods:
        if preset is None:
            gen = []
            for m, n in zip(inputs, nums):
                gen += run_rdkit([m], n, name.endswith("MMFF94"), args.threads, args.seed)
            extra = {}
        else:
            from confgen.config import resolve_preset

            if resolve_preset(preset, _overrides(args)).evals_per_sample > 500:
                continue  # too slow for 258 conformers here
            (gen, stats, _), wall, cpu = _timed(lambda: run_confgen(inputs, nums, model, preset, _overrides(args),
                                                                    args.threads, args.seed, args.batch_size))
            extra = {"conformers_per_cpu_s": sum(g.GetNumConformers() for g in gen if g) / cpu,
                     "dropped": stats.dropped}
        ev = evaluate_ensembles([g for g in gen if g is not None], refs, deltas=args.deltas)
        summary = {f"{k}@{r['delta']}": r[k] for r in ev["results"] for k in ("cov_r_mean", "mat_r_mean",
                                                                                 "cov_p_mean", "mat_p_mean")
                   if r.get(k) is not None}
        res[name] = {**summary, **extra, "n_molecules": ev["n_molecules"], "n_failed": ev["n_failed"]}
        if "validity" in args.sections:
            v = validity(gen)
            res[name]["posebusters_pass_rate"] = v["pass_rate"]
            res[name]["posebusters_failed_checks"] = v["failed_checks"]
        print(f"quality {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in res[name].items()
                                               if isinstance(v, float)), flush=True)
    out["quality"] = res


def section_memory(args, out: dict) -> None:
    """Run the 1,000-conformer job in a fresh process and read its peak RSS."""
    code = (
        "import json, resource, sys, time, torch\n"
        f"torch.set_num_threads({args.threads})\n"
        f"sys.path.insert(0, {str(REPO / 'scripts')!r})\n"
        "from bench_sample import load_bench_model\n"
        "from confgen.config import resolve_preset\n"
        "from confgen.generation import GenerationRequest, GenerationStats, generate_conformers\n"
        "from confgen.io import mol_from_smiles\n"
        f"model = load_bench_model({args.model!r}, {args.untrained_config!r})\n"
        f"mol = mol_from_smiles({RITONAVIR!r}, source='ritonavir')\n"
        "st = GenerationStats(); t = time.perf_counter()\n"
        f"request = GenerationRequest([mol], [{args.memory_confs}], model=model, "
        f"preset=resolve_preset({args.presets[0]!r}, {_overrides(args)!r}), seed=0, batch_size={args.batch_size}, "
        f"workers={args.threads}, relax={args.relax!r}, progress=False)\n"
        "out = generate_conformers(request, stats=st, errors=[])\n"
        "print(json.dumps({'heavy_atoms': mol.GetNumHeavyAtoms(), 'atoms': mol.GetNumAtoms(), "
        "'samples': st.samples, 'conformers': out[0].GetNumConformers() if out[0] is not None else 0, "
        "'wall_s': time.perf_counter() - t, 'cpu_s': time.process_time(), "
        "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(batch_size=args.batch_size, preset=args.presets[0])
    print(f"memory: {res}", flush=True)
    out["memory"] = res


def load_bench_model(path: str | None, untrained_config: str | None):
    """The checkpoint at ``path`` (None: the shipped default), or a model with random weights (seed 0) built
    from ``untrained_config``: it costs the same per call as a trained one, for speed and memory only."""
    if untrained_config:
        import torch

        from confgen.config import load_config
        from confgen.models.score_net import build_model

        torch.manual_seed(0)
        return build_model(load_config(untrained_config)).eval()
    from confgen.checkpoint import load_model

    return load_model(path)


def _overrides(args) -> dict:
    from confgen.config import parse_preset_overrides

    return parse_preset_overrides(args.preset_override)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped default model)")
    ap.add_argument("--untrained-config", default=None,
                    help="instead of a checkpoint: random weights of this config's model (speed/memory only; "
                         "use with --preset-override max_retries=0, as its samples fail the checks)")
    ap.add_argument("--presets", nargs="+", default=["fast", "confgf"])
    ap.add_argument("--preset-override", action="append", default=[], metavar="KEY=VALUE",
                    help="applied to every preset (repeatable)")
    ap.add_argument("--sections", nargs="+", default=["speed", "validity", "stereo", "quality", "memory"],
                    choices=["speed", "validity", "stereo", "quality", "memory"])
    ap.add_argument("--quality-baselines", action="store_true", help="also ETKDG(+MMFF) in the quality section")
    ap.add_argument("--references", default=str(SHARED / "geom_drugs_tora3d7"),
                    help="quality section: reference ensembles (SDF, pickle, index.csv directory, QM9 DFT CSV)")
    ap.add_argument("--quality-molecules", type=int, default=None, help="quality section: first N molecules")
    ap.add_argument("--quality-confs", type=int, default=None,
                    help="quality section: conformers per molecule (default 2 x references)")
    ap.add_argument("--deltas", type=float, nargs="+", default=[0.75, 1.25], help="COV thresholds (A)")
    ap.add_argument("--molecules", type=int, default=17, help="GEOM-Drugs molecules in the speed section")
    ap.add_argument("--confs", type=int, default=10, help="conformers per molecule")
    ap.add_argument("--slow-molecules", type=int, default=2, help="molecules for presets over 500 calls/conformer")
    ap.add_argument("--slow-confs", type=int, default=2, help="conformers per molecule for those presets")
    ap.add_argument("--memory-confs", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="torch and RDKit threads for every method")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--relax", default="mmff", choices=["mmff", "none"],
                    help="post-processing of the confgen runs (default mmff, as confgen sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    global RELAX
    RELAX = args.relax

    import torch

    torch.set_num_threads(args.threads)
    model = load_bench_model(args.model, args.untrained_config)
    out: dict = {"command": " ".join(sys.argv), "model": args.untrained_config and f"untrained {args.untrained_config}"
                 or args.model or "default", "cpu_count": os.cpu_count(),
                 "load_average_at_start": os.getloadavg()}
    if "speed" in args.sections:
        section_speed(args, model, out, do_validity="validity" in args.sections)
    if "stereo" in args.sections:
        section_stereo(args, model, out)
    if "quality" in args.sections:
        section_quality(args, model, out)
    if "memory" in args.sections:
        section_memory(args, out)
    out["load_average_at_end"] = os.getloadavg()
    out["peak_rss_mb_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
