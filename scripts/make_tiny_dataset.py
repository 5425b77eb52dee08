#!/usr/bin/env python
"""Build the tiny training set shipped with the tests: tests/data/tiny_qm9/ (summary.json + shards).

About 200 QM9 molecules with their DFT (B3LYP) geometries from the installed ``qm9pack`` package, spread over
the first rows of ``qm9_part1.csv`` (every ``--stride``-th row), with every molecule of the evaluation sets
removed by stereo-free canonical SMILES (GEOM-QM9 test split and the GEOM-QM9 test molecules matched to QM9).

    python scripts/make_tiny_dataset.py [--out tests/data/tiny_qm9] [--n 200] [--n-val 40] [--stride 37]

Molecules are read with ``confgen.data.readers.iter_molecules`` when that module is available (geometry
mapped onto the SMILES graph), else built from the xyz with RDKit's ``rdDetermineBonds``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from rdkit import Chem, RDLogger

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
EXCLUDE = [SHARED / "splits" / "geom_qm9" / "test_smiles.csv",
           SHARED / "qm9" / "geom_qm9_test_matched_qm9_dft_geometry.csv"]

csv.field_size_limit(1 << 30)


def stereo_free(smiles_or_mol) -> str | None:
    try:
        from confgen.chem.smiles import canonical_smiles
        return canonical_smiles(smiles_or_mol, stereo=False)
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - unparsable SMILES
        return None
    mol = Chem.MolFromSmiles(smiles_or_mol) if isinstance(smiles_or_mol, str) else Chem.Mol(smiles_or_mol)
    if mol is None:
        return None
    return Chem.MolToSmiles(Chem.RemoveHs(mol), isomericSmiles=False)


def exclusion_set() -> set[str]:
    out: set[str] = set()
    for f in EXCLUDE:
        if not f.is_file():
            sys.exit(f"exclusion list {f} not found: refusing to build a training set without it")
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                for col in ("smiles", "geom_smiles", "qm9_smiles", "corrected_smiles"):
                    if row.get(col):
                        can = stereo_free(row[col])
                        out.add(can or row[col])
    return out


def qm9_csv() -> Path:
    import importlib.util
    spec = importlib.util.find_spec("qm9pack")
    if spec is None:
        sys.exit("qm9pack is not installed (pip install qm9pack)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "qm9_part1.csv"


def mol_from_xyz(elements: list[str], xyz: list[list[float]]) -> Chem.Mol | None:
    from rdkit.Chem import rdDetermineBonds
    block = f"{len(elements)}\n\n" + "\n".join(f"{e} {x:.10f} {y:.10f} {z:.10f}" for e, (x, y, z) in zip(elements, xyz))
    mol = Chem.MolFromXYZBlock(block)
    if mol is None:
        return None
    try:
        rdDetermineBonds.DetermineBonds(mol, charge=0)
        Chem.SanitizeMol(mol)
        Chem.AssignStereochemistryFrom3D(mol)
    except Exception:  # noqa: BLE001 - skip molecules RDKit cannot perceive
        return None
    return mol


def candidate_mols(rows: list[dict]) -> list[tuple[str, Chem.Mol]]:
    """(qm9 SMILES, Mol with explicit H and one DFT conformer) for each row that can be built."""
    try:
        from confgen.data.readers import iter_molecules
    except ImportError:
        iter_molecules = None
    out = []
    if iter_molecules is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "qm9_selection.csv"
            with open(path, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
                w.writeheader()
                w.writerows(rows)
            errors: list = []
            for rec in iter_molecules(str(path), errors=errors):
                if rec.mol is not None and rec.mol.GetNumConformers():
                    out.append((rec.smiles, rec.mol))
            print(f"iter_molecules: {len(out)} molecules, {len(errors)} skipped", file=sys.stderr)
        return out
    for row in rows:
        mol = mol_from_xyz(eval(row["Elements"], {}), json.loads(row["XYZ_Ang"]))  # noqa: S307 - list literal
        if mol is not None:
            out.append((row["SMILES"], mol))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "tiny_qm9"))
    ap.add_argument("--n", type=int, default=200, help="molecules in total")
    ap.add_argument("--n-val", type=int, default=40, help="of which validation")
    ap.add_argument("--stride", type=int, default=37, help="take every stride-th QM9 row")
    ap.add_argument("--min-heavy", type=int, default=4)
    args = ap.parse_args(argv)
    RDLogger.DisableLog("rdApp.*")
    sys.path.insert(0, str(REPO))
    from confgen.data.dataset import save_shard
    from confgen.data.features import featurize_mol

    excluded = exclusion_set()
    src = qm9_csv()
    rows = []
    with open(src, newline="") as fh:
        for k, row in enumerate(csv.DictReader(fh)):
            if k % args.stride == 0:
                rows.append(row)
            if len(rows) >= 3 * args.n:
                break
    graphs, names, n_excluded, n_small = [], [], 0, 0
    for smiles, mol in candidate_mols(rows):
        if stereo_free(mol) in excluded or stereo_free(smiles) in excluded:
            n_excluded += 1
            continue
        if mol.GetNumHeavyAtoms() < args.min_heavy:
            n_small += 1
            continue
        try:
            g = featurize_mol(mol, with_pos=True)
        except Exception as exc:  # noqa: BLE001
            print(f"skip {smiles}: {exc}", file=sys.stderr)
            continue
        g.weights = torch.ones(g.conformers.shape[0])
        graphs.append(g)
        names.append(smiles)
        if len(graphs) >= args.n:
            break
    n_train = len(graphs) - args.n_val
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.pt"):
        old.unlink()
    save_shard(out / "train_00000.pt", graphs[:n_train])
    save_shard(out / "val_00000.pt", graphs[n_train:])
    summary = {
        "n_molecules": len(graphs), "n_conformers": sum(int(g.conformers.shape[0]) for g in graphs),
        "n_train_molecules": n_train, "n_val_molecules": len(graphs) - n_train,
        "n_skipped": 0, "skipped": [],
        "sources": [f"qm9pack:{src.name} (every {args.stride}th row, DFT B3LYP/6-31G(2df,p) geometries)"],
        "excluded": {"files": [str(f.relative_to(SHARED.parent)) for f in EXCLUDE],
                     "n_excluded_molecules": n_excluded},
        "built_by": "scripts/make_tiny_dataset.py",
    }
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(tmp, out / "summary.json")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out}: {n_train} train + {len(graphs) - n_train} val molecules, {n_excluded} excluded, "
          f"{n_small} too small, {size / 1024:.0f} KiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
