"""`make lab` serves JupyterLab: its /api answers 200 (the README's first command works).

The tests run it as ``make lab NO_INSTALL=1``: the environment is used as it is, so that ``make test``
never reinstalls, nor reaches the network, from inside its own tests (a plain ``make lab`` reinstalls
whenever the install stamp is older than ``pyproject.toml``). One test runs that path with the network
cut off (a network namespace where ``unshare -n`` works, pip pointed at nothing in any case) and with
the stamp made to look stale, and checks that make ran no pip.
"""

import ast
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
"""The environment running the tests: ``make`` serves from it (``VENV=``), as ``make test`` does."""
NO_INSTALL = "NO_INSTALL=1"
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
needs_jupyter = pytest.mark.skipif(not (VENV / "bin" / "jupyter").exists(), reason="run through `make test`")

OFFLINE_PIP = {
    "PIP_NO_INDEX": "1",
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple/",
    "PIP_EXTRA_INDEX_URL": "",
    "PIP_FIND_LINKS": os.devnull,
    "PIP_CONFIG_FILE": os.devnull,
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}
"""An environment in which any pip install fails at once: no index, no local wheels, no proxy."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _network_namespace() -> list[str]:
    """A command prefix that runs in a new network namespace (no interface but a down loopback), or
    ``[]`` where this user cannot make one (then only ``OFFLINE_PIP`` keeps pip off the network)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return []
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return []


@needs_make
@needs_jupyter
def test_make_lab_serves_jupyterlab():
    port, token = _free_port(), "chapter13-test"
    args = f"LAB_ARGS=--no-browser --ServerApp.token={token} --ServerApp.ip=127.0.0.1"
    server = subprocess.Popen(
        ["make", "lab", NO_INSTALL, f"VENV={VENV}", f"PORT={port}", args],
        cwd=ROOT,
        env={**os.environ, **OFFLINE_PIP},
        stdout=subprocess.PIPE,
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
    commands = server.stdout.read().decode()  # make echoes each command it runs
    assert "pip" not in commands and "jupyter lab" in commands, commands


@needs_make
@needs_jupyter
def test_install_free_path_runs_no_pip_with_the_network_cut_off():
    """``make lab NO_INSTALL=1``, the make call of the unit tests, with ``pyproject.toml`` taken as
    newer than the install stamp (``-W``, which would make a plain ``make lab`` reinstall) and no network:
    make runs the server command (here ``jupyter lab --version``) and nothing else; no stamp changes."""
    namespace = _network_namespace()
    stamps = sorted(VENV.glob(".chapter13-*installed"))
    before = {stamp: stamp.stat().st_mtime_ns for stamp in stamps}
    done = subprocess.run(
        [*namespace, "make", "-W", "pyproject.toml", "lab", NO_INSTALL, f"VENV={VENV}", "LAB_ARGS=--version"],
        cwd=ROOT,
        env={**os.environ, **OFFLINE_PIP},
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "pip" not in out and "jupyter lab" in done.stdout, out
    assert {stamp: stamp.stat().st_mtime_ns for stamp in stamps} == before, "an install stamp was touched"


@needs_make
def test_no_install_leaves_out_every_install_step():
    """Dry runs (``make -n``) with a stale stamp: every target the suite and a student use runs pip
    without ``NO_INSTALL=1`` (so the check below can fail) and never with it."""
    targets = ["lab", "lint", "unit", "notebooks", "present", "browser", "checkpoints", "bench", "site"]
    for target in targets:
        command = ["make", "-n", "-W", "pyproject.toml", target, f"VENV={VENV}"]
        plain = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        assert "pip install" in plain, f"make {target} should install when the stamp is stale: {plain}"
        skipped = subprocess.run([*command, NO_INSTALL], cwd=ROOT, capture_output=True, text=True, check=True)
        assert "pip" not in skipped.stdout, f"make {target} {NO_INSTALL} still installs: {skipped.stdout}"


def _make_calls(tree: ast.AST) -> list[list[str]]:
    """The literal argument lists ``["make", ...]`` in a test module."""
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value == "make":
                calls.append([ast.unparse(e) for e in node.elts])
    return calls


def test_every_make_call_of_the_unit_tests_skips_the_install():
    """Whatever runs ``make`` from ``tests/`` (not ``tests/browser``, which ``make browser`` runs after
    installing its extras) passes ``NO_INSTALL=1``, so the suite never reinstalls."""
    calls = {
        path.name: _make_calls(ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted((ROOT / "tests").glob("*.py"))
    }
    found = [(name, call) for name, found in calls.items() for call in found]
    assert found, "no make call found: the scan is blind"
    for name, call in found:
        assert "NO_INSTALL" in " ".join(call) or "'-n'" in call, f"{name}: {call} may reinstall"
    planted = ast.parse('subprocess.run(["make", "lab", f"PORT={port}"])')
    assert _make_calls(planted) == [["'make'", "'lab'", "f'PORT={port}'"]]
