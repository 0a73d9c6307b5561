"""Build the rendered companion: every notebook executed, one HTML page each with its figures and
animations, and pages for the errata, the timings, a glossary and "if it is slow". Offline.

    python site/build.py              # full size (about 12 minutes on a 2-core CPU), into _site/
    python site/build.py --quick      # CH13_QUICK=1 sizes (about 2 minutes): what tests/test_site.py builds
    python site/build.py --only 13.0  # some notebooks only (a prefix of their names)

Why not Jupyter Book 2 / MyST: ``myst build --html`` downloads its site theme from api.mystmd.org at build
time, which an offline machine (this one, a classroom's) cannot reach. The pages here are nbconvert's
JupyterLab-styled HTML, which needs nothing outside the environment. Formulas are written in TeX and
typeset by MathJax 2.7, copied into the site from the ``jupyter-server-mathjax`` package (the ``lab``
extra), so the pages read offline; nbconvert's default would load it from a CDN.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chapter13 import book, config  # noqa: E402
from chapter13.checkpoints import read_manifest  # noqa: E402

SOURCE = Path(__file__).resolve().parent
NOTEBOOKS = ROOT / "notebooks"
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
"""Where the pages load MathJax from: the copy ``copy_mathjax`` puts beside them."""


def copy_mathjax(out: Path) -> None:
    """Copy MathJax 2.7 (``jupyter_server_mathjax``'s static files, 10 MB) into ``out/mathjax``."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise SystemExit(
            "the site needs jupyter-server-mathjax for offline formulas: pip install -e '.[lab]' (make site does)"
        ) from None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(static, out / "mathjax", dirs_exist_ok=True)


def execute(path: Path, quick: bool) -> tuple[nbformat.NotebookNode, float, list[tuple[float, int, str]]]:
    """Run the notebook top to bottom in a fresh kernel (figures inline); its wall time and the cells
    that took over 10 s."""
    nb = nbformat.read(path, as_version=4)
    os.environ["CH13_QUICK"] = "1" if quick else "0"  # the kernel inherits this environment
    os.environ.pop("MPLBACKEND", None)  # figures inline (Agg would leave the pages without them)
    client = NotebookClient(
        nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    slow = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            took = (
                datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
                - datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            ).total_seconds()
            if took > 10:
                slow.append((took, index, cell.source.strip().splitlines()[0][:80]))
    return nb, seconds, sorted(slow, reverse=True)


def image_outputs(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in out.get("data", {}) for c in nb.cells if c.cell_type == "code" for out in c.outputs
    )


def to_html(nb: nbformat.NotebookNode) -> str:
    body, _ = HTMLExporter(template_name="lab", mathjax_url=MATHJAX_URL).from_notebook_node(nb)
    return re.sub(r'href="([\w.\-]+)\.ipynb', r'href="\1.html', body)  # links between the notebooks


def markdown_page(title: str, markdown: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}\n\n{markdown}")])
    nb.metadata["title"] = title
    return to_html(nb)


def errata_markdown() -> str:
    lines = [
        "Every listing the chapter prints, run as printed (`chapter13.book`, checked line by line against the "
        "print by `tests/test_book.py`), next to the package. *wrong*: it fails or computes the wrong thing; "
        "*simplified*: right in a narrower sense; *right*: the book is right.\n"
    ]
    for section in book.SECTIONS:
        errata = section.ERRATA
        lines.append(f"## {section.__name__.rsplit('sec', 1)[1].replace('_', '.')}\n")
        lines.append(book.errata_table(errata) + "\n")
        for e in errata:
            lines.append(f"- **{e.section} `{e.listing}`** ({book.VERDICTS[e.kind]}): {e.why}")
        lines.append("")
    return "\n".join(lines)


def timings_markdown(runs: dict[str, tuple[float, list]], quick: bool) -> str:
    mode = "quick mode (`CH13_QUICK=1`)" if quick else "full size"
    lines = [
        f"Measured by this build, {mode}, on {os.cpu_count()} CPU cores, {platform.machine()}, "
        f"torch {torch.__version__}, device {config.default_device()}.\n",
        "| notebook | Restart & Run All | cells over 10 s |",
        "|---|---|---|",
    ]
    for name, (seconds, slow) in runs.items():
        cells = "; ".join(f"{s:.0f} s (cell {i}: `{html.escape(src)}`)" for s, i, src in slow[:4]) or "none"
        lines.append(f"| [{name}]({name}.html) | {seconds:.0f} s | {cells} |")
    lines += [
        "\n## The shipped checkpoints\n",
        "How long each took to build (`python -m chapter13.train NAME`), as its manifest records it.\n",
        "| checkpoint | build time | parameters | where |",
        "|---|---|---|---|",
    ]
    for name, entry in sorted(read_manifest().items()):
        where = entry.get("device") or "CPU"
        lines.append(
            f"| `{name}` | {entry['train_seconds'] / 60:.1f} min | {entry['parameters']:,} | {where} |"
        )
    return "\n".join(lines)


def build(out: Path, quick: bool, only: list[str]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    copy_mathjax(out)
    pages, runs, figures = [], {}, {}
    for path in sorted(NOTEBOOKS.glob("13.*.ipynb")):
        if only and not any(path.stem.startswith(prefix) for prefix in only):
            continue
        print(f"executing {path.name} ...", flush=True)
        nb, seconds, slow = execute(path, quick)
        (out / f"{path.stem}.html").write_text(to_html(nb), encoding="utf-8")
        runs[path.stem], figures[path.stem] = (seconds, slow), image_outputs(nb)
        title = nb.cells[0].source.splitlines()[0].lstrip("# ")
        pages.append((f"{path.stem}.html", title, f"{seconds:.0f} s, {figures[path.stem]} figures"))
        print(f"  {seconds:.0f} s, {figures[path.stem]} figures", flush=True)
    for stem, title, markdown in [
        ("errata", "The book's code, as printed, and what running it shows", errata_markdown()),
        ("timings", "How long things take", timings_markdown(runs, quick)),
        ("glossary", "Glossary of symbols", (SOURCE / "glossary.md").read_text(encoding="utf-8")),
        ("if-it-is-slow", "If it is slow", (SOURCE / "if-it-is-slow.md").read_text(encoding="utf-8")),
    ]:
        (out / f"{stem}.html").write_text(markdown_page(title, markdown), encoding="utf-8")
        pages.append((f"{stem}.html", title, ""))
    items = "\n".join(f"- [{title}]({href}) {f'({note})' if note else ''}" for href, title, note in pages)
    intro = (
        "The interactive companion to the chapter *Multimodal & Diffusion Models*, every notebook run "
        f"top to bottom ({'quick mode' if quick else 'full size'}) with its figures. To run and change them, "
        "see the repository's README (`make lab`, Colab or Binder).\n\n"
    )
    (out / "index.html").write_text(markdown_page("Chapter 13 companion", intro + items), encoding="utf-8")
    summary = {
        "quick": quick,
        "notebooks": {k: {"seconds": v[0], "figures": figures[k]} for k, v in runs.items()},
    }
    (out / "build.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default _site/)")
    parser.add_argument("--quick", action="store_true", help="CH13_QUICK=1 sizes")
    parser.add_argument("--only", nargs="*", default=[], help="notebook name prefixes to build")
    args = parser.parse_args(argv)
    summary = build(args.out, args.quick, args.only)
    print(f"wrote {args.out}/index.html ({len(summary['notebooks'])} notebooks)")


if __name__ == "__main__":
    main()
