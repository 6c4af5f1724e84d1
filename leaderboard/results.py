"""Collect leaderboard rows: every checkpoint's ``metrics.json`` (measured here) plus ``published.csv`` (cited).

No network calls and no gradio. Numeric columns stay numeric (NaN where unknown) so tables sort correctly; rounding
happens only for display.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from models.hub import checkpoint_dir, checkpoints_root, hub_reachable, model_source, repo_id
from models.registry import TASKS, get_task, get_variant

log = logging.getLogger(__name__)

PUBLISHED = Path(__file__).with_name("published.csv")
BUILT = Path(__file__).with_name("table.csv")  # written by ``python -m leaderboard.build``; read by the app at start-up
SPEED = Path(__file__).with_name("speed.json")  # written by the project's own benchmarks (bench/)
# the table's columns, in order, defined once: name -> numeric (numeric columns stay float for sorting)
SCHEMA = {
    "task": False, "model": False, "source": False, "dataset": False, "split": False, "resolution": True,
    "dice": True, "iou": True, "auc": True, "f1_weighted": True, "isic_score": True, "auc_melanoma": True,
    "auc_sk": True, "hd": True, "mre": True, "hc_error_mm": True,
    "dsc": True, "miou": True, "acc": True, "dsc_t": True, "miou_t": True, "lesion_dice": True, "lesion_iou": True,
    "params": True, "latency_ms": True, "fps": True, "hardware": False, "train_time_min": True, "citation": False,
    "unverified": False,
    "protocol": False,
}  # fmt: skip
COLUMNS = list(SCHEMA)
NUMERIC = [name for name, numeric in SCHEMA.items() if numeric]


@dataclass(frozen=True)
class RunResult:
    """One measured run, as a model folder's ``metrics.json`` holds it (the evaluator's output plus the run's training
    block): what the leaderboard, the study figures and the tabs read, instead of each picking keys out of a dict.
    ``metrics`` keeps the evaluator's nested per-class / per-task / per-image detail as it is."""

    task: str
    variant: str
    metrics: dict
    split: str | None = None
    n: int | None = None
    title: str | None = None
    dataset: str | None = None
    resolution: int | None = None
    params: int | None = None
    protocol: str = ""
    training: dict = field(default_factory=dict)
    cv: dict | None = None
    splits: dict | None = None  # per-split metrics where a run scores several (the ablation: train / val / test)
    notes: str = ""
    extra: dict = field(default_factory=dict)  # whatever else the file holds (e.g. the ablation's splits)

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("training", {})
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def load(cls, path: str | Path) -> RunResult | None:
        """The ``metrics.json`` at ``path`` (a file or a model folder), or ``None`` when there is none."""
        path = Path(path)
        path = path / "metrics.json" if path.is_dir() or not path.suffix else path
        return cls.from_dict(json.loads(path.read_text())) if path.exists() else None

    @property
    def display_title(self) -> str:
        """The title users see: the run's own, or the variant's, with how its weights were trained where that is
        not the variant's own recipe (a distilled model names its teacher)."""
        title = self.title or variant_title(self.task, self.variant)
        teacher = self.training.get("distill_model")
        if self.training.get("distill_from") and teacher:
            short = variant_title(self.task, teacher).replace(" (ImageNet fine-tune)", "").replace("EfficientNet-", "")
            title += f" (distilled from {short})"
        return title


def load_metrics(task: str, variant: str) -> RunResult | None:
    """A checkpoint's ``metrics.json`` from the current store, or ``None`` when it has none."""
    return RunResult.load(checkpoint_dir(task, variant) / "metrics.json")


def weights_digest(folder: str | Path) -> str | None:
    """sha256 of a model folder's ``model.safetensors``: ties a speed figure to the exact weights it was measured on."""
    import hashlib

    path = Path(folder) / "model.safetensors"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def speed_identity(folder: str | Path) -> tuple[str, str] | None:
    """What a latency figure of this folder is tied to: ``("weights_sha256", sha)`` of its weights; for a folder whose
    weights are not shipped, ``("config_sha256", sha)`` of its ``config.json`` (latency depends on the architecture
    and input size, not on weight values); for an ensemble (``metrics.json`` only), ``("metrics_sha256", sha)``."""
    import hashlib

    for name, key in (("model.safetensors", "weights_sha256"), ("config.json", "config_sha256"),
                      ("metrics.json", "metrics_sha256")):  # fmt: skip
        path = Path(folder) / name
        if path.exists():
            return key, hashlib.sha256(path.read_bytes()).hexdigest()
    return None


def measured_speed(speeds: dict, key: str, folder: Path) -> dict | None:
    """The benchmark entry of ``key`` when it was measured on this very folder (so another checkpoint store, such as
    the tests' tiny models, never inherits the shipped models' latency)."""
    entry, identity = speeds.get(key), speed_identity(folder)
    return entry if entry and identity and entry.get(identity[0]) == identity[1] else None


def variant_title(task: str, variant: str) -> str:
    try:
        return get_variant(task, variant).title or variant
    except KeyError:
        return variant


def hc_errors_by_source(result: RunResult | None) -> dict[str, float]:
    """Mean held-out head-circumference error (mm) per source of a multitask model's metrics: ``"mask"`` (the
    ellipse fitted to a head segmentation) and ``"points"`` (the axes head). The app and the table use the lower."""
    errors = {}
    for task in (result.metrics.get("tasks", {}) if result else {}).values():
        if task.get("hc_abs_error_mm") is not None:
            errors["mask" if task.get("task_name") == "segmentation" else "points"] = task["hc_abs_error_mm"]
    return errors


def row_from_metrics(result: RunResult, speed: dict | None = None) -> dict:
    m, tr = result.metrics, result.training
    speed = speed or {}
    tumour = m.get("tumour_images", {})
    return {
        "task": result.task,
        "model": f"{result.display_title} (ours)",
        "source": "measured here",
        "dataset": result.dataset or get_task(result.task).dataset,
        "split": result.split,
        "resolution": result.resolution,
        **{
            k: m.get(k)
            for k in ("dice", "iou", "auc", "f1_weighted", "isic_score", "auc_melanoma", "auc_sk", "dsc", "miou")
        },
        **{k: m.get(k) for k in ("acc", "dsc_t", "miou_t", "hd", "mre")},
        "hc_error_mm": min(hc_errors_by_source(result).values(), default=None),  # the source the app uses
        "lesion_dice": tumour.get("lesion_dice"),
        "lesion_iou": tumour.get("lesion_iou"),
        "params": result.params,
        "latency_ms": speed.get("latency_ms"),
        "fps": speed.get("fps"),
        "hardware": f"trained: {tr.get('hardware')}"
        + (f"; latency/FPS: {speed['hardware']}, batch 1" if speed else "")
        + (f" ({speed['checkpoint']})" if speed.get("checkpoint", "shipped") != "shipped" else ""),
        "train_time_min": tr.get("train_wall_time_s", float("nan")) / 60,
        "citation": f"this project, git {tr.get('git_commit', '?')}",
        "unverified": False,
        "protocol": result.protocol,
    }


def cv_rows(result: RunResult, base: dict) -> list[dict]:
    """A cross-validated model's out-of-fold row (``metrics.json``'s ``cv`` block): the estimate no choice saw."""
    cv = result.cv
    if not cv:
        return []
    std = cv.get("isic_score_std")
    return [{**base, "model": base["model"].replace("(ours)", f"(ours, {cv['folds_done']}-fold CV)"),
             "split": f"out-of-fold, {cv['folds_done']} of {cv.get('folds_planned', 5)} folds of the training set "
                      f"(n={cv['n_oof']}); ISIC score = mean over folds" + (f" ± {std:.3f}" if std else ""),
             "isic_score": cv["isic_score_mean"], "auc_melanoma": cv.get("pooled_oof_auc_melanoma"),
             "auc_sk": cv.get("pooled_oof_auc_sk"), "acc": None, "dataset": cv.get("split", base["dataset"]),
             "train_time_min": cv.get("train_minutes_total")}] + tta_rows(result, base) \
        + meta_rows(result, base)  # fmt: skip


def tta_rows(result: RunResult, base: dict) -> list[dict]:
    """The configuration the app serves when it averages test-time views (``metrics.json``'s ``tta`` block): its
    out-of-fold CV score and, reported only, its validation score."""
    tta = result.extra.get("tta")
    if not tta or len(tta["views"]) < 2:  # one view: served as the plain rows say
        return []
    views = len(tta["views"])
    model = base["model"].replace("(ours)", f"(ours, as served: {views} test-time views)")
    std = tta.get("cv_isic_std")
    return [{**base, "model": model + ", CV", "isic_score": tta["cv_isic_mean"], "auc_melanoma": None, "auc_sk": None,
             "acc": None, "latency_ms": tta.get("latency_ms"),
             "dataset": (result.cv or {}).get("split", base["dataset"]),
             "split": f"out-of-fold, {tta.get('cv_folds', 5)} of 5 folds of the training set; ISIC score = mean over "
                      "folds"
                      + (f" ± {std:.3f}" if std else "")},
            {**base, "model": model, "isic_score": tta["val_isic_score"], "auc_melanoma": tta.get("val_auc_melanoma"),
             "auc_sk": tta.get("val_auc_sk"), "acc": None, "latency_ms": tta.get("latency_ms")}]  # fmt: skip


def meta_rows(result: RunResult, base: dict) -> list[dict]:
    """The app's answer when age or sex is given (``metrics.json``'s ``meta_prior`` block, issue 16): the served views
    times the age/sex prior; its out-of-fold CV score and, reported only, its validation score."""
    meta = result.extra.get("meta_prior")
    if not meta:
        return []
    tta = result.extra.get("tta") or {}
    views = len(tta.get("views", ["id"]))
    shown = f"{views} test-time views" if views > 1 else "one view"
    model = base["model"].replace("(ours)", f"(ours, as served with age and sex: {shown} + age/sex prior)")
    base = {**base, "latency_ms": tta.get("latency_ms", base.get("latency_ms"))}  # the prior adds a 5-input LR
    return [{**base, "model": model + ", CV", "isic_score": meta["cv_isic_mean"],
             "auc_melanoma": meta.get("cv_pooled_auc_melanoma"), "auc_sk": meta.get("cv_pooled_auc_sk"), "acc": None,
             "dataset": (result.cv or {}).get("split", base["dataset"]),
             "split": f"out-of-fold, {meta['cv_folds']} of 5 folds of the training set (images without both age "
                      f"and sex keep the image's answer); ISIC score = mean over folds ± {meta['cv_isic_std']:.3f}, "
                      "AUCs pooled"},
            {**base, "model": model, "isic_score": meta["val_isic_score"], "auc_melanoma": meta["val_auc_melanoma"],
             "auc_sk": meta["val_auc_sk"], "acc": None}]  # fmt: skip


def task_rows(result: RunResult, base: dict) -> list[dict]:
    """One more row per task of a multitask model (``metrics.tasks``), the official metrics under the table's names."""
    rows = []
    for task_id, t in result.metrics.get("tasks", {}).items():
        rows.append({**base, "model": f"{base['model']}: {task_id}", "params": None, "fps": None, "latency_ms": None,
                     "dsc": t.get("dice"), "hd": t.get("hd"), "acc": t.get("acc"), "auc": t.get("auc"),
                     "f1_weighted": t.get("f1_weighted"), "mre": t.get("mre"),
                     "iou": t.get("iou_mask_box", t.get("iou")),  # the box the app draws (the mask's, where it ran)
                     "hc_error_mm": t.get("hc_abs_error_mm")})  # fmt: skip
    return rows


def recipe_cv_rows(root: Path) -> list[dict]:
    """Issue 16's comparison on equal terms: the 5-fold CV rows of ``skin_lesion/options.csv`` for the models whose
    shipped checkpoint has no CV of its own (validation-chosen weights, as the seed's) or is distilled (CustomNet and
    ResNet18: their plain recipes ran under cross-validation but did not ship). One row per fixed recipe and per TTA
    set; the screens (2 folds) and the fold ensembles (no out-of-fold estimate) stay in the tab's option table."""
    import csv
    import re

    path = root / "skin_lesion" / "options.csv"
    if not path.exists():
        return []
    rows = []
    for r in csv.DictReader(path.open()):
        if r["option"] == "age_sex_prior_alone" and r.get("cv_isic_mean"):  # the reference a network must beat
            rows.append({
                "task": "skin_lesion", "model": "Age and sex alone, no image (ours, CV): logistic regression",
                "source": "measured here", "dataset": "stratified 5-fold of the 2,000 ISIC 2017 training images",
                "split": "out-of-fold, 5 folds of the training set; ISIC score = mean over folds ± "
                         f"{float(r['cv_isic_std']):.3f}",
                "isic_score": float(r["cv_isic_mean"]), "params": 18,  # 3 classes x (5 inputs + 1)
                "citation": "this project, skin_lesion/options.csv",
                "unverified": False, "protocol": f"{r['args']}; chose nothing (an out-of-fold estimate)",
            })  # fmt: skip
            continue
        folder = root / "skin_lesion" / r["model"]
        shipped = RunResult.load(folder / "metrics.json") if (folder / "metrics.json").exists() else None
        kinds = "adamw_cosine_ls_trivialaugment|report_sgd_step|tta_hflip|tta_flips4|age_sex_prior_as_served_tta_hflip"
        m = re.fullmatch(rf"({kinds})_(\d+)ep", r["option"])
        own = shipped and shipped.cv and not shipped.training.get("distill_from")  # the shipped recipe's own rows
        if not m or not r.get("cv_isic_mean") or r.get("cv_folds") != "5" or own:
            continue
        kind, epochs = m.groups()
        recipe = {"report_sgd_step": "report recipe"}.get(kind, "Lite1 recipe")
        tta = {"tta_hflip": " + flip TTA", "tta_flips4": " + 4-flip TTA",
               "age_sex_prior_as_served_tta_hflip": " + flip TTA + age/sex prior"}.get(kind, "")  # fmt: skip
        title = variant_title("skin_lesion", r["model"])  # these recipes' own networks, not the shipped weights
        rows.append({
            "task": "skin_lesion", "model": f"{title} (ours, CV, not shipped): {recipe} {epochs} ep{tta}",
            "source": "measured here", "dataset": "stratified 5-fold of the 2,000 ISIC 2017 training images",
            "split": "out-of-fold, 5 folds of the training set; ISIC score = mean over folds ± "
                     f"{float(r['cv_isic_std']):.3f}",
            "resolution": float(r["image_size"]), "isic_score": float(r["cv_isic_mean"]),
            "params": shipped.params if shipped else None, "citation": "this project, skin_lesion/options.csv",
            "unverified": False, "protocol": f"{r['args']}; chose nothing (an out-of-fold estimate)",
        })  # fmt: skip
    return rows


SEED_TABLE_RESOLUTION = 28  # the seed study's rows in the table: the size of the published anchors (the tab has all)


def seed_rows(root: Path) -> list[dict]:
    """Issue 18's seed study (``<task>/ablation_seeds.csv``, written by ``training.ablate``): one row per protocol and
    step at 28 px, test accuracy and AUC as the mean over seeds, the spread and interval in the split column. These,
    not the one shown run per step, are the figures to set beside the published ones."""
    from leaderboard.ablation import protocol_phrase, protocol_title  # here: leaderboard.ablation imports this module
    from models.registry import protocol_successors

    rows = []
    for path in sorted(root.glob("*/ablation_seeds.csv")):
        task = path.parent.name
        table = pd.read_csv(path)
        present = set(zip(table["protocol"], table["resolution"], table["step"]))
        # a superseded protocol's rows stay in the tab (what the change did); here only the steps no successor ran
        table = table[[not any((q, r, s) in present for q in protocol_successors(p))
                       for p, r, s in zip(table["protocol"], table["resolution"], table["step"])]]  # fmt: skip
        for r in table[table["resolution"] == SEED_TABLE_RESOLUTION].itertuples():
            protocol = protocol_title(r.protocol)
            rows.append({
                "task": task, "model": f"{r.title} (ours, {protocol_phrase(r.protocol)}, {r.seeds} seeds)",
                "source": "measured here", "dataset": get_task(task).dataset,
                # the spread first: the tab shows about 37 characters of the column at 1280 px
                "split": f"test, mean of {r.seeds} seeds ± {r.test_acc_std:.3f} (std); 95 % interval "
                         f"{r.test_acc_ci95_low:.3f}-{r.test_acc_ci95_high:.3f}; {r.majority_seeds} at the majority "
                         "class",
                "resolution": r.resolution, "acc": r.test_acc_mean, "auc": r.test_auc_mean,
                "params": getattr(r, "params", None), "citation": "this project, training.ablate seed study",
                "unverified": False, "protocol": f"{protocol}: {path.name}",
            })  # fmt: skip
    return rows


def hub_owner() -> str | None:
    """The Hub owner whose model repos join the table: ``MODEL_SOURCE=hf://OWNER`` (None for local stores)."""
    source = model_source()
    return (source[len("hf://") :].strip("/") or None) if source.startswith("hf://") else None


def hub_results(owner: str, root: Path) -> list[tuple[str, RunResult]]:
    """``(repo, metrics)`` of every registry task/variant that ``owner`` has on the Hub and whose ``metrics.json``
    differs from the local folder's (identical ones are already in the table). Missing repos are skipped; when the Hub
    cannot be reached only its local cache is read, so the table never waits on the network."""
    from huggingface_hub import hf_hub_download

    offline = not hub_reachable()  # then the local Hub cache only
    found = []
    for task, spec in TASKS.items():
        for variant in spec.variants:
            repo = repo_id(task, variant, owner)
            try:
                path = hf_hub_download(repo, "metrics.json", local_files_only=offline)
                data = json.loads(Path(path).read_text())
            except Exception as exc:  # missing repo or file, offline, unreachable: not part of the table
                log.info("no Hub metrics for %s: %s", repo, type(exc).__name__)
                continue
            local = root / task / variant / "metrics.json"
            if not (local.exists() and json.loads(local.read_text()) == data):
                found.append((repo, RunResult.from_dict(data)))
    return found


def collect(
    root: str | Path | None = None, published: str | Path | None = PUBLISHED, owner: str | None = None
) -> pd.DataFrame:
    """One row per checkpoint (the local store, plus ``owner``'s Hub repos when given or set by
    ``MODEL_SOURCE=hf://OWNER``) and one per published figure; columns in ``COLUMNS`` order."""
    root = Path(root) if root else checkpoints_root()
    speeds = json.loads(SPEED.read_text()) if SPEED.exists() else {}
    rows = []
    for repo, result in hub_results(owner, root) if (owner := owner or hub_owner()) else []:
        try:
            row = row_from_metrics(result)  # no latency: the benchmark measured the shipped weights only
            row["citation"] = f"Hub model repo {repo}; {row['citation']}"
            rows += [row, *task_rows(result, row)]
        except (KeyError, TypeError) as exc:
            log.warning("skipping %s: unreadable metrics.json (%s)", repo, exc)
    for path in sorted(root.glob("*/*/metrics.json")):
        key = f"{path.parent.parent.name}/{path.parent.name}"
        try:
            result = RunResult.load(path)
            rows.append(row_from_metrics(result, measured_speed(speeds, key, path.parent)))
            rows += task_rows(result, rows[-1]) + cv_rows(result, rows[-1])
        except (ValueError, KeyError, TypeError) as exc:  # a broken file must not take the table down
            rows.append(
                {
                    "task": path.parent.parent.name,
                    "model": path.parent.name,
                    "source": "measured here",
                    "protocol": f"unreadable metrics.json: {exc}",
                }
            )
    rows += seed_rows(root) + recipe_cv_rows(root)
    frames = [pd.DataFrame(rows, columns=COLUMNS)]
    if published and Path(published).exists():
        frames.append(pd.read_csv(published))
    df = pd.concat([f for f in frames if len(f)], ignore_index=True).reindex(columns=COLUMNS)
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["unverified"] = df["unverified"].fillna(False).astype(bool)
    return df


def load_built(path: str | Path = BUILT) -> pd.DataFrame:
    """The table ``leaderboard.build`` wrote (fast start-up), else collected now; same columns and types."""
    path = Path(path)
    if not path.exists():
        return collect()
    df = pd.read_csv(path).reindex(columns=COLUMNS)
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["unverified"] = df["unverified"].fillna(False).astype(bool)
    return df
