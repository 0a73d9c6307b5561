"""Figures shared by the notebooks: image grids, curves, animations.

Images come in the model range [-1, 1] unless said otherwise: ``x: (B, C, H, W)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation, cycler
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torchvision.utils import make_grid, save_image

from chapter13 import fitting
from chapter13.hierarchy import HierarchicalCNN, empirical_receptive_field, receptive_fields


def _grid_array(images: torch.Tensor, nrow: int, value_range: tuple[float, float]) -> np.ndarray:
    if images.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(images.shape)}")
    low, high = value_range
    unit = (images.detach().float().cpu() - low) / (high - low)
    grid = make_grid(unit.clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


def show_grid(
    images: torch.Tensor,
    nrow: int = 8,
    title: str | None = None,
    ax: plt.Axes | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> plt.Axes:
    """Draw ``images: (B, C, H, W)`` as one grid with ``torchvision.utils.make_grid``."""
    array = _grid_array(images, nrow, value_range)
    if ax is None:
        rows = int(np.ceil(len(images) / nrow))
        _, ax = plt.subplots(figsize=(min(12, 1.1 * nrow), 1.1 * rows + 0.4))
    ax.imshow(array.squeeze(-1) if array.shape[-1] == 1 else array, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def save_grid(images: torch.Tensor, path: str, nrow: int = 8) -> None:
    """Write ``images: (B, C, H, W)`` in [-1, 1] as a PNG grid."""
    save_image(images.detach().float().cpu().add(1).div(2).clamp(0, 1), path, nrow=nrow, padding=2)


def animate_frames(
    frames: Sequence[torch.Tensor],
    nrow: int = 8,
    interval: int = 100,
    titles: Sequence[str] | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> animation.FuncAnimation:
    """An animation of a sequence of image batches (each (B, C, H, W)); show it with
    ``IPython.display.HTML(animation_html(anim))`` (an offline-safe ``anim.to_jshtml()``)."""
    if len(frames) == 0:
        raise ValueError("animate_frames needs at least one frame")
    arrays = [_grid_array(f, nrow, value_range) for f in frames]
    fig, ax = plt.subplots(figsize=(min(8, 1.0 * nrow), 1.0 * int(np.ceil(len(frames[0]) / nrow)) + 0.4))
    ax.set_axis_off()
    first = arrays[0].squeeze(-1) if arrays[0].shape[-1] == 1 else arrays[0]
    image = ax.imshow(first, cmap="gray", vmin=0, vmax=1)

    def update(i: int):
        a = arrays[i]
        image.set_data(a.squeeze(-1) if a.shape[-1] == 1 else a)
        if titles is not None:
            ax.set_title(titles[i])
        return (image,)

    anim = animation.FuncAnimation(fig, update, frames=len(arrays), interval=interval, blit=False)
    plt.close(fig)
    return anim


def animate_clips(clips: torch.Tensor, nrow: int = 8, interval: int = 150) -> animation.FuncAnimation:
    """Video clips (B, C, F, H, W) as one animation: a grid of the B clips, one animation frame per
    video frame (:func:`animate_frames`)."""
    if clips.dim() != 5:
        raise ValueError(f"clips must have shape (B, C, F, H, W), got {tuple(clips.shape)}")
    return animate_frames([clips[:, :, f] for f in range(clips.shape[2])], nrow=nrow, interval=interval)


_PLAYER_GLYPHS = {
    "fa-minus": "&minus;",
    "fa-fast-backward": "|&#9664;&#9664;",
    "fa-step-backward": "|&#9664;",
    "fa-play fa-flip-horizontal": "&#9664;",
    "fa-pause": "||",
    "fa-play": "&#9654;",
    "fa-step-forward": "&#9654;|",
    "fa-fast-forward": "&#9654;&#9654;|",
    "fa-plus": "+",
}


def animation_html(anim: animation.Animation) -> str:
    """``anim.to_jshtml()`` that also works offline: show it with ``IPython.display.HTML(...)``.

    matplotlib's JavaScript player links its button icons (Font Awesome) from a CDN, so without a
    network its buttons are blank. This drops that link and writes each button as a text glyph.
    """
    html = re.sub(r'<link rel="stylesheet"\s*href="[^"]*font-awesome[^"]*"\s*/?>', "", anim.to_jshtml())
    return re.sub(r'<i class="fa ([^"]+)"></i>', lambda m: _PLAYER_GLYPHS.get(m.group(1), m.group(1)), html)


# --- 13.5 hierarchy figures -------------------------------------------------------------------------------------------


def plot_stage_activations(model: HierarchicalCNN, image: torch.Tensor, n_maps: int = 6) -> Figure:
    """Figure: one image ``(1, C, H, W)`` and the activity it evokes at every stage of ``model``."""
    if image.ndim == 3:
        image = image[None]
    device = next(model.parameters()).device
    with torch.no_grad():
        stages = {k: v[0].cpu().numpy() for k, v in model.stages(image.to(device)).items()}
    fig = plt.figure(figsize=(1.35 * (n_maps + 1), 6.2), layout="constrained")
    grid = fig.add_gridspec(5, n_maps + 1)
    ax = fig.add_subplot(grid[0:3, 0])
    ax.imshow(image[0, 0].cpu().numpy(), cmap="gray")
    ax.set_title("input")
    ax.set_axis_off()
    for row, name in enumerate(("V1", "V2/V4", "IT")):
        maps = stages[name]
        for j in range(min(n_maps, maps.shape[0])):
            ax = fig.add_subplot(grid[row, j + 1])
            ax.imshow(maps[j], cmap="magma")
            ax.set_axis_off()
            if j == 0:
                ax.set_title(f"{name} {tuple(maps.shape[1:])}", fontsize=8, loc="left")
    ax = fig.add_subplot(grid[3, 1:])
    ax.bar(range(len(stages["association"])), stages["association"], color=OKABE_ITO["blue"])
    ax.set_title("association layer (unit activity)", fontsize=9)
    ax = fig.add_subplot(grid[4, 1:])
    probs = torch.softmax(torch.from_numpy(stages["decision"]), 0).numpy()
    ax.bar(range(len(probs)), probs, color=OKABE_ITO["bluish green"])
    ax.set_xticks(range(len(probs)))
    ax.set_title("decision (class probabilities)", fontsize=9)
    return fig


def plot_receptive_fields(model: HierarchicalCNN, image: torch.Tensor | None = None) -> Figure:
    """Figure: the receptive field of a central unit at each stage drawn over an input image."""
    fields = receptive_fields(model)
    fig, axes = plt.subplots(1, len(fields), figsize=(3 * len(fields), 3.2), layout="constrained")
    h, w = model.image_size
    for ax, rf in zip(axes, fields, strict=True):
        if image is not None:
            ax.imshow(image.reshape(-1, h, w)[0].cpu().numpy(), cmap="gray")
        else:
            ax.imshow(np.zeros((h, w)), cmap="gray")
        mask = empirical_receptive_field(model, rf.stage, n_probes=8)
        ax.imshow(np.ma.masked_where(~mask.numpy(), mask.numpy()), cmap="autumn", alpha=0.45)
        rows, cols = np.nonzero(mask.numpy())
        ax.add_patch(
            Rectangle((cols.min() - 0.5, rows.min() - 0.5), rf.size, rf.size, fill=False, ec="cyan", lw=2)
        )
        ax.set_title(f"{rf.stage}: {rf.size}x{rf.size} px\nmap {rf.spatial[0]}x{rf.spatial[1]}")
        ax.set_axis_off()
    return fig


def plot_fusion_accuracy(rows: Sequence[dict[str, float]]) -> Figure:
    """Figure: accuracy of each stream and the fusion, and the enhancement index, across noise."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    level = np.arange(len(rows))
    labels = [f"{r['image_noise']:g}/{r['sound_noise']:g}" for r in rows]
    for key, style in (("visual", "o-"), ("auditory", "s-"), ("fused", "^-"), ("product", "x--")):
        ax1.plot(level, [100 * r[key] for r in rows], style, label=key)
    ax1.axhline(10, color="gray", lw=0.8, ls=":")
    ax1.set_xticks(level, labels, rotation=30)
    ax1.set_xlabel("noise std (image / sound)")
    ax1.set_ylabel("accuracy (%)")
    ax1.legend()
    best = [100 * max(r["visual"], r["auditory"]) for r in rows]
    ax2.plot(best, [r["enhancement"] for r in rows], "o-", color=OKABE_ITO["vermillion"])
    ax2.set_xlabel("best single-stream accuracy (%)")
    ax2.set_ylabel("enhancement index (%)")
    ax2.set_title("inverse effectiveness")
    return fig


OKABE_ITO = {
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "black": "#000000",
}
"""Okabe & Ito's (2008) palette, told apart with every common colour-vision deficiency; figures that
tell categories apart pair it with line styles or labels, so that colour is never the only cue."""

NEUTRAL_GRAY = "#999999"
"""Grey for what is not a category (a background bar, a reference line)."""

DIGIT_COLORS = (
    *(
        OKABE_ITO[name]
        for name in (
            "blue",
            "orange",
            "bluish green",
            "vermillion",
            "reddish purple",
            "sky blue",
            "yellow",
            "black",
        )
    ),
    NEUTRAL_GRAY,
    "#882255",  # Tol's "wine" (his colour-blind-safe muted scheme): the tenth colour Okabe-Ito lacks
)
"""One colour per digit 0-9 (instead of matplotlib's ``tab10``, whose red/green and blue/purple pairs
colour-blind readers confuse). Ten colours cannot all stay apart for every reader, so a figure that
uses them also names the digits (labels, a colour bar)."""

DIGIT_CMAP = ListedColormap(DIGIT_COLORS, name="ch13_digits")
""":data:`DIGIT_COLORS` as a colour map: ``cmap=DIGIT_CMAP, vmin=-0.5, vmax=9.5`` gives digit d colour d."""

LINE_STYLES = ["-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5))]


def accessible_style() -> dict:
    """Matplotlib settings for figures that colour-blind readers can read: Okabe-Ito colours, each with
    its own line style (so that lines differ by more than colour), and no text under 8 pt."""
    colors = [
        OKABE_ITO[name]
        for name in (
            "blue",
            "orange",
            "bluish green",
            "vermillion",
            "reddish purple",
            "sky blue",
            "black",
            "yellow",
        )
    ]
    return {
        "axes.prop_cycle": cycler(color=colors) + cycler(linestyle=LINE_STYLES),
        "font.size": 10.0,
        "legend.fontsize": 8.5,
        "xtick.labelsize": 9.0,
        "ytick.labelsize": 9.0,
        "image.cmap": "viridis",
    }


def use_accessible_style() -> None:
    """Apply :func:`accessible_style` to every figure drawn from now on (each notebook's set-up cell
    calls it)."""
    matplotlib.rcParams.update(accessible_style())


STRATEGY_COLORS = {
    "averaging": OKABE_ITO["blue"],
    "selection": OKABE_ITO["orange"],
    "matching": OKABE_ITO["bluish green"],
}
STRATEGY_STYLES = {"averaging": "-", "selection": "--", "matching": ":"}


def plot_localization_fit(
    table: fitting.TrialTable, comparison: fitting.Comparison, sound_at: float | None = None
) -> Figure:
    """Figure: fitted curves over the localisation data (13.5, from model to data).

    Left: for the sound at ``sound_at`` (default: the audio-visual sound position nearest 0) paired
    with each flash position, the proportion of auditory reports at each button (markers: data; lines:
    the strategy AIC picks). Right: the visual bias of the auditory reports against the audio-visual
    disparity, ``(E[r_a] - s_a) / (s_v - s_a)`` (:func:`chapter13.fitting.visual_bias`), for the data and
    every fitted strategy.
    """
    seen = fitting.observed_proportions(table)
    buttons = table.buttons
    if not len(seen["s_v"]):
        raise ValueError(
            "the table has no audio-visual trials to draw; add trials with both a flash and a sound"
        )
    sounds = np.unique(seen["s_a"])
    sound = sounds[np.argmin(np.abs(sounds - (0.0 if sound_at is None else sound_at)))]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    best = comparison.fits[comparison.best]
    model = fitting.predicted_proportions(
        best.params, best.strategy, seen["s_v"], seen["s_a"], buttons, best.unity_decision
    )
    here = np.flatnonzero(seen["s_a"] == sound)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(here)))
    for color, c in zip(colors, here, strict=True):
        n = seen["auditory"][c].sum()
        ax1.plot(buttons, seen["auditory"][c] / max(n, 1), "o", color=color, ms=5)
        ax1.plot(
            buttons, model["auditory"][c], "-", color=color, lw=1.5, label=f"flash at {seen['s_v'][c]:g}°"
        )
    ax1.axvline(sound, color="0.5", ls=":", lw=1)
    ax1.set_xlabel("auditory report (button, deg)")
    ax1.set_ylabel("proportion of reports")
    ax1.set_title(f"sound at {sound:g}°: data (dots), {best.strategy} fit (lines)", fontsize=10)
    ax1.legend(fontsize=8)
    d, bias = fitting.visual_bias(seen["s_v"], seen["s_a"], seen["auditory"], buttons)
    ax2.plot(d, bias, "ko", label="data")
    for strategy, result in comparison.fits.items():
        pred = fitting.predicted_proportions(
            result.params, strategy, seen["s_v"], seen["s_a"], buttons, result.unity_decision
        )
        dm, bm = fitting.visual_bias(
            seen["s_v"], seen["s_a"], pred["auditory"] * seen["auditory"].sum(axis=1, keepdims=True), buttons
        )
        ax2.plot(
            dm,
            bm,
            STRATEGY_STYLES.get(strategy, "-"),
            color=STRATEGY_COLORS.get(strategy, "k"),
            label=f"{strategy} (dAIC {result.aic - best.aic:.1f})",
        )
    ax2.axhline(0, color="0.7", lw=0.8)
    ax2.set_xlabel("audio-visual disparity |s_V - s_A| (deg)")
    ax2.set_ylabel("visual bias of the heard position")
    ax2.set_title("ventriloquist effect: data and the three fits", fontsize=10)
    ax2.legend(fontsize=8)
    return fig


def plot_strategy_comparison(comparison: fitting.Comparison) -> Figure:
    """Figure: AIC and BIC differences to the best strategy (bars) with Akaike weights written above."""
    rows = comparison.rows()
    names = [r["strategy"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
    x = np.arange(len(rows))
    ax.bar(
        x - 0.2,
        [r["d_aic"] for r in rows],
        0.4,
        color=[STRATEGY_COLORS.get(n, "0.5") for n in names],
        label="dAIC",
    )
    ax.bar(x + 0.2, [r["d_bic"] for r in rows], 0.4, color="0.75", label="dBIC")
    for xi, r in zip(x, rows, strict=True):
        ax.text(xi, max(r["d_aic"], r["d_bic"]) + 0.5, f"w = {r['weight']:.2f}", ha="center", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel("difference to the best (lower is better)")
    ax.set_title(f"AIC picks {comparison.best}", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_flash_beep_fit(table: fitting.FlashBeepTable, fit: dict) -> Figure:
    """Figure: the flash-beep table (markers) against the count observer, at its starting values
    (dotted) and fitted (solid), one line per number of flashes, against the number of beeps."""
    fig, ax = plt.subplots(figsize=(5.8, 3.6), layout="constrained")
    colors = plt.cm.plasma(np.linspace(0, 0.8, 4))
    for color, flashes in zip(colors, np.unique(table.flashes), strict=False):
        rows = np.flatnonzero(table.flashes == flashes)
        beeps = table.beeps[rows]
        ax.plot(beeps, table.mean_reported[rows], "o", color=color, ms=6, label=f"{flashes} flash(es)")
        ax.plot(beeps, fit["predicted"][rows], "-", color=color, lw=1.5)
        ax.plot(beeps, fit["start_predicted"][rows], ":", color=color, lw=1)
    ax.set_xlabel("number of beeps")
    ax.set_ylabel("mean reported flashes")
    ax.set_title(f"{table.kind} table (dots), fitted observer (lines), rmse {fit['rmse']:.2f}", fontsize=9)
    ax.legend(fontsize=8, ncol=2)
    return fig
