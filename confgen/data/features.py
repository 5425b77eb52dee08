"""The one featuriser: RDKit Mol (explicit hydrogens) -> :class:`torch_geometric.data.Data`.

Shared by training, sampling and evaluation. Atom order is the Mol's atom order. The graph's fields:

    x           [N, ATOM_FEATURE_DIM] float32 atom features
    z           [N] long atomic numbers
    edge_index  [2, E] long, directed (both directions present), bond + 2/3-hop edges
    edge_attr   [E, EDGE_FEATURE_DIM] float32 edge features
    smiles      canonical isomeric SMILES of the molecule (without explicit H)
    conformers  [C, N, 3] float32 coordinates of the Mol's conformers (Angstrom), only with ``with_pos=True``;
                datasets give one conformer per item as ``pos`` [N, 3] (:mod:`confgen.data.dataset`)

Atom features (``ATOM_FEATURE_DIM`` columns, float 0/1):
    element one-hot (``ELEMENTS``), formal charge one-hot (-2..+2), aromatic, hybridisation one-hot,
    in ring, member of a ring of size 3..8, total hydrogens one-hot (0..4), degree one-hot (0..6),
    chirality (CIP R, CIP S, chiral tag without CIP label).
Chirality is encoded by CIP label rather than RDKit's CW/CCW tag because the tag depends on the order of
the atom's bonds, which would break atom-permutation invariance.

Edge features (``EDGE_FEATURE_DIM`` columns): edge type one-hot (single, double, triple, aromatic bond,
2-hop, 3-hop, radius), conjugated, in ring, double-bond stereo (E, Z). Extended (2/3-hop) edges carry the
shortest-path order; radius edges are added at model time from coordinates (see ``graph.radius_graph``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rdkit import Chem

from confgen.errors import InputError

if TYPE_CHECKING:
    from torch_geometric.data import Data

ELEMENTS = ("H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Br", "I")
_ELEMENT_INDEX = {e: i for i, e in enumerate(ELEMENTS)}
CHARGES = (-2, -1, 0, 1, 2)
HYBRIDISATIONS = (
    Chem.rdchem.HybridizationType.S,
    Chem.rdchem.HybridizationType.SP,
    Chem.rdchem.HybridizationType.SP2,
    Chem.rdchem.HybridizationType.SP3,
    Chem.rdchem.HybridizationType.SP3D,
    Chem.rdchem.HybridizationType.SP3D2,
)  # anything else -> "other" column
RING_SIZES = (3, 4, 5, 6, 7, 8)
MAX_HS = 4
MAX_DEGREE = 6

ATOM_FEATURE_DIM = (
    len(ELEMENTS) + len(CHARGES) + 1 + (len(HYBRIDISATIONS) + 1) + 1 + len(RING_SIZES) + (MAX_HS + 1)
    + (MAX_DEGREE + 1) + 3
)

BOND_TYPES = (
    Chem.rdchem.BondType.SINGLE,
    Chem.rdchem.BondType.DOUBLE,
    Chem.rdchem.BondType.TRIPLE,
    Chem.rdchem.BondType.AROMATIC,
)
#: edge-type columns: 4 bond types, then 2-hop, 3-hop, radius
EDGE_TYPE_2HOP = 4
EDGE_TYPE_3HOP = 5
EDGE_TYPE_RADIUS = 6
NUM_EDGE_TYPES = 7
EDGE_FEATURE_DIM = NUM_EDGE_TYPES + 1 + 1 + 2

MAX_HEAVY_ATOMS = 200


def _one_hot(index: int, size: int) -> list[float]:
    v = [0.0] * size
    v[index] = 1.0
    return v


def _mol_name(mol: Chem.Mol) -> str:
    if mol.HasProp("_Name") and mol.GetProp("_Name").strip():
        return mol.GetProp("_Name").strip()
    try:
        return Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False))
    except Exception:  # noqa: BLE001 - only used for a message
        return "<molecule>"


_ATOMIC_NUM_INDEX = np.full(128, -1, dtype=np.int64)
for _i, _e in enumerate(ELEMENTS):
    _ATOMIC_NUM_INDEX[Chem.GetPeriodicTable().GetAtomicNumber(_e)] = _i
_CHIRAL_TAGGED = (Chem.rdchem.ChiralType.CHI_TETRAHEDRAL_CW, Chem.rdchem.ChiralType.CHI_TETRAHEDRAL_CCW)
_HYB_INDEX = {h: i for i, h in enumerate(HYBRIDISATIONS)}
_BOND_INDEX = {b: i for i, b in enumerate(BOND_TYPES)}


def _atoms(mol: Chem.Mol) -> list:
    # indexing is several times faster than iterating RDKit's Python-side atom sequence wrapper
    return [mol.GetAtomWithIdx(i) for i in range(mol.GetNumAtoms())]


def _bonds(mol: Chem.Mol) -> list:
    return [mol.GetBondWithIdx(i) for i in range(mol.GetNumBonds())]


def check_mol(mol: Chem.Mol, max_heavy_atoms: int = MAX_HEAVY_ATOMS, source: str | None = None) -> None:
    """Raise :class:`InputError` if ``mol`` cannot be featurised (element, size, no heavy atoms)."""
    if mol is None:
        raise InputError("molecule could not be parsed", source=source)
    _check_atoms(mol, _atoms(mol), max_heavy_atoms, source)


def _check_atoms(mol: Chem.Mol, atoms: list, max_heavy_atoms: int, source: str | None) -> None:
    heavy = 0
    for atom in atoms:
        z = atom.GetAtomicNum()
        if z >= len(_ATOMIC_NUM_INDEX) or _ATOMIC_NUM_INDEX[z] < 0:
            raise InputError(
                f"unsupported element {atom.GetSymbol()} (supported: {', '.join(ELEMENTS)})",
                source=source,
                smiles=_mol_name(mol),
            )
        if z > 1:
            heavy += 1
    if heavy == 0:
        raise InputError("molecule has no heavy atoms", source=source, smiles=_mol_name(mol))
    if any(atom.GetNumImplicitHs() for atom in atoms):
        raise InputError("molecule has implicit hydrogens; add them first (Chem.AddHs)", source=source,
                         smiles=_mol_name(mol))
    if heavy > max_heavy_atoms:
        raise InputError(
            f"molecule has {heavy} heavy atoms, more than the limit of {max_heavy_atoms}",
            source=source,
            smiles=_mol_name(mol),
        )


def _atom_features(mol: Chem.Mol, atoms: list | None = None) -> np.ndarray:
    """[num_atoms, ATOM_FEATURE_DIM] float32 atom features (see the module docstring for the columns)."""
    atoms = _atoms(mol) if atoms is None else atoms
    n = len(atoms)
    z = np.empty(n, dtype=np.int64)
    charge = np.empty(n, dtype=np.int64)
    aromatic = np.empty(n, dtype=np.float32)
    hyb = np.empty(n, dtype=np.int64)
    num_h = np.empty(n, dtype=np.int64)
    degree = np.empty(n, dtype=np.int64)
    chiral = np.zeros((n, 3), dtype=np.float32)
    other_hyb = len(HYBRIDISATIONS)
    for i, atom in enumerate(atoms):
        z[i] = atom.GetAtomicNum()
        charge[i] = atom.GetFormalCharge()
        aromatic[i] = atom.GetIsAromatic()
        hyb[i] = _HYB_INDEX.get(atom.GetHybridization(), other_hyb)
        num_h[i] = atom.GetTotalNumHs(includeNeighbors=True)
        degree[i] = atom.GetDegree()
        cip = atom.GetProp("_CIPCode") if atom.HasProp("_CIPCode") else ""
        if cip == "R":
            chiral[i, 0] = 1.0
        elif cip == "S":
            chiral[i, 1] = 1.0
        elif atom.GetChiralTag() in _CHIRAL_TAGGED:
            chiral[i, 2] = 1.0
    ring_size = np.zeros((n, len(RING_SIZES)), dtype=np.float32)
    in_ring = np.zeros(n, dtype=np.float32)
    for ring in mol.GetRingInfo().AtomRings():
        idx = np.fromiter(ring, dtype=np.int64)
        in_ring[idx] = 1.0
        if RING_SIZES[0] <= len(ring) <= RING_SIZES[-1]:
            ring_size[idx, len(ring) - RING_SIZES[0]] = 1.0
    eye = np.eye
    blocks = [
        eye(len(ELEMENTS), dtype=np.float32)[_ATOMIC_NUM_INDEX[z]],
        eye(len(CHARGES), dtype=np.float32)[np.clip(charge, CHARGES[0], CHARGES[-1]) - CHARGES[0]],
        aromatic[:, None],
        eye(len(HYBRIDISATIONS) + 1, dtype=np.float32)[hyb],
        in_ring[:, None],
        ring_size,
        eye(MAX_HS + 1, dtype=np.float32)[np.minimum(num_h, MAX_HS)],
        eye(MAX_DEGREE + 1, dtype=np.float32)[np.minimum(degree, MAX_DEGREE)],
        chiral,
    ]
    return np.concatenate(blocks, axis=1)


def shortest_path_orders(num_nodes: int, bonds: np.ndarray, max_order: int = 3) -> np.ndarray:
    """Shortest-path order (1..max_order) for each pair within ``max_order`` bonds; 0 elsewhere.

    Args:
        num_nodes: number of atoms.
        bonds: [num_bonds, 2] atom index pairs.
        max_order: largest path length kept.

    Returns:
        [num_nodes, num_nodes] int8 matrix of orders (0 on the diagonal and beyond ``max_order``).
    """
    adj = np.zeros((num_nodes, num_nodes), dtype=bool)
    if len(bonds):
        adj[bonds[:, 0], bonds[:, 1]] = True
        adj[bonds[:, 1], bonds[:, 0]] = True
    order = np.zeros((num_nodes, num_nodes), dtype=np.int8)
    reached = np.eye(num_nodes, dtype=bool)
    frontier = np.eye(num_nodes, dtype=bool)
    adj_f = adj.astype(np.float32)
    for k in range(1, max_order + 1):
        frontier = (frontier.astype(np.float32) @ adj_f > 0) & ~reached  # [N, N]
        order[frontier] = k
        reached |= frontier
    return order


def featurize_mol(mol: Chem.Mol, max_order: int = 3, max_heavy_atoms: int = MAX_HEAVY_ATOMS,
                  source: str | None = None, with_pos: bool = False) -> Data:
    """Featurise an RDKit Mol with explicit hydrogens.

    Args:
        mol: RDKit Mol; hydrogens must be explicit atoms (``Chem.AddHs``).
        max_order: extended edges up to this many bonds apart (1 = bonds only).
        max_heavy_atoms: larger molecules are rejected with :class:`InputError`.
        source: where the molecule came from, used in error messages.
        with_pos: also store all conformers of ``mol`` as ``conformers`` [num_confs, N, 3].

    Returns:
        The graph (``x``, ``z``, ``edge_index``, ``edge_attr``, ``smiles``; ``conformers`` with ``with_pos`` when the
        Mol has conformers).

    Raises:
        InputError: unsupported element, no heavy atoms, too large, or implicit hydrogens on atoms.
    """
    if mol is None:
        raise InputError("molecule could not be parsed", source=source)
    _check_atoms(mol, _atoms(mol), max_heavy_atoms, source)
    mol = Chem.Mol(mol)
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    n = mol.GetNumAtoms()
    atoms = _atoms(mol)

    atom_feat = _atom_features(mol, atoms)  # [N, F]

    bond_list = _bonds(mol)
    nb = len(bond_list)
    bonds = np.empty((nb, 2), dtype=np.int64)
    bond_feat = np.zeros((nb, EDGE_FEATURE_DIM), dtype=np.float32)  # [B, F_e]
    for k, b in enumerate(bond_list):
        bonds[k, 0] = b.GetBeginAtomIdx()
        bonds[k, 1] = b.GetEndAtomIdx()
        bond_feat[k, _BOND_INDEX.get(b.GetBondType(), 0)] = 1.0
        bond_feat[k, NUM_EDGE_TYPES] = b.GetIsConjugated()
        bond_feat[k, NUM_EDGE_TYPES + 1] = b.IsInRing()
        st = b.GetStereo()
        bond_feat[k, NUM_EDGE_TYPES + 2] = st == Chem.rdchem.BondStereo.STEREOE
        bond_feat[k, NUM_EDGE_TYPES + 3] = st == Chem.rdchem.BondStereo.STEREOZ
    order = shortest_path_orders(n, bonds, max_order=max_order)  # [N, N]
    src, dst = np.nonzero(order)  # both directions, sorted by src
    edge_attr = np.zeros((len(src), EDGE_FEATURE_DIM), dtype=np.float32)
    hop = order[src, dst]
    edge_attr[hop == 2, EDGE_TYPE_2HOP] = 1.0
    edge_attr[hop == 3, EDGE_TYPE_3HOP] = 1.0
    # bond features, looked up by the (src, dst) pair
    if nb:
        bond_id = np.full((n, n), -1, dtype=np.int64)
        bond_id[bonds[:, 0], bonds[:, 1]] = np.arange(nb)
        bond_id[bonds[:, 1], bonds[:, 0]] = np.arange(nb)
        bond_mask = hop == 1
        edge_attr[bond_mask] = bond_feat[bond_id[src[bond_mask], dst[bond_mask]]]

    try:
        smiles = Chem.MolToSmiles(Chem.RemoveHs(mol))
    except Exception:  # noqa: BLE001 - RemoveHs can fail on odd valences; keep H then
        smiles = Chem.MolToSmiles(mol)

    import torch  # here, not at the top: the constants and check_mol (confgen.io's input checks) need no torch
    from torch_geometric.data import Data

    data = Data(
        x=torch.from_numpy(atom_feat),
        z=torch.tensor([a.GetAtomicNum() for a in atoms], dtype=torch.long),
        edge_index=torch.from_numpy(np.stack([src, dst]).astype(np.int64)),
        edge_attr=torch.from_numpy(edge_attr),
        smiles=smiles,
    )
    if with_pos and mol.GetNumConformers():
        data.conformers = torch.from_numpy(
            np.stack([c.GetPositions() for c in mol.GetConformers()]).astype(np.float32))
    return data
