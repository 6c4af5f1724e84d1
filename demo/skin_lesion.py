"""Skin-lesion tab (SYSTEMS.md §4): ISIC 2017 Part 3, nevus / melanoma / seborrheic keratosis.

*Classify*: upload or pick a real validation image; top-3 probabilities, a Grad-CAM heat map for the chosen class
(Captum ``LayerGradCam`` on the model's last convolutional stage), the model switch, and a refusal when the image is
not dermoscopy-like (``models.ood``: colour and noise checks, the Mahalanobis distance in ImageNet features).
*Validation results*: ROC curves, confusion matrices, calibration, the option sweep.
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr
import numpy as np

from demo.common import (
    bind_model_run,
    bind_sweep,
    example_truth,
    footnotes,
    get_predictor,
    gpu,
    image_upload,
    medical_import,
    read_upload,
    result_caption,
    slide_export,
    sweep_placeholder,
    tab_intro,
    top_class_check,
    user_errors,
)
from leaderboard import skin
from leaderboard.plots import LEGEND_BELOW
from models.hub import checkpoint_dir, model_source
from models.ood import FEATURES_FAR
from models.registry import get_task

TASK = "skin_lesion"
EXAMPLES_DIR = Path(__file__).with_name("examples") / TASK
CAM_CHOICES = ("predicted class", "nevus", "melanoma", "seborrheic keratosis")
OOD_TEXT = (
    "*Out-of-distribution gate:* an image is refused when it is nearly uniform, is not a colour photograph (X-rays, "
    "ultrasound, documents), looks like pixel noise, or a general-purpose ImageNet network (EfficientNet-Lite0, not "
    "fine-tuned) sees it far from the training images (Mahalanobis distance above the 99th percentile of held-out "
    "training images'): that catches photographs of other things. Measured with `python -m training.ood_check` "
    "(README): 330 of 330 non-skin images and 3 of the 150 ISIC validation images refused. It tells whether the "
    "image looks like the training data, not whether the answer is right."
)
UNCERTAIN_MARGIN = 0.2  # top-1 minus top-2 (calibrated) probability below this: "uncertain between ..."


def title_of(variant: str) -> str:
    """A model's name as users see it: the shipped run's (``RunResult.display_title``: a distilled CustomNet names
    its teacher), else the registry's. Reads that one model's metrics.json (not every model's: it runs per request)."""
    result = skin.load_result(variant)
    return result.display_title if result is not None else get_task(TASK).variants[variant].title


def model_choices() -> list[tuple[str, str]]:
    """``(label, variant)`` of the runnable models; the labels are short enough for one row at 1280x720 (the result's
    caption names the model in full)."""
    spec = get_task(TASK)
    results = skin.available()
    return [
        (spec.variants[name].title.replace(" (ImageNet fine-tune)", ""), name)  # "CustomNet (distilled)" wraps
        for name in spec.variants
        if model_source() != "local"
        or (name in results and (checkpoint_dir(TASK, name) / "model.safetensors").exists())
    ]


def summary() -> str:
    spec = get_task(TASK)
    results = skin.available()
    if not results:
        return (
            f"### {spec.title}\n{spec.system}.\n\n**No trained skin-lesion model is present**, so this tab cannot "
            f"classify. Train one with `{spec.train_hint}`."
        )
    parts = [
        f"{r.display_title}: ISIC score **{r.metrics['isic_score']:.3f}**"
        + (
            f" (5-fold CV, out-of-fold: **{c['isic_score_mean']:.3f} ± {c.get('isic_score_std') or 0:.3f}**)"
            if (c := r.cv)
            else " (this split chose its epoch: optimistic)"
            if r.training.get("select") not in (None, "last")
            else ""
        )
        + (
            f" (as served, with {len(t['views'])} test-time views: **{t['val_isic_score']:.3f}**; 5-fold CV "
            f"{t['cv_isic_mean']:.3f})"
            if (t := r.extra.get("tta")) and len(t["views"]) > 1
            else ""
        )
        + (
            f" (with age and sex given, age/sex prior: **{m['val_isic_score']:.3f}**; 5-fold CV "
            f"{m['cv_isic_mean']:.3f})"
            if (m := r.extra.get("meta_prior"))
            else ""
        )  # fmt: skip
        for v, r in results.items()
        if r.metrics["isic_score"] is not None
    ]
    return (
        f"### {spec.title}\n{spec.system}. Validation (150 images, measured here): {'; '.join(parts)}. "
        "The ISIC 2017 score is the mean of the melanoma-vs-rest and keratosis-vs-rest ROC AUCs; the challenge's "
        "figures are on its 600-image test set (leaderboard). Research and teaching demo, not for clinical use."
    )


@gpu
@user_errors
def classify(image_path, variant: str, cam_for: str, show_anyway: bool = False, age=None, sex=None,
             get_predictor=get_predictor):  # fmt: skip
    """``age`` (years) and ``sex`` are optional; where the model ships an age/sex prior (issue 16) and both are
    given, the probabilities combine it with the image's."""
    from models.meta_prior import parse_meta

    if not variant:
        raise gr.Error(f"No trained skin-lesion model is present. Train one with: {get_task(TASK).train_hint}")
    if variant not in get_task(TASK).variants:
        raise gr.Error("Choose a model from the list.")
    image, notes = read_upload(image_path)
    predictor = get_predictor(TASK, variant)
    meta = parse_meta(age, sex)
    unreadable = str(age).strip() not in ("", "None") and meta.age is None  # said in the caption; the answer stays
    pred = predictor(image, meta)
    labels = list(pred.probs)
    target = pred.predicted if cam_for not in labels else labels.index(cam_for)
    title = title_of(variant)
    reference = example_truth(EXAMPLES_DIR, image_path)  # an example: its ISIC label
    caption = result_caption(image_path, title, reference)
    evidence = nearest_evidence(pred, labels)  # folded: it must not push the verdict and picture off the screen
    if pred.ood_distance is None:
        ood = fold("No out-of-distribution statistics ship with this checkpoint.", evidence)
    elif pred.looks_out_of_distribution:
        # colour and texture passed, only the features are far: a photograph of something else, or dermoscopy unlike
        # the training images (3 of the 150 ISIC validation images), so not "not dermoscopy" (a real ISIC image was)
        unlike = pred.ood_reason.startswith(FEATURES_FAR)
        what = ("this image is unlike the model's training images" if unlike
                else "this does not look like a dermoscopy image")  # fmt: skip
        ood = (f"### ⚠️ Not classified: {what}\nReason: {pred.ood_reason}. "
               + ("It may be dermoscopy of a kind the training set lacks, or a photograph of something else. "
                  if unlike else "")
               + "Tick *Show the raw output anyway* to see what the model would say."
               + fold("Nearest training images", evidence))  # fmt: skip
        if not show_anyway:
            return None, None, ood, f"{caption}\n\nNo diagnosis is shown for an image outside the model's domain."
        ood = ("⚠️ **Raw output, shown on request**: "
               + ("unlike the training images, so do not trust this answer." if unlike
                  else "not a dermoscopy image, so this answer means nothing.")
               + fold("Why it was refused" + (", and the nearest training images" if evidence else ""),
                      f"{pred.ood_reason}.\n\n{evidence}"))  # fmt: skip
    else:
        ood = fold(f"Looks like the training images (feature distance {pred.ood_distance:.1f} ≤ "
                   f"{pred.ood_threshold:.1f}; colour and texture checks passed).", evidence)  # fmt: skip
    ranked = sorted(pred.probs.items(), key=lambda kv: kv[1], reverse=True)
    if pred.margin < UNCERTAIN_MARGIN:
        verdict = (f"### Uncertain: {ranked[0][0]} {ranked[0][1]:.0%} vs {ranked[1][0]} {ranked[1][1]:.0%}\nThe two "
                   "most likely classes are too close to call.")  # fmt: skip
    else:
        verdict = f"### {ranked[0][0]} ({ranked[0][1]:.0%})"
    if pred.meta is not None:  # in the headline: the chart's numbers are no longer the image's alone
        first, _, rest = verdict.partition("\n")
        verdict = f"{first} · with age {pred.meta.age:g}, {pred.meta.sex}" + (f"\n{rest}" if rest else "")
    if pred.looks_out_of_distribution:  # shown on request only: the headline must not read as a diagnosis
        verdict = verdict.replace("### ", "### Raw output, not a diagnosis: ", 1)
    # as the breast tab does: a newcomer's melanoma example ranked melanoma last, and nothing said so
    caption += top_class_check(reference, pred.probs)
    caption += meta_caption(pred, meta, predictor)  # after the reference's check, which it must not split
    if unreadable:  # typed per keystroke, so no error that wipes the result: the caption says why age is not used
        caption += f' · ⚠️ age "{str(age).strip()[:12]}" is not a number of years from 0 to 120, so it is not used'
    cam = predictor.grad_cam(pred, target)
    calibrated = f"temperature-calibrated (T = {pred.temperature:.2f})" if pred.temperature != 1 else "uncalibrated"
    views = len(getattr(predictor, "views", ("id",)))
    tta = f", the mean over {views} test-time views (the image and its flips)" if views > 1 else ""
    text = (
        f"{verdict}\n\n{caption}\n\n<details><summary>How these numbers were made</summary>\n\nProbabilities "
        f"{calibrated}{tta}. Grad-CAM for **{labels[target]}** (red = evidence for it; it covers the centre square "
        f"the model sees, not the margins). CPU: {pred.latency_ms:.0f} ms in all, forward {pred.model_ms:.0f} ms; "
        "Grad-CAM adds one backward pass."
        + (META_TEXT if pred.meta is not None else "")
        + footnotes(notes, predictor)
        + "\n</details>"
    )
    return pred.probs, cam, ood, text


META_TEXT = (
    " Age/sex prior: p(class | age, sex) is a logistic regression fitted on the model's own training images (ISIC "
    "2017 metadata), combined with the image's by the product of the two posteriors over the class prior: "
    "p(class | image, age, sex) ∝ p(class | image) · p(class | age, sex) / p(class). Grad-CAM explains the image "
    "model alone."
)


def meta_caption(pred, meta, predictor) -> str:
    """What the probabilities rest on: the image alone, or the image and the age/sex prior (named with its values)."""
    if pred.meta is not None:
        alone = max(pred.image_probs, key=pred.image_probs.get)
        return (f" · **image + age {pred.meta.age:g}, {pred.meta.sex}** (age/sex prior; the image alone says "
                f"{alone} {pred.image_probs[alone]:.0%})")  # fmt: skip
    if not predictor_meta(predictor):
        given = meta.age is not None or meta.sex is not None
        return " · image only" + (" (this model has no age/sex prior; the age and sex given are not used)" if given
                                  else "")  # fmt: skip
    if meta.age is not None or meta.sex is not None:
        return " · image only (**give both age and sex** to use the age/sex prior)"
    return " · image only"  # short: a longer line pushed the raw output's Grad-CAM below 720 px (the fields hint)


def predictor_meta(predictor) -> bool:
    return getattr(predictor, "meta_prior", None) is not None


# --- robustness lab (issue 19.2): the same perturbations plus a colour cast; two models side by side ---
SWEEP_SEVERITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _check_models(*variants) -> None:
    for key, variant in zip("AB", variants):
        if variant not in get_task(TASK).variants:
            raise gr.Error(f"Choose model {key} from the list.")


def _check_kind(kind, severity) -> float:
    from models.robustness import PERTURBATIONS

    if kind not in PERTURBATIONS:
        raise gr.Error(f"Choose a perturbation from the list ({', '.join(PERTURBATIONS)}).")
    try:
        severity = float(severity)
    except (TypeError, ValueError):
        severity = -1.0
    if not 0 <= severity <= 1:
        raise gr.Error("The severity is a number between 0 and 1.")
    return severity


@gpu
@user_errors
def robustness(image_path, kind: str, severity, model_a: str, model_b: str, get_predictor=get_predictor):
    """Both models' probabilities on the image perturbed by ``kind`` (severity 0 = the image itself, exactly)."""
    from models.robustness import perturb

    severity = _check_kind(kind, severity)
    _check_models(model_a, model_b)
    image, _ = read_upload(image_path)
    shown = perturb(image.convert("RGB"), kind, severity)
    lines = []
    reference = example_truth(EXAMPLES_DIR, image_path)  # an example: its ISIC label, to say who is right
    preds = {}
    for key, variant in (("A", model_a), ("B", model_b)):
        pred = preds[variant] = get_predictor(TASK, variant)(shown)
        top = max(pred.probs, key=pred.probs.get)
        right = (" ✓" if top == reference else " ✗") if reference else ""
        lines.append(f"**{key}, {title_of(variant)}**: {top} {pred.probs[top]:.0%}{right}")
    # one gate judges the image for both (each model's own made A's answer caveated and B's not, for one X-ray):
    # the default model's, the best measured gate, where it is present; else model A's
    judge = get_task(TASK).default_variant
    if judge not in preds and judge in [v for _, v in model_choices()]:
        preds[judge] = get_predictor(TASK, judge)(shown)
    if judge not in preds:  # the default model is not present here: model A's gate
        judge = model_a
    gate = preds[judge]
    name = Path(str(image_path)).name + (f" · reference label **{reference}**" if reference else "")
    head = f"### {kind.replace('_', ' ')} at severity {severity:.1f}\n{name}\n\n"
    if gate.looks_out_of_distribution:
        title = title_of(judge)
        head += (f"⚠️ **The gate would refuse this image, for both models.** It uses {title}'s checks. Reason: "
                 f"{gate.ood_reason}. Read both answers below as meaningless.\n\n")  # fmt: skip
    return np.asarray(shown), head + "\n\n".join(lines)


def sweep(kind: str, model_a: str, model_b: str, n_images=20, progress=gr.Progress(), get_predictor=get_predictor):
    """Accuracy of both models against severity over held-out labelled images (ISIC 2017 validation)."""
    import plotly.graph_objects as go

    from models.robustness import PERTURBATIONS, perturb
    from models.visualize import MODEL_A_COLOR, MODEL_B_COLOR

    _check_kind(kind, 0)
    _check_models(model_a, model_b)
    items = quiz_items()
    step = max(1, len(items) // max(1, int(n_images or 20)))
    items = items[::step][: max(1, int(n_images or 20))]
    labels = get_task(TASK).labels
    right = {m: [0] * len(SWEEP_SEVERITIES) for m in (model_a, model_b)}
    for i, (path, label) in enumerate(items):
        image, _ = read_upload(path)
        image = image.convert("RGB")
        for j, severity in enumerate(SWEEP_SEVERITIES):
            progress((i * len(SWEEP_SEVERITIES) + j) / (len(items) * len(SWEEP_SEVERITIES)),
                     desc=f"image {i + 1}/{len(items)}, severity {severity}")  # fmt: skip
            shown = perturb(image, kind, severity)
            for m in right:
                probs = get_predictor(TASK, m)(shown).probs
                right[m][j] += max(probs, key=probs.get) == labels[label]
    fig = go.Figure()
    for m, color in ((model_a, MODEL_A_COLOR), (model_b, MODEL_B_COLOR)):
        fig.add_scatter(
            x=list(SWEEP_SEVERITIES),
            y=[r / len(items) for r in right[m]],
            mode="lines+markers",
            name=title_of(m),
            line=dict(color="rgb" + str(tuple(color)), width=3),
        )
    fig.update_layout(title=f"{PERTURBATIONS[kind][0]}: accuracy over {len(items)} ISIC 2017 validation images",
                      xaxis_title=f"severity (1 = {PERTURBATIONS[kind][1]})",
                      yaxis=dict(title="accuracy", range=[0, 1]), legend=LEGEND_BELOW,
                      height=420, margin=dict(l=40, r=10, t=50, b=40))  # fmt: skip
    acc = {m: [r / len(items) for r in right[m]] for m in right}
    text = (f"**{PERTURBATIONS[kind][0]}**, severity 0 to 1, on {len(items)} held-out images: accuracy "
            f"{acc[model_a][0]:.2f} → {acc[model_a][-1]:.2f} for A, {acc[model_b][0]:.2f} → {acc[model_b][-1]:.2f} "
            "for B.")  # fmt: skip
    return fig, text


def results_headline(variant: str, table) -> str:
    """The chosen model's ISIC score in the first screen (the table that holds it starts 1,400 px down), with the
    split each number comes from and what that split chose."""

    def num(value) -> str | None:
        return None if value is None or value != value else f"{float(value):.3f}"  # None and NaN: not measured

    title = title_of(variant) if variant in get_task(TASK).variants else variant
    rows = table[table["model"] == title]
    if rows.empty:
        return ""
    r = rows.iloc[0]
    served, cv, val = (
        str(r["as served"]),
        num(r["CV ISIC score (out-of-fold)"]),
        num(r["ISIC score (validation, one view)"]),
    )
    more = ""
    tta = served.startswith("image + ")  # "image + flip: CV 0.845, validation 0.880[; with age and sex: ...]"
    if tta:
        views, _, rest = served.partition(": ")
        shown, _, meta = rest.partition("; with age and sex: ")
        score = f"**{shown}**"  # what Classify answers for an image alone: one short line, the details below it
        if meta:  # issue 16's age/sex prior, used when the user gives both
            more += f"With age and sex given (the age/sex prior): **{meta}**. "
        what = "its mirror image" if views == "image + flip" else "its " + views.removeprefix("image + ")
        more += f"Classify averages the image and {what}; the image alone, one view: CV {cv}, validation {val}.\n\n"
    elif cv:
        score = f"**CV {cv}**" + (f", validation {val}" if val else "")
    elif val:
        score = f"**validation {val}**"
    else:
        return f"### {title}: no ISIC score measured here"
    options = skin.options_table()
    recipe = ""
    if not cv and len(options) and "cv_isic_mean" in options:  # a model with no CV of its own: the recipe's
        same = options[
            (options["model"] == variant)
            & options["cv_isic_mean"].notna()
            & (options["cv_folds"] == 5)
            & ~options["option"].str.contains("age_sex")
        ]  # fmt: skip  (the image alone, as this model)
        if len(same):  # the same network under the 5-fold CV recipe: other runs
            best = same.loc[same["cv_isic_mean"].idxmax()]
            recipe = (
                " The same network under the fixed CV recipe (other runs, not this model): CV "
                f"{best['cv_isic_mean']:.3f} ± {best['cv_isic_std']:.3f} (*{best['option'].replace('_', ' ')}*, "
                "options below)."
            )
    chose = str(r["validation chose"])
    caveat = (
        "the validation split chose nothing"
        if chose == "nothing"
        else f"the validation split also chose its {chose}, so its validation score is optimistic"
    )
    return (
        f"### {title}: ISIC score {score}\n{more}ISIC score = the mean of the melanoma and seborrheic-keratosis AUCs. "
        f"CV: out-of-fold on the 2,000 training images; validation: the 150 ISIC 2017 validation images; "
        f"{caveat}.{recipe}"
    )


def results_view(variant: str):
    results = skin.available()
    table = skin.results_table(results)
    return (
        results_headline(variant, table),
        skin.roc_figure(results),
        skin.confusion_figure(results.get(variant), variant),
        skin.reliability_figure(results),
        table.round(4),
        skin.options_view(),
    )


def _examples() -> list[list[str]]:
    return [[str(p)] for p in sorted(EXAMPLES_DIR.glob("*.jpg"))]


ISIC_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "isic2017"


@functools.cache
def training_images() -> dict[str, Path]:
    """ISIC 2017 training images by id where the dataset is on disk (the evidence's pictures); empty elsewhere, e.g.
    on a Space, where the evidence lists ids and labels only (no training pixels ship with the app). A directory
    listing, once: the labels come with the neighbours file."""
    folder = ISIC_DATA / "ISIC-2017_Training_Data"
    return {p.stem: p for p in folder.glob("ISIC_*.jpg")} if folder.is_dir() else {}


def thumbnail_html(path: Path, caption: str, size: int = 96) -> str:
    """A small inline JPEG (data URI) with its caption; the JPEG is decoded at reduced size (``draft``)."""
    import base64
    import io

    from PIL import Image

    with Image.open(path) as im:
        im.draft("RGB", (size * 2, size * 2))
        im = im.convert("RGB")
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
    data = base64.b64encode(buf.getvalue()).decode()
    return (f'<figure style="display:inline-block;margin:0 14px 4px 0;text-align:center">'
            f'<img src="data:image/jpeg;base64,{data}" alt="{caption}" width="{im.width}" height="{im.height}">'
            f'<figcaption style="font-size:0.8em">{caption}</figcaption></figure>')  # fmt: skip


def nearest_evidence(pred, labels: list[str]) -> str:
    """The gate's evidence (issue 16): the nearest training images in the model's feature space, with their pictures
    where the dataset is on disk ("" when the checkpoint ships none)."""
    if not pred.nearest:
        return ""
    paths = training_images()
    items = []
    for image_id, label, _ in pred.nearest:
        caption = f"{image_id}: {labels[label]}"
        if image_id in paths:
            try:
                items.append(thumbnail_html(paths[image_id], caption))
                continue
            except OSError:
                pass
        items.append(f"<div>{caption}</div>")
    where = "" if paths else " (ids only: the training pictures are not on this machine)"
    return (f"**Nearest training images**{where}: the four the model's features put closest to this image (cosine of "
            "the penultimate features), each with its ISIC label: what the model takes it to resemble. Not a verdict: "
            "the gate above decides by its own checks (colour, texture, distance to the whole training set).\n\n"
            + "".join(items))  # fmt: skip


def fold(summary: str, body: str) -> str:
    """``summary`` as the one line of a folded ``<details>`` holding ``body`` (hover: what opens); the line alone
    where there is none."""
    tip = ' title="Click: the nearest training images"' if "Nearest training images" in body else ""
    return f"<details><summary{tip}>{summary}</summary>\n\n{body}\n</details>" if body else summary


def quiz_items() -> list[tuple[str, int]]:
    """Validation images with their labels (the model never trained on them): the 150 of ISIC 2017 where the data
    are present, else the six shipped ones (their file names carry the label)."""
    labels = get_task(TASK).labels
    if (ISIC_DATA / "ISIC-2017_Validation_Data").is_dir():
        from training.datasets import find_isic

        return [(str(s.image), s.label) for s in find_isic(ISIC_DATA, "val")]
    rows = []
    for (path,) in _examples():
        name = Path(path).name.replace("_", " ")
        rows += [(path, i) for i, label in enumerate(labels) if name.startswith(label)]
    return rows


def build_tab(get_predictor=get_predictor) -> None:
    spec = get_task(TASK)
    tab_intro(f"{spec.system}: models, data, cross-validation and validation numbers", summary())
    with gr.Tabs():
        with gr.Tab("Classify"):
            choices = model_choices()
            with gr.Row():
                with gr.Column():
                    image_in = image_upload(label="Dermoscopy image", sources=["upload", "clipboard"], height=200,
                                            elem_id="skin-input")  # fmt: skip
                    names = [v for _, v in choices]
                    default = spec.default_variant if spec.default_variant in names else (names or [None])[0]
                    model = gr.Radio(choices, value=default, label="Model", elem_id="skin-model")
                    with gr.Row(equal_height=True):  # age and sex beside the button: the examples stay in view
                        run = gr.Button("Classify", variant="primary", elem_id="skin-run", scale=2)
                        # a Textbox: an empty gr.Number sends 0, which is an age; labels hidden (read aloud)
                        age = gr.Textbox("", label="Patient age in years (optional)", placeholder="optional",
                                         show_label=False, container=False, max_lines=1, scale=1, min_width=110,
                                         elem_id="skin-age")  # fmt: skip
                        sex = gr.Dropdown([("Sex: unknown", ""), ("Sex: female", "female"), ("Sex: male", "male")],
                                          value="", label="Patient sex (optional)", show_label=False, container=False,
                                          scale=1, min_width=110, elem_id="skin-sex")  # fmt: skip
                    example_column = gr.Column()
                    cam_for = gr.Radio(list(CAM_CHOICES), value=CAM_CHOICES[0], label="Grad-CAM for",
                                       elem_id="skin-cam-for")  # fmt: skip
                    medical_import(image_in, "skin-medical")
                with gr.Column():
                    message = gr.Markdown(elem_id="skin-message", elem_classes="tab-error")
                    with gr.Row():  # shown where it applies: beside the gate's refusal (and its raw output)
                        with gr.Column(scale=3):
                            ood = gr.Markdown(elem_id="skin-ood", elem_classes="key-result")
                        show_anyway = gr.Checkbox(False, label="Show the raw output anyway", visible=False, scale=1,
                                                  min_width=150, elem_id="skin-show-anyway")  # fmt: skip
                    info = gr.Markdown(elem_id="skin-info", elem_classes="key-result")
                    with gr.Row(equal_height=True):
                        label = gr.Label(num_top_classes=3, label="Probabilities", show_heading=False,
                                         elem_id="skin-label")  # fmt: skip
                        cam = gr.Image(label="Grad-CAM", type="numpy", format="png", interactive=False, height=240,
                                       elem_id="skin-cam")  # fmt: skip
                    slide_export(cam, info, TASK, "skin", message, variant=model)
                    gr.Markdown(OOD_TEXT)

            def _classify(path, variant, target, anyway=False, age_years=None, sex_given=""):
                return classify(path, variant, target, anyway, age_years, sex_given, get_predictor=get_predictor)

            inputs = [image_in, model, cam_for, show_anyway, age, sex]

            def _gate_shown(text):  # the override beside a refusal; no empty result boxes under it (they read as a
                text = (text or "").lstrip("# ")  # failure to load); everything back for the raw output or a new image
                refused = text.startswith("⚠️ Not classified")
                return (
                    gr.update(visible=text.startswith("⚠️")),
                    gr.update(visible=not refused),
                    gr.update(visible=not refused),
                )

            ood.change(_gate_shown, [ood], [show_anyway, label, cam], api_name=False, queue=False)
            with example_column:
                bind_model_run(_classify, inputs, [label, cam, ood, info], run=run, message=message,
                               api_name="classify_skin", upload=image_in, clear=[show_anyway],
                               examples_rows=_examples() if choices else None, examples_inputs=[image_in],
                               examples_label="Real ISIC 2017 validation images",
                               rerun=[model, cam_for, show_anyway, age, sex], permalink=TASK,
                               models=[model])  # fmt: skip
        with gr.Tab("Robustness lab"):
            from models.robustness import PERTURBATIONS

            gr.Markdown(
                "Perturb a dermoscopy image and compare two models (severity 0 = the image itself; each change "
                "re-runs). **Sweep** plots both models' accuracy against severity over held-out images."
            )
            names = [v for _, v in choices]
            default_b = "customnet" if "customnet" in names else (names[-1] if names else None)
            with gr.Row():
                with gr.Column():
                    # 190 px: at 220 the examples under the button started at the fold (y 716 of 720)
                    lab_in = image_upload(label="Dermoscopy image", sources=["upload", "clipboard"], height=190,
                                          elem_id="skinlab-input")  # fmt: skip
                    with gr.Row():
                        kind = gr.Dropdown([(t, k) for k, (t, _) in PERTURBATIONS.items()], value="colour_cast",
                                           label="Perturbation", elem_id="skinlab-kind")  # fmt: skip
                        severity = gr.Slider(0, 1, value=0.5, step=0.1, label="Severity (0 = none)",
                                             elem_id="skinlab-severity")  # fmt: skip
                    lab_run = gr.Button("Perturb and classify", variant="primary", elem_id="skinlab-run")  # in view
                    lab_examples = gr.Column()  # the examples right under the button
                with gr.Column():
                    # the two models at the top of the results column: under the examples they were below the fold
                    # at 1280x720, and a newcomer did not see what was compared
                    with gr.Row():
                        lab_a = gr.Dropdown(choices, value=default, label="Model A", elem_id="skinlab-model-a")
                        lab_b = gr.Dropdown(choices, value=default_b, label="Model B", elem_id="skinlab-model-b")
                    lab_message = gr.Markdown(elem_id="skinlab-message", elem_classes="tab-error")
                    lab_text = gr.Markdown(elem_id="skinlab-stats", elem_classes="key-result")
                    lab_image = gr.Image(label="What the models see", type="numpy", format="png", interactive=False,
                                         height=260, elem_id="skinlab-image")  # fmt: skip
            with gr.Row():
                n_images = gr.Slider(6, 150, value=20, step=1, label="Held-out images in the sweep",
                                     elem_id="skinlab-n")  # fmt: skip
                sweep_button = gr.Button("Sweep the severity (both models)", elem_id="skinlab-sweep")
            sweep_text = gr.Markdown(elem_id="skinlab-sweep-text", elem_classes="key-result")
            sweep_plot = gr.Plot(sweep_placeholder("both models' accuracy against severity"),
                                 label="Accuracy against severity", elem_id="skinlab-sweep-plot")  # fmt: skip

            def _robust(path, k, sev, a, b):
                return robustness(path, k, sev, a, b, get_predictor=get_predictor)

            with lab_examples:
                bind_model_run(_robust, [lab_in, kind, severity, lab_a, lab_b], [lab_image, lab_text], run=lab_run,
                               message=lab_message, api_name="robustness_skin", upload=lab_in,
                               examples_rows=_examples() if choices else None, examples_inputs=[lab_in],
                               examples_label="Real ISIC 2017 validation images",
                               rerun=[kind, severity, lab_a, lab_b])  # fmt: skip
            bind_sweep(
                sweep,
                button=sweep_button,
                inputs=[kind, lab_a, lab_b, n_images],
                plot=sweep_plot,
                text=sweep_text,
                message=lab_message,
                api_name="sweep_skin",
                get_predictor=get_predictor,
            )
        with gr.Tab("Quiz"):
            from demo.quiz import classification_quiz

            def _probs(path):
                image, _ = user_errors(read_upload)(path)
                return get_predictor(TASK)(image).probs

            classification_quiz("skin", "Nevus, melanoma or seborrheic keratosis?", quiz_items, spec.labels, _probs,
                                model=spec.variants[spec.default_variant].title)  # fmt: skip
        with gr.Tab("Validation results"):
            which = gr.Radio([(title_of(k), k) for k in spec.variants if k in skin.available()],
                             value=spec.default_variant,
                             label="Model (its score here and its confusion matrix)")  # fmt: skip
            headline = gr.Markdown(elem_id="skin-results-headline", elem_classes="key-result")
            with gr.Row():
                roc = gr.Plot(label="ROC", elem_id="skin-roc")
                confusion = gr.Plot(label="Confusion matrix", elem_id="skin-confusion")
            reliability = gr.Plot(label="Calibration", elem_id="skin-reliability")
            table = gr.DataFrame(interactive=False, wrap=True, pinned_columns=1, elem_id="skin-results",
                                 column_widths=["200px", "115px", "105px", "280px", "120px", "90px", "80px", "90px",
                                                "90px", "70px", "90px", "50px", "80px", "70px", "70px"])  # fmt: skip
            gr.Markdown(
                "Options tried. **CV ISIC score**: out-of-fold on the 2,000 training images, the estimate behind "
                "the default model (Lite1). **Validation ISIC score**: the 150 validation images, where a run was "
                "scored there; the first runs, and the shipped Lite0, were chosen on the validation split before "
                "the CV protocol (the shipped CustomNet and ResNet18 are distilled from Lite1 and chosen by nothing). "
                "Every column: `checkpoints/skin_lesion/options.csv`."
            )
            options = gr.DataFrame(interactive=False, wrap=True, pinned_columns=2, elem_id="skin-options",
                                   column_widths=["130px", "160px", "150px", "118px", "180px", "50px", "65px", "60px",
                                                  "287px"])  # fmt: skip
            outputs = [headline, roc, confusion, reliability, table, options]
            which.change(results_view, [which], outputs, api_name=False)
            gr.context.Context.root_block.load(results_view, [which], outputs, api_name="skin_results")
