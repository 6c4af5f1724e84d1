"""Write the leaderboard table to ``leaderboard/table.csv`` (the app reads it at start-up) and optionally publish it
as a Hub dataset.

    python -m leaderboard.build [--out leaderboard/table.csv] [--hub-owner OWNER] [--push-to-hub USER/REPO]

The table is every checkpoint's ``metrics.json`` (measured here, with the latency from ``leaderboard/speed.json``),
the Hub model repos of ``--hub-owner`` whose metrics differ from the local ones, plus ``leaderboard/published.csv``
(cited figures); see ``leaderboard.results``. No gradio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leaderboard.results import BUILT, collect


def build(out: str | Path = BUILT, owner: str | None = None) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    collect(owner=owner).to_csv(out, index=False)
    return out


def push(path: Path, repo_id: str) -> str:
    """Upload the table as ``leaderboard.csv`` of a Hub dataset repo (created if missing); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    info = api.upload_file(path_or_fileobj=str(path), path_in_repo="leaderboard.csv", repo_id=repo_id,
                           repo_type="dataset", commit_message="Update the leaderboard table")  # fmt: skip
    return str(getattr(info, "commit_url", info))


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser("python -m leaderboard.build", description=__doc__)
    p.add_argument("--out", default=str(BUILT))
    p.add_argument("--push-to-hub", metavar="REPO", help="also upload it to this Hub dataset repo")
    p.add_argument("--hub-owner", metavar="OWNER", help="also add OWNER's Hub model repos (default: from "
                   "MODEL_SOURCE=hf://OWNER)")  # fmt: skip
    args = p.parse_args(argv)
    out = build(args.out, args.hub_owner)
    print(f"wrote {out}")
    if args.push_to_hub:
        print(push(out, args.push_to_hub))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
