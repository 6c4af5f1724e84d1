"""About tab: what each task is, its data and licence, the exact commands behind every number, the protocol caveats
that make rows incomparable (ANCHORS.md §6), and the not-for-clinical-use statement. Static markdown."""

from __future__ import annotations

import gradio as gr

ABOUT = """
### What this is
Five published student systems in biomedical imaging, re-implemented from their specs, trained here on real public
data (CPU budgets; the ImageNet starts come from PyPI packages installed offline, never a download: see each
model card), and compared with the published figures. **Research
and teaching demo, not for clinical use**: no model here is validated for diagnosis.

| Tab | Task | Data (licence) | Reproduce the shipped numbers |
|---|---|---|---|
| Breast ultrasound | S5: EFSNet lesion segmentation, 178,887 params | BUSI, Al-Dhabyani et al. 2020 (no licence file; Kaggle mirror listed CC0) | `python -m training.train breast_us_seg --data-dir ../shared/data/busi --image-size 128 --export` |
| Lung X-ray | S2: U-Net vs U-Net++ (resnet34), Adam vs SGD | Shenzhen + Montgomery, Jaeger et al. 2014; Shenzhen masks CC BY-NC-SA 4.0 | `SIZE=96 scripts/train_lung_study.sh` |
| OrganSMNIST ablation | S3: small CNN ladder -> ensemble with ResNet-50/101/152 | OrganSMNIST (MedMNIST, CC BY 4.0; needs the internet); here a BreastMNIST-style stand-in built from BUSI | `python -m training.medmnist_standin --busi ../shared/data/busi --out data/breastmnist_standin.npz && python -m training.ablate --dataset data/breastmnist_standin.npz --export` |
| Skin lesion | S4: CustomNet vs ResNet18 (+ EfficientNet-Lite0/Lite1 ImageNet fine-tunes) | ISIC 2017 Part 3, Codella et al. 2017 (ISIC Archive terms) | `scripts/train_skin_study.sh` (the first release's study: validation-chosen); `scripts/skin_cv.sh && python scripts/skin_cv_report.py --data-dir ../shared/data/isic2017` (Lite1, 5-fold CV) |
| Multitask ultrasound | S1: EfficientNet-B4 + shared FPN + seg/cls/det/keypoint heads (shipped: Lite1 ImageNet encoder) | BUSI + HC18 (van den Heuvel et al. 2018) converted to the FMC-UIA CSV format | `scripts/train_multitask.sh` (the chained runs, the two head refits `training.head_refit`, the organ probe `training.organ_fit` and the out-of-distribution gate `training.ood_fit`) |

Evaluate any checkpoint with `python -m training.evaluate TASK --model VARIANT --data-dir DIR --split SPLIT --json`;
rebuild this dashboard's table with `python -m leaderboard.build` and the latency columns with
`python -m bench.model_speed --write-leaderboard`.

### Terms used in this app
| Term | Meaning |
|---|---|
| **Dice** (DSC) | Overlap of a predicted mask with the reference mask: 2 × shared area / (both areas). 1 = identical, 0 = no overlap. |
| **IoU** | Shared area / combined area of two masks or boxes (0 to 1); stricter than Dice for the same overlap. |
| **HD** | Hausdorff distance: the largest gap, in pixels, between the two outlines (lower is better). |
| **HC** | Head circumference of a fetus, in mm: the perimeter of the ellipse fitted to the head (HC18). |
| **Acc**, **F1 macro**, **AUC** | Share of images classed right; the mean per-class F1 (balances rare classes); the chance that a random positive image scores above a random negative one (0.5 = guessing). |
| **F1 weighted**, **MCC** | The per-class F1 averaged by class size; the Matthews correlation, -1 to 1 (0 = guessing, 1 = perfect), fair when one class dominates. |
| **MRE** | Mean radial error: the mean distance, in pixels, between predicted and reference key points (lower is better). |
| **objectness** | A box head's confidence that its box holds the object; ours give about 1 to every image, so it says little. |
| **ISIC score** | The ISIC 2017 ranking figure: the mean of the melanoma AUC and the seborrheic-keratosis AUC. |
| **Grad-CAM** | A heat map of the image regions that pushed the model towards a class. |
| **Pareto front** | The models that no other model beats on both axes at once (e.g. smaller *and* more accurate). |
| **Held-out / validation / test split** | Images the model did not train on; the split that chose nothing is the one to trust. |
| **Out-of-distribution check** | A distance from the training images' features: an image far from all of them (another modality, a photo, junk) is flagged. |
| **FPN**, **heads** | A shared feature pyramid on the encoder, and the small task-specific outputs on top of it (mask, class, box, points). |

### Why rows are not directly comparable (read the *protocol* column)
* **BUSI**: whether normal images (empty masks) are counted, 3 random splits vs one fixed split, GPU vs CPU and batch
  size behind FPS.
* **Lung**: which hospital(s), 256 px, threshold 0.5, and the split; the report's Dice was logged on training batches.
* **OrganSMNIST**: MedMNIST file version (v2 vs v3), "224" in MedMNIST v2 means an upsampled 28 px image, ensemble vs
  single model; our ladder ran on a stand-in dataset, not OrganSMNIST.
* **ISIC 2017**: the first release's models were scored on the 150-image validation set, which also chose their epochs and
  options; the EfficientNet-Lite1 model was chosen by nothing: its recipe was fixed in advance, 5-fold
  cross-validation on the training images estimates it, and the validation set is reported only. The challenge ranked
  the 600-image test set, and entries used external data.
* **FMC-UIA**: the report scored its own training subset; an undefined AUC was written as 0.0 (we show n/a); HD and
  MRE are in pixels of images of different sizes; our data is a BUSI + HC18 stand-in in the challenge's format.

### Provenance
Every measured row links to a checkpoint folder with `model.safetensors`, `config.json`, a model card (training
settings, deviations from the published system, metrics) and `metrics.json`. Weights load from safetensors only.
"""


def build_tab() -> None:
    gr.Markdown(ABOUT, elem_id="about")  # the CSS keeps the table's first column (tab names) on one line
