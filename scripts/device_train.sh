#!/usr/bin/env bash
# One-shot training of the EDM score model (configs/edm_qm9_clofnet.yaml) on a lent GPU, for issue 10.
#
# Budget: the device tool allows 600 s per command and 15 min per session, start-up included, so the whole
# run (dataset build, step-rate probe, training, a short sampling check) fits one command; the training phase
# takes TRAIN_SECONDS (default 300 s, well under 9 min; about 8.5 min in all).
#
# Before the device call, here on the CPU (once; both folders are ignored by git and travel with `carry`):
#   python scripts/pack_device_data.py --shared ../shared/data [--drugs work_data/DRUG_DATASET ...]
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d .whl rdkit==2026.9.1        # the GPU image has no RDKit
# Device call:  run(command="bash scripts/device_train.sh", carry=[".whl", "work_data/device"], timeout_s=600)
# What travels (tracked files + carried folders) is limited to 64 MiB, and the committed datasets under data/
# alone are most of it (about 61 MiB of tracked files in all at the eleventh build session, and growing):
# pack_device_data.py prints the total and, when it is over, which data/ folders to move out of the checkout for
# the call (the machine does not read them) and back after it.
# Everything comes back under $OUT: best.pt, log.csv, config.yaml, summary.json of the dataset, steps.log,
# probe.csv, sample_check.txt (at most 8 files).
# CPU smoke test (tiny): SMOKE=1 OUT=/tmp/x bash scripts/device_train.sh
#
# Environment: OUT (default runs/device_train), PACK (work_data/device), CONFIG, TRAIN_SECONDS, DEVICE
# (cuda; cpu for the smoke test), WORK (scratch, /tmp/confgen_device), EXTRA_SET (more --set KEY=VALUE words,
# e.g. "model.backbone=egnn").
set -euo pipefail
OUT=${OUT:-runs/device_train}
PACK=${PACK:-work_data/device}
CONFIG=${CONFIG:-configs/edm_qm9_clofnet.yaml}
TRAIN_SECONDS=${TRAIN_SECONDS:-300}
SMOKE=${SMOKE:-0}
DEVICE=${DEVICE:-$([ "$SMOKE" = 1 ] && echo cpu || echo cuda)}
WORK=${WORK:-/tmp/confgen_device}
EXTRA_SET=${EXTRA_SET:-}
PY=${PY:-python3}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
log() { echo "[$(date -u +%T)] $*" | tee -a "$OUT/steps.log"; }

if ! "$PY" -c "import rdkit" 2>/dev/null; then
  log "installing RDKit from .whl/"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/rdkit-*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
NPROC=$(nproc)
SETS=()
for s in $EXTRA_SET; do SETS+=(--set "$s"); done

# 1. datasets: QM9 (evaluation molecules excluded here, recorded in the summary) + any carried drug datasets
log "building the QM9 dataset ($NPROC workers)"
"$PY" - "$PACK/qm9.csv.xz" "$WORK/qm9.csv" "$SMOKE" <<'PYEOF'
import lzma, shutil, sys
src, dst, smoke = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
with lzma.open(src, "rt") as fin, open(dst, "w") as fout:
    for i, line in enumerate(fin):
        if smoke and i > 300:
            break
        fout.write(line)
PYEOF
"$PY" -m confgen prepare "$WORK/qm9.csv" -o "$WORK/qm9" --exclude "$PACK"/exclude/* --workers "$NPROC" \
    --no-progress --overwrite > "$WORK/prepare.log" 2>&1 || { tail -20 "$WORK/prepare.log"; exit 1; }
PARTS=(--part "$WORK/qm9")
if [ -d "$PACK/drugs" ]; then
  for d in "$PACK"/drugs/*/; do PARTS+=(--part "${d%/}" repeat=2); log "drug dataset: $d"; done
fi
rm -rf "$WORK/mix"
"$PY" scripts/mix_datasets.py -o "$WORK/mix" "${PARTS[@]}"
cp "$WORK/mix/summary.json" "$OUT/summary.json"

# 2. step-rate probe: 120 steps of the real config, rate from the log between steps 40 and 120
if [ "$SMOKE" = 1 ]; then PROBE=30; else PROBE=120; fi
log "probing the step rate ($PROBE steps)"
rm -rf "$WORK/probe"
"$PY" -m confgen train "$CONFIG" --out "$WORK/probe" --device "$DEVICE" --no-progress \
    --set data.path="$WORK/mix" --set train.max_steps=$PROBE --set train.val_every=0 --set train.log_every=10 \
    ${SETS[@]+"${SETS[@]}"} > "$WORK/probe.log" 2>&1 || { tail -20 "$WORK/probe.log"; exit 1; }
cp "$WORK/probe/log.csv" "$OUT/probe.csv"
STEPS=$("$PY" - "$WORK/probe/log.csv" "$TRAIN_SECONDS" "$SMOKE" <<'PYEOF'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["elapsed_s"]]
a, b = rows[len(rows) // 3], rows[-1]
rate = (int(b["step"]) - int(a["step"])) / max(float(b["elapsed_s"]) - float(a["elapsed_s"]), 1e-6)
steps = 40 if sys.argv[3] == "1" else int(rate * float(sys.argv[2]) * 0.92)  # 8 % for validation/checkpoints
print(max(steps, 20))
print(f"{rate:.2f} steps/s -> {steps} steps", file=sys.stderr)
PYEOF
)
log "training $STEPS steps (about $TRAIN_SECONDS s)"

# 3. training
VAL=$(( STEPS / 8 > 10 ? STEPS / 8 : 10 ))
"$PY" -m confgen train "$CONFIG" --out "$WORK/run" --device "$DEVICE" --no-progress \
    --set data.path="$WORK/mix" --set train.max_steps="$STEPS" --set train.val_every=$VAL \
    --set train.ckpt_every=$VAL --set train.warmup_steps=$(( STEPS / 20 + 1 )) ${SETS[@]+"${SETS[@]}"} \
    2>&1 | tail -5 | tee -a "$OUT/steps.log"
cp "$WORK/run/best.pt" "$WORK/run/log.csv" "$WORK/run/config.yaml" "$OUT/"
log "trained: $(tail -1 "$WORK/run/log.csv")"

# 4. sampling check from pure noise with the edm preset (49 calls per conformer) on QM9 DFT minima
if [ "$SMOKE" = 1 ]; then NMOL=2; else NMOL=50; fi
log "sampling check: edm preset vs etkdg on $NMOL GEOM-QM9 test molecules"
timeout 100 "$PY" -m confgen benchmark "$PACK/exclude/geom_qm9_test_matched_qm9_dft_geometry.csv" --model "$OUT/best.pt" \
    --methods confgen@edm,confgen-mmff@edm,etkdg,etkdg-mmff --max-molecules $NMOL --num-confs 4 --max-posebusters 0 \
    --workers "$NPROC" --no-progress > "$OUT/sample_check.txt" 2>&1 || true
tail -8 "$OUT/sample_check.txt" | tee -a "$OUT/steps.log"
log "done"
