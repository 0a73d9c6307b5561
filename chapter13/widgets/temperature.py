"""Temperature widget (13.1): how tau sharpens the softmax over a batch's similarity matrix.

CLIP divides the cosine similarities S_ij by a temperature tau before the softmax: a small tau makes
each row's softmax nearly one-hot (the loss then only looks at the hardest negative), a large tau
makes it nearly uniform (the loss tends to log B whatever the embeddings). The pure functions
:func:`temperature_softmax` (numbers) and :func:`temperature_figure` (a figure) do the work;
:func:`temperature_widget` wires a log-scale slider to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from chapter13.multimodal import symmetric_cross_entropy

TAU_RANGE = (0.005, 2.0)
"""The slider's range of temperatures."""


def _as_similarity(similarity: torch.Tensor | np.ndarray) -> torch.Tensor:
    s = torch.as_tensor(similarity, dtype=torch.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] < 2:
        raise ValueError(
            f"similarity must be a square (B, B) matrix of cosine similarities with B >= 2, got shape "
            f"{tuple(s.shape)}"
        )
    if not torch.isfinite(s).all():
        raise ValueError("similarity contains NaN or infinity")
    return s


def temperature_softmax(similarity: torch.Tensor | np.ndarray, tau: float) -> dict[str, object]:
    """The softmaxes and the CLIP loss of a (B, B) similarity matrix at temperature ``tau``.

    Returns a dict with ``p_image_to_text`` (B, B): row i is softmax_j(S_ij / tau), image i's
    distribution over captions; ``p_text_to_image`` (B, B): column j is softmax_i(S_ij / tau);
    ``loss_i2t``, ``loss_t2i`` and ``loss`` (their mean, CLIP's symmetric loss, Radford et al. 2021
    Fig. 3); ``diagonal`` (mean probability on the matching pair, both directions averaged).
    """
    s = _as_similarity(similarity)
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    logits = s / tau
    rows = logits.softmax(dim=1)
    cols = logits.softmax(dim=0)
    targets = torch.arange(len(s))
    loss_i2t = torch.nn.functional.cross_entropy(logits, targets).item()
    loss_t2i = torch.nn.functional.cross_entropy(logits.T, targets).item()
    return {
        "p_image_to_text": rows.numpy(),
        "p_text_to_image": cols.numpy(),
        "loss_i2t": loss_i2t,
        "loss_t2i": loss_t2i,
        "loss": symmetric_cross_entropy(logits).item(),
        "diagonal": 0.5 * (rows.diagonal().mean().item() + cols.diagonal().mean().item()),
    }


@lru_cache(maxsize=8)
def _loss_curve(key: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    s = torch.from_numpy(np.frombuffer(key, dtype=np.float64).reshape(shape).copy())
    taus = np.geomspace(*TAU_RANGE, 60)
    return taus, np.array([symmetric_cross_entropy(s / t).item() for t in taus])


def loss_curve(similarity: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(taus, losses): the CLIP loss of ``similarity`` over 60 temperatures in :data:`TAU_RANGE`
    (cached per matrix, so a widget computes it once)."""
    s = _as_similarity(similarity).numpy()
    return _loss_curve(s.tobytes(), s.shape)


def temperature_figure(
    similarity: torch.Tensor | np.ndarray,
    tau: float,
    labels: Sequence[str] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Three panels: the similarity matrix, the image->text softmax at ``tau``, and the loss against
    tau with ``tau`` marked. Pass the ``fig`` returned earlier to update it in place (fast)."""
    numbers = temperature_softmax(similarity, tau)
    p = numbers["p_image_to_text"]
    if fig is not None and getattr(fig, "_ch13_artists", None) is not None:
        image, marker, title = fig._ch13_artists
        image.set_data(p)
        marker.set_data([tau], [numbers["loss"]])
        title.set_text(f"softmax over captions, tau = {tau:.3g}")
        fig.suptitle(f"loss = {numbers['loss']:.3f}   mean p(match) = {numbers['diagonal']:.2f}")
        return fig
    s = _as_similarity(similarity).numpy()
    fig = plt.figure(figsize=(11, 3.4)) if fig is None else fig
    fig.clear()
    axes = fig.subplots(1, 3)
    im0 = axes[0].imshow(s, cmap="RdBu_r", vmin=-1, vmax=1)
    axes[0].set_title("cosine similarity S")
    fig.colorbar(im0, ax=axes[0], fraction=0.046)
    image = axes[1].imshow(p, cmap="viridis", vmin=0, vmax=1)
    title = axes[1].set_title(f"softmax over captions, tau = {tau:.3g}")
    fig.colorbar(image, ax=axes[1], fraction=0.046)
    for ax in axes[:2]:
        ax.set_xlabel("caption j")
        ax.set_ylabel("image i")
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
    taus, losses = loss_curve(similarity)
    axes[2].semilogx(taus, losses, color="0.3")
    axes[2].axhline(np.log(len(s)), color="0.6", ls="--", lw=1, label="log B (chance)")
    axes[2].axvline(0.07, color="tab:green", ls=":", lw=1, label="CLIP's initial tau = 0.07")
    (marker,) = axes[2].plot([tau], [numbers["loss"]], "o", color="tab:red")
    axes[2].set_xlabel("temperature tau")
    axes[2].set_ylabel("contrastive loss")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"loss = {numbers['loss']:.3f}   mean p(match) = {numbers['diagonal']:.2f}")
    fig.tight_layout()
    fig._ch13_artists = (image, marker, title)
    return fig


def temperature_widget(similarity: torch.Tensor | np.ndarray, labels: Sequence[str] | None = None):
    """A log-scale tau slider over :func:`temperature_figure` (updates the same figure in place)."""
    import ipywidgets as widgets
    from IPython.display import display

    _as_similarity(similarity)
    slider = widgets.FloatLogSlider(
        value=0.07,
        base=10,
        min=np.log10(TAU_RANGE[0]),
        max=np.log10(TAU_RANGE[1]),
        step=0.02,
        description="tau",
        continuous_update=True,
        readout_format=".3f",
    )
    out = widgets.Output()
    with plt.ioff():
        fig = temperature_figure(similarity, slider.value, labels)

    def redraw(change=None) -> None:
        temperature_figure(similarity, slider.value, labels, fig=fig)
        with out:
            out.clear_output(wait=True)
            display(fig)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, out])
