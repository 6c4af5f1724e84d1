#!/usr/bin/env bash
# Issue 18's ablation study on the BUSI-built BreastMNIST-style stand-in, resumable (rerun it; finished runs are
# skipped): the whole ladder at 28 px with SEEDS seeds (default 5) in both protocols ("as in the report" and "adapted
# to small data"), then the resolution axis at 64 and 128 px for the steps in AXIS_STEPS (default: base, bn,
# resnet50 and the ensemble of the members trained there; ResNet-101/152 at 128 px cost hours per seed on 2 CPU
# cores) with AXIS_SEEDS seeds, then exports the shown run (report protocol, seed 1, 28 px) and the seed tables into
# checkpoints/breastmnist_standin/. Each size's wall time goes to logs/ablation_wall.txt. PROTOCOLS=report,adapted_v1
# reruns the adapted protocol as it was before precise BatchNorm joined it (the tab shows both).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BUSI=${BUSI:-../shared/data/busi}
SEEDS=${SEEDS:-5}
AXIS_SEEDS=${AXIS_SEEDS:-5}
AXIS_STEPS=${AXIS_STEPS:-base,bn,resnet50,ensemble}
PROTOCOLS=${PROTOCOLS:-report,adapted}
for size in 28 64 128; do
  out=data/breastmnist_standin.npz; [ "$size" = 28 ] || out=data/breastmnist_standin_${size}.npz
  [ -f "$out" ] || $PY -m training.medmnist_standin --busi "$BUSI" --out "$out" --size "$size"
done
mkdir -p logs
t=$SECONDS
$PY -m training.ablate --dataset data/breastmnist_standin.npz --task breastmnist_standin --seeds "$SEEDS" \
    --protocols "$PROTOCOLS"
echo "$(date -u +%FT%TZ) 28 px, all steps: $((SECONDS - t)) s" >> logs/ablation_wall.txt
for size in 64 128; do
  t=$SECONDS
  $PY -m training.ablate --dataset data/breastmnist_standin_${size}.npz --task breastmnist_standin \
      --steps "$AXIS_STEPS" --seeds "$AXIS_SEEDS" --protocols "$PROTOCOLS" --save-state
  echo "$(date -u +%FT%TZ) $size px, $AXIS_STEPS: $((SECONDS - t)) s" >> logs/ablation_wall.txt
done
$PY -m training.ablate --dataset data/breastmnist_standin.npz --task breastmnist_standin --seeds "$SEEDS" \
    --protocols "$PROTOCOLS" --export
