"""Can the ``fast`` refinement repair the ``edm`` preset's raw samples? (issue 10, a measured dead end)

    python scripts/refine_edm_samples.py REFERENCES [--sigma-max 0.1,0.3,0.6]

For every reference molecule, 2 x its reference conformers are sampled from noise with ``edm`` (the shipped EDM
model, ``--relax none``); each sample is then used as the initial guess of the ``fast`` preset's refinement (the
default model, no oversampling) at each ``--sigma-max``, in place of an ETKDG guess. Prints one JSON line per
variant: COV-R / COV-P at 0.75 and 1.25 A and MAT-R / MAT-P (means over molecules) of the raw and of each refined
ensemble.
"""

from __future__ import annotations

import argparse
import json

import torch

import confgen.generation.initial_guess as initial_guess
from confgen.benchmark import input_mol
from confgen.config import resolve_preset
from confgen.evaluation.loading import load_ensembles
from confgen.evaluation.matching import evaluate_ensembles
from confgen.evaluation.metrics import headline
from confgen.generation import generate


def summary(res: dict) -> dict:
    return {"molecules": len(res["per_molecule"]), **headline(res["results"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references")
    parser.add_argument("--sigma-max", default="0.1,0.3,0.6")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sigmas = [float(x) for x in args.sigma_max.split(",")]
    records, _, _ = load_ensembles(args.references, side="reference")
    ensembles: dict[str, list] = {"edm raw": [], **{f"edm + fast refinement, sigma_max {s}": [] for s in sigmas}}
    etkdg = initial_guess.etkdg_guesses
    try:
        for rec in records:
            mol, n = input_mol(rec), 2 * rec.mol.GetNumConformers()
            raw = generate(mol, n, preset="edm", relax="none", seed=args.seed, progress=False)
            ensembles["edm raw"].append(raw)
            pool = [c.GetPositions() for c in raw.GetConformers()]
            for s in sigmas:
                guesses = iter(pool * 4)  # retries take further guesses
                initial_guess.etkdg_guesses = lambda m, k, *a, **kw: [next(guesses) for _ in range(k)]
                preset = resolve_preset("fast", {"oversample": 1.0, "sigma_max": s})
                refined = generate(mol, n, preset=preset, relax="none", seed=args.seed, progress=False)
                ensembles[f"edm + fast refinement, sigma_max {s}"].append(refined)
                initial_guess.etkdg_guesses = etkdg
    finally:
        initial_guess.etkdg_guesses = etkdg
    for name, mols in ensembles.items():
        print(json.dumps({"variant": name, **summary(evaluate_ensembles(mols, records))}), flush=True)


if __name__ == "__main__":
    main()
