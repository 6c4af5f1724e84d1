"""Permalinks (issue 19.3): the page's query restores a view, e.g.
``?tab=lung_seg&example=3&models=unet,unetplusplus&opacity=0.6``.

* ``tab``: a registry task with a tab, ``leaderboard`` or ``about``;
* ``example``: the tab's N-th example (1-based, in the order shown), loaded and run as a click on it would;
* ``models``: comma-separated variants for the tab's model pickers, in their order;
* ``opacity``: the mask opacity, 0 to 1.

Tabs register what a link may set (``register``, called by ``demo.common.bind_model_run``); ``install`` (from
``app.build_demo``) adds one load event that reads the query, selects the tab, fills the example and the controls and
runs the tab's model. A value that is unknown or out of range falls back to its default, and a notice under the title
says which; a link never raises. "Copy link" beside each tab's main button puts the link to the current tab, with
its controls' values, on the clipboard.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field

import gradio as gr

EXTRA_TABS = ("leaderboard", "about")


@dataclass
class Target:
    run_fn: object  # the tab's UI handler (outputs + message)
    run_inputs: list
    run_outputs: list
    example_rows: list = field(default_factory=list)
    example_inputs: list = field(default_factory=list)
    models: list = field(default_factory=list)  # model pickers (dropdowns / radios) in link order
    opacity: object | None = None
    subtab: tuple | None = None  # (gr.Tabs, id): the sub-tab a linked example runs in, selected with it


TARGETS: dict[str, Target] = {}


def register(key: str, **target) -> None:
    """What a link may set in tab ``key``; ``run_fn(*run_inputs) -> run_outputs`` runs its model."""
    TARGETS[key] = Target(**target)


def _choices(component) -> list[str]:
    return [c[1] if isinstance(c, (tuple, list)) else c for c in (getattr(component, "choices", None) or [])]


def parse(params: dict, tabs: list[str]) -> tuple[dict, list[str]]:
    """The query as ``{"tab", "example", "models", "opacity"}`` (valid values only) and a notice per bad value."""
    notes, view = [], {}
    tab = params.get("tab")
    if tab is not None:
        if tab in tabs:
            view["tab"] = tab
        else:
            notes.append(f"there is no tab `{tab}` (tabs: {', '.join(tabs)}), so the first one is shown")
    target = TARGETS.get(view.get("tab"))
    if "example" in params:
        raw = params["example"]
        n = len(target.example_rows) if target else 0
        if raw.isdigit() and 1 <= int(raw) <= n:
            view["example"] = int(raw)
        else:
            notes.append(f"example `{raw}` does not exist in this tab (it has {n}), so none is loaded")
    if "models" in params and target:
        models = []
        for picker, name in zip(target.models, params["models"].split(",")):
            if name in _choices(picker):
                models.append(name)
            else:
                notes.append(
                    f"model `{name}` is not available here ({', '.join(_choices(picker))}): the default is used"
                )
                models.append(None)
        view["models"] = models
    if "opacity" in params and target and target.opacity is not None:
        try:
            value = float(params["opacity"])
            if not math.isfinite(value) or not 0 <= value <= 1:
                raise ValueError
            view["opacity"] = value
        except ValueError:
            notes.append(f"opacity `{params['opacity']}` is not between 0 and 1: the default is used")
    return view, notes


def _read(tabs: list[str], request: gr.Request):
    params = dict(request.query_params) if request is not None else {}
    view, notes = parse(params, tabs)
    notice = ("**This link could not be followed in full:** " + "; ".join(notes) + ".") if notes else ""
    selected = gr.Tabs(selected=view["tab"]) if "tab" in view else gr.skip()
    return selected, json.dumps(view), notice


def _fill(key: str, view_json: str):
    target, view = TARGETS[key], json.loads(view_json or "{}")
    mine = view.get("tab") == key
    values = []
    row = target.example_rows[view["example"] - 1] if mine and "example" in view else None
    for i, _ in enumerate(target.example_inputs):
        values.append(row[i] if row is not None and i < len(row) else gr.skip())
    for i, _ in enumerate(target.models):
        chosen = (view.get("models") or [])[i] if mine and i < len(view.get("models") or []) else None
        values.append(chosen if chosen else gr.skip())
    if target.opacity is not None:
        values.append(view["opacity"] if mine and "opacity" in view else gr.skip())
    if target.subtab is not None:
        values.append(gr.Tabs(selected=target.subtab[1]) if row is not None else gr.skip())
    return tuple(values) if len(values) != 1 else values[0]


def _run(key: str, view_json: str, *inputs):
    target, view = TARGETS[key], json.loads(view_json or "{}")
    if view.get("tab") != key or "example" not in view:
        return tuple(gr.skip() for _ in target.run_outputs)
    return target.run_fn(*inputs)


def install(blocks: gr.Blocks, tabs_component: gr.Tabs, tabs: list[str], notice: gr.Markdown) -> None:
    """One load event for the whole app: read the query, select the tab, then fill and run the linked tab."""
    view = gr.State("{}")
    names = [*tabs, *EXTRA_TABS]

    def read(request: gr.Request):
        return _read(names, request)

    load = blocks.load(read, None, [tabs_component, view, notice], api_name=False, queue=False)
    for key, target in TARGETS.items():
        fill_outputs = [*target.example_inputs, *target.models] + ([target.opacity] if target.opacity else [])
        fill_outputs += [target.subtab[0]] if target.subtab else []
        if not fill_outputs:
            continue
        load.then(functools.partial(_fill, key), [view], fill_outputs, api_name=False, queue=False).then(
            functools.partial(_run, key), [view, *target.run_inputs], target.run_outputs, api_name=False
        )


COPY_JS = """(...values) => {
  const url = new URL(window.location.href.split('?')[0]);
  url.searchParams.set('tab', %s);
  const models = values.slice(0, %d).filter(v => v);
  if (models.length) url.searchParams.set('models', models.join(','));
  if (%s && values.length > %d && values[%d] !== null) url.searchParams.set('opacity', values[%d]);
  navigator.clipboard && navigator.clipboard.writeText(url.toString()).catch(() => {});
  return url.toString();
}"""


def copy_link_button(key: str) -> None:
    """ "Copy link" for tab ``key``: the link to this tab with its model pickers' and opacity's current values, put
    on the clipboard and shown in a text box (where the clipboard is not available), which appears with it."""
    target = TARGETS.get(key)
    if target is None:
        return
    with gr.Row():
        button = gr.Button("Copy link to this view", size="sm", elem_id=f"{key}-copy-link")
        # the link carries the tab and its settings, never an image (a newcomer expected the image back)
        link = gr.Textbox(label="Link (this tab and its settings, not the image)", interactive=False,
                          elem_id=f"{key}-link", max_lines=1, buttons=["copy"], visible=False)  # fmt: skip
    sources = [*target.models] + ([target.opacity] if target.opacity is not None else [])
    n = len(target.models)
    has_opacity = "true" if target.opacity is not None else "false"
    js = COPY_JS % (json.dumps(key), n, has_opacity, n, n, n)
    # the box appears with its first link (empty beside the button, it looked broken)
    button.click(None, sources, link, js=js, api_name=False).then(
        lambda: gr.update(visible=True), None, link, api_name=False, queue=False
    )
