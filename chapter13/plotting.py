"""Figures shared by the notebooks: image grids, curves, animations.

Images come in the model range [-1, 1] unless said otherwise: ``x: (B, C, H, W)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation
from torchvision.utils import make_grid


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
    from torchvision.utils import save_image

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
