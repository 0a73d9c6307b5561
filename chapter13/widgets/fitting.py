"""Widget for 13.5, from model to data: generate (or enter) a localisation data set, fit it, compare.

==============================  ============================  ============================================
widget                          pure function                 model
==============================  ============================  ============================================
:func:`fitting_widget`          :func:`fitting_figure`        :func:`chapter13.fitting.simulate_table`,
                                                              :func:`chapter13.fitting.predicted_proportions`,
                                                              :func:`chapter13.fitting.compare_strategies`
==============================  ============================  ============================================

The sliders set a simulated observer (Körding et al.'s design, 35 conditions); every move draws a new
data set from it and shows the data (markers) with the observer's own predictions (lines): the
auditory reports for the sound straight ahead with each flash position, and the visual bias of the
heard position against the disparity. That update answers within 0.1 s (it samples trials and
evaluates the response model on a coarse grid; the view blits only what changed). Fitting the three
strategies is a button, because it takes seconds (the button says so): the fitted curves of the
strategy AIC picks are then drawn dashed, and the AIC differences are written under the image. Trials
can also be pasted (``s_v, s_a, r_v, r_a`` a line, ``-`` for missing) and used instead of the
simulated ones.
"""

from __future__ import annotations

import html

import ipywidgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from chapter13 import fitting, neuro
from chapter13.plotting import OKABE_ITO
from chapter13.widgets.view import View, ViewBox, interactive

__all__ = ["EXAMPLE_TRIALS", "FittingView", "fitting_figure", "fitting_widget"]

DPI = 72
PREVIEW_GRID = 13
"""Quadrature points per axis for the observer's curves while a slider moves (the fits use 21)."""

EXAMPLE_TRIALS = """# s_v, s_a, r_v, r_a  (degrees; - for no stimulus or no report)
-10, 0, -10, -5
-10, 0, -10, 0
-5, 0, -5, -5
-5, 0, -5, 0
0, 0, 0, 0
0, 0, 0, 0
5, 0, 5, 5
5, 0, 5, 0
10, 0, 10, 0
10, 0, 10, 5
-, 0, -, 0
-, 0, -, 5
0, -, 0, -
"""
"""A few typed-in trials to start from (the text box of :func:`fitting_widget` holds them)."""


class FittingView(View):
    """Figure of the fitting widget; :meth:`update` redraws it for new settings."""

    def __init__(self, buttons: tuple[float, ...] = neuro.KORDING_BUTTONS) -> None:
        super().__init__(figsize=(10.5, 3.5), dpi=DPI)
        self.buttons = np.asarray(buttons, dtype=float)
        self.ax1, self.ax2 = self.fig.subplots(1, 2)
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.88, wspace=0.22)
        k = len(self.buttons)
        colors = [f"C{i}" for i in range(k)]
        zeros = np.zeros(k)
        self.data_lines = [self.ax1.plot(self.buttons, zeros, "o", color=c, ms=5)[0] for c in colors]
        self.model_lines = [self.ax1.plot(self.buttons, zeros, "-", color=c, lw=1.5)[0] for c in colors]
        self.fit_lines = [
            self.ax1.plot(self.buttons, zeros, "--", color=c, lw=1.2, visible=False)[0] for c in colors
        ]
        self.ax1.set_xlim(self.buttons[0] - 1.5, self.buttons[-1] + 1.5)
        self.ax1.set_ylim(-0.02, 1.02)
        self.ax1.set_xlabel("auditory report (button, deg)")
        self.ax1.set_ylabel("proportion")
        self.labels = [self.ax1.text(0.02, 0.96 - 0.075 * i, "", transform=self.ax1.transAxes, va="top", fontsize=8,
                                     color=c) for i, c in enumerate(colors)]  # fmt: skip
        span = self.buttons[-1] - self.buttons[0]
        grid = np.linspace(0, span, 2)
        self.bias_data = self.ax2.plot(grid, grid * 0, "ko", ms=5)[0]
        self.bias_model = self.ax2.plot(grid, grid * 0, "-", color="0.4", lw=1.5)[0]
        self.bias_fit = self.ax2.plot(
            grid, grid * 0, "--", color=OKABE_ITO["vermillion"], lw=1.5, visible=False
        )[0]
        self.ax2.axhline(0, color="0.8", lw=0.8)
        self.ax2.set_xlim(0, span * 1.05)
        self.ax2.set_ylim(-0.3, 1.05)
        self.ax2.set_xlabel("audio-visual disparity (deg)")
        self.ax2.set_ylabel("visual bias of the heard position")
        proxies = [Line2D([], [], ls="", marker="o", color="k", ms=5), Line2D([], [], color="0.4", lw=1.5),
                   Line2D([], [], ls="--", color=OKABE_ITO["vermillion"], lw=1.5)]  # fmt: skip
        self.ax2.legend(proxies, ["data", "simulated observer", "best fit"], fontsize=8, loc="upper right")
        self.title = self.fig.suptitle("", fontsize=10)
        self.dynamic = [*self.data_lines, *self.model_lines, *self.fit_lines, *self.labels, self.bias_data,
                        self.bias_model, self.bias_fit, self.ax1.title, self.title]  # fmt: skip
        self.table: fitting.TrialTable | None = None
        self.entered: fitting.TrialTable | None = None
        self.comparison: fitting.Comparison | None = None
        self._key: tuple | None = None

    # -- state ----------------------------------------------------------------------------------------

    @staticmethod
    def observer(p_common: float, sigma_v: float, sigma_a: float, sigma_p: float) -> dict[str, float]:
        return {**fitting.KORDING_OBSERVER, "p_common": p_common, "sigma_v": sigma_v, "sigma_a": sigma_a,
                "sigma_p": sigma_p}  # fmt: skip

    def fit(self, starts: int = 1, screen: int = 4) -> fitting.Comparison:
        """Fit the three strategies to the data shown (seconds); the next :meth:`update` draws them."""
        if self.table is None:
            raise ValueError("no data yet: call update() first")
        self.comparison = fitting.compare_strategies(self.table, starts=starts, screen=screen)
        return self.comparison

    def update(
        self,
        strategy: str = "matching",
        p_common: float = neuro.KORDING_2007["p_common"],
        sigma_v: float = neuro.KORDING_2007["sigma_v"],
        sigma_a: float = neuro.KORDING_2007["sigma_a"],
        sigma_p: float = neuro.KORDING_2007["sigma_p"],
        n_trials: int = 1000,
        seed: int = 0,
        source: str = "simulated",
    ) -> Figure:
        if source not in ("simulated", "entered"):
            raise ValueError(f"source must be 'simulated' or 'entered', got {source!r}")
        observer = self.observer(p_common, sigma_v, sigma_a, sigma_p)
        if source == "entered":
            if self.entered is None:
                raise ValueError("no trials entered yet: paste them in the box and press 'use these trials'")
            key: tuple = ("entered", id(self.entered))
            table = self.entered
        else:
            key = ("simulated", strategy, p_common, sigma_v, sigma_a, sigma_p, int(n_trials), int(seed))
            table = (
                fitting.simulate_table(observer, strategy, int(n_trials), rng=int(seed))
                if key != self._key
                else self.table
            )
        if key != self._key:
            self.comparison = None  # fits belong to the data they were made on
            self._key, self.table = key, table
        assert table is not None
        seen = fitting.observed_proportions(table)
        if not len(seen["s_v"]):
            raise ValueError(
                "these trials have no audio-visual trials to draw; add some with a flash and a sound"
            )
        sounds = np.unique(seen["s_a"])
        sound = sounds[np.argmin(np.abs(sounds))]
        here = np.flatnonzero(seen["s_a"] == sound)[: len(self.data_lines)]
        model = fitting.predicted_proportions(
            observer, strategy, seen["s_v"], seen["s_a"], table.buttons, n_grid=PREVIEW_GRID
        )
        fitted = None
        if self.comparison is not None:
            best = self.comparison.fits[self.comparison.best]
            fitted = fitting.predicted_proportions(
                best.params, best.strategy, seen["s_v"], seen["s_a"], table.buttons
            )
        for i, (dots, line, dashed, label) in enumerate(
            zip(self.data_lines, self.model_lines, self.fit_lines, self.labels, strict=True)
        ):
            used = i < len(here)
            for artist in (dots, line, label):
                artist.set_visible(used)
            dashed.set_visible(used and fitted is not None)
            if not used:
                continue
            c = here[i]
            counts = seen["auditory"][c]
            dots.set_data(table.buttons, counts / max(counts.sum(), 1))
            line.set_data(table.buttons, model["auditory"][c])
            if fitted is not None:
                dashed.set_data(table.buttons, fitted["auditory"][c])
            label.set_text(f"flash at {seen['s_v'][c]:+g}°")
        self.ax1.set_title(
            f"sound at {sound:g}°: data (dots), observer (lines), best fit (dashed)", fontsize=9
        )
        weights = seen["auditory"].sum(axis=1, keepdims=True)
        d, bias = fitting.visual_bias(seen["s_v"], seen["s_a"], seen["auditory"], table.buttons)
        self.bias_data.set_data(d, bias)
        dm, bm = fitting.visual_bias(seen["s_v"], seen["s_a"], model["auditory"] * weights, table.buttons)
        self.bias_model.set_data(dm, bm)
        self.bias_fit.set_visible(fitted is not None)
        if fitted is not None:
            self.bias_fit.set_data(
                *fitting.visual_bias(seen["s_v"], seen["s_a"], fitted["auditory"] * weights, table.buttons)
            )
        what = "entered" if source == "entered" else f"simulated ({strategy})"
        verdict = f"; AIC picks {self.comparison.best}" if self.comparison is not None else ""
        self.title.set_text(f"{len(table)} {what} trials{verdict}")
        return self.fig


def fitting_figure(
    strategy: str = "matching",
    p_common: float = neuro.KORDING_2007["p_common"],
    sigma_v: float = neuro.KORDING_2007["sigma_v"],
    sigma_a: float = neuro.KORDING_2007["sigma_a"],
    sigma_p: float = neuro.KORDING_2007["sigma_p"],
    n_trials: int = 1000,
    seed: int = 0,
) -> Figure:
    """A simulated localisation data set (Körding et al.'s design) and the simulated observer's
    predictions: auditory reports for the sound straight ahead with each flash (left), the visual bias
    of the heard position against the disparity (right)."""
    return FittingView().update(strategy, p_common, sigma_v, sigma_a, sigma_p, n_trials, seed)


def _comparison_html(comparison: fitting.Comparison) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(r['strategy']))}</td><td>{r['log_likelihood']:.1f}</td><td>{r['d_aic']:.1f}</td>"
        f"<td>{r['d_bic']:.1f}</td><td>{r['weight']:.2f}</td></tr>"
        for r in comparison.rows()
    )
    best = comparison.fits[comparison.best]
    params = ", ".join(
        f"{n} {best.params[n]:.2f} [{best.intervals[n][0]:.2f}, {best.intervals[n][1]:.2f}]"
        for n in best.free
    )
    return (
        "<table><tr><th>strategy</th><th>log L</th><th>dAIC</th><th>dBIC</th><th>weight</th></tr>"
        f"{rows}</table><div>AIC picks <b>{html.escape(comparison.best)}</b>: {html.escape(params)} "
        f"({comparison.seconds:.1f} s)</div>"
    )


def fitting_widget() -> ViewBox:
    """Sliders for a simulated observer and its data set, a button that fits the three strategies, and
    a text box to type in trials instead.

    The returned box is a :class:`~chapter13.widgets.view.ViewBox` (``.controls``, ``.view``, ``.timer``,
    ``.update()``) with ``.fit_button``, ``.results``, ``.entry`` and ``.use_button`` added; ``.fit()``
    runs what the fit button runs."""
    k = neuro.KORDING_2007
    controls = dict(
        strategy=ipywidgets.Dropdown(options=neuro.STRATEGIES, value="matching", description="strategy"),
        p_common=ipywidgets.FloatSlider(
            value=k["p_common"], min=0.02, max=0.98, step=0.02, description="p_common"
        ),
        sigma_v=ipywidgets.FloatSlider(value=k["sigma_v"], min=0.5, max=10, step=0.1, description="σ_V"),
        sigma_a=ipywidgets.FloatSlider(value=k["sigma_a"], min=1, max=20, step=0.2, description="σ_A"),
        sigma_p=ipywidgets.FloatSlider(value=k["sigma_p"], min=2, max=40, step=0.5, description="σ_P"),
        n_trials=ipywidgets.IntSlider(value=1000, min=70, max=3500, step=35, description="trials"),
        seed=ipywidgets.IntSlider(value=0, min=0, max=50, description="seed"),
        source=ipywidgets.ToggleButtons(
            options=("simulated", "entered"), value="simulated", description="data"
        ),
    )
    rows = [["strategy", "p_common", "sigma_v"], ["sigma_a", "sigma_p"], ["n_trials", "seed", "source"]]
    view = FittingView()
    box = interactive(view, controls, rows, view.update, errors=(ValueError,), continuous_update=False,
                      wide_descriptions=True)  # fmt: skip
    fit_button = ipywidgets.Button(description="Fit the three strategies (takes about 5 s)",
                                   layout=ipywidgets.Layout(width="320px"))  # fmt: skip
    results = ipywidgets.HTML("Press the button to fit averaging, selection and matching to the data shown.")
    entry = ipywidgets.Textarea(value=EXAMPLE_TRIALS, rows=6, layout=ipywidgets.Layout(width="420px"),
                                description="trials")  # fmt: skip
    use_button = ipywidgets.Button(description="use these trials")

    def run_fit(_button: object = None) -> None:
        results.value = "fitting averaging, selection and matching ..."
        try:
            comparison = view.fit()
        except ValueError as error:
            results.value = f"<span style='color:#b00'>⚠ {html.escape(str(error))}</span>"
            return
        box.update()
        results.value = _comparison_html(comparison)

    def use_entered(_button: object = None) -> None:
        try:
            view.entered = fitting.parse_trials(entry.value)
        except ValueError as error:
            results.value = f"<span style='color:#b00'>⚠ {html.escape(str(error))}</span>"
            return
        results.value = f"using {len(view.entered)} entered trials; press the fit button to fit them"
        if controls["source"].value == "entered":
            box.update()
        else:
            controls["source"].value = "entered"

    fit_button.on_click(run_fit)
    use_button.on_click(use_entered)
    box.children = (
        *box.children,
        ipywidgets.HBox([fit_button]),
        results,
        ipywidgets.HBox([entry, use_button]),
    )
    box.fit_button, box.results, box.entry, box.use_button = fit_button, results, entry, use_button
    box.fit = run_fit
    return box
