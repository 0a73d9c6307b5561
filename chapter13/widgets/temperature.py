"""Temperature widget (13.1): how tau sharpens the softmax over a batch's similarity matrix.

CLIP divides the cosine similarities S_ij by a temperature tau before the softmax: a small tau makes
each row's softmax nearly one-hot (the loss then only looks at the hardest negative), a large tau
makes it nearly uniform (the loss tends to log B whatever the embeddings). The pure functions
:func:`temperature_softmax` (numbers), :func:`temperature_loss_curve` (the loss over the slider's
range) and :func:`temperature_figure` (a figure) do the work; :func:`temperature_widget` wires a
log-scale slider to :class:`TemperatureView` (a :class:`~chapter13.widgets.view.View`), which redraws
only what changes (blitting) so that an update costs a few tens of milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from chapter13.plotting import OKABE_ITO
from chapter13.widgets.view import View, ViewBox, interactive

TAU_RANGE = (0.005, 2.0)
"""The slider's range of temperatures."""


def _as_similarity(similarity: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(similarity, torch.Tensor):
        similarity = similarity.detach().cpu().numpy()
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] < 2:
        raise ValueError(
            f"similarity must be a square (B, B) matrix of cosine similarities with B >= 2, got shape "
            f"{tuple(s.shape)}"
        )
    if not np.isfinite(s).all():
        raise ValueError("similarity contains NaN or infinity")
    return s


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def temperature_softmax(similarity: torch.Tensor | np.ndarray, tau: float) -> dict[str, object]:
    """The softmaxes and the CLIP loss of a (B, B) similarity matrix at temperature ``tau``.

    Returns a dict with ``p_image_to_text`` (B, B): row i is softmax_j(S_ij / tau), image i's
    distribution over captions; ``p_text_to_image`` (B, B): column j is softmax_i(S_ij / tau);
    ``loss_i2t``, ``loss_t2i`` (mean cross-entropy of the diagonal targets) and ``loss`` (their mean,
    CLIP's symmetric loss, Radford et al. 2021 Fig. 3); ``diagonal`` (mean probability on the matching
    pair, both directions averaged). NumPy on purpose: a handful of 8x8 operations run in
    microseconds, where a PyTorch thread pool on a busy machine can take tens of milliseconds.
    """
    s = _as_similarity(similarity)
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    logits = s / tau
    log_rows = _log_softmax(logits, axis=1)
    log_cols = _log_softmax(logits, axis=0)
    loss_i2t = float(-np.diagonal(log_rows).mean())
    loss_t2i = float(-np.diagonal(log_cols).mean())
    rows, cols = np.exp(log_rows), np.exp(log_cols)
    return {
        "p_image_to_text": rows,
        "p_text_to_image": cols,
        "loss_i2t": loss_i2t,
        "loss_t2i": loss_t2i,
        "loss": 0.5 * (loss_i2t + loss_t2i),
        "diagonal": 0.5 * (float(np.diagonal(rows).mean()) + float(np.diagonal(cols).mean())),
    }


@lru_cache(maxsize=8)
def _loss_curve(key: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    s = np.frombuffer(key, dtype=np.float64).reshape(shape)
    taus = np.geomspace(*TAU_RANGE, 60)
    return taus, np.array([temperature_softmax(s, t)["loss"] for t in taus])


def temperature_loss_curve(similarity: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(taus, losses): the CLIP loss of ``similarity`` over 60 temperatures in :data:`TAU_RANGE`
    (cached per matrix, so a widget computes it once)."""
    s = _as_similarity(similarity)
    return _loss_curve(s.tobytes(), s.shape)


class TemperatureView(View):
    """The figure of :func:`temperature_figure` for the widget: the static parts (similarity panel,
    axes, tick labels, loss curve) are drawn once; an update redraws only the softmax image, the
    marker and two titles onto the cached background (blitting), and :meth:`png` encodes it.

        view = TemperatureView(similarity, labels)
        view.update(0.1)
        png_bytes = view.png()  # or, in one call, view.render(0.1)

    Args:
        similarity: the (B, B) cosine similarities.
        labels: B row labels of the similarity panel, or None.
        figure: draw on this figure (cleared first) instead of a new ``Figure`` (11 x 3.6 in, ``dpi``).
    """

    def __init__(
        self,
        similarity: torch.Tensor | np.ndarray,
        labels: Sequence[str] | None = None,
        *,
        figure: Figure | None = None,
        dpi: float = 80,
    ) -> None:
        s = _as_similarity(similarity)
        if labels is not None and len(labels) != len(s):
            raise ValueError(f"{len(labels)} labels for a {len(s)}x{len(s)} similarity matrix")
        super().__init__(figure, figsize=(11, 3.6), dpi=dpi)
        self.similarity = s
        fig = self.figure
        fig.clear()
        axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": (1, 1, 1.15)})
        im0 = axes[0].imshow(s, cmap="RdBu_r", vmin=-1, vmax=1)
        axes[0].set_title("cosine similarity S")
        fig.colorbar(im0, ax=axes[0], fraction=0.046)
        self.softmax_image = axes[1].imshow(np.eye(len(s)), cmap="viridis", vmin=0, vmax=1)
        self.title = axes[1].set_title(" \n ")  # two lines, as update writes them (the layout is fixed here)
        fig.colorbar(self.softmax_image, ax=axes[1], fraction=0.046)
        for ax in axes[:2]:
            ax.set_xlabel("caption j")
            ax.set_xticks(range(len(s)))
            ax.set_yticks(range(len(s)))
        axes[1].set_ylabel("image i")
        if labels is not None:
            axes[0].set_yticks(range(len(s)), [f"{label} {i}" for i, label in enumerate(labels)], fontsize=8)
        else:
            axes[0].set_ylabel("image i")
        taus, losses = temperature_loss_curve(s)
        axes[2].loglog(taus, losses, color="0.3")
        axes[2].axhline(np.log(len(s)), color="0.6", ls="--", lw=1, label="log B (chance)")
        axes[2].axvline(
            0.07, color=OKABE_ITO["bluish green"], ls=":", lw=1, label="CLIP's initial tau = 0.07"
        )
        (self.marker,) = axes[2].plot([0.07], [losses[0]], "o", color=OKABE_ITO["vermillion"])
        axes[2].set_xlabel("temperature tau")
        axes[2].set_ylabel("contrastive loss")
        axes[2].legend(fontsize=8, loc="lower right")
        self.headline = fig.text(0.5, 0.98, " ", ha="center", va="top", fontsize=11)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        self.dynamic = [self.softmax_image, self.marker, self.title, self.headline]
        self.numbers: dict[str, object] | None = None

    def update(self, tau: float) -> Figure:
        """Show the softmax and the loss at temperature ``tau``; returns the figure."""
        numbers = temperature_softmax(self.similarity, tau)
        self.softmax_image.set_data(numbers["p_image_to_text"])
        self.marker.set_data([tau], [numbers["loss"]])
        self.title.set_text(f"softmax over captions\ntau = {tau:.3g}")
        self.headline.set_text(f"loss = {numbers['loss']:.3f}    mean p(match) = {numbers['diagonal']:.2f}")
        self.numbers = numbers
        return self.figure

    def render(self, tau: float) -> bytes:
        """The figure at ``tau`` as PNG bytes: :meth:`update` then :meth:`png`."""
        self.update(tau)
        return self.png()


def temperature_figure(
    similarity: torch.Tensor | np.ndarray,
    tau: float,
    labels: Sequence[str] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Three panels: the similarity matrix, the image->text softmax at ``tau``, and the loss against
    tau with ``tau`` marked. A new pyplot figure, or ``fig`` cleared and drawn again."""
    temperature_softmax(similarity, tau)  # a bad tau raises before the figure is touched
    fig = plt.figure(figsize=(11, 3.6)) if fig is None else fig
    return TemperatureView(similarity, labels, figure=fig).update(tau)


def temperature_widget(similarity: torch.Tensor | np.ndarray, labels: Sequence[str] | None = None) -> ViewBox:
    """A log-scale tau slider over :class:`TemperatureView` (an ``ipywidgets.Image`` updated in place)."""
    slider = ipywidgets.FloatLogSlider(
        value=0.07,
        base=10,
        min=np.log10(TAU_RANGE[0]),
        max=np.log10(TAU_RANGE[1]),
        step=0.02,
        description="tau",
        continuous_update=True,
        readout_format=".3f",
    )
    return interactive(TemperatureView(similarity, labels), {"tau": slider}, [["tau"]])
