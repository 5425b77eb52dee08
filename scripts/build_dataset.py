#!/usr/bin/env python
"""Build conformer ensembles for a SMILES list, into content-addressed shards (resumable).

Two protocols (``--protocol``):

* ``xtb`` (default; output data/geom_drugs_xtb): GEOM-like GFN2-xTB ensembles, described below.
* ``mmff`` (output data/geom_drugs_mmff): ETKDGv3 pool of ``oversample x n_confs`` conformers -> MMFF94
  minimisation -> pruning at 0.25 A -> the ``n_confs`` most diverse minima (``confgen prepare --from-smiles
  --ensemble etkdg-mmff --ensemble-confs 8 --ensemble-oversample 2``, the drug data the shipped models trained
  on), about 0.5 CPU-s per molecule. Energies are MMFF94 kcal/mol relative to the molecule's lowest kept
  conformer; ``confgen prepare`` applies no energy window to them (ranking by MMFF94 energy lowers coverage of
  GEOM's ensembles, docs/benchmarks.md "Data (issue 2)") and gives Boltzmann weights at 298.15 K.

GFN2-xTB protocol per molecule (the one chosen by scripts/study_xtb_protocol.py, docs/benchmarks.md "GEOM-level data"):
ETKDGv3 pool of ``oversample x n_confs`` conformers -> MMFF94 minimisation -> pruning at 0.25 A heavy-atom
RMSD -> the ``n_confs`` most diverse MMFF94 minima -> GFN2-xTB minimisation (confgen.chem.xtb, level
``--level``) -> conformers whose SCF fails or whose bond graph changes are dropped and counted -> pruning at
0.25 A. Every kept conformer is stored with its GFN2-xTB energy (Hartree) and its MMFF94 energy (kcal/mol), so
an energy window or Boltzmann weighting can be applied when the data is read (``confgen prepare`` reads the
shard directory as a source; conformers get Boltzmann weights at 298.15 K from the GFN2-xTB energies).

The source is processed in its line order; molecules already in a shard of ``--out`` (built or failed) are
skipped, so the build resumes where it stopped. Finished molecules are written every ``--shard-size``
molecules as a new shard (data/README.md describes the format); on Ctrl-C or SIGTERM the finished molecules of
the current piece are written before exiting, and nothing half-written is ever left. Evaluation molecules
(every set of ../shared/data, by stereo-free canonical SMILES) are never built: they are recorded as failures
with the reason "evaluation molecule".

Usage:
    python scripts/build_dataset.py [--protocol xtb|mmff]
        [--source ../shared/data/splits/geom_drugs/train_pool_smiles.smi] [--out data/geom_drugs_PROTOCOL]
        [--limit N] [--workers 1] [--shard-size 25]
    python scripts/build_dataset.py --status [--protocol xtb|mmff] [--out DIR] [--since GIT_REV] [--workers N]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

#: every evaluation set of ../shared/data (relative to it); shards before the eleventh build session list the first
#: five (the train pool holds no molecule of the others); tests/test_committed_data.py checks the committed shards
#: against all of them
EVALUATION_SETS = (
    "splits/geom_drugs/test_smiles.csv",
    "splits/geom_drugs/test_smiles_corrected.csv",
    "splits/geom_qm9/test_smiles.csv",
    "splits/geom_qm9/test_smiles_corrected.csv",
    "geom_drugs_tora3d7/index.csv",
    "geom_drugs_train10/true_conformers_train_first_10smis.sdf",
    "qm9/geom_qm9_test_matched_qm9_dft_geometry.csv",
    "geom_samples/rdkit_folder_conf0.mol",
)

#: per protocol: the ensemble method, what is recorded in every shard (its ``confgen.data.ensembles.EnsembleOptions``
#: settings besides the name; a build refuses shards of another protocol), how it is computed ("implementation":
#: EnsembleOptions settings that change the cost, not the result sought, recorded in each shard's meta but not
#: compared: shards written before the ninth build session have none, and minimised in Cartesian coordinates), the
#: default output directory, shard-name prefix and coordinate storage (int16 milli-Angstrom, at most 0.0005 A off;
#: GFN2-xTB shards written before the eleventh build session hold float32), and how ``confgen prepare`` reads the
#: stored energies
PROTOCOLS = {
    "xtb": {"method": "xtb", "protocol": {"name": "etkdg-mmff-diverse-xtb", "n_confs": 12, "oversample": 3, "rmsd_threshold": 0.25,
                         "xtb_level": "vtight", "xtb_max_steps": 400},
            "implementation": {"xtb_coords": "internal"},
            "out": "geom_drugs_xtb", "prefix": "xtb", "quantize": True,
            "meta": {"energy": "GFN2-xTB total energy (Hartree), tblite", "energy_unit": "hartree",
                     "read_energy_window_kcal": 6.0, "aux_energy": "MMFF94 (kcal/mol), RDKit"}},
    "mmff": {"method": "etkdg-mmff", "protocol": {"name": "etkdg-mmff-diverse", "n_confs": 8, "oversample": 2, "rmsd_threshold": 0.25},
             "out": "geom_drugs_mmff", "prefix": "mmff", "quantize": True,
             "meta": {"energy": "MMFF94 energy relative to the lowest kept conformer (kcal/mol), RDKit",
                      "energy_unit": "kcal/mol", "read_energy_window_kcal": None,
                      "aux_energy": "the same MMFF94 energy (kcal/mol)"}},
}


class Stop(BaseException):  # not an Exception: a per-molecule "except Exception" must not swallow it
    pass


def _on_term(signum, frame):  # noqa: ARG001
    raise Stop()


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _work(task):
    """Build one molecule (in a worker).

    Returns:
        ``(index, smiles, mol bytes | None, energies, aux, error, cpu_s, notes)``.
    """
    index, smiles, seed, name = task
    from rdkit import Chem

    from confgen.data.ensembles import EnsembleOptions, build_ensemble
    from confgen.errors import InputError
    from confgen.rdlog import quiet_rdkit

    t0 = time.process_time()
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return index, smiles, None, None, None, "RDKit cannot parse the SMILES", time.process_time() - t0, []
    if len(Chem.GetMolFrags(mol)) > 1:
        return index, smiles, None, None, None, "several fragments", time.process_time() - t0, []
    spec = PROTOCOLS[name]
    settings = {k: v for k, v in spec["protocol"].items() if k != "name"}
    opts = EnsembleOptions(method=spec["method"], select="diverse", seed=seed, **settings,
                           **spec.get("implementation", {}))
    try:
        with quiet_rdkit():
            ens = build_ensemble(mol, opts)
    except InputError as exc:
        return index, smiles, None, None, None, exc.message, time.process_time() - t0, []
    except Exception as exc:  # noqa: BLE001 - one bad molecule must not stop the build
        return (index, smiles, None, None, None, f"{exc.__class__.__name__}: {str(exc)[:160]}",
                time.process_time() - t0, [])
    if spec["method"] == "xtb":
        energies, aux = ens.info["xtb_energy_hartree"], ens.info["mmff_energy_kcal"]
    else:
        energies = aux = ens.energies
    return (index, smiles, ens.mol.ToBinary(), energies, aux, None, time.process_time() - t0,
            ens.info.get("xtb_failed", []))


def _minimiser(meta: dict) -> str:
    """The GFN2-xTB optimiser a shard's molecules were minimised with (shards before the internal-coordinate
    optimiser record none: they were minimised in Cartesian coordinates)."""
    coords = (meta.get("implementation") or {}).get("xtb_coords")
    protocol = meta.get("protocol")
    if coords is None and isinstance(protocol, dict) and "xtb_level" in protocol:
        coords = "cartesian"
    return f"GFN2-xTB in {coords} coordinates" if coords else "no GFN2-xTB minimisation"


def _added_since(out: Path, paths: list[Path], rev: str) -> list[Path] | None:
    """The shards of ``paths`` that git revision ``rev`` does not hold (new since it, committed or not)."""
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(out), "ls-tree", "-r", "--name-only", rev, "."],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"build_dataset: --since {rev}: git failed: {exc}", file=sys.stderr)
        return None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unknown revision"])[-1]
        print(f"build_dataset: --since {rev}: {reason}", file=sys.stderr)
        return None
    old = {Path(name).name for name in done.stdout.split()}
    return [p for p in paths if p.name not in old]


#: what became of a built molecule, for the CPU account of --status (the last counts toward the 3,000 target)
OUTCOMES = ("failed or excluded", "< 8 stored", ">= 8 stored, < 8 within the window", ">= 8 within the window")


def status(out: Path, since: str | None = None, current: str | None = None, target: int = 3000,
           workers: int = 1) -> int:
    """Print what the shards of ``out`` hold, their storage and CPU cost. Without ``since``, also how much CPU
    the molecules still missing to ``target`` (with >= 8 conformers within the window) would take at the rate
    of the ``current`` minimiser (the one the build uses now)."""
    from confgen.data.readers.shard_dir import in_window
    from confgen.data.shards import iter_shard, shard_failures, shard_meta, shard_paths

    paths = shard_paths(out)
    if not paths:
        print(f"{out}: no shards")
        return 1
    if since is not None:
        paths = _added_since(out, paths, since)
        if paths is None:
            return 2
        print(f"shards added since {since}: {len(paths)}")
    n_mols = n_confs = n_8 = n_read = n_8_read = 0
    cpu: dict[str, list[float]] = {}  # minimiser -> CPU-s per attempted molecule
    storage: dict[str, list[int]] = {}  # coordinate dtype -> [shard bytes, stored atom positions]
    fails = []
    spent: dict[str, dict[str, list[float]]] = {}  # minimiser -> outcome -> [CPU-s, molecules]
    for path in paths:
        meta = shard_meta(path)
        shard_cpu = {int(k): v for k, v in meta.get("cpu_s", {}).items()}
        minimiser = _minimiser(meta)
        cpu.setdefault(minimiser, []).extend(shard_cpu.values())
        account = spent.setdefault(minimiser, {o: [0.0, 0] for o in OUTCOMES})
        fails.extend(shard_failures(path))
        with np.load(path, allow_pickle=False) as z:
            row = storage.setdefault(str(z["pos"].dtype), [0, 0])
            row[0] += path.stat().st_size
            row[1] += len(z["pos"])
        for m in iter_shard(path):
            n_mols += 1
            n_confs += m.mol.GetNumConformers()
            n_8 += m.mol.GetNumConformers() >= 8
            keep, _ = in_window(m.energies, meta)
            n_read += len(keep)
            n_8_read += len(keep) >= 8
            outcome = OUTCOMES[3] if len(keep) >= 8 else OUTCOMES[2] if m.mol.GetNumConformers() >= 8 else OUTCOMES[1]
            row = account[outcome]
            row[0] += shard_cpu.pop(m.index, 0.0)
            row[1] += 1
        for seconds in shard_cpu.values():  # molecules with CPU spent and no conformer stored
            account[OUTCOMES[0]][0] += seconds
            account[OUTCOMES[0]][1] += 1
    reasons = Counter(r.split(" (")[0].split(":")[0] for _, _, r in fails)
    size = sum(p.stat().st_size for p in paths)
    print(f"{out}: {len(paths)} shards, {size / 1e6:.1f} MB; {n_mols} molecules, {n_confs} conformers "
          f"({n_confs / max(n_mols, 1):.1f} per molecule), {n_8} molecules with >= 8 conformers; "
          f"{len(fails)} failed or excluded")
    print(f"as confgen prepare reads them (the energy window each shard names): {n_read} conformers, "
          f"{n_8_read} molecules with >= 8 conformers")
    for reason, count in reasons.most_common():
        print(f"  {count:5d}  {reason}")
    if storage:
        print("storage: " + "; ".join(f"{dtype} coordinates {b / max(n, 1):.1f} bytes per atom position "
                                      f"({b / 1e6:.1f} MB)" for dtype, (b, n) in sorted(storage.items())))
    every = [v for values in cpu.values() for v in values]
    if every:
        print(f"CPU-s per molecule: median {np.median(every):.1f}, mean {np.mean(every):.1f} "
              f"({len(every)} attempted molecules)")
        for name, values in sorted(cpu.items()):
            if values:
                print(f"  {name}: median {np.median(values):.1f}, mean {np.mean(values):.1f} "
                      f"({len(values)} molecules)")
    _print_cpu_account(spent, n_8_read if since is None else None, current, target, workers)
    return 0


def _print_cpu_account(spent: dict, n_done: int | None, current: str | None, target: int, workers: int) -> None:
    """Where the CPU went, by outcome; the CPU-s spent per molecule that counts toward the target (all CPU over
    the molecules with >= 8 conformers within the window), per minimiser; and, given ``n_done``, what the rest
    of the target costs at the rate of the ``current`` minimiser."""
    total = {o: [sum(a[o][0] for a in spent.values()), sum(a[o][1] for a in spent.values())] for o in OUTCOMES}
    seconds = sum(s for s, _ in total.values())
    if seconds <= 0:
        return
    print(f"CPU spent: {seconds / 3600:.1f} CPU-h; by outcome: " + ", ".join(
        f"{o} {100 * s / seconds:.0f} % ({n} molecules)" for o, (s, n) in reversed(total.items())))
    rates = {}
    for name, account in sorted(spent.items()):
        cpu_all, counted = sum(s for s, _ in account.values()), account[OUTCOMES[3]][1]
        if counted:
            rates[name] = cpu_all / counted
            print(f"  {name}: {rates[name]:.1f} CPU-s per molecule with >= 8 within the window "
                  f"({counted} of {sum(n for _, n in account.values())} molecules)")
    if n_done is not None and current in rates and n_done < target:
        hours = (target - n_done) * rates[current] / 3600
        print(f"to {target} molecules with >= 8 within the window: {target - n_done} more, about {hours:.0f} CPU-h "
              f"at the rate of {current} ({hours / workers:.0f} h with {workers} workers)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), default="xtb")
    ap.add_argument("--source", default=str(SHARED / "splits" / "geom_drugs" / "train_pool_smiles.smi"))
    ap.add_argument("--out", default=None, help="shard directory (default data/geom_drugs_PROTOCOL)")
    ap.add_argument("--shared", default=str(SHARED), help="reference data whose molecules are never built")
    ap.add_argument("--limit", type=int, default=None, help="build at most this many new molecules in this run")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--shard-size", type=int, default=25, help="molecules per shard")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--status", action="store_true", help="print what the shards hold and exit")
    ap.add_argument("--since", metavar="REV", default=None,
                    help="with --status: count only the shards that git revision REV does not hold")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    spec = PROTOCOLS[args.protocol]
    protocol = spec["protocol"]
    out = Path(args.out) if args.out else ROOT / "data" / spec["out"]
    if args.status:
        return status(out, args.since, current=_minimiser(spec), workers=max(args.workers, 1))
    if args.since is not None:
        ap.error("--since needs --status")

    from tqdm.auto import tqdm

    from confgen.chem.smiles import canonical_smiles
    from confgen.data.readers import load_exclusion_set
    from confgen.data.shards import ShardBuffer, done_indices, shard_meta, shard_paths, write_shard
    from confgen.errors import InputError
    from confgen.rdlog import quiet_rdkit

    source = Path(args.source)
    if not source.is_file():
        print(f"build_dataset: error: {source}: no such file", file=sys.stderr)
        return 2
    for path in shard_paths(out):
        meta = shard_meta(path)
        if meta.get("protocol") != protocol or meta.get("source") != source.name:
            print(f"build_dataset: error: {path} was built with another protocol or source "
                  f"({meta.get('protocol')}, {meta.get('source')}); use another --out", file=sys.stderr)
            return 2
    eval_files = [Path(args.shared) / f for f in EVALUATION_SETS if (Path(args.shared) / f).exists()]
    with quiet_rdkit():
        exclusion = load_exclusion_set(eval_files)
    done = done_indices(out, source=source.name)
    lines = [ln.split()[0] for ln in source.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    todo = [i for i in range(len(lines)) if i not in done]
    if args.limit is not None:
        todo = todo[:args.limit]
    print(f"build_dataset: {len(lines)} SMILES in {source.name}, {len(done)} already done, building {len(todo)}; "
          f"{len(exclusion)} evaluation keys from {len(eval_files)} files", file=sys.stderr)

    base_meta = {"protocol": protocol, "implementation": spec.get("implementation", {}), "source": source.name,
                 "source_sha256": _file_sha(source), **spec["meta"], "excluded_sets": [str(f.relative_to(args.shared)) for f in eval_files]}
    buffer = ShardBuffer()
    cpu: dict[str, float] = {}
    xtb_dropped: Counter = Counter()

    def flush() -> None:
        nonlocal buffer, cpu
        if len(buffer):
            from rdkit import __version__ as rdkit_version

            meta = dict(base_meta, cpu_s={k: round(v, 2) for k, v in cpu.items()}, built=time.strftime("%Y-%m-%d"),
                        rdkit=rdkit_version, xtb_conformers_dropped=dict(xtb_dropped))
            path = write_shard(out, buffer, meta, prefix=spec["prefix"], quantize=spec["quantize"])
            tqdm.write(f"build_dataset: wrote {path.name} ({len(buffer.molecules)} molecules, "
                       f"{len(buffer.failures)} failed)", file=sys.stderr)
        buffer, cpu = ShardBuffer(), {}
        xtb_dropped.clear()

    tasks = []
    for i in todo:
        smi = lines[i]
        try:
            with quiet_rdkit():
                key = canonical_smiles(smi, stereo=False)
        except InputError:
            key = None
        if key is None or key in exclusion or smi in exclusion:
            buffer.fail(i, smi, "evaluation molecule" if key is not None else "RDKit cannot parse the SMILES")
            continue
        tasks.append((i, smi, args.seed + i, args.protocol))

    from rdkit import Chem

    old_term = signal.signal(signal.SIGTERM, _on_term)
    bar = tqdm(total=len(todo), unit="mol", desc=f"{args.protocol} ensembles", disable=args.no_progress,
               dynamic_ncols=True,
               initial=len(buffer))
    pool = None
    try:
        if args.workers > 1:
            import multiprocessing as mp

            from confgen.workers import init_worker

            pool = mp.get_context("fork").Pool(args.workers, initializer=init_worker, initargs=(None,))
            results = pool.imap(_work, tasks, chunksize=1)
        else:
            results = map(_work, tasks)
        for index, smi, mol_bytes, energies, aux, err, cpu_s, dropped in results:
            cpu[str(index)] = cpu_s
            xtb_dropped.update(r.split(" (")[0].split(":")[0] for r in dropped)
            if err is not None:
                buffer.fail(index, smi, err)
                tqdm.write(f"build_dataset: failed line {index + 1} {smi!r}: {err}", file=sys.stderr)
            else:
                buffer.add(index, smi, Chem.Mol(mol_bytes), energies, aux)
            bar.update(1)
            if len(buffer) >= args.shard_size:
                flush()
        flush()
    except (KeyboardInterrupt, Stop):
        if pool is not None:
            pool.terminate()
            pool = None
        flush()
        print("build_dataset: interrupted; finished molecules were written, rerun to continue", file=sys.stderr)
        return 130
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, old_term)
        if pool is not None:
            pool.close()
            pool.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
