"""13.0 digit browser: pick a class and a page, see that class's digits as a grid."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from chapter13.plotting import show_grid


def digits_of_class(x: torch.Tensor, y: torch.Tensor, digit: int, n: int = 32, page: int = 0) -> torch.Tensor:
    """The ``page``-th block of ``n`` images of class ``digit``: x (N, 1, H, W), y (N,) -> (k, 1, H, W)."""
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    if n < 1 or page < 0:
        raise ValueError(f"need n >= 1 and page >= 0, got n={n}, page={page}")
    chosen = x[y == digit]
    start = (page * n) % max(1, len(chosen))
    return chosen[start : start + n]


def gallery_figure(x: torch.Tensor, y: torch.Tensor, digit: int, n: int = 32, page: int = 0) -> plt.Figure:
    """A figure with one grid of ``n`` digits of class ``digit``."""
    images = digits_of_class(x, y, digit, n, page)
    fig, ax = plt.subplots(figsize=(8, 0.9 * ((len(images) + 7) // 8) + 0.5))
    show_grid(images, nrow=8, ax=ax, title=f"digit {digit}: {int((y == digit).sum())} examples, page {page}")
    fig.tight_layout()
    return fig


def digit_browser(x: torch.Tensor, y: torch.Tensor, n: int = 32):
    """ipywidgets: a digit dropdown and a page slider over ``gallery_figure``."""
    import ipywidgets as widgets
    from IPython.display import display

    digit = widgets.Dropdown(options=list(range(10)), value=0, description="digit")
    per_class = int(torch.bincount(y, minlength=10).min())
    page = widgets.IntSlider(value=0, min=0, max=max(0, per_class // n - 1), description="page")
    out = widgets.Output()

    def redraw(_=None) -> None:
        with out:
            out.clear_output(wait=True)
            fig = gallery_figure(x, y, digit.value, n, page.value)
            display(fig)
            plt.close(fig)

    digit.observe(redraw, names="value")
    page.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([digit, page]), out])
