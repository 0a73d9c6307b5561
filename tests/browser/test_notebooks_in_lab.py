"""Every notebook runs in JupyterLab in a real (headless) Chromium, in quick mode, and its widgets work.

For each notebook: open it in JupyterLab, Run All Cells, then assert that
- no cell shows an error, every code cell ran, and no output shows a widget error or a traceback;
- every widget view the kernel displayed is rendered, and at least the widgets the notebook promises
  (``PROMISES`` below: the controls named by their description) are on the page;
- moving each promised control changes the widget's figure (SHA-256 of the image bytes before and
  after), e.g. the guidance-scale slider of 13.3, the noise-schedule controls of 13.2 and the
  congruence slider of 13.5;
- no request left localhost (the notebooks work offline) and the kernel logged no traceback.

Screenshots of each widget before and after each move are written to
``tests/browser/screenshots/<test>/``, with ``summary.json`` (timings, image digests, values).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from urllib.parse import urlparse

import pytest
from labdriver import LOCAL_HOSTS, NOTEBOOK_DIR, Control, Promise, safe_name

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
RUN_ALL_TIMEOUT_S = 420
"""Quick mode runs a notebook in well under a minute; the browser and 2 shared cores get slack."""


PROMISES: dict[str, Promise] = {
    "13.0": Promise(1, (Control("dropdown", r"^digit$"), Control("slider", r"^page$"))),
    "13.1": Promise(1, (Control("slider", r"^tau$"),)),  # the temperature widget (log slider)
    "13.2": Promise(  # the noise-schedule widget: family, T and the beta range
        1, (Control("dropdown", r"^family$"), Control("slider", r"^T$"), Control("slider", r"^β_end$"))
    ),
    "13.3": Promise(  # the guidance-scale widget: the scale slider (0-10) and the prompt menu
        1, (Control("slider", r"^guidance s$"), Control("dropdown", r"^prompt$"))
    ),
    "13.4": Promise(  # no ipywidgets: playable sounds and JavaScript animation players
        0,
        elements=((".jp-OutputArea-output audio[controls]", 4), (".jp-OutputArea-output .animation img", 2)),
    ),
    "13.5": Promise(  # tug-of-war, ventriloquist, McGurk congruence, flash-beep
        4,
        (
            Control("slider", r"^congruence$"),
            Control("slider", r"^σ visual$"),
            Control("slider", r"^disparity"),
            Control("slider", r"^beeps$"),
        ),
    ),
    "13.6": Promise(0, elements=((".jp-OutputArea-output .animation img", 1),)),  # the denoising animation
    "13.7": Promise(0, elements=((".jp-OutputArea-output img", 4),)),  # no widgets: the four demos' figures
}
"""Keyed by the notebook's section number (its file name's first four characters)."""

BADGE_HOSTS = {"colab.research.google.com", "mybinder.org", "img.shields.io"}
"""The Colab/Binder badge images in the first cell: offline they show their alt text, nothing breaks."""


def external_request(request) -> bool:
    """True for a request that leaves this machine, other than a badge image."""
    parsed = urlparse(request.url)
    if parsed.scheme not in {"http", "https", "ws", "wss"} or parsed.hostname in LOCAL_HOSTS:
        return False
    return not (request.resource_type == "image" and parsed.hostname in BADGE_HOSTS)


def _kernel_tracebacks(log: str) -> list[str]:
    """Tracebacks a kernel wrote to the server log (failed widget callbacks end up there)."""
    blocks = re.findall(r"Traceback \(most recent call last\):.*?(?:\n\S[^\n]*Error[^\n]*)", log, re.S)
    return [b[-1500:] for b in blocks]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_widgets_respond(
    notebook, lab_server, browser_context, screenshot_dir, record_move
):
    from labdriver import (
        TRACEBACK_TEXT,
        cell_errors,
        find_control,
        move_and_watch,
        run_all,
        screenshot,
        side_channel_messages,
        side_channel_problems,
        stale_figure_copies,
        wait_widgets_rendered,
        widget_root,
        widget_view_counts,
    )
    from labdriver import open_notebook as open_in_lab

    path = f"notebooks/{notebook.name}"
    promise = PROMISES.get(notebook.name[:4])
    assert promise is not None, f"add {notebook.name[:4]} to PROMISES (the widgets its notebook must show)"
    log_start = lab_server.log_size()
    page = browser_context.new_page()
    external: list[str] = []
    page_errors: list[str] = []
    page.on("request", lambda r: external.append(r.url) if external_request(r) else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    summary: dict = {"notebook": notebook.name}
    try:
        started = time.monotonic()
        open_in_lab(page, lab_server.url, lab_server.token, path)
        summary["open_seconds"] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        result = run_all(page, path, RUN_ALL_TIMEOUT_S)
        summary["run_all_seconds"] = round(time.monotonic() - started, 2)
        report = wait_widgets_rendered(page, path)
        summary["cells"] = len(report)

        problems = cell_errors(report)
        assert not problems, f"{notebook.name} in JupyterLab:\n" + "\n".join(problems)
        assert result.get("ok") is True, f"Run All Cells did not complete: {result}"

        promised, rendered, closed = widget_view_counts(report)
        summary["widget_views"] = {"displayed_by_kernel": promised, "rendered": rendered, "closed": closed}
        missing = [
            f"cell {c['index']} ({c['source'][:60]!r}): {c['outputText'][:200]!r}"
            for c in report
            if sum(o["modelId"] is not None for o in c["outputs"]) > c["renderedViews"] + c["closedViews"]
        ]
        assert rendered + closed == promised and not missing, (
            f"{notebook.name}: the kernel displayed {promised} widget views, {rendered} rendered and {closed} "
            "were closed by the kernel; not rendered (is the @jupyter-widgets/jupyterlab-manager extension "
            "installed and matching ipywidgets?):\n" + "\n".join(missing)
        )
        notebook_scope = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first
        views = notebook_scope.locator(
            ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output:has(> .jupyter-widgets)"
        )
        for i in range(views.count()):
            screenshot(views.nth(i), screenshot_dir / f"widget-{i}.png")
        assert rendered >= promise.min_views, (
            f"{notebook.name} promises at least {promise.min_views} widgets, {rendered} are on the page"
        )
        for selector, least in promise.elements:
            found = notebook_scope.locator(selector).count()
            summary.setdefault("elements", {})[selector] = found
            assert found >= least, f"{notebook.name} promises {least} x {selector!r}, found {found}"

        moves = []
        for control_spec in promise.controls:
            control = find_control(notebook_scope, control_spec.kind, control_spec.label)
            root = widget_root(control)
            name = safe_name(f"{control_spec.kind}-{control_spec.label.strip('^$')}")
            screenshot(root, screenshot_dir / f"{name}-before.png")
            move = move_and_watch(page, control, control_spec.kind, root)
            screenshot(root, screenshot_dir / f"{name}-after.png")
            moves.append({**asdict(move), "control": name, "changed": move.changed})
            record_move(
                page="lab " + notebook.stem,
                control=name,
                value_before=move.value_before,
                value_after=move.value_after,
                seconds=move.seconds,
                changed=move.changed,
            )
            what = f"{notebook.name}: after moving the {control_spec.kind} /{control_spec.label}/"
            shown = root.inner_text()
            assert not TRACEBACK_TEXT.search(shown), f"{what} the widget shows a traceback:\n{shown[-3000:]}"
            tracebacks = _kernel_tracebacks(lab_server.log_text(log_start))
            tracebacks += side_channel_problems(side_channel_messages(page))
            assert not tracebacks, f"{what} the kernel reported:\n" + "\n---\n".join(tracebacks)
            assert move.value_after != move.value_before, (
                f"{notebook.name}: moving the {control_spec.kind} /{control_spec.label}/ left its value at "
                f"{move.value_before!r}"
            )
            if control_spec.moves_figure:
                assert move.before.images > 0, (
                    f"{notebook.name}: the widget with the {control_spec.kind} /{control_spec.label}/ shows no image"
                )
                assert move.changed, (
                    f"{notebook.name}: moving the {control_spec.kind} /{control_spec.label}/ from "
                    f"{move.value_before!r} to {move.value_after!r} did not change the figure"
                )
        summary["moves"] = moves
        stale = stale_figure_copies(notebook_scope)
        assert not stale, f"{notebook.name} shows a widget's figure twice:\n" + "\n".join(stale)

        problems = cell_errors(wait_widgets_rendered(page, path))
        assert not problems, f"{notebook.name} after moving its widgets:\n" + "\n".join(problems)
        tracebacks = _kernel_tracebacks(lab_server.log_text(log_start))
        tracebacks += side_channel_problems(side_channel_messages(page))
        assert not tracebacks, f"{notebook.name}: the kernel reported:\n" + "\n---\n".join(tracebacks)
        summary["kernel_side_messages"] = side_channel_messages(page)
        hint = (
            " (matplotlib's anim.to_jshtml() links Font Awesome from a CDN: show chapter13.plotting."
            "animation_html(anim) instead)"
            if any("font-awesome" in url for url in external)
            else ""
        )
        assert not external, f"{notebook.name}: requests left localhost (not offline): {external[:10]}{hint}"
        assert not page_errors, f"{notebook.name}: uncaught JavaScript errors: {page_errors[:5]}"
    finally:
        summary["external_requests"] = external
        summary["page_errors"] = page_errors
        (screenshot_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        try:
            page.screenshot(path=str(screenshot_dir / "page.png"))
            page.evaluate(
                "(path) => { const w = Array.from(window.jupyterapp.shell.widgets('main'))"
                ".find(w => w.context && w.context.path === path);"
                " return w ? w.sessionContext.shutdown() : null; }",
                path,
            )
        finally:
            page.close()
