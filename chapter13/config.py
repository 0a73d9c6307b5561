"""Run-wide settings: quick mode, sizes, seeds, device and folders.

Quick mode is read here and nowhere else. ``CH13_QUICK=1`` shrinks every size (epochs, steps,
images) so that a notebook runs in seconds; CI sets it. Notebooks choose every size through
``pick(full=..., quick=...)`` in one configuration cell near the top.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _read_quick(value: str | None) -> bool:
    """Parse the ``CH13_QUICK`` environment variable; anything ambiguous is an error."""
    if value is None:
        return False
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(
        f"CH13_QUICK={value!r} is neither true nor false. "
        "Use CH13_QUICK=1 for quick mode or CH13_QUICK=0 (or unset it) for full size."
    )


QUICK: bool = _read_quick(os.environ.get("CH13_QUICK"))
"""True when the notebooks should run at reduced size (``CH13_QUICK=1``)."""

_MISSING = object()


def pick(full: T = _MISSING, quick: T = _MISSING) -> T:  # type: ignore[assignment]
    """Return ``quick`` in quick mode and ``full`` otherwise.

    Both values must be given, so that every size a notebook uses has a full and a quick value::

        EPOCHS = pick(full=30, quick=1)
    """
    if full is _MISSING or quick is _MISSING:
        missing = [name for name, v in (("full", full), ("quick", quick)) if v is _MISSING]
        raise TypeError(
            f"pick() needs both values; missing {', '.join(missing)}. "
            "Write pick(full=<student size>, quick=<CI size>)."
        )
    return quick if QUICK else full


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a torch Generator seeded alike."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds code that uses the legacy global RNG
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def default_device() -> torch.device:
    """The fastest device here: CUDA, then Apple's MPS, then the CPU.

    ``CH13_DEVICE=cpu`` (or ``cuda``/``mps``) overrides the choice.
    """
    forced = os.environ.get("CH13_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DATA_DIR = Path(os.environ.get("CH13_DATA", REPO_DIR / "data"))
"""Bundled data and checkpoints; ``CH13_DATA`` points elsewhere if the package is installed apart."""
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
CACHE_DIR = Path(os.environ.get("CH13_CACHE", Path.home() / ".cache" / "chapter13"))
"""Downloads that are opt-in (full MNIST) go here, outside the repository."""


def describe() -> str:
    """One line for a notebook's first cell: versions, mode and device."""
    mode = "QUICK (CH13_QUICK=1)" if QUICK else "FULL"
    return (
        f"python {platform.python_version()} | torch {torch.__version__} | numpy {np.__version__} | "
        f"mode {mode} | device {default_device()}"
    )


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, then restore the previous setting.

    ``None`` leaves torch's setting alone. Affects CPU work only (a GPU model is unaffected). On the
    shared 2-core machine the checkpoints were built on, one thread ran a training step 5-10× faster
    than PyTorch's default of two, whose workers wait on each other when other processes hold the cores.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1 (or None to keep torch's setting), got {threads}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(previous)
