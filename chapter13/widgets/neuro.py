"""Widgets for 13.5: McGurk congruence, ventriloquist, reliability tug-of-war, flash-beep.

Each widget is a thin ``ipywidgets`` layer over a pure function that returns a matplotlib
``Figure`` (built with ``matplotlib.figure.Figure``, so nothing accumulates in pyplot's state):

==============================  ============================  =============================================
widget                          pure function                 model (``chapter13.neuro``)
==============================  ============================  =============================================
:func:`mcgurk_widget`           :func:`mcgurk_figure`         :func:`~chapter13.neuro.mcgurk_congruence_curve`
:func:`ventriloquist_widget`    :func:`ventriloquist_figure`  :func:`~chapter13.neuro.ventriloquist_bias`
:func:`tug_of_war_widget`       :func:`tug_of_war_figure`     :func:`~chapter13.neuro.mle_combine`
:func:`flash_beep_widget`       :func:`flash_beep_figure`     :func:`~chapter13.neuro.flash_beep_report_probabilities`
==============================  ============================  =============================================

Speed: a figure is built once per widget (a *view*, :class:`chapter13.widgets.view.View`); an update
recomputes the model, moves the existing artists and renders one PNG into an ``ipywidgets.Image``.
Drawing axes, ticks and labels is most of matplotlib's cost, and they do not change, so the view
draws them once into a cached background and, on every update, blits only the artists that
``update`` changes (listed in ``dynamic``, with the static ones stacked above them) onto it. This
keeps an update well within 0.1 s on one core of a 2-core machine (``benchmarks/bench_latency.py``
and ``benchmarks/bench_neuro.py`` measure it; each widget's ``.timer`` records its own updates). The
pure ``*_figure`` functions build a fresh view and call the same ``update``, so what the tests check
is what the widgets show; a test checks that the blitted PNG matches a full draw of the same figure.
"""

from __future__ import annotations

from functools import lru_cache

import ipywidgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from chapter13 import neuro
from chapter13.book.sec13_5 import simulate_cross_modal_binding
from chapter13.plotting import NEUTRAL_GRAY, OKABE_ITO
from chapter13.widgets.view import View, ViewBox, interactive

__all__ = [
    "BOOK_CODES",
    "FlashBeepView",
    "McGurkView",
    "TugOfWarView",
    "VentriloquistView",
    "book_toy_output",
    "flash_beep_figure",
    "flash_beep_widget",
    "mcgurk_figure",
    "mcgurk_widget",
    "tug_of_war_figure",
    "tug_of_war_widget",
    "ventriloquist_figure",
    "ventriloquist_widget",
]

DPI = 72
COLORS = {"ba": OKABE_ITO["blue"], "da": OKABE_ITO["vermillion"], "ga": OKABE_ITO["bluish green"]}
STYLES = {"ba": "-", "da": "--", "ga": ":"}
HATCHES = {"ba": "", "da": "//", "ga": ".."}
"""Each syllable has a colour-blind-safe colour and a line style (bars: a hatch), never colour alone."""
BOOK_CODES = {"ba": 0.0, "da": 1.0, "ga": 2.0}
"""Numbers standing in for the syllables when calling the book's toy (it cannot take strings)."""


def book_toy_output(auditory: str, visual: str, congruence: float) -> str:
    """What the chapter's ``simulate_cross_modal_binding`` answers, as text.

    Called as printed with strings it raises ``TypeError``; we pass the codes of :data:`BOOK_CODES`
    (ba=0, da=1, ga=2), so it returns either a number or the hard-coded "da".
    """
    out = simulate_cross_modal_binding(BOOK_CODES[visual], BOOK_CODES[auditory], congruence)
    return f"'{out}'" if isinstance(out, str) else f"{out:.2f} (a number, not a syllable)"


def _gauss(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


# --- McGurk --------------------------------------------------------------------------------------------


class McGurkView(View):
    """Figure of the McGurk widget; :meth:`update` redraws it for new settings."""

    N_POINTS = 26

    def __init__(self) -> None:
        super().__init__(figsize=(9.5, 3.4), dpi=DPI)
        self.ax1, self.ax2 = self.fig.subplots(1, 2, width_ratios=(1.6, 1))
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.9, wspace=0.2)
        self.c = np.linspace(0, 1, self.N_POINTS)
        self.curve_key: tuple | None = None
        self.curve = np.zeros((self.N_POINTS, len(neuro.SYLLABLES)))
        self.ax1.axvspan(0.3, 0.7, color="0.9", label="book: 'da' here")
        self.lines = {
            n: self.ax1.plot(self.c, self.c * 0, STYLES[n], color=COLORS[n], lw=2, label=f'"{n}"')[0]
            for n in neuro.SYLLABLES
        }
        self.marker = self.ax1.axvline(0, color="k", ls="--", lw=1)
        self.ax1.set_ylabel("P(report)")
        self.ax1.set_ylim(-0.02, 1.02)
        self.ax1.set_xlim(0, 1)
        self.ax1.legend(fontsize=8, loc="center right")
        self.bars = self.ax2.bar(list(neuro.SYLLABLES), [0, 0, 0], color=[COLORS[n] for n in neuro.SYLLABLES])
        for bar, name in zip(self.bars, neuro.SYLLABLES, strict=True):
            bar.set_hatch(HATCHES[name])
            bar.set_edgecolor("white")
        self.ax2.set_ylim(0, 1.45)  # head room: the two notes sit above the tallest possible bar
        self.ax2.set_yticks(np.linspace(0, 1, 6))
        box = dict(fc="lightyellow", ec="0.6")
        self.toy = self.ax2.text(0.5, 0.97, "", transform=self.ax2.transAxes, ha="center", va="top",
                                 fontsize=8.5, bbox=box)  # fmt: skip
        self.ax2.text(0.5, 0.84, "data: fusion 17-58 % across stimuli,\n0-100 % across people",
                      transform=self.ax2.transAxes, ha="center", va="top", fontsize=8, color="0.3")  # fmt: skip
        self.dynamic = [*self.lines.values(), *self.bars, self.marker, self.ax1.xaxis.label, self.ax1.title,
                        self.ax2.title, self.toy]  # fmt: skip

    def update(
        self,
        auditory: str = "ba",
        visual: str = "ga",
        congruence: float = 0.0,
        sigma_a: float = neuro.MCGURK_DEFAULTS["sigma_a"],
        sigma_v: float = neuro.MCGURK_DEFAULTS["sigma_v"],
        p_common: float = neuro.MCGURK_DEFAULTS["p_common"],
    ) -> Figure:
        # the curve over all congruences does not depend on `congruence`: recomputed only when one of
        # its own inputs changes, so moving the congruence slider costs one response computation
        key = (auditory, visual, float(sigma_a), float(sigma_v), float(p_common))
        if key != self.curve_key:
            self.curve = neuro.mcgurk_congruence_curve(
                auditory, visual, self.c, sigma_a, sigma_v, p_common, n_grid=41
            )
            self.curve_key = key
        curve = self.curve
        now = neuro.mcgurk_responses(
            auditory, visual, sigma_a, sigma_v, p_common, congruence=congruence, n_grid=61
        )
        for k, name in enumerate(neuro.SYLLABLES):
            self.lines[name].set_ydata(curve[:, k])
            self.bars[k].set_height(now[name])
        self.marker.set_xdata([congruence, congruence])
        self.ax1.set_xlabel(f"congruence (0: face says {visual!r}, 1: face says {auditory!r})")
        self.ax1.set_title(f"voice {auditory!r} + face morph: causal-inference observer", fontsize=10)
        self.ax2.set_title(f"at congruence {congruence:.2f}", fontsize=10)
        self.toy.set_text(f"book's toy: {book_toy_output(auditory, visual, congruence)}")
        self.responses = now
        return self.fig


def mcgurk_figure(
    auditory: str = "ba",
    visual: str = "ga",
    congruence: float = 0.0,
    sigma_a: float = neuro.MCGURK_DEFAULTS["sigma_a"],
    sigma_v: float = neuro.MCGURK_DEFAULTS["sigma_v"],
    p_common: float = neuro.MCGURK_DEFAULTS["p_common"],
) -> Figure:
    """Response probabilities for a voice ``auditory`` on a face morphed from ``visual`` (congruence
    0) to the voice's own mouth (congruence 1), with the book's toy answer beside them.

    Left: P("ba"), P("da"), P("ga") along the congruence axis (:func:`neuro.mcgurk_congruence_curve`)
    with the book's "da" band (0.3 < c < 0.7) shaded. Right: the probabilities at ``congruence``.
    """
    return McGurkView().update(auditory, visual, congruence, sigma_a, sigma_v, p_common)


def mcgurk_widget():
    """Dropdowns for the voice and the face, sliders for congruence, noise and p_common."""
    d = neuro.MCGURK_DEFAULTS
    controls = dict(
        auditory=ipywidgets.Dropdown(options=neuro.SYLLABLES, value="ba", description="voice"),
        visual=ipywidgets.Dropdown(options=neuro.SYLLABLES, value="ga", description="face"),
        congruence=ipywidgets.FloatSlider(value=0.0, min=0, max=1, step=0.05, description="congruence"),
        sigma_a=ipywidgets.FloatSlider(
            value=d["sigma_a"], min=0.1, max=1.5, step=0.05, description="σ hearing"
        ),
        sigma_v=ipywidgets.FloatSlider(
            value=d["sigma_v"], min=0.1, max=1.5, step=0.05, description="σ lip-read"
        ),
        p_common=ipywidgets.FloatSlider(value=d["p_common"], min=0, max=1, step=0.01, description="p_common"),
    )
    rows = [["auditory", "visual", "congruence"], ["sigma_a", "sigma_v", "p_common"]]
    return _assemble(McGurkView(), controls, rows)


# --- ventriloquist -------------------------------------------------------------------------------------


class VentriloquistView(View):
    """Figure of the ventriloquist widget; :meth:`update` redraws it for new settings."""

    MAX_DISPARITY = 40.0

    def __init__(self) -> None:
        super().__init__(figsize=(12, 3.3), dpi=DPI)
        self.ax1, self.ax2, self.ax3 = self.fig.subplots(1, 3, width_ratios=(1.5, 1, 1))
        self.fig.subplots_adjust(left=0.03, right=0.98, bottom=0.16, top=0.9, wspace=0.3)
        self.s = np.linspace(-self.MAX_DISPARITY, self.MAX_DISPARITY + 10, 300)
        self.d = np.linspace(0.5, self.MAX_DISPARITY, 40)
        zeros = self.s * 0
        self.lik_v = self.ax1.plot(self.s, zeros, color=OKABE_ITO["orange"], label="visual likelihood")[0]
        self.lik_a = self.ax1.plot(
            self.s, zeros, color=OKABE_ITO["reddish purple"], ls="--", label="auditory likelihood"
        )[0]
        self.prior = self.ax1.plot(self.s, zeros, color="0.6", ls=":", label="prior")[0]
        self.estimates = [self.ax1.axvline(0, color="k", ls=style, lw=1.2) for style in ("--", ":", "-")]
        self.ax1.legend(fontsize=8, loc="upper left")
        # one multi-line text instead of three more legend entries: legends are costly to draw
        self.estimate_text = self.ax1.text(0.99, 0.98, "", transform=self.ax1.transAxes, ha="right", va="top",
                                           fontsize=8, family="monospace",
                                           bbox=dict(facecolor="white", alpha=0.85, edgecolor="none"))  # fmt: skip
        self.ax1.set_xlabel("azimuth (deg)")
        self.ax1.set_yticks([])
        self.ax1.set_xlim(self.s[0], self.s[-1])
        self.bias = self.ax2.plot(
            self.d, self.d * 0, color=OKABE_ITO["vermillion"], lw=2, label="causal inference"
        )[0]
        self.fused = self.ax2.plot(self.d, self.d * 0, color="0.4", ls="--", label="forced fusion")[0]
        self.ax2.axhline(0, color="0.4", ls=":", label="segregation")
        self.marker2 = self.ax2.axvline(0, color="k", lw=0.8)
        self.legend2 = self.ax2.legend(fontsize=8)
        self.ax2.set_xlabel("disparity (deg)")
        self.ax2.set_ylabel("visual bias of auditory percept")
        self.ax2.set_ylim(-0.05, 1.0)
        self.common = self.ax3.plot(
            self.d, self.d * 0, color=OKABE_ITO["blue"], lw=2, label="P(p(C=1|x) > 0.5)"
        )[0]
        self.posterior = self.ax3.plot(
            self.d, self.d * 0, color=OKABE_ITO["blue"], ls="--", label="mean p(C=1|x)"
        )[0]
        self.marker3 = self.ax3.axvline(0, color="k", lw=0.8)
        self.ax3.legend(fontsize=8, loc="upper right")
        self.ax3.set_ylim(0, 1)
        self.ax3.set_xlabel("disparity (deg)")
        self.ax3.set_ylabel("judging one cause")
        self.dynamic = [self.lik_v, self.lik_a, self.prior, *self.estimates, self.estimate_text, self.ax1.title,
                        self.bias, self.fused, self.legend2, self.marker2, self.common, self.posterior,
                        self.marker3, self.ax3.title]  # fmt: skip

    def update(
        self,
        disparity: float = 10.0,
        sigma_v: float = neuro.KORDING_2007["sigma_v"],
        sigma_a: float = neuro.KORDING_2007["sigma_a"],
        p_common: float = neuro.KORDING_2007["p_common"],
        strategy: str = "averaging",
        sigma_p: float = neuro.KORDING_2007["sigma_p"],
    ) -> Figure:
        model = neuro.ventriloquist_bias(
            self.d, sigma_v, sigma_a, sigma_p, p_common, strategy=strategy, n_grid=61
        )
        fused = neuro.ventriloquist_bias(self.d, sigma_v, sigma_a, sigma_p, 1.0, n_grid=21)
        x_v, x_a = float(disparity), 0.0
        post = float(neuro.causal_inference_posterior(x_v, x_a, sigma_v, sigma_a, sigma_p, p_common))
        values = (
            float(neuro.fused_estimate(x_v, x_a, sigma_v, sigma_a, sigma_p)),
            float(neuro.segregated_estimates(x_v, x_a, sigma_v, sigma_a, sigma_p)[1]),
            float(neuro.causal_inference_estimate(x_v, x_a, sigma_v, sigma_a, sigma_p, p_common)[1]),
        )
        curves = (_gauss(self.s, x_v, sigma_v), _gauss(self.s, x_a, sigma_a), _gauss(self.s, 0.0, sigma_p))
        for line, y in zip((self.lik_v, self.lik_a, self.prior), curves, strict=True):
            line.set_ydata(y)
        self.ax1.set_ylim(0, 1.05 * max(float(y.max()) for y in curves))
        for line, value in zip(self.estimates, values, strict=True):
            line.set_xdata([value, value])
        self.estimate_text.set_text(
            "ŝ_A (auditory estimate)\n"
            f"-- fused      {values[0]:6.1f}\n.. segregated {values[1]:6.1f}\n__ averaged   {values[2]:6.1f}"
        )
        self.ax1.set_title(f"one trial: p(C=1 | x) = {post:.2f}", fontsize=10)
        self.bias.set_ydata(model["bias"])
        self.fused.set_ydata(fused["bias"])
        self.legend2.get_texts()[0].set_text(f"causal inference ({strategy})")
        self.common.set_ydata(model["report_common"])
        self.posterior.set_ydata(model["p_common"])
        for marker in (self.marker2, self.marker3):
            marker.set_xdata([disparity, disparity])
        self.ax3.set_title(f"σ_V={sigma_v:g}, σ_A={sigma_a:g}, p_c={p_common:g}", fontsize=10)
        return self.fig


def ventriloquist_figure(
    disparity: float = 10.0,
    sigma_v: float = neuro.KORDING_2007["sigma_v"],
    sigma_a: float = neuro.KORDING_2007["sigma_a"],
    p_common: float = neuro.KORDING_2007["p_common"],
    strategy: str = "averaging",
    sigma_p: float = neuro.KORDING_2007["sigma_p"],
) -> Figure:
    """The ventriloquist effect under causal inference (Körding et al. 2007).

    The sound is straight ahead (0 deg) and the flash at ``disparity`` deg. Left: one trial whose
    measurements fall on the stimuli, with the likelihoods, the prior and the auditory estimate
    under fusion, segregation and model averaging. Middle: visual bias of the mean auditory percept
    against disparity for the chosen strategy and for forced fusion (p_common = 1); segregation
    (p_common = 0) is the zero line. Right: probability of judging one cause (posterior above 0.5)
    and the mean posterior p(C=1 | x).
    """
    return VentriloquistView().update(disparity, sigma_v, sigma_a, p_common, strategy, sigma_p)


def ventriloquist_widget():
    """Sliders for disparity, σ_V, σ_A, p_common and the decision strategy (Körding 2007 defaults)."""
    k = neuro.KORDING_2007
    controls = dict(
        disparity=ipywidgets.FloatSlider(value=10, min=0.5, max=40, step=0.5, description="disparity°"),
        sigma_v=ipywidgets.FloatSlider(value=k["sigma_v"], min=0.5, max=20, step=0.1, description="σ_V"),
        sigma_a=ipywidgets.FloatSlider(value=k["sigma_a"], min=0.5, max=20, step=0.1, description="σ_A"),
        p_common=ipywidgets.FloatSlider(value=k["p_common"], min=0, max=1, step=0.01, description="p_common"),
        strategy=ipywidgets.Dropdown(options=neuro.STRATEGIES, value="averaging", description="strategy"),
    )
    rows = [["disparity", "p_common", "strategy"], ["sigma_v", "sigma_a"]]
    return _assemble(VentriloquistView(), controls, rows)


# --- reliability tug-of-war ----------------------------------------------------------------------------


class TugOfWarView(View):
    """Figure of the tug-of-war widget; :meth:`update` redraws it for new settings.

    The left axes' limits follow the noise and the conflict, so its x axis (ticks and labels) is one
    of the blitted artists.
    """

    def __init__(self) -> None:
        super().__init__(figsize=(9.5, 3.0), dpi=DPI)
        self.ax1, self.ax2 = self.fig.subplots(1, 2, width_ratios=(1.6, 1))
        self.fig.subplots_adjust(left=0.03, right=0.98, bottom=0.32, top=0.9, wspace=0.12)
        self.x = np.linspace(-1, 1, 400)
        zeros = self.x * 0
        self.vis = self.ax1.plot(self.x, zeros, color=OKABE_ITO["orange"], lw=2, label=" ")[0]
        self.aud = self.ax1.plot(self.x, zeros, color=OKABE_ITO["reddish purple"], lw=2, ls="--", label=" ")[
            0
        ]
        self.comb = self.ax1.plot(self.x, zeros, color="k", lw=2.5, label=" ")[0]
        self.mark = self.ax1.axvline(0, color="k", ls="--", lw=1)
        self.legend = self.ax1.legend(fontsize=8)
        self.ax1.set_xlabel("position")
        self.ax1.set_yticks([])
        self.bar_v = self.ax2.barh([0], [0.5], color=OKABE_ITO["orange"], label=" ")[0]
        self.bar_a = self.ax2.barh(
            [0], [0.5], left=[0.5], color=OKABE_ITO["reddish purple"], hatch="//", label=" "
        )[0]
        self.ax2.axvline(0.5, color="k", lw=1)
        self.ax2.set_xlim(0, 1)
        self.ax2.set_yticks([])
        self.ax2.set_xlabel("weight (∝ 1/σ²)")
        self.legend2 = self.ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
        self.ax2.set_title("tug-of-war", fontsize=10)
        self.dynamic = [self.vis, self.aud, self.comb, self.mark, self.legend, self.ax1.xaxis, self.ax1.title,
                        self.bar_v, self.bar_a, self.legend2]  # fmt: skip

    def update(self, sigma_v: float = 2.0, sigma_a: float = 6.0, conflict: float = 8.0) -> Figure:
        est, sd, weights = neuro.mle_combine([conflict / 2, -conflict / 2], [sigma_v, sigma_a])
        est, sd = float(est), float(sd)
        span = max(3 * max(sigma_v, sigma_a), conflict + 5)
        x = self.x * span
        curves = (_gauss(x, conflict / 2, sigma_v), _gauss(x, -conflict / 2, sigma_a), _gauss(x, est, sd))
        for line, y in zip((self.vis, self.aud, self.comb), curves, strict=True):
            line.set_data(x, y)
        self.ax1.set_xlim(-span, span)
        self.ax1.set_ylim(0, 1.05 * float(curves[2].max()))
        self.mark.set_xdata([est, est])
        labels = (f"visual σ={sigma_v:g}", f"auditory σ={sigma_a:g}", f"combined σ={sd:.2f}")
        for text, label in zip(self.legend.get_texts(), labels, strict=True):
            text.set_text(label)
        self.ax1.set_title(f"combined estimate {est:.2f}", fontsize=10)
        self.bar_v.set_width(weights[0])
        self.bar_a.set_x(weights[0])
        self.bar_a.set_width(weights[1])
        for text, label in zip(self.legend2.get_texts(), (f"w_V = {weights[0]:.2f}", f"w_A = {weights[1]:.2f}"),
                               strict=True):  # fmt: skip
            text.set_text(label)
        return self.fig


def tug_of_war_figure(sigma_v: float = 2.0, sigma_a: float = 6.0, conflict: float = 8.0) -> Figure:
    """Maximum-likelihood cue combination as a tug-of-war (Ernst & Banks 2002; Alais & Burr 2004).

    The flash is at ``+conflict/2`` and the sound at ``-conflict/2``. Left: the two likelihoods and
    their combination (:func:`neuro.mle_combine`), narrower than either. Right: the weights, each
    cue pulling in proportion to its reliability 1/σ².
    """
    return TugOfWarView().update(sigma_v, sigma_a, conflict)


def tug_of_war_widget():
    """Sliders for the two cues' noise and their conflict."""
    controls = dict(
        sigma_v=ipywidgets.FloatSlider(value=2.0, min=0.2, max=15, step=0.1, description="σ visual"),
        sigma_a=ipywidgets.FloatSlider(value=6.0, min=0.2, max=15, step=0.1, description="σ auditory"),
        conflict=ipywidgets.FloatSlider(value=8.0, min=0, max=30, step=0.5, description="conflict"),
    )
    return _assemble(TugOfWarView(), controls, [["sigma_v", "sigma_a", "conflict"]])


# --- flash-beep ----------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _flash_beep_table(sigma_v: float, sigma_a: float, p_common: float) -> np.ndarray:
    return neuro.flash_beep_table(sigma_v=sigma_v, sigma_a=sigma_a, p_common=p_common, n_grid=61)


class FlashBeepView(View):
    """Figure of the flash-beep widget; :meth:`update` redraws it for new settings."""

    def __init__(self) -> None:
        super().__init__(figsize=(9.5, 3.2), dpi=DPI)
        self.ax1, self.ax2 = self.fig.subplots(1, 2)
        self.fig.subplots_adjust(left=0.07, right=0.93, bottom=0.16, top=0.9, wspace=0.25)
        self.counts = np.arange(1, 5)
        self.bars = self.ax1.bar(self.counts, self.counts * 0.0, color=NEUTRAL_GRAY)
        self.ax1.set_xticks(self.counts)
        self.ax1.set_ylim(0, 1)
        self.ax1.set_xlabel("reported number of flashes")
        self.ax1.set_ylabel("probability")
        self.image = self.ax2.imshow(
            np.ones((4, 5)), cmap="viridis", vmin=1, vmax=4, origin="lower", aspect="auto"
        )
        self.cells = [[self.ax2.text(j, i, "", ha="center", va="center", color="w", fontsize=8) for j in range(5)]
                      for i in range(4)]  # fmt: skip
        self.box = Rectangle((-0.5, -0.5), 1, 1, fill=False, ec="red", lw=2.5)
        self.ax2.add_patch(self.box)
        self.ax2.set_xticks(range(5), [str(b) for b in range(5)])
        self.ax2.set_yticks(range(4), [str(f) for f in range(1, 5)])
        self.ax2.set_xlabel("beeps")
        self.ax2.set_ylabel("flashes")
        self.ax2.set_title("mean reported flashes", fontsize=10)
        self.fig.colorbar(self.image, ax=self.ax2, fraction=0.05, pad=0.02, label="mean reported flashes")
        self.dynamic = [
            *self.bars,
            self.ax1.title,
            self.image,
            *(t for row in self.cells for t in row),
            self.box,
        ]

    def update(
        self,
        n_flashes: int = 1,
        n_beeps: int = 2,
        sigma_v: float = neuro.FLASH_BEEP_DEFAULTS["sigma_v"],
        sigma_a: float = neuro.FLASH_BEEP_DEFAULTS["sigma_a"],
        p_common: float = neuro.FLASH_BEEP_DEFAULTS["p_common"],
    ) -> Figure:
        probs = neuro.flash_beep_report_probabilities(
            n_flashes, n_beeps, sigma_v, sigma_a, p_common, n_grid=101
        )
        table = _flash_beep_table(float(sigma_v), float(sigma_a), float(p_common))
        for k, bar in zip(self.counts, self.bars, strict=True):
            bar.set_height(probs[k - 1])
            bar.set_color(OKABE_ITO["bluish green"] if k == n_flashes else NEUTRAL_GRAY)
            bar.set_hatch("//" if k == n_flashes else "")  # the flash count shown: colour and hatching
        self.ax1.set_title(
            f"{n_flashes} flash(es) + {n_beeps} beep(s): mean report {probs @ self.counts:.2f}", fontsize=10
        )
        self.image.set_data(table)
        for i in range(4):
            for j in range(5):
                self.cells[i][j].set_text(f"{table[i, j]:.1f}")
        self.box.set_xy((n_beeps - 0.5, n_flashes - 1.5))
        self.probabilities = probs
        return self.fig


def flash_beep_figure(
    n_flashes: int = 1,
    n_beeps: int = 2,
    sigma_v: float = neuro.FLASH_BEEP_DEFAULTS["sigma_v"],
    sigma_a: float = neuro.FLASH_BEEP_DEFAULTS["sigma_a"],
    p_common: float = neuro.FLASH_BEEP_DEFAULTS["p_common"],
) -> Figure:
    """Sound-induced flash illusion as causal inference over counts (Shams et al. 2000, 2005).

    Left: probability of reporting 1-4 flashes for the chosen stimulus. Right: mean reported number
    of flashes for every pairing of 1-4 flashes with 0-4 beeps (cached per noise setting), the
    chosen cell outlined.
    """
    return FlashBeepView().update(n_flashes, n_beeps, sigma_v, sigma_a, p_common)


def flash_beep_widget():
    """Sliders for the numbers of flashes and beeps, the two senses' noise and p_common."""
    d = neuro.FLASH_BEEP_DEFAULTS
    controls = dict(
        n_flashes=ipywidgets.IntSlider(value=1, min=1, max=4, description="flashes"),
        n_beeps=ipywidgets.IntSlider(value=2, min=0, max=4, description="beeps"),
        sigma_v=ipywidgets.FloatSlider(
            value=d["sigma_v"], min=0.1, max=1.5, step=0.05, description="σ vision"
        ),
        sigma_a=ipywidgets.FloatSlider(
            value=d["sigma_a"], min=0.1, max=1.5, step=0.05, description="σ hearing"
        ),
        p_common=ipywidgets.FloatSlider(value=d["p_common"], min=0, max=1, step=0.01, description="p_common"),
    )
    return _assemble(
        FlashBeepView(), controls, [["n_flashes", "n_beeps"], ["sigma_v", "sigma_a", "p_common"]]
    )


# --- plumbing ------------------------------------------------------------------------------------------


def _assemble(view: View, controls: dict, rows: list[list[str]]) -> ViewBox:
    """Controls laid out in ``rows`` above the image of ``view.update(**values)`` (blitted PNG),
    updated when a control is released (``continuous_update=False``): :func:`~chapter13.widgets.view.interactive`.

    The returned box has ``.controls`` (name -> control), ``.image``, ``.view``, ``.timer`` and
    ``.update()`` so that tests and the browser check can drive it: ``box.controls["congruence"].value = 0.5``.
    """
    return interactive(view, controls, rows, continuous_update=False, wide_descriptions=True)
