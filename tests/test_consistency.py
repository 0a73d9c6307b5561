"""The conda environment and the pip package must ask for the same dependencies."""

import re
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
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(_normalise(r) for r in requirements)


def conda_requirements() -> dict[str, str]:
    listed = {}
    in_dependencies = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
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


def test_ranges_admit_the_torch_on_this_machine():
    from packaging.specifiers import SpecifierSet

    pip = pyproject_requirements()
    assert "2.14.1" in SpecifierSet(pip["torch"])
    assert "0.29.1" in SpecifierSet(pip["torchvision"])


def test_ci_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script
