"""Recipe of ``digit-classifier``, the judge behind ``chapter13.evaluate``'s sample metrics.

python -m chapter13.train digit-classifier    # 600 steps with outlier exposure, about a minute
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chapter13.config import seed_everything
from chapter13.data import load_mnist
from chapter13.evaluate import (
    CLASSIFIER_NAME,
    DigitClassifier,
    accuracy,
    augment,
    classify,
    confident_fraction,
    make_outliers,
)
from chapter13.recipes import Built, Recipe
from chapter13.train import TrainResult, fit

MIN_TEST_ACCURACY = 0.97
"""A classifier below this test accuracy is not saved: it would be a poor judge."""

CLASSIFIER_CONFIG: dict[str, Any] = {"channels": [32, 64], "hidden": 128, "dropout": 0.3}
"""Constructor arguments of the shipped classifier (JSON, stored in the manifest)."""

CLASSIFIER_TRAINING: dict[str, Any] = {
    "steps": 600,
    "batch_size": 128,
    "lr": 2e-3,
    "weight_decay": 5e-4,
    "warmup": 100,
    "ema_decay": 0.999,
    "max_shift": 2,
    "max_rotation_deg": 10.0,
    "outlier_weight": 0.5,
    "outlier_fraction": 0.5,
    "seed": 0,
}
"""How the shipped classifier is trained (``train_digit_classifier`` uses these)."""


def train_digit_classifier(steps: int | None = None, progress: bool = True, **overrides: Any) -> TrainResult:
    """Train the classifier on the bundled training split with augmentation, through ``train.fit``.

    The loss is the cross-entropy on (shifted, rotated) digits plus ``outlier_weight`` times the
    cross-entropy towards the soft targets of ``make_outliers`` (outlier exposure), so that noise,
    blank images, blobs and blends of two digits are not judged confident.

    Returns the ``TrainResult`` (``.ema_model`` is the classifier). ``overrides`` change entries of
    ``CLASSIFIER_TRAINING`` (e.g. ``steps`` for a quick run).
    """
    settings = {**CLASSIFIER_TRAINING, **overrides}
    if steps is not None:
        settings["steps"] = steps
    seed_everything(settings["seed"])
    x, y = load_mnist("train")
    model = DigitClassifier(**CLASSIFIER_CONFIG)

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        xb, yb = batch
        loss = F.cross_entropy(m(augment(xb, settings["max_shift"], settings["max_rotation_deg"])), yb)
        if settings["outlier_weight"] > 0:
            k = max(1, int(len(xb) * settings["outlier_fraction"]))
            outliers, targets = make_outliers(xb[:k], yb[:k])
            loss = loss + settings["outlier_weight"] * F.cross_entropy(m(outliers), targets)
        return loss

    return fit(
        model,
        loss_fn,
        (x, y),
        steps=settings["steps"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        weight_decay=settings["weight_decay"],
        warmup=settings["warmup"],
        ema_decay=settings["ema_decay"],
        seed=settings["seed"],
        device="cpu",
        progress=progress,
        desc="digit classifier",
    )


def build() -> Built:
    """Train at full size, measure test accuracy and how real test digits score; refuse to save a
    classifier below ``MIN_TEST_ACCURACY``."""
    result = train_digit_classifier()
    classifier = result.ema_model.eval()
    x_test, y_test = load_mnist("test")
    test_acc = accuracy(classifier, x_test, y_test)
    if test_acc < MIN_TEST_ACCURACY:
        raise RuntimeError(
            f"the digit classifier reached only {test_acc:.1%} test accuracy (< {MIN_TEST_ACCURACY:.0%}); "
            "not saving it. Train longer (CLASSIFIER_TRAINING['steps'])."
        )
    probs, _ = classify(x_test, classifier)
    quality = {
        "test_accuracy": round(test_acc, 4),
        "test_confident_fraction": round(confident_fraction(probs), 4),
    }
    notes = f"trained on the bundled 4,000-digit training split; {CLASSIFIER_TRAINING}"
    return Built(classifier, dict(CLASSIFIER_CONFIG), result.seconds, quality, notes)


RECIPES = (Recipe(CLASSIFIER_NAME, "CNN digit classifier behind the sample metrics", DigitClassifier, build),)
