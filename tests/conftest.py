"""Shared fixtures: offline Hub settings, seeded RNGs, synthetic images/masks/BUSI folders and tiny checkpoints.

Tests run offline on the CPU. Real data (``../shared/data``) is used only by tests that ask for ``busi_dir`` and
skip cleanly when it is absent.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ["ONNX_RUNTIME"] = "off"
os.environ["INFERENCE_BACKEND"] = "pytorch"  # no background conversions in every test; tests/test_runtime.py picks
torch.set_num_threads(min(2, os.cpu_count() or 1))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def busi_dir() -> Path:
    path = SHARED_DATA / "busi"
    if not (path / "benign").is_dir():
        pytest.skip(f"real BUSI data not found at {path}")
    return path


def make_image(w: int = 96, h: int = 80, mode: str = "L", seed: int = 0) -> Image.Image:
    """A smooth random image with a bright disc (a 'lesion')."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 3) ** 2) < (min(h, w) / 5) ** 2
    arr = (rng.normal(90, 20, (h, w)) + 100 * disc).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "L")
    return img if mode == "L" else img.convert(mode)


def make_mask(w: int = 96, h: int = 80) -> np.ndarray:
    """Binary {0, 255} mask of the disc of ``make_image``."""
    yy, xx = np.mgrid[:h, :w]
    return ((((yy - h / 2) ** 2 + (xx - w / 3) ** 2) < (min(h, w) / 5) ** 2) * 255).astype(np.uint8)


def make_synthetic_busi(root: Path, n_per_class: int = 4, kaggle_layout: bool = False, size=(72, 64)) -> Path:
    """A BUSI-shaped folder: ``<class>/images|mask`` (shared layout) or ``Dataset_BUSI_with_GT/<class>`` (Kaggle).

    The first benign image gets two masks (to exercise the union).
    """
    base = root / "Dataset_BUSI_with_GT" if kaggle_layout else root
    for c, cls in enumerate(("benign", "malignant", "normal")):
        img_dir = base / cls if kaggle_layout else base / cls / "images"
        mask_dir = base / cls if kaggle_layout else base / cls / "mask"
        img_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for i in range(1, n_per_class + 1):
            name = f"{cls} ({i})"
            make_image(*size, seed=10 * c + i).save(img_dir / f"{name}.png")
            mask = make_mask(*size) if cls != "normal" else np.zeros(size[::-1], np.uint8)
            Image.fromarray(mask).save(mask_dir / f"{name}_mask.png")
            if cls == "benign" and i == 1:
                extra = np.zeros(size[::-1], np.uint8)
                extra[:8, :8] = 255
                Image.fromarray(extra).convert("1").save(mask_dir / f"{name}_mask_1.png")
    return root


@pytest.fixture
def synthetic_busi(tmp_path) -> Path:
    return make_synthetic_busi(tmp_path / "busi")


def make_synthetic_lung(root: Path, n_per_hospital: int = 5, kaggle_layout: bool = False, size: int = 64) -> Path:
    """A lung-X-ray folder: ``images/`` + ``masks/`` (shared layout) or the Kaggle ``Lung Segmentation/CXR_png`` +
    ``masks/`` layout (Shenzhen masks ``<name>_mask.png``, Montgomery masks ``<name>.png``), two bright 'lungs'."""
    base = root / "Lung Segmentation" if kaggle_layout else root
    img_dir = base / ("CXR_png" if kaggle_layout else "images")
    mask_dir = base / "masks"
    img_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    lungs = (((xx - size * 0.3) / (size * 0.15)) ** 2 + ((yy - size / 2) / (size * 0.3)) ** 2 < 1) | (
        ((xx - size * 0.7) / (size * 0.15)) ** 2 + ((yy - size / 2) / (size * 0.3)) ** 2 < 1
    )
    rng = np.random.default_rng(0)
    for prefix in ("CHNCXR", "MCUCXR"):
        for i in range(1, n_per_hospital + 1):
            name = f"{prefix}_{i:04d}_{i % 2}"
            arr = (rng.normal(150, 20, (size, size)) - 90 * lungs).clip(0, 255).astype(np.uint8)
            Image.fromarray(arr).save(img_dir / f"{name}.png")
            mask_name = f"{name}_mask.png" if kaggle_layout and prefix == "CHNCXR" else f"{name}.png"
            Image.fromarray((lungs * 255).astype(np.uint8)).save(mask_dir / mask_name)
    if kaggle_layout:  # the Kaggle set also has test images without masks: they are skipped
        Image.fromarray(np.zeros((size, size), np.uint8)).save(img_dir / "CHNCXR_0999_0.png")
    return root


@pytest.fixture
def synthetic_lung(tmp_path) -> Path:
    return make_synthetic_lung(tmp_path / "lung")


@pytest.fixture(scope="session")
def tiny_lung_models(tmp_path_factory) -> Path:
    """Untrained 32-px lung U-Nets saved (fp16) as variants ``unet`` and ``unet-sgd``, with history and metrics;
    ``unetplusplus`` is absent on purpose (a variant whose weights are not shipped). Built once per session."""
    import csv

    from models.card import write_model_folder
    from models.registry import build_model

    root = tmp_path_factory.mktemp("lung_models") / "lung_seg"
    for seed, variant in enumerate(("unet", "unet-sgd")):
        torch.manual_seed(seed)
        model = build_model("lung_seg", variant, input_size=32).eval()
        model.save_half = True
        folder = root / variant
        model.save_pretrained(folder)
        per_image = [{"name": f"CHNCXR_000{i}_0", "hospital": "shenzhen", "dice": 0.5 + i / 20} for i in range(5)]
        result = {
            "task": "lung_seg",
            "variant": variant,
            "split": "test",
            "n": 5,
            "params": 24436369,
            "resolution": 32,
            "dataset": "synthetic",
            "metrics": {
                "dice": 0.6,
                "iou": 0.45,
                "dice_median": 0.6,
                "dice_std": 0.07,
                "dice_min": 0.5,
                "by_hospital": {"shenzhen": {"n": 5, "dice": 0.6}},
                "per_image": per_image,
            },  # fmt: skip
            "training": {"epochs_run": 2, "train_split": "train", "train_wall_time_s": 6.0},
        }
        history = folder.parent / f"{variant}_history.csv"
        with history.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["epoch", "lr", "train_loss", "train_dice", "val_loss", "val_dice", "seconds"])
            w.writerows([[1, 1e-3, 0.5, 0.5, 0.5, 0.5, 3.0], [2, 1e-3, 0.4, 0.6, 0.4, 0.6, 3.0]])
        write_model_folder(folder, "lung_seg", variant, result, history_csv=history)
        history.unlink()
    return root


@pytest.fixture(scope="session")
def tiny_ablation_models(tmp_path_factory) -> Path:
    """The ablation CLI run once (steps base and bn, 1 epoch) on a synthetic 2-class MedMNIST-format file, exported
    as checkpoints/breastmnist_standin/{base,bn}/ (curves, metrics, weights)."""
    from test_ablation import make_medmnist_file

    from training.ablate import main

    tmp = tmp_path_factory.mktemp("ablation")
    path = make_medmnist_file(tmp / "standin.npz", n_classes=2, counts=(40, 10, 12))
    main(["--dataset", str(path), "--task", "breastmnist_standin", "--steps", "base,bn", "--max-epochs", "1",
          "--out", str(tmp / "run"), "--export", "--checkpoints-dir", str(tmp / "ck")])  # fmt: skip
    return tmp / "ck" / "breastmnist_standin"


@pytest.fixture(scope="session")
def tiny_skin_models(tmp_path_factory) -> Path:
    """An untrained CustomNet (160 px) saved as checkpoints/skin_lesion/customnet with validation metrics (random
    scores over 9 images) and OOD statistics fitted on random features. Built once per session."""
    from models.card import write_model_folder
    from models.cls_metrics import isic_metrics
    from models.ood import MahalanobisOOD, TrainingNeighbours, penultimate_features
    from models.registry import build_model

    root = tmp_path_factory.mktemp("skin_models") / "skin_lesion"
    torch.manual_seed(0)
    model = build_model("skin_lesion", "customnet", input_size=160).eval()
    folder = root / "customnet"
    model.save_pretrained(folder)
    x = torch.randn(40, 3, 160, 160)
    feats, _ = penultimate_features(model, x)
    # colour and noise thresholds as if the training photos had saturation 0.2 and roughness 0.3
    MahalanobisOOD.fit(feats[:30], feats[30:], image_stats=[(0.2, 0.2, 0.3)] * 10).save(folder)
    ids = [f"ISIC_{9000000 + i}" for i in range(30)]  # ids no dataset holds: the evidence lists them, no pictures
    TrainingNeighbours.fit(feats[:30], ids, [i % 3 for i in range(30)], dims=8).save(folder)
    labels = np.arange(9) % 3
    probs = torch.rand(9, 3).softmax(1).numpy()
    metrics = isic_metrics(labels, probs)
    metrics["per_image"] = [
        {"image_id": f"ISIC_{i}", "label": int(y), "probs": p.tolist()} for i, (y, p) in enumerate(zip(labels, probs))
    ]
    result = {"task": "skin_lesion", "variant": "customnet", "split": "val", "n": 9, "params": 420675,
              "resolution": 160, "metrics": metrics, "training": {"epochs_run": 1, "pretrained": False}}  # fmt: skip
    write_model_folder(folder, "skin_lesion", "customnet", result)
    return root


@pytest.fixture(scope="session")
def tiny_multitask_models(tmp_path_factory) -> Path:
    """An untrained 6-head multitask model (the busi-hc18 heads on a resnet18 encoder, 64 px, so it is quick) saved
    as checkpoints/ultrasound_multitask/busi-hc18 (and as the default busi-hc18-lite1) with official-format metrics.
    Built once per session."""
    from models.card import write_model_folder
    from models.multitask import MultiTaskNet
    from models.registry import FMC_STANDIN_LABELS, FMC_STANDIN_TASKS

    root = tmp_path_factory.mktemp("multitask_models") / "ultrasound_multitask"
    torch.manual_seed(0)
    model = MultiTaskNet(FMC_STANDIN_TASKS, encoder_name="resnet18", input_size=64, labels=FMC_STANDIN_LABELS)
    folder = root / "busi-hc18"
    model.eval().save_pretrained(folder)
    tasks = {
        "breast_lesion": {"task_name": "segmentation", "n": 3, "dice": 0.5, "hd": 40.0},
        "breast_3cls": {"task_name": "classification", "n": 3, "acc": 0.33, "auc": None, "auc_official": 0.0},
        "fetal_head_axes": {"task_name": "Regression", "n": 3, "mre": 50.0, "hc_abs_error_mm": 20.0},
    }
    result = {"task": "ultrasound_multitask", "variant": "busi-hc18", "split": "val", "n": 9, "resolution": 64,
              "metrics": {"dsc": 0.5, "hd": 40.0, "acc": 0.33, "auc": None, "iou": 0.1, "mre": 50.0, "tasks": tasks},
              "training": {"epochs_run": 1, "image_size": 64}}  # fmt: skip
    write_model_folder(folder, "ultrasound_multitask", "busi-hc18", result)
    import shutil

    default = root / "busi-hc18-lite1"  # the registry default (the tab serves it): the same tiny weights
    shutil.copytree(folder, default)
    write_model_folder(default, "ultrasound_multitask", "busi-hc18-lite1", {**result, "variant": "busi-hc18-lite1"})
    return root


@pytest.fixture
def tiny_checkpoints(
    tmp_path, monkeypatch, tiny_lung_models, tiny_ablation_models, tiny_skin_models, tiny_multitask_models
) -> Path:
    """An untrained EFSNet at 64 px saved as checkpoints/breast_us_seg/efsnet, made the default store, plus the
    session's tiny lung models (linked as checkpoints/lung_seg)."""
    from models.card import write_model_folder
    from models.hub import clear_cache
    from models.registry import build_model

    root = tmp_path / "checkpoints"
    folder = root / "breast_us_seg" / "efsnet"
    torch.manual_seed(0)
    model = build_model("breast_us_seg", input_size=64).eval()
    model.save_pretrained(folder)
    result = {
        "task": "breast_us_seg",
        "variant": "efsnet",
        "split": "val",
        "n": 3,
        "params": 178887,
        "resolution": 64,
        "metrics": {"dsc": 0.5, "acc": 0.9, "miou": 0.4, "dsc_t": 0.6, "miou_t": 0.5, "per_class": {}},
        "training": {"epochs_run": 1},
    }
    write_model_folder(folder, "breast_us_seg", "efsnet", result)
    (root / "lung_seg").symlink_to(tiny_lung_models, target_is_directory=True)
    (root / "breastmnist_standin").symlink_to(tiny_ablation_models, target_is_directory=True)
    (root / "skin_lesion").symlink_to(tiny_skin_models, target_is_directory=True)
    (root / "ultrasound_multitask").symlink_to(tiny_multitask_models, target_is_directory=True)
    monkeypatch.setenv("CHECKPOINTS_DIR", str(root))
    monkeypatch.setenv("MODEL_SOURCE", "local")
    clear_cache()
    try:
        from demo.common import get_predictor

        get_predictor.cache_clear()
    except ImportError:
        pass
    yield root
    clear_cache()


@pytest.fixture
def app_url(tiny_checkpoints):
    """The app (``app.build_demo()``) served on 127.0.0.1 over the tiny checkpoints."""
    import app

    demo = app.build_demo()
    app.launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)
