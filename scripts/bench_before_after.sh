#!/usr/bin/env bash
# Speed of two checkouts measured in the same session, alternately: sampling, training step and forward pass,
# evaluation, command start-up. Each checkout runs its own scripts with PYTHONPATH pointing at itself.
#
#   bash scripts/bench_before_after.sh BEFORE_DIR AFTER_DIR OUT_DIR [ROUNDS]
#
# BEFORE_DIR / AFTER_DIR: checkouts (e.g. `git worktree add --detach /tmp/before <commit>`), both next to
# ../shared. Results: OUT_DIR/{before,after}_<round>/{sample,train,evaluate}.json and startup.txt. Compare the
# CPU-time numbers: on a shared machine wall times include waiting for a core.
set -euo pipefail
before=$(cd "$1" && pwd); after=$(cd "$2" && pwd); out=$3; rounds=${4:-1}
mkdir -p "$out"; out=$(cd "$out" && pwd)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for round in $(seq 1 "$rounds"); do
  for side in before after; do
    repo=$before; [ "$side" = after ] && repo=$after
    dir="$out/${side}_$round"; mkdir -p "$dir"
    cd "$repo"
    PYTHONPATH="$repo" python scripts/bench_sample.py --sections speed --presets fast --molecules 8 --confs 8 \
      --json "$dir/sample.json" > "$dir/sample.txt" 2>&1
    PYTHONPATH="$repo" python scripts/bench_train.py --threads 1 --repeats 3 --steps 10 \
      --json "$dir/train.json" > "$dir/train.txt" 2>&1
    PYTHONPATH="$repo" python scripts/bench_evaluate.py --json "$dir/evaluate.json" > "$dir/evaluate.txt" 2>&1
    PYTHONPATH="$repo" python scripts/bench_startup.py --repeats 5 > "$dir/startup.txt" 2>&1
    echo "$side round $round done"
  done
done
