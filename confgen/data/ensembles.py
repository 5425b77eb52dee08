"""Conformer ensembles for SMILES-only sources, built the way GEOM-like references are built.

Pipeline per molecule (:func:`build_ensemble`):

1. ETKDGv3 embedding of ``oversample * n_confs`` conformers (a non-zero seed: RDKit 2026.09 returns identical
   conformers for ``randomSeed=0``);
2. minimisation: MMFF94 (``"etkdg-mmff"``; UFF where MMFF94 has no parameters), or MMFF94 then GFN2-xTB via ``tblite`` with L-BFGS on its energies
   and gradients (``"xtb"``; slow: 10-50 s per drug-sized conformer), or none (``"etkdg"``);
3. optional energy window above the minimum (kcal/mol);
4. pruning: in order of energy, a conformer is dropped when its heavy-atom symmetry-aware RMSD to a kept one is
   below ``rmsd_threshold``;
5. selection of at most ``n_confs``: ``"diverse"`` (greedy max-min RMSD starting from the minimum),
   ``"energy"`` (lowest energies) or ``"random"``;
6. Boltzmann weights at ``temperature`` from the final energies; conformers are returned lowest energy first.

Defaults were chosen by ``scripts/validate_ensembles.py`` against the real GEOM ensembles in
``../shared/data/geom_drugs_tora3d7`` (see docs/benchmarks.md, "Data (issue 2)"): ranking by force-field
energy collapses coverage of GEOM's ensembles, so the default keeps a diverse subset and uses no window.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem

from confgen.errors import ConfgenError, InputError
from confgen.io import with_conformers

METHODS = ("etkdg", "etkdg-mmff", "xtb")
SELECTIONS = ("diverse", "energy", "random")
KCAL_PER_HARTREE = 627.509474
BOHR_PER_ANGSTROM = 1.0 / 0.529177210903
GAS_CONSTANT_KCAL = 0.0019872043  # kcal / (mol K)


@dataclass
class EnsembleOptions:
    """How to build an ensemble (see the module docstring).

    Attributes:
        method: ``"etkdg"``, ``"etkdg-mmff"`` or ``"xtb"``.
        n_confs: at most this many conformers per molecule.
        oversample: embed ``oversample * n_confs`` conformers before minimising and pruning.
        energy_window: drop conformers more than this many kcal/mol above the minimum (None: keep all).
        rmsd_threshold: heavy-atom RMSD (Angstrom) under which two conformers count as duplicates.
        select: ``"diverse"``, ``"energy"`` or ``"random"`` choice of the kept conformers.
        temperature: Kelvin, for the Boltzmann weights.
        mmff_max_iters: MMFF94 minimisation steps.
        xtb_max_steps: L-BFGS steps of the GFN2-xTB minimisation.
        seed: random seed (a zero seed is replaced, see the module docstring).
    """

    method: str = "etkdg-mmff"
    n_confs: int = 30
    oversample: int = 3
    energy_window: float | None = None
    rmsd_threshold: float = 0.25
    select: str = "diverse"
    temperature: float = 298.15
    mmff_max_iters: int = 2000
    xtb_max_steps: int = 300
    seed: int = 42

    def check(self) -> "EnsembleOptions":
        if self.method not in METHODS:
            raise ConfgenError(f"unknown ensemble method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.select not in SELECTIONS:
            raise ConfgenError(f"unknown selection {self.select!r} (choose from {', '.join(SELECTIONS)})")
        if self.n_confs < 1 or self.oversample < 1:
            raise ConfgenError("n_confs and oversample must be at least 1")
        if self.method == "xtb":
            try:
                import tblite.interface  # noqa: F401
            except ImportError:
                raise ConfgenError("--ensemble xtb needs tblite (pip install 'confgen[xtb]')") from None
        return self


@dataclass
class Ensemble:
    """A built ensemble.

    Attributes:
        mol: Mol with explicit hydrogens and the kept conformers (ids 0..K-1), lowest energy first.
        energies: [K] kcal/mol relative to the lowest kept conformer (None for ``"etkdg"``).
        weights: [K] Boltzmann weights summing to 1 (uniform for ``"etkdg"``).
        n_embedded: conformers embedded before minimisation/pruning.
    """

    mol: Chem.Mol
    energies: list[float] | None
    weights: list[float]
    n_embedded: int = 0
    info: dict = field(default_factory=dict)


def _rdkit_seed(seed: int) -> int:
    seed = int(seed) & 0x7FFFFFFF
    return seed if seed != 0 else 0x5EED


def embed(mol: Chem.Mol, n: int, seed: int) -> list[int]:
    """ETKDGv3-embed ``n`` conformers into ``mol`` (in place); returns conformer ids (maybe fewer than ``n``)."""
    params = AllChem.ETKDGv3()
    params.randomSeed = _rdkit_seed(seed)
    params.numThreads = 1
    params.pruneRmsThresh = -1.0
    cids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n, params=params))
    if not cids:  # hard cases (large rings, cages): random starting coordinates
        params.useRandomCoords = True
        cids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n, params=params))
    return cids


def mmff_minimise(mol: Chem.Mol, max_iters: int = 2000) -> tuple[np.ndarray, str]:
    """MMFF94-minimise every conformer in place (UFF where MMFF94 lacks parameters, e.g. boron).

    Returns:
        ``(energies [C] in kcal/mol, force field name)``.

    Raises:
        InputError: neither MMFF94 nor UFF has parameters for the molecule.
    """
    if AllChem.MMFFHasAllMoleculeParams(mol):
        res = AllChem.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=max_iters)
        name = "MMFF94"
    elif AllChem.UFFHasAllMoleculeParams(mol):
        res = AllChem.UFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=max_iters)
        name = "UFF"
    else:
        raise InputError("neither MMFF94 nor UFF has parameters for this molecule", smiles=_smiles(mol))
    return np.array([e for _, e in res], dtype=np.float64), name


def mmff_energies(mol: Chem.Mol) -> np.ndarray | None:
    """MMFF94 single-point energies [C] (kcal/mol) of the conformers, or None without parameters."""
    props = AllChem.MMFFGetMoleculeProperties(mol)
    if props is None:
        return None
    out = []
    for conf in mol.GetConformers():
        ff = AllChem.MMFFGetMoleculeForceField(mol, props, confId=conf.GetId())
        out.append(ff.CalcEnergy())
    return np.array(out, dtype=np.float64)


def xtb_minimise(mol: Chem.Mol, max_steps: int = 300) -> np.ndarray:
    """GFN2-xTB (tblite) L-BFGS minimisation of every conformer in place; returns energies [C] in kcal/mol.

    Raises:
        InputError: tblite fails on the molecule.
    """
    from scipy.optimize import minimize
    from tblite.interface import Calculator

    _single_thread_openmp()  # tblite's OpenMP threads contend badly with other processes on shared cores

    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    charge = float(Chem.GetFormalCharge(mol))
    uhf = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    energies = []
    for conf in mol.GetConformers():
        x0 = conf.GetPositions().reshape(-1) * BOHR_PER_ANGSTROM
        calc = Calculator("GFN2-xTB", numbers, x0.reshape(-1, 3), charge=charge, uhf=uhf)
        calc.set("verbosity", 0)

        def fun(x):
            calc.update(x.reshape(-1, 3))
            res = calc.singlepoint()
            return float(res.get("energy")), np.asarray(res.get("gradient")).reshape(-1)

        try:
            opt = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_steps, "gtol": 1e-4})
        except Exception as exc:  # noqa: BLE001 - tblite raises on SCF failures
            raise InputError(f"GFN2-xTB failed ({str(exc).strip()[:120]})", smiles=_smiles(mol)) from None
        conf.SetPositions(np.ascontiguousarray(opt.x.reshape(-1, 3) / BOHR_PER_ANGSTROM))
        energies.append(opt.fun * KCAL_PER_HARTREE)
    return np.array(energies, dtype=np.float64)


def _single_thread_openmp() -> None:
    import ctypes

    for lib in ("libgomp.so.1", "libgomp.dylib", "libomp.dylib"):
        try:
            ctypes.CDLL(lib).omp_set_num_threads(1)
            return
        except (OSError, AttributeError):
            continue


def self_rmsd(mol: Chem.Mol) -> np.ndarray:
    """[C, C] heavy-atom symmetry-aware RMSD between the conformers of ``mol``."""
    from confgen.evaluation import rmsd_matrix

    return rmsd_matrix(mol, mol)


def _smiles(mol: Chem.Mol) -> str:
    try:
        return Chem.MolToSmiles(Chem.RemoveHs(mol))
    except Exception:  # noqa: BLE001
        return "<molecule>"


def prune(order: Sequence[int], rmsd: np.ndarray, threshold: float) -> list[int]:
    """Greedy duplicate removal: walk ``order`` and keep a conformer unless it is within ``threshold`` of a kept one."""
    kept: list[int] = []
    for i in order:
        if threshold <= 0 or not kept or rmsd[i, kept].min() >= threshold:
            kept.append(i)
    return kept


def select(candidates: list[int], rmsd: np.ndarray, n: int, how: str, rng: np.random.Generator) -> list[int]:
    """Choose at most ``n`` of ``candidates`` (energy-ordered): diverse (max-min RMSD), lowest energy, or random."""
    if len(candidates) <= n:
        return list(candidates)
    if how == "energy":
        return list(candidates[:n])
    if how == "random":
        return sorted(rng.choice(candidates, size=n, replace=False).tolist(), key=candidates.index)
    chosen = [candidates[0]]
    dist = rmsd[candidates[0], candidates].astype(np.float64)
    dist[0] = -np.inf  # never pick a conformer twice (ties at zero RMSD: one heavy atom, exact duplicates)
    while len(chosen) < n:
        k = int(np.argmax(dist))
        chosen.append(candidates[k])
        dist = np.minimum(dist, rmsd[candidates[k], candidates])
        dist[k] = -np.inf
    return sorted(chosen, key=candidates.index)


def boltzmann_weights(energies: np.ndarray, temperature: float) -> np.ndarray:
    """exp(-(E - Emin) / RT), normalised; ``energies`` [K] in kcal/mol."""
    e = np.asarray(energies, dtype=np.float64)
    w = np.exp(-(e - e.min()) / (GAS_CONSTANT_KCAL * temperature))
    return w / w.sum()


def build_ensemble(mol: Chem.Mol, options: EnsembleOptions | None = None, *, seed: int | None = None) -> Ensemble:
    """Build a conformer ensemble for one molecule.

    Args:
        mol: the molecule (hydrogens are added if implicit; existing conformers are ignored).
        options: :class:`EnsembleOptions` (defaults if None).
        seed: overrides ``options.seed``.

    Returns:
        The :class:`Ensemble`.

    Raises:
        InputError: embedding fails, or no force-field parameters for the molecule.
    """
    opt = (options or EnsembleOptions()).check()
    seed = opt.seed if seed is None else seed
    mol = Chem.Mol(mol)
    if not any(a.GetAtomicNum() > 1 for a in mol.GetAtoms()):
        raise InputError("molecule has no heavy atoms", smiles=_smiles(mol))
    if any(a.GetNumImplicitHs() for a in mol.GetAtoms()):
        mol = Chem.AddHs(mol)
    mol.RemoveAllConformers()
    template = Chem.Mol(mol)
    n_embed = opt.n_confs * opt.oversample
    cids = embed(mol, n_embed, seed)
    if not cids:
        raise InputError("ETKDG could not embed the molecule", smiles=_smiles(mol))

    forcefield = None
    if opt.method == "etkdg":
        energies = None
    else:
        energies, forcefield = mmff_minimise(mol, opt.mmff_max_iters)
        if opt.method == "xtb":
            energies = xtb_minimise(mol, opt.xtb_max_steps)
            forcefield = "GFN2-xTB"
    n = mol.GetNumConformers()
    order = list(np.argsort(energies, kind="stable")) if energies is not None else list(range(n))
    if energies is not None and opt.energy_window is not None:
        order = [i for i in order if energies[i] - energies[order[0]] <= opt.energy_window]
    need_rmsd = opt.rmsd_threshold > 0 or (len(order) > opt.n_confs and opt.select == "diverse")
    rmsd = self_rmsd(mol) if need_rmsd and len(order) > 1 else np.zeros((n, n))
    order = prune(order, rmsd, opt.rmsd_threshold)
    chosen = select(order, rmsd, opt.n_confs, opt.select, np.random.default_rng(seed))

    confs = list(mol.GetConformers())
    # MMFF typing re-perceives aromaticity in place: keep the input's chemistry
    out = with_conformers(template, [confs[i] for i in chosen])
    if energies is not None:
        e = energies[chosen]
        rel = (e - e.min()).tolist()
        weights = boltzmann_weights(e, opt.temperature).tolist()
    else:
        rel = None
        weights = [1.0 / len(chosen)] * len(chosen)
    return Ensemble(mol=out, energies=rel, weights=weights, n_embedded=len(cids),
                    info={"method": opt.method, "energy": forcefield, "n_after_prune": len(order)})


def _build_task(args: tuple) -> tuple[int, Ensemble | None, str | None]:
    index, mol_bytes, options, seed = args
    try:
        return index, build_ensemble(Chem.Mol(mol_bytes), options, seed=seed), None
    except InputError as exc:
        return index, None, exc.message
    except Exception as exc:  # noqa: BLE001 - one bad molecule must not stop the others
        return index, None, f"ensemble building failed ({exc.__class__.__name__}: {str(exc)[:120]})"


def _init_worker() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def mp_context():
    """Fork where it is safe (Linux), spawn elsewhere."""
    return mp.get_context("fork" if os.name == "posix" and os.uname().sysname == "Linux" else "spawn")


def build_ensembles(mols: Sequence[Chem.Mol], options: EnsembleOptions | None = None, *, workers: int = 1,
                    seed: int | None = None, progress: bool = True, errors: list | None = None,
                    names: Sequence[str] | None = None) -> list[Ensemble | None]:
    """Build ensembles for many molecules in parallel processes, with a progress bar.

    Args:
        mols: molecules.
        options: :class:`EnsembleOptions`.
        workers: processes (1 = in this process).
        seed: base seed; molecule ``i`` uses ``seed + i``.
        progress: show a tqdm progress bar.
        errors: receives one :class:`InputError` per molecule that failed (else the first failure raises).
        names: names used in error messages.

    Returns:
        One :class:`Ensemble` per input (None where it failed and ``errors`` is given).
    """
    from tqdm.auto import tqdm

    opt = (options or EnsembleOptions()).check()
    base = opt.seed if seed is None else seed
    tasks = [(i, m.ToBinary(), replace(opt), base + i) for i, m in enumerate(mols)]
    out: list[Ensemble | None] = [None] * len(tasks)
    bar = tqdm(total=len(tasks), unit="mol", desc="ensembles", disable=not progress)
    pool = None
    try:
        if workers <= 1:
            results = map(_build_task, tasks)
        else:
            pool = mp_context().Pool(workers, initializer=_init_worker)
            results = pool.imap_unordered(_build_task, tasks)
        for index, ens, err in results:
            bar.update(1)
            if err is not None:
                exc = InputError(err, source=names[index] if names else f"molecule {index}",
                                 smiles=_smiles(mols[index]))
                if errors is None:
                    raise exc
                errors.append(exc)
            out[index] = ens
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return out
