"""Tests for chapter13.evaluate: metric formulas against independent computations, input checks,
and the shipped digit classifier's accuracy and calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from chapter13 import evaluate
from chapter13.data import load_mnist

# --- formulas --------------------------------------------------------------------------------------


def test_normalised_entropy_known_values():
    assert evaluate.normalised_entropy([7] * 10) == pytest.approx(1.0)
    assert evaluate.normalised_entropy([0, 0, 50, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(0.0)
    # two equally likely classes out of ten: log 2 / log 10
    assert evaluate.normalised_entropy([5, 5, 0, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(
        math.log(2) / math.log(10)
    )
    # 3 : 1 over two classes (K = 2): -(.75 ln .75 + .25 ln .25) / ln 2
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert evaluate.normalised_entropy([30, 10]) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [[0, 0, 0], [-1, 2, 3], [4]])
def test_normalised_entropy_rejects_bad_histograms(bad):
    with pytest.raises(ValueError, match="histogram"):
        evaluate.normalised_entropy(bad)


def test_confident_fraction_and_histogram():
    probs = torch.tensor([[0.95, 0.05], [0.5, 0.5], [0.08, 0.92], [0.9, 0.1]])
    # strictly above 0.9: rows 0 and 2 only (0.9 itself is not confident)
    assert evaluate.confident_fraction(probs) == pytest.approx(0.5)
    assert evaluate.confident_fraction(probs, threshold=0.4) == pytest.approx(1.0)
    assert evaluate.class_histogram(torch.tensor([3, 3, 1, 9, 3])) == [0, 1, 0, 3, 0, 0, 0, 0, 0, 1]


def _fd_reference(a: np.ndarray, b: np.ndarray) -> float:
    """The FID formula with scipy's general matrix square root (independent of the eigen route)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(scipy.linalg.sqrtm(np.atleast_2d(s_a) @ np.atleast_2d(s_b)))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(300, 6)) * 2.0 + 0.5
    assert evaluate.frechet_distance(a, b) == pytest.approx(_fd_reference(a, b), rel=1e-6)


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 5))
    shift = np.array([1.0, -2.0, 0.0, 0.5, 3.0])
    # same covariance, shifted mean: the distance is the squared shift exactly
    assert evaluate.frechet_distance(a, a + shift) == pytest.approx(float((shift**2).sum()), rel=1e-9)
    assert evaluate.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2 with s the standard deviations
    x = rng.normal(size=(5000, 1))
    y = 3.0 * x + 1.0
    s1, s2 = x.std(ddof=1), y.std(ddof=1)
    expected = (x.mean() - y.mean()) ** 2 + (s1 - s2) ** 2
    assert evaluate.frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(ValueError, match="equal D"):
        evaluate.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        evaluate.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


# --- input checks ----------------------------------------------------------------------------------


def test_check_samples_errors():
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        evaluate.check_samples(torch.zeros(4, 28, 28))
    bad = torch.zeros(3, 1, 28, 28)
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="1 of 3 samples contain NaN"):
        evaluate.check_samples(bad)
    with pytest.raises(ValueError, match=r"127\.5"):
        evaluate.check_samples(torch.full((2, 1, 28, 28), 200.0))
    with pytest.raises(ValueError, match="empty"):
        evaluate.check_samples(torch.zeros(0, 1, 28, 28))
    with pytest.raises(TypeError):
        evaluate.check_samples(np.zeros((2, 1, 28, 28)))


def test_augment_identity_and_range():
    x, _ = load_mnist("test", limit=8)
    same = evaluate.augment(x, max_shift=0, max_rotation_deg=0.0)
    assert torch.allclose(same, x, atol=1e-5)
    torch.manual_seed(0)
    moved = evaluate.augment(x, max_shift=2, max_rotation_deg=10.0)
    assert moved.shape == x.shape
    assert moved.min() >= -1 - 1e-5 and moved.max() <= 1 + 1e-5
    # the background stays black after a shift or rotation (corners of a digit image are empty)
    assert torch.allclose(moved[:, :, 0, 0], torch.full((8, 1), -1.0), atol=1e-4)


def test_make_outliers_targets():
    x, y = load_mnist("train")
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:300]
    x, y = x[pick], y[pick]
    torch.manual_seed(0)
    images, targets = evaluate.make_outliers(x, y)
    assert images.shape == x.shape and targets.shape == (300, 10)
    assert images.min() >= -1 and images.max() <= 1
    assert torch.allclose(targets.sum(1), torch.ones(300), atol=1e-6)
    assert targets.max() < 0.9  # no outlier may be judged confident
    blends = (targets > 0.11).any(1)
    assert 10 < int(blends.sum()) < 100  # about one row in six is a blend of two digits
    for i in blends.nonzero().flatten().tolist():
        classes = (targets[i] > 0).nonzero().flatten()
        assert len(classes) == 2 and y[i] in classes  # the row's own digit and a different partner
        assert targets[i, classes].min() >= 0.3 - 1e-6


def test_classifier_shapes_and_config_errors():
    model = evaluate.DigitClassifier(channels=[8, 16], hidden=32)
    x = torch.zeros(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert model.features(x).shape == (3, 32)
    with pytest.raises(ValueError, match="channels"):
        evaluate.DigitClassifier(channels=[])
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.zeros(3, 3, 28, 28))


class _PixelClassifier(nn.Module):
    """Stub: 'classifies' an image by the row of its brightest pixel in the top 10 rows; features = 2
    pixel values. Lets us compute the expected metrics by hand."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def features(self, x):
        return x[:, 0, :10, 0]  # (B, 10)

    def out(self, f):
        return f * 100.0  # near one-hot logits


def test_class_accuracy_and_sample_metrics_with_a_stub_classifier():
    x = torch.full((6, 1, 28, 28), -1.0)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    for i, row in enumerate([0, 1, 2, 3, 9, 9]):
        x[i, 0, row, 0] = 1.0
    stub = _PixelClassifier()
    # rows 0..3 match their labels; the last two are read as 9
    assert evaluate.class_accuracy(x, labels, classifier=stub) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="one label per sample"):
        evaluate.class_accuracy(x, labels[:3], classifier=stub)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        evaluate.class_accuracy(x, torch.tensor([0, 1, 2, 3, 4, 12]), classifier=stub)
    with pytest.raises(ValueError, match="reference_features"):
        evaluate.sample_metrics(x, classifier=stub)
    ref = torch.randn(50, 10)
    m = evaluate.sample_metrics(x, classifier=stub, reference_features=ref)
    assert m["n"] == 6
    assert m["class_histogram"] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 2]
    assert m["confident_fraction"] == pytest.approx(1.0)
    p = np.array([1, 1, 1, 1, 2]) / 6
    assert m["class_entropy"] == pytest.approx(float(-(p * np.log(p)).sum() / math.log(10)))
    assert m["frechet_distance"] == pytest.approx(evaluate.frechet_distance(x[:, 0, :10, 0], ref))


# --- the shipped classifier ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored_test_split():
    """The test split with the shipped classifier's probabilities and features (one pass)."""
    x, y = load_mnist("test")
    probs, feats = evaluate.classify(x)
    return x, y, probs, feats


def test_shipped_classifier_accuracy(scored_test_split):
    x, y, probs, _ = scored_test_split
    assert float((probs.argmax(1) == y).float().mean()) >= 0.97
    # class_accuracy and accuracy agree with the argmax computed here
    subset = slice(0, 1000, 10)
    expected = float((probs[subset].argmax(1) == y[subset]).float().mean())
    assert evaluate.class_accuracy(x[subset], y[subset]) == pytest.approx(expected)
    assert evaluate.accuracy(evaluate.load_classifier(), x[subset], y[subset]) == pytest.approx(expected)


def test_shipped_classifier_is_confident_on_digits_and_not_on_noise(scored_test_split):
    _, _, probs, feats = scored_test_split
    real_confident = evaluate.confident_fraction(probs)
    assert real_confident > 0.85
    assert evaluate.normalised_entropy(evaluate.class_histogram(probs.argmax(1))) > 0.99
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(100, 1, 28, 28, generator=g) * 2 - 1
    fake = evaluate.sample_metrics(noise, reference_features=feats)
    assert fake["confident_fraction"] <= 0.05
    # a blank canvas and pure Gaussian noise are not digits either (outlier exposure)
    blank = torch.full((10, 1, 28, 28), -1.0)
    gaussian = torch.randn(50, 1, 28, 28, generator=g).clamp(-1, 1)
    assert evaluate.confident_fraction(evaluate.classify(torch.cat([blank, gaussian]))[0]) <= 0.05
    # noise is far from real digits in feature space, much farther than two halves of the test set
    real_fd = evaluate.frechet_distance(feats[::2], feats[1::2])
    assert fake["frechet_distance"] > 5 * real_fd


# --- bad input (issue 17) ------------------------------------------------------------------------------


def _few_digits(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_mnist("test")
    index = torch.arange(n) * (len(x) // n)
    return x[index], y[index]


def test_sample_metrics_refuses_unit_and_byte_images_and_converts_when_told():
    x, _ = _few_digits()
    with pytest.raises(ValueError, match=r"look like \[0, 1\] images.*x \* 2 - 1.*value_range=\(0, 1\)"):
        evaluate.sample_metrics((x + 1) / 2)  # was scored as if in [-1, 1]: confident 0.0
    with pytest.raises(ValueError, match=r"0\.\.255 pixels.*x / 127\.5 - 1"):
        evaluate.sample_metrics((x + 1) * 127.5)
    want = evaluate.sample_metrics(x)
    for images, value_range in (((x + 1) / 2, (0, 1)), (((x + 1) * 127.5).round(), (0, 255))):
        got = evaluate.sample_metrics(images, value_range=value_range)
        assert got["class_histogram"] == want["class_histogram"]
        assert got["confident_fraction"] == pytest.approx(want["confident_fraction"], abs=1 / len(x))
    with pytest.raises(ValueError, match="outside value_range"):
        evaluate.classify(x, value_range=(0, 1))


def test_class_histogram_refuses_labels_it_would_drop():
    with pytest.raises(ValueError, match=r"classes 0\.\.9.*2\.\.12"):
        evaluate.class_histogram(torch.tensor([12, 2]))  # the 12 used to vanish
    with pytest.raises(ValueError, match=r"0\.\.9"):
        evaluate.class_histogram(torch.tensor([-1, 2]))
    with pytest.raises(TypeError, match=r"argmax\(1\)"):
        evaluate.class_histogram(torch.rand(4, 10))
    assert evaluate.class_histogram([3, 3, 1]) == [0, 1, 0, 2, 0, 0, 0, 0, 0, 0]
    assert evaluate.class_histogram(np.array([9])) == [0] * 9 + [1]


def test_confident_fraction_refuses_empty_nan_and_thresholds_outside_0_1():
    for probs in (torch.zeros(0, 10), torch.full((2, 10), math.nan)):
        with pytest.raises(ValueError):
            evaluate.confident_fraction(probs)
    with pytest.raises(TypeError, match="tensor"):
        evaluate.confident_fraction(np.full((2, 10), 0.1))
    for threshold in (math.nan, math.inf, -0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            evaluate.confident_fraction(torch.full((2, 10), 0.1), threshold)


def test_counts_and_features_with_nan_are_refused():
    with pytest.raises(ValueError, match="finite"):
        evaluate.normalised_entropy([math.nan, 1.0])  # was -0.0
    with pytest.raises(ValueError, match="NaN"):
        evaluate.frechet_distance(np.full((4, 2), math.nan), np.zeros((4, 2)))  # was a LinAlgError
    with pytest.raises(TypeError):
        evaluate.frechet_distance([["a", "b"]] * 3, np.zeros((3, 2)))


def test_the_classifier_names_dtype_device_and_batch_fixes():
    x, y = _few_digits(4)
    classifier = evaluate.load_classifier()
    with pytest.raises(TypeError, match=r"x\.to\(torch\.float32\)"):
        classifier(x.half())
    with pytest.raises(TypeError, match="floating point"):
        classifier(x.long())
    with pytest.raises(ValueError, match="is on meta but the model is on cpu"):
        classifier(x.to("meta"))
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        evaluate.load_classifier("gpu")
    with pytest.raises(ValueError, match="batch_size"):
        evaluate.classify(x, batch_size=0)
    with pytest.raises(ValueError, match="empty batch"):
        evaluate.accuracy(classifier, x[:0], y[:0])
    with pytest.raises(ValueError, match="one label per image"):
        evaluate.make_outliers(x, y[:3])
    with pytest.raises(ValueError, match="max_shift"):
        evaluate.augment(x, max_shift=-1)
    with pytest.raises(ValueError, match="max_rotation_deg"):
        evaluate.augment(x, max_rotation_deg=math.nan)
    with pytest.raises(TypeError, match="integer digits"):
        evaluate.class_accuracy(x, [2.5] * 4)


def test_the_yardstick_is_held_out_test_digits():
    from chapter13.evaluate import held_out_split, reference_metrics

    x_test, _ = load_mnist("test")
    yardstick, reference = held_out_split(256)
    assert len(yardstick) == 256 and len(reference) == len(x_test) - 256
    both = torch.cat([yardstick, reference]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == torch.unique(x_test.flatten(1), dim=0).shape[0]  # disjoint
    assert sorted(both.sum(1).tolist()) == sorted(
        x_test.flatten(1).sum(1).tolist()
    )  # the test split, all of it
    metrics = reference_metrics(256)
    assert metrics["n"] == 256 and metrics["class_entropy"] > 0.99 and metrics["confident_fraction"] > 0.9
    with pytest.raises(ValueError, match="n must be an int"):
        held_out_split(5)
