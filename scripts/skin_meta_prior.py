"""Issue 16: an age/sex prior beside the image model, scored out-of-fold (logs/decisions.txt, session 14).

    python scripts/skin_meta_prior.py --folds 0 [--runs-tag cv5e10] [--data-dir ../shared/data/isic2017]
    python scripts/skin_meta_prior.py --folds 0 1 2 3 4 --write-options --ship   (after the rule's gate)
    python scripts/skin_meta_prior.py --runs-tag cv5e20 --temperature T --folds 0 1 2 3 4 --write-options
        a Lite1 recipe that does not ship (yet): every fold from its runs, T its own out-of-fold temperature
        (printed by ``skin_cv_report.py --tag cv5e20 --no-ship``); --ship only once its fold 0 is the shipped model

Per fold ``k``: the image model's hflip-averaged softmax (temperature of the shipped card) on the fold's held-out
images, an age/sex LogisticRegression fitted on the fold's training part only, combined by the product-of-posteriors
rule of ``models.meta_prior``: ``log p_cnn(c|x) + log p(c|meta) - log p(c)``. Fold 0 uses the shipped model where it
is the tag's fold 0 (the card's ``tag``); other folds their run in ``runs/skin_lesion/efficientnet-lite1/*-<tag>-<k>``.
Prints the ISIC score per fold and pooled, with and without the prior; per-fold probabilities go to logs/meta/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def isic_score(p: np.ndarray, y: np.ndarray) -> float:
    from models.cls_metrics import isic_metrics  # the project's one ISIC score

    return isic_metrics(y, p)["isic_score"]


def main() -> None:
    import torch
    from skin_tta_oof import view_probs

    from models.hub import load_model_from
    from models.meta_prior import MetaPrior, read_isic_metadata
    from training.datasets import find_isic

    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, nargs="+", default=[0])
    ap.add_argument("--runs-tag", default="cv5e10")
    ap.add_argument("--model", default=LITE1, help="customnet: its CV recipe's fold runs (--runs-tag cv5e20)")
    ap.add_argument("--data-dir", default="../shared/data/isic2017")
    ap.add_argument("--write-options", action="store_true")
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--temperature", type=float, help="Lite1 folds not shipped: their own out-of-fold temperature")
    args = ap.parse_args()
    torch.set_num_threads(2)
    shipped = ROOT / "checkpoints/skin_lesion/efficientnet-lite1"
    lite1 = args.model == LITE1  # the shipped model is Lite1's fold 0, with its temperature; others: fold runs, T=1
    is_shipped = lite1 and shipped_tag(shipped) == f"{args.runs_tag}-0"
    if lite1 and not is_shipped and (args.temperature is None or args.ship):
        raise SystemExit(f"{args.runs_tag} is not the shipped model's recipe: give --temperature (its out-of-fold "
                         "fit), and --ship only after skin_cv_report.py has shipped its fold 0")  # fmt: skip
    temperature = args.temperature or 1.0
    if is_shipped:
        temperature = json.loads((shipped / "calibration.json").read_text())["temperature"]
    meta = read_isic_metadata(args.data_dir, "train")
    rows = []
    for k in args.folds:
        first = ("cv5e10",) if lite1 else ("cv5e10", "cv5e20")  # the first runs' cache names kept
        tagged = "" if args.runs_tag in first else f"{args.runs_tag}-"
        out = ROOT / ("logs/meta/" + ("" if lite1 else f"{args.model}-") + tagged + f"fold{k}.npz")
        if out.exists():
            d = np.load(out)
            p_img, y, ids = d["p_img"], d["y"], list(d["ids"])
        else:
            if k == 0 and is_shipped:
                folder = shipped
            else:
                folder = max((ROOT / "runs/skin_lesion" / args.model).glob(f"*-{args.runs_tag}-{k}")) / "model"
            model = load_model_from("skin_lesion", args.model, folder).eval()
            probs, y = view_probs(model, args.data_dir, f"cv5-{k}-val", temperature)
            p_img = (probs["id"] + probs["h"]) / 2
            ids = [s.image_id for s in find_isic(args.data_dir, f"cv5-{k}-val")]
            np.savez(out, p_img=p_img, y=y, ids=np.array(ids))
        train = find_isic(args.data_dir, f"cv5-{k}-train")
        prior = MetaPrior.fit([meta[s.image_id] for s in train], [s.label for s in train])
        p_meta = prior.combine(p_img, [meta[i] for i in ids])
        p_all = prior.combine(p_img, [meta[i] for i in ids], every_row=True)  # the registered rule
        p_alone = prior.probs([meta[i] for i in ids])  # no image at all: the reference a network must beat
        rows.append((k, p_img, p_all, p_meta, y, p_alone))
        print(f"fold {k}: image {isic_score(p_img, y):.4f}  image+meta (all rows) {isic_score(p_all, y):.4f}  "
              f"(as served) {isic_score(p_meta, y):.4f}", flush=True)  # fmt: skip
    summary = {"folds": [r[0] for r in rows]}
    for j, name in ((1, "image"), (2, "meta_all_rows"), (3, "meta_as_served"), (5, "meta_alone")):
        scores = [isic_score(r[j], r[4]) for r in rows]
        pooled = isic_score(np.concatenate([r[j] for r in rows]), np.concatenate([r[4] for r in rows]))
        from models.cls_metrics import isic_metrics

        m = isic_metrics(np.concatenate([r[4] for r in rows]), np.concatenate([r[j] for r in rows]))
        summary[name] = {"cv_mean": float(np.mean(scores)), "cv_std": float(np.std(scores, ddof=1)), "pooled": pooled,
                         "per_fold": [round(x, 4) for x in scores], "pooled_ece": m["calibration_ece"],
                         "pooled_auc_melanoma": m["auc_melanoma"], "pooled_auc_sk": m["auc_sk"],
                         "pooled_acc": m["acc"]}  # fmt: skip
    print(json.dumps(summary))
    if args.write_options and len(rows) == 5:
        write_rows(summary, args.runs_tag) if lite1 else write_other_rows(summary, args.model, args.runs_tag)
    if args.ship and lite1:
        ship(args.data_dir, meta, shipped, summary)


OPTIONS = {  # summary key -> (options.csv option, what it is)
    "image": (
        "tta_hflip_10ep_rerun",
        "the recipe (10 epochs) + TTA hflip, image only, with folds 1-4 retrained in "
        "session 14 (fold 0 is the shipped model): the reference of the age/sex rows",
    ),
    "meta_all_rows": (
        "age_sex_prior_tta_hflip_10ep",
        "the recipe (10 epochs) + TTA hflip, times an age/sex prior "
        "(logistic regression on the fold's training metadata; product of posteriors over p(c)), every "
        "image (missing age or sex as indicators): the rule registered before the runs",
    ),
    "meta_as_served": (
        "age_sex_prior_as_served_tta_hflip_10ep",
        "as the row above, but images without both age and sex keep the image's answer, as the app does",
    ),
    "meta_alone": (
        "age_sex_prior_alone",
        "the age/sex logistic regression alone, no image (missing age or sex as indicators): the reference an image "
        "network must beat",
    ),
}
NO_IMAGE = "age and sex only (no image)"
LITE1 = "efficientnet-lite1"


def shipped_tag(folder: Path) -> str:
    """The fold run the shipped Lite1 is (``cv5e10-0``), from its metrics."""
    return json.loads((folder / "metrics.json").read_text())["training"]["tag"]


def write_rows(summary: dict, tag: str = "cv5e10") -> None:
    """Lite1's rows. For the first recipe (cv5e10) all four, as written in session 14; for another tag (cv5e20) the two
    rows with the prior, named by its epochs (its image-only rows come from skin_tta_oof, as for any recipe)."""
    from skin_cv_report import write_options

    epochs = int(tag.removeprefix("cv5e"))
    skipped = () if tag == "cv5e10" else ("image", "meta_alone")
    options = {key: (option.replace("_10ep", f"_{epochs}ep"), text.replace("(10 epochs)", f"({epochs} epochs)"))
               for key, (option, text) in OPTIONS.items() if key not in skipped}  # fmt: skip
    rows = [
        {
            "model": NO_IMAGE if key == "meta_alone" else "efficientnet-lite1",
            "option": option,
            "args": text,
            "epochs_run": "" if key == "meta_alone" else epochs,
            "best_epoch": "" if key == "meta_alone" else "last",
            "image_size": "" if key == "meta_alone" else 224,
            "train_min": "61 wall min (folds 1-4 retrained, two lanes of one thread)"
            if key == "image"
            else "0 (a logistic regression per fold)",
            "run": "logs/meta/fold*.npz" if tag == "cv5e10" else f"logs/meta/{tag}-fold*.npz",
            "cv_isic_mean": round(summary[key]["cv_mean"], 4),
            "cv_isic_std": round(summary[key]["cv_std"], 4),
            "cv_folds": 5,
            "selected_on": "nothing (CV estimates it)",
        }
        for key, (option, text) in options.items()
    ]
    write_options(ROOT / "checkpoints/skin_lesion/options.csv", rows)


def write_other_rows(summary: dict, model: str, tag: str) -> None:
    """A from-scratch network's CV recipe on equal terms with Lite1's: flip TTA, image alone and with the prior. For a
    distilled recipe (a tag such as ``cv5kdA``) only the row with the prior: its image rows come from skin_tta_oof."""
    from skin_cv_report import write_options

    named = tag.removeprefix("cv5e").isdigit()  # cv5e20: the plain recipe; other tags name themselves
    if named:
        epochs = int(tag.removeprefix("cv5e"))
    else:  # what the tag's fold runs trained (cv5kdA: 20 epochs, cv5kdC: 40)
        run = max((ROOT / "runs/skin_lesion" / model).glob(f"*-{tag}-0"))
        epochs = json.loads((run / "metrics.json").read_text())["training"]["epochs_run"]
    recipe = f"Lite1's recipe ({epochs} epochs, from scratch" + ("" if named else ", distilled from the fold's Lite1")
    rows = [
        ("image", "tta_hflip_rerun", f"{recipe}) + TTA hflip, image only, folds retrained in session 14: the "
         "reference of the row below"),
        ("meta_as_served", "age_sex_prior_as_served_tta_hflip", f"{recipe}) + TTA hflip, times the age/sex prior "
         "where both age and sex are known, as the app serves Lite1 (not shipped for this network)"),
    ][0 if named else 1 :]  # fmt: skip
    write_options(ROOT / "checkpoints/skin_lesion/options.csv", [
        {"model": model, "option": f"{option}_{epochs}ep" + ("" if named else f"_{tag}"), "args": text,
         "epochs_run": epochs, "best_epoch": "last", "image_size": 224 if model == "customnet" else 112,
         "train_min": "16 wall min (folds retrained, two lanes of one thread)" if key == "image"
         else "0 (a logistic regression per fold)", "run": f"logs/meta/{model}-{'' if named else tag + '-'}fold*.npz",
         "cv_isic_mean": round(summary[key]["cv_mean"], 4), "cv_isic_std": round(summary[key]["cv_std"], 4),
         "cv_folds": 5, "selected_on": "nothing (CV estimates it)"}
        for key, option, text in rows
    ])  # fmt: skip


CARD_START = "\n* **Age/sex prior"  # the card line ship() writes (replaced, not appended, when rerun)


def ship(data_dir, meta: dict, folder: Path, summary: dict) -> dict:
    """The prior of the shipped model (fitted on its own training images), then one validation score, reported only;
    the ``meta_prior`` block of metrics.json and a line of the model card."""
    from models.hub import load_model_from
    from models.meta_prior import FILENAME, MetaPrior
    from training.datasets import find_isic
    from training.evaluate import evaluate_model

    train = find_isic(data_dir, "cv5-0-train")
    MetaPrior.fit([meta[s.image_id] for s in train], [s.label for s in train]).save(folder / FILENAME)
    model = load_model_from("skin_lesion", "efficientnet-lite1", folder)
    served = evaluate_model("skin_lesion", model, data_dir, "val")["served"]
    val = served["image_and_metadata"]
    block = {
        "fit_on": "cv5-0-train (the shipped model's own 1,600 training images)",
        "rule": "logs/decisions.txt, session 14 (fixed before any look)",
        "cv_folds": 5,
        "cv_isic_mean": summary["meta_as_served"]["cv_mean"], "cv_isic_std": summary["meta_as_served"]["cv_std"],
        "cv_all_rows_mean": summary["meta_all_rows"]["cv_mean"], "cv_all_rows_std": summary["meta_all_rows"]["cv_std"],
        "cv_image_only_mean": summary["image"]["cv_mean"], "cv_image_only_std": summary["image"]["cv_std"],
        "cv_pooled_auc_melanoma": summary["meta_as_served"]["pooled_auc_melanoma"],
        "cv_pooled_auc_sk": summary["meta_as_served"]["pooled_auc_sk"],
        "cv_pooled_ece": summary["meta_as_served"]["pooled_ece"],
        "val_isic_score": val["isic_score"], "val_auc_melanoma": val["auc_melanoma"], "val_auc_sk": val["auc_sk"],
        "val_image_only": served["image"]["isic_score"], "val_n_with_metadata": val["n_with_metadata"],
        "note": "the validation split was scored once, after the CV; it chose nothing",
    }  # fmt: skip
    attach(folder, block)
    print(json.dumps(block))
    return block


def attach(folder: Path, block: dict) -> None:
    """The ``meta_prior`` block into metrics.json and its line into the card's notes (after the serving line), the
    card regenerated from them: one source, so a later rewrite of the card (skin_tta_oof --choose) keeps it."""
    from models.card import write_model_folder

    result = json.loads((folder / "metrics.json").read_text())
    result["meta_prior"] = block
    line = (f"{CARD_START}** (optional; the app uses it when both age and sex are given): p(class | age, sex) from "
            f"a logistic regression on this model's own training metadata, multiplied with the image's probabilities "
            f"over the class prior. CV ISIC score {block['cv_isic_mean']:.3f} ± {block['cv_isic_std']:.3f} as served "
            f"(images without both age and sex keep the image's answer; {block['cv_all_rows_mean']:.3f} with the "
            f"missing values as indicators, the registered rule), against {block['cv_image_only_mean']:.3f} for the "
            f"image alone in the same folds; validation {block['val_isic_score']:.3f} (image alone "
            f"{block['val_image_only']:.3f}), reported only.")  # fmt: skip
    notes = result.get("notes", "")
    if CARD_START in notes:  # replaced, not appended
        start = notes.index(CARD_START)
        end = notes.find("\n* ", start + 1)
        notes = notes[:start] + (notes[end:] if end >= 0 else "")
    marker = next((m for m in ("\n* **The app ", "\n* **Shipped model") if m in notes), None)  # after the serving line
    at = notes.find("\n", notes.index(marker) + 1) if marker else -1
    at = len(notes) if at < 0 else at
    result["notes"] = notes[:at] + line + notes[at:]
    write_model_folder(folder, "skin_lesion", result["variant"], result)


if __name__ == "__main__":
    main()
