"""Build a GEOM ``rdkit_folder`` fixture from real GEOM conformers, in GEOM's documented format.

Source: ``geom_drugs_train10/true_conformers_train_first_10smis.pkl`` (real GEOM-Drugs conformers, one Mol each).
Its keys are GEOM SMILES with ``/`` replaced by ``_`` (i.e. GEOM pickle file names), so the GEOM key is the key
with ``_`` turned back into ``/`` (``_`` never occurs in SMILES).

Layout written (as in ../shared/data/README.md)::

    ROOT/summary_drugs.json     {smiles: {charge, ensembleenergy, ..., totalconfs, uniqueconfs, pickle_path}}
    ROOT/drugs/<smiles with / -> _>.pickle
        {summary keys..., "smiles", "conformers": [{geom_id, set, degeneracy, totalenergy, relativeenergy,
                                                    boltzmannweight, conformerweights, rd_mol}, ...]}

The coordinates are GEOM's; the shared pickle holds no energies, so the fixture assigns Boltzmann weights
``w_i ~ exp(-E_i / kT)`` from made-up relative energies ``E_i`` (kcal/mol) drawn with a fixed seed. Conformers
are stored in a shuffled order so that "highest weight first" is a real operation.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

TRAIN10 = "geom_drugs_train10/true_conformers_train_first_10smis.pkl"
KT_KCAL = 0.0019872041 * 298.15


def load_train10(shared_data: Path) -> dict:
    """The shared torsional-diffusion pickle (trusted fixture file, read with the plain unpickler)."""
    with open(shared_data / TRAIN10, "rb") as fh:
        return pickle.load(fh)


def build_rdkit_folder(root: Path, shared_data: Path, *, copies: int = 1, seed: int = 0,
                       max_mols: int | None = None) -> Path:
    """Write the fixture under ``root`` and return ``root``.

    Args:
        root: output directory (created).
        shared_data: the ../shared/data directory.
        copies: write each molecule this many times under distinct keys (``"<smiles> copy<k>"``: RDKit reads the
            text after a space as a name), to make large datasets for benchmarks.
        seed: seed of the made-up energies and of the stored conformer order.
        max_mols: only the first ``max_mols`` molecules.
    """
    rng = np.random.default_rng(seed)
    data = load_train10(shared_data)
    root = Path(root)
    (root / "drugs").mkdir(parents=True, exist_ok=True)
    summary = {}
    geom_id = 1
    for m_i, (td_key, mols) in enumerate(data.items()):
        if max_mols is not None and m_i >= max_mols:
            break
        smiles = td_key.replace("_", "/")
        for k in range(copies):
            key = smiles if copies == 1 else f"{smiles} copy{k}"
            energies = np.sort(rng.exponential(1.5, size=len(mols)))
            energies -= energies[0]
            boltz = np.exp(-energies / KT_KCAL)
            boltz /= boltz.sum()
            order = rng.permutation(len(mols))
            conformers = []
            for i in order:
                conformers.append({
                    "geom_id": geom_id, "set": 1, "degeneracy": 1,
                    "totalenergy": float(-80.0 + energies[i] / 627.509),
                    "relativeenergy": float(energies[i]),
                    "boltzmannweight": float(boltz[i]),
                    "conformerweights": [float(boltz[i])],
                    "rd_mol": mols[i],
                })
                geom_id += 1
            file_key = key.replace("/", "_")
            rel = f"drugs/{file_key}.pickle"
            summ = {
                "charge": int(sum(a.GetFormalCharge() for a in mols[0].GetAtoms())),
                "ensembleenergy": float((boltz * energies).sum()),
                "ensembleentropy": float(-(boltz * np.log(boltz)).sum()),
                "ensemblefreeenergy": 0.0,
                "lowestenergy": -80.0,
                "poplowestpct": float(100 * boltz.max()),
                "temperature": 298.15,
                "totalconfs": len(mols),
                "uniqueconfs": len(mols),
            }
            with open(root / rel, "wb") as fh:
                pickle.dump({**summ, "smiles": key, "conformers": conformers}, fh)
            summary[key] = {**summ, "pickle_path": rel}
    with open(root / "summary_drugs.json", "w") as fh:
        json.dump(summary, fh)
    return root
