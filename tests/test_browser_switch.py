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


def test_ci_runs_the_browser_test_as_required():
    script = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script
    assert "CH13_BROWSER_REQUIRED=1" in script and "make browser" in script
    assert script.index("make test") < script.index("make browser")
    assert "apt-get install -y --no-install-recommends chromium" in script


def test_make_test_leaves_the_browser_test_out():
    makefile = (ROOT / "Makefile").read_text()
    unit = next(line for line in makefile.splitlines() if line.startswith("\t$(PY) -m pytest tests "))
    assert "--ignore=tests/browser" in unit
