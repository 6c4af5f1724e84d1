"""Lung X-ray study (SYSTEMS.md §2): models, data layouts and split, training/evaluation CLIs, analysis, tab API."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA, make_synthetic_lung

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "demo" / "examples" / "lung_seg"


@pytest.fixture
def lung_dir() -> Path:
    path = SHARED_DATA / "chest_xray_lung"
    if not (path / "images").is_dir():
        pytest.skip(f"real lung X-ray data not found at {path}")
    return path


@pytest.mark.parametrize("variant, expected", [("unet", 24_436_369), ("unetplusplus", 26_078_609)])
def test_parameter_counts_match_the_report(variant, expected):
    from models.base import count_parameters
    from models.registry import build_model

    model = build_model("lung_seg", variant)
    assert count_parameters(model) == expected
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_construction_and_loading_never_download(monkeypatch, tmp_path):
    import huggingface_hub

    from models.segmenters import LungSegmenter

    def refuse(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    model = LungSegmenter("Unet", input_size=32)
    model.save_pretrained(tmp_path)
    assert "weights" not in (tmp_path / "config.json").read_text()  # nothing in the config can trigger one
    assert LungSegmenter.from_pretrained(tmp_path).input_size == 32


def test_both_layouts_read_the_same_pairs(tmp_path):
    from training.datasets import find_lung, read_lung_mask

    shared = find_lung(make_synthetic_lung(tmp_path / "a"))
    kaggle = find_lung(make_synthetic_lung(tmp_path / "b", kaggle_layout=True))
    assert [s.name for s in shared] == [s.name for s in kaggle]  # mask-less Kaggle test image skipped
    assert {s.hospital for s in kaggle} == {"shenzhen", "montgomery"}
    assert kaggle[0].mask.name.endswith("_mask.png") and not kaggle[-1].mask.name.endswith("_mask.png")
    assert torch.equal(read_lung_mask(shared[0]), read_lung_mask(kaggle[0]))


def test_split_is_seeded_disjoint_and_stratified(synthetic_lung):
    from training.datasets import find_lung, lung_split

    samples = find_lung(synthetic_lung)
    train, test = lung_split(samples, "train"), lung_split(samples, "test")
    assert {s.name for s in train}.isdisjoint({s.name for s in test}) and len(train) + len(test) == len(samples)
    assert {s.hospital for s in test} == {"shenzhen", "montgomery"}
    assert [s.name for s in lung_split(samples, "test")] == [s.name for s in test]
    assert all(s.hospital == "montgomery" for s in lung_split(samples, "montgomery"))


def test_real_split_is_the_saved_563_141(lung_dir):
    from training.datasets import LUNG_SPLIT_FILE, find_lung, lung_split

    samples = find_lung(lung_dir)
    assert len(samples) == 704
    test = lung_split(samples, "test")
    assert len(lung_split(samples, "train")) == 563 and len(test) == 141
    assert sum(s.hospital == "montgomery" for s in test) == 28  # 138 x 0.2, stratified
    assert [s.name for s in test] == json.loads(LUNG_SPLIT_FILE.read_text())["test"]


def test_study_presets_differ_only_where_the_report_does():
    from training.config import resolve_config

    base = ["lung_seg", "--data-dir", "x"]
    adam = resolve_config([*base, "--model", "unet"])
    sgd = resolve_config([*base, "--model", "unetplusplus-sgd"])
    cross = resolve_config([*base, "--model", "unet-shenzhen"])
    assert (adam.optimizer, adam.lr, adam.batch_size, adam.epochs, adam.select) == ("adam", 1e-3, 32, 25, "last")
    assert (sgd.optimizer, sgd.lr, sgd.momentum) == ("sgd", 1e-3, 0.0)
    assert (cross.train_split, cross.val_split) == ("shenzhen", "montgomery")
    assert resolve_config([*base, "--model", "unet-sgd", "--lr", "0.01"]).lr == 0.01  # the CLI still wins


def test_train_evaluate_and_analyse_end_to_end(synthetic_lung, tmp_path):
    from training.config import resolve_config
    from training.train import main

    cfg = resolve_config(
        ["lung_seg", "--model", "unet-sgd", "--data-dir", str(synthetic_lung), "--image-size", "32", "--epochs",
         "1", "--batch-size", "4", "--runs-dir", str(tmp_path / "runs"), "--checkpoints-dir", str(tmp_path / "ck"),
         "--export"]
    )  # fmt: skip
    run = main(cfg)
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert {"train_loss", "train_dice", "val_loss", "val_dice", "seconds"} <= set(rows[0])
    result = json.loads((run / "metrics.json").read_text())
    assert result["split"] == "test" and result["training"]["optimizer"] == "sgd"
    m = result["metrics"]
    assert 0 <= m["dice"] <= 1 and len(m["per_image"]) == result["n"] == 2
    folder = tmp_path / "ck" / "lung_seg" / "unet-sgd"
    for name in ("model.safetensors", "README.md", "analysis/best5.png", "analysis/worst5.png",
                 "analysis/per_image.csv", "analysis/dice_histogram.csv"):  # fmt: skip
        assert (folder / name).exists(), name
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:  # > 20 MB: stored in fp16
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16
    card = (folder / "README.md").read_text()
    assert "SGD lr 0.001, momentum 0" in card and "from scratch" in card

    out = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "lung_seg", "--model", "unet-sgd", "--data-dir",
         str(synthetic_lung), "--checkpoint", str(folder), "--json"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["split"] == "test" and abs(last["metrics"]["dice"] - m["dice"]) < 1e-9


def test_dice_definitions_on_a_hand_made_case():
    from training.lung_analysis import dice_histogram
    from training.recipes import per_image_dice

    pred = torch.zeros(2, 4, 4, dtype=torch.bool)
    gt = torch.zeros(2, 4, 4, dtype=torch.bool)
    pred[0, :2], gt[0, :1] = True, True  # 8 predicted, 4 true, 4 shared -> 2*4/12
    assert torch.allclose(per_image_dice(pred, gt), torch.tensor([2 / 3, 1.0]))  # both empty -> 1
    hist = dice_histogram([0.0, 0.96, 0.97, 1.0])
    assert sum(b["count"] for b in hist) == 4 and hist[-1]["count"] == 3


def test_comparison_and_disagreement_colours():
    from models.visualize import comparison_map, disagreement_map

    grey = np.zeros((1, 3), np.uint8)
    pred, gt = np.array([[1, 1, 0]], bool), np.array([[1, 0, 1]], bool)
    out = comparison_map(grey, pred, gt, opacity=1.0)
    assert out[0].tolist() == [[255, 255, 0], [255, 0, 0], [0, 255, 0]]  # yellow, red, green
    diff = disagreement_map(grey, pred, gt, opacity=1.0)
    from models.visualize import MODEL_A_COLOR, MODEL_B_COLOR

    # only A, only B: the two models' colours of the A | B overlays (Okabe-Ito blue and orange since issue 14.9)
    assert diff[0].tolist() == [[0, 0, 0], list(MODEL_A_COLOR), list(MODEL_B_COLOR)]


def test_tab_compares_two_models_with_ground_truth(client):
    from gradio_client import handle_file

    image = EXAMPLES / "MCUCXR_0015_0.png"
    slider, diff, stats, map_a, map_b, gt_stats = client.predict(
        handle_file(str(image)),
        handle_file(str(image.with_name("MCUCXR_0015_0_mask.png"))),
        "unet",
        "unet-sgd",
        api_name="/compare_lung",
    )
    size = Image.open(image).size
    assert [Image.open(p["path"] if isinstance(p, dict) else p).size for p in slider] == [size, size]
    assert Image.open(diff).size == size and Image.open(map_a).size == size and Image.open(map_b).size == size
    assert "disagree" in stats and "U-Net, SGD" in stats
    assert "A (U-Net, Adam) Dice" in gt_stats and "B (U-Net, SGD) Dice" in gt_stats


def test_tab_names_a_model_without_weights_and_keeps_serving(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    image = handle_file(str(EXAMPLES / "CHNCXR_0012_0.png"))
    with pytest.raises(AppError, match="No trained unetplusplus checkpoint"):
        client.predict(image, None, "unet", "unetplusplus", api_name="/compare_lung")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(__file__), None, "unet", "unet-sgd", api_name="/compare_lung")
    assert client.predict(image, None, "unet", "unet-sgd", api_name="/compare_lung")[2]


def test_study_curves_and_table_render(client):
    table = client.predict(api_name="/lung_results")
    models = [row[0] for row in table["data"]]
    assert "U-Net, Adam" in models and "U-Net++, Adam" in models
    loss, dice, hist, best, worst = client.predict("Adam vs SGD (U-Net)", "unet", api_name="/lung_study")
    assert "U-Net, SGD: test" in json.dumps(dice) and "report" in json.dumps(dice)


def test_robustness_lab_severity_zero_is_the_plain_comparison(client):
    """Issue 19.2: severity 0 reproduces the unperturbed comparison exactly; a perturbed result names its
    perturbation; a rotation turns the mask with the X-ray; a bad severity is refused in the tab."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    image, mask = EXAMPLES / "MCUCXR_0015_0.png", EXAMPLES / "MCUCXR_0015_0_mask.png"
    plain = client.predict(handle_file(str(image)), handle_file(str(mask)), "unet", "unet-sgd",
                           api_name="/compare_lung")  # fmt: skip
    same = client.predict(handle_file(str(image)), handle_file(str(mask)), "speckle", 0, "unet", "unet-sgd",
                          api_name="/robustness_lung")  # fmt: skip

    def pixels(pair):
        return [np.asarray(Image.open(p["path"] if isinstance(p, dict) else p)) for p in pair]

    assert all(np.array_equal(a, b) for a, b in zip(pixels(same[0]), pixels(plain[0])))
    assert same[1].splitlines()[0] == plain[2].splitlines()[0]  # the same Dice headline
    noisy = client.predict(handle_file(str(image)), handle_file(str(mask)), "speckle", 0.6, "unet", "unet-sgd",
                           api_name="/robustness_lung")  # fmt: skip
    assert "speckle-0.60" in noisy[1] and not all(np.array_equal(a, b) for a, b in zip(pixels(noisy[0]),
                                                                                       pixels(plain[0])))  # fmt: skip
    turned = client.predict(handle_file(str(image)), handle_file(str(mask)), "rotation", 1, "unet", "unet-sgd",
                            api_name="/robustness_lung")  # fmt: skip
    assert "Dice against the mask" in turned[1]
    with pytest.raises(AppError, match="maximum value 1"):  # the slider's own bound (the handler checks it too)
        client.predict(handle_file(str(image)), None, "blur", 3, "unet", "unet-sgd", api_name="/robustness_lung")


def test_robustness_sweep_plots_dice_against_severity_for_both_models(client):
    fig, text, message = client.predict("gaussian", "unet", "unet-sgd", 6, api_name="/sweep_lung")
    assert "Dice falls by" in text and "U-Net, SGD" in text and not message
    plot = json.dumps(fig)
    assert "Gaussian noise" in plot and "U-Net, Adam" in plot


def test_a_slide_gets_plain_facts_without_html_or_table_rows():
    """Seen by a newcomer: the lung slide printed "<details><summary>Areas and CPU latency</summary>" and the table's
    pipes. The facts are the result's plain sentences."""
    from demo.common import _plain

    text = ("### Dice against the mask: A 0.945 · B 0.947\nImage **x.png** · model **A U-Net**\n\n"
            "<details><summary>Areas and CPU latency</summary>\n\n| model | lung area |\n|---|---|\n| A | 23 % |\n"
            "</details>")  # fmt: skip
    assert _plain(text) == ["Dice against the mask: A 0.945 · B 0.947", "Image x.png · model A U-Net"]


def test_a_slide_of_a_refused_image_says_why_there_is_none():
    """The skin tab's slide button sits beside a refusal (no picture, a caption): it said "There is no result yet",
    which read as a fault. With a result's text and no picture it says the image was refused."""
    import gradio as gr

    from demo.common import slide_file

    with pytest.raises(gr.Error, match="no result yet"):
        slide_file(None, "", "skin_lesion")
    with pytest.raises(gr.Error, match="was refused"):
        slide_file(None, "Image **x.png** · model **Lite1**\n\nNo diagnosis is shown.", "skin_lesion")
