"""MNIST for the chapter: the bundled 5,000-digit subset, offline, through torchvision.

``data/MNIST/raw/`` ships the subset in the IDX format that ``torchvision.datasets.MNIST`` reads
unchanged: 4,000 training and 1,000 test digits, 400 and 100 per class. ``full=True`` opts in to
the whole 60,000/10,000 set, downloaded by torchvision into ``~/.cache/chapter13`` (never the
repository, never in tests).

    x, y = load_mnist("train")        # x: (4000, 1, 28, 28) float32 in [-1, 1], y: (4000,) int64

Rebuilding the IDX files from the NumPy archive they came from:
``python -m chapter13.data --from-npz path/to/mnist5k.npz``.
"""

from __future__ import annotations

import argparse
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import MNIST

from chapter13.config import CACHE_DIR, DATA_DIR

SPLITS = ("train", "test")
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
RESTORE_HINT = (
    "The IDX files ship with the repository: restore them with `git checkout -- data/MNIST`, "
    "or rebuild them with `python -m chapter13.data --from-npz mnist5k.npz`."
)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")


def mnist_dataset(split: str = "train", full: bool = False, root: str | Path | None = None) -> MNIST:
    """The raw ``torchvision.datasets.MNIST`` (PIL images, int labels) for ``split``.

    With ``full=False`` (default) it reads the bundled subset and never downloads; with
    ``full=True`` torchvision downloads the full set into the cache folder outside the repository.
    """
    _check_split(split)
    if full:
        cache = Path(root) if root is not None else CACHE_DIR
        return MNIST(root=str(cache), train=split == "train", download=True)
    root = Path(root) if root is not None else DATA_DIR
    raw = root / "MNIST" / "raw"
    missing = [name for name in RAW_FILES[split] if not (raw / name).exists()]
    if missing:
        raise FileNotFoundError(f"MNIST files {missing} are missing from {raw}. {RESTORE_HINT}")
    return MNIST(root=str(root), train=split == "train", download=False)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) in 0..255 -> float32 (N, 1, 28, 28) in [-1, 1]."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = getattr(images, "dtype", type(images).__name__)
        raise TypeError(
            f"to_model_range converts uint8 pixels 0..255, got {got}; for a NumPy array use "
            "torch.from_numpy(array), and images already in [-1, 1] need no conversion"
        )
    return images.float().div(127.5).sub(1.0).unsqueeze(1)


VALUE_RANGES = ((-1, 1), (0, 1), (0, 255))
"""The pixel ranges ``as_model_range`` converts from: the model range, unit and 8-bit."""


def as_model_range(
    x: torch.Tensor, value_range: tuple[float, float] | None = None, name: str = "images"
) -> torch.Tensor:
    """``x`` in the model range [-1, 1]: checked when ``value_range`` is None, else converted from it.

    Digits in the model range have a background of -1, so a batch with no pixel below 0 is taken for
    [0, 1] images and values above 2 for 0..255 pixels: both are errors that name the conversion
    (a metric would otherwise score them as if they were in [-1, 1]). With ``value_range=(0, 1)`` or
    ``(0, 255)`` the images are rescaled linearly, ``(-1, 1)`` accepts any batch within it. A little
    overshoot is allowed (a quarter of the range on each side, +-1.5 in the model range). ``x``: a
    non-empty, finite floating-point tensor of any shape; one min and one max, no copy when it is
    already in the model range.
    """
    low, high = float(x.min()), float(x.max())
    if value_range is None:
        if high > 2:
            raise ValueError(
                f"{name} look like 0..255 pixels (values up to {high:.0f}), not the model range [-1, 1]: "
                "convert with x / 127.5 - 1, or pass value_range=(0, 255)"
            )
        if low < -1.5 or high > 1.5:
            raise ValueError(
                f"{name} should lie in the model range [-1, 1], got values in [{low:.2f}, {high:.2f}]"
            )
        if low >= 0:
            raise ValueError(
                f"{name} have no pixel below 0 (values in [{low:.2f}, {high:.2f}]), so they look like [0, 1] "
                "images, not the model range [-1, 1] with its background at -1: convert with x * 2 - 1, or "
                "pass value_range=(0, 1) (value_range=(-1, 1) if they really are in [-1, 1])"
            )
        return x
    try:
        if isinstance(value_range, str):
            raise TypeError
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise TypeError(
            f"value_range must be a pair (low, high) such as (0, 1), got {value_range!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(
            f"value_range must be two finite numbers low < high, e.g. (0, 1), got {value_range!r}"
        )
    margin = 0.25 * (hi - lo)
    if low < lo - margin or high > hi + margin:
        raise ValueError(
            f"{name} have values in [{low:.2f}, {high:.2f}], outside value_range={value_range!r}; "
            f"pass the range they are in, one of {VALUE_RANGES}"
        )
    if (lo, hi) == (-1.0, 1.0):
        return x
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def load_mnist(
    split: str = "train", full: bool = False, root: str | Path | None = None, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images scaled to [-1, 1] and labels, as tensors.

    Returns ``x``: (N, 1, 28, 28) float32 and ``y``: (N,) int64, in the files' order (the bundled
    subset is sorted by class). ``limit`` keeps ``limit`` examples that take the classes in turn
    (:func:`interleave_classes`: a 0, a 1, ..., a 9, the next 0, ...), so that a small subset, or
    the first row of a figure, holds every digit (a positive int, or None for all).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise TypeError(f"limit must be a positive int (or None for the whole split), got {limit!r}")
    if limit is not None and limit < 1:
        raise ValueError(
            f"limit must be a positive number of digits (or None for the whole split), got {limit}"
        )
    dataset = mnist_dataset(split, full=full, root=root)
    x, y = to_model_range(dataset.data), dataset.targets.long()
    if limit is not None:
        keep = interleave_classes(y)[:limit]
        x, y = x[keep], y[keep]
    return x, y


def interleave_classes(labels: torch.Tensor) -> torch.Tensor:
    """Indices that take the classes in turn: the first of each class in class order, then the second
    of each, and so on (a class that runs out drops out). ``labels``: (N,) -> (N,) int64.

    ``images[interleave_classes(labels)[:16]]`` shows a mix of digits where ``images[:16]`` of the
    class-sorted bundled subset shows only zeros.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"labels must be one-dimensional (N,), got shape {tuple(labels.shape)}")
    if len(labels) == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    first = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    rank = torch.arange(len(labels)) - first  # position of each example within its class
    key = rank * (int(sorted_labels[-1] - sorted_labels[0]) + 1) + (sorted_labels - sorted_labels[0])
    return order[torch.argsort(key, stable=True)]


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Model range [-1, 1] -> [0, 1] for display, clamped."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"to_unit_range expects a tensor in [-1, 1], got {type(x).__name__}")
    return x.add(1.0).div(2.0).clamp(0.0, 1.0)


# --- writing the bundled subset -------------------------------------------------------------------


def split_balanced(
    labels: np.ndarray, train_per_class: int = TRAIN_PER_CLASS, test_per_class: int = TEST_PER_CLASS
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a class-balanced split: the first ``train_per_class`` of each digit (in the
    archive's order) for training and the next ``test_per_class`` for testing."""
    labels = np.asarray(labels)
    for name, value in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    train, test = [], []
    for digit in range(10):
        where = np.flatnonzero(labels == digit)
        need = train_per_class + test_per_class
        if len(where) < need:
            raise ValueError(f"digit {digit} has {len(where)} examples, the split needs {need}")
        train.append(where[:train_per_class])
        test.append(where[train_per_class:need])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """IDX3 file: magic 2051, count, rows, cols (big-endian int32), then uint8 pixels."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    with open(path, "wb") as handle:
        handle.write(struct.pack(">IIII", 2051, *images.shape))
        handle.write(images.tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """IDX1 file: magic 2049, count (big-endian int32), then uint8 labels."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    with open(path, "wb") as handle:
        handle.write(struct.pack(">II", 2049, len(labels)))
        handle.write(labels.tobytes())


def write_bundled_subset(npz_path: str | Path, root: str | Path | None = None) -> Path:
    """Write ``data/MNIST/raw/`` from the ``mnist5k.npz`` archive (X uint8 (5000, 28, 28), y)."""
    archive = np.load(npz_path)
    images, labels = archive["X"], archive["y"]
    if images.shape != (len(labels), 28, 28) or images.dtype != np.uint8:
        raise ValueError(f"expected X uint8 (N, 28, 28), got {images.dtype} {images.shape}")
    train, test = split_balanced(labels)
    raw = Path(root if root is not None else DATA_DIR) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, index in (("train", train), ("test", test)):
        image_file, label_file = RAW_FILES[split]
        write_idx_images(raw / image_file, images[index])
        write_idx_labels(raw / label_file, labels[index])
    return raw


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chapter13.data", description=__doc__.split("\n")[0])
    parser.add_argument("--from-npz", required=True, help="path to mnist5k.npz")
    parser.add_argument("--root", default=None, help="data folder (default: the repository's data/)")
    args = parser.parse_args(argv)
    print(f"wrote {write_bundled_subset(args.from_npz, args.root)}")


if __name__ == "__main__":
    main()
