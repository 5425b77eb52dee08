"""Put a geometry given in another atom order (QM9's xyz) onto the graph of a SMILES."""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds

from confgen.chem.smiles import parse_smiles
from confgen.errors import InputError


def _mol_from_xyz(elements: list[str], xyz: np.ndarray, cov_factor: float = 1.3) -> Chem.Mol:
    rw = Chem.RWMol()
    for el in elements:
        atom = Chem.Atom(el)
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    conf = Chem.Conformer(len(elements))
    conf.SetPositions(np.ascontiguousarray(xyz, dtype=np.float64))
    conf.Set3D(True)
    rw.AddConformer(conf, assignId=True)
    rdDetermineBonds.DetermineConnectivity(rw, covFactor=cov_factor)
    return rw.GetMol()


def _connectivity_graph(mol: Chem.Mol) -> Chem.Mol:
    """Same atoms and bonds, with every bond single and no charges/aromaticity: a pure graph for matching."""
    rw = Chem.RWMol(mol)
    for atom in rw.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetIsAromatic(False)
        atom.SetNoImplicit(True)
        atom.SetNumExplicitHs(0)
        atom.SetNumRadicalElectrons(0)
        atom.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
        atom.SetIsotope(0)
    for bond in rw.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
        bond.SetStereo(Chem.BondStereo.STEREONONE)
    out = rw.GetMol()
    out.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(out)
    return out


def _match_geometry(template: Chem.Mol, elements: list[str], xyz: np.ndarray) -> tuple[int, ...] | None:
    """Template atom i -> geometry atom ``match[i]``, or None.

    Tries a few covalent-radius factors: first an exact graph match (same number of bonds), then the SMILES
    graph as a subgraph of a geometry graph with extra (long, strained-ring) contacts, choosing among the
    candidate matches the one with the shortest total bond length.
    """
    query = _connectivity_graph(template)
    t_bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in template.GetBonds()], dtype=np.int64)
    t_bonds = t_bonds.reshape(-1, 2)
    supersets = []
    for factor in (1.3, 1.2, 1.4, 1.1, 1.5):
        try:
            geo = _mol_from_xyz(elements, xyz, cov_factor=factor)
        except Exception:  # noqa: BLE001 - RDKit raises several types on bad xyz
            continue
        if geo.GetNumBonds() == template.GetNumBonds():
            match = _connectivity_graph(geo).GetSubstructMatch(query)
            if len(match) == template.GetNumAtoms():
                return match
        elif geo.GetNumBonds() > template.GetNumBonds():
            supersets.append(geo)
    for geo in supersets:
        matches = _connectivity_graph(geo).GetSubstructMatches(query, uniquify=False, maxMatches=1000)
        best, best_len = None, np.inf
        for match in matches:
            m = np.asarray(match)
            length = np.linalg.norm(xyz[m[t_bonds[:, 0]]] - xyz[m[t_bonds[:, 1]]], axis=1).sum()
            if length < best_len - 1e-9:
                best, best_len = match, length
        if best is not None:
            return best
    return None


def map_geometry_to_smiles(smiles: str, elements: list[str], xyz: np.ndarray) -> Chem.Mol:
    """Put a geometry given in another atom order (e.g. QM9's xyz) onto the graph of ``smiles``.

    Connectivity is rebuilt from the coordinates (``rdDetermineBonds.DetermineConnectivity``) and matched to
    the SMILES graph ignoring bond orders and charges; stereochemistry is then taken from the 3D geometry.

    Args:
        smiles: the molecule's SMILES (defines atom order, bond orders, charges).
        elements: element symbols in the geometry's atom order, hydrogens included.
        xyz: [num_atoms, 3] coordinates in Angstrom.

    Returns:
        Mol with explicit H in the SMILES' atom order (hydrogens after heavy atoms) and one conformer.

    Raises:
        InputError: invalid SMILES, element/atom-count mismatch, or the graphs do not match.
    """
    template = parse_smiles(smiles)
    if template is None:
        raise InputError("invalid SMILES", smiles=smiles)
    template = Chem.AddHs(template)
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    if len(elements) != len(xyz):
        raise InputError(f"{len(elements)} elements but {len(xyz)} coordinates", smiles=smiles)
    if template.GetNumAtoms() != len(elements):
        raise InputError(f"geometry has {len(elements)} atoms, the SMILES graph {template.GetNumAtoms()}",
                         smiles=smiles)
    match = _match_geometry(template, list(elements), xyz)
    if match is None:
        raise InputError("geometry connectivity does not match the SMILES graph", smiles=smiles)
    mol = Chem.Mol(template)
    mol.RemoveAllConformers()
    conf = Chem.Conformer(mol.GetNumAtoms())
    conf.SetPositions(np.ascontiguousarray(xyz[list(match)]))
    conf.Set3D(True)
    mol.AddConformer(conf, assignId=True)
    Chem.AssignStereochemistryFrom3D(mol)
    return mol
