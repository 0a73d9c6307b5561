"""The chapter's code as printed: every listing character for character, made runnable and no more.

One module per section (``sec13_1`` ... ``sec13_6``). In each, the listings sit exactly as the chapter
prints them (trailing spaces dropped); every line we had to change to make a listing run carries a
``# ch13:`` comment that says what and why:

- ``# ch13: completed ...`` - the print cuts the line off at the page margin; it is completed as the
  rest of the listing implies (the printed part is kept as it is, the test checks that it is a prefix);
- ``# ch13: added ...`` - a line the print does not have (an ``import`` the section relies on, a body
  where the print has ``# ...``), or, on a line of its own, a note such as restored indentation.

``LISTINGS`` in each module names its listings and their section; ``ERRATA`` says, for each, what
running the printed code shows: a ``fault`` (it fails or computes the wrong thing), a
``simplification`` (it runs and is right only in a narrower sense), or ``correct`` (the book is right,
and we say so). :func:`all_errata` collects them for the notebooks and the errata page.

``printed_listings.txt`` holds the chapter's code blocks as printed, extracted by
``python -m chapter13.book CHAPTER.txt`` (:func:`extract_code_blocks`); ``tests/test_book.py``
checks every listing line against it, and the extract against the chapter where it is at hand.
"""

from __future__ import annotations

import re
from pathlib import Path

from chapter13.book import sec13_1, sec13_2, sec13_3, sec13_4, sec13_5, sec13_6
from chapter13.book.erratum import KINDS, VERDICTS, Erratum, errata_table

__all__ = [
    "KINDS",
    "PRINTED_LISTINGS",
    "SECTIONS",
    "VERDICTS",
    "Erratum",
    "all_errata",
    "errata_table",
    "extract_code_blocks",
    "printed_lines",
]

PRINTED_LISTINGS = Path(__file__).with_name("printed_listings.txt")
SECTIONS = (sec13_1, sec13_2, sec13_3, sec13_4, sec13_5, sec13_6)


def extract_code_blocks(chapter_text: str) -> str:
    """The code blocks of the chapter's text (between ``` fences), trailing spaces dropped, one
    ``# --- listing N (line L)`` header before each; blank lines at a block's ends removed."""
    out, block, start, count = [], None, 0, 0
    for number, line in enumerate(chapter_text.splitlines(), 1):
        if line.strip().startswith("```"):
            if block is None:
                block, start = [], number + 1
                continue
            while block and not block[0].strip():
                block.pop(0)
            while block and not block[-1].strip():
                block.pop()
            count += 1
            out.append(f"# --- listing {count} (line {start})")
            out.extend(block)
            block = None
        elif block is not None:
            block.append(line.rstrip())
    return "\n".join(out) + "\n"


def printed_lines() -> list[str]:
    """The printed code lines (``printed_listings.txt`` without its headers), in order."""
    return [
        line
        for line in PRINTED_LISTINGS.read_text(encoding="utf-8").splitlines()
        if not re.match(r"# --- listing \d+", line)
    ]


def all_errata() -> list[Erratum]:
    """Every section's ``ERRATA``, in the chapter's order."""
    return [e for module in SECTIONS for e in module.ERRATA]
