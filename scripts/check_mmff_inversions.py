"""Does MMFF94 itself invert the fused small rings that confgen writes unrelaxed? (QM9 PoseBusters failures)

    python scripts/check_mmff_inversions.py [SMILES ...]

For each molecule (default: the four GEOM-QM9 test molecules whose conformers failed PoseBusters'
internal-energy check unrelaxed in docs/results/qm9_dft_auto.json): embeds 8 ETKDGv3 conformers, minimises them
with MMFF94 (2,000 iterations) and counts those with the input's stereo before and after (confgen's stereo
rule); then takes 8 conformers of confgen's default pipeline without relaxation, minimises each in steps of 5
iterations, stops before the step that inverts a centre, and prints the iterations reached, the MMFF94 energies
before and after, and how many pass PoseBusters' "mol" checks.
"""

from __future__ import annotations

import sys

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem

import confgen
from confgen.chem.stereo import check_stereo, stereo_spec
from confgen.validity import check_validity_many

DEFAULT = ["C[C@@]1(CO)O[C@H]2C[C@]21O", "CC[C@@H]1[C@H](O)[C@]2(O)C[C@H]12", "CN1C[C@@]2(O)[C@@H](C=O)[C@@H]12",
           "CC[C@H]1C[C@H]2[C@@H](O)[C@@]12O"]


def positions(mol: Chem.Mol) -> np.ndarray:
    return np.stack([c.GetPositions() for c in mol.GetConformers()])


def main(smiles_list: list[str]) -> None:
    for smi in smiles_list:
        mol = Chem.AddHs(Chem.MolFromSmiles(smi))
        spec = stereo_spec(mol)
        params = AllChem.ETKDGv3()
        params.randomSeed = 1
        if len(AllChem.EmbedMultipleConfs(mol, 8, params)):
            before = int(check_stereo(spec, positions(mol)).ok.sum())
            AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
            after = int(check_stereo(spec, positions(mol)).ok.sum())
            print(f"{smi}: ETKDG {mol.GetNumConformers()} conformers, {before} with the input's stereo, "
                  f"{after} after MMFF94")
        else:
            print(f"{smi}: ETKDG embeds none")
        raw = confgen.generate(smi, 8, seed=1, relax="none")
        work = Chem.Mol(raw)
        props = AllChem.MMFFGetMoleculeProperties(work)
        iters, e_raw, e_partial = [], [], []
        for conf in work.GetConformers():
            ff = AllChem.MMFFGetMoleculeForceField(work, props, confId=conf.GetId())
            e_raw.append(ff.CalcEnergy())
            last, n = conf.GetPositions(), 0
            while n < 2000:
                ff.Minimize(maxIts=5)
                n += 5
                pos = np.array(ff.Positions()).reshape(-1, 3)
                if not check_stereo(spec, pos[None]).ok[0]:
                    break
                last = pos
            conf.SetPositions(last)
            iters.append(n)
            e_partial.append(ff.CalcEnergy(last.ravel().tolist()))
        results = check_validity_many([(work, [c.GetId() for c in work.GetConformers()])])[0]
        print(f"  confgen raw, minimised until just before an inversion: iterations {iters}; MMFF94 energy "
              f"{np.round(e_raw, 0).tolist()} -> {np.round(e_partial, 0).tolist()} kcal/mol; PoseBusters pass "
              f"{sum(r.passed for r in results)}/{len(results)}")


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
