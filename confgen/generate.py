"""Model + molecules -> RDKit Mols with stereo-checked conformers.

:func:`generate_conformers` batches many molecules x conformers into one :class:`torch_geometric.data.Batch` per forward pass,
runs a sampler of :mod:`confgen.sampling` on the model's score, and post-processes each conformer:

1. blow-up (non-finite or flown-apart coordinates, or a bond stretched beyond 1.6 x or squeezed below
   0.5 x the sum of covalent radii): the conformer is sampled again with a smaller step size;
2. stereo (:mod:`confgen.chem.stereo`): a conformer whose specified centres are all inverted is mirrored; any other
   stereo error is resampled; a conformer is never returned with the wrong specified stereo;
3. physical validity: heavy-atom bond lengths, bond angles and clashes within the limits of PoseBusters' "mol"
   checks (:func:`confgen.validity.geometry_bounds`, the same numbers as PoseBusters, at numpy speed); a
   conformer outside them is sampled again;
4. selection: a preset with ``oversample`` k > 1 embeds ceil(k x n) ETKDG initial guesses and samples only
   the n most diverse (greedy max-min symmetry-aware heavy-atom RMSD); candidates sampled from noise (no
   ETKDG guess) are selected the same way after sampling;
5. MMFF94 relaxation (``relax="mmff"``, the default; energy stored as the conformer property
   ``confgen_mmff_energy``), followed by a second stereo check: a conformer whose stereo the minimisation changed
   (strained bridgeheads) is returned unrelaxed.

Where ETKDG cannot embed an initial guess (strained polycycles such as fused cyclopropanes), the ``fast``
preset samples that conformer from pure noise over the model's whole noise range instead
(``noise_fallback_levels``): the score model needs no embedding to start from.

A conformer still failing after ``max_retries`` retries is dropped (wrong stereo, broken bonds) or, when only
the PoseBusters limits were missed, written as last sampled; both are counted in :class:`GenerationStats`, and
every returned conformer carries the conformer property ``confgen_posebusters_bounds_ok`` (1 or 0), judged on
its final (relaxed) coordinates.

Unspecified stereo: a molecule whose stereocentres or stereo bonds are not all specified gets one stereoisomer
for all its conformers (``stereo="one"``, the default; :func:`confgen.io.resolve_stereo`) or is refused
(``stereo="refuse"``); enumerating stereoisomers as separate molecules is done on the inputs before generation
(``confgen sample --stereo enumerate``).

Multi-fragment molecules (a salt kept whole, ``confgen sample --fragments all``): after every sampling step's
result, the smaller fragments are translated rigidly away from the larger ones until no two atoms of different
fragments are closer than 0.8 x the sum of their van der Waals radii
(:func:`confgen.validity.separate_fragments`); the PoseBusters clash limits then check the arrangement.

Progress: one bar (:class:`confgen.progress.Progress`) with a fixed total over embedding, sampling and
relaxation (and writing, when the caller passes its own bar); ETKDG guesses are embedded in blocks of
:data:`EMBED_BLOCK` and MMFF94 relaxes blocks of :data:`RELAX_BLOCK` conformers so that the bar moves.

Reproducibility: every conformer draws its noise from its own generator seeded by ``(seed, molecule id,
conformer, attempt)``, and ETKDG initial guesses are seeded by ``(seed, molecule id, round)``: the same seed and
device give the same coordinates, whatever the batch size or the other molecules of the run (up to
floating-point summation order inside the network).
"""

from __future__ import annotations

import inspect
import math
import secrets
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import torch
from rdkit import Chem
from torch_geometric.data import Batch

from confgen.batching import BatchPacker, is_out_of_memory, sample_cost
from confgen.chem import embed as etkdg
from confgen.chem.conformers import with_conformers
from confgen.chem.forcefield import has_mmff_params, minimise, mmff_energies
from confgen.chem.selection import most_diverse
from confgen.chem.stereo import StereoSpec, check_stereo, repair_stereo, stereo_spec
from confgen.data.features import featurize_mol
from confgen.data.graph import all_pairs
from confgen.errors import ConfgenError, InputError
from confgen.io import (
    PROP_MMFF_ENERGY,
    PROP_STEREO_POLICY,
    PROP_WITHIN_BOUNDS,
    mol_from_smiles,
    resolve_stereo,
)
from confgen.noise import remove_com
from confgen.options import DEFAULT_BATCH_SIZE, DEFAULT_STEREO, RELAX_CHOICES
from confgen.progress import Progress
from confgen.rdlog import quiet_rdkit
from confgen.sampling import (
    SAMPLER_PRESETS,
    NoiseSource,
    SampleResult,
    noise_fallback_params,
    resolve_preset,
    sample,
    seed_for,
    sigma_schedule,
)
from confgen.validity import GeometryBounds, geometry_bounds, separate_fragments, within_bounds

__all__ = ["SAMPLER_PRESETS", "DEFAULT_BATCH_SIZE", "GenerationStats", "generate_conformers", "generate"]

#: bonds longer than this factor x (sum of covalent radii), or shorter than BOND_MIN_FACTOR x, are broken
BOND_MAX_FACTOR = 1.6
BOND_MIN_FACTOR = 0.5
#: ETKDG initial guesses embedded per RDKit call (the bar moves between calls); block b > 0 of a molecule is
#: seeded from (its seed, b), so the guesses do not depend on the number of threads
EMBED_BLOCK = 8
#: conformers per MMFF94 minimisation call (the bar moves between calls)
RELAX_BLOCK = 8


@dataclass
class GenerationStats:
    """Counters of one :func:`generate_conformers` call.

    Attributes:
        molecules: molecules given.
        failed_molecules: molecules that gave no conformer (unusable input, or every conformer dropped).
        requested: conformers asked for.
        written: conformers returned.
        samples: conformers sampled, retries included.
        network_evals: score-network calls x conformers.
        blowups: samples whose dynamics blew up (non-finite or flown apart; retried with a smaller step).
        bad_geometry: samples with a broken or collapsed bond, or outside PoseBusters' bond-length, bond-angle
            and clash limits (:func:`confgen.validity.geometry_bounds`); retried with a smaller step.
        outside_bounds: conformers written although outside those limits (judged on the written coordinates,
            after relaxation; marked ``confgen_posebusters_bounds_ok`` = 0): no retry got inside, and the last
            sample had the right stereo and no broken bond.
        stereo_mirrored: conformers repaired by mirroring.
        stereo_resampled: conformers resampled because of a stereo error a mirror cannot fix.
        dropped: conformers given up after ``max_retries`` retries.
        from_noise: conformers sampled from pure noise because ETKDG could not embed their initial guess
            (preset key ``noise_fallback_levels``).
        relax_skipped: molecules that MMFF94 has no parameters for (returned unrelaxed).
        relax_reverted: conformers written unrelaxed because MMFF94 minimisation changed their stereo.
        seed: the seed used (drawn at random when none was given).
        warnings: human-readable notes (one line each).
    """

    molecules: int = 0
    failed_molecules: int = 0
    requested: int = 0
    written: int = 0
    samples: int = 0
    network_evals: int = 0
    blowups: int = 0
    bad_geometry: int = 0
    outside_bounds: int = 0
    stereo_mirrored: int = 0
    stereo_resampled: int = 0
    dropped: int = 0
    from_noise: int = 0
    relax_skipped: int = 0
    relax_reverted: int = 0
    seed: int | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for humans."""
        return (f"{self.written}/{self.requested} conformers for {self.molecules - self.failed_molecules}/"
                f"{self.molecules} molecules; {self.repairs()}")

    def repairs(self) -> str:
        """What the checks did: stereo repairs, retries, fallbacks and dropped conformers (one line)."""
        return (f"stereo: {self.stereo_mirrored} mirrored, {self.stereo_resampled} resampled; {self.blowups} "
                f"blow-ups and {self.bad_geometry} broken geometries retried with smaller steps; "
                f"{self.outside_bounds} written outside the PoseBusters bounds; {self.from_noise} sampled from "
                f"noise where ETKDG failed; {self.dropped} conformers dropped"
                + (f"; {self.relax_reverted} written unrelaxed (MMFF94 changed their stereo)"
                   if self.relax_reverted else ""))


@dataclass
class _MolState:
    """Per-molecule working state."""

    mol: Chem.Mol
    graph: object
    spec: StereoSpec
    bonds: np.ndarray  # [B, 2]
    bond_ref: np.ndarray  # [B] sum of covalent radii
    n_requested: int  # conformers to sample (candidates)
    uid: int
    n_keep: int = 0  # conformers to return: the most diverse n_keep of the candidates
    bounds: GeometryBounds | None = None  # PoseBusters' distance limits (heavy atoms)
    pos: dict = field(default_factory=dict)  # slot -> [N, 3] accepted coordinates
    fallback: dict = field(default_factory=dict)  # slot -> right stereo, outside the bounds (last resort)
    attempts: dict = field(default_factory=dict)  # slot -> samples taken
    blowups: dict = field(default_factory=dict)  # slot -> blow-ups so far
    from_noise: set = field(default_factory=set)  # slots that ETKDG could not embed: sampled from noise
    fragments: list | None = None  # atom indices of each fragment, largest first (None: one fragment)
    radii: np.ndarray | None = None  # [N] van der Waals radii (multi-fragment molecules)
    too_large: str = ""  # device type whose memory one conformer alone exceeded: the molecule is skipped


def _prepare(mol: Chem.Mol, n: int, uid: int, source: str, oversample: float = 1.0,
             stereo: str = DEFAULT_STEREO, notes: list | None = None) -> _MolState:
    if mol is None:
        raise InputError("no molecule", source=source)
    mol = Chem.Mol(mol)
    if any(a.GetNumImplicitHs() for a in mol.GetAtoms()):
        mol = Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)
    if not mol.HasProp(PROP_STEREO_POLICY):  # not resolved when the input was read
        if stereo == "enumerate":
            raise ConfgenError("stereo='enumerate' makes several molecules of one: apply confgen.io.resolve_stereo "
                               "to the inputs first (generate_conformers takes 'one' or 'refuse')")
        with quiet_rdkit():
            label = Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False))
        (mol,), note = resolve_stereo(mol, stereo, source=source, label=label)
        if note and notes is not None:
            notes.append(note)
    graph = featurize_mol(mol, source=source)
    mol.RemoveAllConformers()
    table = Chem.GetPeriodicTable()
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 2)
    rcov = np.array([table.GetRcovalent(a.GetAtomicNum()) for a in mol.GetAtoms()])
    frags = sorted(Chem.GetMolFrags(mol), key=len, reverse=True)
    multi = len(frags) > 1
    return _MolState(mol=mol, graph=graph, spec=stereo_spec(mol), bonds=bonds,
                     bond_ref=rcov[bonds[:, 0]] + rcov[bonds[:, 1]] if len(bonds) else np.zeros(0),
                     n_requested=math.ceil(oversample * int(n) - 1e-9), n_keep=int(n), uid=uid,
                     bounds=geometry_bounds(mol),
                     fragments=[np.array(f, dtype=np.int64) for f in frags] if multi else None,
                     radii=np.array([table.GetRvdw(a.GetAtomicNum()) for a in mol.GetAtoms()]) if multi else None)


def _geometry_ok(state: _MolState, pos: np.ndarray) -> bool:
    """No bond broken or collapsed (pos [N, 3])."""
    if not np.isfinite(pos).all():
        return False
    if not len(state.bonds):
        return True
    d = np.linalg.norm(pos[state.bonds[:, 0]] - pos[state.bonds[:, 1]], axis=-1)
    return bool(((d <= BOND_MAX_FACTOR * state.bond_ref) & (d >= BOND_MIN_FACTOR * state.bond_ref)).all())


def _etkdg(mol: Chem.Mol, n: int, seed: int, workers: int, progress: Progress | None = None) -> list[np.ndarray]:
    """Up to ``n`` ETKDGv3 conformers [N, 3] (random-coordinate embedding as a fallback), in blocks of
    :data:`EMBED_BLOCK` (``progress`` advances after each block of the first pass)."""
    def seed_of(block: int, random_coords: bool) -> int:  # 0 gives identical conformers (RDKit 2026.09)
        return int((seed if block == 0 else seed_for(seed, block)) % 2_000_000_000) + 1

    return etkdg.embed(mol, n, seed_of, threads=workers, block_size=EMBED_BLOCK,
                       on_block=progress.advance if progress is not None else None)


def progress_budgets(num_confs: list[int], preset=None, relax: str = "mmff", write: bool = False,
                     preset_overrides: dict | None = None) -> dict[str, int]:
    """The steps of each phase of a run (for :class:`confgen.progress.Progress`; its total never changes).

    Args:
        num_confs: conformers requested per molecule.
        preset, preset_overrides: the sampler preset.
        relax: ``"mmff"`` or ``"none"``.
        write: count a writing phase (the caller advances it).
    """
    params = resolve_preset(preset, preset_overrides)
    cands = sum(math.ceil(params["oversample"] * int(n) - 1e-9) for n in num_confs)
    keep = sum(int(n) for n in num_confs)
    etkdg = params["init"] == "etkdg"
    return {"embedding": cands if etkdg else 0, "sampling": keep if etkdg else cands,
            "relaxing": keep if relax == "mmff" else 0, "writing": keep if write else 0}


def _resolve_model(model, device):
    if model is None:
        from confgen.checkpoint import load_model

        return load_model(None, device=device)
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from confgen.checkpoint import load_model

        return load_model(model, device=device)
    return model.to(device).eval()


def _resolve_device(device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfgenError(f"device {device!r} requested but CUDA is not available")
    return dev


def generate_conformers(mols: list[Chem.Mol], num_confs: list[int] | int, *, model=None, preset=None,
                        seed: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE, device="cpu",
                        relax: str = "mmff", progress: bool | Progress = True, errors: list | None = None,
                        workers: int = 1, stats: GenerationStats | None = None,
                        preset_overrides: dict | None = None, ids: list[int] | None = None,
                        sources: list[str] | None = None, stereo: str = DEFAULT_STEREO,
                        network: bool = True) -> list[Chem.Mol | None]:
    """Generate conformers for many molecules at once.

    Args:
        mols: RDKit Mols with explicit hydrogens (implicit ones are added); any conformers are ignored.
        num_confs: conformers per molecule (one int for all, or one per molecule).
        model: a ScoreModel, a checkpoint path, or ``None`` for the shipped default model.
        preset: sampler preset name or dict (see :func:`confgen.sampling.resolve_preset`); ``None`` = default.
        seed: random seed (``None`` = a fresh random seed, reported in ``stats.seed``).
        batch_size: conformers per forward pass (on a GPU: sorted by size, and fewer where memory runs out, see
            :mod:`confgen.batching`; a molecule whose one conformer does not fit is reported and skipped).
        device: torch device.
        relax: ``"mmff"`` (MMFF94 minimisation; energy in conformer property ``confgen_mmff_energy``; a
            conformer whose stereo it would change is returned unrelaxed) or ``"none"``.
        progress: show a progress bar (fixed total over embedding, sampling and relaxation), or a
            :class:`confgen.progress.Progress` made by the caller (budgets from :func:`progress_budgets`) to
            advance; it is not closed here.
        errors: receives one :class:`InputError` per molecule that failed; if ``None`` the first is raised.
        workers: CPU threads for RDKit embedding and MMFF.
        stats: receives the counters of this call.
        preset_overrides: sampler parameters to replace.
        ids: per-molecule ids used in the seeds (default 0..len-1); keeps results stable when a run is split.
        sources: per-molecule source strings for error messages.
        stereo: unspecified stereo of a molecule not already resolved by :func:`confgen.io.resolve_stereo`:
            ``"one"`` (one stereoisomer for all its conformers, noted in ``stats.warnings``) or ``"refuse"``.
        network: ``False`` switches the score network off (an ablation): the preset's ETKDG initial guesses
            go through the same oversampling, diverse selection, stereo/geometry checks (failures re-embedded)
            and relaxation, unchanged by any network step (no noise is added); ``model`` is not loaded and a
            conformer ETKDG cannot embed is dropped (no noise fallback). Needs a preset with init ``etkdg``.

    Returns:
        One Mol per input (explicit H, conformers with ids 0..k-1, k <= requested) or ``None`` for a failed one.

    Raises:
        ConfgenError: unknown preset, bad arguments, missing model, or (``errors`` is None) a failed molecule.
    """
    if relax not in RELAX_CHOICES:
        raise ConfgenError(f"relax must be one of {', '.join(RELAX_CHOICES)}, not {relax!r}")
    if batch_size < 1:
        raise ConfgenError("batch_size must be at least 1")
    params = resolve_preset(preset, preset_overrides)
    if not network:
        if params["init"] != "etkdg":
            raise ConfgenError("network=False needs a sampler preset with init 'etkdg' (nothing to start from)")
        params = dict(params, noise_fallback_levels=0)
    dev = _resolve_device(device)
    stats = stats if stats is not None else GenerationStats()
    if seed is None:
        seed = secrets.randbits(31)
    stats.seed = int(seed)
    nums = [int(num_confs)] * len(mols) if isinstance(num_confs, (int, np.integer)) else [int(n) for n in num_confs]
    if len(nums) != len(mols):
        raise ConfgenError(f"{len(mols)} molecules but {len(nums)} conformer counts")
    ids = list(range(len(mols))) if ids is None else list(ids)
    sources = [f"molecule {i}" for i in range(len(mols))] if sources is None else list(sources)
    workers = max(int(workers), 0)

    stats.molecules += len(mols)
    stats.requested += sum(nums)
    states: list[_MolState | None] = []
    for i, mol in enumerate(mols):
        try:
            states.append(_prepare(mol, nums[i], ids[i], sources[i], params["oversample"], stereo=stereo,
                                   notes=stats.warnings))
        except InputError as exc:
            if errors is None:
                raise
            errors.append(exc)
            states.append(None)
    own_bar = not isinstance(progress, Progress)
    budgets = progress_budgets(nums, params, relax)
    bar = Progress(budgets, enabled=bool(progress)) if own_bar else progress
    before = dict(bar.done)
    try:
        live = [s for s in states if s is not None and s.n_requested > 0]
        if live:
            model = _resolve_model(model, dev) if network else None
            _run(live, model=model, params=params, seed=int(seed), batch_size=int(batch_size), device=dev,
                 workers=workers, progress=bar, stats=stats)
        out = _finish(states, nums, bar, relax=relax, workers=workers, stats=stats, errors=errors,
                      sources=sources, params=params)
        bar.settle(budgets, before)  # work these molecules did not need (failed inputs, dropped conformers)
        return out
    finally:
        if own_bar:
            bar.close()


def _finish(states, nums, bar: Progress, *, relax, workers, stats, errors, sources, params) -> list:
    """Mols from the sampled states: selection (noise starts), MMFF94, bounds marks, failures."""
    out: list[Chem.Mol | None] = []
    for i, st in enumerate(states):
        if st is None:
            out.append(None)
            stats.failed_molecules += 1
            continue
        mol = Chem.Mol(st.mol)
        for k, slot in enumerate(sorted(st.pos)):
            conf = Chem.Conformer(mol.GetNumAtoms())
            conf.SetPositions(np.asarray(st.pos[slot], dtype=np.float64))
            conf.SetId(k)
            mol.AddConformer(conf, assignId=False)
        if mol.GetNumConformers() > st.n_keep:  # candidates sampled from noise were not preselected
            with bar.phase("sampling"):
                confs = list(mol.GetConformers())
                chosen = most_diverse(st.mol, [c.GetPositions() for c in confs], st.n_keep)
                mol = with_conformers(mol, [confs[c] for c in chosen])
        with bar.phase("relaxing"):
            if relax == "mmff" and mol.GetNumConformers():
                mol = _relax_mmff(mol, st, workers, stats, sources[i], bar)
        if mol.GetNumConformers():
            pos = np.stack([c.GetPositions() for c in mol.GetConformers()])  # [K, N, 3]
            ok = within_bounds(st.bounds, pos) if st.bounds is not None else np.ones(len(pos), bool)
            for conf, flag in zip(mol.GetConformers(), ok):
                conf.SetIntProp(PROP_WITHIN_BOUNDS, int(flag))
            stats.outside_bounds += int((~ok).sum())
        failure = None
        if st.too_large:
            failure = (f"too large for the {st.too_large} memory ({mol.GetNumAtoms()} atoms: one conformer alone "
                       "does not fit); skipped")
        elif mol.GetNumConformers() == 0 and st.n_keep > 0:
            failure = f"no conformer passed the checks after {params['max_retries']} retries"
        if failure is not None:
            exc = InputError(failure, source=sources[i], smiles=Chem.MolToSmiles(Chem.RemoveHs(st.mol)))
            if errors is None:
                raise exc
            errors.append(exc)
            out.append(None)
            stats.failed_molecules += 1
            continue
        if mol.GetNumConformers() < st.n_keep:
            stats.warnings.append(f"{sources[i]}: {mol.GetNumConformers()} of {st.n_keep} conformers written "
                                  "(the others failed the checks after every retry)")
        stats.written += mol.GetNumConformers()
        out.append(mol)
    return out


def _run(states: list[_MolState], *, model, params: dict, seed: int, batch_size: int, device: torch.device,
         workers: int, progress: Progress, stats: GenerationStats) -> None:
    """Sample every requested slot of every molecule, with retries (fills ``state.pos``).

    ``model=None``: the network is off; the ETKDG initial guesses are taken as they are (see ``network``).
    """
    bar = progress
    if model is None:
        dtype, sigmas, use_pairs = torch.float64, None, False
    else:
        dtype = next(model.parameters()).dtype
        sigmas = sigma_schedule(params, getattr(model, "sigmas", None))
        use_pairs = "pairs" in inspect.signature(model.forward).parameters
    fb_params = noise_fallback_params(params)
    fb_sigmas = sigma_schedule(fb_params, getattr(model, "sigmas", None)) if fb_params else None
    pending = [(k, j) for k, st in enumerate(states) for j in range(st.n_requested)]
    round_ = 0
    packer = BatchPacker(batch_size, by_size=device.type == "cuda")
    while pending:
        pending = [(k, j) for k, j in pending if not states[k].too_large]
        inits: dict[int, dict[int, np.ndarray]] = {}
        from_noise: list[tuple[int, int]] = []
        if params["init"] == "etkdg":
            with bar.phase("embedding"):
                pending, from_noise = _embed_round(states, pending, inits, seed=seed, round_=round_,
                                                   workers=workers, fb_params=fb_params, stats=stats,
                                                   progress=bar if round_ == 0 else None)
        retry: list[tuple[int, int]] = []
        groups = ((pending, params, sigmas), (from_noise, fb_params, fb_sigmas))
        with bar.phase("sampling"):
            for todo, p_, sig_ in groups:
                queue, costs = packer.order(todo, [sample_cost(states[k].graph.num_nodes) for k, _ in todo])
                while queue:
                    n = packer.take(costs)
                    chunk = queue[:n]
                    try:
                        again = _sample_chunk(chunk, states, inits, model=model, params=p_, sigmas=sig_,
                                              seed=seed, device=device, dtype=dtype, use_pairs=use_pairs,
                                              stats=stats)
                    except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
                        if not is_out_of_memory(exc):
                            raise
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                        if n > 1:  # retry with smaller batches
                            packer.shrink(sum(costs[:n]))
                            continue
                        big = chunk[0][0]  # one conformer alone does not fit: skip the molecule
                        states[big].too_large = device.type
                        keep = [i for i, (k, _) in enumerate(queue) if k != big]
                        bar.advance(len(queue) - len(keep))
                        queue, costs = [queue[i] for i in keep], [costs[i] for i in keep]
                        continue
                    queue, costs = queue[n:], costs[n:]
                    retry += again
                    bar.advance(len(chunk) - len(again))
            pending = []
            retry = [(k, j) for k, j in retry if not states[k].too_large]
            for k, j in retry:
                st = states[k]
                if st.attempts[j] > params["max_retries"]:
                    if j in st.fallback:  # right stereo, sane bonds, but outside PoseBusters' bounds
                        st.pos[j] = st.fallback.pop(j)
                    else:
                        stats.dropped += 1
                    bar.advance(1)
                else:
                    pending.append((k, j))
        round_ += 1


def _embed_round(states, pending, inits, *, seed, round_, workers, fb_params, stats, progress):
    """ETKDG initial guesses for the pending slots (into ``inits``); in round 0, only the most diverse are kept.

    Returns:
        ``(pending, from_noise)``: the slots to sample from their guess, and those to sample from noise.
    """
    by_mol: dict[int, list[int]] = {}
    for k, j in pending:
        if j not in states[k].from_noise:
            by_mol.setdefault(k, []).append(j)
    for k, slots in by_mol.items():
        st = states[k]
        confs = _etkdg(st.mol, len(slots), seed_for(seed, st.uid, round_, 1), workers, progress)
        inits[k] = dict(zip(slots, confs))
    missing = [(k, j) for k, j in pending if j not in inits.get(k, {}) and j not in states[k].from_noise]
    if missing and fb_params is not None:
        for k, j in missing:
            states[k].from_noise.add(j)
        stats.from_noise += len(missing)
        stats.warnings.append(f"ETKDG could not embed {len(missing)} initial guesses; those conformers "
                              f"were sampled from noise ({fb_params['num_levels']} levels)")
    elif missing:
        stats.dropped += len(missing)
        stats.warnings.append(f"ETKDG could not embed {len(missing)} initial guesses; those "
                              "conformers were dropped")
    from_noise = [(k, j) for k, j in pending if j in states[k].from_noise]
    pending = [(k, j) for k, j in pending if j in inits.get(k, {})]
    if round_ == 0:  # oversampled: sample only the most diverse initial guesses
        for k, init in inits.items():
            st = states[k]
            if len(init) > st.n_keep:
                slots = sorted(init)
                keep = {slots[i] for i in most_diverse(st.mol, [init[j] for j in slots], st.n_keep)}
                inits[k] = {j: init[j] for j in slots if j in keep}
        pending = [(k, j) for k, j in pending if j in inits[k]]
    return pending, from_noise


def _sample_chunk(chunk, states, inits, *, model, params, sigmas, seed, device, dtype, use_pairs,
                  stats) -> list[tuple[int, int]]:
    """Sample one batch of slots; accept good conformers into their state; return the slots to retry.

    ``model=None`` (network off): the ETKDG initial guesses are checked and accepted as they are.
    """
    graphs = [states[k].graph for k, _ in chunk]
    batch = Batch.from_data_list(graphs).to(device)
    sizes = [g.num_nodes for g in graphs]
    if model is None:
        x0 = torch.from_numpy(np.concatenate([inits[k][j] for k, j in chunk])).to(device=device, dtype=dtype)
        res = SampleResult(pos=remove_com(x0, batch.batch, batch.num_graphs),
                           ok=torch.ones(batch.num_graphs, dtype=torch.bool), num_evals=0)
        return _accept_chunk(chunk, states, res, batch, stats)
    attempt = [states[k].attempts.get(j, 0) for k, j in chunk]
    noise = NoiseSource(seeds=[seed_for(seed, states[k].uid, j, a) for (k, j), a in zip(chunk, attempt)],
                        sizes=sizes, device=device, dtype=dtype)
    sig0 = float(sigmas[0])
    if params["init"] == "etkdg":
        x0 = torch.from_numpy(np.concatenate([inits[k][j] for k, j in chunk])).to(device=device, dtype=dtype)
        x0 = x0 + sig0 * noise.draw()
    else:
        std = params["init_std"] if params["init_std"] is not None else sig0
        x0 = std * noise.draw()
    eps = torch.tensor([params["eps"] * params["retry_step_factor"] ** states[k].blowups.get(j, 0)
                        for k, j in chunk], dtype=torch.float64)
    pairs = all_pairs(batch.ptr) if use_pairs and getattr(model, "cutoff", 0) > 0 else None

    def score_fn(pos: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if pairs is not None:
            return model(batch, pos, sigma, pairs=pairs)
        return model(batch, pos, sigma)

    res = sample(score_fn, x0, batch.batch, batch.num_graphs, sigmas.to(dtype), method=params["method"],
                 steps_per_level=params["steps_per_level"], eps=eps.to(device=device, dtype=dtype),
                 final_denoise=params["final_denoise"], clip=params["clip"], churn=params["churn"], noise=noise)
    stats.network_evals += res.num_evals * len(chunk)  # calls made (fewer than planned if every graph blew up)
    return _accept_chunk(chunk, states, res, batch, stats)


def _accept_chunk(chunk, states, res: SampleResult, batch, stats: GenerationStats) -> list[tuple[int, int]]:
    """Check one sampled batch (blow-up, bonds, stereo repair, PoseBusters bounds); accept the good conformers
    into their state; return the slots to retry."""
    stats.samples += len(chunk)
    pos_all = res.pos.detach().to("cpu", torch.float64).numpy()
    ok = res.ok.cpu().numpy()
    ptr = batch.ptr.cpu().numpy()
    retry = []
    # group accepted conformers per molecule for a vectorised stereo check
    per_mol: dict[int, list[tuple[int, np.ndarray]]] = {}
    for g, (k, j) in enumerate(chunk):
        st = states[k]
        st.attempts[j] = st.attempts.get(j, 0) + 1
        pos = pos_all[ptr[g]:ptr[g + 1]]
        if not ok[g] or not _geometry_ok(st, pos):
            st.blowups[j] = st.blowups.get(j, 0) + 1
            if ok[g]:
                stats.bad_geometry += 1
            else:
                stats.blowups += 1
            retry.append((k, j))
            continue
        if st.fragments is not None:  # a salt kept whole: no fragment inside another
            pos = separate_fragments(pos, st.fragments, st.radii)
        per_mol.setdefault(k, []).append((j, pos))
    for k, items in per_mol.items():
        st = states[k]
        pos = np.stack([p for _, p in items])  # [K, N, 3]
        fixed, good, mirrored = repair_stereo(st.spec, pos)
        stats.stereo_mirrored += int(mirrored.sum())
        in_bounds = within_bounds(st.bounds, fixed) if st.bounds is not None else np.ones(len(items), bool)
        for (j, _), p, g_ok, b_ok in zip(items, fixed, good, in_bounds):
            if g_ok and b_ok:
                st.pos[j] = p
                st.fallback.pop(j, None)
            elif g_ok:
                st.fallback[j] = p
                st.blowups[j] = st.blowups.get(j, 0) + 1
                stats.bad_geometry += 1
                retry.append((k, j))
            else:
                stats.stereo_resampled += 1
                retry.append((k, j))
    return retry


def _relax_mmff(mol: Chem.Mol, st: _MolState, workers: int, stats: GenerationStats, source: str,
                progress: Progress | None = None) -> Chem.Mol:
    """MMFF94-minimise every conformer (in blocks of :data:`RELAX_BLOCK`); store energies on the conformers.

    A conformer whose stereo the minimisation changed (strained polycycles: MMFF94 can push a bridgehead
    through its neighbours) is written unrelaxed, with its MMFF94 single-point energy. MMFF typing
    re-perceives aromaticity in place, so the force field works on a copy and the returned Mol keeps the
    input's chemistry (bond types, aromatic flags) with the minimised coordinates.
    """
    work = Chem.Mol(mol)
    if not has_mmff_params(work):
        stats.relax_skipped += 1
        stats.warnings.append(f"{source}: MMFF94 has no parameters for this molecule; written unrelaxed")
        if progress is not None:
            progress.advance(mol.GetNumConformers(), work=0)
        return mol
    energies, _ = minimise(work, threads=workers, uff_fallback=False, block_size=RELAX_BLOCK,
                           on_block=progress.advance if progress is not None else None)
    pos = np.stack([c.GetPositions() for c in work.GetConformers()])
    good = check_stereo(st.spec, pos).ok
    out = Chem.Mol(mol)
    out.RemoveAllConformers()
    for k, (before, after, energy, g) in enumerate(zip(mol.GetConformers(), work.GetConformers(), energies, good)):
        if g:
            c = Chem.Conformer(after)
        else:  # keep the checked, unrelaxed conformer
            stats.relax_reverted += 1
            c = Chem.Conformer(before)
            energy = mmff_energies(work, [before.GetPositions()], conf_ids=[after.GetId()])[0]
        c.SetId(k)
        c.SetDoubleProp(PROP_MMFF_ENERGY, float(energy))
        out.AddConformer(c, assignId=False)
    if not good.all():
        stats.warnings.append(f"{source}: MMFF94 changed the stereo of {int((~good).sum())} conformer(s); "
                              "written unrelaxed")
    return out


def generate(smiles_or_mol, num_confs: int, model=None, seed: int | None = None, preset=None, **kwargs) -> Chem.Mol:
    """Generate conformers for one molecule.

    Args:
        smiles_or_mol: SMILES string or RDKit Mol (hydrogens are added if missing).
        num_confs: number of conformers.
        model: ScoreModel, checkpoint path, or ``None`` for the shipped default.
        seed: random seed (same seed and device give the same coordinates).
        preset: sampler preset name or dict.
        **kwargs: further keyword arguments of :func:`generate_conformers` (``batch_size``, ``device``,
            ``relax``, ``progress``, ``stats``, ...).

    Returns:
        RDKit Mol with explicit hydrogens and up to ``num_confs`` conformers with the input's stereo.

    Raises:
        ConfgenError: invalid SMILES, unsupported molecule, or no conformer could be generated.
    """
    if isinstance(smiles_or_mol, str):
        mol = mol_from_smiles(smiles_or_mol, source="input")
    elif isinstance(smiles_or_mol, Chem.Mol):
        mol = smiles_or_mol
    else:
        raise ConfgenError(f"generate() takes a SMILES string or an RDKit Mol, not {type(smiles_or_mol).__name__}")
    kwargs.setdefault("progress", False)
    (out,) = generate_conformers([mol], [num_confs], model=model, preset=preset, seed=seed, **kwargs)
    return out


class _CallableModule(types.ModuleType):
    """Importing this module sets the attribute ``confgen.generate`` to it, hiding the function
    ``confgen.generate`` of the package's ``__init__``; a callable module keeps ``confgen.generate(...)``
    working after ``import confgen.generate`` (or ``from confgen.generate import ...``)."""

    def __call__(self, smiles_or_mol, num_confs, model=None, seed=None, preset=None, **kwargs):
        return generate(smiles_or_mol, num_confs, model=model, seed=seed, preset=preset, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
