"""Notebook hygiene: stored without outputs, with a kernelspec, a title and the install cell.

The notebooks themselves run end to end through nbval (`make notebooks`).
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SECTIONS = ["13.0", "13.1", "13.2", "13.3", "13.4", "13.5", "13.6", "13.7"]


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_one_notebook_per_section():
    found = sorted(p.name[:4] for p in NOTEBOOKS)
    assert found == SECTIONS, f"expected one notebook per section {SECTIONS}, found {found}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name} cell {i} has stored outputs; clear them"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernelspec_and_title(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert first.startswith(f"# {path.name[:4]} "), f"{path.name} must open with '# {path.name[:4]} <title>'"
    assert "colab.research.google.com" in first, f"{path.name} needs its Colab badge in the first cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_install_cell_then_environment_check(path):
    code = ["".join(c["source"]) for c in _load(path)["cells"] if c["cell_type"] == "code"]
    assert 'find_spec("chapter13") is None' in code[0], f"{path.name}: the first code cell installs"
    assert "config.describe()" in code[1], f"{path.name}: the second code cell prints config.describe()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_quick_mode_only_through_pick(path):
    source = "\n".join("".join(c["source"]) for c in _load(path)["cells"] if c["cell_type"] == "code")
    assert "CH13_QUICK" not in source, f"{path.name} reads CH13_QUICK itself; use config.pick"
    assert not re.search(r"^\s*(el)?if\s+(not\s+)?(config\.)?QUICK\b", source, re.M), (
        f"{path.name} branches on config.QUICK; choose sizes with pick(full=..., quick=...)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_an_exercise(path):
    text = "\n".join("".join(c["source"]) for c in _load(path)["cells"])
    assert re.search(r"exercise", text, re.I), f"{path.name} has no exercise"
    assert "check_" in text, f"{path.name} has no self-check (chapter13.exercises)"
