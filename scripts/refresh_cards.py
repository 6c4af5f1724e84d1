"""Re-write the card and training notes of finished runs (after the notes' wording changed), and of their exported
copies under ``checkpoints/``, without retraining or re-evaluating.

    python scripts/refresh_cards.py runs/skin_lesion/resnet18/<run> [...] [--checkpoints-dir checkpoints]

A run's exported copy is refreshed only when its weights are byte-identical to the run's.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.card import (
    deviation_notes,  # noqa: E402
    write_model_folder,  # noqa: E402
)


def refresh(run: Path, checkpoints: Path) -> Path | None:
    result = json.loads((run / "metrics.json").read_text())
    saved = json.loads((run / "config.json").read_text())
    progress = json.loads((run / "progress.json").read_text())
    result["notes"] = deviation_notes(result["task"], saved, progress)
    (run / "metrics.json").write_text(json.dumps(result, indent=2))
    history = run / "history.csv"
    write_model_folder(run / "model", result["task"], result["variant"], result, history if history.exists() else None)
    dest = checkpoints / result["task"] / result["variant"]
    if (dest / "model.safetensors").exists() and filecmp.cmp(dest / "model.safetensors", run / "model" /
                                                             "model.safetensors", shallow=False):  # fmt: skip
        for name in ("README.md", "metrics.json"):
            shutil.copy2(run / "model" / name, dest / name)
        return dest
    return None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("scripts/refresh_cards.py", description=__doc__)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--checkpoints-dir", type=Path, default=Path("checkpoints"))
    args = p.parse_args(argv)
    for run in args.runs:
        dest = refresh(run, args.checkpoints_dir)
        print(f"{run}: card refreshed" + (f", and {dest}" if dest else ""))


if __name__ == "__main__":
    main()
