"""Leaderboard tab: the comparison dashboard.

*Table*: measured rows (every checkpoint's ``metrics.json``, latency from ``bench.model_speed``) beside cited figures
(``leaderboard/published.csv``), with filters by task and source, a search box, sortable numeric columns and a CSV
download. The table is the file ``python -m leaderboard.build`` wrote (fast start-up), read when the page loads,
never at import; *Refresh* re-collects it from the checkpoints (and the Hub repos of ``MODEL_SOURCE=hf://OWNER``).
*Trade-offs*: each task's primary metric against parameters and CPU latency with the Pareto front. *Studies*: the
OrganSMNIST-style ablation, Adam vs SGD and U-Net vs U-Net++ curves, and the multitask model's per-task bars. A
failure shows a message instead of a table.
"""

from __future__ import annotations

import os
import time

import gradio as gr
import pandas as pd

from demo.common import readable
from leaderboard import ablation, dashboard, lung
from leaderboard import multitask as mt
from leaderboard.results import collect, hub_owner, load_built
from models.registry import TASKS

# one line above the table (the long note pushed it to y 460: five rows on a 720-px screen), the rest below it
INTRO = (
    "Our runs (**measured here**) beside cited figures (**student report**, **publication**). *score* is the metric "
    "named in *metric*; rows with different protocols are not directly comparable."
)
INTRO_MORE = (
    "Numbers **measured here** come from this project's own runs (each checkpoint's `metrics.json`); "
    "**student report** / **publication** rows are cited figures, with their citation and protocol; *unverified* "
    "marks figures not checked against their source. Rows with different protocols (split, classes counted, "
    "hardware) are not directly comparable: read the *split* and *protocol* columns. Latency is batch-1 CPU time "
    "measured by `bench.model_speed` on the stated hardware; published FPS are their authors' GPU figures. *score* is "
    "the metric named in *metric*: the one a task's published rows report where a row has it (BUSI: lesion Dice), "
    "else the task's primary one; rows of one metric sort together. Sort with *Sort by*. The long text columns come "
    "last."
)
LEADING = ["task", "model", "metric", "score", "params", "latency_ms", "source", "split"]  # the first screen
SORTS = {"task, then score": None, "score (best first)": "score", "parameters (fewest first)": "params",
         "latency (fastest first)": "latency_ms"}  # fmt: skip
SOURCES = ["all", "measured here", "student report", "publication"]
TRAILING = ["dataset", "split", "hardware", "citation", "protocol"]  # long text: shown after the numbers
_cache: dict[str, pd.DataFrame] = {}


def default_results() -> pd.DataFrame:
    """The built table when serving the shipped checkpoints, else (a custom ``CHECKPOINTS_DIR``) collected now; with
    ``MODEL_SOURCE=hf://OWNER`` collected once with OWNER's Hub repos merged in."""
    if os.environ.get("CHECKPOINTS_DIR"):
        return collect()
    if "table" not in _cache:
        _cache["table"] = collect() if hub_owner() else load_built()
    return _cache["table"]


def refresh_results() -> pd.DataFrame:
    _cache["table"] = collect()
    return _cache["table"]


def filter_table(df: pd.DataFrame, task: str = "all", source: str = "all", query: str = "") -> pd.DataFrame:
    if task != "all":
        df = df[df["task"] == task]
    if source != "all":
        df = df[df["source"] == source]
    if query and query.strip():  # "unet" finds "U-Net": case, spaces and punctuation are ignored
        text = df.apply(lambda row: _squash(" ".join(map(str, row.to_numpy()))), axis=1)
        for word in query.split():
            df = df[text.loc[df.index].str.contains(_squash(word), regex=False)]
    # columns empty in every row shown go, but not all of them when no row matches (the table kept no header and
    # the score lookup failed: "Could not build the leaderboard (KeyError)")
    return df if df.empty else df.dropna(axis=1, how="all")


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


# a row without its task's metrics is scored by the first of these it has (all higher-is-better): the multitask
# model's classification and box rows had a blank score under "dsc"
FALLBACK_METRICS = ("dice", "dsc", "lesion_dice", "acc", "iou", "auc")


def row_metrics(task: str) -> list[str]:
    """The metrics a row of ``task`` is scored by, in order of preference: the one its published rows share
    (``tradeoff_metric``: BUSI's papers report the lesion Dice, not the thesis's mean DSC), then the primary one."""
    from models.registry import get_task

    if task not in TASKS:
        return list(FALLBACK_METRICS)
    spec = get_task(task)
    first = [m for m in (spec.tradeoff_metric, spec.primary_metric) if m]
    return list(dict.fromkeys(first + list(FALLBACK_METRICS)))


def with_score(df: pd.DataFrame) -> pd.DataFrame:
    """Adds *metric* and *score* to every row: the first metric of ``row_metrics`` the row has, so that a task's rows
    are scored by the same metric wherever they report it (published BUSI rows had a blank score and sorted below
    ours, which had a different metric there), and ``metric_rank`` (its place in that order, to sort by)."""
    df = df.copy()
    metrics, scores, ranks = [], [], []
    for _, row in df.iterrows():
        wanted = row_metrics(row["task"])
        have = [m for m in wanted if m in row and pd.notna(pd.to_numeric(row[m], errors="coerce"))]
        metrics.append(have[0] if have else "none (see its columns)")  # e.g. a speed-only row: not a blank "dsc"
        scores.append(row[have[0]] if have else None)
        ranks.append(wanted.index(have[0]) if have else len(wanted))
    df["metric"], df["score"], df["metric_rank"] = metrics, scores, ranks
    df["score"] = pd.to_numeric(df["score"], errors="coerce")
    return df


def _csv(df: pd.DataFrame) -> str:
    """The table as CSV, named by its content: the same view reuses one file, and the folder stays bounded."""
    import hashlib

    from demo.common import scratch_file

    text = df.to_csv(index=False)
    path = scratch_file("leaderboard", f"leaderboard-{hashlib.sha256(text.encode()).hexdigest()[:12]}.csv")
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


def task_titles(df: pd.DataFrame) -> pd.DataFrame:
    """The task column as the tabs and the *Task* filter name it ("Skin lesion (ISIC 2017)"), not the registry key a
    newcomer cannot read ("breastmnist_standin"); display only: the CSV keeps the keys."""
    if df.empty or "task" not in df:
        return df
    return df.assign(task=[TASKS[k].title if k in TASKS else k for k in df["task"]])


MAX_CHARS = 40  # other text cells (protocol, citation, …) end in "…" after this many characters; names never do
MODEL_WIDTH = "300px"  # the model column: long names wrap onto a second line instead of being cut
# the first screen's columns (LEADING) fit 1280 px with *split* whole; the metric name wraps rather than taking 220 px
LEADING_WIDTHS = ["185px", MODEL_WIDTH, "150px", "84px", "118px", "104px", "128px", "96px"]


def load_table(task: str = "all", source: str = "all", query: str = "", get_results=default_results,
               sort: str = "task, then score"):  # fmt: skip
    """``(table, status, csv path)``: task, model, the primary metric's score, parameters and latency first (the
    first screen at 1280 px), the other metrics after them and the long text last; numbers rounded for display."""
    try:
        df = with_score(filter_table(get_results(), task, source, query))
    except Exception as exc:  # the tab fails soft
        return pd.DataFrame(), f"Could not build the leaderboard ({type(exc).__name__}).", None
    key = SORTS.get(sort)
    if key is None:
        df = df.sort_values(["task", "metric_rank", "score"], ascending=[True, True, False], kind="stable")
    else:
        df = df.sort_values(key, ascending=key != "score", kind="stable", na_position="last")
    first = [c for c in LEADING if c in df.columns]
    last = [c for c in TRAILING if c in df.columns and c not in first]
    shown = df[first + [c for c in df.columns if c not in first and c not in last + ["metric_rank"]] + last]
    if df.empty:
        asked = [f'"{query.strip()}"' if query and query.strip() else "", "" if task == "all" else f"task {task}",
                 "" if source == "all" else f"source {source}"]  # fmt: skip
        return shown, f"No rows match {', '.join(a for a in asked if a)}: clear the search or widen the filters.", None
    shown = shown.round(4)
    if "latency_ms" in shown:  # milliseconds to a tenth: "33.3867" read as false precision
        shown = shown.assign(latency_ms=shown["latency_ms"].round(1))
    return shown, f"{len(df)} rows.", _csv(df)


def tradeoffs(task: str, get_results=default_results):
    df = get_results()
    return dashboard.tradeoff_figure(df, task, "params"), dashboard.tradeoff_figure(df, task, "latency_ms")


def studies():
    steps = ablation.load_steps("breastmnist_standin")
    adam_sgd = [lung.load_run(v) for v in lung.COMPARISONS["Adam vs SGD (U-Net)"]]
    arch = [lung.load_run(v) for v in lung.COMPARISONS["U-Net vs U-Net++ (Adam)"]]
    return (
        ablation.bars_figure("breastmnist_standin", steps, True),
        lung.curves_figure(adam_sgd, "dice"),
        lung.curves_figure(arch, "dice"),
        dashboard.multitask_bars(mt.load_result(TASKS["ultrasound_multitask"].default_variant)),
    )


def build_tab(get_results=default_results) -> None:
    demo = gr.context.Context.root_block
    with gr.Tabs():
        with gr.Tab("Table"):
            gr.Markdown(INTRO)
            with gr.Row():
                # the tab titles, not the registry keys ("skin_lesion") a newcomer does not know
                # titles only: "Breast ultrasound (EFSNet) (breast_us_seg)" ran under the dropdown's arrow
                task = gr.Dropdown([("all", "all"), *((spec.title, key) for key, spec in TASKS.items())],
                                   value="all", label="Task", elem_id="lb-task")  # fmt: skip
                source = gr.Dropdown(SOURCES, value="all", label="Source", elem_id="lb-source")
                query = gr.Textbox(label="Search (Enter)", placeholder="e.g. unet, isic, cpu", elem_id="lb-search")
                sort = gr.Dropdown(list(SORTS), value=next(iter(SORTS)), label="Sort by", elem_id="lb-sort")
            with gr.Row():
                status = gr.Markdown(elem_id="lb-status")
                refresh = gr.Button("Refresh from the checkpoints", size="sm", elem_id="lb-refresh")
                download = gr.DownloadButton("Download CSV", size="sm", elem_id="lb-download")
            # whole model names, wrapped in a fixed-width column: cutting them (head…tail) left 70 of 167 rows
            # unreadable and some alike ("ResNet-18 (224) on…AMNIST" vs "…CMNIST"); other long text is cut by
            # ``readable`` so that a row stays at most two lines
            table = gr.DataFrame(interactive=False, wrap=True, pinned_columns=2,
                                 column_widths=LEADING_WIDTHS, elem_id="leaderboard-table")  # fmt: skip
            gr.Markdown(INTRO_MORE)  # below the table: above it, it pushed the table to the last third of the screen

            def _load(t, s, q, order=next(iter(SORTS))):
                shown, status, csv = load_table(t, s, q, get_results, order)
                return readable(task_titles(shown), cut=MAX_CHARS), status, csv

            def _refresh(t, s, q, order=next(iter(SORTS))):  # keeps the chosen order; says when it re-collected
                refresh_results()
                shown, status, csv = _load(t, s, q, order)
                when = time.strftime("%H:%M:%S UTC", time.gmtime())
                return shown, f"{status} Re-collected from the checkpoints at {when}.", csv

            inputs, outputs = [task, source, query], [table, status, download]
            for control in (task, source, sort):
                control.change(_load, [*inputs, sort], outputs, api_name=False)
            query.submit(_load, [*inputs, sort], outputs, api_name=False)
            refresh.click(_refresh, [*inputs, sort], outputs, api_name="leaderboard_refresh")
            demo.load(_load, inputs, outputs, api_name="leaderboard")
        with gr.Tab("Trade-offs"):
            gr.Markdown("Each task's primary metric against model size and measured CPU latency; the dashed line is "
                        "the Pareto front (no other row is both smaller/faster and better).")  # fmt: skip
            which = gr.Dropdown([(spec.title, name) for name, spec in TASKS.items() if spec.shown_in is None],
                                value="lung_seg", label="Task", elem_id="lb-tradeoff-task")  # fmt: skip
            with gr.Row():
                by_params = gr.Plot(label="vs parameters", elem_id="lb-params")
                by_latency = gr.Plot(label="vs latency", elem_id="lb-latency")

            def _tradeoffs(t):
                return tradeoffs(t, get_results)

            which.change(_tradeoffs, [which], [by_params, by_latency], api_name=False)
            demo.load(_tradeoffs, [which], [by_params, by_latency], api_name=False)
        with gr.Tab("Studies"):
            with gr.Row():
                ladder = gr.Plot(label="Ablation progression (BUSI stand-in)", elem_id="lb-ablation")
                per_task = gr.Plot(label="Multitask, per task", elem_id="lb-multitask")
            with gr.Row():
                adam_sgd = gr.Plot(label="Adam vs SGD (U-Net)", elem_id="lb-adam-sgd")
                arch = gr.Plot(label="U-Net vs U-Net++", elem_id="lb-arch")
            demo.load(studies, None, [ladder, adam_sgd, arch, per_task], api_name=False)
