"""The OrganSMNIST ablation's figures and tables (SYSTEMS.md §3), from ``checkpoints/<task>/<step>/``. Plotly + pandas,
no gradio.

Two datasets can be shown: ``organsmnist`` (a run on the official file, when someone has trained one) and
``breastmnist_standin`` (the BUSI-built stand-in run here). Every series carries its dataset and source in its name.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from leaderboard.plots import LEGEND_BELOW, OKABE_ITO, colour_key, confusion_heatmap, wrap_title
from leaderboard.results import RunResult
from models.hub import checkpoints_root
from models.registry import (
    ABLATION_ADAPTED_SHOWN,
    ABLATION_SHIPPED_ONLY,
    ABLATION_STEPS,
    ABLATION_SUPERSEDED,
    ABLATION_TITLES,
    get_task,
)

STEP_ORDER = ABLATION_STEPS  # the ladder and its titles: models.registry, their one definition
STEP_TITLES = ABLATION_TITLES
SHIPPED_ONLY = tuple(ABLATION_ADAPTED_SHOWN.values())  # shipped runs that are no ladder step (bn-adapted)
MODEL_TITLES = {**STEP_TITLES, **{k: v.title for k, v in ABLATION_SHIPPED_ONLY.items()}}
# the report's table (SYSTEMS.md §3; OrganSMNIST v2 file): step -> (train, val, test) accuracy
REPORT = {
    "base": (0.774, 0.817, 0.680),
    "es": (0.811, 0.836, 0.685),
    "big": (0.961, 0.871, 0.731),
    "aug": (0.877, 0.889, 0.738),
    "bn": (0.936, 0.900, 0.765),
    "ensemble": (0.956, 0.924, 0.811),
}
REPORT_VAL_RESNETS = {"resnet50": 0.912, "resnet101": 0.897, "resnet152": 0.892}
REPORT_SOURCE = "student report (OrganSMNIST v2, SYSTEMS.md §3)"
PALETTE = [*OKABE_ITO, "#7f7f7f"]


def dataset_label(task: str) -> str:
    return "OrganSMNIST" if task == "organsmnist" else "BreastMNIST-style stand-in (BUSI)"


def load_steps(task: str, root: Path | None = None, shipped: bool = False) -> dict[str, dict]:
    """``{step: {"metrics": RunResult, "steps": DataFrame | None, "history": DataFrame | None, "has_weights",
    "folder"}}``; ``shipped``: also the shipped runs that are no ladder step (``SHIPPED_ONLY``)."""
    base = (root or checkpoints_root()) / task
    out = {}
    for step in (*STEP_ORDER, *(SHIPPED_ONLY if shipped else ())):
        folder = base / step
        if not (folder / "metrics.json").exists():
            continue
        out[step] = {
            "metrics": RunResult.load(folder),
            "steps": pd.read_csv(folder / "steps.csv") if (folder / "steps.csv").exists() else None,
            "history": pd.read_csv(folder / "history.csv") if (folder / "history.csv").exists() else None,
            "has_weights": (folder / "model.safetensors").exists(),
            "folder": folder,
        }
    return out


def curves_figure(task: str, steps: dict[str, dict], which: str = "acc") -> go.Figure:
    """Smoothed (60-step moving average) train-batch and cycled val-batch accuracy per optimiser step, per variant."""
    fig = go.Figure()
    key = []  # the colour of each step, in the title: in view at 1280x720 (the legend sits below the plot)
    for i, (step, run) in enumerate(steps.items()):
        df = run["steps"]
        if df is None:
            continue
        color = PALETTE[i % len(PALETTE)]
        title = STEP_TITLES[step]
        key.append((color, title))
        fig.add_scatter(
            x=df["step"], y=df[f"train_{which}_smooth"], name=f"{title}: train", line=dict(color=color, dash="dash")
        )
        fig.add_scatter(x=df["step"], y=df[f"val_{which}_smooth"], name=f"{title}: val", line=dict(color=color))
    fig.update_layout(
        title=wrap_title(
            f"{dataset_label(task)}, measured here: {'accuracy' if which == 'acc' else 'loss'} per "
            "step (60-step moving average; dashed: the step's training batch, solid: one validation batch, "
            "taken in turn)"
        )
        + (colour_key(key) if key else ""),
        xaxis_title="optimiser step",
        yaxis_title="accuracy" if which == "acc" else "cross-entropy",
        legend=LEGEND_BELOW,
        margin=dict(l=40, r=10, t=110, b=40),
        height=620,
        title_font_size=17,
    )
    return fig


def bars_figure(task: str, steps: dict[str, dict], show_report: bool = True) -> go.Figure:
    """Train / val / test accuracy per step (bars, measured here) and the report's table (markers)."""
    fig = go.Figure()
    names = [STEP_TITLES[s] for s in steps]
    for split, color in (("train", OKABE_ITO[5]), ("val", OKABE_ITO[1]), ("test", OKABE_ITO[0])):
        fig.add_bar(
            x=names,
            y=[run["metrics"].splits[split]["acc"] for run in steps.values()],
            name=f"{split} ({dataset_label(task)}, measured here)",
            marker_color=color,
        )
    other = task != "organsmnist"  # the report's table is OrganSMNIST's: beside the stand-in, a different dataset
    if show_report:
        shown = [s for s in STEP_ORDER if s in steps or not steps]
        for k, (split, symbol) in enumerate((("train", "triangle-up"), ("val", "diamond"), ("test", "star"))):
            # the report gives the ResNets' validation accuracy only
            values = {s: REPORT[s][k] for s in shown if s in REPORT} | (
                {s: v for s, v in REPORT_VAL_RESNETS.items() if s in shown} if split == "val" else {}
            )
            order = [s for s in STEP_ORDER if s in values]
            fig.add_scatter(
                x=[STEP_TITLES[s] for s in order],
                y=[values[s] for s in order],
                mode="markers",
                marker=dict(symbol=symbol, size=11, color="#e6550d", line=dict(width=1, color="black")),
                name=f"{split}: {REPORT_SOURCE}" + (", a different dataset" if other else ""),
            )
    bars = "bars: measured here" if steps else "no run here"
    report = "; markers: the report's OrganSMNIST table" + (", another dataset" if other else "") if show_report else ""
    fig.update_layout(
        barmode="group",
        title=wrap_title(f"{dataset_label(task)}: accuracy per step ({bars}{report})"),
        # the ladder's order, whichever trace comes first
        xaxis=dict(automargin=True, categoryorder="array", categoryarray=[STEP_TITLES[s] for s in STEP_ORDER]),
        yaxis=dict(title="accuracy", range=[0, 1.06]),  # room for the markers at 1.0
        legend=LEGEND_BELOW,
        margin=dict(l=40, r=10, t=100, b=40),
        height=560,
    )
    return fig


def confusion_figure(task: str, steps: dict[str, dict], step: str, split: str) -> go.Figure:
    run = steps.get(step)
    cm = run["metrics"].splits[split]["confusion_matrix"] if run else None
    title = f"Confusion matrix: {STEP_TITLES.get(step, step)}, {split} split ({dataset_label(task)})"
    return confusion_heatmap(cm, list(get_task(task).labels), cm, title)


def p_text(p: float) -> str:
    """A p-value as read: "p 0.03", or "p < 0.01" (it read "p 0.00")."""
    return "p < 0.01" if p < 0.01 else f"p {p:.2f}"


def majority_note(task: str, confusion) -> str:
    """ "always <class>" for a run whose test predictions are all one class (``at_majority``), else "both classes"
    (or "" without a confusion matrix)."""
    from models.cls_metrics import at_majority

    if confusion is None:
        return ""
    if not at_majority(confusion):
        return "several classes" if len(confusion) > 2 else "both classes"
    labels = list(get_task(task).labels or [])
    column = int(np.argmax(np.asarray(confusion).sum(0)))
    name = labels[column] if column < len(labels) else f"class {column}"
    return f"always {name.replace('normal, benign', 'normal or benign')}"


def results_table(task: str, steps: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for step, run in steps.items():
        r = run["metrics"]
        s, tr = r.splits, r.training
        rows.append(
            {
                "step": STEP_TITLES[step],
                "dataset / source": f"{dataset_label(task)}, measured here",
                "params": r.params,
                "train acc": s["train"]["acc"],
                "val acc": s["val"]["acc"],
                "test acc": s["test"]["acc"],
                # seen by a newcomer: five steps at exactly 0.7308, and nothing said they always answer "benign"
                "test answers": majority_note(task, s["test"].get("confusion_matrix")),
                "test F1 (weighted)": s["test"]["f1_weighted"],
                "test AUC": s["test"]["auc"],
                "stop epoch": tr.get("stop_epoch"),
                "train s": tr.get("train_wall_time_s"),
                "weights shipped": "yes" if run["has_weights"] else "no",
            }
        )
    return pd.DataFrame(rows)


def report_table() -> pd.DataFrame:
    rows = []
    for step in STEP_ORDER:
        if step in REPORT:
            tr, va, te = REPORT[step]
            rows.append({"step": STEP_TITLES[step], "train acc": tr, "val acc": va, "test acc": te})
        elif step in REPORT_VAL_RESNETS:
            rows.append({"step": STEP_TITLES[step], "val acc": REPORT_VAL_RESNETS[step]})
    df = pd.DataFrame(rows)
    df.insert(1, "dataset / source", REPORT_SOURCE)
    return df


# --- issue 18: seeds, protocols, resolutions (training.ablate's ablation_seeds.csv / ablation_seed_curves.csv) ---


def medmnist_v2_breast() -> list[tuple[str, int, float, float, bool]]:
    """MedMNIST v2's BreastMNIST rows as ``(name, resolution, AUC, ACC, checked)``, from the leaderboard's
    ``published.csv`` (their one home; official 28 px file with its own split: a different split and crop from our
    BUSI-built stand-in). "checked" rows were matched to the paper's cell by an independent source."""
    from leaderboard.results import PUBLISHED

    df = pd.read_csv(PUBLISHED)
    rows = df[(df["task"] == "breastmnist_standin") & (df["source"] == "publication")]
    return [(m.replace(" on BreastMNIST", ""), int(r), float(auc), float(acc), not bool(u))
            for m, r, auc, acc, u in zip(rows["model"], rows["resolution"], rows["auc"], rows["acc"],
                                         rows["unverified"])]  # fmt: skip


MEDMNIST_V2_SOURCE = "MedMNIST v2 BreastMNIST (Yang et al. 2023, Table 3)"  # the official file: a different split
MEDMNIST_PLUS_NOTE = (
    "MedMNIST+ (Doerrich et al. 2024) reports BreastMNIST at 28/64/128/224 px only as a figure image in its repository "
    "(benchmark_results_breastmnist.png), which could not be read here; its rows are left out rather than guessed."
)
PROTOCOL_DASH = {"report": "solid", "adapted": "dash", "adapted_v2": "dashdot", "adapted_v1": "dot"}


def load_seed_tables(task: str, root: Path | None = None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(ablation_seeds.csv, ablation_seed_curves.csv)`` of ``task`` (``None`` where absent)."""
    base = (root or checkpoints_root()) / task
    table = pd.read_csv(base / "ablation_seeds.csv") if (base / "ablation_seeds.csv").exists() else None
    curves = pd.read_csv(base / "ablation_seed_curves.csv") if (base / "ablation_seed_curves.csv").exists() else None
    return table, curves


SCREEN_FILE = "protocol_cv_screen.csv"  # training.ablate_cv: changes to the adapted protocol scored by CV


def protocol_screen_note(task: str, root: Path | None = None) -> str:
    """What the cross-validated screens of changes to the adapted protocol found (``protocol_cv_screen.csv``: the
    out-of-fold accuracy on the training split of each change beside the protocol as it was, ``ref``, per size): the
    changes adopted and those not, or "" where no screen ran."""
    path = (root or checkpoints_root()) / task / SCREEN_FILE
    if not path.exists():
        return ""
    rows = pd.read_csv(path)
    refs = {int(r.resolution): r for r in rows[rows["candidate"] == "ref"].itertuples()}
    others = rows[rows["candidate"] != "ref"].sort_values("oof_acc_mean", ascending=False)
    if not refs or others.empty:
        return ""
    first = next(iter(refs.values()))
    adopted_any = others[others["adopted"].astype(str).str.startswith("yes")]
    on_top = adopted_any["change"].str.startswith("on top of ")  # adopted in a later round: said after its round
    adopted, adopted_later = adopted_any[~on_top], adopted_any[on_top]
    parts = [f"Screened by 5-fold CV on the training split (step {STEP_TITLES.get(first.step, first.step)}, "
             f"{first.seeds} seeds; out-of-fold accuracy, the protocol before the change in brackets)."]  # fmt: skip
    for change, at in adopted.groupby("change", sort=False):
        sizes = ", ".join(f"{r.oof_acc_mean:.3f} at {r.resolution} px ({refs[int(r.resolution)].oof_acc_mean:.3f})"
                          for r in at.sort_values("resolution").itertuples() if int(r.resolution) in refs)  # fmt: skip
        parts.append(f"**Adopted: {change.removeprefix('+ ')}**, {sizes}.")
    pending = others[others["adopted"].astype(str).str.startswith("pending")]  # adopted, its ladder not yet rerun
    rejected = others[~others.index.isin(adopted_any.index) & ~others.index.isin(pending.index)]
    later = rejected["change"].str.startswith("on top of ")  # a second round, screened on the adopted protocol
    for rows, first_round in ((rejected[~later], True), (rejected[later], False)):
        if rows.empty:
            continue
        one_size = rows["resolution"].nunique() == 1
        at = int(rows["resolution"].iloc[0])
        tried = "; ".join(f"{o.change.split(': ', 1)[-1].removeprefix('+ ')}: {o.oof_acc_mean:.3f}"
                          + ("" if one_size else f" at {o.resolution} px") for o in rows.itertuples())  # fmt: skip
        if first_round:
            before = f"{refs[at].oof_acc_mean:.3f} as it was at {at} px" if one_size and at in refs else "as it was"
            parts.append(f"Not adopted ({before}): {tried}.")
        else:
            base = rows["change"].iloc[0].removeprefix("on top of ").split(":")[0]
            now = adopted[adopted["resolution"] == at]["oof_acc_mean"]
            parts.append(f"Then, on top of {base}" + (f" ({now.iloc[0]:.3f} at {at} px)" if len(now) else "")
                         + f", not adopted: {tried}.")  # fmt: skip
    for o in adopted_later.sort_values("oof_acc_mean").itertuples():  # in the order they were adopted
        base, change = o.change.removeprefix("on top of ").split(": ", 1)
        before = adopted[adopted["resolution"] == o.resolution]["oof_acc_mean"]
        parts.append(f"**Then adopted, on top of {base}: {change.removeprefix('+ ')}**, {o.oof_acc_mean:.3f} at "
                     f"{o.resolution} px" + (f" ({before.iloc[0]:.3f})" if len(before) else "") + ".")  # fmt: skip
    for o in pending.itertuples():
        parts.append(f"**Adopted for the next rerun** ({o.adopted.removeprefix('pending').strip(' ;:')}): "
                     f"{o.change.split(': ', 1)[-1].removeprefix('+ ')}, {o.oof_acc_mean:.3f} at {o.resolution} px; "
                     "the figures here are of the protocol before it.")  # fmt: skip
    parts.append("A change needed +0.01 over the protocol it was added to; the test split was not read for it.")
    return " ".join(parts)


def protocol_rank(protocol: str) -> int:
    """The bars' order and colour: the registry's order (the report's protocol, the adapted one before precise BN,
    then as it is now), the same as the tab's protocol buttons."""
    from models.registry import ABLATION_PROTOCOLS

    order = list(ABLATION_PROTOCOLS)
    return order.index(protocol) if protocol in order else len(order)


def protocol_title(protocol: str) -> str:
    from models.registry import ABLATION_PROTOCOLS

    return ABLATION_PROTOCOLS.get(protocol, (protocol,))[0]


def protocol_phrase(protocol: str) -> str:
    """The title inside a sentence: "adapted, without precise BN" (only the first letter lowered)."""
    title = protocol_title(protocol)
    return title[:1].lower() + title[1:]


def twice_superseded(present: set[str]) -> set[str]:
    """The protocols whose successor is itself superseded by one of ``present``: the bars show a change's effect (a
    protocol beside the one that replaced it), not every generation (four bars per step were too thin to read); the
    seed table keeps them all."""
    from models.registry import protocol_successors

    return {p for p in ABLATION_SUPERSEDED if set(protocol_successors(p)[1:]) & present}


def seed_bars_figure(task: str, table: pd.DataFrame | None, resolution: int = 28) -> go.Figure:
    """Test accuracy per step, mean over seeds with the 95 % interval as error bars, one bar per protocol; majority-
    class seeds are written on the bar; the MedMNIST v2 ResNet-18 (28) accuracy is a dotted reference line."""
    fig = go.Figure()
    if table is not None and len(table):
        at = table[table["resolution"] == resolution]
        at = at[[p not in twice_superseded(set(at["protocol"])) for p in at["protocol"]]]
        ordered = sorted(at.groupby("protocol", sort=False), key=lambda g: protocol_rank(g[0]))
        for protocol, rows in ordered:
            i = protocol_rank(protocol)  # one colour per protocol whichever are present
            rows = rows.set_index("step").reindex([s for s in STEP_ORDER if s in set(rows["step"])])
            fig.add_bar(
                x=[STEP_TITLES[s] for s in rows.index],
                y=rows["test_acc_mean"],
                error_y=dict(type="data", symmetric=False, array=rows["test_acc_ci95_high"] - rows["test_acc_mean"],
                             arrayminus=rows["test_acc_mean"] - rows["test_acc_ci95_low"], thickness=2),
                text=[f"{m:.3f}" + (f" ({k}/{n} majority)" if k else "") for m, k, n in
                      zip(rows["test_acc_mean"], rows["majority_seeds"], rows["seeds"])],
                # at the foot of the bar, upright: never under the interval's whiskers (which sit near its top)
                textposition="inside", insidetextanchor="start", textangle=-90,
                name=f"{protocol_title(protocol)} ({int(rows['seeds'].max())} seeds, measured here)",
                marker_color=OKABE_ITO[i],
            )  # fmt: skip
    if task != "organsmnist":  # the reference is BreastMNIST's
        ref = next(r for r in medmnist_v2_breast() if r[0] == "ResNet-18 (28)")
        fig.add_hline(y=ref[3], line=dict(dash="dot", color="#555"), annotation_text=f"{ref[0]} {ref[3]:.3f}: "
                      "MedMNIST v2 BreastMNIST, different split", annotation_position="top left")  # fmt: skip
    fig.update_layout(
        barmode="group",
        title=wrap_title(f"{dataset_label(task)}, {resolution} px: test accuracy, mean and 95 % interval over seeds"),
        yaxis=dict(title="test accuracy", range=[0, 1.0]),  # bars from 0: lengths compare honestly
        legend=LEGEND_BELOW,
        margin=dict(l=40, r=10, t=80, b=40),
        height=540,
    )
    return fig


def seed_curves_figure(task: str, curves: pd.DataFrame | None, protocol: str = "adapted", resolution: int = 28):
    """Validation accuracy per epoch: the mean over seeds (line) and +- one std (band), per step."""
    fig = go.Figure()
    if curves is not None and len(curves):
        at = curves[(curves["protocol"] == protocol) & (curves["resolution"] == resolution)]
        for i, step in enumerate(s for s in STEP_ORDER if s in set(at["step"])):
            rows = at[at["step"] == step].sort_values("epoch")
            color = PALETTE[i % len(PALETTE)]
            upper, lower = rows["val_acc_mean"] + rows["val_acc_std"], rows["val_acc_mean"] - rows["val_acc_std"]
            fig.add_scatter(x=list(rows["epoch"]) + list(rows["epoch"])[::-1], y=list(upper) + list(lower)[::-1],
                            fill="toself", fillcolor=color, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                            showlegend=False)  # fmt: skip
            fig.add_scatter(x=rows["epoch"], y=rows["val_acc_mean"], name=STEP_TITLES[step], line=dict(color=color))
    from models.registry import ABLATION_PROTOCOLS

    beyond = ABLATION_PROTOCOLS.get(protocol, ("", {}, {}, {}))[3]
    after = beyond.get("precise_bn") or protocol in ABLATION_SUPERSEDED
    acts_after = "precise BN and the mirror TTA act" if beyond.get("tta") else "precise BN acts"
    # the dataset is in the tab's note and the bars' title: with it and the caveats the title ran to five lines
    title = wrap_title(f"{protocol_title(protocol)}, {resolution} px: validation accuracy per epoch, "
                       "mean ± std over seeds", width=60)  # fmt: skip
    caveat = wrap_title(
        "A seed drops out when it stops early"
        + (f"; {acts_after} after training, so these are also the curves without it" if after else ""),
        width=80,  # smaller type than the title (half the page wide)
    )
    if curves is None or not len(curves) or not len(at):
        fig.add_annotation(text=f"No run of this protocol at {resolution} px: choose another protocol or size",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)  # fmt: skip
        fig.update_xaxes(visible=False)  # no stray -1..6 scales around the message
        fig.update_yaxes(visible=False)
    lines = title.count("<br>") + 1 + (caveat.count("<br>") + 1) * 0.75
    fig.update_layout(
        title=dict(text=title, subtitle=dict(text=caveat, font=dict(size=12))),
        xaxis_title="epoch",
        yaxis_title="validation accuracy",
        legend=LEGEND_BELOW,
        margin=dict(l=40, r=10, t=int(40 + 24 * lines), b=40),  # the title's and the caveat's lines above the plot
        height=560,
    )
    return fig


def same_points(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two protocols' rows of one step have the same sizes and the same mean accuracy at each."""
    a, b = a.sort_values("resolution"), b.sort_values("resolution")
    return list(a["resolution"]) == list(b["resolution"]) and np.allclose(a["test_acc_mean"], b["test_acc_mean"])


def resolution_figure(task: str, table: pd.DataFrame | None) -> go.Figure:
    """Test accuracy against input resolution (MedMNIST+'s axis), per step and protocol, with the MedMNIST v2 rows
    at 28 and 224 px as reference markers (different split)."""
    fig = go.Figure()
    if table is not None and len(table):
        groups = dict(list(table.groupby(["protocol", "step"], sort=False)))
        for i, ((protocol, step), rows) in enumerate(groups.items()):
            if rows["resolution"].nunique() < 2:
                continue
            successor = groups.get((ABLATION_SUPERSEDED.get(protocol), step))
            if successor is not None and same_points(rows, successor):
                continue  # a step the change did not touch (no BatchNorm): one line, not two on top of each other
            rows = rows.sort_values("resolution")
            # each point names what ran at its size (the axis's ensemble has the members trained there)
            titles = rows["title"] if "title" in rows else None
            fig.add_scatter(
                x=rows["resolution"], y=rows["test_acc_mean"], mode="lines+markers",
                error_y=dict(type="data", array=rows["test_acc_std"]),
                text=titles,
                hovertemplate=None if titles is None else "%{text}, %{x} px: %{y:.3f}<extra></extra>",
                name=f"{STEP_TITLES[step]}, {protocol_phrase(protocol)}"
                + (" (its members differ by size)" if titles is not None and titles.nunique() > 1 else ""),
                line=dict(color=PALETTE[i % len(PALETTE)], dash=PROTOCOL_DASH.get(protocol, "solid")),
            )  # fmt: skip
    published = medmnist_v2_breast() if task != "organsmnist" else []  # BreastMNIST's rows
    refs = [(n, r, a) for n, r, _, a, _ in published if n.startswith("ResNet")]
    if refs:  # one trace, each star labelled beside it (two at one size: one above, one below)
        fig.add_scatter(x=[r for _, r, _ in refs], y=[a for _, _, a in refs], mode="markers+text",
                        marker=dict(symbol="star", size=13, color="#555"), text=[n for n, _, _ in refs],
                        # the 28-px labels left of their stars, in the axis's margin (on the right they lay over
                        # the curves); the 224-px ones above and below theirs
                        textposition=["middle left" if r < 100 else
                                      ("bottom " if any(q[1] == r for q in refs[:k]) else "top ") + "left"
                                      for k, (_, r, _) in enumerate(refs)],
                        hovertemplate="%{text} (%{x} px): %{y:.3f}<extra></extra>",
                        name="MedMNIST v2 BreastMNIST, ResNets (different split)")  # fmt: skip
    fig.update_layout(
        title=wrap_title(f"{dataset_label(task)}: test accuracy against input size (mean ± std over seeds)"),
        xaxis=dict(
            title="input size (px, log scale)",
            type="log",
            tickvals=[28, 64, 128, 224],
            range=[math.log10(13), math.log10(280)] if refs else None,
        ),  # room for the 28-px labels
        yaxis=dict(title="test accuracy"),
        # below the plot in a taller figure: beside it (half a 1280-px page) the legend took half the width, and
        # below it at 560 px the plot was a strip 100 px high
        legend={**LEGEND_BELOW, "font": dict(size=12)},
        margin=dict(l=40, r=10, t=80, b=40),
        height=760,
    )
    return fig


def seed_table_view(table: pd.DataFrame | None) -> pd.DataFrame:
    """The seed table as shown: step, protocol, size, seeds, accuracy / AUC mean ± std, the 95 % interval, majority-
    class seeds, and whether the gain over the previous step is beyond noise (paired t-test, p < 0.05)."""
    if table is None or not len(table):
        return pd.DataFrame()
    view = pd.DataFrame({
        "step": list(table["title"]) if "title" in table else [STEP_TITLES.get(s, s) for s in table["step"]],
        "protocol": [protocol_title(p) for p in table["protocol"]],
        "px": table["resolution"],
        "seeds": table["seeds"],
        "test acc": [f"{m:.3f} ± {s:.3f}" for m, s in zip(table["test_acc_mean"], table["test_acc_std"])],
        "95 % CI": [f"{lo:.3f}–{hi:.3f}" for lo, hi in zip(table["test_acc_ci95_low"], table["test_acc_ci95_high"])],
        "test AUC": [f"{m:.3f} ± {s:.3f}" for m, s in zip(table["test_auc_mean"], table["test_auc_std"])],
        "majority-class seeds": [f"{k}/{n}" for k, n in zip(table["majority_seeds"], table["seeds"])],
        "gain vs previous": ["" if pd.isna(g)
                             else f"{g:+.3f} ({p_text(p)}, {'beyond noise' if b == 'yes' else 'noise'})"
                             for g, p, b in zip(table["acc_gain_vs_previous"], table["paired_p"],
                                                table["beyond_noise"])],
    })  # fmt: skip
    return view


def anchors_table() -> pd.DataFrame:
    # the source once, short (the table's label says "different split"): the full sentence on every row ran past the
    # page at 1280 px and cut off the part that differs, whether a value was checked
    rows = [{"model": name, "px": res, "test AUC": auc, "test acc": acc,
             "source": MEDMNIST_V2_SOURCE,
             "checked against the paper": "yes" if checked else "no, transcribed"}
            for name, res, auc, acc, checked in medmnist_v2_breast()]  # fmt: skip
    return pd.DataFrame(rows)
