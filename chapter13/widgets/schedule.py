"""13.2 noise-schedule widget: family, T and β range → ᾱ_t and SNR curves and a digit noised at several t.

Pure functions:
- ``family_schedule(family, T, beta_start, beta_end)``: the ``NoiseSchedule`` of a family and β range
  (``chapter13.diffusion.make_schedule`` is the one a model's config names);
- ``strip_timesteps(T, n)``: the timesteps shown in the strip;
- ``schedule_figure(x0, family, T, beta_start, beta_end)``: a fresh matplotlib ``Figure``.

The widget (``schedule_widget``) is a :class:`ScheduleView` (a :class:`~chapter13.widgets.view.View`):
the static parts of the figure are drawn once; on every change it only replaces the curves' data and
the images' pixels (``ScheduleView.update``), blits them onto the cached background and sends a PNG
to an ``ipywidgets.Image`` (``time_updates`` measures it, with the views' :class:`LatencyTimer`).
"""

from __future__ import annotations

import ipywidgets
import numpy as np
import torch
from matplotlib.figure import Figure

from chapter13.diffusion import NoiseSchedule
from chapter13.widgets.view import LatencyTimer, View, ViewBox, interactive

FAMILIES = ("linear", "cosine", "quadratic", "sigmoid")
STRIP = 6


def family_schedule(
    family: str, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> NoiseSchedule:
    """The ``NoiseSchedule`` of ``family``; the cosine family ignores the β range (Nichol & Dhariwal eq. 17)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown schedule family {family!r}; choose one of {FAMILIES}")
    if beta_end <= beta_start:
        raise ValueError(f"beta_end ({beta_end}) must be larger than beta_start ({beta_start})")
    if family == "cosine":
        return NoiseSchedule.cosine(T)
    return getattr(NoiseSchedule, family)(T, beta_start=beta_start, beta_end=beta_end)


def strip_timesteps(T: int, n: int = STRIP) -> list[int]:
    """``n`` timesteps from 0 to T-1, evenly spaced (the columns of the image strip)."""
    return [round(i * (T - 1) / (n - 1)) for i in range(n)]


class ScheduleView(View):
    """A figure with ᾱ_t (top left), log SNR (top right) and a strip of one image noised at several t.

    The curves are drawn against t/T so that the axes never change; ``update(family, T, beta_start,
    beta_end)`` replaces only the artists' data. With ``blit=True`` (the widget) the static parts
    (axes, ticks, labels, legend) are rendered once and every update redraws only the changing artists
    onto that background (matplotlib blitting); :meth:`png` encodes the pixels.

    Args:
        x0: one image (1, H, W) or (H, W) in [-1, 1].
        seed: the noise ε used for every strip image (the same ε for every schedule, so only the
            schedule changes between updates).
        blit: render with the cached background (for ``png()``); False draws the whole figure each time.
    """

    def __init__(self, x0: torch.Tensor, seed: int = 0, dpi: int = 72, blit: bool = True):
        image = x0.detach().float().cpu()
        if image.dim() == 3:
            image = image[0]
        if image.dim() != 2:
            raise ValueError(f"x0 must be one image (1, H, W) or (H, W), got shape {tuple(x0.shape)}")
        self.x0 = image.double()
        self.noise = torch.randn(
            image.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        super().__init__(figsize=(9, 4.6), dpi=dpi, blit=blit)
        grid = self.fig.add_gridspec(2, STRIP, height_ratios=[2.2, 1])
        self.ax_ab = self.fig.add_subplot(grid[0, : STRIP // 2])
        self.ax_snr = self.fig.add_subplot(grid[0, STRIP // 2 :])
        self.ax_img = [self.fig.add_subplot(grid[1, i]) for i in range(STRIP)]
        self.lines: dict[str, tuple] = {}
        for family in FAMILIES:
            (ab,) = self.ax_ab.plot([0, 1], [1, 0], lw=1, alpha=0.35, label=family)
            (snr,) = self.ax_snr.plot([0, 1], [0, 0], lw=1, alpha=0.35, color=ab.get_color(), label=family)
            self.lines[family] = (ab, snr)
        self.markers = self.ax_ab.scatter([0.5], [0.5], c="k", s=14, zorder=3, label="strip t")
        self.ax_ab.set(xlabel="t / T", ylabel="ᾱ_t (signal fraction)", xlim=(0, 1), ylim=(-0.02, 1.02))
        self.ax_snr.set(xlabel="t / T", ylabel="log SNR", xlim=(0, 1), ylim=(-12, 10))
        self.ax_snr.axhline(0, c="0.6", lw=0.6)
        self.ax_ab.legend(fontsize=8, loc="upper right")
        self.images = []
        for ax in self.ax_img:
            self.images.append(ax.imshow(np.zeros(image.shape), cmap="gray", vmin=-1, vmax=1))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(" ", fontsize=8)
        self.ax_ab.set_title(" ", fontsize=10)
        self.ax_snr.set_title(" ", fontsize=10)
        self.fig.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.02, wspace=0.5, hspace=0.45)
        self.dynamic = [
            *(line for pair in self.lines.values() for line in pair),
            self.markers,
            *self.images,
            *(ax.title for ax in self.ax_img),
            self.ax_ab.title,
            self.ax_snr.title,
        ]
        self.state: tuple | None = None

    def update(self, family: str, T: int, beta_start: float, beta_end: float) -> NoiseSchedule:
        """Set the artists' data for new settings; returns the chosen schedule."""
        schedule = family_schedule(family, T, beta_start, beta_end)
        frac = np.arange(T) / T
        for name, (ab_line, snr_line) in self.lines.items():
            s = schedule if name == family else family_schedule(name, T, beta_start, beta_end)
            ab_line.set_data(frac, s.alpha_bars.numpy())
            snr_line.set_data(frac, s.log_snr.numpy())
            bold = name == family
            for line in (ab_line, snr_line):
                line.set_linewidth(2.5 if bold else 1.0)
                line.set_alpha(1.0 if bold else 0.35)
        ts = strip_timesteps(T)
        ab = schedule.alpha_bars[ts]
        self.markers.set_offsets(np.column_stack([np.array(ts) / T, ab.numpy()]))
        for img, ax, ti, a in zip(self.images, self.ax_img, ts, ab.tolist(), strict=True):
            img.set_data((np.sqrt(a) * self.x0 + np.sqrt(1 - a) * self.noise).numpy())
            ax.set_title(f"t={ti}\nᾱ={a:.3f}", fontsize=8)
        self.ax_ab.set_title(
            f"{family}, T={T}" + ("" if family == "cosine" else f", β ∈ [{beta_start:.2g}, {beta_end:.2g}]"),
            fontsize=10,
        )
        self.ax_snr.set_title(f"ᾱ_T = {schedule.alpha_bars[-1].item():.2e}", fontsize=10)
        self.state = (family, T, beta_start, beta_end)
        return schedule


def schedule_figure(
    x0: torch.Tensor,
    family: str = "linear",
    T: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    seed: int = 0,
) -> Figure:
    """Pure function: a new figure of the schedule ``family`` (curves of all families faint for
    comparison) and ``x0`` noised by q(x_t | x_0) (DDPM eq. 4) at six timesteps with a fixed ε."""
    view = ScheduleView(x0, seed=seed, dpi=100, blit=False)
    view.update(family, T, beta_start, beta_end)
    return view.fig


def time_updates(x0: torch.Tensor, n: int = 20) -> dict[str, float]:
    """Median seconds per widget update over ``n`` changing settings.

    Returns wall-clock medians for the data update alone (``update_s``) and for update + render + PNG
    encoding (``update_and_render_s``, what the student waits for), and the CPU-time median of the
    latter (``update_and_render_cpu_s``, which does not grow when other processes share the CPU).
    """
    view = ScheduleView(x0)
    view.update("linear", 1000, 1e-4, 0.02)
    view.png()  # first render pays font caches
    settings = [(FAMILIES[i % 4], 200 + 50 * i, 1e-4 * (1 + i % 3), 0.01 + 0.002 * i) for i in range(n)]
    data_only, with_png = LatencyTimer(), LatencyTimer()
    for setting in settings:
        with with_png.measure():
            data_only.time(view.update, *setting)
            view.png()
    whole = with_png.summary()
    return {
        "update_s": data_only.summary().median_ms / 1000,
        "update_and_render_s": whole.median_ms / 1000,
        "update_and_render_cpu_s": whole.cpu_median_ms / 1000,
    }


def schedule_widget(x0: torch.Tensor) -> ViewBox:
    """ipywidgets: family, T, β_start, β_end → the ``ScheduleView`` as a PNG image (< 0.1 s per update);
    the line under it says how long the update took, or why the settings are refused."""
    controls = {
        "family": ipywidgets.Dropdown(options=list(FAMILIES), value="linear", description="family"),
        "T": ipywidgets.IntSlider(value=1000, min=10, max=2000, step=10, description="T"),
        "beta_start": ipywidgets.FloatLogSlider(value=1e-4, base=10, min=-5, max=-2, description="β_start"),
        "beta_end": ipywidgets.FloatLogSlider(value=0.02, base=10, min=-3, max=-0.3, description="β_end"),
    }
    rows = [["family", "T"], ["beta_start", "beta_end"]]
    return interactive(ScheduleView(x0), controls, rows, errors=(ValueError,), show_latency=True)
