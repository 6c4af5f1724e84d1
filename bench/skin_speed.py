"""Skin classifier speed: the plain eager forward against the copy the app serves (BatchNorm folded into the
convolutions, channels-last; ``models.runtime.fold_batchnorm``), per test-time-augmentation view set, as ratios.

    python -m bench.skin_speed [--models efficientnet-lite1 ...] [--n 25] [--threads 2] [--backends pytorch openvino]

Each figure is the median of ``--n`` forwards of ``models.ood.penultimate_features`` (what ``SkinPredictor`` runs: the
logits and the OOD features) on a batch of 1, 2 or 4 views (none, the flip, all four flips) at the model's input size,
plus the whole predictor on a real example image with the view set it serves (``tta.json``). Issue 16's budget: 50 ms
per image at batch 1 on 2 cores, TTA included. ``--backends`` times that predictor on each inference path
(``models.runtime``: the classifier and the ImageNet gate both on it, once prepared), against PyTorch's. Run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.timing import median_ms

ROOT = Path(__file__).resolve().parents[1]
VIEW_SETS = {"none": 1, "hflip": 2, "flips4": 4}


@torch.inference_mode()
def measure(variant: str, n: int, backends: tuple[str, ...] = ("pytorch",)) -> dict:
    from PIL import Image

    from models.hub import load_model
    from models.ood import imagenet_runtime, penultimate_features
    from models.predict import SkinPredictor
    from models.registry import get_task
    from training.provenance import hardware_summary

    model = load_model("skin_lesion", variant).float().eval()
    served = SkinPredictor.serving_copy(model)
    size = model.input_size
    row = {"model": variant, "input": f"{size} px", "hardware": hardware_summary(), "threads": torch.get_num_threads()}
    for name, views in VIEW_SETS.items():
        x = torch.rand(views, 3, size, size)
        x_last = x.contiguous(memory_format=torch.channels_last)
        plain = median_ms(lambda x=x: penultimate_features(model, x), n)
        fast = median_ms(lambda x=x_last: penultimate_features(served, x), n)
        row[name] = {"plain_ms": round(plain, 1), "served_ms": round(fast, 1), "speedup": round(plain / fast, 2)}
    image = Image.open(next((ROOT / "demo" / "examples" / "skin_lesion").glob("*.jpg"))).convert("RGB")
    row["predictor"] = {}
    for backend in backends:
        predictor = SkinPredictor.for_model(model, get_task("skin_lesion"), backend=backend)
        for fast in (predictor.fast, imagenet_runtime(backend)):  # prepared before the clock starts
            if fast is not None and not fast.wait(300):
                raise RuntimeError(f"{backend}: {fast.error}")
        served = predictor(image).backend
        row["predictor"][backend] = {"views": list(predictor.views), "served_by": served,
                                     "ms": round(median_ms(lambda p=predictor: p(image), n), 1)}  # fmt: skip
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser("python -m bench.skin_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--models", nargs="*", default=["efficientnet-lite1"])
    p.add_argument("--n", type=int, default=25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", nargs="+", default=["pytorch"], choices=["pytorch", "openvino"])
    p.add_argument("--json", action="store_true", help="the rows as JSON on the last line")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [measure(m, args.n, tuple(args.backends)) for m in args.models]
    for r in rows:
        print(f"{r['model']} ({r['input']}, {r['threads']} threads, {r['hardware']})")
        for name in VIEW_SETS:
            v = r[name]
            print(f"  {name:7s} plain {v['plain_ms']:6.1f} ms   served {v['served_ms']:6.1f} ms   {v['speedup']:.2f}x")
        base = r["predictor"].get("pytorch", {}).get("ms")
        for backend, v in r["predictor"].items():
            ratio = f"   {base / v['ms']:.2f}x PyTorch's" if base and backend != "pytorch" else ""
            print(f"  the predictor on an example image, views {v['views']}, {v['served_by']}: {v['ms']:.1f} ms{ratio}")
    if args.json:
        print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
