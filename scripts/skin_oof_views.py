"""Out-of-fold softmax of every finished CV fold model under several test-time views, saved for later choices.

    python scripts/skin_oof_views.py --data-dir ../shared/data/isic2017 --model efficientnet-lite1 --tag cv5e10

Writes ``logs/oof/<model>-<tag>.npz``: for each preprocessing (``crop``: the evaluation path, resize to 8/7 of the
input size then centre crop; ``full``: the same resized image uncropped, i.e. the whole lesion at the training scale)
and each view that fits the 50 ms budget (id, h), the (n, 3) softmax of the held-out images of every fold, with
``labels`` and ``fold``. Only training-split images are read (the CV folds); the validation split is not touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


@torch.inference_mode()
def main(argv=None) -> Path:
    from skin_cv_report import finished_folds
    from skin_tta_oof import view

    from models.hub import load_model_from
    from models.transforms import IsicPreset
    from training.datasets import cached_decode, find_isic

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="efficientnet-lite1")
    p.add_argument("--tag", default="cv5e10")
    p.add_argument("--runs-dir", default=str(ROOT / "runs"))
    args = p.parse_args(argv)
    out: dict[str, list] = {}
    labels, folds = [], []
    for k, run in sorted(finished_folds(args.runs_dir, args.model, args.tag).items()):
        model = load_model_from("skin_lesion", args.model, run / "model").eval()
        preset = IsicPreset(model.input_size)
        samples = find_isic(args.data_dir, f"cv5-{k}-val")
        raw = torch.stack([cached_decode(preset, s.image) for s in samples])  # uint8 (n, 3, base, base)
        mean = torch.tensor(preset.transform.transforms[-1].mean).view(1, 3, 1, 1)
        std = torch.tensor(preset.transform.transforms[-1].std).view(1, 3, 1, 1)
        full = (raw.float() / 255 - mean) / std
        off = (preset.base - preset.size) // 2
        inputs = {"crop": full[:, :, off : off + preset.size, off : off + preset.size], "full": full}
        for name, x in inputs.items():
            for v in ("id", "h"):  # the views that fit the latency budget (flips4 does not: 61 ms)
                probs = torch.cat([torch.softmax(model(view(x[i : i + 50], v)).float(), 1)
                                   for i in range(0, len(x), 50)])  # fmt: skip
                out.setdefault(f"{name}_{v}", []).append(probs.numpy())
        labels.append(np.array([s.label for s in samples]))
        folds.append(np.full(len(samples), k))
        print(f"fold {k} done", flush=True)
    path = ROOT / "logs" / "oof" / f"{args.model}-{args.tag}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, labels=np.concatenate(labels), fold=np.concatenate(folds),
             **{k: np.concatenate(v) for k, v in out.items()})  # fmt: skip
    print(path)
    return path


def score(files: dict[str, Path]) -> dict[str, dict]:
    """CV ISIC score (fold mean +- std, as ``options.csv``) of the candidates fixed before any result
    (``logs/decisions.txt``): each model's crop / uncropped views (id + h averaged), and Lite1 + ResNet18 averaged with
    equal weights. ``files``: ``{"lite1": npz, "resnet18": npz}`` (the second optional)."""
    from models.cls_metrics import isic_metrics

    data = {k: np.load(v) for k, v in files.items()}
    lite = data["lite1"]
    fold, labels = lite["fold"], lite["labels"]

    def hflip(d, prep):
        return (d[f"{prep}_id"] + d[f"{prep}_h"]) / 2

    candidates = {"a: lite1 crop": hflip(lite, "crop"), "b: lite1 full": hflip(lite, "full")}
    if "resnet18" in data:
        r18 = data["resnet18"]
        assert (r18["labels"] == labels).all() and (r18["fold"] == fold).all()
        candidates["resnet18 crop"] = hflip(r18, "crop")
        candidates["c: lite1 crop + resnet18"] = (candidates["a: lite1 crop"] + candidates["resnet18 crop"]) / 2
        candidates["d: lite1 full + resnet18"] = (candidates["b: lite1 full"] + candidates["resnet18 crop"]) / 2
    out = {}
    for name, probs in candidates.items():
        per_fold = [isic_metrics(labels[fold == k], probs[fold == k])["isic_score"] for k in np.unique(fold)]
        out[name] = {"cv_mean": float(np.mean(per_fold)), "cv_std": float(np.std(per_fold, ddof=1)),
                     "folds": len(per_fold)}  # fmt: skip
    return out


OPTION_ROWS = {  # candidate -> (model, options.csv option, what it is)
    "b: lite1 full": (
        "efficientnet-lite1",
        "uncropped_256_tta_hflip_10ep",
        "the recipe (10 epochs) + TTA hflip, on the whole resized image (256 px, the training scale) "
        "instead of its 224-px centre crop",
    ),
    "c: lite1 crop + resnet18": (
        "efficientnet-lite1",
        "ensemble_resnet18_20ep_tta_hflip_10ep",
        "the recipe (10 epochs) + TTA hflip, averaged with the same fold's ResNet18 (Lite1's "
        "recipe, 20 epochs, 112 px, TTA hflip), equal weights",
    ),
    "d: lite1 full + resnet18": (
        "efficientnet-lite1",
        "ensemble_resnet18_20ep_uncropped_tta_hflip_10ep",
        "as the ensemble above, Lite1 on the uncropped 256-px image",
    ),
}


def write_rows(result: dict, options: Path) -> None:
    """The candidates' rows in ``options.csv`` (CV only: none ships unless logs/decisions.txt's rule says so)."""
    from skin_cv_report import write_options

    rows = []
    for name, (model, option, text) in OPTION_ROWS.items():
        if name in result:
            r = result[name]
            rows.append({"model": model, "option": option, "args": text, "epochs_run": 10, "best_epoch": "last",
                         "image_size": 256 if "full" in name else 224,
                         "train_min": "0 (inference on the CV fold models)", "run": "logs/oof/*.npz",
                         "cv_isic_mean": round(r["cv_mean"], 4), "cv_isic_std": round(r["cv_std"], 4),
                         "cv_folds": r["folds"], "selected_on": "nothing (CV estimates it)"})  # fmt: skip
    write_options(options, rows)


if __name__ == "__main__":
    # python scripts/skin_oof_views.py --score lite1=FILE [resnet18=FILE] [--write-options]
    if sys.argv[1:2] == ["--score"]:
        import json

        result = score(dict(a.split("=", 1) for a in sys.argv[2:] if "=" in a))
        print(json.dumps(result, indent=1))
        if "--write-options" in sys.argv:
            write_rows(result, ROOT / "checkpoints" / "skin_lesion" / "options.csv")
    else:
        main()
