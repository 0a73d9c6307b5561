"""Shipped pretrained checkpoints: storage only (save, load, verify).

Every checkpoint in ``data/checkpoints/`` is listed in ``manifest.json`` with its SHA-256, the name of
its model class (``model``) and constructor arguments (``config``), the command that retrains it,
how long that took and the quality it reached. Which class rebuilds a name is the registry's answer
(``chapter13.recipes``), never the manifest's: the manifest's ``model`` is only checked against it.
Loading verifies the checksum and uses ``torch.load(..., weights_only=True)``, so a checkpoint can
never run code.

    model = load_model("codelab-mnist")          # ready, in eval mode
    python -m chapter13.train codelab-mnist      # rebuild it (``chapter13.recipes``)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chapter13 import recipes
from chapter13.config import CHECKPOINT_DIR
from chapter13.cost import parameter_count
from chapter13.recipes import rebuild_command

try:  # POSIX; on Windows the lock falls back to msvcrt
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt


MANIFEST_NAME = "manifest.json"


class CheckpointError(RuntimeError):
    """A checkpoint is unknown, missing, corrupt or does not fit its model."""


def _manifest_path(directory: Path | None = None) -> Path:
    return Path(directory or CHECKPOINT_DIR) / MANIFEST_NAME


def read_manifest(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The manifest as a dict name -> entry (empty when no checkpoint has been written yet)."""
    path = _manifest_path(directory)
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write ``obj`` with ``torch.save`` to a temporary file beside ``path``, then rename it.

    A crash or Ctrl-C midway leaves the old file intact instead of a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked_manifest(directory: Path):
    """Hold an exclusive lock while the manifest is read, changed and written back."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".manifest.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        else:  # pragma: no cover - Windows
            msvcrt.locking(lock.fileno(), msvcrt.LK_LOCK, 1)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
            else:  # pragma: no cover - Windows
                msvcrt.locking(lock.fileno(), msvcrt.LK_UNLCK, 1)


def _check_name(name: str) -> None:
    if name not in recipes.FAMILIES:
        known = ", ".join(sorted(recipes.FAMILIES))
        raise CheckpointError(
            f"unknown checkpoint {name!r}; known checkpoints: {known} (register new ones in chapter13.recipes)"
        )


def save(
    name: str,
    model: nn.Module,
    config: dict[str, Any],
    *,
    train_seconds: float,
    quality: dict[str, Any],
    notes: str = "",
    directory: Path | None = None,
) -> Path:
    """Save ``model``'s weights as checkpoint ``name`` and record it in the manifest.

    ``config`` must rebuild the model: ``type(model)(**config)``. ``quality`` holds the figures the
    model reached (measured by ``chapter13.evaluate`` or the section's own metric).
    """
    _check_name(name)
    directory = Path(directory or CHECKPOINT_DIR)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = directory / f"{name}.pt"
    atomic_torch_save({"state_dict": state, "config": config}, path)
    with _locked_manifest(directory):
        manifest = read_manifest(directory)
        manifest[name] = {
            "file": path.name,
            "sha256": sha256_of(path),
            "bytes": path.stat().st_size,
            "model": type(model).__name__,
            "config": config,
            "parameters": parameter_count(model),
            "rebuild": rebuild_command(name),
            "train_seconds": round(float(train_seconds), 1),
            "quality": quality,
            "torch": torch.__version__.split("+")[0],
            "created": time.strftime("%Y-%m-%d"),
            "notes": notes,
        }
        text = json.dumps(dict(sorted(manifest.items())), indent=2) + "\n"
        tmp = _manifest_path(directory).with_suffix(".json.tmp")
        tmp.write_text(text)
        os.replace(tmp, _manifest_path(directory))
    return path


def entry(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The manifest entry of ``name``; a clear error if it is unknown or was never built."""
    _check_name(name)
    manifest = read_manifest(directory)
    if name not in manifest:
        raise CheckpointError(
            f"checkpoint {name!r} is not in {_manifest_path(directory)}. "
            f"Build it with: {rebuild_command(name)}"
        )
    return manifest[name]


def load_state(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Verify checkpoint ``name`` against its SHA-256 and load it safely.

    Returns ``{"state_dict": ..., "config": ...}``.
    """
    info = entry(name, directory)
    path = Path(directory or CHECKPOINT_DIR) / info["file"]
    fix = (
        f"Restore it with `git checkout -- data/checkpoints/{path.name}` or rebuild it: "
        f"{rebuild_command(name)}"
    )
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} is missing. {fix}")
    actual = sha256_of(path)
    if actual != info["sha256"]:
        raise CheckpointError(
            f"checkpoint file {path} is corrupt or was changed: SHA-256 {actual[:12]}... does not "
            f"match the manifest's {info['sha256'][:12]}.... {fix}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pragma: no cover - the checksum catches nearly every case
        raise CheckpointError(f"could not read {path}: {error}. {fix}") from error


def load_model(
    name: str, device: torch.device | str | None = None, directory: Path | None = None
) -> nn.Module:
    """Rebuild the model of checkpoint ``name``, load its verified weights, return it in eval mode.

    The class comes from the registry (``chapter13.recipes.get(name).model``); the manifest's
    ``model`` must name that same class.
    """
    info = entry(name, directory)
    cls = recipes.get(name).model
    if info.get("model") != cls.__name__:
        raise CheckpointError(
            f"the manifest says checkpoint {name!r} holds a {info.get('model')!r}, but the registry builds "
            f"it with {cls.__name__}. Rebuild it: {rebuild_command(name)}"
        )
    saved = load_state(name, directory)
    model = cls(**saved["config"])
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint {name!r} does not fit {cls.__name__} (the code changed since it was "
            f"built). Rebuild it: {rebuild_command(name)}\n{error}"
        ) from error
    if device is not None:
        model = model.to(device)
    return model.eval()
