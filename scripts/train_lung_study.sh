#!/usr/bin/env bash
# The lung study (SYSTEMS.md §2): {U-Net, U-Net++} x {Adam, SGD} + the cross-hospital U-Net, one after another.
# Resumable: rerunning continues each unfinished run (--resume) and only re-evaluates finished ones.
#   nohup scripts/train_lung_study.sh > runs/lung_study.log 2>&1 &
set -euo pipefail
DATA=${DATA:-../shared/data/chest_xray_lung}
SIZE=${SIZE:-96}
PY=${PY:-.venv/bin/python}
for variant in ${VARIANTS:-unet unetplusplus unet-sgd unetplusplus-sgd unet-shenzhen}; do
  echo "=== $variant ($(date -u +%H:%M:%S))"
  "$PY" -m training.train lung_seg --model "$variant" --data-dir "$DATA" --image-size "$SIZE" --resume --export
done
