#!/usr/bin/env python
"""Mix datasets written by ``confgen prepare`` into one training dataset (symlinked shards, no copies).

    python scripts/mix_datasets.py -o work_data/mix --part work_data/qm9 shards=8 \
        --part work_data/drugs repeat=2 --val-from work_data/drugs

Each ``--part DIR [shards=K] [repeat=R]`` adds the first K train shards of DIR (default: all), each linked R
times (default 1) so that a small dataset is seen R times per epoch. Validation shards come from the datasets
given to ``--val-from`` (default: every part). ``summary.json`` sums the parts' counts and keeps their
``sources``, ``exclusion_files`` and full summaries under ``components``, so a checkpoint trained on the mix
records what it was trained on. Written to a temporary directory and renamed at the end.

This is how the shipped default model's fine-tuning set was built (docs/model_card.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path


def parse_parts(raw: list[list[str]]) -> list[dict]:
    parts = []
    for item in raw:
        path, opts = Path(item[0]).resolve(), {"shards": None, "repeat": 1}
        for opt in item[1:]:
            key, sep, value = opt.partition("=")
            if not sep or key not in opts or not value.isdigit() or int(value) < 1:
                sys.exit(f"mix_datasets: --part {item[0]}: bad option {opt!r} (shards=K or repeat=R, K, R >= 1)")
            opts[key] = int(value)
        if not (path / "summary.json").is_file():
            sys.exit(f"mix_datasets: {path}: not a confgen dataset (no summary.json)")
        parts.append({"path": path, **opts})
    return parts


def union_of_exclusions(summaries: list[dict]) -> list[dict]:
    """Every exclusion file of every part, once (by path and digest): a part may exclude more than the others."""
    seen, out = set(), []
    for s in summaries:
        for f in s.get("exclusion_files") or []:
            key = (f.get("path"), f.get("sha256"))
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--part", nargs="+", action="append", required=True, metavar="DIR [shards=K] [repeat=R]")
    ap.add_argument("--val-from", nargs="*", default=None, metavar="DIR")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        sys.exit(f"mix_datasets: {out} exists; remove it or choose another -o")
    parts = parse_parts(args.part)
    val_dirs = [Path(v).resolve() for v in args.val_from] if args.val_from is not None else [p["path"] for p in parts]
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    summaries, mixture, links = {}, [], {}
    for k, part in enumerate(parts):
        shards = sorted(part["path"].glob("train_*.pt"))[: part["shards"]]
        for rep in range(part["repeat"]):
            for i, shard in enumerate(shards):
                links[f"train_p{k}r{rep}_{i:05d}.pt"] = shard
        summaries[str(part["path"])] = json.loads((part["path"] / "summary.json").read_text())
        mixture.append({"dataset": str(part["path"]), "train_shards_used": len(shards), "repeat": part["repeat"]})
    for k, d in enumerate(val_dirs):
        for i, shard in enumerate(sorted(d.glob("val_*.pt"))):
            links[f"val_p{k}_{i:05d}.pt"] = shard
    for name, target in links.items():
        os.symlink(target, tmp / name)
    comps = list(summaries.values())
    summary = {key: sum(int(s.get(key, 0)) for s in comps) for key in ("n_molecules", "n_conformers", "n_skipped")}
    summary.update(
        format=comps[0].get("format"),
        skipped=[x for s in comps for x in s.get("skipped", [])],
        sources=[x for s in comps for x in s.get("sources", [])],
        exclusion_files=union_of_exclusions(comps),
        mixture={"parts": mixture, "val_from": [str(v) for v in val_dirs]},
        components=summaries,
    )
    (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    tmp.rename(out)
    n_train = sum(1 for n in links if n.startswith("train_"))
    print(f"mix_datasets: {out}: {n_train} train and {len(links) - n_train} val shards linked")


if __name__ == "__main__":
    main()
