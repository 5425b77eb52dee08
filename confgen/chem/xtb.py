"""Fast GFN2-xTB geometry optimisation (tblite) started from MMFF94 minima.

GEOM's conformers are GFN2-xTB minima (CREST). Minimising an MMFF94 conformer with GFN2-xTB costs one
tblite single point (energy + gradient) per step, about 0.04 CPU-s for a 45-atom drug, so the cost of a
minimisation is its number of steps. A quasi-Newton optimiser that starts from a good Hessian needs few:

* **Coordinates**: the 3N - 6 Cartesian directions orthogonal to the rigid translations and rotations of the
  start geometry (an orthonormal basis, like the "approximate normal coordinates" of xtb's ANCopt, but kept
  fixed for the short walk from an MMFF94 minimum to the nearby GFN2-xTB one).
* **Initial Hessian**: MMFF94's, by central differences of RDKit's analytic MMFF94 gradient (a few
  milliseconds), projected on those coordinates, its eigenvalues floored at ``hess_floor`` so that soft
  torsions cannot take huge steps. MMFF94 and GFN2-xTB agree on bond, angle and torsion stiffness far better
  than a unit or Lindh model Hessian does; where MMFF94 has no parameters a diagonal model Hessian is used.
* **Step**: rational-function optimisation (RFO) with a trust radius that grows on good agreement between
  predicted and actual energy change and shrinks (the step is rejected) when the energy rises; BFGS updates.
* **SCF restart**: every single point starts from the previous step's wavefunction (about 30 % cheaper).
* **Convergence**: xtb's criteria, both of energy change between steps and gradient norm (Hartree,
  Hartree/Bohr), in xtb's named levels. ``scripts/bench_xtb_opt.py`` measures the levels against full
  convergence (RMSD and energy) and the cost per conformer (docs/benchmarks.md): the default, ``vtight``, is
  the loosest level whose worst case on 34 GEOM-Drugs conformers stays within 0.25 A heavy-atom RMSD and
  0.04 kcal/mol of the fully converged minimum (median 3.1 CPU-s for 30-50 atoms); ``normal`` is 30 % cheaper
  with a median error of 0.05 A but single conformers stopped up to 1 A short of the minimum.

Every minimised geometry is checked for a changed bond graph (fragmentation, proton transfer, ring
opening): :func:`bonds_changed`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

from confgen.chem.forcefield import BOHR_PER_ANGSTROM, mmff_hessian

#: xtb's optimisation levels: (energy change [Eh], gradient norm [Eh/Bohr]) as in xtb's ``--opt LEVEL``
LEVELS: dict[str, tuple[float, float]] = {
    "crude": (5e-4, 1e-2),
    "sloppy": (1e-4, 6e-3),
    "loose": (5e-5, 4e-3),
    "lax": (2e-5, 2e-3),
    "normal": (5e-6, 1e-3),
    "tight": (1e-6, 8e-4),
    "vtight": (1e-7, 2e-4),
    "extreme": (5e-8, 5e-5),
}


class XtbError(RuntimeError):
    """tblite failed on a geometry (SCF not converged, unsupported element, ...)."""


@dataclass
class XtbOptions:
    """Settings of :func:`xtb_optimise`.

    Attributes:
        level: convergence level, a key of :data:`LEVELS`.
        max_steps: single points at most (the result is returned unconverged after that).
        trust: initial trust radius (Bohr, norm of the whole step).
        max_trust: largest trust radius (Bohr).
        hess_floor: smallest Hessian eigenvalue (Hartree/Bohr^2) used in a step.
        mmff_hessian: start from MMFF94's Hessian (else a diagonal model Hessian).
    """

    level: str = "vtight"
    max_steps: int = 400
    trust: float = 0.3
    max_trust: float = 1.0
    hess_floor: float = 0.005
    mmff_hessian: bool = True

    def thresholds(self) -> tuple[float, float]:
        if self.level not in LEVELS:
            raise ValueError(f"unknown xtb optimisation level {self.level!r} (choose from {', '.join(LEVELS)})")
        return LEVELS[self.level]


@dataclass
class XtbResult:
    """One minimisation.

    Attributes:
        pos: [N, 3] final geometry (Angstrom).
        energy: final GFN2-xTB energy (Hartree).
        grad_norm: final gradient norm in the optimised coordinates (Hartree/Bohr).
        n_steps: single points computed.
        converged: both criteria of the level met.
    """

    pos: np.ndarray
    energy: float
    grad_norm: float
    n_steps: int
    converged: bool


def internal_basis(pos: np.ndarray, masses: np.ndarray | None = None) -> np.ndarray:
    """[3N, 3N - k] orthonormal basis of the displacements orthogonal to rigid translations and rotations.

    Args:
        pos: [N, 3] geometry; k is 6 (5 for a linear molecule, 3 for one atom).
    """
    n = len(pos)
    centred = pos - pos.mean(0)
    rigid = []
    for axis in range(3):
        t = np.zeros((n, 3))
        t[:, axis] = 1.0
        rigid.append(t.reshape(-1))
        r = np.cross(np.eye(3)[axis], centred)  # [N, 3] infinitesimal rotation about the axis
        rigid.append(r.reshape(-1))
    rigid = np.array(rigid).T  # [3N, 6]
    u, s, _ = np.linalg.svd(rigid, full_matrices=True)
    k = int((s > 1e-6 * s.max()).sum())
    return u[:, k:]


def _model_hessian(n_atoms: int) -> np.ndarray:
    return np.eye(3 * n_atoms) * 0.1


def _rfo_step(hess: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Rational-function step: the lowest eigenvector of the augmented Hessian, scaled to last component 1."""
    m = len(grad)
    aug = np.zeros((m + 1, m + 1))
    aug[:m, :m] = hess
    aug[:m, m] = grad
    aug[m, :m] = grad
    vals, vecs = np.linalg.eigh(aug)
    v = vecs[:, 0]
    if abs(v[-1]) < 1e-12:  # degenerate: fall back to a Newton step on the floored Hessian
        return -np.linalg.solve(hess, grad)
    return v[:m] / v[-1]


class XtbCalculator:
    """A GFN2-xTB energy/gradient function for one molecule (reused across its conformers).

    Args:
        numbers: [N] atomic numbers.
        charge: total charge.
        uhf: number of unpaired electrons.
    """

    def __init__(self, numbers: np.ndarray, charge: float = 0.0, uhf: int = 0):
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.charge = float(charge)
        self.uhf = int(uhf)
        self.n_calls = 0
        self._calc = None
        self._res = None

    @classmethod
    def for_mol(cls, mol: Chem.Mol) -> "XtbCalculator":
        numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
        uhf = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
        return cls(numbers, Chem.GetFormalCharge(mol), uhf)

    def __call__(self, pos_bohr: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (Hartree) and gradient [N, 3] (Hartree/Bohr) at ``pos_bohr`` [N, 3]."""
        from tblite.interface import Calculator

        single_thread_openmp()
        self.n_calls += 1
        try:
            if self._calc is None:
                self._calc = Calculator("GFN2-xTB", self.numbers, pos_bohr, charge=self.charge, uhf=self.uhf)
                self._calc.set("verbosity", 0)
                self._res = None
            else:
                self._calc.update(pos_bohr)
            res = self._calc.singlepoint(self._res) if self._res is not None else self._calc.singlepoint()
        except Exception as exc:  # noqa: BLE001 - tblite raises RuntimeError/ValueError with its own message
            self._calc, self._res = None, None
            raise XtbError(" ".join(str(exc).split())[:160] or exc.__class__.__name__) from None
        self._res = res
        energy = float(res.get("energy"))
        grad = np.asarray(res.get("gradient"), dtype=np.float64)
        if not np.isfinite(energy) or not np.all(np.isfinite(grad)):
            self._calc, self._res = None, None
            raise XtbError("non-finite energy or gradient")
        return energy, grad


_OMP_SET = False


def single_thread_openmp() -> None:
    """Limit tblite's OpenMP to one thread (its threads contend badly with other processes on shared cores)."""
    global _OMP_SET
    if _OMP_SET:
        return
    import ctypes

    for lib in ("libgomp.so.1", "libgomp.dylib", "libomp.dylib"):
        try:
            ctypes.CDLL(lib).omp_set_num_threads(1)
            break
        except (OSError, AttributeError):
            continue
    _OMP_SET = True


def xtb_optimise(calc: XtbCalculator, pos: np.ndarray, hessian: np.ndarray | None = None,
                 options: XtbOptions | None = None, trace: list | None = None) -> XtbResult:
    """Minimise the GFN2-xTB energy from ``pos``.

    Args:
        calc: the molecule's :class:`XtbCalculator`.
        pos: [N, 3] start geometry (Angstrom), e.g. an MMFF94 minimum.
        hessian: [3N, 3N] initial Hessian (Hartree/Bohr^2), e.g. :func:`confgen.chem.forcefield.mmff_hessian`; None: a model Hessian.
        options: :class:`XtbOptions`.
        trace: if a list, every accepted point is appended as ``(n_steps, energy, grad_norm, energy_change,
            pos [N, 3] Angstrom)`` (one run with a tight level then shows where each looser level would stop).

    Returns:
        :class:`XtbResult`.

    Raises:
        XtbError: tblite failed.
    """
    opt = options or XtbOptions()
    e_conv, g_conv = opt.thresholds()
    x0 = np.asarray(pos, dtype=np.float64).reshape(-1) * BOHR_PER_ANGSTROM  # [3N] Bohr
    n_atoms = len(x0) // 3
    if n_atoms == 1:
        energy, grad = calc(x0.reshape(-1, 3))
        return XtbResult(np.asarray(pos, dtype=np.float64).copy(), energy, 0.0, 1, True)
    basis = internal_basis(x0.reshape(-1, 3))  # [3N, M]
    h_full = hessian if hessian is not None else _model_hessian(n_atoms)
    hq = basis.T @ h_full @ basis  # [M, M]
    vals, vecs = np.linalg.eigh(0.5 * (hq + hq.T))
    hq = (vecs * np.maximum(vals, opt.hess_floor)) @ vecs.T

    q = np.zeros(basis.shape[1])  # displacement from x0 in the basis
    energy, grad = calc(x0.reshape(-1, 3))
    gq = basis.T @ grad.reshape(-1)
    n_steps, trust = 1, opt.trust
    e_change = np.inf
    while n_steps < opt.max_steps:
        g_norm = float(np.linalg.norm(gq))
        if trace is not None:
            trace.append((n_steps, energy, g_norm, e_change, (x0 + basis @ q).reshape(-1, 3) / BOHR_PER_ANGSTROM))
        if g_norm < g_conv and abs(e_change) < e_conv:
            return XtbResult((x0 + basis @ q).reshape(-1, 3) / BOHR_PER_ANGSTROM, energy, g_norm, n_steps, True)
        step = _rfo_step(hq, gq)
        length = float(np.linalg.norm(step))
        if length > trust:
            step *= trust / length
            length = trust
        predicted = float(gq @ step + 0.5 * step @ hq @ step)
        new_q = q + step
        new_energy, new_grad = calc((x0 + basis @ new_q).reshape(-1, 3))
        n_steps += 1
        new_gq = basis.T @ new_grad.reshape(-1)
        actual = new_energy - energy
        # BFGS update with the new gradient, whether the step is taken or not (it is information either way)
        y = new_gq - gq
        sy = float(step @ y)
        if sy > 1e-10:
            hs = hq @ step
            hq = hq + np.outer(y, y) / sy - np.outer(hs, hs) / float(step @ hs)
        ratio = actual / predicted if predicted < 0 else -1.0
        if actual > 1e-7 and actual > abs(e_conv):  # energy went up: reject, shrink the trust radius
            trust = max(0.25 * length, 0.01)
            calc._res = None  # the wavefunction of the rejected point is a poorer guess than a fresh one
            continue
        if ratio > 0.75 and length > 0.8 * trust:
            trust = min(2.0 * trust, opt.max_trust)
        elif ratio < 0.25:
            trust = max(0.5 * trust, 0.01)
        q, energy, gq, e_change = new_q, new_energy, new_gq, actual
    g_norm = float(np.linalg.norm(gq))
    converged = g_norm < g_conv and abs(e_change) < e_conv
    return XtbResult((x0 + basis @ q).reshape(-1, 3) / BOHR_PER_ANGSTROM, energy, g_norm, n_steps, converged)


def bonds_changed(mol: Chem.Mol, pos: np.ndarray, factor: float = 1.25) -> list[tuple[int, int]]:
    """Atom pairs whose bonding at ``pos`` differs from the graph of ``mol``.

    A pair counts as bonded when its distance is below ``factor`` x the sum of covalent radii. Returns the
    pairs that are bonded in one and not the other (empty list: same graph).
    """
    table = Chem.GetPeriodicTable()
    radii = np.array([table.GetRcovalent(a.GetAtomicNum()) for a in mol.GetAtoms()])
    pos = np.asarray(pos, dtype=np.float64)
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    close = dist < factor * (radii[:, None] + radii[None])
    np.fill_diagonal(close, False)
    graph = np.zeros_like(close)
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        graph[i, j] = graph[j, i] = True
    i, j = np.nonzero(np.triu(close != graph, 1))
    return list(zip(i.tolist(), j.tolist()))


def xtb_minimise(mol: Chem.Mol, level: str = "vtight", max_steps: int = 400) -> tuple[np.ndarray, list[str | None]]:
    """GFN2-xTB minimisation of every conformer in place (:func:`xtb_optimise` from the MMFF94 Hessian).

    Args:
        mol: molecule with explicit hydrogens and conformers (ideally MMFF94 minima).
        level: xtb convergence level (:data:`LEVELS`).
        max_steps: single points per conformer at most.

    Returns:
        ``(energies [C] in Hartree, reasons [C])``: a reason is None for a good conformer, else why it failed
        (SCF failure, a changed bond graph after minimisation, no convergence); failed conformers keep
        their start geometry and a NaN energy.
    """
    calc = XtbCalculator.for_mol(mol)
    options = XtbOptions(level=level, max_steps=max_steps)
    energies = np.full(mol.GetNumConformers(), np.nan)
    reasons: list[str | None] = []
    for k, conf in enumerate(mol.GetConformers()):
        try:
            res = xtb_optimise(calc, conf.GetPositions(), mmff_hessian(mol, conf.GetId()), options)
        except XtbError as exc:
            reasons.append(f"GFN2-xTB failed: {exc}")
            continue
        changed = bonds_changed(mol, res.pos)
        if changed:
            i, j = changed[0]
            reasons.append(f"bond graph changed during GFN2-xTB minimisation (atoms {i}-{j}"
                           + (f" and {len(changed) - 1} more pairs)" if len(changed) > 1 else ")"))
            continue
        if not res.converged:
            reasons.append(f"GFN2-xTB minimisation not converged in {max_steps} steps")
            continue
        conf.SetPositions(np.ascontiguousarray(res.pos))
        energies[k] = res.energy
        reasons.append(None)
    return energies, reasons
