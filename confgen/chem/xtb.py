"""Fast GFN2-xTB geometry optimisation (tblite) started from MMFF94 minima.

GEOM's conformers are GFN2-xTB minima (CREST). Minimising an MMFF94 conformer with GFN2-xTB costs one
tblite single point (energy + gradient) per step, about 0.04 CPU-s for a 45-atom drug, so the cost of a
minimisation is its number of steps. A quasi-Newton optimiser that starts from a good Hessian needs few:

* **Coordinates**: ``coords="cartesian"``: the 3N - 6 Cartesian directions orthogonal to the rigid
  translations and rotations of the start geometry (an orthonormal basis, like the "approximate normal
  coordinates" of xtb's ANCopt, but kept fixed for the short walk from an MMFF94 minimum to the nearby GFN2-xTB
  one). ``coords="internal"`` (what :func:`xtb_minimise` uses): delocalised internal coordinates of the
  molecule's bonds, angles and dihedrals (:mod:`confgen.chem.internals`), fixed at the start geometry, with an
  iterative back-transformation of each step to Cartesians. A torsion is one coordinate there, so soft rotors
  need far fewer steps (``scripts/bench_xtb_coords.py``: docs/benchmarks.md, "Internal coordinates").
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
from confgen.chem.internals import LINEAR_DEG, differences, max_angle_deg, primitives, values, wilson_b

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
        coords: "cartesian" (the 3N - 6 rigid-motion-free Cartesian directions) or "internal" (delocalised
            internal coordinates of bonds, angles and dihedrals; needs the molecule's primitives).
        internal_hess_floor: smallest Hessian eigenvalue in internal coordinates (Hartree/Bohr^2 or /rad^2).
    """

    level: str = "vtight"
    max_steps: int = 400
    trust: float = 0.3
    max_trust: float = 1.0
    hess_floor: float = 0.005
    mmff_hessian: bool = True
    coords: str = "cartesian"
    internal_hess_floor: float = 0.002

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


class _CartesianCoords:
    """Steps along the fixed orthonormal basis of :func:`internal_basis` at the start geometry."""

    def __init__(self, x0: np.ndarray):
        self.basis = internal_basis(x0.reshape(-1, 3))  # [3N, M]

    def hessian(self, h_full: np.ndarray) -> np.ndarray:
        return self.basis.T @ h_full @ self.basis

    def gradient(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:  # noqa: ARG002 - same basis everywhere
        return self.basis.T @ grad

    def displace(self, x: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x + self.basis @ step, step


class _DelocalisedCoords:
    """Delocalised internal coordinates (:mod:`confgen.chem.internals`) fixed at the start geometry: the
    eigenvectors U of G = B B^T with non-zero eigenvalues; s = U^T q for the primitive values q. Gradients are
    (B_s B_s^T)^-1 B_s g with B_s = U^T B; a step in s is turned into Cartesians by iterating x += B_s^+ (residual)
    (the actual step taken, not the requested one, then enters the BFGS update)."""

    def __init__(self, x0: np.ndarray, prims, rank: int):
        self.prims = prims
        self.x0 = x0
        b_mat = wilson_b(x0.reshape(-1, 3), prims)
        vals, vecs = np.linalg.eigh(b_mat @ b_mat.T)
        self.u = vecs[:, np.argsort(vals)[::-1][:rank]]  # [P, M]
        self.ok = bool(vals.max() > 0 and np.sort(vals)[::-1][rank - 1] > 1e-6 * vals.max())
        self._cache: tuple[bytes, np.ndarray] | None = None

    def _pinv(self, x: np.ndarray) -> np.ndarray:
        """[3N, M] B_s^+ = B_s^T (B_s B_s^T)^-1 at ``x``."""
        key = x.tobytes()
        if self._cache is None or self._cache[0] != key:
            bs = self.u.T @ wilson_b(x.reshape(-1, 3), self.prims)
            self._cache = (key, np.linalg.solve(bs @ bs.T, bs).T)
        return self._cache[1]

    def hessian(self, h_full: np.ndarray) -> np.ndarray:
        p = self._pinv(self.x0)
        return p.T @ h_full @ p

    def gradient(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return self._pinv(x).T @ grad

    def displace(self, x: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q_start = values(x.reshape(-1, 3), self.prims)
        pinv = self._pinv(x)  # kept for every iteration (one B matrix per step; converges for short steps)
        first = x + pinv @ step
        best, best_res, xk, prev = first, np.inf, first, np.inf
        for _ in range(50):
            taken = self.u.T @ differences(values(xk.reshape(-1, 3), self.prims), q_start, self.prims)
            res = float(np.linalg.norm(step - taken))
            if res < best_res:
                best, best_res = xk, res
            if res < 1e-7 or res > prev:
                break
            prev = res
            xk = xk + pinv @ (step - taken)
        taken = self.u.T @ differences(values(best.reshape(-1, 3), self.prims), q_start, self.prims)
        return best, taken


def xtb_optimise(calc: XtbCalculator, pos: np.ndarray, hessian: np.ndarray | None = None,
                 options: XtbOptions | None = None, trace: list | None = None, prims=None) -> XtbResult:
    """Minimise the GFN2-xTB energy from ``pos``.

    Args:
        calc: the molecule's :class:`XtbCalculator`.
        pos: [N, 3] start geometry (Angstrom), e.g. an MMFF94 minimum.
        hessian: [3N, 3N] initial Hessian (Hartree/Bohr^2), e.g. :func:`confgen.chem.forcefield.mmff_hessian`; None: a model Hessian.
        options: :class:`XtbOptions`.
        trace: if a list, every accepted point is appended as ``(n_steps, energy, grad_norm, energy_change,
            pos [N, 3] Angstrom)`` (one run with a tight level then shows where each looser level would stop).
        prims: :func:`confgen.chem.internals.primitives` of the molecule, needed for ``options.coords ==
            "internal"`` (without them, or where a start angle is near linear or the primitives do not span
            all 3N - 6 internal motions, the optimiser steps in Cartesian coordinates).

    Returns:
        :class:`XtbResult`. ``grad_norm`` and the convergence test use the Cartesian gradient projected off the
        rigid motions of the start geometry in either coordinate system, so a level means the same in both.

    Raises:
        XtbError: tblite failed.
    """
    opt = options or XtbOptions()
    e_conv, g_conv = opt.thresholds()
    x = np.asarray(pos, dtype=np.float64).reshape(-1) * BOHR_PER_ANGSTROM  # [3N] Bohr
    n_atoms = len(x) // 3
    if n_atoms == 1:
        energy, grad = calc(x.reshape(-1, 3))
        return XtbResult(np.asarray(pos, dtype=np.float64).copy(), energy, 0.0, 1, True)
    cart = _CartesianCoords(x)
    coords = cart
    if opt.coords == "internal" and prims is not None:
        if max_angle_deg(x.reshape(-1, 3), prims) < LINEAR_DEG:
            dlc = _DelocalisedCoords(x, prims, cart.basis.shape[1])
            coords = dlc if dlc.ok else cart
    elif opt.coords not in ("cartesian", "internal"):
        raise ValueError(f"unknown coordinates {opt.coords!r} (choose cartesian or internal)")
    h_full = hessian if hessian is not None else _model_hessian(n_atoms)
    hq = coords.hessian(h_full)
    vals, vecs = np.linalg.eigh(0.5 * (hq + hq.T))
    floor = opt.hess_floor if coords is cart else opt.internal_hess_floor
    hq = (vecs * np.maximum(vals, floor)) @ vecs.T

    energy, grad = calc(x.reshape(-1, 3))
    gq = coords.gradient(x, grad.reshape(-1))
    g_norm = float(np.linalg.norm(cart.gradient(x, grad.reshape(-1))))
    n_steps, trust = 1, opt.trust
    e_change = np.inf
    while n_steps < opt.max_steps:
        if trace is not None:
            trace.append((n_steps, energy, g_norm, e_change, x.reshape(-1, 3) / BOHR_PER_ANGSTROM))
        if g_norm < g_conv and abs(e_change) < e_conv:
            return XtbResult(x.reshape(-1, 3) / BOHR_PER_ANGSTROM, energy, g_norm, n_steps, True)
        step = _rfo_step(hq, gq)
        length = float(np.linalg.norm(step))
        if length > trust:
            step *= trust / length
        new_x, step = coords.displace(x, step)
        length = float(np.linalg.norm(step))
        predicted = float(gq @ step + 0.5 * step @ hq @ step)
        new_energy, new_grad = calc(new_x.reshape(-1, 3))
        n_steps += 1
        new_gq = coords.gradient(new_x, new_grad.reshape(-1))
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
        x, energy, gq, e_change = new_x, new_energy, new_gq, actual
        g_norm = float(np.linalg.norm(cart.gradient(x, new_grad.reshape(-1))))
    converged = g_norm < g_conv and abs(e_change) < e_conv
    return XtbResult(x.reshape(-1, 3) / BOHR_PER_ANGSTROM, energy, g_norm, n_steps, converged)


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


def xtb_minimise(mol: Chem.Mol, level: str = "vtight", max_steps: int = 400,
                 coords: str = "internal") -> tuple[np.ndarray, list[str | None]]:
    """GFN2-xTB minimisation of every conformer in place (:func:`xtb_optimise` from the MMFF94 Hessian).

    Args:
        mol: molecule with explicit hydrogens and conformers (ideally MMFF94 minima).
        level: xtb convergence level (:data:`LEVELS`).
        max_steps: single points per conformer at most.
        coords: ``"internal"`` (delocalised internal coordinates of the molecule's bonds, angles and
            dihedrals; Cartesian for molecules with a near-linear angle) or ``"cartesian"``.

    Returns:
        ``(energies [C] in Hartree, reasons [C])``: a reason is None for a good conformer, else why it failed
        (SCF failure, a changed bond graph after minimisation, no convergence); failed conformers keep
        their start geometry and a NaN energy.
    """
    calc = XtbCalculator.for_mol(mol)
    options = XtbOptions(level=level, max_steps=max_steps, coords=coords)
    prims = primitives(mol) if coords == "internal" else None
    energies = np.full(mol.GetNumConformers(), np.nan)
    reasons: list[str | None] = []
    for k, conf in enumerate(mol.GetConformers()):
        try:
            res = xtb_optimise(calc, conf.GetPositions(), mmff_hessian(mol, conf.GetId()), options, prims=prims)
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
