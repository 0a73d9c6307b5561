"""``python -m chapter13.book CHAPTER.txt``: write the chapter's code blocks to ``printed_listings.txt``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from chapter13.book import PRINTED_LISTINGS, extract_code_blocks


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chapter13.book", description=__doc__)
    parser.add_argument(
        "chapter", type=Path, help="the chapter's text, e.g. ../shared/chapter/000_9fbdce5825f172ce.txt"
    )
    args = parser.parse_args(argv)
    if not args.chapter.is_file():
        parser.error(f"{args.chapter} is not a file: pass the chapter's text file")
    PRINTED_LISTINGS.write_text(
        extract_code_blocks(args.chapter.read_text(encoding="utf-8")), encoding="utf-8"
    )
    print(f"wrote {PRINTED_LISTINGS}")


if __name__ == "__main__":
    main()
