"""Force fields: MMFF94 (UFF where MMFF94 has no parameters) minimisation, energies and Hessian, once.

RDKit's MMFF94 typing re-perceives aromaticity on the Mol it is given (in place). :func:`minimise` and
:func:`mmff_energies` type the Mol they are given, as confgen always has; a caller that must keep the input's
chemistry (bond types, aromatic flags) passes a copy and copies the coordinates back. :func:`mmff_hessian`
works on its own copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdForceFieldHelpers

from confgen.chem.conformers import with_conformers
from confgen.rdlog import quiet_rdkit

__all__ = ["KCAL_PER_HARTREE", "BOHR_PER_ANGSTROM", "DEFAULT_MAX_ITERS", "has_mmff_params", "minimise",
           "mmff_energies", "mmff_hessian"]

KCAL_PER_HARTREE = 627.509474
BOHR_PER_ANGSTROM = 1.0 / 0.529177210903
#: minimisation steps per conformer at most
DEFAULT_MAX_ITERS = 2000


def has_mmff_params(mol: Chem.Mol) -> bool:
    """Whether MMFF94 has parameters for every atom and term of ``mol``."""
    return bool(rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol))


def minimise(mol: Chem.Mol, *, max_iters: int = DEFAULT_MAX_ITERS, threads: int = 1, uff_fallback: bool = True,
             block_size: int | None = None,
             on_block: Callable[[int], None] | None = None) -> tuple[np.ndarray, str] | None:
    """Minimise every conformer of ``mol`` in place with MMFF94 (or UFF, see ``uff_fallback``).

    Args:
        mol: Mol with explicit hydrogens and conformers (typed in place, see the module docstring).
        max_iters: minimisation steps per conformer at most.
        threads: RDKit threads (the result does not depend on it).
        uff_fallback: use UFF where MMFF94 lacks parameters (e.g. boron).
        block_size: conformers per RDKit call (``None``: all at once); ``on_block(k)`` is called after each.

    Returns:
        ``(energies [C] in kcal/mol, "MMFF94" or "UFF")``, or ``None`` where no allowed force field has
        parameters for the molecule (``mol`` is then unchanged).
    """
    if has_mmff_params(mol):
        optimise, name = rdForceFieldHelpers.MMFFOptimizeMoleculeConfs, "MMFF94"
    elif uff_fallback and rdForceFieldHelpers.UFFHasAllMoleculeParams(mol):
        optimise, name = rdForceFieldHelpers.UFFOptimizeMoleculeConfs, "UFF"
    else:
        return None
    if block_size is None:
        with quiet_rdkit():
            results = optimise(mol, numThreads=threads, maxIters=max_iters)
        if on_block is not None:
            on_block(mol.GetNumConformers())
    else:
        confs = list(mol.GetConformers())
        results = []
        for start in range(0, len(confs), block_size):
            block = confs[start:start + block_size]
            part = with_conformers(mol, block)
            with quiet_rdkit():
                results += optimise(part, numThreads=threads, maxIters=max_iters)
            for conf, done in zip(block, part.GetConformers()):
                conf.SetPositions(done.GetPositions())
            if on_block is not None:
                on_block(len(block))
    return np.array([e for _, e in results], dtype=np.float64), name


def mmff_energies(mol: Chem.Mol, positions: Sequence[np.ndarray] | None = None,
                  conf_ids: Sequence[int] | None = None) -> np.ndarray | None:
    """MMFF94 single-point energies (kcal/mol), or ``None`` without parameters (``mol`` is typed in place).

    Args:
        mol: Mol with explicit hydrogens and conformers.
        positions: ``[N, 3]`` geometries to evaluate (default: those of the conformers).
        conf_ids: the conformer each force field is set up on (default: every conformer, in order; with
            ``positions``, one per position).

    Returns:
        ``[C]`` energies, one per conformer or per position.
    """
    with quiet_rdkit():
        props = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol)
    if props is None:
        return None
    if conf_ids is None:
        conf_ids = [c.GetId() for c in mol.GetConformers()]
    out = []
    for k, cid in enumerate(conf_ids):
        ff = rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, props, confId=cid)
        if positions is None:
            out.append(ff.CalcEnergy())
        else:
            out.append(ff.CalcEnergy(np.asarray(positions[k], dtype=np.float64).reshape(-1).tolist()))
    return np.array(out, dtype=np.float64)


def mmff_hessian(mol: Chem.Mol, conf_id: int = -1, step: float = 1e-4) -> np.ndarray | None:
    """[3N, 3N] MMFF94 Hessian (Hartree/Bohr^2) at a conformer, by central differences of analytic gradients.

    Returns None where MMFF94 has no parameters for the molecule. ``mol`` is not modified (MMFF94 typing
    re-perceives aromaticity in place, so it works on a copy).
    """
    mol = Chem.Mol(mol)
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol)
    if props is None:
        return None
    ff = rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, props, confId=conf_id)
    x0 = np.array(mol.GetConformer(conf_id).GetPositions(), dtype=np.float64).reshape(-1)
    n = x0.size
    hess = np.empty((n, n))
    for i in range(n):
        x = x0.copy()
        x[i] += step
        g_plus = np.asarray(ff.CalcGrad(x.tolist()))
        x[i] -= 2 * step
        g_minus = np.asarray(ff.CalcGrad(x.tolist()))
        hess[i] = (g_plus - g_minus) / (2 * step)
    hess = 0.5 * (hess + hess.T)  # kcal/mol/A^2
    return hess / KCAL_PER_HARTREE / BOHR_PER_ANGSTROM**2
