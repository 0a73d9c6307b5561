"""The one convention of the package's command lines (``python -m chapter13.sample``, ``... .train``).

A user error (a bad flag, a device this machine lacks, an unwritable output, a corrupt checkpoint
manifest) prints one line, ``error: <what is wrong and how to fix it>``, on stderr and exits with
status 2, never a traceback; ``--help`` and a good run exit 0. A traceback means a bug in the package.

    parser = cli.ArgumentParser(prog="python -m chapter13.sample", description=...)
    parser.add_argument("--device", type=cli.device_arg)

    def main(argv=None) -> int:
        return cli.run(lambda: _main(parser.parse_args(argv)), user_errors=(SampleError, CheckpointError))

The front ends pass the error types they know to be the user's (``SampleError``, ``CheckpointError``);
it imports only ``config`` (for ``check_device``), so every command line can use it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from chapter13.config import check_device

EXIT_USAGE = 2
"""The exit status of a user error (argparse's, too)."""
EXIT_INTERRUPTED = 130
"""The exit status after Ctrl-C (128 + SIGINT), as shells report it."""

__all__ = [
    "EXIT_USAGE",
    "ArgumentParser",
    "CliError",
    "device_arg",
    "fail",
    "one_line",
    "run",
    "writable_file",
    "writable_folder",
]


class CliError(Exception):
    """A request the command line refuses; its message says what is wrong and how to fix it."""


def one_line(message: object, limit: int = 2000) -> str:
    """``message`` as one line (whitespace runs and newlines become one space), at most ``limit`` chars."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fail(message: object) -> NoReturn:
    """Print ``error: message`` (one line) on stderr and exit with status 2."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors follow the convention: one ``error: ...`` line naming
    the fix (``--help`` for the usage), exit status 2, instead of the usage block and ``prog: error:``."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see `{self.prog} --help`)")


def run(body: Callable[[], int | None], *, user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command line's ``body`` and return its exit status.

    ``CliError``, the ``user_errors`` the caller names and ``json.JSONDecodeError`` (a hand-edited
    JSON file) are reported as one ``error: ...`` line on stderr with status 2; Ctrl-C as
    ``interrupted`` with status 130. Anything else propagates: a traceback is a bug to report.
    """
    try:
        status = body()
    except (CliError, json.JSONDecodeError, *user_errors) as error:
        prefix = "invalid JSON: " if isinstance(error, json.JSONDecodeError) else ""
        print(f"error: {prefix}{one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if status is None else status


def device_arg(text: str) -> str:
    """``argparse`` type for ``--device``: ``config.check_device`` (a device torch knows and this
    machine has: ``cpu``, ``cuda``, ``cuda:N``, ``mps``), its error as a one-line usage error."""
    try:
        device = check_device(text)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"{error} (here: --device cpu, or leave --device out)") from None
    if device.type == "meta":  # shapes only: the package's tests use it, a command line cannot
        raise argparse.ArgumentTypeError(f"{text!r} holds no data; use --device cpu, cuda or mps")
    return str(device)


def writable_file(path: str | Path, flag: str = "--out") -> Path:
    """Check, before any work, that a file can be written at ``path`` (creating its folder); raises
    ``CliError`` naming the fix (``flag`` is the option that gave the path)."""
    path = Path(path)
    if path.is_dir():
        raise CliError(f"{flag} {str(path)!r} is a folder; give a file name inside it")
    _probe(path.parent, f"{flag} {str(path)!r}", "pick a file in a folder you can write to")
    return path


def writable_folder(folder: str | Path, what: str, fix: str) -> Path:
    """Check, before any work, that files can be written into ``folder`` (creating it); ``CliError``
    saying ``what`` the folder is and ``fix`` if not."""
    folder = Path(folder)
    _probe(folder, f"{what} {str(folder)!r}", fix)
    return folder


def _probe(folder: Path, what: str, fix: str) -> None:
    """Create ``folder`` if missing and a temporary file in it, then remove the file: a real write, so
    that a read-only mount or a special file system fails here as it would later, whoever runs it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".chapter13-write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker else error.strerror or type(error).__name__
        raise CliError(f"cannot write {what}: {reason}; {fix}") from None
