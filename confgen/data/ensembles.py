"""Conformer ensembles for SMILES-only sources, built the way GEOM-like references are built.

Pipeline per molecule (:func:`build_ensemble`):

1. ETKDGv3 embedding of ``oversample * n_confs`` conformers (a non-zero seed: RDKit 2026.09 returns identical
   conformers for ``randomSeed=0``);
2. minimisation: MMFF94 (``"etkdg-mmff"``; UFF where MMFF94 has no parameters), or MMFF94 then GFN2-xTB via ``tblite``
   (``"xtb"``: only the ``xtb_preselect`` most diverse pruned MMFF94 minima, optionally those within
   ``xtb_mmff_window`` kcal/mol of the lowest, are minimised, with
   :mod:`confgen.chem.xtb`, a few CPU-s per drug-sized conformer; conformers whose SCF fails or whose bond
   graph changes are dropped), or none (``"etkdg"``);
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

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from rdkit import Chem

from confgen.chem import embed as etkdg
from confgen.chem.conformers import with_conformers, with_explicit_hydrogens, with_positions
from confgen.chem.forcefield import KCAL_PER_HARTREE, minimise
from confgen.chem.rmsd import self_rmsd
from confgen.chem.selection import SELECTIONS, boltzmann_weights, prune, select, within_window
from confgen.chem.smiles import safe_smiles
from confgen.chem.xtb import xtb_minimise
from confgen.errors import ConfgenError, InputError
from confgen.workers import init_worker, mp_context

METHODS = ("etkdg", "etkdg-mmff", "xtb")


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
        xtb_level: convergence level of the GFN2-xTB minimisation (``confgen.chem.xtb.LEVELS``).
        xtb_max_steps: single points per GFN2-xTB minimisation at most.
        xtb_coords: coordinates of the GFN2-xTB optimiser, ``"internal"`` or ``"cartesian"``
            (``confgen.chem.xtb.xtb_minimise``; the same convergence test in both).
        xtb_preselect: conformers minimised with GFN2-xTB: the most diverse of the pruned MMFF94 minima
            (None: ``n_confs``); the rest of the pool is never sent to GFN2-xTB.
        xtb_mmff_window: only pruned MMFF94 minima within this many kcal/mol of the lowest are candidates for
            the GFN2-xTB minimisation (None: all); fewer than ``xtb_preselect`` are minimised where fewer lie there.
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
    xtb_level: str = "vtight"
    xtb_max_steps: int = 400
    xtb_coords: str = "internal"
    xtb_preselect: int | None = None
    xtb_mmff_window: float | None = None
    seed: int = 42

    def check(self) -> "EnsembleOptions":
        if self.method not in METHODS:
            raise ConfgenError(f"unknown ensemble method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.select not in SELECTIONS:
            raise ConfgenError(f"unknown selection {self.select!r} (choose from {', '.join(SELECTIONS)})")
        if self.n_confs < 1 or self.oversample < 1:
            raise ConfgenError("n_confs and oversample must be at least 1")
        if self.xtb_coords not in ("internal", "cartesian"):
            raise ConfgenError(f"unknown GFN2-xTB coordinates {self.xtb_coords!r} (choose internal or cartesian)")
        if self.xtb_mmff_window is not None and not self.xtb_mmff_window >= 0:
            raise ConfgenError(f"the MMFF94 window before GFN2-xTB must be >= 0 kcal/mol, not {self.xtb_mmff_window}")
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


def embed_conformers(mol: Chem.Mol, n: int, seed: int) -> Chem.Mol:
    """A copy of ``mol`` with up to ``n`` ETKDGv3 conformers (ids 0..k-1), seeded by the ensemble ``seed``
    (its low 31 bits); from random coordinates only where the normal start embeds none."""
    positions = etkdg.embed(mol, n, lambda block, random_coords: int(seed) & 0x7FFFFFFF, fallback="if_none")
    return with_positions(mol, positions)


def _smiles(mol: Chem.Mol) -> str:
    return safe_smiles(mol, default="<molecule>")


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
    mol = with_explicit_hydrogens(mol)
    mol.RemoveAllConformers()
    template = Chem.Mol(mol)
    n_embed = opt.n_confs * opt.oversample
    mol = embed_conformers(mol, n_embed, seed)
    n_embedded = mol.GetNumConformers()
    if not n_embedded:
        raise InputError("ETKDG could not embed the molecule", smiles=_smiles(mol))

    forcefield = None
    info: dict = {"method": opt.method}
    if opt.method == "etkdg":
        energies = None
    else:
        minimised = minimise(mol, max_iters=opt.mmff_max_iters)
        if minimised is None:
            raise InputError("neither MMFF94 nor UFF has parameters for this molecule", smiles=_smiles(mol))
        energies, forcefield = minimised
        if opt.method == "xtb":
            mol, energies, mmff_kcal = _xtb_stage(mol, energies, opt, info)
            forcefield = "GFN2-xTB"
    n = mol.GetNumConformers()
    order = list(np.argsort(energies, kind="stable")) if energies is not None else list(range(n))
    if energies is not None and opt.energy_window is not None:
        order = within_window(order, energies, opt.energy_window)
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
    info.update({"energy": forcefield, "n_after_prune": len(order)})
    if opt.method == "xtb":
        info["xtb_energy_hartree"] = (energies[chosen] / KCAL_PER_HARTREE).tolist()
        info["mmff_energy_kcal"] = mmff_kcal[chosen].tolist()
    return Ensemble(mol=out, energies=rel, weights=weights, n_embedded=n_embedded, info=info)


def _xtb_stage(mol: Chem.Mol, mmff_kcal: np.ndarray, opt: EnsembleOptions, info: dict):
    """Pick the most diverse pruned MMFF94 minima (within ``opt.xtb_mmff_window`` of the lowest), minimise them
    with GFN2-xTB, keep those that succeed.

    Returns:
        ``(mol with the minimised conformers, GFN2-xTB energies [K] kcal/mol, their MMFF94 energies [K])``.

    Raises:
        InputError: GFN2-xTB failed on every conformer (the first reason is given).
    """
    order = list(np.argsort(mmff_kcal, kind="stable"))
    rmsd = self_rmsd(mol) if len(order) > 1 else np.zeros((1, 1))
    order = prune(order, rmsd, opt.rmsd_threshold)
    if opt.xtb_mmff_window is not None:
        order = within_window(order, mmff_kcal, opt.xtb_mmff_window)
    chosen = select(order, rmsd, opt.xtb_preselect or opt.n_confs, "diverse", np.random.default_rng(opt.seed))
    confs = list(mol.GetConformers())
    sub = with_conformers(mol, [confs[i] for i in chosen])
    hartree, reasons = xtb_minimise(sub, opt.xtb_level, opt.xtb_max_steps, opt.xtb_coords)
    good = [k for k, r in enumerate(reasons) if r is None]
    info["xtb_minimised"] = len(chosen)
    info["xtb_failed"] = [r for r in reasons if r is not None]
    if not good:
        raise InputError(f"GFN2-xTB failed on all {len(chosen)} conformers ({reasons[0]})", smiles=_smiles(mol))
    sub_confs = list(sub.GetConformers())
    kept = with_conformers(mol, [sub_confs[k] for k in good])
    return kept, hartree[good] * KCAL_PER_HARTREE, np.asarray(mmff_kcal)[[chosen[k] for k in good]]


def _build_task(args: tuple) -> tuple[int, Ensemble | None, str | None]:
    index, mol_bytes, options, seed = args
    try:
        return index, build_ensemble(Chem.Mol(mol_bytes), options, seed=seed), None
    except InputError as exc:
        return index, None, exc.message
    except Exception as exc:  # noqa: BLE001 - one bad molecule must not stop the others
        return index, None, f"ensemble building failed ({exc.__class__.__name__}: {str(exc)[:120]})"


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
            pool = mp_context().Pool(workers, initializer=functools.partial(
                init_worker, 1, sigterm_default=False, omp_env=True))
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
