"""Which PoseBusters checks fail on the conformers a QM9 benchmark run checked (the same 200, regenerated).

    python scripts/pb_failures_qm9.py mmff docs/results/qm9_dft_mmff.json confgen-mmff

Arguments: the relax mode of the run, its benchmark JSON, the method name. Regenerates exactly the molecules
that hold the evenly spread conformers the benchmark checked (per-molecule seeds make them identical) and
prints each failure with the failed checks.
"""
import json, sys, collections
from pathlib import Path
import torch
torch.set_num_threads(1)
from confgen.benchmark import input_mol, pick_evenly, qm9_num_confs
from confgen.evaluation import load_ensembles
from confgen.generation import GenerationRequest, generate_conformers
from confgen.validity import check_validity_many
REF = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9" / "geom_qm9_test_matched_qm9_dft_geometry.csv"
relax = sys.argv[1]
res = json.load(open(sys.argv[2]))
method = sys.argv[3]
recs, _, _ = load_ensembles(REF, side="reference")
counts = qm9_num_confs(REF)
recs = [r for r in recs if r.mol.GetNumConformers()]
nums = [2 * max(1, counts.get(r.smiles, 0)) for r in recs]
pm = {p["name"]: p for p in res["methods"][method]["evaluation"]["per_molecule"]}
ngen = [pm[r.name]["n_gen"] if r.name in pm else 0 for r in recs]
pairs = [(k, c) for k, n in enumerate(ngen) for c in range(n)]
picked = [pairs[i] for i in pick_evenly(len(pairs), 200)]
mols = sorted({k for k, _ in picked})
request = GenerationRequest([input_mol(recs[k]) for k in mols], [nums[k] for k in mols], ids=mols, seed=42,
                            relax=relax, progress=False)
out = generate_conformers(request, errors=[])
by = dict(zip(mols, out))
items = []
for k, c in picked:
    if items and items[-1][0] == k: items[-1][1].append(c)
    else: items.append((k, [c]))
results = check_validity_many([(by[k], ids) for k, ids in items])
fails = collections.Counter()
nf = 0
for (k, ids), rr in zip(items, results):
    for c, r in zip(ids, rr):
        if not r.passed:
            nf += 1; fails.update(r.failed)
            print(recs[k].smiles, c, r.failed, "n_gen", by[k].GetNumConformers())
print("failed", nf, "of", len(picked), dict(fails))
