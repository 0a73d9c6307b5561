"""The rendered companion (``make site``, ``site/build.py``) builds, offline, with every notebook's figures
(issue 16, item 6). Built here in quick mode into a temporary folder (about two minutes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chapter13 import book
from chapter13.checkpoints import read_manifest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("13.*.ipynb"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run(
        [sys.executable, str(ROOT / "site" / "build.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return out


def test_every_notebook_has_a_page_with_its_figures(site):
    summary = json.loads((site / "build.json").read_text(encoding="utf-8"))
    assert summary["quick"] is True and sorted(summary["notebooks"]) == [p.stem for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        page = (site / f"{path.stem}.html").read_text(encoding="utf-8")
        figures = summary["notebooks"][path.stem]["figures"]
        assert figures >= 1, f"{path.name} rendered without a single figure"
        assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', page)) >= figures, path.name
        assert '.ipynb"' not in re.sub(r'href="https?://[^"]*"', "", page), (
            f"{path.name}: a link still points at .ipynb"
        )


def test_the_pages_beside_the_notebooks(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    for name in [p.stem for p in NOTEBOOKS] + ["errata", "timings", "glossary", "if-it-is-slow"]:
        assert f'href="{name}.html"' in index, name
    errata = (site / "errata.html").read_text(encoding="utf-8")
    for e in book.all_errata():
        assert e.listing in errata and e.package in errata
    timings = (site / "timings.html").read_text(encoding="utf-8")
    for name in read_manifest():
        assert name in timings
    assert "quick mode" in timings


def test_formulas_are_typeset_offline(site):
    """Every page loads MathJax from the copy beside it (no CDN), and the copy is there. (nbconvert's
    template still names require.js and mermaid on a CDN: for embedded widget state and diagrams,
    which these pages do not have.)"""
    assert (site / "mathjax" / "MathJax.js").is_file()
    assert (site / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    for page in sorted(site.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        assert 'src="mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"' in text, page.name
        assert "libs/mathjax" not in text and "npm/mathjax" not in text, page.name
