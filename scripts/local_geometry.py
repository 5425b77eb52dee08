"""How good is the local geometry of raw (unrelaxed) conformers, and how much of their distance to GEOM is it?

    python scripts/local_geometry.py REFERENCES [--variants etkdg,fast,refine,refine-last,refine-nopolish]
        [--max-confs 20] [--cov]

Per reference molecule, ``min(2 x its reference conformers, --max-confs)`` conformers of each variant
(``--relax none``, seed 42): ``etkdg`` is the network-off ablation (``fast``'s ETKDG guesses and selection),
``fast``/``refine``/``edm`` the presets, ``refine-last`` ``refine`` with its polishing after the levels instead
of before, ``refine-nopolish`` ``refine`` without polishing; ``geom`` is the reference conformers themselves.
Each conformer is compared with its own MMFF94 minimum *with every rotatable torsion held* (one heavy-atom
dihedral per acyclic single bond between non-terminal atoms, restrained at its value): bond-length and angle RMS
deviations (all atoms), heavy-atom RMSD to that restrained minimum and the mean signed bond-length deviation;
and its MMFF94 energy (mean over conformers, then over molecules). So local geometry (bonds, angles, ring
puckers) is judged against a force field without changing the torsions that COV/MAT are mostly about.

``--cov`` also scores each variant and its torsion-restrained minimisation against the references with
``confgen.evaluation`` (all 2 x conformers, no cap): how much COV/MAT better local geometry alone buys.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdForceFieldHelpers, rdMolAlign, rdMolTransforms

from confgen.benchmark import input_mol
from confgen.chem.forcefield import mmff_energies
from confgen.config import resolve_preset
from confgen.evaluation.loading import load_ensembles
from confgen.evaluation.matching import evaluate_ensembles
from confgen.evaluation.metrics import headline
from confgen.generation import generate

VARIANTS = {
    "etkdg": ("fast", {}, False),
    "fast": ("fast", {}, True),
    "refine": ("refine", {}, True),
    "refine-last": ("refine", {"polish_first": False}, True),
    "refine-nopolish": ("refine", {"polish_steps": 0}, True),
    "edm": ("edm", {}, True),
}


def rotatable_torsions(mol: Chem.Mol) -> list[tuple[int, int, int, int]]:
    """One dihedral (heaviest neighbours) per acyclic single bond between two non-terminal atoms."""
    out = []
    for b in mol.GetBonds():
        if b.IsInRing() or b.GetBondType() != Chem.BondType.SINGLE:
            continue
        a, c = b.GetBeginAtom(), b.GetEndAtom()
        na = sorted((n for n in a.GetNeighbors() if n.GetIdx() != c.GetIdx()), key=lambda n: -n.GetAtomicNum())
        nc = sorted((n for n in c.GetNeighbors() if n.GetIdx() != a.GetIdx()), key=lambda n: -n.GetAtomicNum())
        if na and nc:
            out.append((na[0].GetIdx(), a.GetIdx(), c.GetIdx(), nc[0].GetIdx()))
    return out


def torsion_restrained_minima(mol: Chem.Mol, force: float = 1000.0, iters: int = 500) -> Chem.Mol:
    """A copy of ``mol`` whose conformers are MMFF94-minimised with every rotatable torsion held."""
    out = Chem.Mol(mol)
    work = Chem.Mol(mol)  # MMFF94 typing re-perceives aromaticity in place: minimise a copy
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(work)
    tors = rotatable_torsions(work)
    for conf, dst in zip(work.GetConformers(), out.GetConformers()):
        ff = rdForceFieldHelpers.MMFFGetMoleculeForceField(work, props, confId=conf.GetId())
        for t in tors:
            ff.MMFFAddTorsionConstraint(*t, True, 0.0, 0.0, force)
        ff.Minimize(maxIts=iters)
        dst.SetPositions(conf.GetPositions())
    return out


def local_errors(mol: Chem.Mol, fixed: Chem.Mol) -> np.ndarray:
    """[C, 4]: bond RMS deviation (A), angle RMS deviation (deg), heavy-atom RMSD (A), mean signed bond
    deviation (A) of each conformer from its torsion-restrained minimum."""
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    angles = [(n1.GetIdx(), a.GetIdx(), n2.GetIdx()) for a in mol.GetAtoms()
              for i, n1 in enumerate(a.GetNeighbors()) for n2 in list(a.GetNeighbors())[i + 1:]]
    rows = []
    for c0, c1 in zip(mol.GetConformers(), fixed.GetConformers()):
        dl = [rdMolTransforms.GetBondLength(c0, i, j) - rdMolTransforms.GetBondLength(c1, i, j) for i, j in bonds]
        da = [rdMolTransforms.GetAngleDeg(c0, *t) - rdMolTransforms.GetAngleDeg(c1, *t) for t in angles]
        rmsd = rdMolAlign.GetBestRMS(Chem.RemoveHs(Chem.Mol(mol, confId=c0.GetId())),
                                     Chem.RemoveHs(Chem.Mol(fixed, confId=c1.GetId())))
        rows.append((np.sqrt(np.mean(np.square(dl))), np.sqrt(np.mean(np.square(da))), rmsd, np.mean(dl)))
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references")
    parser.add_argument("--variants", default="etkdg,fast,refine,refine-last,refine-nopolish")
    parser.add_argument("--max-confs", type=int, default=20)
    parser.add_argument("--cov", action="store_true")
    args = parser.parse_args()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    records, _, _ = load_ensembles(args.references, side="reference")
    errors: dict[str, list] = {}
    energies: dict[str, list] = {}
    ensembles: dict[str, list] = {}
    for rec in records:
        mol = input_mol(rec)
        n = 2 * rec.mol.GetNumConformers()
        sets = {}
        if mol.GetNumAtoms() == rec.mol.GetNumAtoms():
            sets["geom"] = Chem.Mol(rec.mol)
        for name in names:
            preset, overrides, network = VARIANTS[name]
            sets[name] = generate(mol, n if args.cov else min(n, args.max_confs),
                                  preset=resolve_preset(preset, overrides), relax="none", seed=42, network=network)
        for name, m in sets.items():
            if name != "geom" and args.cov:
                ensembles.setdefault(name, []).append(m)
                ensembles.setdefault(name + " + torsion-restrained MMFF94", []).append(torsion_restrained_minima(m))
            head = Chem.Mol(m)
            head.RemoveAllConformers()
            for c in list(m.GetConformers())[:args.max_confs]:
                head.AddConformer(Chem.Conformer(c), assignId=True)
            energies.setdefault(name, []).append(float(np.mean(mmff_energies(Chem.Mol(head)))))
            errors.setdefault(name, []).append(local_errors(head, torsion_restrained_minima(head)))
    for name, rows in errors.items():
        v = np.concatenate(rows)
        print(json.dumps({"variant": name, "conformers": len(v), "bond_rms_dev_A": round(float(v[:, 0].mean()), 4),
                          "angle_rms_dev_deg": round(float(v[:, 1].mean()), 2),
                          "heavy_rmsd_to_restrained_min_A": round(float(v[:, 2].mean()), 3),
                          "mean_signed_bond_dev_A": round(float(v[:, 3].mean()), 4),
                          "mmff94_energy_kcal_mol": round(float(np.mean(energies[name])), 1)}), flush=True)
    for name, mols in ensembles.items():
        print(json.dumps({"variant": name, **headline(evaluate_ensembles(mols, records)["results"])}), flush=True)


if __name__ == "__main__":
    main()
