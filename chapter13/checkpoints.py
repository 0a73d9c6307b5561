"""Shipped pretrained checkpoints: registry, checksums, safe loading and atomic saving.

Every checkpoint in ``data/checkpoints/`` is listed in ``manifest.json`` with its SHA-256, the class
that rebuilds the model (``builder``) and its constructor arguments (``config``), the command that
retrains it, how long that took and the quality it reached. Loading verifies the checksum and uses
``torch.load(..., weights_only=True)``, so a checkpoint can never run code.

    model = load_model("codelab-mnist")          # ready, in eval mode
    python -m chapter13.train codelab-mnist      # rebuild it (see ``chapter13.train``)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chapter13.config import CHECKPOINT_DIR


@dataclass(frozen=True)
class Recipe:
    """How a named checkpoint is made: ``recipe`` is ``"module:function"`` that trains and saves it."""

    recipe: str
    description: str


REGISTRY: dict[str, Recipe] = {
    "digit-classifier": Recipe(
        "chapter13.evaluate:build_digit_classifier", "CNN digit classifier behind the sample metrics"
    ),
    "codelab-mnist": Recipe(
        "chapter13.codelab:build_codelab_mnist", "13.6 unconditional MNIST diffusion U-Net"
    ),
    "clip-digits": Recipe("chapter13.multimodal:build_clip_digits", "13.1 tiny CLIP on captioned digits"),
    "text2image-digits": Recipe(
        "chapter13.guidance:build_text2image_digits", "13.3 text-conditioned pixel diffusion"
    ),
    "autoencoder-digits": Recipe(
        "chapter13.latent:build_autoencoder_digits", "13.3 VAE to a 4-channel latent"
    ),
    "latent-text2image-digits": Recipe(
        "chapter13.latent:build_latent_text2image_digits", "13.3 latent text-to-image diffusion"
    ),
    "video-digits": Recipe(
        "chapter13.temporal:build_video_digits", "13.4 spatio-temporal denoiser on moving digits"
    ),
    "video-digits-frames": Recipe(
        "chapter13.temporal:build_video_digits_frames",
        "13.4 the same denoiser with time mixing off (per-frame baseline)",
    ),
    "audio-tones": Recipe("chapter13.temporal:build_audio_tones", "13.4 1-D U-Net on tones"),
    "hierarchy-digits": Recipe(
        "chapter13.hierarchy:build_hierarchy_digits", "13.5 hierarchical CNN (V1 -> IT)"
    ),
    "av-fusion-digits": Recipe(
        "chapter13.hierarchy:build_av_fusion_digits", "13.5 two-stream audio-visual fusion"
    ),
}

MANIFEST_NAME = "manifest.json"


class CheckpointError(RuntimeError):
    """A checkpoint is unknown, missing, corrupt or does not fit its model."""


def rebuild_command(name: str) -> str:
    """The shell command that retrains and rewrites checkpoint ``name``."""
    return f"python -m chapter13.train {name}"


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
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _class_path(model: nn.Module) -> str:
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


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
    if name not in REGISTRY:
        raise CheckpointError(f"unknown checkpoint {name!r}; add it to chapter13.checkpoints.REGISTRY")
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
            "builder": _class_path(model),
            "config": config,
            "parameters": sum(p.numel() for p in model.parameters()),
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
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise CheckpointError(f"unknown checkpoint {name!r}; known checkpoints: {known}")
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


def _import(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load_model(
    name: str, device: torch.device | str | None = None, directory: Path | None = None
) -> nn.Module:
    """Rebuild the model of checkpoint ``name``, load its verified weights, return it in eval mode."""
    info = entry(name, directory)
    saved = load_state(name, directory)
    model = _import(info["builder"])(**saved["config"])
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint {name!r} does not fit {info['builder']} (the code changed since it was "
            f"built). Rebuild it: {rebuild_command(name)}\n{error}"
        ) from error
    if device is not None:
        model = model.to(device)
    return model.eval()


def build(name: str) -> Any:
    """Run the recipe that trains and saves checkpoint ``name`` (what ``chapter13.train NAME`` does)."""
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise CheckpointError(f"unknown checkpoint {name!r}; known checkpoints: {known}")
    return _import(REGISTRY[name].recipe)()
