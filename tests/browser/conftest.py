"""Browser tests: JupyterLab and Voilà served from this environment, driven by headless Chromium.

Run them with ``.venv/bin/pytest tests/browser -v``. They need two things that a student may lack:

- Debian's Chromium (``apt-get install chromium``; another binary with ``CH13_CHROMIUM=/path``), and
- the ``playwright`` Python package (``pip install -e ".[browser]"``; its own browser download is not
  used: Playwright drives the system Chromium).

Without them every browser test is *skipped* with a message that says what to install. CI sets
``CH13_BROWSER_REQUIRED=1`` (or passes ``--browser-required`` when it runs ``pytest tests/browser``),
which turns a missing browser into a *failure*, so that a green CI always means the widgets rendered.

The servers run on free localhost ports with a random token, on a temporary copy of ``notebooks/`` (so
that executing a notebook in the browser never writes outputs into the repository), with ``CH13_QUICK=1``
in the kernels' environment and a fresh JupyterLab settings folder (no autosave, no virtual scrolling,
no news). Screenshots go to ``tests/browser/screenshots/`` (git-ignored), one folder per notebook.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # labdriver, whatever pytest's import mode

from labdriver import NOTEBOOK_DIR, PRESENTER_DIR, ROOT, SCREENSHOTS, safe_name

CHROMIUM = os.environ.get("CH13_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Offline, whatever the network of the machine: every host name but localhost fails to resolve, so a
    # page that needs the internet shows it here as in a classroom without one (the tests also fail on
    # any request that leaves localhost, except the few listed as harmless).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
SERVER_START_TIMEOUT = 120.0
INSTALL_HINT = (
    "install Debian's Chromium (`apt-get install -y chromium`) and Playwright "
    '(`.venv/bin/pip install -e ".[browser]"`, or `pip install playwright`); '
    "Playwright's own browser download is not needed"
)

# JupyterLab user settings for the test session: every cell stays in the DOM (no virtual scrolling),
# nothing is autosaved, no news or update checks go out.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--browser-required",
        action="store_true",
        default=False,
        help="fail (instead of skip) when Chromium or playwright is missing; same as CH13_BROWSER_REQUIRED=1",
    )


def pytest_configure(config: pytest.Config) -> None:
    browser_required(config)  # reject a malformed CH13_BROWSER_REQUIRED before any test runs


def browser_required(config: pytest.Config) -> bool:
    """True when a missing browser must fail the run (CI), from the option or the environment."""
    value = os.environ.get("CH13_BROWSER_REQUIRED", "").strip().lower()
    if value not in {"", "0", "false", "no", "off", "1", "true", "yes", "on"}:
        raise pytest.UsageError(f"CH13_BROWSER_REQUIRED={value!r}: use 1 (required) or 0 (skip if missing)")
    # The option exists only when pytest was pointed at tests/browser (an initial conftest).
    return bool(config.getoption("--browser-required", default=False)) or value in {"1", "true", "yes", "on"}


def _missing_browser_reason() -> str | None:
    """None when Chromium and playwright are both there, else what is missing."""
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the Python package `playwright` is not installed")
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium executable at {CHROMIUM}")
    if not problems:
        return None
    return "browser tests need a browser: " + " and ".join(problems) + f"; {INSTALL_HINT}"


def _skip_or_fail(config: pytest.Config, reason: str) -> None:
    if browser_required(config):
        pytest.fail(reason + " (required: CH13_BROWSER_REQUIRED=1 or --browser-required)", pytrace=False)
    pytest.skip(reason + " (set CH13_BROWSER_REQUIRED=1 to make this a failure)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A JupyterLab or Voilà process started by the tests."""

    name: str
    url: str
    token: str
    root: Path
    log_path: Path
    process: subprocess.Popen
    extra: dict[str, Any] = field(default_factory=dict)

    def log_text(self, since: int = 0) -> str:
        with open(self.log_path, "rb") as handle:
            handle.seek(since)
            return handle.read().decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]


def _wait_for_api(server: Server, api_path: str, timeout: float) -> None:
    """Poll ``api_path`` until it answers 200; fail with the server log if the process dies or hangs."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"{server.name} exited with code {server.process.returncode} before answering; "
                f"its log ends with:\n{server.log_tail()}",
                pytrace=False,
            )
        request = urllib.request.Request(server.url + api_path)
        if server.token:
            request.add_header("Authorization", f"token {server.token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
                last_error = f"status {response.status}"
        except (urllib.error.URLError, OSError) as error:
            last_error = str(error)
        time.sleep(0.2)
    _stop(server)
    pytest.fail(
        f"{server.name} did not answer {api_path} with 200 within {timeout:.0f} s ({last_error}); "
        f"its log ends with:\n{server.log_tail()}",
        pytrace=False,
    )


def _stop(server: Server) -> None:
    """Ask the server to shut down (which ends its kernels), then terminate, then kill."""
    if server.process.poll() is not None:
        return
    if server.extra.get("shutdown_api"):
        try:
            request = urllib.request.Request(server.url + "/api/shutdown", method="POST", data=b"")
            request.add_header("Authorization", f"token {server.token}")
            urllib.request.urlopen(request, timeout=5).close()
            server.process.wait(timeout=20)
            return
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


def kernel_environment(tmp: Path) -> dict[str, str]:
    """The server's (and so the kernels') environment: quick mode, inline figures, private config."""
    env = dict(os.environ)
    env["CH13_QUICK"] = "1"
    env.pop("MPLBACKEND", None)  # `make notebooks` uses Agg; in a browser figures must display inline
    env.pop("JUPYTER_PATH", None)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp / name.lower())
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp / "lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp / "lab-workspaces")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _mirror_repository(root: Path) -> None:
    """Copy the notebooks and presenter pages into ``root``; link everything else (data, package)."""
    root.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name in {".git", ".venv", "notebooks", "presenter", "tests"} or entry.name.startswith("."):
            continue
        (root / entry.name).symlink_to(entry)
    target = root / "notebooks"
    target.mkdir()
    for notebook in NOTEBOOK_DIR.glob("*.ipynb"):
        shutil.copy2(notebook, target / notebook.name)
    if PRESENTER_DIR.is_dir():
        shutil.copytree(
            PRESENTER_DIR, root / "presenter", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
        )


def _launch(name: str, command: list[str], root: Path, env: dict[str, str], port: int, token: str) -> Server:
    log_path = root.parent / f"{safe_name(name).lower()}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Server(name, f"http://127.0.0.1:{port}", token, root, log_path, process)


@pytest.fixture(scope="session")
def browser_ok(pytestconfig: pytest.Config) -> None:
    """Skip (or, when required, fail) every browser test if Chromium or playwright is missing."""
    reason = _missing_browser_reason()
    if reason:
        _skip_or_fail(pytestconfig, reason)


@pytest.fixture(scope="session")
def lab_server(browser_ok, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """JupyterLab from this environment on a free localhost port with a token; stopped afterwards.

    It serves a temporary mirror of the repository whose ``notebooks/`` and ``presenter/`` are copies,
    with ``CH13_QUICK=1`` in the kernels' environment.
    """
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    _mirror_repository(root)
    env = kernel_environment(tmp)
    for relative, content in LAB_SETTINGS.items():
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content), encoding="utf-8")
    token = secrets.token_hex(16)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root
    server = _launch("JupyterLab", command, root, env, port, token)
    server.extra["shutdown_api"] = True
    try:
        _wait_for_api(server, "/api", SERVER_START_TIMEOUT)
        yield server
    finally:
        _stop(server)


PRESENT_ARGS = [
    "--theme=light",
    "--show_tracebacks=True",
    "--strip_sources=True",
    "--MappingKernelManager.cull_idle_timeout=120",
    "--MappingKernelManager.cull_interval=30",
    "--MappingKernelManager.cull_connected=False",
    "--MappingKernelManager.cull_busy=False",
]
"""The Voilà options of ``make present`` (the Makefile's ``VOILA_FLAGS``; tests/test_presenter_pages.py
checks that the two agree)."""


@pytest.fixture(scope="session")
def voila_server(
    browser_ok, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Voilà serving ``presenter/`` as ``make present`` does, on a free localhost port."""
    if not list(PRESENTER_DIR.glob("*.ipynb")):
        pytest.fail(f"no presenter notebooks in {PRESENTER_DIR}", pytrace=False)
    try:
        import voila  # noqa: F401
    except ImportError:
        _skip_or_fail(pytestconfig, 'presenter tests need Voilà: `.venv/bin/pip install -e ".[present]"`')
    tmp = tmp_path_factory.mktemp("voila")
    root = tmp / "root"
    _mirror_repository(root)
    env = kernel_environment(tmp)
    port = free_port()
    command = [sys.executable, "-m", "voila", "presenter", *PRESENT_ARGS, "--no-browser"]
    command += ["--Voila.ip=127.0.0.1", f"--port={port}", "--Voila.port_retries=0"]
    server = _launch("Voila", command, root, env, port, "")
    try:
        _wait_for_api(server, "/", SERVER_START_TIMEOUT)
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def browser_context(browser_ok, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory):
    """One headless Chromium (Debian's) with a fresh profile (``--user-data-dir``) for the session."""
    from playwright.sync_api import Error, sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(profile),  # Playwright passes this as --user-data-dir
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
                device_scale_factor=1,
            )
        except Error as error:
            _skip_or_fail(pytestconfig, f"Chromium at {CHROMIUM} did not start: {error}")
        context.set_default_timeout(30_000)
        yield context
        context.close()


MOVES: list[dict[str, Any]] = []
"""Every control moved in this session: page, control, values, seconds until the figure changed."""


@pytest.fixture
def record_move():
    """``record_move(page=..., control=..., value_before=..., value_after=..., seconds=..., changed=...)``"""
    return lambda **row: MOVES.append(row)


def pytest_terminal_summary(terminalreporter) -> None:
    if not MOVES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("widget round trips in the browser (control moved -> figure changed)")
    write(f"{'page':48s} {'control':22s} {'from':>10s} {'to':>10s} {'seconds':>8s}")
    for row in MOVES:
        seconds = "no change" if not row["changed"] else f"{row['seconds']:8.2f}"
        write(
            f"{row['page'][:48]:48s} {row['control'][:22]:22s} {row['value_before'][:10]:>10s} "
            f"{row['value_after'][:10]:>10s} {seconds:>8s}"
        )
    write(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    """``tests/browser/screenshots/<test id>/``, emptied first."""
    folder = SCREENSHOTS / safe_name(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
