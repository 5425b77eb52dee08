"""confgen.chem.embed: ETKDG as RDKit embeds it, the seed-0 fix, blocks with a callback, the fallback."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdDistGeom

import confgen.chem.embed as embed_mod
from confgen.chem.embed import SEED_FOR_ZERO, embed, rdkit_seed

SMILES = "CC(=O)N[C@@H](Cc1ccccc1)C(=O)OC"


def _mol() -> Chem.Mol:
    return Chem.AddHs(Chem.MolFromSmiles(SMILES))


def _rdkit(n: int, seed: int, random_coords: bool = False) -> list[np.ndarray]:
    m = _mol()
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = seed
    params.useRandomCoords = random_coords
    return [m.GetConformer(c).GetPositions() for c in rdDistGeom.EmbedMultipleConfs(m, n, params)]


def test_one_block_is_rdkits_embedding():
    got = embed(_mol(), 4, lambda block, rc: 17)
    want = _rdkit(4, 17)
    assert len(got) == 4 and all(np.array_equal(a, b) for a, b in zip(got, want))


def test_seed_zero_is_replaced():
    assert rdkit_seed(0) == SEED_FOR_ZERO and rdkit_seed(5) == 5
    got = embed(_mol(), 3, lambda block, rc: 0)
    want = _rdkit(3, SEED_FOR_ZERO)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert not np.allclose(got[0], got[1])  # RDKit's seed 0 would give identical conformers


def test_blocks_are_seeded_per_block_and_reported():
    seen: list[int] = []
    got = embed(_mol(), 5, lambda block, rc: 100 + block, block_size=2, on_block=seen.append, threads=2)
    assert seen == [2, 2, 1] and len(got) == 5
    want = _rdkit(2, 100) + _rdkit(2, 101) + _rdkit(1, 102)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("fallback,first,expected", [
    ("missing", 1, 3),  # 1 from the normal start, 2 from random coordinates
    ("if_none", 1, 1),
    ("if_none", 0, 3),
    ("never", 0, 0),
])
def test_random_coordinate_fallback(monkeypatch, fallback, first, expected):
    """ETKDG's normal start is made to embed only ``first`` conformers (as on strained cages)."""
    real = rdDistGeom.EmbedMultipleConfs
    calls = []

    def flaky(mol, n, params):
        calls.append((n, params.useRandomCoords, params.randomSeed))
        return real(mol, n if params.useRandomCoords else min(n, first), params)

    monkeypatch.setattr(embed_mod.rdDistGeom, "EmbedMultipleConfs", flaky)
    got = embed(_mol(), 3, lambda block, rc: 9 if rc else 8, fallback=fallback)
    assert len(got) == expected
    if expected > first:
        assert calls[-1] == (3 - first, True, 9)


def test_unknown_fallback():
    with pytest.raises(ValueError):
        embed(_mol(), 1, lambda b, rc: 1, fallback="sometimes")
