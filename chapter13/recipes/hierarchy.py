"""Recipes of ``hierarchy-digits`` (the 13.5 V1 -> IT network) and ``av-fusion-digits`` (two streams).

python -m chapter13.train hierarchy-digits    # 1,000 steps
python -m chapter13.train av-fusion-digits    # 2,000 steps
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from chapter13.config import default_device, seed_everything
from chapter13.data import load_mnist
from chapter13.evaluate import accuracy
from chapter13.hierarchy import (
    MAX_IMAGE_NOISE,
    MAX_SOUND_NOISE,
    HierarchicalCNN,
    TwoStreamFusion,
    add_image_noise,
    auditory_code,
    evaluate_fusion,
)
from chapter13.recipes import Built, Recipe
from chapter13.train import TrainResult, fit


def train_hierarchy(
    steps: int = 1000,
    *,
    widths: Sequence[int] = (8, 16, 32),
    association_dim: int = 64,
    batch_size: int = 64,
    seed: int = 0,
    train_limit: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train :class:`HierarchicalCNN` on the bundled MNIST training split with ``chapter13.train.fit``.

    Returns the ``TrainResult``; ``.ema_model`` is on the CPU, in eval mode.
    """
    seed_everything(seed)
    x, y = load_mnist("train", limit=train_limit)
    model = HierarchicalCNN(1, 28, 10, widths, association_dim)

    def loss_fn(m: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(m(images), labels)

    result = fit(
        model, loss_fn, (x, y), steps=steps, batch_size=batch_size, lr=2e-3, warmup=min(100, steps // 5),
        seed=seed, device=device or default_device(), progress=progress, desc="hierarchy",
    )  # fmt: skip
    result.ema_model = result.ema_model.cpu().eval()
    return result


def train_fusion(
    steps: int = 2000,
    *,
    widths: Sequence[int] = (8, 16, 32),
    feature_dim: int = 64,
    batch_size: int = 64,
    max_image_noise: float = MAX_IMAGE_NOISE,
    max_sound_noise: float = MAX_SOUND_NOISE,
    seed: int = 0,
    train_limit: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train :class:`TwoStreamFusion` on noisy digit images paired with noisy auditory codes.

    Every example gets its own noise levels, drawn uniformly from ``[0, max_image_noise]`` and
    ``[0, max_sound_noise]``, so the fusion layer must learn to lean on whichever stream is clearer
    (as reliability weighting prescribes). The loss is the sum of the cross-entropies of the fused,
    visual and auditory read-outs. Returns the ``TrainResult``; ``.ema_model`` is on the CPU, in
    eval mode.
    """
    seed_everything(seed)
    x, y = load_mnist("train", limit=train_limit)
    model = TwoStreamFusion(28, 10, widths, feature_dim, n_samples=256)

    def loss_fn(m: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        b = len(labels)
        sv = max_image_noise * torch.rand(b, device=images.device)
        sa = max_sound_noise * torch.rand(b)
        out = m(add_image_noise(images, sv), auditory_code(labels, sa))
        return sum(F.cross_entropy(out[k], labels) for k in ("fused", "visual", "auditory"))

    result = fit(
        model, loss_fn, (x, y), steps=steps, batch_size=batch_size, lr=2e-3, warmup=min(100, steps // 5),
        seed=seed, device=device or default_device(), progress=progress, desc="av-fusion",
    )  # fmt: skip
    result.ema_model = result.ema_model.cpu().eval()
    return result


def build_hierarchy() -> Built:
    """Recipe of ``hierarchy-digits``: train, measure test accuracy."""
    result = train_hierarchy()
    x, y = load_mnist("test")
    test_accuracy = accuracy(result.ema_model, x, y)
    quality = dict(test_accuracy=round(test_accuracy, 4), test_split="bundled MNIST test (1,000)")
    notes = "HierarchicalCNN (V1 -> V2/V4 -> IT -> association -> decision), 1,000 steps, EMA weights"
    return Built(result.ema_model, result.ema_model.config, result.seconds, quality, notes)


def build_fusion() -> Built:
    """Recipe of ``av-fusion-digits``: train, measure the accuracies across noise levels."""
    result = train_fusion()
    x, y = load_mnist("test")
    rows = evaluate_fusion(result.ema_model, x, y)
    quality = {
        f"noise_{r['image_noise']}_{r['sound_noise']}": {
            k: round(r[k], 4) for k in ("visual", "auditory", "fused", "product")
        }
        for r in rows
    }
    notes = (
        "TwoStreamFusion: visual HierarchicalCNN + DTMF auditory stream; test accuracy per "
        "(image noise, sound noise) on the bundled test split"
    )
    return Built(result.ema_model, result.ema_model.config, result.seconds, quality, notes)


RECIPES = (
    Recipe("hierarchy-digits", "13.5 hierarchical CNN (V1 -> IT)", HierarchicalCNN, build_hierarchy),
    Recipe("av-fusion-digits", "13.5 two-stream audio-visual fusion", TwoStreamFusion, build_fusion),
)
