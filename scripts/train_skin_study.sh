#!/usr/bin/env bash
# The skin-lesion study on a 2-core CPU (issue 5): the option sweep on CustomNet at the report's 224 px, then ResNet18
# (112 px) with the report recipe and CustomNet's best option, then the EfficientNet-Lite0 fine-tune (128 px).
# Resumable: every run is tagged and restarted with --resume.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/isic2017}
$PY scripts/skin_options.py --model customnet --data-dir "$DATA" --epochs 15 --patience 6 --export-best \
    --options baseline,no_class_weights,weighted_sampler,mixup,adam_plateau,no_aug
BEST=$($PY -c "import csv; r=[x for x in csv.DictReader(open('checkpoints/skin_lesion/options.csv')) if x['model']=='customnet']; print(max(r, key=lambda x: float(x['isic_score']))['option'])")
OPTS=baseline; [ "$BEST" != baseline ] && OPTS="baseline,$BEST"
$PY scripts/skin_options.py --model resnet18 --data-dir "$DATA" --image-size 112 --epochs 15 --patience 6 --export-best --options "$OPTS"
$PY scripts/skin_options.py --model efficientnet-lite0 --data-dir "$DATA" --image-size 128 --epochs 12 --patience 6 --export-best --options baseline
echo "skin study done"
