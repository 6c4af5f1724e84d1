#!/usr/bin/env bash
# The lung study (SYSTEMS.md §2): {U-Net, U-Net++} x {Adam, SGD} + the cross-hospital U-Net, one after another.
# Resumable: rerunning continues each unfinished run (--resume) and only re-evaluates finished ones.
#   nohup scripts/train_lung_study.sh > runs/lung_study.log 2>&1 &
set -euo pipefail
# glibc: transparent huge pages and no mmap/munmap churn per step (python -m bench.train_step: the same steps in a
# fraction of the CPU time on this VM; the process keeps its peak heap). An explicit GLIBC_TUNABLES wins.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=8589934592}
DATA=${DATA:-../shared/data/chest_xray_lung}
SIZE=${SIZE:-96}
PY=${PY:-.venv/bin/python}
for variant in ${VARIANTS:-unet unetplusplus unet-sgd unetplusplus-sgd unet-shenzhen}; do
  echo "=== $variant ($(date -u +%H:%M:%S))"
  "$PY" -m training.train lung_seg --model "$variant" --data-dir "$DATA" --image-size "$SIZE" --resume --export
done
