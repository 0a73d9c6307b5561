"""How fast does every widget answer? Median and worst update time against the live-teaching budget.

Each widget is measured two ways, on this machine's CPU, with the widgets' own timer
(``chapter13.widgets.view.LatencyTimer``) and PNG encoder (``chapter13.widgets.view.png_bytes``):

- **pure**: its pure function called with a new value, plus the PNG of the figure it returns (a full
  draw), i.e. the work one update does when nothing is reused;
- **widget**: the ``ipywidgets`` object built by the widget's builder, with its control set to a new
  value (``control.value = v``), which runs the widget's own observer: the real update, including any
  caching, the blitted render of its view and the PNG encoding. ``own`` is the median the widget's
  own timer (``box.timer``) recorded for the same updates, which leaves out ipywidgets' dispatch.

Each update uses a value not seen before (a sweep across the control's range), so caches keyed on the
value do not flatter the numbers; the first update (cold caches, model loading) is shown apart.
The budget (issue 9) is 0.1 s for pure plots and 1 s for anything that samples a model; a widget is
over budget when the **median** wall time of its ipywidgets updates exceeds it. Exit status 1 if any
widget is over budget or could not be measured.

    .venv/bin/python benchmarks/bench_latency.py              # all widgets, 7 updates each
    CH13_QUICK=1 .venv/bin/python benchmarks/bench_latency.py # 3 updates each
    .venv/bin/python benchmarks/bench_latency.py -k mcgurk -n 15
    .venv/bin/python benchmarks/bench_latency.py --json out.json

Timings are wall-clock on a shared 2-core CPU; the load average is printed with the table (CPU
seconds of this process are shown beside them: they move less with other people's load).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")  # before the widgets below import matplotlib

from chapter13.config import pick
from chapter13.widgets.view import LatencySummary, LatencyTimer, png_bytes

BUDGET_S = {"plot": 0.1, "model": 1.0}
"""Seconds per update: pure plots (schedules, neuro models) and widgets that sample a model."""


@dataclass
class Case:
    """One widget control to measure.

    ``setup()`` returns ``(pure, build)``: ``pure(value)`` calls the pure function for a control value
    and returns what it returns (a Figure is rendered to PNG as part of the timing); ``build()``
    returns the ipywidgets object. ``control`` is a regular expression for the control's
    description; ``values`` the sequence of values to set, in order.
    """

    section: str
    widget: str
    module: str
    kind: str
    control: str
    values: Sequence[Any]
    setup: Callable[[], tuple[Callable[[Any], Any], Callable[[], Any]]]


@dataclass
class Row:
    section: str
    widget: str
    module: str
    control: str
    kind: str
    budget_s: float
    pure_first_s: float = float("nan")
    pure_median_s: float = float("nan")
    pure_p95_s: float = float("nan")
    pure_worst_s: float = float("nan")
    widget_first_s: float = float("nan")
    widget_median_s: float = float("nan")
    widget_p95_s: float = float("nan")
    widget_worst_s: float = float("nan")
    widget_cpu_median_s: float = float("nan")
    widget_own_median_s: float = float("nan")
    updates: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def verdict(self, judge: str = "wall") -> str:
        """ "ok" or "OVER" for the median update (wall clock, or this process's CPU seconds)."""
        if self.error:
            return "ERROR"
        value = self.widget_median_s if judge == "wall" else self.widget_cpu_median_s
        return "ok" if value <= self.budget_s else "OVER"


# ----------------------------------------------------------------------------------------------------
# helpers


def render_if_figure(result: Any) -> Any:
    """A matplotlib Figure as PNG bytes (a full draw, the widgets' encoder), closed if pyplot holds it."""
    from matplotlib.figure import Figure

    if isinstance(result, Figure):
        import matplotlib.pyplot as plt

        png = png_bytes(result)
        plt.close(result)
        return png
    return result


def iter_widgets(root: Any):
    """Every widget below ``root`` (depth first), following ``children``."""
    yield root
    for child in getattr(root, "children", ()) or ():
        yield from iter_widgets(child)


def find_control(root: Any, pattern: str) -> Any:
    import re

    regex = re.compile(pattern, re.I)
    found = [
        w for w in iter_widgets(root) if hasattr(w, "value") and regex.search(getattr(w, "description", ""))
    ]
    if not found:
        names = [getattr(w, "description", "") for w in iter_widgets(root) if getattr(w, "description", "")]
        raise LookupError(f"no control whose description matches /{pattern}/; controls: {names}")
    return found[0]


def sweep(low: float, high: float, n: int, start: float | None = None) -> list[float]:
    """``n`` distinct values spread over [low, high], leaving out the one nearest ``start`` (the
    control's initial value, which would not trigger an update) or else the first."""
    import numpy as np

    values = [float(v) for v in np.linspace(low, high, n + 1)]
    drop = 0 if start is None else int(np.argmin([abs(v - start) for v in values]))
    return values[:drop] + values[drop + 1 :]


# ----------------------------------------------------------------------------------------------------
# cases: one function per widget; each imports lazily so that one missing module fails only its row


def _mnist():
    from chapter13.data import load_mnist

    return load_mnist("train")


def case_gallery(n: int) -> list[Case]:
    def setup():
        from chapter13.widgets.gallery import digit_browser, gallery_figure

        x, y = _mnist()
        return (lambda v: gallery_figure(x, y, digit=7, n=32, page=int(v))), (
            lambda: digit_browser(x, y, n=32)
        )

    return [
        Case(
            "13.0",
            "digit browser",
            "chapter13.widgets.gallery",
            "plot",
            "^page$",
            list(range(1, n + 1)),
            setup,
        )
    ]


def case_temperature(n: int) -> list[Case]:
    import numpy as np

    def setup():
        import textwrap

        import matplotlib.pyplot as plt

        from chapter13 import multimodal as mm
        from chapter13.captions import captioned_digits
        from chapter13.recipes.clip import load_clip
        from chapter13.widgets.temperature import temperature_figure, temperature_widget

        # what notebook 13.1 shows: the shipped tiny CLIP on eight test pairs, one per digit
        clip, _ = load_clip()
        test = captioned_digits("test")
        show = test.subset([int((test.labels == d).nonzero()[0]) for d in range(8)])
        labels = [textwrap.shorten(c, 28, placeholder="…") for c in show.captions]
        similarity = mm.caption_similarity(clip, show)
        with plt.ioff():
            fig = temperature_figure(similarity, 0.07, labels)
        pure = lambda v: temperature_figure(similarity, v, labels, fig=fig)
        return pure, (lambda: temperature_widget(similarity, labels))

    taus = [float(t) for t in np.geomspace(0.01, 1.5, n)]
    return [Case("13.1", "temperature", "chapter13.widgets.temperature", "plot", "^tau$", taus, setup)]


def case_schedule(n: int) -> list[Case]:
    def setup_for(kwarg: str):
        def setup():
            from chapter13.widgets.schedule import schedule_figure, schedule_widget

            x0 = _mnist()[0][0]
            return (lambda v: schedule_figure(x0, **{kwarg: v})), (lambda: schedule_widget(x0))

        return setup

    module = "chapter13.widgets.schedule"
    families = ["cosine", "quadratic", "sigmoid", "linear"] * n
    return [
        Case("13.2", "noise schedule", module, "plot", "^family$", families[:n], setup_for("family")),
        Case(
            "13.2",
            "noise schedule",
            module,
            "plot",
            "^T$",
            [int(t) for t in sweep(50, 2000, n, 1000)],
            setup_for("T"),
        ),
        Case(
            "13.2",
            "noise schedule",
            module,
            "plot",
            "β_end",
            sweep(0.005, 0.4, n, 0.02),
            setup_for("beta_end"),
        ),
    ]


def case_guidance(n: int) -> list[Case]:
    def setup_for(kwarg: str):
        def setup():
            import matplotlib.pyplot as plt

            from chapter13.checkpoints import load_model
            from chapter13.widgets import guidance

            model = load_model(guidance.DEFAULT_MODEL)
            prompts = guidance.example_prompts()
            with plt.ioff():
                fig = plt.figure()

            def pure(value):  # the figure updated in place, as the widget does
                if kwarg == "scale":
                    return guidance.guidance_figure(model, prompts[3], value, fig=fig)
                return guidance.guidance_figure(model, prompts[value % len(prompts)], 3.0, fig=fig)

            return pure, (lambda: guidance.guidance_widget(model))

        return setup

    module = "chapter13.widgets.guidance"
    return [
        Case("13.3", "guidance scale", module, "model", "guidance", sweep(0, 10, n, 3.0), setup_for("scale")),
        Case("13.3", "guidance scale", module, "model", "^prompt$", list(range(n)), setup_for("prompt")),
    ]


def _neuro_case(section, title, figure_fn, widget_fn, control, values, kwarg) -> Case:
    def setup():
        module = importlib.import_module("chapter13.widgets.neuro")
        pure = getattr(module, figure_fn)
        return (lambda v: pure(**{kwarg: v})), getattr(module, widget_fn)

    return Case(section, title, "chapter13.widgets.neuro", "plot", control, values, setup)


def case_neuro(n: int) -> list[Case]:
    return [
        _neuro_case(
            "13.5",
            "McGurk",
            "mcgurk_figure",
            "mcgurk_widget",
            "^congruence$",
            sweep(0, 1, n, 0.0),
            "congruence",
        ),
        _neuro_case(
            "13.5", "McGurk", "mcgurk_figure", "mcgurk_widget", "hearing", sweep(0.1, 1.5, n, None), "sigma_a"
        ),
        _neuro_case(
            "13.5",
            "ventriloquist",
            "ventriloquist_figure",
            "ventriloquist_widget",
            "disparity",
            sweep(0.5, 40, n, 10.0),
            "disparity",
        ),
        _neuro_case(
            "13.5",
            "tug-of-war",
            "tug_of_war_figure",
            "tug_of_war_widget",
            "σ visual",
            sweep(0.2, 15, n, 2.0),
            "sigma_v",
        ),
        _neuro_case(
            "13.5",
            "flash-beep",
            "flash_beep_figure",
            "flash_beep_widget",
            "p_common",
            sweep(0.0, 1.0, n, None),
            "p_common",
        ),
    ]


CASES: list[Callable[[int], list[Case]]] = [
    case_gallery,
    case_temperature,
    case_schedule,
    case_guidance,
    case_neuro,
]


# ----------------------------------------------------------------------------------------------------
# measuring


def _seconds(summary: LatencySummary, row: Row, prefix: str) -> None:
    for name in ("median", "p95", "worst"):
        setattr(row, f"{prefix}_{name}_s", getattr(summary, f"{name}_ms") / 1000)


def measure(case: Case) -> Row:
    row = Row(case.section, case.widget, case.module, case.control, case.kind, BUDGET_S[case.kind])
    try:
        pure, build = case.setup()
        values = list(case.values)
        # pure function: every value, the first (cold caches) apart
        pure_timer = LatencyTimer()
        for v in values:
            pure_timer.time(lambda v=v: render_if_figure(pure(v)))
        row.pure_first_s = pure_timer.wall_ms[0] / 1000
        _seconds(pure_timer.summary(skip_first=1), row, "pure")
        # ipywidgets: build (not timed as an update), then set the control to each value
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):
            widget = build()
            control = find_control(widget, case.control)
            options = getattr(control, "options", None)
            if options is not None:  # a selection: cycle through its options instead
                labels = [o[1] if isinstance(o, tuple) else o for o in options]
                values = [
                    labels[(labels.index(control.value) + 1 + i) % len(labels)] for i in range(len(values))
                ]
            own = getattr(widget, "timer", None)
            already = len(own) if own is not None else 0
            timer = LatencyTimer()
            for v in values:
                timer.time(setattr, control, "value", v)
        summary = timer.summary(skip_first=1)
        row.widget_first_s = timer.wall_ms[0] / 1000
        _seconds(summary, row, "widget")
        row.widget_cpu_median_s = summary.cpu_median_ms / 1000
        row.updates = summary.count
        if own is not None:  # what the widget itself timed for the same updates (first left out)
            row.widget_own_median_s = own.summary(skip_first=already + 1).median_ms / 1000
            if len(own) - already != len(values):
                row.notes.append(f"{len(values)} moves, {len(own) - already} updates timed by the widget")
    except Exception as error:  # a broken widget is a row in the table, not a crash
        row.error = f"{type(error).__name__}: {error}"
        row.notes.append(traceback.format_exc(limit=3))
    return row


def table(rows: list[Row]) -> str:
    head = (
        f"{'sec':5s} {'widget':15s} {'control':14s} {'kind':5s} {'budget':>6s} | "
        f"{'pure 1st':>8s} {'median':>7s} {'p95':>7s} | {'widget 1st':>10s} {'median':>7s} {'p95':>7s} "
        f"{'worst':>7s} {'cpu med':>7s} {'own med':>7s} | wall  cpu"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.error:
            lines.append(
                f"{r.section:5s} {r.widget:15s} {r.control[:14]:14s} {r.kind:5s} {r.budget_s:6.2f} | {r.error}"
            )
            continue
        lines.append(
            f"{r.section:5s} {r.widget:15s} {r.control[:14]:14s} {r.kind:5s} {r.budget_s:6.2f} | "
            f"{r.pure_first_s:8.3f} {r.pure_median_s:7.3f} {r.pure_p95_s:7.3f} | {r.widget_first_s:10.3f} "
            f"{r.widget_median_s:7.3f} {r.widget_p95_s:7.3f} {r.widget_worst_s:7.3f} {r.widget_cpu_median_s:7.3f} "
            f"{r.widget_own_median_s:7.3f} | {r.verdict('wall'):5s} {r.verdict('cpu')}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-n",
        "--updates",
        type=int,
        default=pick(full=7, quick=3),
        help="updates per widget (default 7, 3 with CH13_QUICK=1)",
    )
    parser.add_argument("-k", "--keyword", default="", help="only widgets whose name or module contains this")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads(N) before measuring (default: torch's own choice), to compare settings",
    )
    parser.add_argument(
        "--judge",
        choices=("wall", "cpu"),
        default="wall",
        help="what the exit status judges: wall-clock median (default) or this process's CPU seconds, "
        "a stand-in for an idle machine when others load the CPU (say so when you use it)",
    )
    args = parser.parse_args(argv)
    if args.updates < 2:
        parser.error("--updates must be at least 2 (a first update plus one timed update)")
    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    cases = [c for make in CASES for c in make(args.updates + 1)]
    key = args.keyword.lower()
    cases = [c for c in cases if key in f"{c.widget} {c.module} {c.section}".lower()]
    rows = []
    for case in cases:
        print(f"measuring {case.section} {case.widget} /{case.control}/ ...", file=sys.stderr, flush=True)
        rows.append(measure(case))
    import torch

    load = os.getloadavg()
    print(
        f"\nwidget update latency on {os.cpu_count()} CPUs (torch threads {torch.get_num_threads()}), "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; seconds, wall clock unless 'cpu'"
    )
    print(table(rows))
    over = [r for r in rows if r.verdict(args.judge) != "ok"]
    for r in rows:
        if r.error:
            print(f"\n{r.section} {r.widget}: {r.notes[0] if r.notes else r.error}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                [{**asdict(r), "wall": r.verdict("wall"), "cpu": r.verdict("cpu")} for r in rows],
                handle,
                indent=2,
            )
    print(
        f"\n{len(rows) - len(over)} of {len(rows)} within budget (median {args.judge} time of the ipywidgets updates; "
        f"budget {BUDGET_S['plot']} s pure plots, {BUDGET_S['model']} s model sampling)"
    )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
