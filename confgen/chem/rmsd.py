"""Symmetry-aware heavy-atom RMSD between conformers (the kernel of evaluation, pruning and selection).

RMSD semantics are those of RDKit's ``rdMolAlign.GetBestRMS`` applied to heavy-atom copies of the two
molecules (the convention of ConfGF, GeoMol, torsional diffusion):

* every hydrogen is removed (:func:`confgen.chem.conformers.heavy_atom_copy`);
* the candidate atom mappings are all substructure matches of the probe (generated) molecule onto the
  reference, ``uniquify=False``, chirality ignored, with conjugated terminal groups (carboxylate,
  nitro, amidine ... ``[O,N;D1]`` pairs) symmetrised exactly as RDKit's
  ``MolAlign::details::symmetrizeTerminalAtoms`` does (charge ignored, single/double bond treated alike);
* for each mapping the two conformers are optimally superimposed with a proper rotation (no reflection)
  and the smallest RMSD over mappings is kept.

Instead of one SVD per (mapping, reference, generated) triple, the 3x3 correlation matrices of all
pairs come from one matrix product per chunk, and the optimal rotation's residual comes from the
largest eigenvalue of Horn's 4x4 quaternion key matrix, found by Newton's method on its characteristic
polynomial (closed-form coefficients, as in Theobald's QCP). Everything is elementwise numpy on chunks
of at most ``chunk_size`` (mapping, reference, generated) triples, so memory stays bounded.
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem

from confgen.chem.conformers import heavy_atom_copy, heavy_positions
from confgen.chem.smiles import safe_smiles
from confgen.errors import InputError

#: RDKit's default ``maxMatches`` of GetBestRMS is 1e6; evaluating that many mappings for every pair of
#: conformers is hopeless, so by default a molecule with more mappings is reported as failed.
DEFAULT_MAX_MATCHES = 20_000

#: default number of (mapping, reference, generated) triples handled at once: about 30 MB of temporaries,
#: as fast as larger chunks (scripts/bench_evaluate.py)
DEFAULT_CHUNK_SIZE = 1 << 16

_TERMINAL_SMARTS = "[O,N;D1;$([O,N;D1]-[*]=[O,N;D1]),$([O,N;D1]=[*]-[O,N;D1])]~[*]"
_SINGLE_OR_DOUBLE_SMARTS = "*-,=*"

__all__ = ["DEFAULT_MAX_MATCHES", "DEFAULT_CHUNK_SIZE", "atom_mappings", "rmsd_matrix",
           "rmsd_matrix_from_positions", "self_rmsd"]


def _symmetrized_probe(heavy: Chem.Mol) -> Chem.Mol:
    """Copy of ``heavy`` where conjugated terminal O/N groups match either way (RDKit semantics)."""
    pattern = Chem.MolFromSmarts(_TERMINAL_SMARTS)
    matches = heavy.GetSubstructMatches(pattern)  # RDKit defaults: uniquify, maxMatches=1000
    if not matches:
        return heavy
    query_bond = Chem.MolFromSmarts(_SINGLE_OR_DOUBLE_SMARTS).GetBondWithIdx(0)
    rw = Chem.RWMol(heavy)
    for terminal, neighbour in matches:
        rw.GetAtomWithIdx(terminal).SetFormalCharge(0)
        bond = rw.GetBondBetweenAtoms(terminal, neighbour)
        rw.ReplaceBond(bond.GetIdx(), query_bond)
    return rw.GetMol()


def atom_mappings(
    ref_heavy: Chem.Mol,
    gen_heavy: Chem.Mol,
    *,
    max_matches: int = DEFAULT_MAX_MATCHES,
    symmetrize_conjugated_terminal_groups: bool = True,
) -> np.ndarray:
    """All atom mappings of the generated (probe) heavy-atom graph onto the reference one.

    Args:
        ref_heavy: reference heavy-atom Mol (see :func:`heavy_atom_copy`).
        gen_heavy: generated heavy-atom Mol; may number its atoms differently from ``ref_heavy``.
        max_matches: refuse (``InputError``) molecules with more mappings than this.
        symmetrize_conjugated_terminal_groups: as RDKit's GetBestRMS argument of the same name.

    Returns:
        ``maps: [M, N]`` int64; ``maps[m, k]`` is the reference atom mapped to generated atom ``k``.

    Raises:
        InputError: heavy-atom counts differ, the graphs do not match, or there are too many mappings.
    """
    n_ref, n_gen = ref_heavy.GetNumAtoms(), gen_heavy.GetNumAtoms()
    if n_ref != n_gen:
        raise InputError(
            f"heavy-atom count differs: reference {n_ref}, generated {n_gen}", smiles=_smiles(ref_heavy)
        )
    probe = _symmetrized_probe(gen_heavy) if symmetrize_conjugated_terminal_groups else gen_heavy
    matches = ref_heavy.GetSubstructMatches(
        probe,
        uniquify=False,
        useChirality=False,
        useQueryQueryMatches=False,
        maxMatches=max_matches + 1,
    )
    if not matches:
        raise InputError(
            "generated and reference molecular graphs do not match", smiles=_smiles(ref_heavy)
        )
    if len(matches) > max_matches:
        raise InputError(
            f"more than {max_matches} symmetry mappings of the heavy-atom graph (raise max_matches / "
            "--max-automorphisms to evaluate it; cost grows linearly with the number of mappings)",
            smiles=_smiles(ref_heavy),
        )
    return np.asarray(matches, dtype=np.int64).reshape(len(matches), n_gen)


# ---------------------------------------------------------------------------------------------- RMSD
def _det4_symmetric(k: list[list[np.ndarray]]) -> np.ndarray:
    """Determinant of a batch of 4x4 matrices given entry-wise (Laplace expansion by 2x2 minors)."""
    s0 = k[0][0] * k[1][1] - k[1][0] * k[0][1]
    s1 = k[0][0] * k[1][2] - k[1][0] * k[0][2]
    s2 = k[0][0] * k[1][3] - k[1][0] * k[0][3]
    s3 = k[0][1] * k[1][2] - k[1][1] * k[0][2]
    s4 = k[0][1] * k[1][3] - k[1][1] * k[0][3]
    s5 = k[0][2] * k[1][3] - k[1][2] * k[0][3]
    c5 = k[2][2] * k[3][3] - k[3][2] * k[2][3]
    c4 = k[2][1] * k[3][3] - k[3][1] * k[2][3]
    c3 = k[2][1] * k[3][2] - k[3][1] * k[2][2]
    c2 = k[2][0] * k[3][3] - k[3][0] * k[2][3]
    c1 = k[2][0] * k[3][2] - k[3][0] * k[2][2]
    c0 = k[2][0] * k[3][1] - k[3][0] * k[2][1]
    return s0 * c5 - s1 * c4 + s2 * c3 + s3 * c2 - s4 * c1 + s5 * c0


def _min_ssd(corr: np.ndarray, e0: np.ndarray, max_iter: int = 100) -> np.ndarray:
    """Smallest sum of squared deviations over proper rotations, from correlation matrices.

    Args:
        corr: ``[..., 3, 3]`` correlation matrices ``sum_n a_n b_n^T`` of centred point sets.
        e0: ``[...]`` half the summed squared norms of the two point sets, ``(|A|^2 + |B|^2) / 2``.

    Returns:
        ``[...]`` ``min_R sum_n |a_n - R b_n|^2`` (>= 0), i.e. ``2 * (e0 - lambda_max)`` where
        ``lambda_max`` is the largest eigenvalue of Horn's quaternion key matrix.
    """
    shape = e0.shape
    corr = corr.reshape(-1, 3, 3)  # [B, 3, 3]
    e0 = e0.reshape(-1)  # [B]
    sxx, sxy, sxz = corr[..., 0, 0], corr[..., 0, 1], corr[..., 0, 2]
    syx, syy, syz = corr[..., 1, 0], corr[..., 1, 1], corr[..., 1, 2]
    szx, szy, szz = corr[..., 2, 0], corr[..., 2, 1], corr[..., 2, 2]
    # Horn's key matrix (symmetric, traceless); lambda_max = max_R trace(R^T corr)
    k01, k02, k03 = syz - szy, szx - sxz, sxy - syx
    k12, k13, k23 = sxy + syx, szx + sxz, syz + szy
    key = [
        [sxx + syy + szz, k01, k02, k03],
        [k01, sxx - syy - szz, k12, k13],
        [k02, k12, -sxx + syy - szz, k23],
        [k03, k13, k23, -sxx - syy + szz],
    ]
    # characteristic polynomial det(lambda I - K) = l^4 + c2 l^2 + c1 l + c0
    c2 = -2.0 * np.einsum("...ij,...ij->...", corr, corr)
    det3 = (
        sxx * (syy * szz - syz * szy) - sxy * (syx * szz - syz * szx) + sxz * (syx * szy - syy * szx)
    )
    c1 = -8.0 * det3
    c0 = _det4_symmetric(key)
    lam = e0.copy()  # an upper bound on lambda_max: Newton descends monotonically onto it
    tol = 1e-14 * np.maximum(np.abs(e0), 1e-300)
    active = np.ones(lam.shape, dtype=bool)
    for _ in range(max_iter):
        l = lam[active]
        l2 = l * l
        b = (l2 + c2[active]) * l
        a = b + c1[active]
        poly = a * l + c0[active]
        dpoly = 2.0 * l2 * l + b + a  # 4 l^3 + 2 c2 l + c1
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(dpoly != 0.0, poly / dpoly, 0.0)
        lam[active] = l - step
        still = np.abs(step) > tol[active]
        if not still.any():
            break
        idx = np.flatnonzero(active)
        active[idx[~still]] = False
    return np.maximum(2.0 * (e0 - lam), 0.0).reshape(shape)


def rmsd_matrix_from_positions(
    ref_pos: np.ndarray,
    gen_pos: np.ndarray,
    maps: np.ndarray | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Best-over-mappings RMSD after optimal proper superposition, for all pairs of conformers.

    Args:
        ref_pos: ``[L, N, 3]`` reference coordinates.
        gen_pos: ``[K, N, 3]`` generated coordinates.
        maps: ``[M, N]`` atom mappings (``maps[m, k]`` = reference atom of generated atom ``k``); ``None``
            means the identity.
        chunk_size: at most this many (mapping, reference, generated) triples are processed at once.

    Returns:
        ``rmsd: [L, K]`` float64.
    """
    ref_pos = np.asarray(ref_pos, dtype=np.float64)
    gen_pos = np.asarray(gen_pos, dtype=np.float64)
    n_ref, n_atoms = ref_pos.shape[0], ref_pos.shape[1]
    n_gen = gen_pos.shape[0]
    if gen_pos.shape[1] != n_atoms:
        raise ValueError(f"atom counts differ: {n_atoms} vs {gen_pos.shape[1]}")
    if maps is None:
        maps = np.arange(n_atoms, dtype=np.int64)[None]
    maps = np.asarray(maps, dtype=np.int64)
    out = np.full((n_ref, n_gen), np.inf)
    if n_ref == 0 or n_gen == 0:
        return out.reshape(n_ref, n_gen)
    ref_c = ref_pos - ref_pos.mean(axis=1, keepdims=True)  # [L, N, 3]
    gen_c = gen_pos - gen_pos.mean(axis=1, keepdims=True)  # [K, N, 3]
    ref_sq = np.einsum("lna,lna->l", ref_c, ref_c)  # [L]
    gen_sq = np.einsum("kna,kna->k", gen_c, gen_c)  # [K]
    gen_flat = gen_c.transpose(1, 0, 2).reshape(n_atoms, n_gen * 3)  # [N, K*3]
    n_maps = maps.shape[0]
    # split generated conformers only when one reference row alone exceeds the chunk
    gen_block = max(1, min(n_gen, chunk_size))
    for g0 in range(0, n_gen, gen_block):
        g1 = min(n_gen, g0 + gen_block)
        kg = g1 - g0
        gen_part = gen_flat[:, g0 * 3 : g1 * 3]  # [N, kg*3]
        rows = max(1, chunk_size // kg)  # (mapping, reference) rows per chunk
        total = n_ref * n_maps
        for r0 in range(0, total, rows):
            r1 = min(total, r0 + rows)
            # rows ordered (reference, mapping) so that the rows of one reference are contiguous
            l_idx, m_idx = np.divmod(np.arange(r0, r1), n_maps)
            # permuted reference coordinates: ref atom maps[m, k] paired with generated atom k
            perm = ref_c[l_idx[:, None], maps[m_idx]]  # [R, N, 3]
            corr = perm.transpose(0, 2, 1).reshape(-1, n_atoms) @ gen_part  # [R*3, kg*3]
            corr = corr.reshape(r1 - r0, 3, kg, 3).transpose(0, 2, 1, 3)  # [R, kg, 3, 3]
            e0 = 0.5 * (ref_sq[l_idx][:, None] + gen_sq[None, g0:g1])  # [R, kg]
            msd = _min_ssd(corr, e0) / n_atoms  # [R, kg]
            starts = np.flatnonzero(np.r_[True, l_idx[1:] != l_idx[:-1]])
            best = np.minimum.reduceat(msd, starts, axis=0)  # [unique refs, kg]
            refs = l_idx[starts]
            out[refs, g0:g1] = np.minimum(out[refs, g0:g1], np.sqrt(best))
    return out


def rmsd_matrix(
    ref_mol: Chem.Mol,
    gen_mol: Chem.Mol,
    *,
    max_matches: int = DEFAULT_MAX_MATCHES,
    symmetrize_conjugated_terminal_groups: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Heavy-atom, symmetry-aware RMSD between every reference and every generated conformer.

    Equal (to ~1e-9) to ``rdMolAlign.GetBestRMS(gen_heavy, ref_heavy, j, i)`` on heavy-atom copies.
    The two Mols may number their atoms differently; they must have the same heavy-atom graph.

    Args:
        ref_mol: reference molecule with L conformers.
        gen_mol: generated molecule with K conformers.
        max_matches: the most graph mappings accepted (see :func:`atom_mappings`).
        symmetrize_conjugated_terminal_groups: RDKit's GetBestRMS option of the same name (default on).
        chunk_size: bound on the (mapping, reference, generated) triples held in memory at once.

    Returns:
        ``rmsd: [L, K]`` float64 in Angstrom.

    Raises:
        InputError: the graphs do not match or have too many symmetry mappings.
    """
    ref_heavy, ref_idx = heavy_atom_copy(ref_mol)
    gen_heavy, gen_idx = heavy_atom_copy(gen_mol)
    maps = atom_mappings(
        ref_heavy,
        gen_heavy,
        max_matches=max_matches,
        symmetrize_conjugated_terminal_groups=symmetrize_conjugated_terminal_groups,
    )
    return rmsd_matrix_from_positions(
        heavy_positions(ref_mol, ref_idx), heavy_positions(gen_mol, gen_idx), maps, chunk_size=chunk_size
    )


def self_rmsd(mol: Chem.Mol) -> np.ndarray:
    """[C, C] heavy-atom symmetry-aware RMSD between the conformers of ``mol``."""
    return rmsd_matrix(mol, mol)


def _smiles(mol: Chem.Mol) -> str | None:
    return safe_smiles(mol, remove_hs=False)
