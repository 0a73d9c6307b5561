"""The conda environment and the pip package must ask for the same dependencies."""

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
CONDA_ONLY = {"python", "pip"}


def _normalise(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    name = match.group(1).lower().replace("_", "-")
    spec = ",".join(sorted(part.strip() for part in match.group(2).split(",") if part.strip()))
    return CONDA_NAMES.get(name, name), spec


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(_normalise(r) for r in requirements)


def conda_requirements() -> dict[str, str]:
    listed = {}
    in_dependencies = False
    for line in (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines():
        if line.startswith("dependencies:"):
            in_dependencies = True
            continue
        match = re.match(r"^  - (?!pip:)(.+)$", line)
        if in_dependencies and match:
            name, spec = _normalise(match.group(1).split("#")[0])
            if name not in CONDA_ONLY:
                listed[name] = spec
    return listed


def test_same_dependencies_in_pyproject_and_environment_yml():
    pip, conda = pyproject_requirements(), conda_requirements()
    assert set(pip) == set(conda), (
        f"only in pyproject: {set(pip) - set(conda)}; only in environment.yml: {set(conda) - set(pip)}"
    )
    for name in pip:
        assert pip[name] == conda[name], (
            f"{name}: pyproject says {pip[name]!r}, environment.yml {conda[name]!r}"
        )


def test_ranges_admit_the_installed_torch_and_torchvision():
    """The declared ranges admit the versions this suite actually runs on (not literals)."""
    import torch
    import torchvision
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    pip = pyproject_requirements()
    for name, module in (("torch", torch), ("torchvision", torchvision)):
        installed = Version(module.__version__).base_version  # "2.14.1+cu130" -> "2.14.1"
        assert installed in SpecifierSet(pip[name]), f"{name} {installed} is outside {pip[name]!r}"


# The first release of each that runs with NumPy 2 (issue 16, item 1). pip keeps an installed release
# that meets the floor, so a lower floor would leave it broken next to the NumPy 2 that `numpy<3` admits.
NUMPY_2_FLOORS = {
    # 2.3.0 supports NumPy 2 on Linux/macOS (pytorch/pytorch#107302); the Windows wheels of 2.3.x and
    # 2.4.0 were built against NumPy 1 (pytorch/pytorch#128860, #131668), fixed in 2.4.1.
    "torch": "2.4.1",
    # 0.19 added NumPy 2 support (0.18 predates it: pytorch/vision#8460); 0.19.1 is 2.4.1's match.
    "torchvision": "0.19.1",
    "scipy": "1.13",  # SciPy 1.13.0 release notes: "Support for NumPy 2.0.0"
    "matplotlib": "3.8.4",  # 3.8.4 release notes: "Enable building against numpy 2.0"
}


def lowest_admitted(spec: str) -> str | None:
    """The version a ``>=``/``==``/``~=`` clause of ``spec`` starts at (the highest such), or None."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    starts = [Version(s.version) for s in SpecifierSet(spec) if s.operator in (">=", "==", "~=")]
    return str(max(starts)) if starts else None


def floors_too_low_for_numpy_2(requirements: dict[str, str]) -> list[str]:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    if not SpecifierSet(requirements.get("numpy", "")).contains("2.0.0"):
        return []  # NumPy 2 is excluded, so the old releases are safe
    return [
        f"{name} {requirements.get(name, '')!r} admits releases before {first}, which fail with NumPy 2"
        for name, first in NUMPY_2_FLOORS.items()
        if (start := lowest_admitted(requirements.get(name, ""))) is None or Version(start) < Version(first)
    ]


def test_floors_work_with_the_numpy_2_that_the_numpy_range_admits():
    assert floors_too_low_for_numpy_2(pyproject_requirements()) == []
    assert floors_too_low_for_numpy_2(conda_requirements()) == []  # and .binder/ equals it (test below)


def test_the_floor_check_catches_an_old_floor():
    good = {"numpy": ">=1.24,<3", "torch": ">=2.4.1", "torchvision": ">=0.19.1", "scipy": ">=1.13,<2"}
    good["matplotlib"] = ">=3.8.4,<4"
    assert floors_too_low_for_numpy_2(good) == []
    for name, old in (("torch", ">=2.3"), ("torchvision", ">=0.18"), ("scipy", ">=1.10,<2")):
        assert len(floors_too_low_for_numpy_2({**good, name: old})) == 1
    assert len(floors_too_low_for_numpy_2({**good, "matplotlib": "<4"})) == 1  # no floor at all
    assert floors_too_low_for_numpy_2({**good, "numpy": ">=1.24,<2", "scipy": ">=1.10"}) == []


def run_ci_with_logging_make(tmp_path: Path, script: Path) -> list[str]:
    """Run a CI script with ``make`` (and everything else it may call) replaced by loggers."""
    log = tmp_path / "calls.log"
    for tool in ("make", "apt-get", "sudo"):
        (tmp_path / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n', encoding="utf-8")
        (tmp_path / tool).chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "CH13_CHROMIUM": "/bin/sh", "HOME": str(tmp_path)}
    subprocess.run(["bash", str(script)], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_ci_runs_make_test(tmp_path):
    """CI's first command is ``make test`` (run it, rather than look for the words in the file)."""
    calls = run_ci_with_logging_make(tmp_path, ROOT / ".ci" / "run")
    assert calls and calls[0] == "make test", calls


def test_ci_check_fails_on_a_script_that_only_mentions_make_test(tmp_path):
    fake = tmp_path / "run"
    fake.write_text("#!/usr/bin/env bash\n# make test\necho make test\n", encoding="utf-8")
    assert run_ci_with_logging_make(tmp_path, fake) == []


# --- packaging (issue 16, items 1 and 5) -------------------------------------------------------------

IMPORT_TO_DIST = {"PIL": "pillow", "sklearn": "scikit-learn"}
STDLIB = set(__import__("sys").stdlib_module_names)


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_core_dependencies_are_what_the_package_imports():
    import ast

    imported = set()
    for path in (ROOT / "chapter13").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {IMPORT_TO_DIST.get(m, m).lower() for m in imported - STDLIB - {"chapter13", "__future__"}}
    core = {_normalise(r)[0] for r in _project()["project"]["dependencies"]}
    assert third_party - core == set(), f"imported but not declared: {sorted(third_party - core)}"
    assert core - third_party == set(), f"declared but never imported: {sorted(core - third_party)}"
    assert not {"jupyterlab", "ipykernel"} & core  # Jupyter is the `lab` extra (Colab keeps its own)


def test_no_upper_cap_on_torch_and_torchvision():
    pip = pyproject_requirements()
    for name in ("torch", "torchvision"):
        assert "<" not in pip[name], (
            f"{name} {pip[name]!r}: a cap forces a torch download where a newer one is installed"
        )


def test_one_version_an_spdx_licence_and_a_pinned_ruff():
    import importlib.metadata

    import chapter13

    project = _project()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("chapter13") == chapter13.__version__
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert project["license"] == "MIT" and licence.startswith("MIT License")
    assert "CC BY-SA 3.0" in licence  # the data's licence is not the code's
    dev = dict(_normalise(r) for r in project["optional-dependencies"]["dev"])
    assert dev["ruff"].startswith("=="), (
        "pin ruff: CI checks formatting, and its style changes between releases"
    )
    installed = subprocess.run([ROOT / ".venv" / "bin" / "ruff", "--version"], capture_output=True, text=True)
    if installed.returncode == 0:
        assert installed.stdout.split()[1] == dev["ruff"].removeprefix("==")


def test_constraints_pin_every_declared_package_inside_its_range():
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version.strip()
    project = _project()["project"]
    declared = list(project["dependencies"]) + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    for text in declared:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is declared but constraints.txt does not pin it"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside the declared {requirement.specifier}"
        )
    installs = [
        line for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines() if "pip install" in line
    ]
    assert installs and all("-c constraints.txt" in line for line in installs), installs


def test_the_wheel_lists_every_package_and_the_data():
    setuptools = _project()["tool"]["setuptools"]
    folders = sorted(
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "chapter13").rglob("__init__.py")
    )
    assert sorted(p for p in setuptools["packages"] if p != "chapter13_data") == folders
    assert setuptools["package-dir"] == {"chapter13_data": "data"}
    patterns = setuptools["package-data"]["chapter13_data"]
    files = [p.relative_to(ROOT / "data") for p in (ROOT / "data").rglob("*") if p.is_file()]
    missing = [str(f) for f in files if not any(f.match(pattern) for pattern in patterns)]
    assert not missing, f"data files the wheel would leave out: {missing}"


def test_binder_has_an_exact_python_the_same_dependencies_and_installs_in_postbuild():
    binder = ROOT / ".binder"
    text = (binder / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^  - python=3\.\d+$", text, re.M), "repo2docker needs an exact Python version"
    assert "-e ." not in text  # in postBuild, so that the environment layer stays cached
    top = conda_requirements()
    listed = {}
    dependencies = text[text.index("dependencies:") :]
    for line in dependencies.splitlines():
        match = re.match(r"^  - (.+)$", line)
        if match:
            name, spec = _normalise(match.group(1))
            listed[name] = spec
    expected = {k: v for k, v in top.items() if k != "playwright"}  # no browser test on Binder
    assert {k: v for k, v in listed.items() if k not in {"python", "pip", "setuptools"}} == expected
    post = binder / "postBuild"
    assert (
        post.stat().st_mode & 0o111
        and "pip install --no-deps --no-build-isolation -e ." in post.read_text(encoding="utf-8")
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    repo = _project()["project"]["urls"]["Repository"].removeprefix("https://github.com/")
    assert f"https://mybinder.org/v2/gh/{repo}/HEAD?urlpath=voila%2Ftree%2Fpresenter" in readme
