"""Judging generated digits: a small classifier and the sample metrics built on it.

Pixel-space models of this chapter make 28x28 digits; nobody can look at thousands of them, so the
chapter measures them with a digit classifier trained on the bundled training split (the shipped
checkpoint ``digit-classifier``; its recipe is ``chapter13.recipes.classifier``):

- **confident fraction**: the share of samples the classifier assigns to one class with probability
  above 0.9. Blobs, smudges and half-digits get spread-out probabilities.
- **class histogram** and its **normalised entropy** ``H(p) / log 10``: 1.0 when every digit is
  made equally often, 0 when the model makes only one digit (mode collapse).
- **class accuracy** for conditional samples: how often the classifier reads the requested label.
- **Fréchet distance** between the classifier's penultimate features of the samples and of the real
  test split (the FID of Heusel et al. 2017, with our small classifier standing in for Inception).

    from chapter13.evaluate import sample_metrics
    sample_metrics(samples)   # samples: (N, 1, 28, 28) in [-1, 1]
    # {'n': 256, 'confident_fraction': 0.9, 'class_histogram': [...], 'class_entropy': 0.99, ...}

The classifier is trained with outlier exposure (Hendrycks, Mazeika & Dietterich 2019, see
``make_outliers``): without it, it was more than 90 % sure of 36 % of pure-noise images and of every
blank canvas, so a broken sampler could look good. Real digits are the yardstick, and
held-out ones (the classifier was trained on the training digits, which it calls 100 % confident):
``reference_metrics()`` scores ``n`` test digits against the *other* test digits (``held_out_split``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chapter13 import checkpoints
from chapter13.config import check_device, check_finite, check_model_input
from chapter13.data import as_model_range, interleave_classes, load_mnist

NUM_CLASSES = 10
CONFIDENCE_THRESHOLD = 0.9
CLASSIFIER_NAME = "digit-classifier"

# --- the classifier --------------------------------------------------------------------------------


class DigitClassifier(nn.Module):
    """A small CNN for 28x28 digits: two conv blocks, then a hidden layer of ``hidden`` features.

    ``conv(3x3)-GN-SiLU-conv(3x3)-GN-SiLU-maxpool`` per entry of ``channels`` (28 -> 14 -> 7), then
    ``flatten -> dropout -> linear(hidden) -> SiLU`` (the *penultimate features* used for the Fréchet
    distance) ``-> dropout -> linear(10)``.

    Args:
        channels: widths of the conv blocks, e.g. ``[32, 64]`` (each block halves the resolution).
        hidden: size of the penultimate feature vector.
        dropout: dropout probability before each linear layer (training only).
    """

    def __init__(
        self, channels: list[int] | tuple[int, ...] = (32, 64), hidden: int = 128, dropout: float = 0.3
    ):
        super().__init__()
        channels = list(channels)
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive widths, got {channels}")
        if 28 % (2 ** len(channels)) != 0:
            raise ValueError(f"{len(channels)} pooling blocks do not divide 28 evenly; use 1 or 2 blocks")
        blocks: list[nn.Module] = []
        c_in = 1
        for c in channels:
            groups = 8 if c % 8 == 0 else 1
            blocks += [
                nn.Conv2d(c_in, c, 3, padding=1),
                nn.GroupNorm(groups, c),
                nn.SiLU(),
                nn.Conv2d(c, c, 3, padding=1),
                nn.GroupNorm(groups, c),
                nn.SiLU(),
                nn.MaxPool2d(2),
            ]
            c_in = c
        self.conv = nn.Sequential(*blocks)
        side = 28 // 2 ** len(channels)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * side * side, hidden), nn.SiLU()
        )
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, NUM_CLASSES))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features. ``x``: (B, 1, 28, 28) in [-1, 1] -> (B, hidden)."""
        _check_images(x)
        check_model_input(x, self, "digits")
        return self.head(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits. ``x``: (B, 1, 28, 28) in [-1, 1] -> (B, 10)."""
        return self.out(self.features(x))


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of digits (N, 1, 28, 28), got {type(x).__name__}")
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"expected digits shaped (N, 1, 28, 28), got {tuple(x.shape)}; "
            "add the channel axis with x.unsqueeze(1) if you have (N, 28, 28)"
        )


def check_samples(samples: torch.Tensor, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Validate generated digits and return them as float32 on the CPU, in the model range.

    ``samples``: (N, 1, 28, 28), finite, in the model range [-1, 1] (a little overshoot is allowed;
    values beyond +-1.5 mean the images are in another range, which is an error, and so is a batch
    with no pixel below 0: [0, 1] images). ``value_range=(0, 1)`` or ``(0, 255)`` converts such
    images instead (``chapter13.data.as_model_range``).
    """
    _check_images(samples)
    if len(samples) == 0:
        raise ValueError("no samples to evaluate: got an empty batch")
    x = samples.detach().float().cpu()
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
        raise ValueError(f"{bad} of {len(x)} samples contain NaN or infinity; the sampler diverged")
    return as_model_range(x, value_range, "samples")


def augment(x: torch.Tensor, max_shift: int = 2, max_rotation_deg: float = 10.0) -> torch.Tensor:
    """Random small rotations and integer shifts of a batch ``x``: (B, 1, 28, 28) in [-1, 1].

    Background is -1 (black). Uses the global torch RNG (seeded by the trainer).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"augment expects a batch of images (B, 1, 28, 28), got {shape}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0 (pixels), got {max_shift!r}")
    if not check_finite(max_rotation_deg, "max_rotation_deg") >= 0:
        raise ValueError(f"max_rotation_deg must be >= 0 degrees, got {max_rotation_deg}")
    b = x.shape[0]
    angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(max_rotation_deg)
    shift = torch.randint(-max_shift, max_shift + 1, (b, 2), device=x.device).float() * (2.0 / 28.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with 0; shift to [0, 2] so that the padding is black, then back.
    return F.grid_sample(x + 1.0, grid, align_corners=False, padding_mode="zeros") - 1.0


OUTLIER_KINDS = ("uniform noise", "gaussian noise", "flat image", "noisy digit", "blob", "two digits")


def make_outliers(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images that are not one digit, with the soft targets the classifier should give them.

    For outlier exposure (Hendrycks, Mazeika & Dietterich 2019): a judge of generated digits must not
    be confident on noise, blank canvases or ink blobs, which is what a broken sampler produces. From a
    batch of digits ``x``: (B, 1, 28, 28) in [-1, 1] with labels ``y``: (B,), each row becomes one of
    ``OUTLIER_KINDS`` at random (global torch RNG):

    - uniform noise in [-1, 1]; Gaussian noise (std 0.3-1.5) clipped to [-1, 1];
    - a flat image at a random grey level plus faint noise;
    - the digit under heavy noise, ``clip(x + N(0, s²))`` with s in [1, 2];
    - a blob: 4x4 or 7x7 Gaussian noise up-sampled bilinearly and squashed, smooth ink shapes;
    - two digits of different classes blended, ``l x_a + (1 - l) x_b`` with l in [0.3, 0.7].

    Targets are uniform over the 10 classes, except for the blend, whose target is the mixup label
    ``l e_a + (1 - l) e_b`` (Zhang et al. 2018): either way no class gets probability 0.9.
    Returns ``(images (B, 1, 28, 28), targets (B, 10))``.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    _check_images(x)
    if y.shape != (len(x),):
        raise ValueError(f"y must hold one label per image, shape ({len(x)},), got {tuple(y.shape)}")
    b = x.shape[0]
    kind = torch.randint(0, len(OUTLIER_KINDS), (b,), device=x.device)
    u = lambda *shape: torch.rand(*shape, device=x.device)
    rn = lambda *shape: torch.randn(*shape, device=x.device)
    out = torch.empty_like(x)
    out[kind == 0] = u(int((kind == 0).sum()), 1, 28, 28) * 2 - 1
    n1 = int((kind == 1).sum())
    out[kind == 1] = (rn(n1, 1, 28, 28) * (0.3 + 1.2 * u(n1, 1, 1, 1))).clamp(-1, 1)
    n2 = int((kind == 2).sum())
    out[kind == 2] = (u(n2, 1, 1, 1) * 2 - 1 + 0.1 * rn(n2, 1, 28, 28)).clamp(-1, 1)
    n3 = int((kind == 3).sum())
    out[kind == 3] = (x[kind == 3] + (1 + u(n3, 1, 1, 1)) * rn(n3, 1, 28, 28)).clamp(-1, 1)
    n4 = int((kind == 4).sum())
    if n4:
        side = 4 if float(u(1)) < 0.5 else 7
        low = rn(n4, 1, side, side) * 2 - 1.5
        out[kind == 4] = torch.tanh(
            2 * F.interpolate(low, size=(28, 28), mode="bilinear", align_corners=False)
        )
    targets = torch.full((b, NUM_CLASSES), 1.0 / NUM_CLASSES, device=x.device)
    blend = (kind == 5).nonzero().flatten()
    if len(blend):
        partner = torch.randint(0, b, (len(blend),), device=x.device)
        ok = y[partner] != y[blend]
        blend, partner = blend[ok], partner[ok]
        lam = 0.3 + 0.4 * u(len(blend), 1, 1, 1)
        out[blend] = lam * x[blend] + (1 - lam) * x[partner]
        targets[blend] = 0.0
        targets[blend, y[blend]] = lam.flatten()
        targets[blend, y[partner]] += 1 - lam.flatten()
        rest = (kind == 5) & ~torch.isin(torch.arange(b, device=x.device), blend)
        out[rest] = u(int(rest.sum()), 1, 28, 28) * 2 - 1  # same-class partner: use noise instead
    return out, targets


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on ``x``: (N, 1, 28, 28), ``y``: (N,)."""
    _check_batch_size(batch_size)
    if len(x) == 0:
        raise ValueError("accuracy of an empty batch is undefined; pass at least one image")
    if len(y) != len(x):
        raise ValueError(f"got {len(x)} images but {len(y)} labels; pass one label per image")
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == y[i : i + batch_size]).sum())
    return correct / len(x)


def load_classifier(device: str = "cpu") -> DigitClassifier:
    """The shipped ``digit-classifier`` (checksum-verified, eval mode), cached per device and file:
    after a rebuild (a new SHA-256 in the manifest) the next call loads the new one."""
    return _load_classifier(str(check_device(device)), checkpoints.entry(CLASSIFIER_NAME)["sha256"])


@functools.lru_cache(maxsize=2)
def _load_classifier(device: str, sha256: str) -> DigitClassifier:
    model = checkpoints.load_model(CLASSIFIER_NAME, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model  # type: ignore[return-value]


# --- metrics -----------------------------------------------------------------------------------------


def _check_batch_size(batch_size: object) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


@torch.no_grad()
def classify(
    samples: torch.Tensor,
    classifier: nn.Module | None = None,
    batch_size: int = 500,
    value_range: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, 10) and penultimate features (N, hidden) of ``samples``.

    ``samples``: (N, 1, 28, 28) in [-1, 1] (or in ``value_range``, see ``check_samples``);
    ``classifier`` defaults to the shipped one.
    """
    _check_batch_size(batch_size)
    x = check_samples(samples, value_range)
    model = classifier if classifier is not None else load_classifier()
    model.eval()
    device = next(model.parameters()).device
    probs, feats = [], []
    for i in range(0, len(x), batch_size):
        f = model.features(x[i : i + batch_size].to(device))
        probs.append(model.out(f).softmax(1).cpu())
        feats.append(f.cpu())
    return torch.cat(probs), torch.cat(feats)


def confident_fraction(probs: torch.Tensor, threshold: float = CONFIDENCE_THRESHOLD) -> float:
    """Share of rows of ``probs``: (N, 10) whose largest probability exceeds ``threshold`` (in [0, 1])."""
    if not isinstance(probs, torch.Tensor):
        raise TypeError(
            f"probs must be a tensor (N, classes), got {type(probs).__name__}; use torch.as_tensor"
        )
    if probs.ndim != 2:
        raise ValueError(f"expected probabilities (N, classes), got shape {tuple(probs.shape)}")
    if len(probs) == 0:
        raise ValueError("no probabilities: got an empty batch; the fraction of nothing is undefined")
    if not probs.is_floating_point() or not bool(torch.isfinite(probs).all()):
        raise ValueError("probs must be finite floating-point probabilities (e.g. logits.softmax(1))")
    if not 0.0 <= check_finite(threshold, "threshold") <= 1.0:
        raise ValueError(f"threshold is a probability in [0, 1] (the chapter uses 0.9), got {threshold}")
    return float((probs.max(1).values > threshold).float().mean())


def class_histogram(predictions: torch.Tensor, num_classes: int = NUM_CLASSES) -> list[int]:
    """How many times each class was predicted. ``predictions``: (N,) integer class ids in
    0..num_classes-1 (a tensor, list or NumPy array) -> list of ``num_classes`` counts."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    try:
        labels = torch.as_tensor(predictions)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"predictions must be integer class ids, got {type(predictions).__name__}") from None
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(
            f"predictions must be integer class ids, got {labels.dtype}; "
            "for probabilities (N, classes) pass probs.argmax(1)"
        )
    labels = labels.long().flatten().cpu()
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"predictions must be classes 0..{num_classes - 1}, got values in "
            f"{int(labels.min())}..{int(labels.max())}; a histogram would drop the others"
        )
    return torch.bincount(labels, minlength=num_classes).tolist()


def normalised_entropy(histogram: list[int] | torch.Tensor | np.ndarray) -> float:
    """Shannon entropy of the class frequencies divided by its maximum ``log K``.

    ``H = -sum_k p_k log p_k / log K`` with ``p_k = n_k / N`` (0 log 0 = 0): 1.0 for a uniform
    histogram, 0.0 when a single class is made.
    """
    try:
        counts = np.asarray(histogram, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"histogram must be a list of counts, got {histogram!r}") from None
    if not np.isfinite(counts).all():
        raise ValueError(f"histogram counts must be finite numbers, got {counts}")
    if counts.size < 2 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"need a histogram of at least 2 non-negative counts with a positive sum: {counts}")
    p = counts / counts.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / math.log(counts.size))


def frechet_distance(features_a: torch.Tensor | np.ndarray, features_b: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, FID).

    ``d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` (Dowson & Landau 1982), with the
    means and (unbiased) covariances of ``features_a``: (N, D) and ``features_b``: (M, D). The trace of
    the matrix square root is computed as ``sum_i sqrt(lambda_i)`` of the symmetric PSD matrix
    ``S_a^{1/2} S_b S_a^{1/2}``, which has the same eigenvalues as ``S_a S_b``; float64 throughout.
    """
    try:
        a = np.asarray(features_a, dtype=np.float64)
        b = np.asarray(features_b, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("features must be (N, D) arrays or tensors of numbers") from None
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("features contain NaN or infinity; the Fréchet distance needs finite features")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two (N, D) feature arrays with equal D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 rows in each feature set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    eval_a, evec_a = np.linalg.eigh(cov_a)
    sqrt_a = (evec_a * np.sqrt(np.clip(eval_a, 0, None))) @ evec_a.T
    middle = sqrt_a @ cov_b @ sqrt_a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    d2 = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)
    return max(d2, 0.0)


def _reference_features() -> torch.Tensor:
    """The shipped classifier's features of the real test digits (cached per classifier file)."""
    return _test_features(checkpoints.entry(CLASSIFIER_NAME)["sha256"])


@functools.lru_cache(maxsize=1)
def _test_features(classifier_sha256: str) -> torch.Tensor:
    x_test, _ = load_mnist("test")
    return classify(x_test)[1]


def sample_metrics(
    samples: torch.Tensor,
    classifier: nn.Module | None = None,
    reference_features: torch.Tensor | None = None,
    threshold: float = CONFIDENCE_THRESHOLD,
    value_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """All unconditional sample metrics of ``samples``: (N, 1, 28, 28) in [-1, 1] (images in [0, 1]
    or 0..255 are an error unless ``value_range`` says so, see ``check_samples``).

    Returns a dict with ``n``, ``confident_fraction`` (max class probability > ``threshold``),
    ``class_histogram`` (predicted classes, all samples), ``class_entropy`` (normalised, see
    ``normalised_entropy``) and ``frechet_distance`` (penultimate features against
    ``reference_features``, by default those of the 1,000 bundled test digits). With a custom
    ``classifier`` pass its own ``reference_features``.
    """
    if classifier is not None and reference_features is None:
        raise ValueError("with a custom classifier, pass reference_features computed with that classifier")
    if not 0.0 <= check_finite(threshold, "threshold") <= 1.0:
        raise ValueError(f"threshold is a probability in [0, 1] (the chapter uses 0.9), got {threshold}")
    probs, feats = classify(samples, classifier, value_range=value_range)
    hist = class_histogram(probs.argmax(1))
    ref = reference_features if reference_features is not None else _reference_features()
    return {
        "n": len(probs),
        "confident_fraction": confident_fraction(probs, threshold),
        "class_histogram": hist,
        "class_entropy": normalised_entropy(hist),
        "frechet_distance": frechet_distance(feats, ref),
    }


def class_accuracy(
    samples: torch.Tensor,
    labels: torch.Tensor | list[int],
    classifier: nn.Module | None = None,
    value_range: tuple[float, float] | None = None,
) -> float:
    """Share of conditional ``samples``: (N, 1, 28, 28) that the classifier reads as their ``labels``: (N,)."""
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer digits 0..9, got {labels.dtype}")
    labels = labels.long().flatten()
    if len(labels) != len(samples):
        raise ValueError(f"got {len(samples)} samples but {len(labels)} labels; pass one label per sample")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(
            f"labels must be digits 0..9, got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    probs, _ = classify(samples, classifier, value_range=value_range)
    return float((probs.argmax(1) == labels).float().mean())


def held_out_split(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The yardstick for generated digits and its Fréchet reference, disjoint: ``n`` bundled test
    digits that take the classes in turn, and the remaining ``1000 - n`` test digits.

    Returns ``(yardstick, reference)``: (n, 1, 28, 28) and (1000 - n, 1, 28, 28) in [-1, 1]. Score
    samples and the yardstick against the same reference: ``classify(reference)[1]``.
    """
    x, y = load_mnist("test")
    if isinstance(n, bool) or not isinstance(n, int) or not 10 <= n <= len(x) - 10:
        raise ValueError(
            f"n must be an int in [10, {len(x) - 10}] (test digits for the yardstick), got {n!r}"
        )
    order = interleave_classes(y)
    return x[order[:n]], x[order[n:]]


def reference_metrics(n: int = 256) -> dict[str, Any]:
    """``sample_metrics`` of ``n`` real test digits against the other test digits
    (:func:`held_out_split`): what generated samples are compared with. The Fréchet distance of real
    digits is not 0 at small ``n``: it shows the estimator's bias for that sample size."""
    yardstick, reference = held_out_split(n)
    return sample_metrics(yardstick, reference_features=classify(reference)[1])
