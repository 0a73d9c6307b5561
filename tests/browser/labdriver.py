"""Drive JupyterLab and Voilà pages with Playwright: run a notebook, read its cells, find and move widgets.

The functions work on any page whose widgets are rendered by ipywidgets 8 (JupyterLab or Voilà): a
control is found by its kind and the text of its description label, and "the figure" of a widget is
every ``<img>`` and ``<canvas>`` inside the widget's top-level output, compared by a SHA-256 of the image
bytes.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # playwright is optional: this module must import without it
    from playwright.sync_api import Locator, Page

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCREENSHOTS = Path(os.environ.get("CH13_SCREENSHOTS", HERE / "screenshots"))
NOTEBOOK_DIR = Path(os.environ.get("CH13_BROWSER_NOTEBOOKS", ROOT / "notebooks"))
"""Notebooks to open (``CH13_BROWSER_NOTEBOOKS`` points elsewhere while developing these tests)."""
PRESENTER_DIR = ROOT / "presenter"

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

CONTROL_SELECTORS = {
    "slider": ".widget-slider",
    "dropdown": ".widget-dropdown",
    "toggle": ".widget-toggle-buttons",
    "radio": ".widget-radio",
    "checkbox": ".widget-checkbox",
    "button": ".widget-button",
}
"""ipywidgets 8 DOM classes of the controls a spec may name."""

_FIND_PANEL_JS = """
(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  return Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path) || null;
}
"""

_READY_JS = """
(path) => {
  const panel = (FIND_PANEL)(path);
  if (!panel || !panel.sessionContext || !panel.content) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}
""".replace("FIND_PANEL", _FIND_PANEL_JS)

# Record what the kernel says outside cell outputs: errors and stderr that answer a widget's comm
# message (a failing callback) never reach the notebook, only JupyterLab's log console.
_LISTEN_JS = """
(path) => {
  const panel = (FIND_PANEL)(path);
  window.__ch13_iopub = [];
  panel.sessionContext.session.kernel.iopubMessage.connect((kernel, msg) => {
    const type = msg.header.msg_type;
    const parent = msg.parent_header ? msg.parent_header.msg_type : null;
    if (parent === 'execute_request') return;  // cell outputs: read from the notebook model
    if (type === 'error') {
      window.__ch13_iopub.push({type, parent, text: msg.content.ename + ': ' + msg.content.evalue});
    } else if (type === 'stream' && msg.content.name === 'stderr') {
      window.__ch13_iopub.push({type: 'stderr', parent, text: msg.content.text.slice(-3000)});
    }
  });
}
""".replace("FIND_PANEL", _FIND_PANEL_JS)

_RUN_ALL_JS = """
(path) => {
  const panel = (FIND_PANEL)(path);
  window.jupyterapp.shell.activateById(panel.id);
  window.__ch13_run = null;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    ok => { window.__ch13_run = {ok: ok}; },
    err => { window.__ch13_run = {error: String(err)}; });
}
""".replace("FIND_PANEL", _FIND_PANEL_JS)

# For every cell: its kind, execution count, a source excerpt, its outputs as stored in the model,
# and how many top-level widget views are rendered in its output area (and any widget error text).
_CELLS_JS = """
(path) => {
  const panel = (FIND_PANEL)(path);
  return panel.content.widgets.map((cell, index) => {
    const model = cell.model.toJSON();
    const source = Array.isArray(model.source) ? model.source.join('') : model.source;
    const outputs = (model.outputs || []).map(o => ({
      type: o.output_type,
      ename: o.ename || null,
      evalue: o.evalue || null,
      traceback: o.traceback ? o.traceback.join('\\n') : null,
      mimes: o.data ? Object.keys(o.data) : [],
      modelId: o.data && o.data[WIDGET_MIME] ? o.data[WIDGET_MIME].model_id : null,
    }));
    const area = cell.node.querySelector('.jp-Cell-outputArea');
    const top = area ? Array.from(area.querySelectorAll(':scope > .jp-OutputArea-child > .jp-OutputArea-output')) : [];
    const rendered = top.filter(el => el.querySelector(':scope > .jupyter-widgets')).length;
    // a widget the kernel closed (e.g. a finished tqdm bar with leave=False) leaves a hidden, empty
    // output; only outputs whose model is a widget view count (the i-th child shows the i-th output)
    const closed = top.filter((el, i) => el.classList.contains('lm-mod-hidden') && !el.firstElementChild
                                         && outputs[i] && outputs[i].modelId).length;
    const text = area ? area.innerText : '';
    return {index, type: model.cell_type, count: model.execution_count ?? null, source: source.slice(0, 300),
            outputs, renderedViews: rendered, closedViews: closed, outputText: text.slice(0, 20000)};
  });
}
""".replace("FIND_PANEL", _FIND_PANEL_JS).replace("WIDGET_MIME", repr(WIDGET_MIME))

# SHA-256 over the bytes of every image and canvas below an element, in document order.
_FIGURE_HASH_JS = """
async (root) => {
  const parts = [];
  for (const img of root.querySelectorAll('img')) {
    if (!img.src) continue;
    const response = await fetch(img.src);
    parts.push(new Uint8Array(await response.arrayBuffer()));
  }
  for (const canvas of root.querySelectorAll('canvas')) {
    parts.push(new TextEncoder().encode(canvas.toDataURL('image/png')));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) { all.set(p, offset); offset += p.length; }
  const digest = await crypto.subtle.digest('SHA-256', all);
  const hex = Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, '0')).join('');
  return {hash: hex, images: parts.length, bytes: total};
}
"""

# Cells whose output shows, after a widget, a static image of the same size as an image inside that
# widget: a stale copy of the widget's figure (a pyplot figure the inline backend flushes when the cell
# ends). It stays on the page, frozen at the first value, while the widget below it moves on.
_STALE_COPIES_JS = """
(root) => {
  const found = [];
  root.querySelectorAll('.jp-Cell-outputArea').forEach((area, index) => {
    const children = Array.from(area.querySelectorAll(':scope > .jp-OutputArea-child'));
    const sizes = new Set();
    let seenWidget = false;
    for (const child of children) {
      const widget = child.querySelector('.jupyter-widgets');
      const images = Array.from(child.querySelectorAll('img')).filter(img => img.naturalWidth > 0);
      if (widget) {
        seenWidget = true;
        images.forEach(img => sizes.add(img.naturalWidth + 'x' + img.naturalHeight));
      } else if (seenWidget) {
        for (const img of images) {
          const size = img.naturalWidth + 'x' + img.naturalHeight;
          if (sizes.has(size)) found.push({output: index, size: size});
        }
      }
    }
  });
  return found;
}
"""

WIDGET_ERROR_TEXT = re.compile(
    r"Error displaying widget|Failed to (load|render) (model|view)|model not found"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRACEBACK_TEXT = re.compile(r"Traceback \(most recent call last\)")


@dataclass(frozen=True)
class Control:
    """A control a notebook promises: its kind, a regex for its description, whether it redraws."""

    kind: str
    label: str
    moves_figure: bool = True


@dataclass(frozen=True)
class Promise:
    """What a notebook promises to render: at least ``min_views`` widgets, these controls, and at
    least ``n`` elements matching each CSS ``selector`` of ``elements`` (e.g. audio players)."""

    min_views: int
    controls: tuple[Control, ...] = ()
    elements: tuple[tuple[str, int], ...] = ()


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}  # urlparse(...).hostname drops the brackets


@dataclass
class Figure:
    """The images of one widget: a digest of their bytes, how many there are and their total size."""

    hash: str
    images: int
    bytes: int


@dataclass
class Move:
    """One control moved and what it did to the figure."""

    control: str
    before: Figure
    after: Figure
    seconds: float
    value_before: str
    value_after: str

    @property
    def changed(self) -> bool:
        return self.before.hash != self.after.hash


# ----------------------------------------------------------------------------------------------------
# JupyterLab


def open_notebook(page: Page, base_url: str, token: str, path: str, timeout_s: float = 120) -> None:
    """Open ``path`` (relative to the server root) in JupyterLab; wait for an idle, connected kernel."""
    page.goto(f"{base_url}/lab/tree/{path}?reset&token={token}", wait_until="domcontentloaded")
    page.wait_for_function(_READY_JS, arg=path, timeout=timeout_s * 1000, polling=250)
    page.evaluate(_LISTEN_JS, path)


def side_channel_messages(page: Page) -> list[dict[str, str]]:
    """Errors and stderr the kernel sent in answer to anything but a cell (widget callbacks)."""
    messages = page.evaluate("() => window.__ch13_iopub || []")
    return [{**m, "text": ANSI.sub("", m["text"])} for m in messages]


def side_channel_problems(messages: list[dict[str, str]]) -> list[str]:
    """The messages that report a failure: any error, or stderr carrying a traceback or an exception."""
    failing = re.compile(r"Traceback|Error|Exception")
    return [
        f"{m['type']} in answer to {m['parent']}: {m['text']}"
        for m in messages
        if m["type"] == "error" or failing.search(m["text"])
    ]


def run_all(page: Page, path: str, timeout_s: float) -> dict[str, Any]:
    """Run > Run All Cells, and wait until every cell has answered (or the run stopped at an error)."""
    page.evaluate(_RUN_ALL_JS, path)
    page.wait_for_function("() => window.__ch13_run !== null", timeout=timeout_s * 1000, polling=200)
    return page.evaluate("() => window.__ch13_run")


def cells(page: Page, path: str) -> list[dict[str, Any]]:
    """What the notebook model and the DOM hold for each cell (see ``_CELLS_JS``)."""
    return page.evaluate(_CELLS_JS, path)


def cell_errors(report: list[dict[str, Any]]) -> list[str]:
    """One line per problem: error outputs, code cells that never ran, widget errors, tracebacks."""
    problems = []
    for cell in report:
        if cell["type"] != "code":
            continue
        where = f"cell {cell['index']} ({cell['source'][:80]!r})"
        for output in cell["outputs"]:
            if output["type"] == "error":
                problems.append(f"{where}: {output['ename']}: {output['evalue']}")
        if cell["count"] is None and cell["source"].strip():
            problems.append(f"{where} did not run")
        if WIDGET_ERROR_TEXT.search(cell["outputText"]):
            problems.append(
                f"{where} shows a widget error: {WIDGET_ERROR_TEXT.search(cell['outputText'])[0]}"
            )
        if TRACEBACK_TEXT.search(cell["outputText"]) and not any(
            o["type"] == "error" for o in cell["outputs"]
        ):
            problems.append(f"{where} shows a traceback in its output (a widget callback failed?)")
    return problems


def widget_view_counts(report: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(widget views the kernel displayed, views rendered at the top of a cell's output, views the
    kernel has closed since, such as finished progress bars, which leave a hidden empty output)."""
    promised = sum(1 for c in report for o in c["outputs"] if o["modelId"] is not None)
    rendered = sum(c["renderedViews"] for c in report)
    closed = sum(c["closedViews"] for c in report)
    return promised, rendered, closed


def wait_widgets_rendered(page: Page, path: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    """Poll until every widget view in the model is rendered and nothing says 'Loading widget...'."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = cells(page, path)
        promised, rendered, closed = widget_view_counts(report)
        loading = any("Loading widget" in c["outputText"] for c in report)
        if (rendered + closed >= promised and not loading) or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


# ----------------------------------------------------------------------------------------------------
# Widgets (JupyterLab or Voilà)


def find_control(scope: Locator, kind: str, label: str) -> Locator:
    """The first control of ``kind`` whose description matches the regular expression ``label``."""
    if kind not in CONTROL_SELECTORS:
        raise ValueError(f"unknown control kind {kind!r}; use one of {sorted(CONTROL_SELECTORS)}")
    pattern = re.compile(label, re.I)
    candidates = scope.locator(CONTROL_SELECTORS[kind])
    for i in range(candidates.count()):
        control = candidates.nth(i)
        texts = [control.locator("label.widget-label").first.text_content() or ""] if kind != "button" else []
        if kind in {"button", "checkbox"}:
            texts.append(control.text_content() or "")
        if any(pattern.search(t.strip()) for t in texts):
            return control
    described = [
        (candidates.nth(i).locator("label.widget-label").first.text_content() or "").strip()
        for i in range(candidates.count())
        if kind != "button"
    ]
    raise LookupError(f"no {kind} whose description matches /{label}/; the {kind}s here: {described}")


def widget_root(control: Locator) -> Locator:
    """The widget's top-level output: the outermost ``.jp-OutputArea-output`` around the control."""
    return control.locator(
        "xpath=ancestor::div[contains(concat(' ', @class, ' '), ' jp-OutputArea-output ')][last()]"
    )


def figure(root: Locator) -> Figure:
    return Figure(**root.evaluate(_FIGURE_HASH_JS))


def control_value(control: Locator, kind: str) -> str:
    if kind == "slider":
        readout = control.locator(".widget-readout")
        if readout.count():
            return (readout.first.text_content() or "").strip()
        return control.locator(".noUi-handle").first.get_attribute("aria-valuenow") or ""
    if kind == "dropdown":
        return control.locator("select").input_value()
    if kind == "toggle":
        return (control.locator("button.mod-active").first.text_content() or "").strip()
    if kind == "radio":
        checked = control.locator("input:checked")
        return checked.first.get_attribute("value") or "" if checked.count() else ""
    if kind == "checkbox":
        return str(control.locator("input").is_checked())
    return ""


def change_control(page: Page, control: Locator, kind: str) -> None:
    """Move the control the way a person would: drag a slider, pick another option, click."""
    control.scroll_into_view_if_needed()
    if kind == "slider":
        track = control.locator(".noUi-target").first.bounding_box()
        handle = control.locator(".noUi-handle").first.bounding_box()
        if track is None or handle is None:
            raise AssertionError("the slider is not visible (no bounding box)")
        x0, y0 = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
        position = (x0 - track["x"]) / max(track["width"], 1)
        target = 0.8 if position < 0.5 else 0.2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(track["x"] + target * track["width"], y0, steps=8)
        page.mouse.up()
    elif kind == "dropdown":
        select = control.locator("select")
        current = select.input_value()
        values = [
            v for v in select.locator("option").evaluate_all("os => os.map(o => o.value)") if v != current
        ]
        if not values:
            raise AssertionError("the dropdown has a single option; nothing to change")
        select.select_option(values[0])
    elif kind == "toggle":
        control.locator("button:not(.mod-active)").first.click()
    elif kind == "radio":
        control.locator("input:not(:checked)").first.check()
    elif kind == "checkbox":
        control.locator("input").first.click()
    elif kind == "button":
        control.locator("button").first.click() if control.locator("button").count() else control.click()
    else:
        raise ValueError(f"unknown control kind {kind!r}")


def move_and_watch(
    page: Page, control: Locator, kind: str, root: Locator, timeout_s: float = 60, settle_s: float = 1.0
) -> Move:
    """Change ``control`` and wait until the figure in ``root`` changes and then stays put for ``settle_s``."""
    before = figure(root)
    value_before = control_value(control, kind)
    start = time.monotonic()
    change_control(page, control, kind)
    first_change = None
    current = before
    stable_since = time.monotonic()
    deadline = start + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        latest = figure(root)
        if latest.hash != current.hash:
            current, stable_since = latest, time.monotonic()
            if first_change is None:
                first_change = stable_since - start
        elif first_change is not None and time.monotonic() - stable_since >= settle_s:
            break
    seconds = first_change if first_change is not None else float("nan")
    return Move(kind, before, current, seconds, value_before, control_value(control, kind))


def stale_figure_copies(scope: Locator) -> list[str]:
    """One line per static copy of a widget's figure shown after the widget (see ``_STALE_COPIES_JS``)."""
    found = scope.evaluate(_STALE_COPIES_JS)
    return [
        f"output area {f['output']}: a static {f['size']} image after a widget showing an image of the same "
        "size, a stale copy of the widget's figure: the inline backend shows every open pyplot figure again "
        "when the cell ends; plt.close(fig) once the widget holds it (the widget can still display it)"
        for f in found
    ]


def safe_name(text: str) -> str:
    """A file name made of the letters, digits, dots, dashes and underscores of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def screenshot(locator: Locator, path: Path) -> None:
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(path), animations="disabled")
