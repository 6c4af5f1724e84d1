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


# every published anchor of ANCHORS.md (sections 1-5): (task, model, column, value)
ANCHORS = [
    ("organsmnist", "AutoKeras", "acc", 0.813), ("organsmnist", "ResNet-50 (224)", "acc", 0.785),
    ("organsmnist", "auto-sklearn", "acc", 0.672), ("organsmnist", "Google AutoML Vision", "auc", 0.964),
    ("organsmnist", "End-to-end DenseNet-121 @64 (MedMNIST+)", "acc", 0.8347),
    ("organsmnist", "End-to-end ViT-B/16 @128 (MedMNIST+)", "auc", 0.985),
    ("organsmnist", "kNN (k = 11), DINO ViT-B/16 @224 (MedMNIST+)", "acc", 0.7482),
    ("organsmnist", "ResNet-18 (224) on OrganAMNIST (sibling task)", "acc", 0.951),
    ("lung_seg", "Little W-Net (Idiap)", "dice", 0.950),
    ("lung_seg", "U-Net trained on Shenzhen (Idiap)", "dice", 0.942),
    ("lung_seg", "U-Net-style (imlab-uiip)", "dice", 0.985),
    ("lung_seg", "DenseNet201-U-Net (Tam et al. 2025)", "dice", 0.9887),
    ("lung_seg", "Multi-dataset + pseudo-label fine-tuning (Dediu & Udrea 2025)", "dice", 0.9916),
    ("breast_us_seg", "CMUNeXt", "lesion_dice", 0.7986), ("breast_us_seg", "MedT", "lesion_iou", 0.6336),
    ("breast_us_seg", "RFS-UNet (EFSNet thesis table)", "dsc", 0.7704),
    ("breast_us_seg", "U-Net / U-Net++, malignant images only", "lesion_dice", 0.709),
    ("skin_lesion", "RECOD Titans (3rd)", "auc_melanoma", 0.874),
    ("skin_lesion", "Casio + Shinshu Univ. (1st)", "isic_score", 0.911),
    ("skin_lesion", "DermaKNet, González-Díaz (2nd)", "auc_sk", 0.965),
    ("skin_lesion", "Mahbod et al., hybrid deep networks", "auc_sk", 0.936),
    ("ultrasound_multitask", "EfficientNet-B4 + FPN multitask (report): fetal_head", "dsc", 0.9249),
]  # fmt: skip
UNVERIFIED = ["Casio + Shinshu Univ. (1st)", "DermaKNet, González-Díaz (2nd)", "U-Net / U-Net++, benign images only"]


def test_every_anchor_is_in_the_table_with_its_citation():
    df = collect(root="/nonexistent").set_index("model")
    for task, model, col, value in ANCHORS:
        row = df.loc[[model]]
        assert (row["task"] == task).all() and row["citation"].str.len().gt(5).all(), model
        assert (row[col] - value).abs().min() < 1e-4, (model, col)
    assert df.loc[UNVERIFIED, "unverified"].all()
    assert df.loc[df["protocol"].fillna("").str.contains("abstract only"), "unverified"].all()


def test_measured_rows_come_from_checkpoint_metrics(tiny_checkpoints):
    df = collect(root=tiny_checkpoints)
    ours = df[df["source"] == "measured here"]
    assert set(ours["task"]) == {
        "breast_us_seg",
        "lung_seg",
        "breastmnist_standin",
        "skin_lesion",
        "ultrasound_multitask",
    }
    efsnet = ours[ours["task"] == "breast_us_seg"]
    assert len(efsnet) == 1 and efsnet.iloc[0]["dsc"] == 0.5 and efsnet.iloc[0]["resolution"] == 64
    lung = ours[ours["task"] == "lung_seg"].set_index("model")
    assert lung.loc["U-Net, Adam (ours)", "dice"] == 0.6 and lung["dice"].dtype.kind == "f"
    standin = ours[ours["task"] == "breastmnist_standin"]
    shown = standin[~standin["model"].str.contains("seeds")]  # the shown run per step; the seed study's rows besides
    assert set(shown["model"]) == {"Base CNN (ours)", "+ BatchNorm (ours)"} and standin["acc"].notna().all()
    # numeric sort, not lexicographic: as strings "81.6" would beat "650.5"
    assert df.sort_values("fps", ascending=False).iloc[0]["fps"] == 650.5


def test_a_broken_metrics_file_does_not_take_the_table_down(tiny_checkpoints):
    (tiny_checkpoints / "breast_us_seg" / "efsnet" / "metrics.json").write_text(json.dumps({"task": "x"}))
    df = collect(root=tiny_checkpoints)
    assert df["protocol"].str.contains("unreadable").any()


def test_build_writes_the_table_the_app_reads(tmp_path, tiny_checkpoints):
    from leaderboard.build import main as build
    from leaderboard.results import load_built

    out = build(["--out", str(tmp_path / "table.csv")])
    built, live = load_built(out), collect()
    assert list(built.columns) == COLUMNS and len(built) == len(live)
    for col in NUMERIC:
        assert pd.api.types.is_numeric_dtype(built[col]), col
    pd.testing.assert_series_equal(built["dice"], live["dice"], check_dtype=False)


def test_the_shipped_table_is_current():
    """The app serves ``leaderboard/table.csv`` as built: a release that changes a card, a latency or a cited row
    without ``python -m leaderboard.build`` would show the previous numbers (it happened: issue 15's multitask rows)."""
    from leaderboard.results import BUILT, load_built

    shipped, live = load_built(BUILT), collect()
    key = ["task", "model", "split"]
    stale = set(map(tuple, live[key].astype(str).to_numpy())) ^ set(map(tuple, shipped[key].astype(str).to_numpy()))
    assert not stale, f"rows differ; run python -m leaderboard.build: {sorted(stale)[:4]}"
    pd.testing.assert_frame_equal(shipped.reset_index(drop=True), live.reset_index(drop=True), check_dtype=False,
                                  check_exact=False, rtol=1e-9)  # fmt: skip


def test_log_ticks_are_labelled_in_full():
    from leaderboard.dashboard import log_ticks, short_number

    assert [short_number(t) for t in log_ticks(1.7e5, 3.4e7)][:3] == ["200k", "500k", "1M"]
    assert len(log_ticks(13.7, 13.7)) >= 2 and short_number(0.5) == "0.5" and short_number(2e9) == "2G"


def test_filters_search_and_pareto_front():
    import numpy as np

    from demo.leaderboard_tab import filter_table, load_table
    from leaderboard.dashboard import pareto_front, tradeoff_figure

    df = collect(root="/nonexistent")
    lung = filter_table(df, "lung_seg", "publication", "idiap")
    assert len(lung) and (lung["task"] == "lung_seg").all() and lung["citation"].str.contains("Idiap").all()
    assert len(filter_table(df, query="no such words anywhere")) == 0
    # nothing matches: the header stays and the status says so (it read "Could not build the leaderboard (KeyError)")
    table, status, _ = load_table("all", "all", "zzzz", get_results=lambda: df)
    assert table.empty and {"task", "model", "score"} <= set(table.columns)
    assert status.startswith('No rows match "zzzz"')
    table, status, csv = load_table("skin_lesion", "all", "", get_results=lambda: df)
    assert status == f"{len(table)} rows." and pd.read_csv(csv).shape[0] == len(table)
    assert list(pareto_front(np.array([1.0, 2, 3, 4]), np.array([0.5, 0.4, 0.7, 0.6]))) == [0, 2]
    fig = tradeoff_figure(df, "lung_seg", "params")
    assert any(t.name == "Pareto front" for t in fig.data)
    # every log tick labelled in full ("4" meant 400k), and one y range for a task's two plots
    assert all(label[-1] in "kMG" or label.replace(".", "").isdigit() for label in fig.layout.xaxis.ticktext)
    # a measured row with a latency beside the published ones: its latency plot (one dot) gets the size plot's range
    ours = df[df["task"] == "lung_seg"].head(1).assign(source="measured here", latency_ms=12.0, params=2.4e7)
    both = pd.concat([df, ours], ignore_index=True)
    by_size, by_latency = tradeoff_figure(both, "lung_seg", "params"), tradeoff_figure(both, "lung_seg", "latency_ms")
    assert len(by_latency.data) == 1 and by_latency.layout.yaxis.range == by_size.layout.yaxis.range
    assert by_latency.layout.yaxis.range[1] - by_latency.layout.yaxis.range[0] < 1  # not Plotly's 0-1.6 for one dot
    _, message, _ = load_table(get_results=lambda: 1 / 0)
    assert "Could not build the leaderboard" in message


def test_table_publishes_as_a_hub_dataset(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from hub_server import HubServer

    root = Path(__file__).resolve().parents[1]
    with HubServer() as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_test",
               "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_XET": "1", "PYTHONPATH": str(root)}  # fmt: skip
        out = subprocess.run([sys.executable, "-m", "leaderboard.build", "--out", str(tmp_path / "t.csv"),
                              "--push-to-hub", "tester/leaderboard"], cwd=root, env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        assert hub.repos["tester/leaderboard"].files["leaderboard.csv"] == (tmp_path / "t.csv").read_bytes()


def test_hub_checkpoints_join_the_table(tmp_path, tiny_checkpoints):
    """Hub model repos of ``--hub-owner`` whose metrics differ from the local folder's get rows of their own; a repo
    identical to the local folder adds none; an unreachable Hub costs no retries and adds none."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import time
    from pathlib import Path

    import pandas as pd

    from hub_server import HubServer

    root = Path(__file__).resolve().parents[1]
    changed = tmp_path / "efsnet"
    shutil.copytree(tiny_checkpoints / "breast_us_seg" / "efsnet", changed)
    metrics = json.loads((changed / "metrics.json").read_text())
    metrics["metrics"]["dice"] = 0.9876
    (changed / "metrics.json").write_text(json.dumps(metrics))
    with HubServer() as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_test",
               "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_XET": "1", "PYTHONPATH": str(root),
               "CHECKPOINTS_DIR": str(tiny_checkpoints)}  # fmt: skip

        def run(*args, **extra):
            out = subprocess.run([sys.executable, *args], cwd=root, env={**env, **extra}, capture_output=True,
                                 text=True, timeout=300)  # fmt: skip
            assert out.returncode == 0, out.stderr[-2000:]

        run("-m", "training.push", str(changed), "--repo", "tester/breast-us-seg-efsnet")
        run("-m", "training.push", str(tiny_checkpoints / "lung_seg" / "unet"), "--repo", "tester/lung-seg-unet")
        run("-m", "leaderboard.build", "--out", str(tmp_path / "t.csv"), "--hub-owner", "tester")
        table = pd.read_csv(tmp_path / "t.csv")
        hub_rows = table[table.citation.fillna("").str.startswith("Hub model repo")]
        assert list(hub_rows.citation.str.split(";").str[0]) == ["Hub model repo tester/breast-us-seg-efsnet"]
        assert hub_rows.dice.iloc[0] == 0.9876 and hub_rows.source.iloc[0] == "measured here"
        start = time.monotonic()  # the Hub goes away: no ~20 s of retries per repo, the cached repo still counts
        run("-m", "leaderboard.build", "--out", str(tmp_path / "u.csv"), MODEL_SOURCE="hf://tester",
            HF_ENDPOINT="http://127.0.0.1:9")  # fmt: skip
        assert time.monotonic() - start < 60
        cached = pd.read_csv(tmp_path / "u.csv")
        assert cached.citation.fillna("").str.startswith("Hub model repo tester/breast-us-seg-efsnet").sum() == 1


def test_latency_is_tied_to_the_weights_or_the_architecture_it_was_measured_on(tmp_path):
    """A speed entry applies to the weights it was measured on; where weights are not shipped, to the architecture
    (config.json); for an ensemble (metrics.json only), to its metrics file. Any change drops the figure."""
    from leaderboard.results import measured_speed, speed_identity

    folder = tmp_path / "m"
    folder.mkdir()
    assert speed_identity(folder) is None
    (folder / "metrics.json").write_text("{}")
    (folder / "config.json").write_text('{"depth": 50}')
    key, digest = speed_identity(folder)
    assert key == "config_sha256"
    speeds = {"t/m": {"latency_ms": 3.0, key: digest}}
    assert measured_speed(speeds, "t/m", folder)["latency_ms"] == 3.0
    (folder / "config.json").write_text('{"depth": 101}')
    assert measured_speed(speeds, "t/m", folder) is None
    (folder / "model.safetensors").write_bytes(b"weights")
    assert speed_identity(folder)[0] == "weights_sha256"


def test_studies_draw_every_figure_from_the_shipped_results():
    """The dashboard's Studies view, called as the tab does (a RunResult, not a dict, reaches each figure)."""
    import json

    from demo.leaderboard_tab import studies

    ablation_bars, adam_sgd, arch, multitask = studies()
    assert "Multitask model, per task" in json.dumps(multitask.to_plotly_json()["layout"])
    assert len(multitask.data[0].x) >= 1 and len(ablation_bars.data) >= 1
    # a detection bar is the drawn box's IoU, the figure the multitask Results tab gives (it was the box head's)
    from leaderboard.results import load_metrics

    tasks = load_metrics("ultrasound_multitask", "busi-hc18-lite1").metrics["tasks"]
    bars = dict(zip(multitask.data[0].x, multitask.data[0].text))
    assert bars["fetal_head_det"] == f"IoU {tasks['fetal_head_det']['iou_mask_box']:.3f}"


def test_served_rows_appear_only_where_test_time_views_are_averaged():
    """A model served without TTA (``tta.json`` views ["id"]: the flip did not fit the latency budget) has no extra
    "as served" rows: its plain rows are what the app serves."""
    from leaderboard.results import RunResult, tta_rows

    def result(views):
        tta = {"views": views, "cv_isic_mean": 0.84, "cv_isic_std": 0.02, "cv_folds": 5, "val_isic_score": 0.85}
        return RunResult.from_dict({"task": "skin_lesion", "variant": "v", "metrics": {}, "tta": tta})

    base = {"model": "Lite1 (ours)", "dataset": "ISIC"}
    assert tta_rows(result(["id"]), base) == []
    rows = tta_rows(result(["id", "h"]), base)
    assert [r["model"] for r in rows] == [
        "Lite1 (ours, as served: 2 test-time views), CV",
        "Lite1 (ours, as served: 2 test-time views)",
    ]


def test_long_model_names_are_shown_whole_and_other_long_text_is_cut_in_display_only():
    """Cutting names to a cell width (head…tail) left 70 of 167 rows unreadable and made some alike ("ResNet-18 (224)
    on…AMNIST" vs "…CMNIST"). Names are sent whole (they wrap in a fixed-width column); other long text (protocol,
    citation) ends in "…" after ``MAX_CHARS`` in the display only; the values sent and the CSV stay whole."""
    import gradio as gr

    from demo.common import readable
    from demo.leaderboard_tab import MAX_CHARS, load_table

    lite1, b4 = "EfficientNet-Lite1 (ImageNet fine-tune)", "EfficientNet-B4 + FPN + 6 heads (BUSI + HC18 in the format)"
    names = [f"{lite1} (ours)", f"{lite1} (ours, 5-fold CV)", f"{b4} (ours): fetal_head_det", "U-Net"]
    protocol = "per-image Dice at original resolution, " * 4
    df = pd.DataFrame({"task": ["skin_lesion"] * 4, "model": names, "source": "measured here", "split": "val",
                       "protocol": protocol})  # fmt: skip
    table, _, csv = load_table(get_results=lambda: df)
    assert sorted(table["model"]) == sorted(names) and sorted(pd.read_csv(csv)["model"]) == sorted(names)
    sent = gr.DataFrame(interactive=False).postprocess(readable(table, cut=MAX_CHARS))
    col = {h: i for i, h in enumerate(sent.headers)}
    shown = sent.metadata["display_value"]
    assert sorted(row[col["model"]] for row in shown) == sorted(names)
    assert all(len(row[col["protocol"]]) <= MAX_CHARS and row[col["protocol"]].endswith("…") for row in shown)
    assert all(row[col["protocol"]] == protocol for row in sent.data)


def test_the_task_column_reads_as_the_tabs_name_it_and_the_csv_keeps_the_key():
    """A newcomer read "breastmnist_standin" in the task column; the table shows the tab's title, the CSV the key."""
    from demo.leaderboard_tab import load_table, task_titles

    df = pd.DataFrame({"task": ["breastmnist_standin", "skin_lesion"], "model": ["a", "b"], "source": "measured here"})
    table, _, csv = load_table(get_results=lambda: df)
    assert list(task_titles(table)["task"]) == ["BreastMNIST-style stand-in (from BUSI)", "Skin lesion (ISIC 2017)"]
    assert list(pd.read_csv(csv)["task"]) == ["breastmnist_standin", "skin_lesion"]
    assert task_titles(pd.DataFrame()).empty


def test_the_table_shows_readable_numbers_but_keeps_them_numeric():
    """Parameters read "70,300,000" (raw "70300000.0" was unreadable on a projector), latency a tenth of a millisecond,
    other numbers up to four decimals, missing values are blank (not "nan"); the values sent, their sort order and
    the CSV stay numeric."""
    import gradio as gr

    from demo.common import readable
    from demo.leaderboard_tab import load_table

    df = pd.DataFrame({"task": ["skin_lesion"] * 3, "model": ["a", "b", "c"], "source": "measured here",
                       "split": ["val", None, "val"], "params": [70_300_000, 178_887, None],
                       "latency_ms": [13.73712, None, 2.5], "isic_score": [0.81234, 0.7, 0.9]})  # fmt: skip
    table, _, _ = load_table(get_results=lambda: df, sort="parameters (fewest first)")
    sent = gr.DataFrame(interactive=False).postprocess(readable(table))
    col = {h: i for i, h in enumerate(sent.headers)}
    shown = sent.metadata["display_value"]
    assert [row[col["params"]] for row in shown] == ["178,887", "70,300,000", ""]
    assert [row[col["latency_ms"]] for row in shown] == ["", "13.7", "2.5"]  # milliseconds to a tenth
    assert [row[col["split"]] for row in shown] == ["", "val", "val"]
    assert [row[col["params"]] for row in sent.data][:2] == [178_887, 70_300_000]


def test_unshipped_recipes_under_cv_join_the_table(tmp_path):
    """Issue 16: CustomNet / ResNet18 keep the seed's validation-chosen weights, so their 5-fold CV recipes (which did
    not ship) join the table from options.csv, one row per recipe and TTA set, named apart and labelled out-of-fold;
    screens (2 folds), fold ensembles and models whose shipped checkpoint has its own CV are left out."""
    from leaderboard.results import recipe_cv_rows

    folder = tmp_path / "skin_lesion"
    folder.mkdir()
    (folder / "options.csv").write_text(
        "model,option,args,image_size,cv_isic_mean,cv_isic_std,cv_folds\n"
        "resnet18,adamw_cosine_ls_trivialaugment_20ep,AdamW...,112,0.7487,0.016,5\n"
        "resnet18,tta_flips4_20ep,the recipe + TTA,112,0.7533,0.021,5\n"
        "resnet18,fold_ensemble_20ep,mean of 5 fold models,112,,,\n"
        "resnet18,baseline,(report recipe),112,,,\n"
        "efficientnet-lite1,screen_sgd,SGD,128,0.79,0.02,2\n"
    )
    rows = recipe_cv_rows(tmp_path)
    name = "ResNet18 (ours, CV, not shipped): Lite1 recipe 20 ep"
    assert [r["model"] for r in rows] == [name, f"{name} + 4-flip TTA"]
    assert rows[1]["isic_score"] == 0.7533 and "out-of-fold" in rows[1]["split"] and "± 0.021" in rows[1]["split"]
    assert recipe_cv_rows(tmp_path / "none") == []


def test_the_seed_study_joins_the_table_as_means_over_seeds(tmp_path):
    """Issue 18: the leaderboard reads ablation_seeds.csv; each protocol x step at 28 px is one row with the mean over
    seeds, its spread, interval and majority-class seeds named in the split; other sizes stay in the tab."""
    from leaderboard.results import collect

    task = tmp_path / "breastmnist_standin"
    task.mkdir()
    (task / "ablation_seeds.csv").write_text(
        "protocol,resolution,step,title,seeds,test_acc_mean,test_acc_std,test_acc_ci95_low,test_acc_ci95_high,"
        "test_auc_mean,test_auc_std,majority_seeds,params\n"
        "adapted,28,bn,+ BatchNorm,5,0.85,0.02,0.83,0.87,0.9,0.01,0,1662386\n"
        "report,28,bn,+ BatchNorm,5,0.74,0.05,0.68,0.80,0.75,0.05,1,1662386\n"
        "adapted,64,bn,+ BatchNorm,5,0.80,0.02,0.78,0.82,0.85,0.01,0,7000000\n"
        "adapted_v1,28,bn,+ BatchNorm,5,0.83,0.05,0.76,0.90,0.85,0.02,0,1662386\n"  # superseded: the tab only
        # a step the latest protocol did not run: its predecessor's row stays, named as such
        "adapted_v2,28,bn,+ BatchNorm,5,0.84,0.05,0.76,0.90,0.85,0.02,0,1662386\n"
        "adapted_v2,28,resnet152,ResNet-152,5,0.77,0.04,0.72,0.82,0.76,0.03,1,58147906\n"
    )
    df = collect(root=tmp_path, published=None, owner="")
    rows = df[df["task"] == "breastmnist_standin"].set_index("model")
    assert sorted(rows.index) == ["+ BatchNorm (ours, adapted to small data, 5 seeds)",
                                  "+ BatchNorm (ours, as in the report, 5 seeds)",
                                  "ResNet-152 (ours, adapted, precise BN only, 5 seeds)"]  # fmt: skip
    adapted = rows.loc["+ BatchNorm (ours, adapted to small data, 5 seeds)"]
    assert adapted["acc"] == 0.85 and adapted["auc"] == 0.9 and adapted["resolution"] == 28
    assert adapted["split"].startswith("test, mean of 5 seeds ± ") and "0.830-0.870" in adapted["split"]
    assert "1 at the majority class" in rows.loc["+ BatchNorm (ours, as in the report, 5 seeds)", "split"]


def test_refresh_keeps_the_chosen_order_and_says_it_re_collected(client):
    """Seen by a newcomer: *Refresh* changed nothing visible ("158 rows." before and after), and it dropped the
    chosen order."""
    table, status, _ = client.predict("all", "all", "", "parameters (fewest first)", api_name="/leaderboard_refresh")
    assert "rows." in status and "Re-collected from the checkpoints at" in status
    params = [row[table["headers"].index("params")] for row in table["data"]]
    values = [float(v) for v in params if v not in (None, "", "NaN") and v == v]
    assert values == sorted(values) and len(values) >= 2


def test_a_tasks_rows_are_scored_by_the_metric_its_published_rows_share():
    """Seen by a newcomer: the published BUSI rows (lesion Dice only) had a blank score and sorted below our EFSNet,
    whose score was the thesis's mean DSC. Now every row of a task is scored by the metric shared with its published
    rows where it has it (``tradeoff_metric``), the primary one otherwise, and rows of one metric sort together; a
    multitask head row without a Dice gets its accuracy or IoU instead of a blank."""
    import pandas as pd

    from demo.leaderboard_tab import load_table

    df = pd.DataFrame([
        {"task": "breast_us_seg", "model": "ours", "source": "measured here", "dsc": 0.74, "lesion_dice": 0.69},
        {"task": "breast_us_seg", "model": "paper", "source": "publication", "lesion_dice": 0.78},
        {"task": "breast_us_seg", "model": "thesis table", "source": "student report", "dsc": 0.75},
        {"task": "ultrasound_multitask", "model": "ours: breast_3cls", "source": "measured here", "acc": 0.84},
    ])  # fmt: skip
    table, _, _ = load_table(get_results=lambda: df)
    rows = {r["model"]: (r["metric"], r["score"]) for _, r in table.iterrows()}
    assert rows["ours"] == ("lesion_dice", 0.69) and rows["paper"] == ("lesion_dice", 0.78)
    assert rows["thesis table"] == ("dsc", 0.75) and rows["ours: breast_3cls"] == ("acc", 0.84)
    busi = list(table[table["task"] == "breast_us_seg"]["model"])
    assert busi == ["paper", "ours", "thesis table"]  # the shared metric first, best first; then the others
    assert "metric_rank" not in table.columns
