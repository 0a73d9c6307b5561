"""Presenter pages (``presenter/``, served by ``make present``) stay in step with the notebooks.

The pages are written by hand (demos only, no exercises); this checks their hygiene and that each one
belongs to a section notebook of the same name, which its title cell names. The browser test
(``tests/browser/test_presenter.py``) renders them.
"""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "presenter").glob("*.ipynb"))


def test_one_presenter_page_per_notebook():
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert [p.name for p in PAGES] == notebooks, "presenter/ needs one page per notebook, named alike"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_presenter_page_hygiene(path):
    nb = json.loads(path.read_text())
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

    flags = re.search(r"^VOILA_FLAGS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert flags, "Makefile: VOILA_FLAGS := ... not found"
    tree = ast.parse((ROOT / "tests" / "browser" / "conftest.py").read_text())
    assigned = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PRESENT_ARGS" for t in node.targets)
    ]
    assert len(assigned) == 1, "tests/browser/conftest.py: PRESENT_ARGS = [...] not found"
    assert ast.literal_eval(assigned[0]) == flags.group(1).split()
