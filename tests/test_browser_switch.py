"""The browser test without a browser: a student gets a skip that says what to install, CI a failure.

``make test`` leaves ``tests/browser`` out; ``make browser`` runs it. Here it runs in a subprocess with
``CH13_CHROMIUM`` pointing at a file that does not exist, so it stops at the check, before any server
starts (a second or two).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_browser_tests(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "CH13_BROWSER_REQUIRED"}
    environment.update(CH13_CHROMIUM="/nonexistent/chromium", **env)
    # one light test (the presenter index): the skip or failure comes from the session-wide check
    command = [sys.executable, "-m", "pytest", "tests/browser/test_presenter.py", "-q", "-rs"]
    command += ["-p", "no:cacheprovider", "-k", "test_index_lists_every_presenter_page"]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_missing_browser_is_a_skip_that_says_what_to_install():
    done = run_browser_tests()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "skipped" in out and "passed" not in out and "failed" not in out, out
    assert "no Chromium executable at /nonexistent/chromium" in out, out
    assert "apt-get install" in out and "CH13_BROWSER_REQUIRED=1" in out, out


def test_missing_browser_fails_when_required():
    done = run_browser_tests(CH13_BROWSER_REQUIRED="1")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 error" in out and "skipped" not in out and "passed" not in out, out
    assert "no Chromium executable at /nonexistent/chromium" in out and "required" in out, out


def test_make_test_leaves_the_browser_test_out():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    unit = next(line for line in makefile.splitlines() if line.startswith("\t$(PY) -m pytest tests "))
    assert "--ignore=tests/browser" in unit


def _fake_tools(folder: Path, uid: int, failing: str = "") -> Path:
    """``make``, ``apt-get``, ``sudo`` and ``id`` that only log what they were asked to do; the call
    whose arguments equal ``failing`` (e.g. ``make test``) exits with status 2 after logging."""
    log = folder / "calls.log"
    fail = f'[ "$0 $*" = "{folder}/{failing}" ] && exit 2; true'
    scripts = {
        "make": f'echo "make $* CH13_BROWSER_REQUIRED=${{CH13_BROWSER_REQUIRED:-}}" >> {log}; {fail}',
        "apt-get": f'echo "apt-get $*" >> {log}; {fail}',
        "sudo": f'echo "sudo" >> {log}; "$@"',
        "id": f"echo {uid}",
    }
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        (folder / name).chmod(0o755)
    return log


def _run_ci(tmp_path: Path, uid: int, chromium: str, failing: str = "", status: int = 0) -> list[str]:
    log = _fake_tools(tmp_path, uid, failing)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "CH13_CHROMIUM": chromium, "HOME": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True)
    assert done.returncode == status, done.stdout + done.stderr
    return log.read_text(encoding="utf-8").splitlines()


def test_ci_script_installs_chromium_when_missing_and_requires_it(tmp_path):
    calls = _run_ci(tmp_path, uid=0, chromium="/nonexistent/chromium")
    assert calls == [
        "make test CH13_BROWSER_REQUIRED=",
        "apt-get update -q",
        "apt-get install -y --no-install-recommends chromium",
        "make browser CH13_BROWSER_REQUIRED=1",
    ], calls


def test_ci_script_uses_sudo_only_when_not_root(tmp_path):
    calls = _run_ci(tmp_path, uid=1000, chromium="/nonexistent/chromium")
    assert calls.count("sudo") == 2 and "apt-get install -y --no-install-recommends chromium" in calls, calls


def test_ci_script_leaves_an_installed_chromium_alone(tmp_path):
    calls = _run_ci(tmp_path, uid=0, chromium="/bin/sh")  # any executable stands for chromium
    assert calls == ["make test CH13_BROWSER_REQUIRED=", "make browser CH13_BROWSER_REQUIRED=1"], calls


def test_ci_stops_when_make_test_fails(tmp_path):
    calls = _run_ci(tmp_path, uid=0, chromium="/bin/sh", failing="make test", status=2)
    assert calls == ["make test CH13_BROWSER_REQUIRED="], calls  # no browser run after a red make test


def test_ci_fails_when_chromium_cannot_be_installed(tmp_path):
    failing = "apt-get install -y --no-install-recommends chromium"
    calls = _run_ci(tmp_path, uid=0, chromium="/nonexistent/chromium", failing=failing, status=2)
    assert calls[-1] == failing and not any(c.startswith("make browser") for c in calls), calls
