"""Issue 16: the age/sex prior beside the skin-lesion image model (models.meta_prior): Bayes' rule with a
class-weighted CNN, unknown metadata leaving the image's answer alone, safetensors storage, the official metadata CSV,
the predictor, the tab and the evaluator's "as served" block."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.meta_prior import Meta, MetaPrior, parse_meta, read_isic_metadata


def synthetic(n: int = 300, seed: int = 0):
    """Older patients more often class 2 (as seborrheic keratosis is), sex uninformative."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    ages = np.clip(rng.normal(40 + 15 * labels, 8), 5, 95)
    metas = [Meta(float(a), "male" if rng.random() < 0.5 else "female") for a in ages]
    return metas, labels


def test_parse_meta_keeps_only_plausible_values():
    assert parse_meta("55", "Female") == Meta(55.0, "female")
    assert parse_meta("", "unknown") == Meta(None, None)
    assert parse_meta(150, "male") == Meta(None, "male")
    assert parse_meta(None, None).known is False
    assert Meta(30.0, "male").known  # the prior needs both: a missing field's indicator learnt ISIC's sources
    assert not Meta(None, "male").known and not Meta(30.0, None).known


def test_bayes_rule_and_unknown_metadata_keeps_the_image_answer(tmp_path):
    metas, labels = synthetic()
    prior = MetaPrior.fit(metas, labels)
    assert np.allclose(prior.prior, np.bincount(labels, minlength=3) / len(labels))
    p_meta = prior.probs([Meta(25.0, "female"), Meta(85.0, "male")])
    assert p_meta[0, 0] > p_meta[0, 2] and p_meta[1, 2] > p_meta[1, 0]  # age moves the classes as in the data
    p_image = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    rows = [Meta(25.0, "female"), Meta(85.0, "male"), Meta(85.0, None)]
    combined = prior.combine(p_image, rows)
    expected = p_image[:2] * prior.probs(rows[:2]) / prior.prior
    assert np.allclose(combined[:2], expected / expected.sum(1, keepdims=True))
    assert np.allclose(combined[2], p_image[2])  # sex not given: the image model's own answer
    registered = prior.combine(p_image, rows, every_row=True)  # the CV's registered form: indicators for the gaps
    assert np.allclose(registered[:2], combined[:2]) and not np.allclose(registered[2], p_image[2])
    assert np.allclose(combined.sum(1), 1)
    prior.save(tmp_path / "meta_prior.safetensors")
    loaded = MetaPrior.load(tmp_path / "meta_prior.safetensors")
    assert np.allclose(loaded.combine(p_image, rows), combined)


def test_metadata_csv_of_the_official_layout(tmp_path):
    (tmp_path / "ISIC-2017_Training_Data_metadata.csv").write_text(
        "image_id,age_approximate,sex\nISIC_1,55,female\nISIC_2,unknown,unknown\n"
    )
    meta = read_isic_metadata(tmp_path, "train")
    assert meta == {"ISIC_1": Meta(55.0, "female"), "ISIC_2": Meta(None, None)}
    assert read_isic_metadata(tmp_path, "cv5-2-val") == meta  # folds read the training split's file
    assert read_isic_metadata(tmp_path, "val") == {}  # no file: no metadata, not an error


@pytest.fixture
def predictor_with_prior(tmp_path):
    from models.hub import load_model_from
    from models.predict import SkinPredictor
    from models.registry import build_model, get_task

    build_model("skin_lesion", "customnet", input_size=160).eval().save_pretrained(tmp_path)
    metas, labels = synthetic()
    MetaPrior.fit(metas, labels).save(tmp_path / "meta_prior.safetensors")
    model = load_model_from("skin_lesion", "customnet", tmp_path)
    return SkinPredictor.for_model(model, get_task("skin_lesion"))


def test_predictor_combines_the_prior_only_when_something_is_known(predictor_with_prior):
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    alone = predictor_with_prior(image)
    assert alone.meta is None and alone.probs == alone.image_probs
    old = predictor_with_prior(image, Meta(85.0, "male"))
    assert old.meta == Meta(85.0, "male") and np.allclose(list(old.image_probs.values()), list(alone.probs.values()))
    assert old.probs != old.image_probs
    p = np.array(list(old.image_probs.values()))[None]
    assert np.allclose(list(old.probs.values()), predictor_with_prior.meta_prior.combine(p, [old.meta])[0], atol=1e-6)


def test_tab_names_what_the_probabilities_rest_on(predictor_with_prior, tmp_path):
    from PIL import Image

    from demo import skin_lesion as tab

    path = tmp_path / "lesion.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(path)

    def get(task, variant):
        return predictor_with_prior

    *_, text = tab.classify(str(path), "customnet", "", False, 70, "female", get_predictor=get)
    assert "image + age 70, female" in text and "the image alone says" in text
    assert text.splitlines()[0].endswith("· with age 70, female") or "· with age 70, female\n" in text
    *_, text = tab.classify(str(path), "customnet", "", False, None, "", get_predictor=get)
    assert text.count("image only") == 1 and "give both" not in text
    *_, text = tab.classify(str(path), "customnet", "", False, 70, "", get_predictor=get)
    assert "give both age and sex" in text
    *_, text = tab.classify(str(path), "customnet", "", False, "abc", "male", get_predictor=get)
    assert '"abc" is not a number of years' in text and "image only" in text  # the answer stays; no error


def test_evaluator_reports_the_served_answer_with_and_without_metadata(predictor_with_prior, tmp_path):
    from tests.test_skin import make_isic
    from training.evaluate import evaluate_model

    data = make_isic(tmp_path / "isic")
    ids = [p.stem for p in sorted((data / "ISIC-2017_Validation_Data").glob("*.jpg"))]
    rows = "\n".join(f"{i},{30 + 20 * (k % 3)},male" for k, i in enumerate(ids))
    (data / "ISIC-2017_Validation_Data_metadata.csv").write_text(f"image_id,age_approximate,sex\n{rows}\n")
    result = evaluate_model("skin_lesion", predictor_with_prior.model, data, "val")
    served = result["served"]
    assert served["views"] == ["id"] and "isic_score" in served["image"]
    assert served["image_and_metadata"]["n_with_metadata"] == len(ids)
    json.dumps(result)  # the CLI prints it


def test_leaderboard_and_tab_give_the_prior_its_own_cv_and_validation_rows():
    from types import SimpleNamespace

    from leaderboard.results import meta_rows
    from leaderboard.skin import served

    meta = {"cv_folds": 5, "cv_isic_mean": 0.87, "cv_isic_std": 0.02, "val_isic_score": 0.89,
            "val_auc_melanoma": 0.85, "val_auc_sk": 0.93}  # fmt: skip
    tta = {"views": ["id", "h"], "cv_isic_mean": 0.845, "val_isic_score": 0.88}
    result = SimpleNamespace(extra={"tta": tta, "meta_prior": meta}, cv={"split": "cv"})
    rows = meta_rows(result, {"model": "EfficientNet-Lite1 (ours)", "dataset": "ISIC"})
    assert [r["isic_score"] for r in rows] == [0.87, 0.89]
    assert "as served with age and sex" in rows[0]["model"] and rows[0]["model"].endswith(", CV")
    assert "keep the image's answer" in rows[0]["split"]
    assert served(result) == "image + flip: CV 0.845, validation 0.880; with age and sex: CV 0.870, validation 0.890"
    assert meta_rows(SimpleNamespace(extra={}, cv=None), {"model": "x (ours)"}) == []


@pytest.mark.parametrize(
    "line, title",
    [
        ("age and sex only (no image),age_sex_prior_alone,the regression alone,,0.754,0.012,5",
         "Age and sex alone, no image (ours, CV): logistic regression"),  # the reference an image network must beat
        ("customnet,age_sex_prior_as_served_tta_hflip_20ep,with the prior,224,0.759,0.022,5",
         "CustomNet (ours, CV, not shipped): Lite1 recipe 20 ep + flip TTA + age/sex prior"),  # on equal terms
    ],
)  # fmt: skip
def test_cv_rows_with_age_and_sex_reach_the_leaderboard(tmp_path, line, title):
    from leaderboard.results import recipe_cv_rows

    (tmp_path / "skin_lesion").mkdir()
    header = "model,option,args,image_size,cv_isic_mean,cv_isic_std,cv_folds"
    (tmp_path / "skin_lesion" / "options.csv").write_text(f"{header}\n{line}\n")
    (row,) = recipe_cv_rows(tmp_path)
    assert row["model"] == title and row["isic_score"] == float(line.split(",")[-3])
    assert "out-of-fold" in row["split"] and row["params"] == (18 if "no image" in title else None)


def test_a_lite1_recipe_not_shipped_writes_its_prior_rows_by_epochs(tmp_path, monkeypatch):
    """A longer Lite1 recipe (cv5e20) is scored before it ships: its rows carry its epochs, the first recipe's rows and
    the model-free row stay; the image-only row is skin_tta_oof's, not written twice."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    import skin_cv_report
    import skin_meta_prior

    written = []
    monkeypatch.setattr(skin_cv_report, "write_options", lambda path, rows: written.extend(rows))
    block = {"cv_mean": 0.85, "cv_std": 0.02}
    summary = {k: block for k in ("image", "meta_all_rows", "meta_as_served", "meta_alone")}
    skin_meta_prior.write_rows(summary, "cv5e20")
    assert [r["option"] for r in written] == ["age_sex_prior_tta_hflip_20ep", "age_sex_prior_as_served_tta_hflip_20ep"]
    assert all(r["epochs_run"] == 20 for r in written) and "(20 epochs)" in written[0]["args"]
    assert written[0]["run"] == "logs/meta/cv5e20-fold*.npz"
    written.clear()
    skin_meta_prior.write_rows(summary)  # the shipped recipe: the four rows of session 14, unchanged
    first = ["tta_hflip_10ep_rerun", "age_sex_prior_tta_hflip_10ep", "age_sex_prior_as_served_tta_hflip_10ep"]
    assert [r["option"] for r in written] == [*first, "age_sex_prior_alone"]
    shipped = root / "checkpoints/skin_lesion/efficientnet-lite1"
    assert skin_meta_prior.shipped_tag(shipped).startswith("cv5e")
