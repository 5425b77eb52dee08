"""Write GFN2-xTB ensembles of data/geom_drugs_xtb as a reference SDF (a check beyond the 17 shared molecules).

    python scripts/xtb_reference_set.py OUT.sdf [--skip-first 200] [--max-molecules 40] [--window KCAL]

The molecules are taken in source-line order after the first ``--skip-first`` built ones (the EDM models'
training mixtures used the xTB ensembles of the first 158 and 198 molecules built; the refiner of ``refine``
used every built molecule except the 40 this script writes with its defaults, excluded by passing its output to
``confgen prepare --exclude``: docs/model_card.md; keep doing so, or the set stops being held out), each
with its conformers within ``--window`` kcal/mol of its lowest GFN2-xTB energy (default: the window
``confgen prepare`` reads the shards with, 6), and at least 4 of them. Their SMILES are among the first
3,000 of the train pool, whose ETKDG + MMFF94 ensembles the shipped EDM model was trained on: the set is held out at the GFN2-xTB level only. Score
a method against it with ``confgen benchmark OUT.sdf --methods ...``. The references are built from ETKDG
conformers (MMFF94, then GFN2-xTB minima), so they favour methods that start from ETKDG: the set cannot rank
those against samplers from noise (docs/benchmarks.md, "Beyond the 17 shared molecules").
"""

from __future__ import annotations

import argparse
import os
import tempfile

from rdkit import Chem

from confgen.chem.forcefield import KCAL_PER_HARTREE
from confgen.data.readers.shard_dir import SHARD_ENERGY_WINDOW
from confgen.data.shards import iter_shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--source", default="data/geom_drugs_xtb")
    parser.add_argument("--skip-first", type=int, default=200)
    parser.add_argument("--max-molecules", type=int, default=40)
    parser.add_argument("--window", type=float, default=SHARD_ENERGY_WINDOW)
    args = parser.parse_args()
    mols = sorted(iter_shards(args.source), key=lambda m: m.index)[args.skip_first:]
    kept = 0
    fd, tmp = tempfile.mkstemp(suffix=".sdf", dir=os.path.dirname(os.path.abspath(args.out)))
    os.close(fd)
    with Chem.SDWriter(tmp) as writer:
        for m in mols:
            rel = (m.energies - m.energies.min()) * KCAL_PER_HARTREE
            confs = [c for c, e in zip(m.mol.GetConformers(), rel) if e <= args.window]
            if len(confs) < 4:
                continue
            m.mol.SetProp("_Name", f"xtb-line-{m.index}")
            for c in confs:
                writer.write(m.mol, confId=c.GetId())
            kept += 1
            if kept == args.max_molecules:
                break
    os.replace(tmp, args.out)
    print(f"wrote {kept} molecules (from {len(mols)} after the first {args.skip_first}) to {args.out}")


if __name__ == "__main__":
    main()
