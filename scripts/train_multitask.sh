#!/usr/bin/env bash
# The multitask model on a 2-core CPU (issue 6): EfficientNet-B4 + FPN + 6 heads on the BUSI + HC18 data converted to
# the FMC-UIA format, 128 px, batches of 16, 60 single-task steps per epoch, 16 epochs (cosine), encoder lr 1e-3
# (from scratch; the baseline's 1e-4 assumes ImageNet weights). Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -d data/fmc/csv_files ] || $PY -m training.fmc_convert --busi ../shared/data/busi --hc18 ../shared/data/hc18 --out data/fmc
$PY -m training.train ultrasound_multitask --data-dir data/fmc --image-size 128 --batch-size 16 --steps-per-epoch 60 \
    --epochs 16 --encoder-lr 1e-3 --max-minutes 45 --tag cpu128lr3 --resume --export
