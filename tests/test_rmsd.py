"""confgen.chem.rmsd: symmetry-aware heavy-atom RMSD against RDKit's GetBestRMS, chunking, errors."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdMolAlign

from confgen.chem.conformers import heavy_atom_copy
from confgen.chem.rmsd import atom_mappings, rmsd_matrix, rmsd_matrix_from_positions, self_rmsd
from confgen.errors import InputError

from mol_helpers import embed_mol, shuffled


def _get_best_rms_matrix(ref: Chem.Mol, gen: Chem.Mol) -> np.ndarray:
    """The reference definition: RDKit GetBestRMS on heavy-atom copies, one pair at a time."""
    ref_h, _ = heavy_atom_copy(ref)
    gen_h, _ = heavy_atom_copy(gen)
    ref_ids = [c.GetId() for c in ref_h.GetConformers()]
    gen_ids = [c.GetId() for c in gen_h.GetConformers()]
    out = np.empty((len(ref_ids), len(gen_ids)))
    for i, rid in enumerate(ref_ids):
        for j, gid in enumerate(gen_ids):
            out[i, j] = rdMolAlign.GetBestRMS(Chem.Mol(gen_h), ref_h, gid, rid)
    return out


SYMMETRIC = [
    "CC(C)(C)c1ccc(C(=O)[O-])cc1",  # tert-butyl, para-phenyl flip, carboxylate (conjugated terminal group)
    "OC(=O)c1ccccc1C(F)(F)F",  # acid O/OH symmetric on heavy atoms, CF3
    "CC(C)(C)C(C)(C)C",  # two tert-butyls: 72 mappings
    "[O-][N+](=O)c1ccc(C(N)=N)cc1",  # nitro and amidine
    "NC(=O)CC(C)(C)c1ccccc1",  # primary amide, gem-dimethyl, phenyl
]


@pytest.mark.parametrize("smiles", SYMMETRIC)
def test_rmsd_matches_getbestrms_on_symmetric_molecules(smiles):
    ref = embed_mol(smiles, 4, seed=11)
    gen = shuffled(embed_mol(smiles, 5, seed=23), seed=3)  # different atom order and conformers
    got = rmsd_matrix(ref, gen)
    want = _get_best_rms_matrix(ref, gen)
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    # symmetry matters here: the identity mapping alone gives larger values somewhere
    ref_h, ref_idx = heavy_atom_copy(ref)
    assert atom_mappings(ref_h, ref_h).shape[0] > 1


def test_rmsd_identical_conformers_is_zero_and_symmetric():
    mol = embed_mol("CC(C)(C)c1ccccc1", 3, seed=5)
    d = rmsd_matrix(mol, shuffled(mol, 1))
    assert np.all(np.abs(np.diag(d)) < 1e-6)
    np.testing.assert_allclose(d, d.T, atol=1e-9)


def test_rmsd_chunking_does_not_change_values():
    mol = embed_mol("CC(C)(C)C(C)(C)C", 6, seed=2)
    other = embed_mol("CC(C)(C)C(C)(C)C", 7, seed=9)
    a = rmsd_matrix(mol, other)
    b = rmsd_matrix(mol, other, chunk_size=5)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_rmsd_no_reflection():
    """A mirror image is not superimposable: RMSD > 0, as in GetBestRMS (reflect=False)."""
    mol = embed_mol("C[C@H](N)C(=O)O", 1, seed=4)  # alanine
    pos = heavy_atom_copy(mol)
    ref_pos = np.asarray(mol.GetConformer().GetPositions())[pos[1]][None]
    mirror = ref_pos * np.array([1.0, 1.0, -1.0])
    assert rmsd_matrix_from_positions(ref_pos, mirror)[0, 0] > 0.1
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert rmsd_matrix_from_positions(ref_pos, ref_pos @ rot.T + 3.0)[0, 0] < 1e-6


def test_graph_mismatch_and_atom_count_errors():
    a = embed_mol("CCO", 1, seed=1)
    b = embed_mol("CCN", 1, seed=1)
    c = embed_mol("CCCO", 1, seed=1)
    with pytest.raises(InputError, match="do not match"):
        rmsd_matrix(a, b)
    with pytest.raises(InputError, match="heavy-atom count"):
        rmsd_matrix(a, c)


def test_too_many_mappings_is_a_clear_error():
    mol = embed_mol("CC(C)(C)C(C)(C)C", 1, seed=1)  # 72 mappings
    with pytest.raises(InputError, match="more than 10 symmetry mappings"):
        rmsd_matrix(mol, mol, max_matches=10)




def test_self_rmsd_is_the_square_matrix_of_a_molecule_with_itself():
    mol = embed_mol("CC(=O)Oc1ccccc1C(=O)O", 4, seed=2)
    d = self_rmsd(mol)
    assert d.shape == (4, 4) and np.allclose(np.diag(d), 0.0, atol=1e-6) and np.allclose(d, d.T, atol=1e-9)
    assert np.array_equal(d, rmsd_matrix(mol, mol))
