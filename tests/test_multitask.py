"""Multitask ultrasound network (SYSTEMS.md §1): the baseline's parameter count and per-task output shapes."""

from __future__ import annotations

import pytest
import torch


def test_baseline_parameter_counts():
    from models.base import count_parameters
    from models.multitask import FMC_UIA_26, FMC_UIA_27, MultiTaskNet

    net = MultiTaskNet()
    assert count_parameters(net) == 20_266_280
    assert count_parameters(net.encoder) == 17_548_616
    assert count_parameters(net.decoder) == 1_803_008
    assert count_parameters(net.heads) == 914_656
    assert len(FMC_UIA_26) == 26 and count_parameters(MultiTaskNet(FMC_UIA_27)) == 20_268_076


def test_heads_and_shapes(tmp_path):
    from models.multitask import MultiTaskNet

    tasks = [
        ["seg", "segmentation", 3],
        ["cls", "classification", 4],
        ["det", "detection", 1],
        ["reg", "Regression", 2],
    ]
    net = MultiTaskNet(tasks, input_size=64).eval()
    x = torch.zeros(2, 3, 64, 64)
    assert net(x, "seg").shape == (2, 3, 64, 64) and net(x, "cls").shape == (2, 4) and net(x, "reg").shape == (2, 4)
    with torch.no_grad():
        det = net(x, "det")
    assert det.shape == (2, 5, 16, 16) and 0 <= float(det[:, :4].min()) and float(det[:, :4].max()) <= 1
    with pytest.raises(KeyError, match="unknown task"):
        net(x, "nope")
    with pytest.raises(ValueError, match="regression"):
        MultiTaskNet([["x", "regression", 2]])  # the CSV spelling is "Regression"
    net.save_pretrained(tmp_path)
    back = MultiTaskNet.from_pretrained(tmp_path)
    assert back.tasks == net.tasks and torch.equal(back(x, "cls"), net(x, "cls"))


def make_hc18(root, subjects=("000", "001", "002", "003", "004")):
    """HC18-shaped folder: ellipse outlines (1 px), an extra frame for the first subject, the pixel-size CSV."""
    import cv2
    import numpy as np
    from PIL import Image

    folder = root / "training_set"
    folder.mkdir(parents=True)
    rows = ["filename,pixel size(mm),head circumference (mm)"]
    names = [f"{s}_HC.png" for s in subjects] + [f"{subjects[0]}_2HC.png"]
    for i, name in enumerate(names):
        img = np.full((120, 160), 40, np.uint8)
        outline = np.zeros_like(img)
        cv2.ellipse(outline, ((80, 60), (90 - 4 * i, 60), 20 * i), 255, 1)
        cv2.ellipse(img, ((80, 60), (90 - 4 * i, 60), 20 * i), 200, -1)
        Image.fromarray(img).save(folder / name)
        Image.fromarray(outline).save(folder / name.replace(".png", "_Annotation.png"))
        rows.append(f"{name},0.1,0")
    (root / "training_set_pixel_size_and_HC.csv").write_text("\n".join(rows) + "\n")
    return root


def test_converter_writes_the_challenge_schema(tmp_path):
    import csv
    import json

    from PIL import Image

    from conftest import make_synthetic_busi
    from training.fmc_convert import circumference_from_points, ellipse_circumference, main

    busi = make_synthetic_busi(tmp_path / "busi")
    hc18 = make_hc18(tmp_path / "hc18")
    out = tmp_path / "fmc"
    counts = main(["--busi", str(busi), "--hc18", str(hc18), "--out", str(out)])
    assert counts == {"breast_lesion": 12, "breast_3cls": 12, "breast_lesion_det": 8, "fetal_head": 6,
                      "fetal_head_det": 6, "fetal_head_axes": 6}  # fmt: skip
    rows = {t: list(csv.DictReader((out / "csv_files" / f"{t}.csv").open())) for t in counts}
    assert {r["task_name"] for r in rows["fetal_head_axes"]} == {"Regression"}  # the challenge's capital R
    for task_rows in rows.values():
        for r in task_rows:
            assert (out / "csv_files" / r["image_path"]).resolve().exists()  # paths relative to csv_files/
    seg = rows["breast_lesion"][0]
    mask = Image.open(out / "csv_files" / seg["mask_path"])
    assert set(mask.getdata()) <= {0, 1}  # pixel value = class index
    assert {r["mask"] for r in rows["breast_3cls"]} == {"0", "1", "2"}
    # by subject: the extra frame 000_2HC stays on the side of 000_HC
    split = {r["image_path"].split("/")[-1]: r["split"] for r in rows["fetal_head"]}
    assert split["000_HC.png"] == split["000_2HC.png"]
    r = next(r for r in rows["fetal_head_axes"] if r["image_path"].endswith("/000_HC.png"))
    pts = [json.loads(r[f"point_{k}_xy"]) for k in range(1, 5)]
    assert abs(circumference_from_points(pts) - ellipse_circumference(45, 30)) < 3  # the drawn 90x60 ellipse
    assert abs(ellipse_circumference(1, 1) - 2 * 3.141592653589793) < 1e-12


def test_real_hc18_ellipses_reproduce_the_official_circumference(tmp_path):
    import csv
    import json

    from conftest import SHARED_DATA
    from training.fmc_convert import circumference_from_points, main

    hc18 = SHARED_DATA / "hc18"
    if not (hc18 / "training_set").is_dir():
        pytest.skip("real HC18 data not found")
    main(["--hc18", str(hc18), "--out", str(tmp_path / "fmc")])
    ref = {r["filename"]: float(r["head circumference (mm)"]) for r in
           csv.DictReader((hc18 / "training_set_pixel_size_and_HC.csv").open())}  # fmt: skip
    errors = []
    for r in csv.DictReader((tmp_path / "fmc" / "csv_files" / "fetal_head_axes.csv").open()):
        pts = [json.loads(r[f"point_{k}_xy"]) for k in range(1, 5)]
        hc = circumference_from_points(pts) * float(r["pixel_size_mm"])
        errors.append(abs(hc - ref[r["image_path"].rsplit("/", 1)[-1]]))
    assert len(errors) == 400 and max(errors) < 0.1  # mm: the fitted ellipse is the annotated one


def test_official_segmentation_rules_on_hand_made_masks():
    import numpy as np

    from models.fmc_metrics import dice, hausdorff, segmentation_scores

    empty = np.zeros((3, 4), bool)
    one = empty.copy()
    one[0, 0] = True
    far = empty.copy()
    far[2, 3] = True
    assert dice(empty, empty) == 1.0 and hausdorff(empty, empty) == 0.0  # both empty
    assert dice(one, empty) == 0.0 and hausdorff(one, empty) == 5.0  # one empty: the diagonal sqrt(3^2 + 4^2)
    assert hausdorff(one, far) == pytest.approx((2**2 + 3**2) ** 0.5)
    two = one.copy()
    two[0, 1] = True
    assert dice(two, one) == pytest.approx(2 / 3) and hausdorff(two, one) == 1.0
    pred, gt = two.astype(int), one.astype(int)
    s = segmentation_scores([pred], [gt], 2)
    assert s["dice"] == pytest.approx(2 / 3) and s["per_class"][0]["dice"] == pytest.approx(2 * 10 / 21)


def test_classification_detection_regression_rules():
    import numpy as np

    from models.fmc_metrics import box_iou, classification_scores, mean_radial_error

    s = classification_scores([0, 1, 1, 0], np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]), 2)
    assert s["acc"] == 0.75 and s["auc"] == 1.0 and s["auc_official"] == 1.0
    missing = classification_scores([0, 1, 1], np.full((3, 3), 1 / 3), 3)  # class 2 absent: AUC undefined
    assert missing["auc"] is None and missing["auc_official"] == 0.0  # n/a here, 0.0 in the official evaluator
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7) and box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0
    assert mean_radial_error([[0, 0], [3, 4]], [[0, 0], [0, 0]]) == 2.5


def test_reader_dataset_and_uniform_sampler(tmp_path):
    from collections import Counter

    from conftest import make_synthetic_busi
    from training.fmc_convert import main
    from training.fmc_data import FMCDataset, MultiTaskUniformSampler, read_fmc, split_samples, task_list

    main(["--busi", str(make_synthetic_busi(tmp_path / "busi")), "--hc18", str(make_hc18(tmp_path / "hc18")),
          "--out", str(tmp_path / "fmc")])  # fmt: skip
    samples = read_fmc(tmp_path / "fmc")
    tasks = task_list(samples)
    assert [t[:2] for t in tasks][:2] == [["breast_3cls", "classification"], ["breast_lesion", "segmentation"]]
    train, val = split_samples(samples)
    assert len(train) + len(val) == len(samples) and val
    ds = FMCDataset(samples, size=64, train=True)
    shapes = {}
    for i in range(len(ds)):
        x, target, task = ds[i]
        shapes[task] = (tuple(x.shape), tuple(target.shape), target.dtype)
    assert shapes["breast_lesion"] == ((3, 64, 64), (64, 64), torch.int64)
    assert shapes["fetal_head_axes"][1] == (8,) and shapes["fetal_head_det"][1] == (4,)
    sampler = MultiTaskUniformSampler([s.task_id for s in samples], batch_size=5, seed=0)
    batches = list(sampler)
    assert len(batches) == len(samples) // 5 and all(len(b) == 5 for b in batches)
    assert all(len({samples[i].task_id for i in b}) == 1 for b in batches)  # one task per batch
    ids = [s.task_id for s in samples] * 40
    many = Counter(ids[b[0]] for b in MultiTaskUniformSampler(ids, 5))
    assert len(many) == 6 and max(many.values()) < 3 * min(many.values())  # tasks drawn uniformly


def test_challenge_format_round_trip_convert_train_evaluate(tmp_path):
    import json

    from conftest import make_synthetic_busi
    from training.config import resolve_config
    from training.fmc_convert import main as convert
    from training.train import main as train

    data = tmp_path / "fmc"
    convert(["--busi", str(make_synthetic_busi(tmp_path / "busi")), "--hc18", str(make_hc18(tmp_path / "hc18")),
             "--out", str(data)])  # fmt: skip
    cfg = resolve_config(["ultrasound_multitask", "--data-dir", str(data), "--image-size", "64", "--epochs", "1",
                          "--batch-size", "4", "--runs-dir", str(tmp_path / "runs")])  # fmt: skip
    assert (cfg.model, cfg.select, cfg.fpn_quirk) == ("busi-hc18", "max:val_score", False)
    run = train(cfg)
    result = json.loads((run / "metrics.json").read_text())
    m = result["metrics"]
    assert set(m["tasks"]) == {"breast_3cls", "breast_lesion", "breast_lesion_det", "fetal_head", "fetal_head_axes",
                               "fetal_head_det"}  # fmt: skip
    assert 0 <= m["dsc"] <= 1 and m["hd"] >= 0 and 0 <= m["iou"] <= 1 and m["mre"] >= 0
    assert "hc_abs_error_mm" in m["tasks"]["fetal_head_axes"]
    for det in ("breast_lesion_det", "fetal_head_det"):  # the box read off the mask, where any mask was found
        t = m["tasks"][det]
        assert "iou_mask_box" not in t or (0 <= t["iou_mask_box"] <= 1 and 0 <= t["mask_box_missing"] <= t["n"])
    assert m["tasks"]["breast_3cls"]["auc_official"] == (m["tasks"]["breast_3cls"]["auc"] or 0.0)


def test_fpn_quirk_leaves_the_decoder_untrained():
    from models.multitask import MultiTaskNet
    from training.config import resolve_config
    from training.recipes import MultiTaskRecipe

    net = MultiTaskNet([["seg", "segmentation", 2]], input_size=64)
    base = ["ultrasound_multitask", "--data-dir", "x"]
    quirk = {id(p) for g in MultiTaskRecipe(resolve_config([*base, "--fpn-quirk"])).optimizer(net).param_groups
             for p in g["params"]}  # fmt: skip
    fixed = {id(p) for g in MultiTaskRecipe(resolve_config(base)).optimizer(net).param_groups for p in g["params"]}
    decoder = {id(p) for p in net.decoder.parameters()}
    assert decoder.isdisjoint(quirk) and decoder <= fixed


def test_predictor_maps_every_head_to_original_pixels(tiny_multitask_models):
    import numpy as np
    from PIL import Image

    from models.multitask import MultiTaskNet
    from models.predict import MultiTaskPredictor
    from models.visualize import draw_multitask

    model = MultiTaskNet.from_pretrained(tiny_multitask_models / "busi-hc18")
    predictor = MultiTaskPredictor(model)
    assert predictor.organs == {"breast": ["breast_3cls", "breast_lesion", "breast_lesion_det"],
                                "fetal": ["fetal_head", "fetal_head_axes", "fetal_head_det"]}  # fmt: skip
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120), np.uint8))
    pred = predictor(image, list(model.tasks))
    out = pred.outputs
    assert out["breast_lesion"].mask.shape == (90, 120)
    assert set(out["breast_3cls"].probs) == {"normal", "benign", "malignant"}
    assert abs(sum(out["breast_3cls"].probs.values()) - 1) < 1e-5
    x1, y1, x2, y2 = out["fetal_head_det"].box
    assert 0 <= x1 <= x2 <= 120 and 0 <= y1 <= y2 <= 90 and 0 <= out["fetal_head_det"].score <= 1
    assert out["fetal_head_axes"].points.shape == (4, 2)
    assert pred.head_circumference_px() > 0
    # one encoder pass for all heads gives the same answers as one forward per head
    import torch

    x = torch.randn(1, 3, 64, 64)
    together = model.forward_tasks(x, list(model.tasks))
    for task_id in model.tasks:
        torch.testing.assert_close(together[task_id], model(x, task_id))
    assert draw_multitask(image, list(out.values())).shape == (90, 120, 3)


def test_multitask_masks_resize_the_logits_as_the_other_segmenters_do(tiny_multitask_models):
    """Issue 15 (logs/decisions.txt): a mask is the arg-max of the logits resized bilinearly to the original size,
    the rule of ``SegmentationPredictor``; ``mask_resize="nearest"`` keeps the challenge's inference for comparison."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from models.multitask import MultiTaskNet
    from models.predict import MultiTaskPredictor

    model = MultiTaskNet.from_pretrained(tiny_multitask_models / "busi-hc18")
    predictor = MultiTaskPredictor(model, backend="pytorch")
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 120), np.uint8))
    x = predictor.transform(image.convert("RGB"))[None]
    with torch.inference_mode():
        logits = model.forward_tasks(x, ["breast_lesion"])["breast_lesion"]
    expected = F.interpolate(logits, size=(90, 120), mode="bilinear", align_corners=False).argmax(1)[0].numpy()
    assert predictor.mask_resize == "bilinear"
    np.testing.assert_array_equal(predictor(image, ["breast_lesion"]).outputs["breast_lesion"].mask, expected)
    predictor.mask_resize = "nearest"
    nearest = F.interpolate(logits.argmax(1, keepdim=True).float(), size=(90, 120), mode="nearest")[0, 0].long()
    np.testing.assert_array_equal(predictor(image, ["breast_lesion"]).outputs["breast_lesion"].mask, nearest.numpy())


def test_a_confident_other_organ_withholds_the_chosen_organs_answers(tiny_checkpoints):
    """Seen by a newcomer: a fetal head run with the default organ (breast) printed "Lesion class: malignant (94%)"
    under the warning. From ORGAN_WITHHOLD on, the chosen organ's answers go under "Every head's answer" only, and
    the picture is the plain image; a doubtful organ check keeps them, with the warning."""
    import numpy as np
    from PIL import Image

    from demo import ultrasound_multitask as tab

    class Probed:  # the tab's predictor, with the organ check's answer fixed
        def __init__(self, real, fetal):
            self.real, self.fetal = real, fetal

        def __getattr__(self, name):
            return getattr(self.real, name)

        def __call__(self, image, heads):
            pred = self.real(image, heads)
            pred.organ_probs = {"breast": 1 - self.fetal, "fetal": self.fetal}
            return pred

    example = str(tab.EXAMPLES_DIR / "004_HC.png")
    sure = lambda task, variant=None: Probed(tab.get_predictor(task, variant), 0.95)  # noqa: E731
    picture, probs, text = tab.predict(example, "breast", [], None, get_predictor=sure)
    headline, details = text.split("<details>")
    assert "looks like a Fetal head (HC18) image, not Breast (BUSI)" in headline and "Lesion class" not in headline
    assert probs is None and "Lesion class" in details  # the answers, under the expander only
    with Image.open(example) as im:
        assert np.array_equal(picture, np.asarray(im.convert("RGB")))  # nothing drawn
    unsure = lambda task, variant=None: Probed(tab.get_predictor(task, variant), 0.6)  # noqa: E731
    _, probs, text = tab.predict(example, "breast", [], None, get_predictor=unsure)
    assert "may be a Fetal head" in text.split("<details>")[0] and set(probs) == {"normal", "benign", "malignant"}


def test_the_default_organ_is_the_organ_checks_choice(tiny_checkpoints):
    """Seen by a newcomer: a fetal head uploaded with the default organ (then breast) got a warning instead of its HC.
    The default is now "auto": one encoder pass for every head, the organ check's organ keeps its heads, and the key
    result says which organ was picked and how sure the check was."""
    from demo import ultrasound_multitask as tab

    class Probed:  # the tab's predictor, with the organ check's answer fixed
        def __init__(self, real, fetal):
            self.real, self.fetal, self.asked = real, fetal, []

        def __getattr__(self, name):
            return getattr(self.real, name)

        def __call__(self, image, heads):
            self.asked.append(list(heads))
            pred = self.real(image, heads)
            pred.organ_probs = {"breast": 1 - self.fetal, "fetal": self.fetal}
            return pred

    example = str(tab.EXAMPLES_DIR / "004_HC.png")
    for fetal, organ, shown in ((0.9, "fetal", "Head circumference"), (0.2, "breast", "Lesion class")):
        probed = Probed(tab.get_predictor(tab.TASK, tab.variant_name()), fetal)
        picture, probs, text = tab.predict(example, tab.ORGAN_AUTO, tab.organ_heads(tab.ORGAN_AUTO), 0.06,
                                           get_predictor=lambda task, variant=None, p=probed: p)  # fmt: skip
        headline, details = text.split("<details>")
        assert probed.asked == [tab.organ_heads(tab.ORGAN_AUTO)]  # one pass, every head
        assert f"Organ: **{tab.ORGAN_TITLES[organ]}**, chosen by the organ check" in headline and shown in headline
        assert "looks like" not in headline and "may be" not in headline
        assert (probs is None) == (organ == "fetal")  # only the breast has a class head
        other = "Lesion" if organ == "fetal" else "Head"
        assert f"**{other}" not in details  # the other organ's heads are not reported


def test_the_key_result_says_when_the_class_and_the_mask_disagree():
    """Seen by a newcomer: "Lesion class: normal (84%)" above a large lesion mask and its box, unexplained. A lesion
    class with an empty mask is "nothing found"; agreeing heads and organs without a class head add nothing."""
    from demo.ultrasound_multitask import heads_disagree

    clash = heads_disagree({"breast_3cls": "normal"}, {"breast_lesion": 0.12})
    assert "heads disagree" in clash and "normal" in clash and "12.0%" in clash
    assert "found nothing" in heads_disagree({"breast_3cls": "malignant"}, {"breast_lesion": 0.0})
    guess = heads_disagree({"breast_3cls": "benign"}, {"breast_lesion": 0.0}, box_head_drawn=True, box_head_iou=0.13)
    assert "box head's rough guess" in guess and "held-out IoU 0.13" in guess
    assert heads_disagree({"breast_3cls": "benign"}, {"breast_lesion": 0.05}) == ""
    assert heads_disagree({"breast_3cls": "normal"}, {"breast_lesion": 0.0}).startswith("No lesion region found")
    speck = heads_disagree({"breast_3cls": "normal"}, {"breast_lesion": 0.0}, {"breast_lesion": 0.0012})
    assert "speck covers 0.12% of the image, below the 0.50% minimum" in speck
    assert heads_disagree({}, {"fetal_head": 0.3}) == ""


def test_tab_predict_reports_every_kind_and_hc_in_mm(tiny_checkpoints):
    import gradio as gr
    import pytest

    from demo import ultrasound_multitask as tab

    example = str(tab.EXAMPLES_DIR / "004_HC.png")
    picture, probs, text = tab.predict(example, "fetal", [], 0.0612398400539)
    assert picture.ndim == 3 and probs is None
    assert "(segmentation)" in text and "(detection)" in text and "(keypoints)" in text
    assert "Head circumference:" in text and " mm" in text
    assert "From the head mask's fitted ellipse" in text or "From the four axis points" in text  # its source
    _, probs, text = tab.predict(str(tab.EXAMPLES_DIR / "benign_17.png"), "breast", ["breast_3cls"], None)
    assert set(probs) == {"normal", "benign", "malignant"} and "(classification)" in text
    # the organ switched while the other organ's heads are still ticked (a re-run on the switch): the organ's heads
    picture_, _, text = tab.predict(example, "fetal", ["breast_3cls"], None)
    assert "Head mask" in text and "Lesion" not in text and "Enter the pixel size" in text
    with pytest.raises(gr.Error, match="pixel size"):
        tab.predict(example, "fetal", [], -1)
    with pytest.raises(gr.Error, match="Upload an image"):
        tab.predict(None, "fetal", [], None)
    table = tab.results_view()
    assert {"measured here", tab.board.REPORT_SOURCE} <= set(table["source"])
    # every row states its key numbers up front (a detection or keypoint row's sat off-screen, the row looked empty)
    assert list(table.columns).index("headline") == list(table.columns).index("images") + 1
    assert table["headline"].str.len().gt(0).all() and "Regression" not in set(table["kind"])


def test_leaderboard_has_a_row_per_task(tiny_multitask_models):
    from leaderboard.results import collect

    df = collect(root=tiny_multitask_models.parent, published=None)
    models = list(df["model"])
    assert any(m.endswith("(ours)") for m in models)
    per_task = df[df["model"].str.endswith(": fetal_head_axes")].iloc[0]
    assert per_task["mre"] == 50.0 and per_task["hc_error_mm"] == 20.0
    cls = df[df["model"].str.endswith(": breast_3cls")].iloc[0]
    assert cls["acc"] == 0.33 and cls["auc"] != cls["auc"]  # n/a stays NaN, never 0


def test_api_can_ask_for_any_organs_heads(client):
    """The heads box lists every head server-side (the page narrows it to the organ's), so an API call for the
    fetal heads is valid even though the page opens on another organ."""
    from gradio_client import handle_file

    from tests.test_faults import ROOT

    image = ROOT / "demo" / "examples" / "ultrasound_multitask" / "004_HC.png"
    _, _, info = client.predict(handle_file(str(image)), "fetal", ["fetal_head", "fetal_head_axes"], 0.0691,
                                api_name="/multitask")  # fmt: skip
    assert "Head mask" in info and "Head circumference" in info and "Lesion" not in info  # the fetal heads ran


def test_head_circumference_from_a_mask_within_one_percent():
    """Issue 15.3: largest component, holes filled, cv2.fitEllipse, Ramanujan: synthetic heads of known HC."""
    import cv2
    import numpy as np

    from models.fmc_metrics import circumference_from_mask, ellipse_circumference

    for a, b, angle, shape in [(120, 90, 30, (400, 500)), (40, 30, 0, (120, 120)), (200, 150, 75, (540, 800))]:
        mask = np.zeros(shape, np.uint8)
        cv2.ellipse(mask, ((shape[1] / 2, shape[0] / 2), (2 * a, 2 * b), angle), 1, -1)
        mask[shape[0] // 2 - 3 : shape[0] // 2 + 3, shape[1] // 2 - 3 : shape[1] // 2 + 3] = 0  # a hole
        mask[2:6, 2:6] = 1  # a speck: not the largest component
        hc = circumference_from_mask(mask)
        assert abs(hc - ellipse_circumference(a, b)) / ellipse_circumference(a, b) < 0.01
    assert circumference_from_mask(np.zeros((50, 50), np.uint8)) is None


def test_a_box_is_read_off_the_organ_mask_as_the_data_boxes_are():
    """Issue 15: the box around the largest component of the organ's mask, with exclusive ends like the converted
    data's boxes (training.fmc_convert.mask_box); a prediction gives it for a detection task whose mask ran."""
    import numpy as np

    from models.fmc_metrics import box_from_mask
    from models.predict import MultiTaskPrediction, TaskOutput
    from training.fmc_convert import mask_box

    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 20:50] = 1
    mask[50:52, 70:72] = 1  # a speck: not the largest component
    assert box_from_mask(mask) == (20, 10, 50, 30) == mask_box(mask[:40])
    assert box_from_mask(np.zeros((5, 5), np.uint8)) is None
    outputs = {"breast_lesion": TaskOutput("breast_lesion", "segmentation", mask=mask),
               "breast_lesion_det": TaskOutput("breast_lesion_det", "detection", box=(0, 0, 5, 5), score=0.9),
               "fetal_head_det": TaskOutput("fetal_head_det", "detection", box=(0, 0, 5, 5), score=0.9)}  # fmt: skip
    pred = MultiTaskPrediction(image=None, outputs=outputs, model_ms=0, latency_ms=0)
    assert pred.mask_box("breast_lesion_det") == (20, 10, 50, 30)
    assert pred.mask_box("fetal_head_det") is None  # its mask did not run: the box head's box is drawn
    assert pred.mask_box("breast_lesion") is None  # a mask is not a detection task


def test_no_box_is_drawn_where_the_organ_mask_found_nothing(tiny_checkpoints):
    """Seen by a newcomer: a normal breast image got a green "Lesion box 1.00" (the box head saw only images with a
    lesion and proposes one everywhere). A box is drawn around a found region; where the mask is empty or below the
    breast tab's minimum lesion size (models.registry.MIN_LESION_FRACTION), none if the class head says normal (the box
    head's box listed only), the box head's own box, labelled so, if it says benign or malignant."""
    import numpy as np
    from PIL import Image

    from demo import ultrasound_multitask as tab
    from models.predict import MultiTaskPrediction, TaskOutput
    from models.registry import MIN_LESION_FRACTION

    image = Image.new("RGB", (100, 100), (60, 60, 60))
    speck = np.zeros((100, 100), np.uint8)
    speck[:4, :4] = 1  # 0.16 % of the image: below the minimum
    lesion = np.zeros((100, 100), np.uint8)
    lesion[20:60, 30:70] = 1
    assert speck.mean() < MIN_LESION_FRACTION <= lesion.mean()

    def predictor_with(mask, label="normal"):
        probs = {"normal": 0.1, "benign": 0.1, "malignant": 0.1} | {label: 0.8}
        outputs = {
            "breast_3cls": TaskOutput("breast_3cls", "classification", probs=probs),
            "breast_lesion": TaskOutput("breast_lesion", "segmentation", mask=mask),
            "breast_lesion_det": TaskOutput("breast_lesion_det", "detection", box=(5, 5, 95, 40), score=1.0),
        }
        pred = MultiTaskPrediction(image=image, outputs=outputs, model_ms=1, latency_ms=1)
        return lambda *_: lambda *_: pred  # get_predictor(task, variant) -> predictor(image, heads) -> pred

    path = str(tab.EXAMPLES_DIR / "benign_17.png")
    for mask in (np.zeros((100, 100), np.uint8), speck):
        pred = predictor_with(mask)()()
        assert pred.mask_found("breast_lesion") is False and pred.mask_box("breast_lesion_det") is None
        picture, _, text = tab.predict(path, "breast", [], None, get_predictor=predictor_with(mask))
        green = (picture[..., 1] > 200) & (picture[..., 0] < 80) & (picture[..., 2] < 80)
        assert not green.any(), "a box was drawn although the lesion mask found nothing"
        assert "none drawn" in text and "objectness 1.00" in text and "heads disagree" not in text
    picture, _, text = tab.predict(path, "breast", [], None, get_predictor=predictor_with(speck, "malignant"))
    assert "found no region of the minimum lesion size (the tinted one covers 0.16% of the image, below 0.50%)" in text
    assert (
        "the green box is the box head's rough guess" in text
        and "the green rectangle is the box head's own box" in text
    )
    assert ((picture[..., 1] > 200) & (picture[..., 0] < 80) & (picture[..., 2] < 80)).any()
    assert predictor_with(speck, "benign")()().drawn_box("breast_lesion_det") == ((5, 5, 95, 40), "box head")
    assert predictor_with(speck, "benign")()().drawn_box("breast_lesion_det", fallback=False) is None
    picture, _, text = tab.predict(path, "breast", [], None, get_predictor=predictor_with(lesion, "benign"))
    assert "drawn around the lesion mask's largest region" in text
    assert ((picture[..., 1] > 200) & (picture[..., 0] < 80) & (picture[..., 2] < 80)).any()


def test_hc_errors_summarise_mean_median_and_within_5mm():
    from training.evaluate import hc_errors

    out = hc_errors([(100.0, 100.0, 0.1), (150.0, 100.0, 0.1), (None, 100.0, 0.1)])  # 0, 5, 10 mm
    assert out["hc_abs_error_mm"] == 5.0 and out["hc_median_abs_error_mm"] == 5.0
    assert abs(out["hc_within_5mm"] - 2 / 3) < 1e-9 and out["hc_failed"] == 1


def test_lite_encoder_variant_uses_its_own_normalisation_and_the_organ_probe():
    import torch

    from models.multitask import OrganProbe
    from models.registry import build_model

    net = build_model("ultrasound_multitask", "busi-hc18-lite1", input_size=64).eval()
    assert net.mean == (0.5, 0.5, 0.5) and net.std == (0.5, 0.5, 0.5)  # timm's tf_efficientnet_lite1 config
    out, pooled = net.forward_tasks(torch.zeros(1, 3, 64, 64), ["fetal_head"], pooled=True)
    assert out["fetal_head"].shape == (1, 2, 64, 64) and pooled.shape == (1, net.encoder.out_channels[-1])
    c = pooled.shape[1]
    probe = OrganProbe({"mean": torch.zeros(c), "scale": torch.ones(c), "coef": torch.zeros(2, c),
                        "intercept": torch.tensor([0.0, 1.0])}, ["breast", "fetal"])  # fmt: skip
    probs = probe(pooled[0])
    assert set(probs) == {"breast", "fetal"} and probs["fetal"] > probs["breast"]


def test_head_refits_keep_the_architecture_and_are_chosen_on_the_training_split(tmp_path, tiny_multitask_models):
    """training.head_refit: the cRT probe folded into the class head's Linear gives the probe's own answers; the lesion
    head's bias moves by the chosen delta; both are recorded in metrics.json and the card, once each."""
    import json
    import shutil

    import numpy as np

    from conftest import make_synthetic_busi
    from models.multitask import MultiTaskNet
    from training.fmc_convert import main as convert
    from training.head_refit import CS, DELTAS, bias_sweep, fit_probe, main

    rng = np.random.default_rng(0)
    features = rng.normal(size=(30, 2, 8)) + np.repeat(np.arange(3), 10)[:, None, None]
    labels = np.repeat(np.arange(3), 10)
    probe = fit_probe(features, labels, 1.0, None)
    weight, bias = probe.linear()
    folded = (torch.from_numpy(features[:, 0]).float() @ weight.T + bias).argmax(-1).numpy()
    assert (folded == probe.predict(features[:, 0])).all()
    truth = np.zeros((10, 10), np.int64)
    truth[2:8, 2:8] = 1
    margin = np.where(truth > 0, 0.5, -2.0) - 0.8 * (np.arange(10) % 2)  # under-segments: odd columns fall short
    rows = bias_sweep([margin], [truth])
    assert [r["delta"] for r in rows] == list(DELTAS) and max(DELTAS) >= 2 and 0.0 in DELTAS  # past +1
    at = {r["delta"]: r["train_dice"] for r in rows}
    assert at[1.0] > at[0.0]

    data = tmp_path / "fmc"
    convert(["--busi", str(make_synthetic_busi(tmp_path / "busi", n_per_class=10)), "--hc18",
             str(make_hc18(tmp_path / "hc18")), "--out", str(data)])  # fmt: skip
    folder = tmp_path / "model"
    shutil.copytree(tiny_multitask_models / "busi-hc18", folder)
    before = MultiTaskNet.from_pretrained(folder)
    base = ["--data-dir", str(data), "--model", "busi-hc18", "--checkpoint", str(folder), "--write"]
    cls = main([*base, "--task", "breast_3cls"])
    seg = main([*base, "--task", "breast_lesion"])
    again = main([*base, "--task", "breast_lesion"])  # a second refit replaces its note, it does not add one
    after = MultiTaskNet.from_pretrained(folder)
    shift = after.heads["breast_lesion"][0].bias - before.heads["breast_lesion"][0].bias
    assert torch.allclose(shift, torch.tensor([0.0, seg["delta"] + again["delta"]]), atol=1e-3)  # fp16-stored
    assert not torch.equal(after.heads["breast_3cls"][3].weight, before.heads["breast_3cls"][3].weight)
    result = json.loads((folder / "metrics.json").read_text())
    assert set(result["training"]["head_refit"]) == {"breast_3cls", "breast_lesion"}
    assert cls["C"] in CS
    from safetensors.torch import load_file

    stored = load_file(str(folder / "model.safetensors"))["heads.breast_3cls.3.weight"].dtype
    big = sum(p.numel() for p in after.parameters()) * 4 > 20e6  # stored as training stores it: fp16 over 20 MB
    assert stored == (torch.float16 if big else torch.float32)
    assert result["notes"].count("breast_lesion --write") == 1 and result["notes"].count("breast_3cls --write") == 1
    assert "head_refit --task breast_3cls" in (folder / "README.md").read_text()
    with pytest.raises(SystemExit):
        main([*base, "--task", "breast_lesion_det"])


def test_predictor_flags_an_image_unlike_the_training_images(tiny_multitask_models):
    """The multitask gate (``ood.safetensors``, ``training.ood_fit --task ultrasound_multitask``) scores the pooled
    encoder features the organ check uses, loaded beside the weights; no gate, no flag."""
    import numpy as np
    import torch
    from PIL import Image

    from models.multitask import MultiTaskNet
    from models.ood import MahalanobisOOD
    from models.predict import MultiTaskPredictor

    model = MultiTaskNet.from_pretrained(tiny_multitask_models / "busi-hc18")
    image = Image.fromarray((np.add.outer(np.arange(90), np.arange(120)) % 200).astype(np.uint8))
    assert MultiTaskPredictor.for_model(model)(image, ["breast_3cls"]).looks_out_of_distribution is False
    _, pooled = model.forward_tasks(torch.zeros(1, 3, 64, 64), ["breast_3cls"], pooled=True)
    dim = pooled.shape[1]
    far = MahalanobisOOD(torch.full((dim,), 100.0), torch.eye(dim), threshold=1.0)
    pred = MultiTaskPredictor(model, ood=far)(image, ["breast_3cls"])
    assert pred.looks_out_of_distribution and "far from the training images" in pred.ood_reason
    assert pred.ood_distance > pred.ood_threshold == 1.0
    near = MahalanobisOOD(torch.zeros(dim), torch.zeros(dim, dim), threshold=1.0)
    assert not MultiTaskPredictor(model, ood=near)(image, ["breast_3cls"]).looks_out_of_distribution
