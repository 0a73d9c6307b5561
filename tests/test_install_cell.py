"""The install cell and the Colab/Binder badges: one repository URL, and the cell works both ways.

The repository URL is defined once, as ``[project.urls] Repository`` in ``pyproject.toml``; the install
cell of every notebook (the block in CONTRIBUTING.md), the Colab and Binder badges of every notebook and
the README must all point at it. The cell itself runs in a fresh interpreter twice:

- where ``chapter13`` is importable (here, locally) it must do nothing: no subprocess at all;
- where it is not (a Colab-like interpreter started with ``-S``, so the project's environment is not
  on ``sys.path``) it must clone that repository and ``pip install -e`` the clone with the running
  interpreter, after which ``import chapter13`` finds the clone. ``subprocess.run`` is intercepted:
  git and pip are recorded, not run (no network here); the "clone" is a link to this checkout.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
REPOSITORY = PROJECT["urls"]["Repository"]
OWNER_REPO = REPOSITORY.removeprefix("https://github.com/")
BRANCH = "main"


def colab_url(notebook: str) -> str:
    return f"https://colab.research.google.com/github/{OWNER_REPO}/blob/{BRANCH}/notebooks/{notebook}"


def binder_url(notebook: str) -> str:
    return f"https://mybinder.org/v2/gh/{OWNER_REPO}/HEAD?labpath={quote('notebooks/' + notebook, safe='')}"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def install_cell(path: Path) -> str:
    return "".join(next(c for c in _cells(path) if c["cell_type"] == "code")["source"])


def documented_install_cell() -> str:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("## The install cell", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "CONTRIBUTING.md: the install cell section has no python block"
    return match.group(1).rstrip("\n")


def test_repository_url_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY), REPOSITORY


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_install_cell_is_the_documented_one(path):
    assert install_cell(path).rstrip("\n") == documented_install_cell(), (
        f"{path.name}: the first code cell must be exactly the install cell of CONTRIBUTING.md"
    )


def test_documented_install_cell_clones_the_repository():
    assert f'REPO = "{REPOSITORY}"' in documented_install_cell(), (
        f"the install cell must clone {REPOSITORY} ([project.urls] Repository in pyproject.toml)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_and_binder_badges_in_the_title_cell(path):
    first = "".join(_cells(path)[0]["source"])
    assert f"]({colab_url(path.name)})" in first, (
        f"{path.name}: no Colab badge linking {colab_url(path.name)}"
    )
    assert f"]({binder_url(path.name)})" in first, (
        f"{path.name}: no Binder badge linking {binder_url(path.name)}"
    )
    # any other Colab, Binder or GitHub link must name the same repository
    for url in re.findall(
        r"https://(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh|github\.com)/[^)\s]+", first
    ):
        assert OWNER_REPO in url, f"{path.name}: {url} does not point at {OWNER_REPO}"


def test_readme_badges():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = "13.0-start-here.ipynb"
    assert f"]({colab_url(start)})" in readme, f"README.md: no Colab badge linking {colab_url(start)}"
    assert f"]({binder_url(start)})" in readme, f"README.md: no Binder badge linking {binder_url(start)}"
    for url in re.findall(
        r"https://(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh)/[^)\s]+", readme
    ):
        assert OWNER_REPO in url, f"README.md: {url} does not point at {OWNER_REPO}"


def test_binder_installs_the_package():
    """Binder (repo2docker) builds environment.yml at the repository root; its pip section must install
    the package from the checkout (repo2docker copies the whole repository first for a local ``-e .``)."""
    assert not (ROOT / "binder").exists(), "a binder/ folder would make repo2docker ignore the root files"
    lines = (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines()
    pip_at = lines.index("  - pip:")
    assert "      - -e ." in lines[pip_at + 1 :], "environment.yml: the pip section must install `-e .`"


HARNESS = textwrap.dedent(
    """
    import json, os, subprocess, sys

    CALLS = []
    CHECKOUT, LOG = sys.argv[1], sys.argv[2]

    def fake_run(args, *rest, **kwargs):
        CALLS.append([str(a) for a in args])
        if list(args[:2]) == ["git", "clone"]:
            os.symlink(CHECKOUT, args[-1])  # "clone" this checkout: no network
        return subprocess.CompletedProcess(args, 0)

    def refuse(*args, **kwargs):
        raise AssertionError(f"the install cell must use subprocess.run only: {args}")

    subprocess.run = fake_run
    subprocess.call = subprocess.check_call = subprocess.check_output = subprocess.Popen = refuse
    os.system = refuse
    code = open(sys.argv[3]).read()
    exec(compile(code, "install-cell", "exec"), {"__name__": "__main__"})
    import importlib.util
    spec = importlib.util.find_spec("chapter13")
    origin = os.path.abspath(spec.origin) if spec else None  # the clone is a link: do not resolve it
    json.dump({"calls": CALLS, "origin": origin, "executable": sys.executable},
              open(LOG, "w"))
    """
)


def run_install_cell(tmp_path: Path, *python_flags: str) -> dict:
    """Run the notebooks' install cell in a fresh interpreter in ``tmp_path``; what it called."""
    (tmp_path / "harness.py").write_text(HARNESS, encoding="utf-8")
    (tmp_path / "cell.py").write_text(install_cell(NOTEBOOKS[0]), encoding="utf-8")
    log = tmp_path / "log.json"
    command = [sys.executable, *python_flags, "harness.py", str(ROOT), str(log), "cell.py"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"the install cell failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(log.read_text(encoding="utf-8"))


def test_install_cell_does_nothing_where_chapter13_is_installed(tmp_path):
    result = run_install_cell(tmp_path)
    assert result["calls"] == [], f"locally the install cell must not run anything: {result['calls']}"
    assert result["origin"] is not None and Path(result["origin"]).is_relative_to(ROOT / "chapter13"), (
        f"`import chapter13` must still find this checkout, found {result['origin']}"
    )
    assert not (tmp_path / "chapter13-repo").exists()


def test_install_cell_installs_from_the_repository_where_chapter13_is_missing(tmp_path):
    result = run_install_cell(tmp_path, "-S")  # no site-packages: chapter13 is not importable
    calls = result["calls"]
    assert len(calls) == 2, f"expected a git clone and a pip install, got {calls}"
    clone, pip = calls
    assert clone[:2] == ["git", "clone"] and REPOSITORY in clone, f"must clone {REPOSITORY}: {clone}"
    target = clone[-1]
    assert pip[:3] == [result["executable"], "-m", "pip"], f"must use the kernel's own pip: {pip}"
    assert "install" in pip and pip[-2:] == ["-e", target], f"must pip install -e the clone: {pip}"
    assert "-q" not in pip, "show pip's output: on Colab its warnings are the only sign of a conflict"
    assert "[" not in target, "no extras: the core dependencies leave Colab's Jupyter packages alone"
    origin = Path(result["origin"] or "")
    assert origin.parent == tmp_path / target / "chapter13", (
        f"after the cell, `import chapter13` must find the clone, found {result['origin']}"
    )
