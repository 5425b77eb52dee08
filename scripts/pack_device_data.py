"""Pack what ``scripts/device_train.sh`` needs into one ignored folder that travels to a GPU machine.

A lent GPU machine has PyTorch and PyG but no RDKit, no qm9pack and no ``../shared``; what travels is limited
(64 MiB with the repository). This writes, under ``OUT`` (default ``work_data/device``, ignored by git):

* ``qm9.csv.xz``: every QM9 molecule of the ``qm9pack`` package (SMILES, elements, DFT coordinates rounded to
  1e-3 Angstrom), in the QM9-CSV layout that ``confgen prepare`` reads; no molecule is dropped here;
* ``exclude/``: copies of the evaluation files (GEOM-QM9 and GEOM-Drugs test splits, the QM9 DFT CSV, the
  shared GEOM-Drugs reference sets), given to ``confgen prepare --exclude`` on the machine, so the exclusion
  happens where the dataset is built and is recorded in its summary (and the checkpoint's ``trained_on``);
* ``drugs/``: any prepared dataset directories named with ``--drugs`` (e.g. the GFN2-xTB ensembles built from
  ``train_pool_smiles.smi``), copied as they are (already featurised; ``confgen prepare`` excluded the
  evaluation molecules when they were built).

The RDKit wheel for the machine's Python 3.12 goes to ``.whl/`` (ignored), see ``scripts/device_train.sh``.

Usage: ``python scripts/pack_device_data.py --shared ../shared/data [--drugs work_data/drugs_xtb] [--max-molecules N]``
"""

from __future__ import annotations

import argparse
import csv
import json
import lzma
import re
import shutil
from pathlib import Path

#: shared file -> name of its copy
EXCLUDE = {
    "splits/geom_qm9/test_smiles.csv": "geom_qm9_test_smiles.csv",
    "splits/geom_drugs/test_smiles.csv": "geom_drugs_test_smiles.csv",
    "qm9/geom_qm9_test_matched_qm9_dft_geometry.csv": "geom_qm9_test_matched_qm9_dft_geometry.csv",
    "geom_drugs_tora3d7/index.csv": "geom_drugs_tora3d7_index.csv",
    "geom_drugs_train10/true_conformers_train_first_10smis.sdf": "true_conformers_train_first_10smis.sdf",
}
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", required=True, help="the shared data folder (../shared/data)")
    ap.add_argument("--out", default="work_data/device")
    ap.add_argument("--drugs", nargs="*", default=[], help="prepared drug dataset directories to carry")
    ap.add_argument("--max-molecules", type=int, default=None, help="first N QM9 molecules (smoke tests)")
    args = ap.parse_args(argv)

    from confgen.data.readers import qm9pack_files

    out = Path(args.out)
    (out / "exclude").mkdir(parents=True, exist_ok=True)
    for rel, name in EXCLUDE.items():
        shutil.copyfile(Path(args.shared) / rel, out / "exclude" / name)
    n = 0
    with lzma.open(out / "qm9.csv.xz", "wt", preset=9 | lzma.PRESET_EXTREME, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "smiles", "elements", "xyz_ang"])
        for path in qm9pack_files():
            with open(path, newline="") as src:
                for row in csv.DictReader(src):
                    if args.max_molecules is not None and n >= args.max_molecules:
                        break
                    xyz = [float(v) for v in _NUMBER.findall(row["XYZ_Ang"])]
                    coords = ",".join(f"[{xyz[i]:.3f},{xyz[i + 1]:.3f},{xyz[i + 2]:.3f}]"
                                      for i in range(0, len(xyz), 3))
                    elements = "[" + ",".join(f"'{e}'" for e in element_list(row["Elements"])) + "]"
                    w.writerow([row["Index"], row["SMILES"], elements, f"[{coords}]"])
                    n += 1
    for d in args.drugs:
        shutil.copytree(d, out / "drugs" / Path(d).name, dirs_exist_ok=True)
    info = {"qm9_molecules": n, "exclude": sorted(p.name for p in (out / "exclude").iterdir()),
            "drugs": [Path(d).name for d in args.drugs]}
    (out / "manifest.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info), f"{_mib(out):.1f} MiB")
    _check_travel_size(out)
    return 0


def _mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20 if folder.is_dir() else 0.0


#: what a device call may send: the working tree's tracked and untracked-not-ignored files plus carried paths
TRAVEL_LIMIT_MIB = 64


def _check_travel_size(pack: Path) -> None:
    """Print what the device call will send (tracked files + the pack + .whl/) against the 64 MiB limit, and
    how to get under it: the committed datasets under data/ are the bulk and are not needed on the machine."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return
    present = [root / f for f in files.decode().split("\0") if f and (root / f).is_file()]
    tracked = sum(p.stat().st_size for p in present) / 2**20
    total = tracked + _mib(pack) + _mib(root / ".whl")
    print(f"the device call sends about {total:.1f} MiB (tracked files {tracked:.1f}, pack {_mib(pack):.1f}, "
          f".whl {_mib(root / '.whl'):.1f}; limit {TRAVEL_LIMIT_MIB} MiB)")
    if total > TRAVEL_LIMIT_MIB:
        big = sorted(((_mib(d), d.name) for d in (root / "data").iterdir() if d.is_dir()), reverse=True)
        print("  over the limit: move these data/ folders out of the checkout for the call and back after it "
              "(the machine does not read them; pass a prepared drug dataset with --drugs instead): "
              + ", ".join(f"data/{n} {m:.1f} MiB" for m, n in big))


def element_list(text: str) -> list[str]:
    """``"['C','H']"`` -> ``["C", "H"]`` (the qm9pack Elements column)."""
    return re.findall(r"[A-Z][a-z]?", text)


if __name__ == "__main__":
    raise SystemExit(main())
