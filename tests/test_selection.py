"""confgen.chem.selection: pruning and selection on a real GEOM-Drugs ensemble (../shared/data)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from confgen.chem.conformers import with_conformers, with_positions
from confgen.chem.rmsd import self_rmsd
from confgen.chem.selection import (GAS_CONSTANT_KCAL, boltzmann_weights, most_diverse, most_diverse_in_window,
                                    prune, select)

from mol_helpers import embed_mol, sdf_ensemble


@pytest.fixture(scope="module")
def pools(shared_data):
    """(mol, [C, C] RMSD) of three tora3d7 molecules, their reference and predicted conformers pooled."""
    root = shared_data / "geom_drugs_tora3d7"
    with open(root / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows[:14:5]:
        ref = sdf_ensemble(root / "molecules" / row["dir"] / row["true_file"])
        pred = sdf_ensemble(root / "molecules" / row["dir"] / row["pred_file"])
        mol = with_conformers(ref, list(ref.GetConformers()) + list(pred.GetConformers()))
        out.append((mol, self_rmsd(mol)))
    return out


def _greedy_maxmin(candidates, rmsd, n):
    """The reference rule (confgen's former loop): farthest from the chosen ones, first on ties."""
    chosen = [candidates[0]]
    dist = rmsd[candidates[0], candidates].astype(np.float64)
    dist[0] = -np.inf
    while len(chosen) < n:
        k = int(np.argmax(dist))
        chosen.append(candidates[k])
        dist = np.minimum(dist, rmsd[candidates[k], candidates])
        dist[k] = -np.inf
    return sorted(chosen, key=candidates.index)


def test_prune_keeps_conformers_apart_and_drops_only_near_duplicates(pools):
    for mol, rmsd in pools:
        n = len(rmsd)
        order = list(np.random.default_rng(n).permutation(n))
        assert prune(order, rmsd, 0.0) == order
        for threshold in (0.25, 0.75, 1.5):
            kept = prune(order, rmsd, threshold)
            assert kept == [i for i in order if i in kept] and kept[0] == order[0]
            for a in range(len(kept)):
                for b in range(a):
                    assert rmsd[kept[a], kept[b]] >= threshold
            for i in set(order) - set(kept):  # dropped: within the threshold of one kept before it
                earlier = kept[: sum(1 for k in kept if order.index(k) < order.index(i))]
                assert rmsd[i, earlier].min() < threshold
        assert len(prune(order, rmsd, 1.5)) < n  # real ensembles have conformers closer than 1.5 A


def test_diverse_selection_is_the_greedy_max_min_rule(pools):
    for mol, rmsd in pools:
        n = len(rmsd)
        for cand in (list(range(n)), list(np.random.default_rng(1).permutation(n))[: n - 2]):
            for k in range(1, len(cand)):
                got = select(cand, rmsd, k, "diverse", np.random.default_rng(0))
                assert got == _greedy_maxmin(cand, rmsd, k)
                assert got[0] == cand[0] and len(set(got)) == k


def test_diverse_selection_with_exact_duplicates_never_picks_twice():
    rmsd = np.zeros((5, 5))
    rmsd[4, :4] = rmsd[:4, 4] = 1.0
    assert select([0, 1, 2, 3, 4], rmsd, 2, "diverse", np.random.default_rng(0)) == [0, 4]
    assert select([0, 1, 2, 3, 4], rmsd, 3, "diverse", np.random.default_rng(0)) == _greedy_maxmin(
        [0, 1, 2, 3, 4], rmsd, 3)


def test_energy_and_random_selection(pools):
    _, rmsd = pools[0]
    cand = list(range(len(rmsd)))[::-1]
    assert select(cand, rmsd, 3, "energy", None) == cand[:3]
    assert select(cand, rmsd, len(cand), "random", None) == cand
    a = select(cand, rmsd, 4, "random", np.random.default_rng(7))
    b = select(cand, rmsd, 4, "random", np.random.default_rng(7))
    assert a == b and len(set(a)) == 4 and a == [c for c in cand if c in a]


def test_most_diverse_selects_from_positions_like_select():
    mol = embed_mol("CCCCOc1ccc(CC(=O)O)cc1", 8, seed=4)
    positions = [c.GetPositions() for c in mol.GetConformers()]
    want = select(list(range(8)), self_rmsd(mol), 3, "diverse", np.random.default_rng(0))
    assert most_diverse(mol, positions, 3) == want
    assert most_diverse(mol, positions, 8) == list(range(8))


def test_most_diverse_in_window_keeps_low_energies_then_spreads():
    from confgen.chem.forcefield import minimise

    mol = embed_mol("CCCCOc1ccc(CC(=O)O)cc1", 10, seed=5)
    energies, _ = minimise(mol)
    positions = [c.GetPositions() for c in mol.GetConformers()]
    order = list(np.argsort(energies, kind="stable"))
    e0 = energies[order[0]]
    # a window holding only the lowest: that one, then the next-lowest energies
    assert most_diverse_in_window(mol, positions, energies, 3, 0.0) == sorted(order[:3])
    # a window holding k > n: the most diverse of those k, starting from the lowest; none outside the window
    window = float(np.sort(energies)[6] - e0) + 1e-6  # the 7 lowest
    inside = sorted(order[:7], key=lambda i: energies[i])
    got = most_diverse_in_window(mol, positions, energies, 4, window)
    assert set(got) <= set(inside) and order[0] in got
    sub = [positions[i] for i in inside]
    picks = select(list(range(7)), self_rmsd(with_positions(mol, sub)), 4, "diverse", np.random.default_rng(0))
    assert got == sorted(inside[k] for k in picks)
    # a window holding everything is the diverse rule started from the lowest energy
    by_e = [positions[i] for i in order]
    picks = select(list(range(10)), self_rmsd(with_positions(mol, by_e)), 5, "diverse", np.random.default_rng(0))
    assert most_diverse_in_window(mol, positions, energies, 5, 1e9) == sorted(order[k] for k in picks)
    with pytest.raises(ValueError):
        most_diverse_in_window(mol, positions, energies[:3], 2, 5.0)


def test_boltzmann_weights():
    e = np.array([0.0, 1.0, 3.0])
    w = boltzmann_weights(e + 10.0, 300.0)
    assert w.sum() == pytest.approx(1.0)
    assert w[1] / w[0] == pytest.approx(np.exp(-1.0 / (GAS_CONSTANT_KCAL * 300.0)))
    assert (np.diff(w) < 0).all()
