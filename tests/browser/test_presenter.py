"""Presenter mode: Voilà serves ``presenter/`` (as ``make present`` does) and every page works offline.

For the index and each presenter page, in headless Chromium:
- the index lists every presenter notebook;
- a page renders with no error and no code (Voilà strips the inputs), shows at least the widgets it
  promises, and moving the promised controls changes the figure (image bytes before and after);
- no request leaves the machine except Voilà's Font Awesome stylesheet links (icon fonts, unused by
  these widgets; offline they fail and nothing else changes), and no JavaScript error is raised.
Screenshots: ``tests/browser/screenshots/<test>/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from urllib.parse import urlparse

import pytest
from labdriver import LOCAL_HOSTS, PRESENTER_DIR, Control, Promise, safe_name

PAGES = sorted(PRESENTER_DIR.glob("*.ipynb"))
RENDER_TIMEOUT_S = 300

PRESENTER_PROMISES: dict[str, Promise] = {
    "13.0": Promise(1, (Control("slider", r"^page$"),)),
    "13.1": Promise(1, (Control("slider", r"^tau$"),)),
    "13.2": Promise(1, (Control("dropdown", r"^family$"), Control("slider", r"^T$"))),
    "13.3": Promise(1, (Control("slider", r"^guidance s$"), Control("dropdown", r"^prompt$"))),
    "13.4": Promise(0, elements=((".animation img", 1), ("audio[controls]", 3))),
    "13.5": Promise(
        4,
        (
            Control("slider", r"^σ visual$"),
            Control("slider", r"^congruence$"),
            Control("slider", r"^disparity"),
            Control("slider", r"^beeps$"),
        ),
    ),
    "13.6": Promise(0, elements=((".animation img", 1),)),
    "13.7": Promise(0, elements=((".jp-OutputArea-output img", 4),)),  # the four demos' figures
}
"""Keyed by the page's section number: the widgets each presenter page must show and redraw."""

CDN_STYLESHEETS = ("cdn.jsdelivr.net/npm/@fortawesome/", "cdn.jsdelivr.net/npm/font-awesome@")
"""Voilà's templates link Font Awesome from a CDN; offline the link fails and only icon glyphs go."""


def external_request(request) -> bool:
    parsed = urlparse(request.url)
    if parsed.scheme not in {"http", "https", "ws", "wss"} or parsed.hostname in LOCAL_HOSTS:
        return False
    return not (request.resource_type == "stylesheet" and any(s in request.url for s in CDN_STYLESHEETS))


def _errors_on_page(text: str) -> list[str]:
    markers = (
        "Traceback (most recent call last)",
        "There was an error when executing cell",
        "Error displaying widget",
    )
    return [m for m in markers if m in text]


def test_index_lists_every_presenter_page(voila_server, browser_context, screenshot_dir):
    page = browser_context.new_page()
    try:
        page.goto(voila_server.url + "/", wait_until="domcontentloaded")
        for notebook in PAGES:
            page.get_by_text(notebook.name).first.wait_for(timeout=30_000)
        page.screenshot(path=str(screenshot_dir / "index.png"))
    finally:
        page.close()


@pytest.mark.parametrize("notebook", PAGES, ids=lambda p: p.stem)
def test_presenter_page(notebook, voila_server, browser_context, screenshot_dir, record_move):
    from labdriver import (
        TRACEBACK_TEXT,
        find_control,
        move_and_watch,
        screenshot,
        stale_figure_copies,
        widget_root,
    )

    promise = PRESENTER_PROMISES.get(notebook.name[:4])
    assert promise is not None, f"add {notebook.name[:4]} to PRESENTER_PROMISES (what its page must show)"
    source = json.loads(notebook.read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in source["cells"] if c["cell_type"] == "code"]
    page = browser_context.new_page()
    external: list[str] = []
    page_errors: list[str] = []
    page.on("request", lambda r: external.append(r.url) if external_request(r) else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    summary: dict = {"page": notebook.name}
    try:
        started = time.monotonic()
        page.goto(f"{voila_server.url}/voila/render/{notebook.name}", wait_until="commit")
        views = page.locator(
            ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output:has(> .jupyter-widgets)"
        )
        # Voilà streams the page while the kernel runs the notebook; done when the spinner is gone and
        # the widgets are drawn, or as soon as an error shows.
        page.wait_for_function(
            """(n) => {
              const text = document.body ? document.body.innerText : '';
              if (/Traceback \\(most recent call last\\)|There was an error when executing cell/.test(text)) return true;
              const views = document.querySelectorAll(
                '.jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output > .jupyter-widgets');
              return !document.getElementById('loading') && views.length >= n;
            }""",
            arg=promise.min_views,
            timeout=RENDER_TIMEOUT_S * 1000,
            polling=500,
        )
        page.wait_for_load_state("load", timeout=RENDER_TIMEOUT_S * 1000)
        summary["render_seconds"] = round(time.monotonic() - started, 2)
        body = page.locator("body").inner_text()
        assert not _errors_on_page(body), (
            f"{notebook.name}: the page shows {_errors_on_page(body)}:\n{body[-3000:]}"
        )
        assert page.locator(".jp-InputArea-editor, .cm-editor, .CodeMirror").count() == 0, (
            f"{notebook.name}: code editors are visible; presenter pages must hide code (--strip_sources=True)"
        )
        for cell in code:
            line = next((ln for ln in cell.splitlines() if ln.strip()), "")
            assert line not in body, f"{notebook.name}: its code is visible on the page ({line!r})"
        summary["widget_views"] = views.count()
        assert views.count() >= promise.min_views, (
            f"{notebook.name}: {views.count()} widgets rendered, the page promises {promise.min_views}"
        )
        for selector, least in promise.elements:
            try:  # Voila renders outputs in the browser after the load event: wait for them, then count
                page.locator(selector).nth(least - 1).wait_for(state="attached", timeout=60_000)
            except Exception as error:  # playwright's TimeoutError (playwright is imported only when present)
                if type(error).__name__ != "TimeoutError":
                    raise  # the assertion below says how many there are after a timeout
            found = page.locator(selector).count()
            summary.setdefault("elements", {})[selector] = found
            assert found >= least, f"{notebook.name} promises {least} x {selector!r}, found {found}"
        for i in range(views.count()):
            screenshot(views.nth(i), screenshot_dir / f"widget-{i}.png")
        page.screenshot(path=str(screenshot_dir / "page.png"), full_page=True)

        moves = []
        for spec in promise.controls:
            control = find_control(page.locator("body"), spec.kind, spec.label)
            root = widget_root(control)
            name = safe_name(f"{spec.kind}-{spec.label.strip('^$')}")
            screenshot(root, screenshot_dir / f"{name}-before.png")
            move = move_and_watch(page, control, spec.kind, root)
            screenshot(root, screenshot_dir / f"{name}-after.png")
            moves.append({**asdict(move), "control": name, "changed": move.changed})
            record_move(
                page="voila " + notebook.stem,
                control=name,
                value_before=move.value_before,
                value_after=move.value_after,
                seconds=move.seconds,
                changed=move.changed,
            )
            what = f"{notebook.name}: the {spec.kind} /{spec.label}/"
            shown = root.inner_text()
            assert not TRACEBACK_TEXT.search(shown), (
                f"{what} shows a traceback after a move:\n{shown[-3000:]}"
            )
            assert move.value_after != move.value_before, f"{what} did not move (still {move.value_before!r})"
            if spec.moves_figure:
                assert move.before.images > 0, f"{what}: its widget shows no image"
                assert move.changed, (
                    f"{what} moved {move.value_before!r} -> {move.value_after!r}, figure unchanged"
                )
        summary["moves"] = moves
        stale = stale_figure_copies(page.locator("body"))
        assert not stale, f"{notebook.name} shows a widget's figure twice:\n" + "\n".join(stale)
        assert not external, f"{notebook.name}: requests left localhost (not offline): {external[:10]}"
        assert not page_errors, f"{notebook.name}: uncaught JavaScript errors: {page_errors[:5]}"
    finally:
        summary["external_requests"] = external
        summary["page_errors"] = page_errors
        (screenshot_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        page.close()
