"""Per-molecule working state of a generation run (:class:`MoleculeState`) and how a molecule enters it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from rdkit import Chem

from confgen.data.features import featurize_mol
from confgen.errors import ConfgenError, InputError
from confgen.io import PROP_STEREO_POLICY, resolve_stereo
from confgen.options import DEFAULT_STEREO
from confgen.rdlog import quiet_rdkit
from confgen.chem.amides import AmideRotors, amide_rotors
from confgen.chem.stereo import StereoSpec, stereo_spec
from confgen.validity import GeometryBounds, geometry_bounds


class Relaxed(NamedTuple):
    """One slot's MMFF94 relaxation: what is written, and how it was judged."""

    pos: np.ndarray  # [N, 3] relaxed coordinates (the sampled ones when relaxing would change the stereo)
    energy: float  # MMFF94 energy (kcal/mol)
    reverted: bool  # written unrelaxed: MMFF94 would have changed the stereo
    inside: bool  # within PoseBusters' bounds (True for a molecule without bounds)


@dataclass
class MoleculeState:
    """One molecule of a run: its graph, checks and the conformers accepted so far (by slot)."""

    mol: Chem.Mol
    graph: object
    spec: StereoSpec
    bonds: np.ndarray  # [B, 2]
    bond_ref: np.ndarray  # [B] sum of covalent radii
    n_requested: int  # conformers to sample (candidates)
    uid: int
    n_keep: int = 0  # conformers to return: the most diverse n_keep of the candidates
    bounds: GeometryBounds | None = None  # PoseBusters' distance limits (heavy atoms)
    pos: dict = field(default_factory=dict)  # slot -> [N, 3] accepted coordinates
    fallback: dict = field(default_factory=dict)  # slot -> right stereo, outside the bounds (last resort)
    attempts: dict = field(default_factory=dict)  # slot -> samples taken
    blowups: dict = field(default_factory=dict)  # slot -> blow-ups so far
    from_noise: set = field(default_factory=set)  # slots that ETKDG could not embed: sampled from noise
    fragments: list | None = None  # atom indices of each fragment, largest first (None: one fragment)
    radii: np.ndarray | None = None  # [N] van der Waals radii (multi-fragment molecules)
    too_large: str = ""  # device type whose memory one conformer alone exceeded: the molecule is skipped
    amides: AmideRotors | None = None  # secondary amides turned trans after sampling (preset trans_amides)
    relaxed: dict = field(default_factory=dict)  # slot -> Relaxed


def prepare_molecule(mol: Chem.Mol, n: int, uid: int, source: str, oversample: float = 1.0,
                     stereo: str = DEFAULT_STEREO, notes: list | None = None,
                     trans_amides: bool = False) -> MoleculeState:
    """The state of one input molecule: explicit H, stereo resolved, graph, bonds, stereo spec and bounds.

    Raises:
        InputError: no molecule, or one that cannot be featurised or whose stereo is refused.
        ConfgenError: ``stereo="enumerate"`` (done on the inputs, before generation).
    """
    if mol is None:
        raise InputError("no molecule", source=source)
    mol = Chem.Mol(mol)
    if any(a.GetNumImplicitHs() for a in mol.GetAtoms()):
        mol = Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)
    if not mol.HasProp(PROP_STEREO_POLICY):  # not resolved when the input was read
        if stereo == "enumerate":
            raise ConfgenError("stereo='enumerate' makes several molecules of one: apply confgen.io.resolve_stereo "
                               "to the inputs first (generate_conformers takes 'one' or 'refuse')")
        with quiet_rdkit():
            label = Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False))
        (mol,), note = resolve_stereo(mol, stereo, source=source, label=label)
        if note and notes is not None:
            notes.append(note)
    graph = featurize_mol(mol, source=source)
    mol.RemoveAllConformers()
    table = Chem.GetPeriodicTable()
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 2)
    rcov = np.array([table.GetRcovalent(a.GetAtomicNum()) for a in mol.GetAtoms()])
    frags = sorted(Chem.GetMolFrags(mol), key=len, reverse=True)
    multi = len(frags) > 1
    n_requested = math.ceil(oversample * int(n) - 1e-9)
    return MoleculeState(mol=mol, graph=graph, spec=stereo_spec(mol), bonds=bonds,
                         bond_ref=rcov[bonds[:, 0]] + rcov[bonds[:, 1]] if len(bonds) else np.zeros(0),
                         n_requested=n_requested, n_keep=int(n), uid=uid,
                         bounds=geometry_bounds(mol), amides=amide_rotors(mol) if trans_amides else None,
                         fragments=[np.array(f, dtype=np.int64) for f in frags] if multi else None,
                         radii=np.array([table.GetRvdw(a.GetAtomicNum()) for a in mol.GetAtoms()]) if multi else None)
