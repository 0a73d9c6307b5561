"""Presenter pages (``presenter/``, served by ``make present``) stay in step with the notebooks.

The pages are written by hand (demos only, no exercises); this checks their hygiene and that each one
belongs to a section notebook of the same name, which its title cell names. The browser test
(``tests/browser/test_presenter.py``) renders them. The last tests check that ``make present`` culls the
kernels no open page holds (every GET starts one), and, where Voilà is installed, that it does.
"""

import asyncio
import importlib.util
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "presenter").glob("*.ipynb"))


def test_one_presenter_page_per_notebook():
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert [p.name for p in PAGES] == notebooks, "presenter/ needs one page per notebook, named alike"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_presenter_page_hygiene(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    first = nb["cells"][0]
    text = "".join(first["source"])
    assert first["cell_type"] == "markdown" and text.startswith(f"# {path.name[:4]} "), (
        f"{path.name} must open with '# {path.name[:4]} <title>'"
    )
    assert f"notebooks/{path.name}" in text, f"{path.name}: its title cell must name notebooks/{path.name}"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{path.name} cell {i} has stored outputs or an execution count; clear them"
            )


def test_browser_test_serves_presenter_pages_as_make_present_does():
    """The browser test's Voilà options (tests/browser/conftest.py) are the Makefile's VOILA_FLAGS."""
    import ast
    import re

    flags = re.search(r"^VOILA_FLAGS := (.+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert flags, "Makefile: VOILA_FLAGS := ... not found"
    tree = ast.parse((ROOT / "tests" / "browser" / "conftest.py").read_text(encoding="utf-8"))
    assigned = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PRESENT_ARGS" for t in node.targets)
    ]
    assert len(assigned) == 1, "tests/browser/conftest.py: PRESENT_ARGS = [...] not found"
    assert ast.literal_eval(assigned[0]) == flags.group(1).split()


# --- Kernel culling: `make present` shuts down the kernels that no open page holds --------------------

CULL = "--MappingKernelManager."
TRIVIAL_PAGE = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {}, "outputs": [], "source": ["1 + 1"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}  # fmt: skip


def _voila_flags() -> list[str]:
    flags = re.search(r"^VOILA_FLAGS := (.+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert flags, "Makefile: VOILA_FLAGS := ... not found"
    return flags.group(1).split()


def _culling(flags: list[str]) -> dict[str, str]:
    """``{"cull_idle_timeout": "120", ...}`` from the ``--MappingKernelManager.cull_*=...`` flags."""
    return dict(f.removeprefix(CULL).split("=", 1) for f in flags if f.startswith(f"{CULL}cull_"))


def test_make_present_culls_idle_kernels():
    """Every GET of a page starts a kernel; VOILA_FLAGS make jupyter_server's culler shut down the ones
    that no open page holds, within minutes (Voilà's kernel manager is a MappingKernelManager)."""
    cull = _culling(_voila_flags())
    assert 0 < int(cull.get("cull_idle_timeout", 0)) <= 600, f"set {CULL}cull_idle_timeout (s): {cull}"
    assert 0 < int(cull.get("cull_interval", 0)) <= int(cull["cull_idle_timeout"]), cull
    assert cull.get("cull_connected", "False") == "False", "a page open in a browser must keep its kernel"
    assert cull.get("cull_busy", "False") == "False", "a page still rendering must keep its kernel"


def test_voila_culls_the_kernels_no_page_holds(tmp_path):
    """Voilà started with the Makefile's VOILA_FLAGS (timeouts shortened to seconds): a GET that never
    opens the page's websocket leaves a kernel that is culled; a page whose websocket is open keeps its
    kernel until the socket closes. (Skipped without Voilà, the [present] extra.)"""
    if importlib.util.find_spec("voila") is None:
        pytest.skip('Voilà is not installed (`.venv/bin/pip install -e ".[present]"`, or `make present`)')
    websocket = pytest.importorskip("tornado.websocket")
    flags = _voila_flags()
    assert {"cull_idle_timeout", "cull_interval"} <= set(_culling(flags)), "VOILA_FLAGS set no culling"
    short = {"cull_idle_timeout": "2", "cull_interval": "1"}  # a flag given twice is an error: replace
    flags = [
        f"{CULL}{name}={short[name]}" if f.startswith(CULL) and (name := f[len(CULL) :].split("=")[0]) in short else f
        for f in flags
    ]  # fmt: skip
    (tmp_path / "page.ipynb").write_text(json.dumps(TRIVIAL_PAGE), encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "voila.log"
    command = [sys.executable, "-m", "voila", str(tmp_path), *flags, "--no-browser", "--Voila.ip=127.0.0.1"]
    command += [f"--port={port}", "--Voila.port_retries=0"]
    with open(log, "w", encoding="utf-8") as out:
        server = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)

    def wait_for(predicate, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            assert server.poll() is None, f"Voilà exited: {log.read_text(encoding='utf-8')[-3000:]}"
            assert time.monotonic() < deadline, (
                f"{what} within {seconds} s; log: {log.read_text(encoding='utf-8')[-3000:]}"
            )
            time.sleep(0.3)

    def answers() -> bool:
        try:
            urllib.request.urlopen(base + "/", timeout=2).close()
            return True
        except OSError:
            return False

    def page_kernel() -> str:
        with urllib.request.urlopen(f"{base}/voila/render/page.ipynb", timeout=60) as page:
            return re.search(r'"kernelId": "([0-9a-f-]+)"', page.read().decode()).group(1)

    def alive(kernel: str) -> bool:
        try:
            with urllib.request.urlopen(f"{base}/api/kernels/{kernel}", timeout=5) as r:
                return r.status == 200
        except urllib.error.HTTPError as error:
            assert error.code == 404, error
            return False

    async def check() -> None:
        orphans = [page_kernel() for _ in range(2)]
        held = page_kernel()
        socket_ = await websocket.websocket_connect(f"ws://127.0.0.1:{port}/api/kernels/{held}/channels")
        try:
            assert all(alive(k) for k in [*orphans, held])
            wait_for(lambda: not any(alive(k) for k in orphans), 30, "the unheld kernels were not culled")
            await asyncio.sleep(3)  # three more culler passes, all past the held kernel's idle timeout
            assert alive(held), "the kernel of an open page was culled"
        finally:
            socket_.close()
        wait_for(lambda: not alive(held), 30, "the kernel of a closed page was not culled")

    try:
        wait_for(answers, 90, "Voilà did not answer")
        asyncio.run(check())
        culling = "Culling kernels with idle durations > 2 seconds at 1 second intervals"
        assert culling in log.read_text(encoding="utf-8")
    finally:
        server.terminate()
        server.wait(timeout=30)
