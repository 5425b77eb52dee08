"""scripts/mix_datasets.py: a mixture records what every part was trained on, exclusions of every part included."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mix_datasets.py"


def _dataset(root: Path, name: str, n_train: int, exclusions: list[dict]) -> Path:
    d = root / name
    d.mkdir()
    for i in range(n_train):
        (d / f"train_{i:05d}.pt").write_bytes(b"shard")
    (d / "val_00000.pt").write_bytes(b"val")
    (d / "summary.json").write_text(json.dumps({
        "format": "confgen-dataset-v1", "n_molecules": 10 * n_train, "n_conformers": 20 * n_train, "n_skipped": 0,
        "skipped": [], "sources": [{"path": name}], "exclusion_files": exclusions}))
    return d


def test_mixture_links_shards_and_keeps_the_union_of_the_parts_exclusions(tmp_path):
    shared = [{"path": "splits/test_smiles.csv", "sha256": "aa"}]
    qm9 = _dataset(tmp_path, "qm9", 3, shared)
    xtb = _dataset(tmp_path, "xtb", 1, shared + [{"path": "xtb_refs40.sdf", "sha256": "bb"}])
    out = tmp_path / "mix"
    run = subprocess.run([sys.executable, str(SCRIPT), "-o", str(out), "--part", str(qm9), "shards=2",
                          "--part", str(xtb), "repeat=3", "--val-from", str(xtb)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [f["path"] for f in summary["exclusion_files"]] == ["splits/test_smiles.csv", "xtb_refs40.sdf"]
    assert summary["n_molecules"] == 40 and [s["path"] for s in summary["sources"]] == ["qm9", "xtb"]
    train = sorted(p.name for p in out.glob("train_*.pt"))
    assert len(train) == 2 + 3 and all((out / n).resolve().parent in (qm9, xtb) for n in train)
    assert [p.resolve().parent for p in out.glob("val_*.pt")] == [xtb]
    again = subprocess.run([sys.executable, str(SCRIPT), "-o", str(out), "--part", str(qm9)], capture_output=True,
                           text=True)
    assert again.returncode != 0 and "exists" in again.stderr  # never overwrites a mixture
