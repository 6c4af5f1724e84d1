"""Leaderboard table: column order, numeric dtypes (so sorting works), measured rows from metrics.json."""

from __future__ import annotations

import json

import pandas as pd

from leaderboard.results import COLUMNS, NUMERIC, PUBLISHED, collect


def test_published_rows_are_cited_and_numeric():
    df = collect(root="/nonexistent")
    assert list(df.columns) == COLUMNS
    assert len(df) == len(pd.read_csv(PUBLISHED))
    for col in NUMERIC:
        assert pd.api.types.is_numeric_dtype(df[col]), col
    assert df["citation"].notna().all() and set(df["source"]) <= {"student report", "publication"}
    thesis = df[(df["model"] == "EFSNet (thesis)") & df["dsc"].notna()].iloc[0]
    assert (thesis["dsc"], thesis["miou"], thesis["acc"], thesis["params"]) == (0.7044, 0.5814, 0.9406, 178887)


def test_measured_rows_come_from_checkpoint_metrics(tiny_checkpoints):
    df = collect(root=tiny_checkpoints)
    ours = df[df["source"] == "measured here"]
    assert set(ours["task"]) == {"breast_us_seg", "lung_seg", "breastmnist_standin", "skin_lesion"}  # per checkpoint
    efsnet = ours[ours["task"] == "breast_us_seg"]
    assert len(efsnet) == 1 and efsnet.iloc[0]["dsc"] == 0.5 and efsnet.iloc[0]["resolution"] == 64
    lung = ours[ours["task"] == "lung_seg"].set_index("model")
    assert lung.loc["U-Net, Adam (ours)", "dice"] == 0.6 and lung["dice"].dtype.kind == "f"
    standin = ours[ours["task"] == "breastmnist_standin"]
    assert set(standin["model"]) == {"Base CNN (ours)", "+ BatchNorm (ours)"} and standin["acc"].notna().all()
    # numeric sort, not lexicographic: as strings "81.6" would beat "650.5"
    assert df.sort_values("fps", ascending=False).iloc[0]["fps"] == 650.5


def test_a_broken_metrics_file_does_not_take_the_table_down(tiny_checkpoints):
    (tiny_checkpoints / "breast_us_seg" / "efsnet" / "metrics.json").write_text(json.dumps({"task": "x"}))
    df = collect(root=tiny_checkpoints)
    assert df["protocol"].str.contains("unreadable").any()
