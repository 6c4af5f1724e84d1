"""Issue 16's test-time augmentation (TTA) and fold-ensemble rows, scored without the validation split choosing.

    python scripts/skin_tta_oof.py --data-dir ../shared/data/isic2017 [--model efficientnet-lite1] [--tag cv5]
    python scripts/skin_tta_oof.py --choose [--max-latency-ms 50] [--data-dir DIR]   (a quiet machine: times, picks)

For every finished fold run ``runs/skin_lesion/<model>/*-<tag>-<k>`` it predicts the held-out fold (out-of-fold) with
the views of each TTA set (the identity; + horizontal flip; the four flips) and averages the softmax over views. The
CV ISIC score of each set (fold mean +- std, pooled) goes to ``options.csv``; the shipped model uses TTA only where
its CV gain is positive (a choice made on out-of-fold predictions, never on the validation split), and only a set
whose batch-1 latency on 2 cores stays within the budget (issue 16: 50 ms, TTA included): ``--choose`` times each set
through the app's own predictor and writes the views of the best CV score within the budget into ``tta.json``.

The fold ensemble (the five fold models averaged) has no out-of-fold estimate (each image was seen by four of the
five models), so its row gives the validation score only, labelled as such; it chose nothing and does not ship (5x
the latency). Rows of a recipe trained longer carry its suffix (``tta_hflip_10ep``); ``tta.json`` is written only when
the shipped model comes from the tag's folds.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

TTA_SETS = {"none": ("id",), "hflip": ("id", "h"), "flips4": ("id", "h", "v", "hv")}


def view(x: torch.Tensor, name: str) -> torch.Tensor:
    from models.predict import TTA_FLIPS  # the app's own views

    dims = TTA_FLIPS[name]
    return x.flip(dims) if dims else x


@torch.inference_mode()
def view_probs(model, data_dir, split: str, temperature: float = 1.0) -> tuple[dict, np.ndarray]:
    """Softmax per view, {view: (n, 3)}, and the labels."""
    from training.datasets import IsicDataset, find_isic

    ds = IsicDataset(find_isic(data_dir, split), model.input_size, train=False)
    out = {v: [] for v in ("id", "h", "v", "hv")}
    for i in range(0, len(ds), 50):
        x = torch.stack([ds[j][0] for j in range(i, min(i + 50, len(ds)))])
        for v in out:
            out[v].append(torch.softmax(model(view(x, v)).float() / temperature, 1))
    return {v: torch.cat(p).numpy() for v, p in out.items()}, ds.labels.numpy()


NOTE_START = "\n* **The app "  # the card line served_note writes (replaced, not appended, on a new choice)


def served_note(tta: dict, max_latency_ms: float) -> str:
    """The model card's line on what the app serves (``metrics.json``'s ``tta`` block)."""
    views = tta["views"]
    if len(views) > 1:
        served = (f"averages {len(views)} test-time views** ({', '.join(views)}; chosen by the CV score among the sets "
                  f"within {max_latency_ms:g} ms)")  # fmt: skip
    else:
        served = f"serves the plain forward** (no view set with a better CV score fits within {max_latency_ms:g} ms)"
    cv = f"CV ISIC score {tta['cv_isic_mean']:.3f} ± {tta['cv_isic_std'] or 0:.3f}"
    val = f"validation {tta['val_isic_score']:.3f} (reported only)"
    return f"{NOTE_START}{served}: {cv}, {val}; {tta['latency_ms']:.0f} ms per image."


def choose(model_name: str, checkpoints_dir: str, max_latency_ms: float, threads: int = 2, data_dir=None) -> dict:
    """Time each TTA set (median forward of the app's predictor, batch 1) and keep the best CV score within budget;
    with ``data_dir``, score the shipped configuration once on the validation split (reported, never chosen on) and
    add it to the model's ``metrics.json`` (``tta`` block) and card."""
    import time

    from PIL import Image

    from models.hub import load_model_from
    from models.predict import SkinPredictor
    from models.registry import get_task

    torch.set_num_threads(threads)
    folder = Path(checkpoints_dir) / "skin_lesion" / model_name
    tta = json.loads((folder / "tta.json").read_text())
    predictor = SkinPredictor.for_model(load_model_from("skin_lesion", model_name, folder), get_task("skin_lesion"))
    image = Image.open(ROOT / "demo" / "examples" / "skin_lesion" / "nevus_ISIC_0001852.jpg").convert("RGB")
    latency = {}
    for name, views in TTA_SETS.items():
        predictor.views = views
        for _ in range(3):
            predictor(image)
        runs = []
        for _ in range(15):
            t0 = time.perf_counter()
            predictor(image)
            runs.append((time.perf_counter() - t0) * 1e3)
        latency[name] = float(np.median(runs))
    within = [n for n in TTA_SETS if latency[n] <= max_latency_ms] or ["none"]
    best = max(within, key=lambda n: tta["cv"][n]["cv_mean"])
    tta.update(views=list(TTA_SETS[best]), latency_ms=latency, max_latency_ms=max_latency_ms,
               chosen_on=f"the best 5-fold CV ISIC score among the sets within {max_latency_ms:g} ms (batch 1, "
                         f"{threads} threads, the app's predictor); the validation split chose nothing")  # fmt: skip
    tta["cv"]["chosen_tta"] = best
    (folder / "tta.json").write_text(json.dumps(tta, indent=2) + "\n")
    print(json.dumps({"latency_ms": latency, "chosen": best}))
    if data_dir:
        from models.card import write_model_folder
        from models.cls_metrics import isic_metrics

        temperature = predictor.temperature
        probs, labels = view_probs(predictor.model, data_dir, "val", temperature)
        m = isic_metrics(labels, np.mean([probs[v] for v in TTA_SETS[best]], axis=0))
        result = json.loads((folder / "metrics.json").read_text())
        result["tta"] = {"views": list(TTA_SETS[best]), "cv_isic_mean": tta["cv"][best]["cv_mean"],
                         "cv_isic_std": tta["cv"][best]["cv_std"], "cv_folds": tta["cv"][best]["folds"],
                         "val_isic_score": m["isic_score"],
                         "val_auc_melanoma": m["auc_melanoma"], "val_auc_sk": m["auc_sk"],
                         "latency_ms": latency[best]}  # fmt: skip
        head, found, rest = result.get("notes", "").partition(NOTE_START)
        after = "\n* " + rest.split("\n* ", 1)[1] if found and "\n* " in rest else ""  # later lines (age/sex) stay
        result["notes"] = head + served_note(result["tta"], max_latency_ms) + after
        write_model_folder(folder, "skin_lesion", model_name, result)
        print(json.dumps(result["tta"]))
    return tta


def main(argv=None) -> dict:
    from models.cls_metrics import isic_metrics
    from models.hub import load_model_from

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--choose", action="store_true", help="time each TTA set and pick within --max-latency-ms")
    p.add_argument("--max-latency-ms", type=float, default=50.0)
    p.add_argument("--data-dir")
    p.add_argument("--model", default="efficientnet-lite1")
    p.add_argument("--runs-dir", default=str(ROOT / "runs"))
    p.add_argument("--checkpoints-dir", default=str(ROOT / "checkpoints"))
    p.add_argument("--tag", default="cv5", help="the fold runs' tag prefix (as scripts/skin_cv_report.py)")
    args = p.parse_args(argv)
    if args.choose:
        return choose(args.model, args.checkpoints_dir, args.max_latency_ms, data_dir=args.data_dir)
    if not args.data_dir:
        p.error("--data-dir is required (except with --choose)")
    from skin_cv_report import finished_folds, recipe_option

    runs = finished_folds(args.runs_dir, args.model, args.tag)
    epochs = json.loads((next(iter(runs.values())) / "metrics.json").read_text())["training"]["epochs_run"]
    per_set = {name: [] for name in TTA_SETS}
    pooled = {name: [] for name in TTA_SETS}
    labels_all, val_probs, val_labels = [], [], None
    for k, run in sorted(runs.items()):
        model = load_model_from("skin_lesion", args.model, run / "model")
        probs, labels = view_probs(model, args.data_dir, f"cv5-{k}-val")
        labels_all.append(labels)
        for name, views in TTA_SETS.items():
            avg = np.mean([probs[v] for v in views], axis=0)
            per_set[name].append(isic_metrics(labels, avg)["isic_score"])
            pooled[name].append(avg)
        vp, val_labels = view_probs(model, args.data_dir, "val")
        val_probs.append(vp["id"])
        print(json.dumps({"fold": k, **{n: round(s[-1], 4) for n, s in per_set.items()}}), flush=True)
    labels = np.concatenate(labels_all)
    result = {
        name: {
            "cv_mean": float(np.mean(s)),
            "cv_std": float(np.std(s, ddof=1)) if len(s) > 1 else None,
            "pooled_oof": isic_metrics(labels, np.concatenate(pooled[name]))["isic_score"],
            "folds": len(s),
        }
        for name, s in per_set.items()
    }
    ens = isic_metrics(val_labels, np.mean(val_probs, axis=0))
    result["fold_ensemble_val"] = {"isic_score": ens["isic_score"], "auc_melanoma": ens["auc_melanoma"],
                                   "auc_sk": ens["auc_sk"], "acc": ens["acc"], "models": len(val_probs)}  # fmt: skip
    best = max(TTA_SETS, key=lambda n: result[n]["cv_mean"])
    result["chosen_tta"] = best if result[best]["cv_mean"] > result["none"]["cv_mean"] else "none"
    folder = Path(args.checkpoints_dir) / "skin_lesion" / args.model
    shipped_tag = json.loads((folder / "metrics.json").read_text())["training"].get("tag", "")
    if shipped_tag.rsplit("-", 1)[0] == args.tag:  # the shipped model is one of these folds' models
        chosen_on = "5-fold CV out-of-fold ISIC score (the validation split chose nothing)"
        tta = {"views": list(TTA_SETS[result["chosen_tta"]]), "chosen_on": chosen_on, "cv": result}
        (folder / "tta.json").write_text(json.dumps(tta, indent=2) + "\n")
    options = Path(args.checkpoints_dir) / "skin_lesion" / "options.csv"
    cfg = json.loads((next(iter(runs.values())) / "config.json").read_text())
    write_tta_rows(options, args.model, result, recipe_option(epochs, cfg), f"skin_lesion/{args.model}/*-{args.tag}-*")
    print(json.dumps(result))
    return result


def write_tta_rows(options: Path, model: str, result: dict, recipe: str, run: str) -> None:
    """The TTA and fold-ensemble rows of the recipe ``recipe`` (its options.csv name), suffixed as it is."""
    from skin_cv_report import write_options

    rows = list(csv.DictReader(options.open()))
    base = next(r for r in rows if r["model"] == model and r["option"] == recipe)
    suffix = recipe.removeprefix("adamw_cosine_ls_trivialaugment")
    recipe_text = "the recipe" + (f" ({base['epochs_run']} epochs)" if suffix else "")
    new = {
        f"tta_hflip{suffix}": ("hflip", f"{recipe_text} + TTA: mean softmax of the image and its horizontal flip"),
        f"tta_flips4{suffix}": ("flips4", f"{recipe_text} + TTA: mean softmax of the image and its 3 flips"),
    }
    ensemble = f"fold_ensemble{suffix}"
    rows = []
    for option, (name, text) in new.items():
        r = result[name]
        rows.append({"model": model, "option": option, "args": text,
                     "image_size": base["image_size"], "epochs_run": base["epochs_run"], "best_epoch": "last",
                     "train_min": "0 (inference on the CV fold models)", "run": run,
                     "cv_isic_mean": round(r["cv_mean"], 4), "cv_isic_std": round(r["cv_std"] or 0, 4),
                     "cv_folds": r["folds"], "selected_on": "nothing (CV estimates it)"})  # fmt: skip
    e = result["fold_ensemble_val"]
    rows.append({"model": model, "option": ensemble,
                 "args": f"mean softmax of the {e['models']} fold models of {recipe_text} (no out-of-fold estimate "
                         "exists)",
                 "isic_score": e["isic_score"], "auc_melanoma": e["auc_melanoma"], "auc_sk": e["auc_sk"],
                 "acc": e["acc"], "image_size": base["image_size"], "epochs_run": base["epochs_run"],
                 "best_epoch": "last", "train_min": base["train_min"], "run": run,
                 "selected_on": "nothing (validation score reported only; not shipped: 5x latency)"})  # fmt: skip
    write_options(options, rows)


if __name__ == "__main__":
    if "--choose" not in sys.argv:  # --choose times the app's predictor: under the app's own allocator settings
        from training.allocator import reexec_with_training_tunables

        reexec_with_training_tunables()
    main()
