"""OrganSMNIST ablation (SYSTEMS.md §3): parameter counts, the MedMNIST-format loader and MD5 identification, the
BUSI stand-in builder, the ablation CLI end to end on a synthetic file in the official format, and our metrics
against the ``medmnist`` package's own Evaluator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA


@pytest.mark.parametrize(
    "variant, expected",
    [("base", 106_239), ("big", 1_662_939), ("bn", 1_664_555), ("resnet50", 23_530_571),
     ("resnet101", 42_522_699), ("resnet152", 58_166_347)],
)  # fmt: skip
def test_parameter_counts_match_the_report(variant, expected):
    from models.base import count_parameters
    from models.registry import build_model

    model = build_model("organsmnist", variant)
    assert count_parameters(model) == expected
    assert model.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 11)


def test_steps_are_named_configurations_of_two_classes():
    from models.registry import ABLATION_SHIPPED_ONLY, get_task
    from training.ablate import ALL_STEPS, STEPS

    variants = get_task("organsmnist").variants  # the ladder's one definition: model and training settings
    assert list(variants) == [*STEPS, *ABLATION_SHIPPED_ONLY]  # and the runs shipped beside it (bn-adapted)
    variants = {k: v for k, v in variants.items() if k in STEPS}
    assert {v.model for v in variants.values()} == {"models.organ_cnn:OrganCNN", "models.organ_cnn:ResNetClassifier"}
    base = variants["base"].train_preset
    assert base["epochs"] == 5 and "patience" not in base and ALL_STEPS[-1] == "ensemble"
    assert [v.train_preset.get("augment") == "report" for v in variants.values()] == [False] * 3 + [True] * 5
    assert all(v.train_preset.get("patience") == 5 for k, v in variants.items() if k != "base")


def make_medmnist_file(path, n_classes: int = 11, counts=(60, 20, 30), seed: int = 0):
    """A synthetic file in the official MedMNIST format: class-dependent bright squares on noise."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        labels = np.arange(n) % n_classes
        rng.shuffle(labels)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for img, y in zip(images, labels):
            r, c = divmod(int(y), 4)
            img[2 + 6 * r : 8 + 6 * r, 2 + 6 * c : 8 + 6 * c] = 230
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return path


def test_loader_reads_official_format_and_rejects_others(tmp_path):
    from training.medmnist import OFFICIAL, identify, load_npz

    path = make_medmnist_file(tmp_path / "organsmnist.npz")
    data = load_npz(path)
    assert [len(v[1]) for v in data.values()] == [60, 20, 30] and data["train"][0].dtype == np.uint8
    assert data["train"][1].ndim == 1 and data["train"][1].max() == 10
    info = identify(path)
    assert info["version"] is None and info["md5"] not in OFFICIAL  # synthetic: labelled unofficial
    np.savez(tmp_path / "bad.npz", train_images=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="missing"):
        load_npz(tmp_path / "bad.npz")
    (tmp_path / "text.npz").write_text("no")
    with pytest.raises(ValueError, match="cannot read"):
        load_npz(tmp_path / "text.npz")
    assert {v["version"] for v in OFFICIAL.values()} == {"v2", "v3"}


def test_official_md5_is_recognised(tmp_path, monkeypatch):
    from training import medmnist

    path = make_medmnist_file(tmp_path / "organsmnist.npz", counts=(13940, 2452, 8829))
    monkeypatch.setitem(medmnist.OFFICIAL, medmnist.md5sum(path), medmnist.OFFICIAL["e5c39f1af030238290b9557d9503af9d"])
    assert medmnist.identify(path)["version"] == "v2"
    wrong = make_medmnist_file(tmp_path / "wrong.npz", counts=(10, 2, 3))
    monkeypatch.setitem(
        medmnist.OFFICIAL, medmnist.md5sum(wrong), medmnist.OFFICIAL["e5c39f1af030238290b9557d9503af9d"]
    )
    with pytest.raises(ValueError, match="do not match"):
        medmnist.identify(wrong)


def test_download_without_network_says_what_to_do(tmp_path, monkeypatch):
    import medmnist as package

    from training.medmnist import resolve_dataset

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(package, "OrganSMNIST", offline)
    with pytest.raises(SystemExit, match="could not download organsmnist.*--dataset FILE.npz"):
        resolve_dataset("organsmnist", tmp_path)
    assert resolve_dataset(str(make_medmnist_file(tmp_path / "x.npz"))).name == "x.npz"


def test_metrics_agree_with_the_medmnist_evaluator(tmp_path):
    from medmnist import Evaluator

    from training.ablate import classification_metrics

    make_medmnist_file(tmp_path / "organsmnist.npz")
    labels = np.load(tmp_path / "organsmnist.npz")["test_labels"][:, 0].astype(np.int64)
    logits = torch.randn(len(labels), 11) + 3 * torch.nn.functional.one_hot(torch.from_numpy(labels), 11)
    ours = classification_metrics(labels, logits, list(range(11)))
    theirs = Evaluator("organsmnist", "test", root=str(tmp_path)).evaluate(logits.softmax(1).numpy())
    assert ours["acc"] == pytest.approx(theirs.ACC) and ours["auc"] == pytest.approx(theirs.AUC)
    assert ours["recall_weighted"] == pytest.approx(ours["acc"])  # the report's sanity check


def test_auc_is_not_applicable_when_a_class_is_missing():
    from training.ablate import classification_metrics

    m = classification_metrics(np.array([0, 0, 1, 1]), torch.randn(4, 3), ["a", "b", "c"])
    assert m["auc"] is None and len(m["confusion_matrix"]) == 3


def test_ablation_cli_end_to_end_and_resumable(tmp_path):
    from training.ablate import main

    path = make_medmnist_file(tmp_path / "organsmnist.npz")
    out = tmp_path / "abl"
    args = ["--dataset", str(path), "--task", "organsmnist", "--out", str(out), "--max-epochs", "3",
            "--checkpoints-dir", str(tmp_path / "ck")]  # fmt: skip
    summary = main([*args, "--steps", "base,es,bn"])
    assert [r["step"] for r in summary["steps"]] == ["base", "es", "bn"]
    r = json.loads((out / "bn" / "metrics.json").read_text())
    assert set(r["splits"]) == {"train", "val", "test"} and r["params"] == 1_664_555
    assert {"acc", "precision_weighted", "recall_weighted", "f1_weighted", "auc", "confusion_matrix"} <= set(
        r["metrics"]
    )
    assert r["training"]["seed"] == 1 and r["training"]["augment"] and "not an official" in r["dataset"]
    steps = (out / "bn" / "steps.csv").read_text().splitlines()
    assert steps[0].startswith("step,epoch,train_loss,train_acc,val_loss,val_acc") and "val_acc_smooth" in steps[0]
    assert json.loads((out / "base" / "metrics.json").read_text())["training"]["epochs_run"] == 5  # fixed
    before = (out / "base" / "metrics.json").stat().st_mtime_ns
    main([*args, "--steps", "base", "--export"])  # a finished step is not trained again
    assert (out / "base" / "metrics.json").stat().st_mtime_ns == before
    assert (tmp_path / "ck" / "organsmnist" / "bn" / "model.safetensors").exists()
    assert (tmp_path / "ck" / "organsmnist" / "ablation.json").exists()


def test_ensemble_is_the_mean_of_raw_logits():
    from models.organ_cnn import LogitEnsemble

    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    assert torch.allclose(LogitEnsemble([a, b])(x), (a(x) + b(x)) / 2)


def test_standin_follows_the_breastmnist_recipe(tmp_path):
    from conftest import make_synthetic_busi
    from training.medmnist import load_npz
    from training.medmnist_standin import main

    busi = make_synthetic_busi(tmp_path / "busi", n_per_class=10)
    out = main(["--busi", str(busi), "--out", str(tmp_path / "s.npz")])
    data = load_npz(out)
    assert [len(v[1]) for v in data.values()] == [21, 3, 6]  # 7:1:2 of 30
    assert data["train"][0].shape[1:] == (28, 28)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["labels"] == {"0": "malignant", "1": "normal, benign"}
    all_labels = np.concatenate([v[1] for v in data.values()])
    assert (all_labels == 0).sum() == 10  # the malignant images


def test_real_standin_has_breastmnist_sizes(tmp_path):
    busi = SHARED_DATA / "busi"
    if not (busi / "benign").is_dir():
        pytest.skip("real BUSI data not found")
    from training.medmnist_standin import build

    arrays, meta = build(busi)
    assert meta["counts"] == {"train": 546, "val": 78, "test": 156}  # BreastMNIST's own sizes
    assert "malignant (145)" in meta["members"]["train"] and "benign (433)" in meta["members"]["train"]


def test_tab_shows_curves_and_the_report_table(client):
    curves, bars, confusion, table, status = client.predict(
        "BreastMNIST-style stand-in (BUSI)", "bn", "test", api_name="/ablation"
    )
    text = json.dumps([curves, bars, confusion])
    assert "+ BatchNorm: val" in text and "student report (OrganSMNIST v2" in text and "Confusion matrix" in text
    sources = {row[1] for row in table["data"]}
    assert "BreastMNIST-style stand-in (BUSI), measured here" in sources
    assert any("student report" in s for s in sources)
    *_, status = client.predict("OrganSMNIST", "bn", "test", api_name="/ablation")
    assert "No OrganSMNIST run present" in status and "training.ablate --dataset organsmnist" in status


def test_tab_predicts_with_a_28px_preview(client):
    from pathlib import Path

    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    example = Path(__file__).resolve().parents[1] / "demo" / "examples" / "organsmnist" / "malignant_10.png"
    preview, label, info = client.predict(
        handle_file(str(example)), "breastmnist_standin/bn", api_name="/classify_organ"
    )
    from PIL import Image

    assert Image.open(preview).size == (168, 168)
    # BreastMNIST's "normal, benign", said as one answer
    assert {c["label"] for c in label["confidences"]} == {"malignant", "normal or benign"}
    assert "28x28" in info and "reference label **malignant**" in info  # a shipped example names its BUSI label
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(__file__), "breastmnist_standin/bn", api_name="/classify_organ")


def test_seed_statistics_and_the_paired_test():
    from models.cls_metrics import at_majority
    from training.ablate import paired_test, seed_statistics

    s = seed_statistics([0.70, 0.72, 0.74, 0.76, 0.78])
    assert s["mean"] == pytest.approx(0.74) and s["std"] == pytest.approx(0.0316228, rel=1e-4)
    assert s["ci95_low"] == pytest.approx(0.74 - 2.776445 * 0.0316228 / 5**0.5, rel=1e-4)
    diff, p = paired_test({1: 0.80, 2: 0.82, 3: 0.85, 4: 0.83}, {1: 0.70, 2: 0.71, 3: 0.73, 4: 0.72})
    assert diff == pytest.approx(0.11) and p < 0.001  # consistent gain on the same seeds: beyond noise
    assert paired_test({1: 0.7, 2: 0.7}, {1: 0.6, 2: 0.6}) == (None, None)  # fewer than 3 shared seeds
    assert paired_test({1: 0.73, 2: 0.73, 3: 0.73}, {1: 0.73, 2: 0.73, 3: 0.73}) == (0.0, 1.0)  # both stuck
    assert at_majority([[0, 42], [0, 114]]) and not at_majority([[30, 12], [10, 104]])


def test_prior_correction_gives_the_balanced_loss_its_prior_back():
    """The adapted protocol trains with class-balanced CE, whose softmax estimates p(y|x) / prior(y); its predictions
    add log prior(y) (logit adjustment). The report's protocol adds nothing."""
    from training.ablate import prior_correction

    labels = np.array([0] * 25 + [1] * 75)
    shift = prior_correction("breastmnist_standin", "adapted", labels)
    assert torch.allclose(shift, torch.log(torch.tensor([0.25, 0.75])))
    assert prior_correction("breastmnist_standin", "report", labels) is None
    # a balanced model that says 60 % minority is under the prior's threshold: accuracy's arg-max is the majority
    balanced = torch.log(torch.tensor([[0.6, 0.4]]))
    assert (balanced + shift).argmax(1).item() == 1


def test_seeds_and_protocols_end_to_end(tmp_path):
    """Issue 18: every step x seed x protocol trains through the one trainer; the seed tables say mean, std, interval,
    majority-class seeds and the paired comparison; only the shown run (report protocol, seed 1) keeps weights."""
    import csv

    from training.ablate import main

    path = make_medmnist_file(tmp_path / "s.npz", n_classes=2, counts=(40, 10, 12))
    out = tmp_path / "abl"
    main(["--dataset", str(path), "--task", "breastmnist_standin", "--steps", "base,bn", "--max-epochs", "2",
          "--seeds", "3", "--protocols", "report,adapted", "--out", str(out), "--export",
          "--checkpoints-dir", str(tmp_path / "ck")])  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "ck" / "breastmnist_standin" / "ablation_seeds.csv").open()))
    assert [(r["protocol"], r["step"], r["seeds"]) for r in rows] == [
        ("adapted", "base", "3"),
        ("adapted", "bn", "3"),
        ("report", "base", "3"),
        ("report", "bn", "3"),
    ]
    need = {"protocol", "resolution", "step", "seeds", "test_acc_mean", "test_acc_std", "test_auc_mean",
            "test_auc_std", "test_acc_ci95_low", "majority_seeds", "paired_p"}  # fmt: skip
    assert need <= set(rows[0]) and rows[0]["resolution"] == "28" and rows[1]["vs_previous"] == "base"
    curves = list(csv.DictReader((tmp_path / "ck" / "breastmnist_standin" / "ablation_seed_curves.csv").open()))
    assert {r["seeds"] for r in curves if r["epoch"] == "1"} == {"3"}
    adapted = json.loads((out / "seeds" / "adapted-28px" / "seed2" / "bn" / "metrics.json").read_text())
    t = adapted["training"]
    assert t["seed"] == 2 and t["class_weighting"] == "inverse_frequency" and t["protocol"] == "adapted"
    assert t["select"] == "max:val_auc" and t["patience"] == 10 and t["weight_decay"] == 1e-4
    assert "class-balanced" in adapted["notes"] and "seed 2" in adapted["notes"]
    assert t["augmentation"] == "small_data" and t["prior_correction"] is True  # the adapted protocol's own changes
    base = json.loads((out / "seeds" / "adapted-28px" / "seed2" / "base" / "metrics.json").read_text())["training"]
    assert base["augmentation"] == "none" and not base["augment"]  # a step that does not augment still does not
    report = json.loads((out / "seeds" / "report-28px" / "seed2" / "bn" / "metrics.json").read_text())["training"]
    assert report["augmentation"] == "report" and report["prior_correction"] is False
    assert (tmp_path / "ck" / "breastmnist_standin" / "bn" / "model.safetensors").exists()  # the shown run
    assert not list((out / "seeds").rglob("model.safetensors"))  # the others keep logits, not weights
    assert not list((out / "seeds").rglob("state"))  # no optimiser state left behind


def test_tab_shows_seeds_protocols_and_anchors(client):
    note, bars, curves, resolution, table, anchors, size = client.predict(
        "BreastMNIST-style stand-in (BUSI)", "report", "28", api_name="/ablation_seeds"
    )
    assert "28 px" in note and "majority class" in note and "MedMNIST+" in note
    if "tie)" in note:  # steps at the same shown mean are all named
        assert note.count(" ± ") >= 2
    text = json.dumps([bars, curves, resolution])
    assert "95 % interval" in text and "MedMNIST v2 BreastMNIST" in text
    assert table["headers"][:4] == ["step", "protocol", "px", "seeds"]
    assert any("ResNet-18 (28)" in str(row[0]) for row in anchors["data"])
    note, bars, *_ = client.predict("OrganSMNIST", "adapted", "64", api_name="/ablation_seeds")  # absent: no error
    assert "No seed study" in note and bars is None  # the note alone: no empty plot with BreastMNIST's reference


def test_standin_builder_takes_a_resolution(tmp_path):
    from conftest import make_synthetic_busi
    from training.medmnist import load_npz
    from training.medmnist_standin import main

    busi = make_synthetic_busi(tmp_path / "busi", n_per_class=10)
    out = main(["--busi", str(busi), "--out", str(tmp_path / "s64.npz"), "--size", "64"])
    assert load_npz(out)["train"][0].shape[1:] == (64, 64)
    assert json.loads(out.with_suffix(".json").read_text())["size"] == 64


def test_min_seeds_leaves_out_a_step_whose_seeds_are_not_all_done(tmp_path):
    """A rerun cut short by compute exports only its complete steps (``--min-seeds 5``); the paired comparison of the
    next complete step is then with the previous step present."""
    import csv

    from training.ablate import write_seed_tables

    def run(seed, step, acc):
        folder = tmp_path / "seeds" / "adapted-28px" / f"seed{seed}" / step
        folder.mkdir(parents=True)
        test = {"acc": acc, "auc": 0.8, "confusion_matrix": [[5, 5], [5, 5]]}
        (folder / "metrics.json").write_text(json.dumps({"splits": {"test": test}, "params": 10}))

    for seed in (1, 2, 3):
        run(seed, "base", 0.75 + seed / 100)
        run(seed, "bn", 0.80 + seed / 100)
    run(1, "resnet50", 0.70)  # one seed of three: left out
    write_seed_tables(tmp_path, "breastmnist_standin", min_seeds=3)
    rows = list(csv.DictReader((tmp_path / "ablation_seeds.csv").open()))
    assert [(r["step"], r["seeds"], r["vs_previous"]) for r in rows] == [("base", "3", ""), ("bn", "3", "base")]
    write_seed_tables(tmp_path, "breastmnist_standin")  # the default: every step that has a run
    assert [r["step"] for r in csv.DictReader((tmp_path / "ablation_seeds.csv").open())] == ["base", "bn", "resnet50"]


def test_a_partial_study_keeps_the_shipped_rows_of_what_it_did_not_rerun(tmp_path):
    """A study replaces every step of each (protocol, resolution) it ran and keeps the shipped rows of the others (the
    report protocol's runs, or another size's); a study without the shown run leaves the shipped ablation.json alone."""
    import csv

    from training.ablate import export, merge_seed_table

    shipped, new = tmp_path / "shipped.csv", tmp_path / "new.csv"
    head = "protocol,resolution,step,seeds,test_acc_mean\n"
    shipped.write_text(head + "adapted,28,bn,5,0.80\nadapted,64,bn,5,0.54\nreport,28,bn,5,0.74\nreport,64,bn,5,0.61\n")
    shipped.write_text(head + shipped.read_text().split("\n", 1)[1] + "report,64,base,5,0.73\n")
    new.write_text(head + "adapted,28,bn,5,0.85\nreport,64,bn,5,0.66\nreport,64,resnet50,5,0.70\n")
    merge_seed_table(new, shipped)
    rows = [(r["protocol"], r["resolution"], r["step"], r["test_acc_mean"]) for r in csv.DictReader(shipped.open())]
    assert rows == [("adapted", "28", "bn", "0.85"), ("adapted", "64", "bn", "0.54"), ("report", "28", "bn", "0.74"),
                    ("report", "64", "bn", "0.66"), ("report", "64", "resnet50", "0.70")]  # fmt: skip

    out, ck = tmp_path / "study", tmp_path / "ck"
    out.mkdir()
    (ck / "t").mkdir(parents=True)
    (ck / "t" / "ablation.json").write_text('{"task": "t", "steps": [{"step": "bn"}]}')
    (out / "ablation.json").write_text('{"task": "t", "steps": []}')
    export(out, "t", str(ck))
    assert json.loads((ck / "t" / "ablation.json").read_text())["steps"] == [{"step": "bn"}]


def test_an_ensemble_of_other_members_is_named_in_the_seed_table():
    """The resolution axis's ensemble (the members trained at that size) names them; the report's is "Ensemble"."""
    from training.ablate import ENSEMBLE, step_title

    two = {"title": "Ensemble (BatchNorm + ResNet-50)", "training": {"members": ["bn", "resnet50"]}}
    four = {"title": "Ensemble (BatchNorm + ...)", "training": {"members": list(ENSEMBLE)}}
    assert step_title("ensemble", [{"result": two}] * 3) == "Ensemble (BatchNorm + ResNet-50)"
    assert step_title("ensemble", [{"result": four}] * 3) == "Ensemble"
    assert step_title("bn", [{"result": {"title": "x"}}]) == "+ BatchNorm"


def test_the_standin_flags_an_image_unlike_busi_with_the_breast_tabs_check(tmp_path, monkeypatch):
    """A newcomer's chest X-ray got "normal or benign (81%)" as the headline. The stand-in's source is BUSI, so the
    breast tab's EFSNet check (one gate, not a second) flags what does not look like it; its example passes."""
    from PIL import Image

    from demo import organsmnist as tab
    from demo.common import get_predictor
    from models.hub import checkpoint_dir, clear_cache

    monkeypatch.setenv("MODEL_SOURCE", "local")
    clear_cache()
    get_predictor.cache_clear()  # an earlier test's tiny models stay cached otherwise
    needed = [checkpoint_dir("breast_us_seg"), checkpoint_dir("breastmnist_standin", "bn")]
    if not all((folder / "model.safetensors").exists() for folder in needed):
        pytest.skip("the shipped EFSNet and stand-in weights are not present")
    junk = tmp_path / "flat.png"
    Image.new("RGB", (256, 256), (200, 30, 30)).save(junk)
    _, bars, text = tab.classify(str(junk), "breastmnist_standin/bn")
    assert bars is None  # no top-k bars under the warning: they read as the answer
    assert text.startswith("### ⚠️ Not like the BUSI breast ultrasounds") and "read the answer as meaningless" in text
    assert "\n\nImage **" in text  # the caption is a paragraph of its own, not run on after the answer
    example = tab.EXAMPLES_DIR / "malignant_10.png"
    _, bars, text = tab.classify(str(example), "breastmnist_standin/bn")
    assert "Not like the BUSI" not in text and bars


def test_protocol_changes_are_chosen_by_cross_validation_on_the_training_split(tmp_path):
    """Issue 18: ``training.ablate_cv`` scores a change to the adapted protocol by out-of-fold accuracy over the
    training images; the fold files hold only training images in "test" (the file's test split is never scored), and
    the folds partition the training split."""
    import csv

    from training.ablate_cv import main
    from training.medmnist import load_npz

    path = make_medmnist_file(tmp_path / "s.npz", n_classes=2, counts=(30, 10, 12))
    out = tmp_path / "cv"
    rows = main(["--dataset", str(path), "--step", "base", "--candidates", "ref,tta+smooth", "--seeds", "1",
                 "--folds", "3", "--out", str(out)])  # fmt: skip
    assert [r["candidate"] for r in rows] == ["ref", "tta+smooth"] and all(0 <= r["oof_acc_mean"] <= 1 for r in rows)
    assert [r["candidate"] for r in csv.DictReader((out / "base" / "cv_screen.csv").open())] == ["ref", "tta+smooth"]
    data = load_npz(path)
    train = {img.tobytes() for img in data["train"][0]}
    held = [load_npz(f)["test"][0] for f in sorted((out / "base" / "folds").glob("fold*.npz"))]
    assert sum(len(h) for h in held) == 30 and {img.tobytes() for h in held for img in h} == train
    t = json.loads((out / "base" / "tta+smooth" / "seed1" / "fold0" / "metrics.json").read_text())["training"]
    assert t["tta"] == "hflip" and t["label_smoothing"] == 0.1 and t["class_weighting"] == "inverse_frequency"


def test_mirror_tta_is_the_mean_of_the_image_and_its_mirror():
    from training.ablate import predict

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    x = torch.randn(3, 1, 4, 4)
    with torch.no_grad():
        assert torch.allclose(predict(model, x, tta="hflip"), (model(x) + model(x.flip(-1))) / 2, atol=1e-6)


def test_the_seed_note_names_the_changes_screened_adopted_or_not(tmp_path):
    from leaderboard.ablation import protocol_screen_note

    assert protocol_screen_note("breastmnist_standin", tmp_path) == ""  # no screen ran: nothing said
    (tmp_path / "breastmnist_standin").mkdir()
    (tmp_path / "breastmnist_standin" / "protocol_cv_screen.csv").write_text(
        "candidate,change,step,resolution,seeds,folds,oof_acc_mean,oof_acc_std,oof_auc_mean,epochs_mean,adopted\n"
        "ref,the adapted protocol as it is,bn,28,2,5,0.8434,0.001,0.88,26,kept (the reference)\n"
        "smooth,+ label smoothing 0.1,bn,28,2,5,0.8498,0.026,0.87,27,no\n"
    )
    note = protocol_screen_note("breastmnist_standin", tmp_path)
    assert "0.843 as it was at 28 px" in note and "label smoothing 0.1: 0.850" in note and "step + BatchNorm" in note
    assert "Adopted" not in note
    with (tmp_path / "breastmnist_standin" / "protocol_cv_screen.csv").open("a") as f:  # a change adopted at two sizes
        f.write(
            "pbn,+ precise BatchNorm,bn,28,2,5,0.869,0.006,0.89,26,yes\n"
            "ref,the adapted protocol as it was,bn,64,2,5,0.6026,0.23,0.82,21,kept (the reference)\n"
            "pbn,+ precise BatchNorm,bn,64,2,5,0.8599,0.006,0.89,21,yes\n"
            "pbn+tta,on top of precise BatchNorm: + mirror TTA,bn,28,2,5,0.8727,0.001,0.9,26,no\n"
        )
    note = protocol_screen_note("breastmnist_standin", tmp_path)
    assert "**Adopted: precise BatchNorm**, 0.869 at 28 px (0.843), 0.860 at 64 px (0.603)" in note
    assert "precise BatchNorm: " not in note.split("Not adopted")[1]  # adopted, so not among the rejected
    assert "Then, on top of precise BatchNorm (0.869 at 28 px), not adopted: mirror TTA: 0.873." in note
    with (tmp_path / "breastmnist_standin" / "protocol_cv_screen.csv").open("a") as f:  # adopted, ladder not rerun yet
        f.write('pbn+ema,on top of precise BatchNorm: + weight EMA,bn,28,2,5,0.881,0.01,0.91,32,"pending; +0.012"\n')
    note = protocol_screen_note("breastmnist_standin", tmp_path)
    assert "**Adopted for the next rerun** (+0.012): weight EMA, 0.881 at 28 px; the figures here are of the " in note
    assert "weight EMA: 0.881" not in note  # not among the rejected
    path = tmp_path / "breastmnist_standin" / "protocol_cv_screen.csv"
    path.write_text(path.read_text().replace('"pending; +0.012"', '"yes (+0.012)"'))  # its ladder rerun, exported
    note = protocol_screen_note("breastmnist_standin", tmp_path)
    assert note.index("not adopted: mirror TTA: 0.873.") < note.index(
        "**Then adopted, on top of precise BatchNorm: weight EMA**, 0.881 at 28 px (0.869)."
    )
    assert "rerun" not in note and "weight EMA: 0.881" not in note


def test_precise_bn_recomputes_the_statistics_from_the_training_images():
    """Issue 18: the adapted protocol's precise BatchNorm sets the running mean / variance to the plain averages over
    the training images (not the momentum averages of the last batches); a model without BatchNorm is left alone."""
    from types import SimpleNamespace

    from models.registry import ABLATION_PROTOCOLS
    from training.ablate import recalibrate_bn
    from training.medmnist import MedMNISTDataset

    assert ABLATION_PROTOCOLS["adapted"][3]["precise_bn"] and not ABLATION_PROTOCOLS["adapted_v1"][3].get("precise_bn")
    torch.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(2))  # fmt: skip
    model(torch.zeros(1, 1, 28, 28))
    bn = model[1]
    bn.running_mean.fill_(5.0)  # stale statistics
    bn.running_var.fill_(9.0)
    cfg = SimpleNamespace(task="breastmnist_standin", batch_size=20)  # equal batches: their mean is the mean
    assert recalibrate_bn(model, images, cfg) and not model.training and bn.momentum == 0.1
    x = MedMNISTDataset(images, np.zeros(40, dtype=np.int64), task="breastmnist_standin").images
    with torch.no_grad():
        features = model[0](x)
    assert torch.allclose(bn.running_mean, features.mean((0, 2, 3)), atol=1e-4)
    assert not recalibrate_bn(torch.nn.Linear(3, 2), images, cfg)


def test_a_rerun_keeps_the_shipped_adapted_run_named_as_such(tmp_path):
    """A rerun of the study copies the seed run's metrics over the shipped adapted run's again (its weights moved
    already); the shipped folder keeps its own variant name and title, not the ladder step's ("+ BatchNorm" twice in
    the leaderboard, seen by a newcomer)."""
    from training.ablate import publish_shown

    seed_dir = tmp_path / "seeds" / "adapted-28px" / "seed1"
    (seed_dir / "bn").mkdir(parents=True)
    for _ in range(2):  # the first publish, then a rerun
        (seed_dir / "bn" / "metrics.json").write_text(json.dumps({"variant": "bn", "title": "+ BatchNorm"}))
        for f in ("steps.csv", "history.csv"):
            (seed_dir / "bn" / f).write_text("epoch\n1\n")
        publish_shown(seed_dir, tmp_path, "breastmnist_standin", ["bn"], rename={"bn": "bn-adapted"})
        saved = json.loads((tmp_path / "bn-adapted" / "metrics.json").read_text())
        assert saved["variant"] == "bn-adapted" and saved["title"] == "+ BatchNorm, adapted to small data, seed 1"


def test_the_resolution_plot_draws_an_untouched_step_once_and_the_note_names_missing_steps():
    """Seen by a newcomer at 1280x720: Base CNN with and without precise BN (no BatchNorm in it, identical numbers)
    were two lines on top of each other, and the adapted protocol's missing ResNet-50 / ensemble bars at 64 px were
    unexplained."""
    import pandas as pd

    from demo.organsmnist import listed, partial_protocols
    from leaderboard.ablation import resolution_figure

    rows = [(p, r, s, acc) for p in ("adapted_v2", "adapted_v1") for r in (28, 64) for s, acc in
            (("base", 0.75 + r / 1000), ("bn", 0.85 if p == "adapted_v2" else 0.6))]  # fmt: skip
    rows += [("adapted_v1", r, "resnet50", 0.78) for r in (28, 64)]
    table = pd.DataFrame(rows, columns=["protocol", "resolution", "step", "test_acc_mean"]).assign(test_acc_std=0.01)
    traces = resolution_figure("breastmnist_standin", table).data
    names = [t.name for t in traces if t.name and "MedMNIST" not in t.name]
    assert names == ["Base CNN, adapted, precise BN only", "+ BatchNorm, adapted, precise BN only",
                     "+ BatchNorm, adapted, without precise BN", "ResNet-50, adapted, without precise BN"]  # fmt: skip
    note = partial_protocols(table[table["resolution"] == 64])
    assert note.startswith(". Adapted, precise BN only has only Base CNN and + BatchNorm at this size")
    # the latest protocol ran at 28 px only: at 64 px the note says so rather than leave its bars silently missing
    table = pd.concat([table, pd.DataFrame([("adapted", 28, "bn", 0.86, 0.01)], columns=table.columns)])
    assert ". Adapted to small data ran at 28 px only" in partial_protocols(table[table["resolution"] == 64], table)
    assert [listed(x) for x in ([], ["a"], ["a", "b"], ["a", "b", "c"])] == ["", "a", "a and b", "a, b and c"]
    assert "ran at" not in partial_protocols(table[table["resolution"] == 28], table)


def test_the_protocols_chain_and_the_bars_show_a_change_beside_what_it_replaced():
    """The adopted round-4 protocol is exactly the screened candidate (cv-adapted_v2-tta+smooth+ema+batch32); the
    bars at a size show each protocol beside the one it replaced, not the generation before (four bars a step)."""
    import pandas as pd

    from leaderboard.ablation import seed_bars_figure, twice_superseded
    from models.registry import ABLATION_PROTOCOLS, protocol_successors
    from training.ablate_cv import candidate_protocol

    key = candidate_protocol("tta+smooth+ema+batch32", "adapted_v2")
    try:
        assert ABLATION_PROTOCOLS[key][1:] == ABLATION_PROTOCOLS["adapted"][1:]
    finally:
        del ABLATION_PROTOCOLS[key]
    assert protocol_successors("adapted_v1") == ["adapted_v2", "adapted"]
    assert twice_superseded({"report", "adapted_v1", "adapted_v2", "adapted"}) == {"adapted_v1"}
    assert twice_superseded({"report", "adapted_v1", "adapted_v2"}) == set()
    rows = [(p, 28, "bn", 0.8, 0.01, 0.78, 0.82, 0, 5) for p in ("report", "adapted_v1", "adapted_v2", "adapted")]
    columns = ["protocol", "resolution", "step", "test_acc_mean", "test_acc_std", "test_acc_ci95_low",
               "test_acc_ci95_high", "majority_seeds", "seeds"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    names = [t.name for t in seed_bars_figure("breastmnist_standin", table).data]
    assert names == [f"{t} (5 seeds, measured here)" for t in
                     ("As in the report", "Adapted, precise BN only", "Adapted to small data")]  # fmt: skip


def test_a_protocol_with_mirror_tta_ships_it_and_the_predictor_averages_the_mirror(tmp_path):
    """The shipped adapted run (bn-adapted) was scored with the mirror image averaged in; its folder carries
    ``tta.json`` and the Predict tab's predictor averages the two views' logits, as ``training.ablate.predict``."""
    from PIL import Image

    from models.predict import ClassificationPredictor
    from models.registry import build_model, get_task
    from training.ablate import predict

    spec = get_task("breastmnist_standin")
    torch.manual_seed(0)
    model = build_model("breastmnist_standin", "bn").eval()
    plain, mirrored = ClassificationPredictor(model, spec), ClassificationPredictor(model, spec, views=("id", "h"))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8))
    x = plain.preset.normalize(plain.preset.thumbnail(image))[None]
    expected = predict(model, x, tta="hflip").softmax(1)[0]
    got = torch.tensor(list(mirrored(image).probs.values()))
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(torch.tensor(list(plain(image).probs.values())), expected, atol=1e-5)
    with pytest.raises(ValueError, match="TTA views"):
        ClassificationPredictor(model, spec, views=("h",))
