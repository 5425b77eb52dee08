"""Small molecule helpers shared by the tests: SDF ensembles, ETKDG-embedded molecules, renumbered copies."""

from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem


def sdf_ensemble(path: Path) -> Chem.Mol:
    """All records of one SDF (same atom order) as conformers of one Mol."""
    mols = [m for m in Chem.SDMolSupplier(str(path), removeHs=False)]
    base = Chem.Mol(mols[0])
    base.RemoveAllConformers()
    for m in mols:
        base.AddConformer(Chem.Conformer(m.GetConformer()), assignId=True)
    return base


def embed_mol(smiles: str, n: int, seed: int) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    ids = AllChem.EmbedMultipleConfs(mol, numConfs=n, randomSeed=seed)
    assert len(ids) == n
    return mol


def shuffled(mol: Chem.Mol, seed: int) -> Chem.Mol:
    order = list(range(mol.GetNumAtoms()))
    np.random.default_rng(seed).shuffle(order)
    return Chem.RenumberAtoms(mol, order)


def sorted_distances(pos: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    return np.sort(d[np.triu_indices(len(pos), 1)])


def bond_lengths(mol: Chem.Mol, conf_id: int = 0) -> np.ndarray:
    pos = mol.GetConformer(conf_id).GetPositions()
    return np.array([np.linalg.norm(pos[b.GetBeginAtomIdx()] - pos[b.GetEndAtomIdx()]) for b in mol.GetBonds()])
