"""The chapter's hierarchical sensory network (13.5.3) and a two-stream audio-visual fusion network.

The book's ``hierarchical_sensory_model`` (kept as printed in :mod:`chapter13.book.sec13_5`) stacks
V1 -> V2/V4 -> IT convolutions, an association layer and a decision layer, but hard-codes the
flattened size ``256 * 8 * 8``, which only fits 3-channel 32x32 images. :class:`HierarchicalCNN`
keeps the same stages and derives that size from the input it is built for, so it runs on MNIST's
1x28x28 digits (or anything else).

:class:`TwoStreamFusion` adds the multisensory part: a visual stream (a small
:class:`HierarchicalCNN`) sees a noisy digit, an auditory stream hears a noisy "spoken" code of the
same digit (:func:`auditory_code`, the two-tone DTMF signal of a telephone keypad), and an
association layer fuses their features. Accuracy of each stream and of the fusion across noise
levels, and the enhancement index of Meredith & Stein, show inverse effectiveness in a trained
network (:func:`evaluate_fusion`).

Shipped checkpoints: ``hierarchy-digits`` (:func:`build_hierarchy_digits`) and ``av-fusion-digits``
(:func:`build_av_fusion_digits`), rebuilt with ``python -m chapter13.train NAME``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chapter13.config import check_finite, check_model_input
from chapter13.neuro import enhancement_index
from chapter13.unet import check_positive_int

__all__ = [
    "DTMF_HZ",
    "STAGES",
    "AuditoryStream",
    "HierarchicalCNN",
    "TwoStreamFusion",
    "add_image_noise",
    "auditory_code",
    "empirical_receptive_field",
    "evaluate_fusion",
    "fusion_posteriors",
    "receptive_fields",
]

STAGES = ("V1", "V2/V4", "IT", "association", "decision")


def _size_pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        return image_size, image_size
    if (
        isinstance(image_size, str)
        or not isinstance(image_size, Sequence)
        or len(image_size) != 2
        or any(isinstance(s, bool) or not isinstance(s, int) for s in image_size)
    ):
        raise ValueError(f"image_size must be an int or (height, width) ints, got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


class HierarchicalCNN(nn.Module):
    """The chapter's V1 -> V2/V4 -> IT -> association -> decision network, sized from its input.

    Stages (as in the book's listing, with narrower layers so the checkpoint stays small):

    - V1: 3x3 convolution + ReLU (local oriented edges);
    - V2/V4: 3x3 convolution + ReLU + 2x2 max-pooling (combinations of edges);
    - IT: 3x3 convolution + ReLU + 2x2 max-pooling (object parts);
    - association: flatten + linear + ReLU (the book's "higher association areas");
    - decision: linear read-out to the classes.

    The flattened size is measured with a dummy forward pass at construction, so any input size
    works (``image_size=28`` gives ``widths[2] * 7 * 7``).

    Args:
        in_channels, image_size: the input the network is built for, ``(B, in_channels, H, W)``.
        widths: channels of V1, V2/V4 and IT. association_dim: width of the association layer.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | Sequence[int] = 28,
        num_classes: int = 10,
        widths: Sequence[int] = (8, 16, 32),
        association_dim: int = 64,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(
            in_channels=in_channels, image_size=image_size, num_classes=num_classes, widths=list(widths),
            association_dim=association_dim,
        )  # fmt: skip
        if len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"widths must give 3 positive channel counts (V1, V2/V4, IT), got {widths!r}")
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.image_size = _size_pair(image_size)
        if min(self.image_size) < 4:
            raise ValueError(f"image_size {self.image_size} is too small for two 2x2 poolings (need >= 4)")
        w1, w2, w3 = (int(w) for w in widths)
        self.v1 = nn.Sequential(nn.Conv2d(in_channels, w1, 3, padding=1), nn.ReLU())
        self.v2v4 = nn.Sequential(nn.Conv2d(w1, w2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.it = nn.Sequential(nn.Conv2d(w2, w3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        with torch.no_grad():
            dummy = torch.zeros(1, in_channels, *self.image_size)
            self.flatten_size = int(self.it(self.v2v4(self.v1(dummy))).numel())
        self.association = nn.Sequential(
            nn.Flatten(), nn.Linear(self.flatten_size, association_dim), nn.ReLU()
        )
        self.decision = nn.Linear(association_dim, num_classes)

    def _check(self, x: torch.Tensor) -> None:
        check_model_input(x, self, "images")
        expected = (self.in_channels, *self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"HierarchicalCNN was built for inputs (B, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(x.shape)}. Build it with in_channels=... and image_size=(H, W) to match."
            )

    def stages(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activity of every stage for ``x: (B, C, H, W)``: feature maps (B, C_s, H_s, W_s) for
        V1, V2/V4, IT, vectors (B, D) for association and decision (logits)."""
        self._check(x)
        out: dict[str, torch.Tensor] = {}
        out["V1"] = h = self.v1(x)
        out["V2/V4"] = h = self.v2v4(h)
        out["IT"] = h = self.it(h)
        out["association"] = h = self.association(h)
        out["decision"] = self.decision(h)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Association-layer features ``(B, association_dim)``."""
        self._check(x)
        return self.association(self.it(self.v2v4(self.v1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` for ``x: (B, C, H, W)``."""
        return self.decision(self.features(x))


# --- receptive fields --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one unit at the output of a stage: ``size`` pixels square, output units
    ``jump`` input pixels apart, the feature map ``spatial`` and its ``channels``."""

    stage: str
    size: int
    jump: int
    spatial: tuple[int, int]
    channels: int


def _stage_modules(model: HierarchicalCNN) -> list[tuple[str, nn.Sequential]]:
    return [("V1", model.v1), ("V2/V4", model.v2v4), ("IT", model.it)]


def receptive_fields(model: HierarchicalCNN) -> list[ReceptiveField]:
    """Receptive-field size at the output of V1, V2/V4 and IT, from the layer geometry.

    The standard recursion (e.g. Araujo, Norris & Sim 2019, Distill): a layer with kernel ``k`` and
    stride ``s`` grows the field by ``(k - 1) * jump`` and multiplies the jump by ``s``::

        r_out = r_in + (k - 1) j_in,   j_out = j_in s,   starting from r = j = 1.
    """
    size, jump = 1, 1
    out = []
    shape = (model.in_channels, *model.image_size)
    x = torch.zeros(1, *shape)
    for name, block in _stage_modules(model):
        for layer in block:
            if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
                s = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
                d = layer.dilation if isinstance(layer.dilation, int) else layer.dilation[0]
                size += (d * (k - 1)) * jump
                jump *= s
        with torch.no_grad():
            x = block(x)
        out.append(ReceptiveField(name, size, jump, (int(x.shape[2]), int(x.shape[3])), int(x.shape[1])))
    return out


def empirical_receptive_field(
    model: HierarchicalCNN, stage: str, n_probes: int = 16, seed: int = 0
) -> torch.Tensor:
    """Input pixels that influence the centre unit of ``stage``, found by back-propagation.

    The union, over ``n_probes`` random inputs, of the pixels with a non-zero gradient of the centre
    unit's summed activity (max-pooling routes the gradient through one pixel per window, so one
    input alone can under-estimate the field). Returns a bool mask ``(H, W)``.
    """
    blocks = dict(_stage_modules(model))
    if stage not in blocks:
        raise ValueError(f"stage must be one of {tuple(blocks)}, got {stage!r}")
    n_probes = check_positive_int("n_probes", n_probes)
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros(model.image_size, dtype=torch.bool)
    for _ in range(n_probes):
        x = torch.randn(1, model.in_channels, *model.image_size, generator=generator, requires_grad=True)
        h = x
        for name, block in _stage_modules(model):
            h = block(h)
            if name == stage:
                break
        ci, cj = h.shape[2] // 2, h.shape[3] // 2
        h[0, :, ci, cj].sum().backward()
        mask |= x.grad[0].abs().sum(0) > 0
    return mask


# --- the auditory code ---------------------------------------------------------------------------------

DTMF_HZ: dict[int, tuple[float, float]] = {
    1: (697.0, 1209.0),
    2: (697.0, 1336.0),
    3: (697.0, 1477.0),
    4: (770.0, 1209.0),
    5: (770.0, 1336.0),
    6: (770.0, 1477.0),
    7: (852.0, 1209.0),
    8: (852.0, 1336.0),
    9: (852.0, 1477.0),
    0: (941.0, 1336.0),
}
"""Dual-tone multi-frequency (DTMF, ITU-T Q.23) pairs of a telephone keypad: each digit is the sum of
a low (row) and a high (column) tone. Digits on one row or column share a tone, so the code has a
similarity structure of its own, unlike the images'."""


def auditory_code(
    labels: torch.Tensor,
    noise_std: float | torch.Tensor = 0.0,
    *,
    n_samples: int = 256,
    sample_rate: float = 8000.0,
    jitter: float = 0.01,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A noisy "spoken" code of each digit: its two DTMF tones with random phases, plus noise.

    ``x(t) = 0.5 sin(2 pi f_low t + phi_1) + 0.5 sin(2 pi f_high t + phi_2) + noise``, with each tone
    detuned by up to ``jitter`` (a fraction, uniform) per example, like two speakers' voices.

    Args:
        labels: ``(B,)`` digits 0-9 (long).
        noise_std: Gaussian noise standard deviation, a number or ``(B,)`` per example.

    Returns:
        ``(B, 1, n_samples)`` float32 waveform on the labels' device.
    """
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (B,), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer digits 0-9, got {labels.dtype}")
    if labels.numel() and (labels.min() < 0 or labels.max() > 9):
        raise ValueError("labels must be digits 0-9")
    n_samples = check_positive_int("n_samples", n_samples, 8)
    if not check_finite(sample_rate, "sample_rate") > 0:
        raise ValueError(f"sample_rate must be positive (samples per second), got {sample_rate}")
    if not 0 <= check_finite(jitter, "jitter") < 1:
        raise ValueError(f"jitter is a fraction of the frequency in [0, 1), got {jitter}")
    device = labels.device
    table = torch.tensor([DTMF_HZ[d] for d in range(10)], dtype=torch.float32)
    freqs = table[labels.cpu()]  # (B, 2)
    b = len(labels)
    detune = 1 + jitter * (2 * torch.rand(b, 2, generator=generator) - 1)
    phase = 2 * math.pi * torch.rand(b, 2, 1, generator=generator)
    t = torch.arange(n_samples, dtype=torch.float32) / sample_rate
    wave = 0.5 * torch.sin(2 * math.pi * (freqs * detune)[..., None] * t + phase).sum(1)
    noise = _noise_std(noise_std, b, torch.float32, "cpu")
    if noise.ndim == 1:
        noise = noise[:, None]
    wave = wave + noise * torch.randn(b, n_samples, generator=generator)
    return wave[:, None, :].to(device)


def add_image_noise(
    images: torch.Tensor, noise_std: float | torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``images: (B, C, H, W)`` in [-1, 1] plus Gaussian noise of std ``noise_std`` (number or (B,))."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 4:
        got = (
            f"{images.dtype} {tuple(images.shape)}"
            if isinstance(images, torch.Tensor)
            else type(images).__name__
        )
        raise TypeError(f"images must be a floating-point tensor (B, C, H, W), got {got}")
    noise = _noise_std(noise_std, len(images), images.dtype, images.device)
    if noise.ndim == 1:
        noise = noise[:, None, None, None]
    eps = torch.randn(images.shape, generator=generator, dtype=images.dtype).to(images.device)
    return images + noise * eps


def _noise_std(noise_std: float | torch.Tensor, batch: int, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """A finite, non-negative std: a number, or one per example ((batch,))."""
    try:
        noise = torch.as_tensor(noise_std, dtype=dtype).to(device)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"noise_std must be a number or a (B,) tensor, got {noise_std!r}") from None
    if noise.ndim > 1 or (noise.ndim == 1 and noise.shape[0] != batch):
        raise ValueError(
            f"noise_std must be a number or one per example, ({batch},), got shape {tuple(noise.shape)}"
        )
    if not bool(torch.isfinite(noise).all()) or bool(torch.any(noise < 0)):
        raise ValueError(f"noise_std must be finite and non-negative, got {noise_std!r}")
    return noise


class AuditoryStream(nn.Module):
    """Auditory pathway: a "cochlea" (log-magnitude spectrum of a Hann-windowed frame, a tonotopic
    code) followed by two fully connected layers. ``sound: (B, 1, L)`` -> features ``(B, D)``."""

    def __init__(self, n_samples: int = 256, feature_dim: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.n_samples = int(n_samples)
        self.register_buffer("window", torch.hann_window(self.n_samples), persistent=False)
        bins = self.n_samples // 2 + 1
        self.encoder = nn.Sequential(nn.Linear(bins, 128), nn.ReLU(), nn.Linear(128, feature_dim), nn.ReLU())
        self.decision = nn.Linear(feature_dim, num_classes)

    def spectrum(self, sound: torch.Tensor) -> torch.Tensor:
        if sound.ndim != 3 or sound.shape[1] != 1 or sound.shape[2] != self.n_samples:
            raise ValueError(f"sound must be (B, 1, {self.n_samples}), got {tuple(sound.shape)}")
        return torch.log1p(torch.fft.rfft(sound[:, 0] * self.window).abs())

    def features(self, sound: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.spectrum(sound))

    def forward(self, sound: torch.Tensor) -> torch.Tensor:
        return self.decision(self.features(sound))


class TwoStreamFusion(nn.Module):
    """Two sensory streams and an association area that fuses them (a model of STS-like fusion).

    ``forward(image (B, 1, H, W), sound (B, 1, L))`` returns a dict of class logits ``(B, 10)``:
    ``"visual"`` and ``"auditory"`` (each stream's own read-out, trained alongside) and ``"fused"``
    (a small network over the concatenated features of both streams).
    """

    def __init__(
        self,
        image_size: int | Sequence[int] = 28,
        num_classes: int = 10,
        widths: Sequence[int] = (8, 16, 32),
        feature_dim: int = 64,
        n_samples: int = 256,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(
            image_size=image_size, num_classes=num_classes, widths=list(widths), feature_dim=feature_dim,
            n_samples=n_samples,
        )  # fmt: skip
        self.visual = HierarchicalCNN(1, image_size, num_classes, widths, feature_dim)
        self.auditory = AuditoryStream(n_samples, feature_dim, num_classes)
        self.fusion = nn.Sequential(
            nn.Linear(2 * feature_dim, feature_dim), nn.ReLU(), nn.Linear(feature_dim, num_classes)
        )

    def forward(self, image: torch.Tensor, sound: torch.Tensor) -> dict[str, torch.Tensor]:
        if len(image) != len(sound):
            raise ValueError(f"image batch {len(image)} and sound batch {len(sound)} differ; pair them")
        fv = self.visual.features(image)
        fa = self.auditory.features(sound)
        return dict(
            visual=self.visual.decision(fv),
            auditory=self.auditory.decision(fa),
            fused=self.fusion(torch.cat([fv, fa], dim=1)),
        )


# --- measurement --------------------------------------------------------------------------------

MAX_IMAGE_NOISE = 5.5
MAX_SOUND_NOISE = 3.5


DEFAULT_NOISE_LEVELS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (1.5, 1.2),
    (2.5, 1.6),
    (3.5, 2.0),
    (4.5, 2.5),
    (5.5, 3.0),
)
"""(image noise std, sound noise std) pairs from clean to hard, used for the accuracy table. The two
levels in each pair were matched (on a calibration run) so that the two streams degrade together."""


@torch.no_grad()
def fusion_posteriors(
    model: TwoStreamFusion,
    images: torch.Tensor,
    heard: torch.Tensor,
    image_noise: float,
    sound_noise: float,
    *,
    generator: torch.Generator,
    batch_size: int = 500,
) -> dict[str, torch.Tensor]:
    """The class probabilities of the three read-outs, ``"visual"``, ``"auditory"`` and ``"fused"``:
    ``(N, 10)`` float64 each, for ``images`` (N, 1, 28, 28) shown with the sound code of the digits
    ``heard`` (N,) (their own labels, or others for a conflict).

    The noise of the whole set is drawn first (images, then sounds, from ``generator``), so that
    ``batch_size`` changes how the model is called, not what it sees.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if len(images) == 0 or len(heard) != len(images):
        raise ValueError(
            f"need a non-empty batch with one label per image, got {len(images)} images and {len(heard)} labels"
        )
    noisy = add_image_noise(images, image_noise, generator=generator)
    sounds = auditory_code(heard, sound_noise, generator=generator)
    device = next(model.parameters()).device
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {"visual": [], "auditory": [], "fused": []}
    for i in range(0, len(images), batch_size):
        out = model(noisy[i : i + batch_size].to(device), sounds[i : i + batch_size].to(device))
        for key, chunks in parts.items():
            chunks.append(F.softmax(out[key].double().cpu(), dim=1))
    return {key: torch.cat(chunks) for key, chunks in parts.items()}


def evaluate_fusion(
    model: TwoStreamFusion,
    x: torch.Tensor,
    y: torch.Tensor,
    noise_levels: Sequence[tuple[float, float]] = DEFAULT_NOISE_LEVELS,
    seed: int = 0,
    batch_size: int = 500,
) -> list[dict[str, float]]:
    """Accuracy of the visual stream, the auditory stream and their fusion at each noise level.

    Besides the learned fusion layer, ``"product"`` combines the two streams' own read-outs as a
    product of experts, ``log p_v(k) + log p_a(k)``: the Bayes-optimal rule for conditionally
    independent cues with a flat class prior (the discrete analogue of :func:`chapter13.neuro.mle_combine`).
    ``"enhancement"`` is Meredith & Stein's index on accuracies, 100 (AV - max(V, A)) / max(V, A).

    Args:
        x: ``(N, 1, 28, 28)`` images in [-1, 1]; y: ``(N,)`` labels. The noise is seeded per level
            (:func:`fusion_posteriors`: the same for any ``batch_size``).

    Returns:
        one dict per level: ``image_noise``, ``sound_noise``, ``visual``, ``auditory``, ``fused``,
        ``product``, ``enhancement``.
    """
    rows = []
    for level, (sv, sa) in enumerate(noise_levels):
        generator = torch.Generator().manual_seed(seed + 1000 * level)
        p = fusion_posteriors(model, x, y, sv, sa, generator=generator, batch_size=batch_size)
        p["product"] = p["visual"].log() + p["auditory"].log()
        acc = {
            k: float((p[k].argmax(1) == y.cpu()).double().mean())
            for k in ("visual", "auditory", "fused", "product")
        }
        enh = float(enhancement_index(acc["fused"], [acc["visual"], acc["auditory"]]))
        rows.append(dict(image_noise=sv, sound_noise=sa, **acc, enhancement=enh))
    return rows
