"""Push a checkpoint folder (weights, config, card, metrics.json, history.csv) to a Hugging Face Hub model repo.

    python -m training.push checkpoints/breast_us_seg/efsnet --repo OWNER/breast-us-seg-efsnet [--private]

The card's YAML (model-index, licence) is validated by the Hub before anything is uploaded, so a malformed card fails
fast. Only safetensors weights are pushed (pickles are refused). Honors ``HF_ENDPOINT`` and ``HF_TOKEN``. No gradio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from huggingface_hub import HfApi, ModelCard

ALLOWED = ["*.json", "*.safetensors", "*.md", "*.csv", "*.png"]


def push_folder(folder: str | Path, repo: str, private: bool = False, message: str | None = None) -> str:
    """Create ``repo`` if needed, validate the card, upload ``folder``; returns the commit URL."""
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise SystemExit(f"{folder} has no model.safetensors: nothing to push")
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt*")) or any(folder.glob("*.pkl")):
        raise SystemExit(f"{folder} contains pickled weights; this project pushes safetensors only")
    api = HfApi()
    card = folder / "README.md"
    if card.exists():
        ModelCard.load(card).validate()  # POST /api/validate-yaml
    api.create_repo(repo, private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=folder,
        repo_id=repo,
        allow_patterns=ALLOWED,
        commit_message=message or f"Upload {folder.name} from biomedical-image-demo",
    )
    return str(info)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(
        "python -m training.push", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("folder")
    p.add_argument("--repo", required=True, help="OWNER/NAME (models.hub.repo_id gives the project's naming)")
    p.add_argument("--private", action="store_true")
    args = p.parse_args(argv)
    url = push_folder(args.folder, args.repo, args.private)
    print(url)
    return url


if __name__ == "__main__":
    main(sys.argv[1:])
