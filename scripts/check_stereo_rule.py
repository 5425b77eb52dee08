"""How well does a chirality rule reproduce RDKit's perception from 3D (AssignStereochemistryFrom3D)?

Over the stereo molecules of the GEOM-QM9 test split: their DFT geometries, 3 ETKDG conformers each and the same
after MMFF94 minimisation. Rules: "old" (normalised centre volume >= 0.1), "new" (neighbour tetrahedron >= 0.1),
"hybrid" (tetrahedron where |centre volume| < 0.1), "prev" (the rule before RDKit's was re-implemented:
tetrahedron where |centre volume| < 0.03), "rd" (confgen.chem.stereo.centre_ok: RDKit's rule with margins). Prints
the number of disagreements per rule and set.

    python scripts/check_stereo_rule.py
"""
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem
from confgen.chem.stereo import centre_ok, chiral_volumes, stereo_spec, tetrahedron_volumes
from confgen.evaluation import load_ensembles
from confgen.rdlog import quiet_rdkit
QM9 = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9" / "geom_qm9_test_matched_qm9_dft_geometry.csv"
recs, _, _ = load_ensembles(QM9, side="reference")

def vols(sp, pos, kind):
    f = chiral_volumes if kind == "center" else tetrahedron_volumes
    return f(sp, pos)[0] * sp.signs

def rule(sp, pos, name):
    c = vols(sp, pos, "center"); t = vols(sp, pos, "tet")
    if name == "old": return bool((c >= 0.1).all())
    if name == "new": return bool((t >= 0.1).all())
    if name == "rd": return bool(centre_ok(sp, pos)[0].all())
    if name == "hybrid": return bool(np.where(np.abs(c) < 0.1, t >= 0.1, c >= 0.1).all())
    if name == "prev": return bool(np.where(np.abs(c) < 0.03, t >= 0.1, c >= 0.03).all())

def rd_ok(m, pos):
    one = Chem.Mol(m); one.RemoveAllConformers()
    conf = Chem.Conformer(one.GetNumAtoms())
    for i, p in enumerate(pos): conf.SetAtomPosition(i, p.tolist())
    one.AddConformer(conf); Chem.AssignStereochemistryFrom3D(one)
    return Chem.MolToSmiles(Chem.RemoveHs(one)) == Chem.MolToSmiles(Chem.RemoveHs(m))

RULES = ("old", "new", "hybrid", "prev", "rd")
dis = {k: {r: 0 for r in RULES} for k in ("dft", "etkdg", "mmff")}
n = {k: 0 for k in dis}
for r in recs:
    m = r.mol; sp = stereo_spec(m)
    if sp.num_centers == 0: continue
    sets = {"dft": [c.GetPositions() for c in m.GetConformers()]}
    e = Chem.Mol(m); e.RemoveAllConformers()
    with quiet_rdkit():
        cids = list(AllChem.EmbedMultipleConfs(e, 3, randomSeed=5))
        sets["etkdg"] = [e.GetConformer(c).GetPositions() for c in cids]
        w = Chem.Mol(e)
        if cids: AllChem.MMFFOptimizeMoleculeConfs(w, maxIters=2000)
        sets["mmff"] = [c.GetPositions() for c in w.GetConformers()]
    for k, ps in sets.items():
        for p in ps:
            n[k] += 1
            truth = rd_ok(m, p)
            for rn in RULES:
                if rule(sp, p, rn) != truth:
                    dis[k][rn] += 1
                    if rn == "rd": print(k, rn, r.smiles, "rdkit", truth, np.round(vols(sp,p,"center"),2), np.round(vols(sp,p,"tet"),2))
print(n); print(dis)
