"""The generation pipeline: a :class:`~confgen.generation.request.GenerationRequest` through its stages.

:func:`generate_conformers` runs, for many molecules x conformers at once:

1. **initial guess** (:mod:`confgen.generation.initial_guess`): preset init ``etkdg``: RDKit ETKDG conformers
   (a preset with ``oversample`` k > 1 embeds ceil(k x n) of them and keeps the n most diverse); init
   ``noise``: pure noise. Where ETKDG cannot embed a guess (strained polycycles such as fused cyclopropanes),
   the ``fast`` preset samples that conformer from pure noise over the model's whole noise range instead
   (``noise_fallback_levels``): the score model needs no embedding to start from;
2. **sampling** (:mod:`confgen.generation.sampler`): one batch per forward pass (packed by size on a GPU, fewer
   where memory runs out, :mod:`confgen.batching`), a sampler of :mod:`confgen.sampling` on the model's score;
3. **check/repair** (:mod:`confgen.generation.checks`): blow-ups, broken bonds, stereo (mirrored or resampled),
   secondary amides turned trans (preset ``trans_amides``), PoseBusters' bounds (with MMFF94 relaxation, on the
   relaxed coordinates only: step 5); failing slots go back to step 1 (a new ETKDG guess) with a smaller step size;
4. **selection** (:func:`confgen.chem.selection.most_diverse`): candidates sampled from noise (no ETKDG guess to
   preselect) are reduced to the n most diverse after sampling; with the preset's ``energy_window`` and MMFF94
   relaxation, every candidate is relaxed first (step 5) and the n most diverse within the window of the lowest
   MMFF94 energy are kept (:func:`confgen.chem.selection.most_diverse_in_window`);
5. **relaxation** (:mod:`confgen.generation.relaxation`): MMFF94 (``relax="mmff"``, the default; energy stored
   as the conformer property ``confgen_mmff_energy``), followed by a second stereo check: a conformer whose
   stereo the minimisation changed (strained bridgeheads) is returned unrelaxed. A conformer whose relaxed
   coordinates are outside PoseBusters' bounds goes back to step 1 like any conformer the checks send back, and
   is relaxed again (:func:`_relax_in_bounds`; for every preset, the candidates of ``edm-select`` included).

A conformer still failing after ``max_retries`` retries is dropped (wrong stereo, broken bonds) or, when only
the PoseBusters limits were missed, written as last sampled; both are counted in
:class:`~confgen.generation.stats.GenerationStats`, and every returned conformer carries the conformer property
``confgen_posebusters_bounds_ok`` (1 or 0), judged on its final (relaxed) coordinates.

Unspecified stereo: a molecule whose stereocentres or stereo bonds are not all specified gets one stereoisomer
for all its conformers (``stereo="one"``, the default; :func:`confgen.io.resolve_stereo`) or is refused
(``stereo="refuse"``); enumerating stereoisomers as separate molecules is done on the inputs before generation
(``confgen sample --stereo enumerate``).

Progress: one bar (:class:`confgen.progress.Progress`) with a fixed total over embedding, sampling and
relaxation (and writing, when the caller passes its own bar).

Reproducibility: every conformer draws its noise from its own generator seeded by ``(seed, molecule id,
conformer, attempt)``, and ETKDG initial guesses are seeded by ``(seed, molecule id, round)``: the same seed and
device give the same coordinates, whatever the batch size or the other molecules of the run (up to
floating-point summation order inside the network).
"""

from __future__ import annotations

import dataclasses
import secrets
from contextlib import contextmanager

import numpy as np
import torch
from rdkit import Chem

from confgen.batching import BatchPacker, is_out_of_memory, sample_cost
from confgen.config import SamplerPreset
from confgen.devices import resolve_device
from confgen.errors import ConfgenError, InputError
from confgen.generation.checks import accept_chunk
from confgen.generation.initial_guess import embed_round
from confgen.generation.relaxation import relax_mmff
from confgen.generation.request import GenerationRequest, resolve_model
from confgen.generation.sampler import noise_levels, sample_chunk
from confgen.generation.state import MoleculeState, Relaxed, prepare_molecule
from confgen.generation.stats import GenerationStats
from confgen.chem.conformers import with_positions
from confgen.chem.forcefield import has_mmff_params
from confgen.chem.selection import most_diverse, most_diverse_in_window
from confgen.io import PROP_MMFF_ENERGY, PROP_WITHIN_BOUNDS, mol_from_smiles
from confgen.progress import Progress
from confgen.validity import within_bounds


def generate_conformers(request: GenerationRequest, *, errors: list | None = None,
                        stats: GenerationStats | None = None) -> list[Chem.Mol | None]:
    """Generate conformers for the molecules of a request.

    Args:
        request: molecules, counts and settings.
        errors: receives one :class:`InputError` per molecule that failed; if ``None`` the first is raised.
        stats: receives the counters of this call.

    Returns:
        One Mol per input (explicit H, conformers with ids 0..k-1, k <= requested) or ``None`` for a failed one.

    Raises:
        ConfgenError: missing model, unavailable device, or (``errors`` is None) a failed molecule.
    """
    req = request
    preset = req.preset
    if preset.small_preset is not None:
        return _generate_per_molecule(req, errors=errors, stats=stats)
    dev = resolve_device(req.device)
    stats = stats if stats is not None else GenerationStats()
    seed = secrets.randbits(31) if req.seed is None else req.seed
    stats.seed = int(seed)
    nums = req.num_confs
    stats.molecules += len(req.mols)
    stats.requested += sum(nums)
    states: list[MoleculeState | None] = []
    for i, mol in enumerate(req.mols):
        try:
            states.append(prepare_molecule(mol, nums[i], req.ids[i], req.sources[i], preset.oversample,
                                           stereo=req.stereo, notes=stats.warnings,
                                           trans_amides=preset.trans_amides))
        except InputError as exc:
            if errors is None:
                raise
            errors.append(exc)
            states.append(None)
    with _run_bar(req) as bar:
        live_idx = [i for i, s in enumerate(states) if s is not None and s.n_requested > 0]
        live = [states[i] for i in live_idx]
        if live:
            model = resolve_model(req.model, dev) if req.network else None
            sample = dict(model=model, preset=preset, seed=int(seed), batch_size=req.batch_size, device=dev,
                          workers=req.workers, progress=bar, stats=stats, check_bounds=req.relax != "mmff")
            _sample_all(live, **sample)
            _select_and_relax(live, sample, relax=req.relax, sources=[req.sources[i] for i in live_idx])
        return _finish(states, req, stats=stats, errors=errors)


@contextmanager
def _run_bar(req: GenerationRequest):
    """The bar of one run: the request's own (closed at the end) or the caller's; on success, the part of this
    run's budget its work did not need (failed inputs, dropped conformers) is settled."""
    own = not isinstance(req.progress, Progress)
    budgets = req.progress_budgets()
    bar = Progress(budgets, enabled=bool(req.progress)) if own else req.progress
    before = dict(bar.done)
    try:
        yield bar
        bar.settle(budgets, before)
    finally:
        if own:
            bar.close()


def _generate_per_molecule(req: GenerationRequest, *, errors: list | None,
                           stats: GenerationStats | None) -> list[Chem.Mol | None]:
    """A preset that chooses per molecule (``small_preset``): one run per chosen preset, each with that preset's
    model unless the request names one (:meth:`confgen.config.SamplerPreset.for_molecule`); outputs in input
    order, one bar and one set of counters over both."""
    stats = stats if stats is not None else GenerationStats()
    seed = secrets.randbits(31) if req.seed is None else req.seed
    groups: dict[int, list[int]] = {}
    choices = req.preset.choices()
    for i, mol in enumerate(req.mols):
        heavy = mol.GetNumHeavyAtoms() if isinstance(mol, Chem.Mol) else 0
        groups.setdefault(choices.index(req.preset.for_molecule(heavy, req.relax)), []).append(i)
    out: list[Chem.Mol | None] = [None] * len(req.mols)
    with _run_bar(req) as bar:
        for c, idx in sorted(groups.items()):
            sub = dataclasses.replace(req, mols=[req.mols[i] for i in idx], num_confs=[req.num_confs[i] for i in idx],
                                      ids=[req.ids[i] for i in idx], sources=[req.sources[i] for i in idx],
                                      preset=choices[c], seed=seed, progress=bar)
            for i, mol in zip(idx, generate_conformers(sub, errors=errors, stats=stats)):
                out[i] = mol
    stats.seed = int(seed)
    return out


def _sample_all(states: list[MoleculeState], *, model, preset: SamplerPreset, seed: int, batch_size: int,
                device: torch.device, workers: int, progress: Progress, stats: GenerationStats,
                check_bounds: bool = True, slots: list[tuple[int, int]] | None = None, first_round: int = 0) -> None:
    """Initial guess, sampling and check/repair of every requested slot of every molecule (or of ``slots``:
    (state index, slot) pairs), in rounds from ``first_round`` until every slot is accepted or out of retries
    (fills ``state.pos``). ``check_bounds=False`` (MMFF94 follows): PoseBusters' bounds are judged on the relaxed
    coordinates only (:func:`accept_chunk`, :func:`_relax_in_bounds`).

    ``model=None``: the network is off; the ETKDG initial guesses are taken as they are.
    """
    bar = progress
    if model is None:
        dtype, sigmas = torch.float64, None
    else:
        dtype = next(model.parameters()).dtype
        sigmas = noise_levels(preset, model)
    fallback = preset.noise_fallback()
    fb_sigmas = noise_levels(fallback, model) if fallback else None
    refine = preset.etkdg_refinement() if model is not None else None  # noise starts: ETKDG-seeded retries
    refine_sigmas = noise_levels(refine, model) if refine else None
    pending = [(k, j) for k, st in enumerate(states) for j in range(st.n_requested)] if slots is None else slots
    round_ = first_round
    packer = BatchPacker(batch_size, by_size=device.type == "cuda")
    while pending:
        pending = [(k, j) for k, j in pending if not states[k].too_large]
        inits: dict[int, dict[int, np.ndarray]] = {}
        from_noise: list[tuple[int, int]] = []
        groups = None
        if preset.init == "etkdg":
            with bar.phase("embedding"):
                pending, from_noise = embed_round(states, pending, inits, seed=seed, round_=round_,
                                                  workers=workers, fallback=fallback, stats=stats, progress=bar)
        elif refine is not None and round_ > 0 and pending:  # noise start: retries from ETKDG guesses
            with bar.phase("embedding"):
                guess, from_noise = embed_round(states, pending, inits, seed=seed, round_=round_, workers=workers,
                                                fallback=fallback or preset, stats=stats, progress=bar)
            noise_group = (from_noise, fallback, fb_sigmas) if fallback else (from_noise, preset, sigmas)
            groups = ((guess, refine, refine_sigmas), noise_group)
        retry_slots: list[tuple[int, int]] = []
        groups = groups or ((pending, preset, sigmas), (from_noise, fallback, fb_sigmas))
        with bar.phase("sampling"):
            for todo, p_, sig_ in groups:
                queue, costs = packer.order(todo, [sample_cost(states[k].graph.num_nodes) for k, _ in todo])
                while queue:
                    n = packer.take(costs)
                    chunk = queue[:n]
                    try:
                        res, batch = sample_chunk(chunk, states, inits, model=model, preset=p_, sigmas=sig_,
                                                  seed=seed, device=device, dtype=dtype)
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
                    # calls made (fewer than planned if every graph blew up)
                    stats.network_evals += res.num_evals * len(chunk)
                    again = accept_chunk(chunk, states, res, batch, stats, check_bounds=check_bounds)
                    queue, costs = queue[n:], costs[n:]
                    retry_slots += again
                    bar.advance(len(chunk) - len(again))
            pending = []
            retry_slots = [(k, j) for k, j in retry_slots if not states[k].too_large]
            for k, j in retry_slots:
                st = states[k]
                if st.attempts[j] > preset.max_retries:
                    if j in st.fallback:  # right stereo, sane bonds, but outside PoseBusters' bounds
                        st.pos[j] = st.fallback.pop(j)
                    else:
                        stats.dropped += 1
                    bar.advance(1)
                else:
                    pending.append((k, j))
        round_ += 1


def _keep_slots(st: MoleculeState, slots) -> None:
    """Keep only ``slots`` of a molecule's candidates (the selection's choice)."""
    keep = set(slots)
    st.pos = {j: p for j, p in st.pos.items() if j in keep}
    st.relaxed = {j: r for j, r in st.relaxed.items() if j in keep}


def _select_and_relax(states: list[MoleculeState], sample: dict, *, relax: str, sources: list[str]) -> None:
    """Stages 4 and 5 for the sampled molecules: selection of candidates and MMFF94 relaxation.

    A molecule with more candidates than conformers asked for (sampled from noise, ``oversample`` > 1) keeps the
    n most diverse of their sampled coordinates, unless the preset has an ``energy_window`` and MMFF94 follows:
    then every candidate is relaxed and the n most diverse within the window of the lowest MMFF94 energy are
    kept. With ``relax="mmff"`` every conformer is relaxed through :func:`_relax_in_bounds`; a molecule MMFF94
    has no parameters for is written unrelaxed (with a warning).
    """
    preset, bar = sample["preset"], sample["progress"]
    window = preset.energy_window if relax == "mmff" else None
    typed = {k: relax == "mmff" and has_mmff_params(Chem.Mol(st.mol)) for k, st in enumerate(states)}
    for k, st in enumerate(states):
        if len(st.pos) > st.n_keep and (window is None or not typed[k]):
            with bar.phase("sampling"):
                slots = sorted(st.pos)
                _keep_slots(st, [slots[c] for c in most_diverse(st.mol, [st.pos[j] for j in slots], st.n_keep)])
    if relax != "mmff":
        return
    for k, st in enumerate(states):
        if st.pos and not typed[k]:  # the warning and counter of a molecule without MMFF94 parameters
            with bar.phase("relaxing"):
                relax_mmff(with_positions(st.mol, [st.pos[j] for j in sorted(st.pos)]), st, sample["workers"],
                           sample["stats"], sources[k], bar)
    _relax_in_bounds(states, sample, sources=sources, only=[k for k in typed if typed[k]])
    for st in states:
        if len(st.pos) > st.n_keep:  # energy window: every candidate was relaxed
            with bar.phase("sampling"):
                slots = sorted(st.pos)
                chosen = most_diverse_in_window(st.mol, [st.relaxed[j].pos for j in slots],
                                                [st.relaxed[j].energy for j in slots], st.n_keep, window)
                _keep_slots(st, [slots[c] for c in chosen])


def _relax_in_bounds(states: list[MoleculeState], sample: dict, *, sources: list[str], only: list[int]) -> None:
    """MMFF94 relaxation of every sampled slot of the molecules ``only`` (indices into ``states``), with
    PoseBusters' bounds judged on the relaxed coordinates.

    Every sampled slot is relaxed (into ``state.relaxed``); a slot whose relaxed conformer is outside the bounds
    is sampled again (as a conformer the checks sent back: :func:`_sample_all` from its second round, so
    ``retry_from_etkdg`` applies) and relaxed again, until it is inside or has had ``max_retries`` retries; the
    last relaxed sample is kept then (and marked outside by :func:`_finish`). A molecule without bounds is
    relaxed once. ``sample``: the keyword arguments of :func:`_sample_all`.
    """
    preset, stats, bar = sample["preset"], sample["stats"], sample["progress"]
    todo = [k for k in only if states[k].pos]
    while todo:
        again: list[tuple[int, int]] = []
        for k in todo:
            st = states[k]
            slots = [j for j in sorted(st.pos) if j not in st.relaxed]
            if not slots:
                continue
            mol = with_positions(st.mol, [st.pos[j] for j in slots])
            flags: list[bool] = []
            with bar.phase("relaxing"):  # counters of retried samples do not count: only what is written
                mol = relax_mmff(mol, st, sample["workers"], GenerationStats(), sources[k], bar, reverted=flags)
            confs = list(mol.GetConformers())
            pos = np.stack([c.GetPositions() for c in confs])
            inside = within_bounds(st.bounds, pos) if st.bounds is not None else np.ones(len(pos), bool)
            for j, p, conf, flag, ok in zip(slots, pos, confs, flags, inside):
                st.relaxed[j] = Relaxed(p, conf.GetDoubleProp(PROP_MMFF_ENERGY), flag, bool(ok))
                if not ok and st.attempts.get(j, 0) <= preset.max_retries:
                    again.append((k, j))
        if not again:
            return
        kept = {}
        for k, j in again:  # the slot's sample is the fallback should no retry pass the checks
            st = states[k]
            st.fallback[j] = st.pos.pop(j)
            kept[(k, j)] = (st.fallback[j], st.relaxed.pop(j))
            stats.bad_geometry += 1
        _sample_all(states, **sample, slots=again, first_round=1)
        for (k, j), (old, relaxed) in kept.items():
            if states[k].pos.get(j) is old:  # no retry passed the checks: the old sample came back
                states[k].relaxed[j] = relaxed
        todo = sorted({k for k, _ in again})


def _finish(states: list[MoleculeState | None], req: GenerationRequest, *, stats: GenerationStats,
            errors: list | None) -> list:
    """Mols from the selected (and relaxed) states: energies, bounds marks, failures."""
    out: list[Chem.Mol | None] = []
    for i, st in enumerate(states):
        if st is None:
            out.append(None)
            stats.failed_molecules += 1
            continue
        slots = sorted(st.pos)
        mol = with_positions(st.mol, [st.relaxed[j].pos if j in st.relaxed else st.pos[j] for j in slots])
        unrelaxed = [j for j in slots if j not in st.relaxed]  # relaxed slots were judged when relaxed
        if unrelaxed and st.bounds is not None:
            judged = dict(zip(unrelaxed, within_bounds(st.bounds, np.stack([st.pos[j] for j in unrelaxed]))))
        else:
            judged = {j: True for j in unrelaxed}
        for conf, j in zip(mol.GetConformers(), slots):
            if j in st.relaxed:
                conf.SetDoubleProp(PROP_MMFF_ENERGY, float(st.relaxed[j].energy))
                stats.relax_reverted += int(st.relaxed[j].reverted)
            inside = st.relaxed[j].inside if j in st.relaxed else bool(judged[j])
            conf.SetIntProp(PROP_WITHIN_BOUNDS, int(inside))
            stats.outside_bounds += int(not inside)
        failure = None
        if st.too_large:
            failure = (f"too large for the {st.too_large} memory ({mol.GetNumAtoms()} atoms: one conformer alone "
                       "does not fit); skipped")
        elif mol.GetNumConformers() == 0 and st.n_keep > 0:
            failure = f"no conformer passed the checks after {req.preset.max_retries} retries"
        if failure is not None:
            exc = InputError(failure, source=req.sources[i], smiles=Chem.MolToSmiles(Chem.RemoveHs(st.mol)))
            if errors is None:
                raise exc
            errors.append(exc)
            out.append(None)
            stats.failed_molecules += 1
            continue
        if mol.GetNumConformers() < st.n_keep:
            stats.warnings.append(f"{req.sources[i]}: {mol.GetNumConformers()} of {st.n_keep} conformers written "
                                  "(the others failed the checks after every retry)")
        stats.written += mol.GetNumConformers()
        out.append(mol)
    return out


def generate(smiles_or_mol, num_confs: int, model=None, seed: int | None = None, preset=None, *,
             errors: list | None = None, stats: GenerationStats | None = None, **settings) -> Chem.Mol:
    """Generate conformers for one molecule.

    Args:
        smiles_or_mol: SMILES string or RDKit Mol (hydrogens are added if missing).
        num_confs: number of conformers.
        model: a score model, checkpoint path, or ``None`` for the shipped default.
        seed: random seed (same seed and device give the same coordinates).
        preset: sampler preset name or :class:`confgen.config.SamplerPreset`.
        errors, stats: as :func:`generate_conformers`.
        **settings: further fields of :class:`GenerationRequest` (``batch_size``, ``device``, ``relax``,
            ``progress`` (default off), ...).

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
    settings.setdefault("progress", False)
    request = GenerationRequest([mol], [num_confs], model=model, preset=preset, seed=seed, **settings)
    (out,) = generate_conformers(request, errors=errors, stats=stats)
    return out
