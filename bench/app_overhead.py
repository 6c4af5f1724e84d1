"""App-path latency vs the bare model forward, for every shipped model, on the same real example image.

    python -m bench.app_overhead [--n 20] [--threads 2] [--only TASK/VARIANT ...] [--json out.json]

For each shipped checkpoint, on one of the tab's real example images (decoded once, so file decoding is excluded
from both sides):

* **forward**: the network alone in eager PyTorch on the already-preprocessed batch-1 tensor, in eval mode under
  ``torch.inference_mode`` (the multitask model: all its heads on one encoder pass, as the app runs it);
* **predictor**: the app's predictor on the decoded image (the segmenters and the multitask model on the app's
  default backend, ``models.runtime``, once prepared, as the app serves them): checks, preprocessing from uint8,
  forward, and the postprocessing the tab needs (segmentation: logits resized to the original image and arg-max;
  classification: softmax; multitask: every head mapped back to original pixels);
* **handler**: the tab's request handler on the image file, exactly what a click runs (decode, predictor, overlay /
  Grad-CAM / drawing, the result text), without Gradio's own HTTP and file caching.

Printed per model: the medians in ms and the ratios predictor / forward (the issue's target is <= 1.3) and
handler / forward. Medians of ``--n`` calls after 3 warm-up calls; the hardware and thread count are printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.timing import median_ms
from models.hub import checkpoint_dir, checkpoints_root, load_model_from
from models.registry import get_task
from training.provenance import hardware_summary

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "demo" / "examples"
IMAGE = {  # a real example of each task, at its native size
    "breast_us_seg": EXAMPLES / "breast_us_seg" / "malignant_130.png",
    "lung_seg": EXAMPLES / "lung_seg" / "CHNCXR_0012_0.png",
    "breastmnist_standin": EXAMPLES / "organsmnist" / "malignant_10.png",
    "skin_lesion": EXAMPLES / "skin_lesion" / "melanoma_ISIC_0012099.jpg",
    "ultrasound_multitask": EXAMPLES / "ultrasound_multitask" / "004_HC.png",
}


def shipped() -> list[tuple[str, str]]:
    keys = [(p.parent.parent.name, p.parent.name) for p in sorted(checkpoints_root().glob("*/*/model.safetensors"))]
    return [k for k in keys if k[0] in IMAGE]


def paths(task: str, variant: str):
    """(forward, predictor, handler) callables for one shipped model on its task's example image."""
    from PIL import Image

    from models import predict as P

    image_path = IMAGE[task]
    image = Image.open(image_path)
    image.load()
    spec = get_task(task)
    model = load_model_from(task, variant, checkpoint_dir(task, variant))
    if task in ("breast_us_seg", "lung_seg"):
        predictor = P.SegmentationPredictor(model, spec)
        if predictor.fast is not None:  # measure the app as it serves once warm: on its fast backend when prepared
            predictor.fast.wait(600)
        x = predictor.preset(image)[None].contiguous(memory_format=torch.channels_last)
    elif task == "breastmnist_standin":
        predictor = P.ClassificationPredictor(model, spec)
        x = predictor.preset(image)[None]
    elif task == "skin_lesion":
        predictor = P.SkinPredictor(model, spec, None)
        x = predictor.preset(image.convert("RGB"))[None]
    else:
        predictor = P.MultiTaskPredictor(model)
        if predictor.fast is not None:
            predictor.fast.wait(600)
        x = predictor.transform(image.convert("RGB"))[None]
    heads = list(getattr(model, "tasks", {}))
    fwd_model = predictor.model

    @torch.inference_mode()
    def forward():
        return fwd_model.forward_tasks(x, heads) if heads else fwd_model(x)

    def run_predictor():
        return predictor(image, heads) if heads else predictor(image)

    def get(*_args, **_kw):
        return predictor

    if task == "breast_us_seg":
        from demo.breast_us_seg import segment

        def handler():
            return segment(str(image_path), None, 0.4, "Overlay", get_predictor=get)
    elif task == "lung_seg":
        from demo.lung_seg import compare

        def handler():  # the tab compares two models; one model's share is half of it
            return compare(str(image_path), None, variant, variant, get_predictor=get)
    elif task == "breastmnist_standin":
        from demo.organsmnist import classify

        def handler():
            return classify(str(image_path), f"{task}/{variant}", get_predictor=get)
    elif task == "skin_lesion":
        from demo.skin_lesion import classify

        def handler():
            return classify(str(image_path), variant, "predicted class", get_predictor=get)
    else:
        from demo.ultrasound_multitask import predict

        organ = "fetal"

        def handler():
            return predict(str(image_path), organ, [h for h in heads if h.startswith(organ)], None, get_predictor=get)

    return forward, run_predictor, handler


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser("python -m bench.app_overhead", description=__doc__)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", help="task/variant keys (default: every shipped model)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [tuple(k.split("/")) for k in args.only] if args.only else shipped()
    print(f"{hardware_summary()}; batch 1; medians of {args.n} calls")
    print(f"{'model':38s} {'image':>10s} {'forward':>9s} {'predictor':>10s} {'handler':>9s} {'pred/fwd':>9s} "
          f"{'hdl/fwd':>8s}")  # fmt: skip
    results = {}
    for task, variant in keys:
        forward, predictor, handler = paths(task, variant)
        fwd, pred, hdl = (median_ms(f, args.n) for f in (forward, predictor, handler))
        if task == "lung_seg":
            hdl /= 2  # two models per click; the handler's per-model share
        from PIL import Image

        size = "x".join(map(str, Image.open(IMAGE[task]).size))
        results[f"{task}/{variant}"] = {"image": size, "forward_ms": fwd, "predictor_ms": pred, "handler_ms": hdl,
                                        "predictor_ratio": pred / fwd, "handler_ratio": hdl / fwd}  # fmt: skip
        print(f"{task + '/' + variant:38s} {size:>10s} {fwd:9.2f} {pred:10.2f} {hdl:9.2f} {pred / fwd:9.2f} "
              f"{hdl / fwd:8.2f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"hardware": hardware_summary(), "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
