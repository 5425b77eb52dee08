"""Can the score network choose among ETKDG-seeded candidates without MMFF94? (issue 10, raw output; a trial)

    python scripts/plausibility_filter_trial.py REFERENCES [--sigma 0.3] [--drop 0.25]

Per reference molecule (n = 2 x its reference conformers): 2n conformers of the ``fast`` preset without
oversampling and without relaxation (2n ETKDG guesses, each refined by the default model). Two ways to keep n:

* ``diverse``: the n most diverse of the 2n (the selection the pipeline uses);
* ``network-filtered``: first drop the ``--drop`` share that the default model reconstructs worst (noise of
  ``--sigma`` A added, denoised in one call as x + sigma^2 x score, mean squared error to the candidate over 4
  draws), then the n most diverse of the rest.

Prints COV-R / COV-P at 0.75 and 1.25 A and MAT-R / MAT-P (means over molecules) of both, one JSON line each.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from rdkit import Chem
from torch_geometric.data import Batch

from confgen.benchmark import input_mol
from confgen.chem.conformers import with_conformers
from confgen.chem.selection import most_diverse
from confgen.config import resolve_preset
from confgen.data.features import featurize_mol
from confgen.data.graph import all_pairs
from confgen.evaluation.loading import load_ensembles
from confgen.evaluation.matching import evaluate_ensembles
from confgen.evaluation.metrics import headline
from confgen.generation import generate
from confgen.generation.request import resolve_model

DRAWS = 4


def reconstruction_error(model, mol: Chem.Mol, pos: list[np.ndarray], sigma: float, gen: torch.Generator) -> np.ndarray:
    """[K] mean squared one-call denoising error of each conformer (lower: more plausible to the network)."""
    template = Chem.Mol(mol)
    template.RemoveAllConformers()
    batch = Batch.from_data_list([featurize_mol(template)] * len(pos))
    pairs = all_pairs(batch.ptr) if model.cutoff > 0 else None
    x = torch.tensor(np.concatenate(pos), dtype=torch.float32)
    sig = torch.full((x.shape[0],), sigma)
    err = np.zeros(len(pos))
    with torch.no_grad():
        for _ in range(DRAWS):
            noisy = x + sigma * torch.randn(x.shape, generator=gen)
            denoised = noisy + sig[:, None] ** 2 * model(batch, noisy, sig, pairs=pairs)
            sq = ((denoised - x) ** 2).sum(-1)
            err += np.array([float(sq[batch.ptr[i]:batch.ptr[i + 1]].mean()) for i in range(len(pos))])
    return err / DRAWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references")
    parser.add_argument("--sigma", type=float, default=0.3)
    parser.add_argument("--drop", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = resolve_model(None, torch.device("cpu"))
    records, _, _ = load_ensembles(args.references, side="reference")
    gen = torch.Generator().manual_seed(0)
    kept: dict[str, list] = {"diverse": [], "network-filtered": []}
    preset = resolve_preset("fast", {"oversample": 1.0})
    for rec in records:
        n = 2 * rec.mol.GetNumConformers()
        cands = generate(input_mol(rec), 2 * n, preset=preset, relax="none", seed=args.seed, progress=False)
        confs = list(cands.GetConformers())
        pos = [c.GetPositions() for c in confs]
        err = reconstruction_error(model, cands, pos, args.sigma, gen)
        plausible = np.argsort(err)[:max(n, int(round(len(pos) * (1 - args.drop))))]
        kept["diverse"].append(with_conformers(cands, [confs[i] for i in most_diverse(cands, pos, n)]))
        chosen = [plausible[i] for i in most_diverse(cands, [pos[k] for k in plausible], n)]
        kept["network-filtered"].append(with_conformers(cands, [confs[i] for i in chosen]))
    for name, mols in kept.items():
        res = evaluate_ensembles(mols, records)
        print(json.dumps({"selection": name, "sigma": args.sigma, "drop": args.drop, **headline(res["results"])}),
              flush=True)


if __name__ == "__main__":
    main()
