"""Shared demo helpers of the tabs' layout and events: the app's CSS, intros, captions, legends, the one rule that
binds a tab's upload, example click and button to its model (``bind_model_run``) with errors kept in the tab.

The rest is split by concern and re-exported here for the tabs: uploads and import (``demo.uploads``), predictor
access (``demo.predictors``), the serving environment (``demo.environment``), error handling (``demo.errors``) and
example rows (``demo.examples``). Only ``demo/`` and ``app.py`` import gradio. Rendering helpers work on numpy arrays
so they are testable without a UI.
"""

from __future__ import annotations

import functools
import html
import logging
from pathlib import Path

import gradio as gr
import numpy as np

from demo.environment import (  # noqa: F401  (re-exported: the tabs import their helpers from here)
    DiskFullError,
    check_disk,
    configure_result_pruning,
    gpu,
    lazy_caching,
    model_concurrency,
    model_event,
    prune_result_cache,
    result_cache,
    sweep_event,
    torch_threads,
)
from demo.errors import user_errors  # noqa: F401
from demo.examples import example_label, example_truth, examples, shipped_example  # noqa: F401
from demo.predictors import (  # noqa: F401
    checkpoint_status,
    get_predictor,
)
from demo.uploads import (  # noqa: F401
    MEDICAL_TYPES,
    RawImage,
    browser_viewable,
    convert_medical,
    image_upload,
    medical_import,
    read_upload,
    scratch_file,
)
from models.visualize import (  # noqa: F401  (re-exported for the tabs)
    COMPARISON_COLORS,
    class_colors,
    comparison_map,
    disagreement_map,
    overlay_mask,
    to_rgb_array,
)

log = logging.getLogger(__name__)

CSS = """
.legend-swatch {display:inline-block;width:14px;height:14px;border-radius:3px;margin:0 6px -2px 12px;
  border:1px solid #8884}
.not-clinical {font-size:0.85em;opacity:0.8}
.tab-error:not(:empty) p, .tab-error h3 {color:#b00020}
/* Gradio puts the class on the block and on its inner .prose: one box, on the block (two nested ones showed) */
.block.tab-error:has(p) {border:2px solid #b00020;border-radius:8px;padding:4px 10px;background:#fff5f5}
.key-result h3 {margin:2px 0 4px 0}
.api-only {display:none !important}
.cine-live:has(img.cine-frame) {height:310px;contain:strict}
.cine-live img {max-height:300px;max-width:100%;display:block;margin:auto}
#about table td:first-child, #about table th:first-child {white-space:nowrap}
/* table headers break between words, never inside one (a column widens instead) */
th .header.text {word-break:normal !important;overflow-wrap:normal !important}
th.header-cell {min-width:max-content}
#leaderboard-table th.header-cell {min-width:max-content !important}
/* an image slider shows both whole images, letterboxed alike (Gradio's own sizing cropped a tall X-ray and offset
   one layer from the other) */
.fit-slider img {height:100% !important;max-height:100% !important;width:100% !important;object-fit:contain !important;
  top:0 !important}
#title-row {align-items:center}
/* the skin tab's age box keeps a visible "Age" once filled (its label is hidden to keep the row one line high, and a
   newcomer saw a bare "63" beside "Sex: female") */
#skin-age label {display:flex; align-items:center}
#skin-age label::before {content:"Age"; padding:0 2px 0 8px; color:var(--body-text-color-subdued)}
#skin-age .input-container {flex:1; min-width:0}
#permalink-notice:not(:has(p)) {display:none !important}
/* notices (Gradio's toasts, e.g. a file type the upload refuses) at the bottom right: at the top they covered the
   task tabs for seconds */
.toast-wrap {top:auto !important;bottom:calc(var(--size-4) + var(--size-3)) !important}
/* pinned columns: Gradio's ``pinned_columns`` sets no sticky style on the virtual rows of this version, so a table
   scrolled sideways lost its task and model names (seen in a newcomer's walk); the first column sticks, and the
   second where two are pinned, at the first one's fixed width (leaderboard 185 px, skin options 130 px) */
.virtual-row > .body-cell.first-column, thead th.first-column,
#leaderboard-table .virtual-row > .body-cell:nth-child(2), #leaderboard-table thead th:nth-child(2),
#skin-options .virtual-row > .body-cell:nth-child(2), #skin-options thead th:nth-child(2) {position:sticky; left:0;
  z-index:3; background:var(--table-even-background-fill, var(--background-fill-primary))}
#leaderboard-table .virtual-row > .body-cell:nth-child(2), #leaderboard-table thead th:nth-child(2) {left:185px}
#skin-options .virtual-row > .body-cell:nth-child(2), #skin-options thead th:nth-child(2) {left:130px}
/* projector view (issue 19): larger type and thicker lines across the app, toggled by the header's checkbox */
.projector {font-size:1.25rem}
/* the tab row keeps its size: Gradio measures a hidden copy of its buttons (no role="tab") to decide which tabs
   overflow into a "..." menu, and the rule below made that copy wider, so Leaderboard and About went into the menu */
.projector button[role="tab"], .projector .tab-wrapper .tab-container button {font-size:var(--text-md) !important}
.projector .prose, .projector .prose p, .projector .prose li {font-size:1.1rem !important}
.projector label span, .projector button:not([role="tab"]), .projector table {font-size:1.2rem !important}
/* a radio group's title ("Organ") sits in a fieldset, not a label: it stayed small beside its larger options */
.projector fieldset [data-testid="block-info"] {font-size:1.2rem !important}
/* a dropdown's or text box's title and value stayed at 14 px too */
.projector [data-testid="block-info"], .projector input, .projector textarea {font-size:1.2rem !important}
/* a dataframe's rows are a virtual list of divs, not table cells: they kept 14 px under headers of 19 px */
.projector .virtual-body .cell-wrap {font-size:1.1rem !important}
.projector .prose h3, .projector .key-result h3 {font-size:1.6rem !important}
.projector .js-plotly-plot .scatterlayer path.js-line {stroke-width:4px !important}
/* no larger plot text: Plotly places legend entries and titles by the widths it measured at its own size, so text
   enlarged in CSS ran into the next legend entry and off the plot's right edge (seen in a newcomer's walk) */
"""


def theme() -> gr.themes.Base:
    """Gradio's default look with whole bold faces. The SemiBold files the installed Gradio ships hold only "A", "B",
    a space and some Cyrillic, so every semibold word (headings, **bold** results) drew those two letters in another
    face than the rest. Weight 700 uses the complete Bold files, which a browser also picks for 600."""
    fonts = gr.themes.LocalFont
    return gr.themes.Default(
        font=[fonts("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=[fonts("IBM Plex Mono", weights=(400, 700)), "ui-monospace", "Consolas", "monospace"],
    )


# the header's projector toggle: a class on the app's root element (no server round trip)
PROJECTOR_JS = "(on) => { document.querySelector('.gradio-container').classList.toggle('projector', on); return on; }"


def tab_intro(short: str, details: str) -> None:
    """A tab's one-line description, with the model, data, deviations and measured numbers one click away (the
    first screen at 1280x720 is kept for the input, the button and the result)."""
    with gr.Accordion(short, open=False, elem_classes="tab-intro"):
        gr.Markdown(details)


def footnotes(notes: list[str], *predictors) -> str:
    """Markdown after a result: what was done to the input, and where a model came from when it is not the one
    asked for (the Hub was unreachable, so the shipped checkpoint served)."""
    text = f"\n\nInput: {'; '.join(notes)}." if notes else ""
    for predictor in predictors:
        reason = getattr(getattr(predictor, "model", None), "fallback_reason", None)
        if reason:
            text += (f"\n\n⚠️ Served by the shipped checkpoint `{Path(predictor.model.loaded_from).name}`: the Hub "
                     f"copy could not be loaded ({reason[:200]}).")  # fmt: skip
    return text


def result_caption(image_path, model: str, reference: str | None = None) -> str:
    """Names the image and the model a result belongs to (a new input never shows beside an old result), and the
    image's reference answer where one is known (a shipped example's label)."""
    from models.image_io import display_name

    known = f" · reference label **{reference}**" if reference else ""
    return f"Image **{display_name(image_path)}** · model **{model}**{known}"


def top_class_check(reference: str | None, probs: dict[str, float]) -> str:
    """After the caption of a shipped example: whether the top class is its reference label, and if not, what the
    model gave the reference (a wrong answer must read as wrong, not only as a label beside the result)."""
    if not reference or reference not in probs:
        return ""
    top = max(probs, key=probs.get)
    return (" ✓ (the top class)" if top == reference
            else f" ⚠️ (the top class is **{top}**; {reference}: {probs[reference]:.0%})")  # fmt: skip


def opacity_value(value, default: float = 0.4) -> float:
    """A finite opacity in [0, 1] (the API accepts any number; NaN and out-of-range values fall back / clip)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return default if not np.isfinite(value) else min(1.0, max(0.0, value))


def probability_rgb(probs: np.ndarray) -> np.ndarray:
    """Thesis view: class probabilities as colour channels (R = background/normal, G = benign, B = malignant)."""
    rgb = np.zeros((*probs.shape[1:], 3), np.float32)
    rgb[..., : min(3, probs.shape[0])] = np.moveaxis(probs[:3], 0, -1)
    return (rgb * 255).round().astype(np.uint8)


def legend_html(labels, extra: dict[str, tuple[int, int, int]] | None = None) -> str:
    items = [(name, tuple(int(v) for v in c)) for name, c in zip(labels[1:], class_colors(labels)[1:])]
    items += list((extra or {}).items())
    return "".join(
        f'<span class="legend-swatch" style="background:rgb{c}"></span>{html.escape(name)}' for name, c in items
    )


def error_markdown(message: str) -> str:
    """A user-facing error that stays in its tab (``elem_classes="tab-error"`` boxes it in red)."""
    return f"⚠️ **{message}**" if message else ""


def in_tab(fn, n_outputs: int):
    """The UI form of a tab handler: ``fn``'s outputs plus an empty message; a ``gr.Error`` (bad input, missing
    weights, ...) clears every output and puts its text in the tab's message box instead of a toast that vanishes
    beside the previous image's result. The API keeps ``fn`` itself, so clients get an ``AppError``."""

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            out = fn(*args)
        except gr.Error as exc:
            return (*([None] * n_outputs), error_markdown(str(exc.message)))
        return (*(out if isinstance(out, tuple) else (out,)), "")

    return wrapper


def bind_model_run(fn, inputs, outputs, *, run, message, api_name: str, upload=None, clear=(), examples_rows=None,
                   examples_inputs=None, examples_label: str = "", examples_labels=None, rerun=(), permalink=None,
                   models=(), opacity=None, subtab=None):  # fmt: skip
    """The one trigger rule of every model tab: the main button, an upload and an example click each run ``fn`` with
    the current settings. An upload first clears the inputs that belonged to the previous image (``clear``: its
    ground-truth mask, an example's pixel size) and every output, as removing the image does; errors stay in
    ``message``; a change of a
    ``rerun`` control re-runs on the image shown. ``api_name`` serves ``fn`` itself (raising ``gr.Error``) from a
    hidden trigger. ``permalink`` (the tab's key) lets a link choose an example, the ``models`` pickers and the
    ``opacity`` (``demo.permalink``), with a "Copy link" button."""
    ui = in_tab(fn, len(outputs))
    ui_outputs = [*outputs, message]
    api = gr.Button(visible=False, elem_classes="api-only")
    api.click(fn, inputs, outputs, api_name=api_name, **model_event())
    if upload is not None:

        def run_ui(*values):  # no image, a message shown: a refused upload's reason stays (not "Upload an image first")
            *args, shown = values
            return tuple(gr.skip() for _ in ui_outputs) if args[0] is None and shown else ui(*args)

        run.click(run_ui, [*inputs, message], ui_outputs, api_name=False, **model_event())
    else:
        run.click(ui, inputs, ui_outputs, api_name=False, **model_event())
    if upload is not None:
        reset = [*clear, *ui_outputs]

        def drop_unviewable(path, error):  # a refused file the browser cannot draw leaves the box (a broken icon)
            return None if path and error and not browser_viewable(path) else gr.skip()

        upload.upload(lambda: [None] * len(reset), None, reset, api_name=False, queue=False).then(
            ui, inputs, ui_outputs, api_name=False, **model_event()
        ).then(drop_unviewable, [upload, message], [upload], api_name=False, queue=False)
        # the image removed (its x): its results go too (a newcomer saw a Dice stay up for a removed X-ray)
        upload.clear(lambda: [None] * len(reset), None, reset, api_name=False, queue=False)
    if rerun:

        def again(*values):  # a changed setting re-runs on the image shown; nothing to do before an image
            return ui(*values) if values[0] is not None else tuple(gr.skip() for _ in ui_outputs)

        for control in rerun:  # .input: the user's change only (an example setting a value runs once, itself)
            control.input(again, inputs, ui_outputs, api_name=False, trigger_mode="always_last", **model_event())
    if examples_rows:
        examples(
            examples_rows,
            examples_inputs or inputs,
            examples_label,
            fn=ui,
            outputs=ui_outputs,
            run_inputs=inputs,
            labels=examples_labels or [example_label(row[0]) for row in examples_rows],
        )
    if permalink:
        from demo import permalink as links

        links.register(permalink, run_fn=ui, run_inputs=list(inputs), run_outputs=ui_outputs,
                       example_rows=list(examples_rows or []),
                       example_inputs=list(examples_inputs or inputs) if examples_rows else [], models=list(models),
                       opacity=opacity, subtab=subtab)  # fmt: skip
        links.copy_link_button(permalink)
    return ui


def bind_sweep(sweep, *, button, inputs, plot, text, message, api_name: str, **kwargs) -> None:
    """A robustness sweep's button: ``sweep(*inputs, progress=..., **kwargs) -> (figure, summary)`` with Gradio's
    progress bar (drawn over the plot, which holds ``sweep_placeholder`` until then: an empty plot box looked
    broken); a problem goes to the tab's ``message`` box and clears the old plot."""

    def run(*values, progress=gr.Progress()):
        try:
            figure, summary = user_errors(sweep)(*values, progress=progress, **kwargs)
        except gr.Error as exc:
            return None, "", error_markdown(str(exc.message))
        return figure, summary, ""

    button.click(run, inputs, [plot, text, message], api_name=api_name, **sweep_event())


def sweep_placeholder(what: str):
    """The sweep plot before its first run: what the button will draw there, instead of an empty box."""
    import plotly.graph_objects as go

    fig = go.Figure()
    text = f"Press <b>Sweep the severity</b> to plot {what} here<br>(about 1 s per image on 2 CPU cores; a progress bar"
    fig.add_annotation(text=text + " shows here)", showarrow=False, font=dict(size=16, color="#555"))
    fig.update_layout(xaxis_visible=False, yaxis_visible=False, height=160, margin=dict(l=10, r=10, t=10, b=10),
                      plot_bgcolor="rgba(0,0,0,0)")  # fmt: skip
    return fig


def _plain(markdown: str) -> list[str]:
    """Markdown lines as plain text (no #, **, backticks, links, HTML tags); empty lines, table rows and what an
    expander (``<details>``) folds away are dropped."""
    import re

    out, folded = [], False
    for line in (markdown or "").splitlines():
        folded = folded or "<details" in line  # an expander's content (tables, latencies): detail, not a slide's fact
        if folded or line.lstrip().startswith("|"):
            folded = folded and "</details>" not in line
            continue
        line = re.sub(r"<[^>]+>", "", line)  # <details>, <summary>, <sup>...
        line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)
        line = re.sub(r"(\*\*|__|[#*`])", "", line).strip()
        if line:
            out.append(line)
    return out


def slide_file(image, text: str, task: str, variant: str | None = None) -> str:
    """A 1920x1080 PNG of the current result (issue 19.4): the result image, what the tab said about it, and the
    model's parameters, held-out metric, dataset and source. Written to a bounded scratch folder."""
    import hashlib

    from leaderboard.results import load_metrics
    from models.registry import get_task, get_variant
    from models.visualize import slide

    if image is None:
        raise gr.Error("There is no result yet: run the model on an image first, then export the slide." if not
                       _plain(text or "") else "This result has no picture for a slide: the image was refused (see "
                       "above), so no answer was drawn.")  # fmt: skip
    spec = get_task(task)
    variant = variant if variant in spec.variants else spec.default_variant
    result = load_metrics(task, variant)
    facts = _plain(text)[:6]
    model = f"Model: {get_variant(task, variant).title}"
    if result is not None:
        model += f", {result.params:,} parameters" if result.params and f"{result.params:,}" not in model else ""
        value = result.metrics.get(spec.primary_metric)
        from leaderboard.multitask import dice_by_task

        if spec.primary_metric == "dsc" and (per_task := dice_by_task(result.metrics)):  # a multitask model
            model += f"; {per_task} on its {result.split or 'held-out'} split"
        elif isinstance(value, (int, float)):
            name = spec.primary_metric.replace("_", " ")
            name = name.upper() if len(name) <= 4 else name
            model += f"; {name} {value:.3f} on its {result.split or 'held-out'} split"
    facts.append(model)
    footer = (f"{spec.system}. Data: {spec.dataset}. Biomedical image models demo: research and teaching, "
              "not for clinical use.")  # fmt: skip
    png = slide(np.asarray(image), spec.title, facts, footer)
    digest = hashlib.sha256(png.tobytes()).hexdigest()[:12]
    path = scratch_file("slides", f"slide-{task}-{digest}.png", max_files=32)
    png.save(path)
    return str(path)


def slide_export(image, text, task: str, prefix: str, message, variant=None) -> None:
    """A button under a tab's result that gives ``slide_file``'s PNG as a download (``api_name=slide_<prefix>``);
    a problem (no result yet) goes to the tab's ``message`` box."""
    button = gr.Button("Slide for the projector (1920x1080 PNG)", size="sm", elem_id=f"{prefix}-slide")
    # the file box appears with its first slide (an empty dashed box under the button looked broken)
    file = gr.File(label="Slide", elem_id=f"{prefix}-slide-file", height=70, visible=False)
    inputs = [image, text] + ([variant] if variant is not None else [])

    def make(img, txt, var=None):
        return slide_file(img, txt, task, var)

    def show(img, txt, var=None):
        path, problem = in_tab(user_errors(make), 1)(img, txt, *([var] if variant is not None else []))
        return gr.update(value=path, visible=path is not None), problem

    api = gr.Button(visible=False, elem_classes="api-only")
    api.click(user_errors(make), inputs, file, api_name=f"slide_{prefix}")
    button.click(show, inputs, [file, message], api_name=False)


def readable(df, cut: int | None = None, whole=("model",)):
    """The table as shown: parameters with thousands separators ("178,887", not "178887.0"), other numbers with up to
    4 decimals and no padding, blanks for missing values; with ``cut``, text cells but the ``whole`` columns end in "…"
    after ``cut`` characters (a long protocol stays one line; a model's name is never cut). Display only (a pandas
    Styler): the values, their order and the CSV stay numeric and whole."""
    import pandas as pd

    if df.empty:
        return df

    def number(v) -> str:
        if pd.isna(v):
            return ""
        v = round(float(v), 4)
        return f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:g}"

    def count(v) -> str:
        return "" if pd.isna(v) else f"{round(float(v)):,}"

    def text(v) -> str:
        return "" if pd.isna(v) else str(v)

    def short(v) -> str:
        v = text(v)
        return v if len(v) <= cut else v[: cut - 1].rstrip() + "…"

    numeric = set(df.select_dtypes("number").columns)
    words = {c: text if cut is None or c in whole else short for c in df.columns}
    return df.style.format({c: (count if c == "params" else number) if c in numeric else words[c] for c in df.columns})
