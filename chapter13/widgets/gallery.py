"""13.0 digit browser: pick a class and a page, see that class's digits as a grid.

- :func:`digits_of_class`: the pure function, (x, y, digit, n, page) → the images shown (k, 1, H, W);
- :class:`GalleryView`: one figure holding one grid image and a title (a
  :class:`~chapter13.widgets.view.View`); :meth:`GalleryView.update` replaces the image's pixels and
  the title's text, so an update builds no figure, axes or ticks;
- :func:`gallery_figure`: a fresh view's figure for one setting (what the widget shows);
- :func:`digit_browser`: a digit dropdown and a page slider over one ``GalleryView``, shown as a PNG
  in an ``ipywidgets.Image`` (``benchmarks/bench_latency.py`` measures an update).
"""

from __future__ import annotations

import ipywidgets
import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from chapter13.widgets.view import View, ViewBox, interactive

NROW = 8
DPI = 72


def digits_of_class(x: torch.Tensor, y: torch.Tensor, digit: int, n: int = 32, page: int = 0) -> torch.Tensor:
    """The ``page``-th block of ``n`` images of class ``digit``: x (N, 1, H, W), y (N,) -> (k, 1, H, W)."""
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    if n < 1 or page < 0:
        raise ValueError(f"need n >= 1 and page >= 0, got n={n}, page={page}")
    chosen = x[y == digit]
    start = (page * n) % max(1, len(chosen))
    return chosen[start : start + n]


class GalleryView(View):
    """A figure with one grid of ``n`` digits (``NROW`` per row) and a title.

    Built once; :meth:`update` sets the grid image's pixels and the title, :meth:`png` renders the
    figure (the image and the title blitted onto the blank background) and encodes it. A page with
    fewer than ``n`` digits leaves the remaining cells white, so the grid's shape never changes.
    """

    def __init__(self, n: int = 32, image_shape: tuple[int, int] = (28, 28), dpi: int = DPI) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.n = n
        self.image_shape = tuple(image_shape)
        rows = (n + NROW - 1) // NROW
        super().__init__(figsize=(8, 0.9 * rows + 0.5), dpi=dpi)
        ax = self.fig.add_axes((0.01, 0.01, 0.98, 0.98 - 0.45 / (0.9 * rows + 0.5)))
        blank = self._grid(torch.empty(0, 1, *self.image_shape))
        self.image = ax.imshow(blank, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        self.title = ax.set_title(" ")
        self.shown: torch.Tensor | None = None
        self.dynamic = [self.image, self.title]

    def _grid(self, images: torch.Tensor) -> np.ndarray:
        """``images`` (k <= n, 1, H, W) in [-1, 1] as one (rows, cols) array in [0, 1]; empty cells white."""
        if len(images) > self.n:
            raise ValueError(f"this view shows at most {self.n} images, got {len(images)}")
        fill = torch.ones(self.n - len(images), 1, *self.image_shape)  # +1 is white
        full = torch.cat([images.detach().float().cpu(), fill]) if len(images) < self.n else images
        return make_grid(full.add(1).div(2).clamp(0, 1), nrow=NROW, padding=2, pad_value=1.0)[0].numpy()

    def update(self, x: torch.Tensor, y: torch.Tensor, digit: int, page: int = 0) -> Figure:
        """Show the ``page``-th block of ``n`` digits of class ``digit`` (see :func:`digits_of_class`)."""
        images = digits_of_class(x, y, digit, self.n, page)
        if tuple(images.shape[-2:]) != self.image_shape:
            raise ValueError(f"this view shows {self.image_shape} images, got {tuple(images.shape[-2:])}")
        self.image.set_data(self._grid(images))
        self.title.set_text(f"digit {digit}: {int((y == digit).sum())} examples, page {page}")
        self.shown = images
        return self.fig


def gallery_figure(x: torch.Tensor, y: torch.Tensor, digit: int, n: int = 32, page: int = 0) -> Figure:
    """A figure with one grid of ``n`` digits of class ``digit``, page ``page`` (what the widget shows)."""
    return GalleryView(n, tuple(x.shape[-2:]), dpi=100).update(x, y, digit, page)


def digit_browser(x: torch.Tensor, y: torch.Tensor, n: int = 32) -> ViewBox:
    """ipywidgets: a digit dropdown and a page slider over one :class:`GalleryView`.

    The returned box has ``.controls`` (name -> control), ``.image`` (the ``ipywidgets.Image``),
    ``.view`` and ``.timer`` so that tests can drive it: ``box.controls["page"].value = 3``.
    """
    per_class = int(torch.bincount(y, minlength=10).min())
    controls = {
        "digit": ipywidgets.Dropdown(options=list(range(10)), value=0, description="digit"),
        "page": ipywidgets.IntSlider(value=0, min=0, max=max(0, per_class // n - 1), description="page"),
    }
    view = GalleryView(n, tuple(x.shape[-2:]))
    return interactive(
        view, controls, [["digit", "page"]], lambda digit, page: view.update(x, y, digit, page)
    )
