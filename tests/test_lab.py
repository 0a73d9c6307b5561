"""`make lab` serves JupyterLab: its /api answers 200 (the README's first command works)."""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "jupyter").exists(), reason="run through `make test`")
def test_make_lab_serves_jupyterlab():
    port, token = _free_port(), "chapter13-test"
    args = f"LAB_ARGS=--no-browser --ServerApp.token={token} --ServerApp.ip=127.0.0.1"
    server = subprocess.Popen(
        ["make", "-s", "lab", f"PORT={port}", args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api?token={token}", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, (
            f"JupyterLab did not answer on port {port}: {server.stderr.read1().decode()[-2000:] if server.poll() is not None else 'timeout'}"
        )
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/lab/tree/13.0-start-here.ipynb?token={token}"
        ) as r:
            assert r.status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
