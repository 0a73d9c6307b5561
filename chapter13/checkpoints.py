"""Shipped pretrained checkpoints: storage only (save, load, verify).

Every checkpoint in ``data/checkpoints/`` is listed in ``manifest.json`` with its SHA-256, the name of
its model class (``model``) and constructor arguments (``config``), the command that retrains it,
how long that took and the quality it reached. Which class rebuilds a name is the registry's answer
(``chapter13.recipes``), never the manifest's: the manifest's ``model`` is only checked against it,
and its ``file`` must be ``NAME.pt`` in the checkpoint folder. Loading verifies the checksum of the
very bytes it then reads with ``torch.load(..., weights_only=True)``, so a checkpoint can never run
code, and every way a checkpoint can be broken raises ``CheckpointError`` with the command that
rebuilds it.

    model = load_model("codelab-mnist")          # ready, in eval mode
    python -m chapter13.train codelab-mnist      # rebuild it (``chapter13.recipes``)

Saving is one transaction (``save``): the new weights go to a hidden file named by their SHA-256
(``.NAME.<sha256>.tmp``), the manifest is replaced atomically to record that SHA-256 (the commit
point), and only then is the file renamed to ``NAME.pt``. A process killed at any moment leaves either
the old pair or the new manifest with its weights in the hidden file, which ``load_state`` accepts;
the next ``save`` in the folder finishes such a rename and removes leftover temporary files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
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
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_FILE_MODE = 0o666  # minus the umask: 0644 for the usual umask 022, like any file the user writes


class CheckpointError(RuntimeError):
    """A checkpoint is unknown, missing, corrupt or does not fit its model."""


def _folder(directory: Path | str | None) -> Path:
    return Path(directory or CHECKPOINT_DIR)


def _manifest_path(directory: Path | str | None = None) -> Path:
    return _folder(directory) / MANIFEST_NAME


def _is_shipped(directory: Path) -> bool:
    with contextlib.suppress(OSError):
        return directory.resolve() == Path(CHECKPOINT_DIR).resolve()
    return False  # pragma: no cover - an unresolvable folder is not the shipped one


def _fix(name: str, directory: Path | str | None) -> str:
    """How to repair checkpoint ``name`` in ``directory``: git for the shipped folder, else rebuild."""
    directory = _folder(directory)
    if _is_shipped(directory):
        return (
            f"Restore it with `git checkout -- data/checkpoints/{name}.pt data/checkpoints/{MANIFEST_NAME}` "
            f"or rebuild it: {rebuild_command(name)}"
        )
    return (
        f"Rebuild it: {rebuild_command(name)} (writes data/checkpoints), or "
        f"chapter13.train.build({name!r}, directory={str(directory)!r}) for this folder"
    )


def read_manifest(directory: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """The manifest as a dict name -> entry (empty when no checkpoint has been written yet).

    Raises ``CheckpointError`` when the file is not a JSON object of entries (edited by hand, truncated).
    """
    return _read_manifest(directory)


def _read_manifest(directory: Path | str | None, name: str | None = None) -> dict[str, dict[str, Any]]:
    path = _manifest_path(directory)
    if not path.exists():
        return {}
    if _is_shipped(path.parent):
        fix = f"Restore it with `git checkout -- data/checkpoints/{MANIFEST_NAME}`"
    else:
        fix = f"Delete {path} and the .pt files beside it and save the checkpoints again"
    if name is not None:
        fix += f", or rebuild checkpoint {name!r}: {rebuild_command(name)}"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"the checkpoint manifest {path} cannot be read ({error}). {fix}.") from error
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        raise CheckpointError(
            f"the checkpoint manifest {path} is not a JSON object of entries (name -> {{...}}). {fix}."
        )
    return manifest


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def nonfinite_entries(tensors: Mapping[str, Any]) -> list[str]:
    """The keys of the floating-point (or complex) tensors in ``tensors`` that hold a NaN or an inf."""
    bad = []
    for key, value in tensors.items():
        if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
            if not bool(torch.isfinite(value).all()):
                bad.append(str(key))
    return bad


# --- writing files: normal permissions, fsync, atomic rename --------------------------------------------


def _write_new(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to a new file ``path`` (mode 0666 minus the umask) and fsync it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), _FILE_MODE)
    try:
        view = memoryview(data).cast("B")
        while len(view):
            view = view[os.write(fd, view[:_CHUNK]) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (POSIX; a no-op where directories cannot be opened)."""
    if os.name != "posix":  # pragma: no cover - Windows
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace(source: Path, target: Path) -> None:
    os.replace(source, target)
    _fsync_dir(target.parent)


def _serialise(obj: Any) -> memoryview:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer()


def atomic_torch_save(obj: Any, path: Path | str) -> None:
    """Write ``obj`` with ``torch.save`` to a temporary file beside ``path``, fsync it, rename it.

    A crash, a kill or Ctrl-C midway leaves the old file intact instead of a truncated one; the next
    call for the same ``path`` removes a temporary file such a kill left behind (``.NAME.*.tmp``).
    The file gets the usual permissions (0666 minus the umask).
    """
    path = Path(path)
    data = _serialise(obj)  # fails (unpicklable object) before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for stale in path.parent.iterdir():
        if stale.name.startswith(prefix) and stale.name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(stale)
    tmp = path.with_name(f"{prefix}{secrets.token_hex(8)}.tmp")
    try:
        _write_new(tmp, data)
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked_manifest(directory: Path):
    """Hold an exclusive lock while the manifest is read, changed and written back."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".manifest.lock", "w", encoding="utf-8") as lock:
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
    if not isinstance(name, str) or name not in recipes.FAMILIES:
        known = ", ".join(sorted(recipes.FAMILIES))
        raise CheckpointError(
            f"unknown checkpoint {name!r}; known checkpoints: {known} (register new ones in chapter13.recipes)"
        )


def _staged_path(directory: Path, name: str, sha: str) -> Path:
    """Where ``save`` stages the weights of ``name`` whose SHA-256 is ``sha`` before they become NAME.pt."""
    return directory / f".{name}.{sha}.tmp"


def _settle(directory: Path, manifest: dict[str, dict[str, Any]]) -> None:
    """Finish what a killed ``save`` left (under the manifest lock): rename committed staged files to
    ``NAME.pt``, then remove every temporary file (``.*.tmp``) of the folder."""
    for name, info in manifest.items():
        sha = info.get("sha256")
        if name not in recipes.FAMILIES or not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            continue
        staged, target = _staged_path(directory, name, sha), directory / f"{name}.pt"
        if staged.is_file() and sha256_of(staged) == sha:
            if not (target.is_file() and sha256_of(target) == sha):
                _replace(staged, target)
    for path in directory.iterdir():
        if (path.name.startswith(".") and path.name.endswith(".tmp")) or path.name == f"{MANIFEST_NAME}.tmp":
            with contextlib.suppress(OSError):
                os.unlink(path)


def _write_manifest(directory: Path, manifest: dict[str, dict[str, Any]]) -> None:
    """Replace the manifest atomically (the commit point of ``save``)."""
    text = json.dumps(dict(sorted(manifest.items())), indent=2) + "\n"
    tmp = directory / f".{MANIFEST_NAME}.tmp"
    try:
        _write_new(tmp, text.encode("utf-8"))
        _replace(tmp, _manifest_path(directory))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save(
    name: str,
    model: nn.Module,
    config: dict[str, Any],
    *,
    train_seconds: float,
    quality: dict[str, Any],
    notes: str = "",
    directory: Path | str | None = None,
) -> Path:
    """Save ``model``'s weights as checkpoint ``name`` and record it in the manifest, as one transaction.

    ``config`` must rebuild the model: ``type(model)(**config)``. ``quality`` holds the figures the
    model reached (measured by ``chapter13.evaluate`` or the section's own metric). ``directory``
    defaults to ``data/checkpoints`` (``config.CHECKPOINT_DIR``).

    After a kill at any point, ``load_model(name)`` loads either the previous checkpoint or this one.
    Refuses (``CheckpointError``, nothing written) weights that hold NaN or inf, a ``config`` that is
    not JSON, and a folder whose manifest cannot be read (it would lose the other entries).
    """
    _check_name(name)
    directory = _folder(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    bad = nonfinite_entries(state)
    if bad:
        raise CheckpointError(
            f"refusing to save checkpoint {name!r}: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} "
            "hold NaN or inf values; the existing checkpoint was kept. Lower the learning rate, keep "
            "gradient clipping on, or check the training data for NaN."
        )
    try:
        json.dumps({"config": config, "quality": quality})
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {name!r}: config and quality must be JSON (numbers, strings, lists, dicts): {error}"
        ) from error
    data = _serialise({"state_dict": state, "config": config})
    sha = hashlib.sha256(data).hexdigest()
    path = directory / f"{name}.pt"
    with _locked_manifest(directory):
        manifest = _read_manifest(directory, name)
        _settle(directory, manifest)
        staged = _staged_path(directory, name, sha)
        committed = False
        try:
            _write_new(staged, data)
            _fsync_dir(directory)
            manifest[name] = {
                "file": path.name,
                "sha256": sha,
                "bytes": len(data),
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
            _write_manifest(directory, manifest)
            committed = True
        finally:
            if not committed:
                with contextlib.suppress(OSError):
                    os.unlink(staged)
        _replace(staged, path)  # if this fails, load_state reads the staged file; the next save renames it
    return path


# --- reading ----------------------------------------------------------------------------------------------


def entry(name: str, directory: Path | str | None = None) -> dict[str, Any]:
    """The manifest entry of ``name``; a clear error if it is unknown, was never built or is malformed
    (a ``file`` other than ``NAME.pt``, no SHA-256)."""
    _check_name(name)
    manifest = _read_manifest(directory, name)
    if name not in manifest:
        raise CheckpointError(
            f"checkpoint {name!r} is not in {_manifest_path(directory)}. "
            f"Build it with: {rebuild_command(name)}"
        )
    info = manifest[name]
    if info.get("file") != f"{name}.pt":
        raise CheckpointError(
            f"the manifest entry of {name!r} names the file {info.get('file')!r}, but checkpoint {name!r} "
            f"is always the file {name}.pt inside {_folder(directory)}; the manifest was edited. "
            f"{_fix(name, directory)}"
        )
    sha = info.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise CheckpointError(
            f"the manifest entry of {name!r} has no valid SHA-256 (sha256: {sha!r}), so its file cannot "
            f"be verified. {_fix(name, directory)}"
        )
    return info


def _verified_bytes(name: str, info: dict[str, Any], directory: Path) -> bytes:
    """The bytes of checkpoint ``name`` whose SHA-256 is the manifest's: ``NAME.pt``, or the staged
    file of a save that was killed after its manifest was written."""
    path = directory / f"{name}.pt"
    staged = _staged_path(directory, name, info["sha256"])
    found = None
    for candidate in (path, staged, path):  # path again: a save may have just renamed staged -> path
        try:
            data = candidate.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise CheckpointError(f"could not read {candidate}: {error}. {_fix(name, directory)}") from error
        actual = hashlib.sha256(data).hexdigest()
        if actual == info["sha256"]:
            return data
        if candidate == path:
            found = actual
    if found is None:
        raise CheckpointError(f"checkpoint file {path} is missing. {_fix(name, directory)}")
    raise CheckpointError(
        f"checkpoint file {path} is corrupt or was changed: SHA-256 {found[:12]}... does not "
        f"match the manifest's {info['sha256'][:12]}.... {_fix(name, directory)}"
    )


def load_state(name: str, directory: Path | str | None = None) -> dict[str, Any]:
    """Verify checkpoint ``name`` against its SHA-256 and load it safely (``weights_only=True``).

    Returns ``{"state_dict": ..., "config": ...}``.
    """
    info = entry(name, directory)
    directory = _folder(directory)
    path = directory / f"{name}.pt"
    data = _verified_bytes(name, info, directory)
    try:
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"could not read {path}: {error}. {_fix(name, directory)}") from error
    if not isinstance(saved, dict):
        raise CheckpointError(
            f"{path} holds a {type(saved).__name__}, not a checkpoint. {_fix(name, directory)}"
        )
    for key in ("state_dict", "config"):
        if not isinstance(saved.get(key), dict):
            raise CheckpointError(
                f"{path} holds no {key!r} dict, so it is not a chapter13 checkpoint. {_fix(name, directory)}"
            )
    return saved


def load_model(
    name: str, device: torch.device | str | None = None, directory: Path | str | None = None
) -> nn.Module:
    """Rebuild the model of checkpoint ``name``, load its verified weights, return it in eval mode.

    The class comes from the registry (``chapter13.recipes.get(name).model``); the manifest's
    ``model`` must name that same class, and the class is built from the verified file's ``config``.
    """
    info = entry(name, directory)
    cls = recipes.get(name).model
    if info.get("model") != cls.__name__:
        raise CheckpointError(
            f"the manifest says checkpoint {name!r} holds a {info.get('model')!r}, but the registry builds "
            f"it with {cls.__name__}. Rebuild it: {rebuild_command(name)}"
        )
    saved = load_state(name, directory)
    try:
        model = cls(**saved["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {name!r} holds a config that {cls.__name__} does not accept ({error}); the code "
            f"changed since it was built. Rebuild it: {rebuild_command(name)}"
        ) from error
    try:
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {name!r} does not fit {cls.__name__} (the code changed since it was "
            f"built). Rebuild it: {rebuild_command(name)}\n{error}"
        ) from error
    if device is not None:
        model = model.to(device)
    return model.eval()
