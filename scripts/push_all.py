"""Push every shipped checkpoint folder to its Hub model repo, ``OWNER/<task-with-dashes>-<variant>``.

    python scripts/push_all.py [--owner biomedical-image-demo] [--dry-run]

These are the repos the Space's README front matter lists under ``models:``; serving them instead of the shipped
folders is ``MODEL_SOURCE=hf://OWNER``. Honors ``HF_ENDPOINT`` and ``HF_TOKEN`` like ``training.push``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.hub import HUB_OWNER, checkpoints_root, repo_id  # noqa: E402


def shipped() -> list[tuple[str, str, Path]]:
    return [
        (p.parent.parent.name, p.parent.name, p.parent)
        for p in sorted(checkpoints_root().glob("*/*/model.safetensors"))
    ]


def main(argv: list[str] | None = None) -> list[str]:
    p = argparse.ArgumentParser("scripts/push_all.py", description=__doc__)
    p.add_argument("--owner", default=HUB_OWNER)
    p.add_argument("--dry-run", action="store_true", help="print the repo ids only")
    args = p.parse_args(argv)
    repos = []
    for task, variant, folder in shipped():
        repo = repo_id(task, variant, args.owner)
        repos.append(repo)
        if args.dry_run:
            print(repo)
            continue
        from training.push import push_folder

        print(repo, push_folder(folder, repo))
    return repos


if __name__ == "__main__":
    main(sys.argv[1:])
