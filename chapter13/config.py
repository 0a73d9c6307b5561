"""Run-wide settings: quick mode, sizes, seeds, device and folders.

Quick mode is read here and nowhere else. ``CH13_QUICK=1`` shrinks every size (epochs, steps,
images) so that a notebook runs in seconds; CI sets it. Notebooks choose every size through
``pick(full=..., quick=...)`` in one configuration cell near the top.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import numbers
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
    seed = check_seed(seed)
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
        try:
            return check_device(forced)
        except ValueError as error:
            raise ValueError(f"CH13_DEVICE={forced!r}: {error}; or unset CH13_DEVICE") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def has_fast_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively (a CUDA GPU with bf16, or a CPU with AVX512-BF16
    or AMX), so that mixed precision speeds training up; emulated bf16 would slow it down."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:  # torch >= 2.4 counts emulated bf16 (a T4) as supported unless told not to
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:
            return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = (
            getattr(cpu, "_is_avx512_bf16_supported", None),
            getattr(cpu, "_is_amx_tile_supported", None),
        )
        return any(check is not None and bool(check()) for check in checks)
    return False


def check_finite(value: object, name: str) -> float:
    """``value`` as a float if it is a real, finite number (not a bool, a string or a tensor); a
    TypeError or ValueError naming ``name`` otherwise. Range checks are the caller's."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number}")
    return number


SEED_RANGE = (-(2**63), 2**64 - 1)
"""The seeds ``torch.Generator.manual_seed`` takes."""


def check_seed(seed: object, minimum: int = SEED_RANGE[0]) -> int:
    """``seed`` if it is an int in ``minimum..2**64-1`` (NumPy's generators need ``minimum=0``);
    a TypeError or ValueError that says which seeds work otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}; e.g. seed=0")
    if not minimum <= int(seed) <= SEED_RANGE[1]:
        raise ValueError(f"seed must lie in {minimum}..2**64-1, got {seed}; e.g. seed=0")
    return int(seed)


DEVICE_TYPES = ("cpu", "cuda", "mps", "meta")


def check_device(device: torch.device | str | None) -> torch.device | None:
    """``device`` as a ``torch.device`` that exists here (``None`` stays ``None``).

    A ValueError names the fix for a misspelt device (``"gpu"``), a GPU this machine lacks
    (``"cuda"`` without CUDA, ``"cuda:3"`` with one GPU) or an unavailable Apple GPU (``"mps"``).
    """
    if device is None:
        return None
    if not isinstance(device, str | torch.device):
        raise TypeError(
            f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__} {device!r}"
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"unknown device {device!r}; use 'cpu', 'cuda' (or 'cuda:0', ...) or 'mps', "
            "or config.default_device() for the fastest one here"
        ) from None
    if dev.type not in DEVICE_TYPES:
        raise ValueError(f"device type {dev.type!r} is not supported here; use 'cpu', 'cuda' or 'mps'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} needs a CUDA GPU, and none is available here; use device='cpu' "
                "(or config.default_device(), which picks what this machine has)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                f"numbered 0..{torch.cuda.device_count() - 1}"
            )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {device!r} needs Apple's MPS, which is not available here; use 'cpu'")
    return dev


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device type autocast does not know (e.g. meta)
        return False


def check_model_input(x: object, model: torch.nn.Module, name: str = "x") -> None:
    """Raise a TypeError or ValueError naming the fix unless ``x`` is a floating-point tensor of the
    dtype and on the device of ``model``'s weights (its first parameter; no parameters: no check).

    Under autocast a lower-precision ``x`` is fine. Attribute checks only: no pass over the data.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; "
            "convert a NumPy array with torch.from_numpy(array).float()"
        )
    weight = next(model.parameters(), None)
    if weight is None:
        return
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be floating point like the model's weights ({weight.dtype}), got {x.dtype}; "
            "convert with x.float(), and 0..255 pixels to the model range with x.float() / 127.5 - 1"
        )
    if x.device != weight.device:
        raise ValueError(
            f"{name} is on {x.device} but the model is on {weight.device}; move them together, "
            f"e.g. x.to({str(weight.device)!r})"
        )
    if x.dtype != weight.dtype and not _autocast_on(x.device.type):
        raise TypeError(
            f"{name} is {x.dtype} but the model's weights are {weight.dtype}; use x.to({weight.dtype}) "
            f"(or model.to({x.dtype}))"
        )


PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def _bundled_data() -> Path:
    """The checkout's ``data/``; in an installed wheel (no checkout around the package), the copy the
    wheel carries as the package ``chapter13_data``."""
    checkout = REPO_DIR / "data"
    if (checkout / "checkpoints" / "manifest.json").is_file():
        return checkout
    spec = importlib.util.find_spec("chapter13_data")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return checkout


DATA_DIR = Path(os.environ.get("CH13_DATA") or _bundled_data())
"""Bundled data and checkpoints: the checkout's ``data/``, or the wheel's copy; ``CH13_DATA`` overrides."""
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
CACHE_DIR = Path(os.environ.get("CH13_CACHE", Path.home() / ".cache" / "chapter13"))
"""Downloads that are opt-in (full MNIST) go here, outside the repository."""
USER_CHECKPOINT_DIR = Path(os.environ.get("CH13_CHECKPOINTS") or CACHE_DIR / "checkpoints").expanduser()
"""Checkpoints a student trains in a notebook (``TRAIN = True``) go here, never into the shipped
``CHECKPOINT_DIR``: ``~/.cache/chapter13/checkpoints`` unless ``CH13_CHECKPOINTS`` names another folder.
Load one with ``checkpoints.load_model(NAME, directory=USER_CHECKPOINT_DIR)``."""


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
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise ValueError(f"threads must be an int (or None to keep torch's setting), got {threads!r}")
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
