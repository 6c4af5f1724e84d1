"""How often the shipped EFSNet marks a lesion on BUSI's normal images, per split of the thesis's 680/100 split, and
how the predicted areas of normal and lesion images overlap (the figures in the breast tab's notes).

    python scripts/busi_normals.py [--data-dir ../shared/data/busi]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    from demo.breast_us_seg import MIN_LESION_FRACTION, TASK
    from demo.common import get_predictor

    p = argparse.ArgumentParser("scripts/busi_normals.py", description=__doc__)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "busi"))
    args = p.parse_args(argv)
    val = set(json.loads((ROOT / "training" / "splits" / "busi_680_100.json").read_text())["val"])
    predict = get_predictor(TASK)
    areas: dict[tuple[str, str], list[float]] = {}
    for cls in ("normal", "benign", "malignant"):
        for f in sorted((Path(args.data_dir) / cls / "images").glob("*.png")):
            key = ("normal" if cls == "normal" else "lesion", "val" if f.stem in val else "train")
            areas.setdefault(key, []).append(float((predict(Image.open(f)).mask > 0).mean()))
    for (kind, split), values in sorted(areas.items()):
        v = np.array(values)
        row = {
            "images": kind,
            "split": split,
            "n": len(v),
            "marked": int((v >= MIN_LESION_FRACTION).sum()),
            "median_area": round(float(np.median(v)), 4),
            "under_5pct": round(float((v < 0.05).mean()), 3),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
