"""Every text file the project reads or writes names its encoding (issue 16, item 4).

On native Windows the default text encoding is the locale's (cp1252 in the West), and
``notebooks/13.3-text-to-image.ipynb`` and ``13.5-...ipynb`` do not even decode as cp1252. So every
text-mode ``open()`` (also ``io.open()`` and ``path.open()``) and every ``.read_text()`` /
``.write_text()`` in the package, the site build, the benchmarks and the tests must pass
``encoding=`` (``"utf-8"`` throughout).

Ruff's rule for this, PLW1514 (unspecified-encoding), is preview-only in the pinned ruff 0.17.6, and
it only flags ``read_text`` when it can tell the receiver is a ``Path``, which misses most of ours.
This test walks the syntax tree instead:

- ``open(...)`` / ``io.open(...)``: the mode is the second argument or ``mode=``; ``x.open(...)`` of
  a path: the first argument or ``mode=``. A literal mode containing ``"b"`` is binary and exempt.
  A mode that is not a string literal could be text, so it needs ``encoding=`` too.
- ``os.open`` (file descriptors) and the image, archive and browser ``open``\\ s are not text opens.
- ``.read_text(...)`` needs an encoding as its first argument or ``encoding=``; ``.write_text(...)``
  as its second argument or ``encoding=``.
- A call that passes ``**kwargs`` cannot be told apart, so it is flagged too (write the encoding out).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("chapter13", "site", "benchmarks", "tests")
EXTRA_FILES = ("conftest.py",)

# Receivers whose ``.open`` is not a text-mode file open.
NOT_TEXT_OPENERS = {"os", "Image", "tarfile", "zipfile", "webbrowser", "shelve", "dbm", "wave"}

# Files whose calls are listed here instead of fixed (none today); ``test_the_exemptions_are_still_needed``
# fails once a listed file is clean, so that its entry goes.
EXEMPT: dict[str, str] = {}


def _argument(call: ast.Call, position: int, keyword: str) -> tuple[bool, ast.expr | None]:
    """(given, value) of an argument passed by position or by keyword."""
    for kw in call.keywords:
        if kw.arg == keyword:
            return True, kw.value
    positional = [a for a in call.args if not isinstance(a, ast.Starred)]
    if len(positional) > position and len(positional) == len(call.args):
        return True, call.args[position]
    if any(isinstance(a, ast.Starred) for a in call.args):
        return True, None  # *args: unknown, treated as given but not literal
    return False, None


def _has_encoding(call: ast.Call, position: int) -> bool:
    if any(kw.arg is None for kw in call.keywords):  # **kwargs: cannot tell, so ask for it written out
        return False
    given, value = _argument(call, position, "encoding")
    return given and not (isinstance(value, ast.Constant) and value.value is None)


def _is_binary(call: ast.Call, position: int) -> bool:
    given, mode = _argument(call, position, "mode")
    if not given:
        return False  # the default mode, "r", is text
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" in mode.value


def _problem(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name) and func.id == "open":
        kind, mode_at, encoding_at = "open()", 1, 3
    elif isinstance(func, ast.Attribute) and func.attr == "open":
        receiver = func.value
        if isinstance(receiver, ast.Name) and receiver.id == "io":
            kind, mode_at, encoding_at = "io.open()", 1, 3
        elif isinstance(receiver, ast.Name) and receiver.id in NOT_TEXT_OPENERS:
            return None
        elif isinstance(receiver, ast.Attribute) and receiver.attr in NOT_TEXT_OPENERS:
            return None  # PIL.Image.open and the like
        else:
            kind, mode_at, encoding_at = ".open()", 0, 2
    elif isinstance(func, ast.Attribute) and func.attr == "read_text":
        return None if _has_encoding(call, 0) else ".read_text() without encoding="
    elif isinstance(func, ast.Attribute) and func.attr == "write_text":
        return None if _has_encoding(call, 1) else ".write_text() without encoding="
    else:
        return None
    if _is_binary(call, mode_at) or _has_encoding(call, encoding_at):
        return None
    return f"text-mode {kind} without encoding="


def problems_in(source: str, name: str = "<snippet>") -> list[str]:
    """``name:line: what`` for every text open/read/write in ``source`` that names no encoding."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Call) and (what := _problem(node)):
            found.append(f"{name}:{node.lineno}: {what}")
    return sorted(found, key=lambda line: int(line.split(":")[-2]))


def python_files() -> list[Path]:
    files = [p for folder in FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]
    files += [ROOT / name for name in EXTRA_FILES if (ROOT / name).exists()]
    return [p for p in files if ".venv" not in p.parts and "build" not in p.relative_to(ROOT).parts[:1]]


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_text_open_read_and_write_names_its_encoding():
    assert len(python_files()) > 50  # the walk really finds the project's files
    found = []
    for path in python_files():
        if _relative(path) not in EXEMPT:
            found += problems_in(path.read_text(encoding="utf-8"), _relative(path))
    assert not found, "add encoding='utf-8':\n" + "\n".join(found)


def notebook_sources() -> dict[str, str]:
    """``folder/name.ipynb[cell i]`` -> the code cell's Python (IPython ``!``/``%`` lines left out)."""
    sources = {}
    for folder in ("notebooks", "presenter"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for i, cell in enumerate(cells):
                if cell["cell_type"] == "code":
                    lines = "".join(cell["source"]).splitlines()
                    python = [("" if line.lstrip().startswith(("!", "%")) else line) for line in lines]
                    sources[f"{folder}/{path.name}[cell {i}]"] = "\n".join(python)
    return sources


def test_every_notebook_cell_names_its_encoding_too():
    sources = notebook_sources()
    assert len(sources) > 100
    found = [line for name, source in sources.items() for line in problems_in(source, name)]
    assert not found, "add encoding='utf-8':\n" + "\n".join(found)


def test_the_exemptions_are_still_needed():
    for name in EXEMPT:
        path = ROOT / name
        if path.exists():
            assert problems_in(path.read_text(encoding="utf-8"), name), (
                f"{name} is clean: drop it from EXEMPT"
            )


BAD = [
    ("open('a.txt')", 1),
    ("open('a.txt', 'w')", 1),
    ("open('a.txt', mode='rt')", 1),
    ("open('a.txt', mode)", 1),  # a mode that is not a literal could be text
    ("open('a.txt', 'r', -1, None)", 1),
    ("json.load(open(p))", 1),
    ("io.open(p, 'a')", 1),
    ("with path.open() as f:\n    pass", 1),
    ("path.open('w', newline='')", 1),
    ("Path(p).read_text()", 1),
    ("text = (ROOT / 'x.ipynb').read_text().splitlines()", 1),
    ("p.write_text(s)", 1),
    ("p.write_text(s, encoding=None)", 1),
    ("p.read_text(**options)", 1),
    ("x = 1\nopen(p).read()\nq.read_text()", 2),
]
GOOD = [
    "open('a.bin', 'rb')",
    "open('a.bin', mode='wb')",
    "open('a.txt', encoding='utf-8')",
    "open('a.txt', 'w', encoding='utf-8')",
    "open('a.txt', 'r', -1, 'utf-8')",
    "io.open(p, 'rb')",
    "path.open('rb')",
    "path.open(encoding='utf-8')",
    "path.open('r', -1, 'utf-8')",
    "os.open(p, os.O_RDONLY)",
    "Image.open(io.BytesIO(png))",
    "PIL.Image.open(p)",
    "p.read_text(encoding='utf-8')",
    "p.read_text('utf-8')",
    "p.write_text(s, encoding='utf-8')",
    "p.write_text(s, 'utf-8')",
    "p.read_bytes(); p.write_bytes(b'')",
]


@pytest.mark.parametrize(("snippet", "count"), BAD)
def test_the_check_catches_a_missing_encoding(snippet, count):
    found = problems_in(snippet, "bad.py")
    assert len(found) == count, found
    assert all(line.startswith("bad.py:") for line in found)


@pytest.mark.parametrize("snippet", GOOD)
def test_the_check_passes_binary_and_explicit_encodings(snippet):
    assert problems_in(snippet) == []


def test_the_check_fails_on_a_file_with_a_missing_encoding(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from pathlib import Path\n\nPath('x').read_text()\n", encoding="utf-8")
    assert problems_in(bad.read_text(encoding="utf-8"), "bad.py") == [
        "bad.py:3: .read_text() without encoding="
    ]
