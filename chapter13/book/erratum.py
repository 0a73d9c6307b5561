"""One finding about one printed listing (``Erratum``), and a Markdown table of them for the notebooks."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("fault", "simplification", "correct")


@dataclass(frozen=True)
class Erratum:
    """One finding about one printed listing, shown by running it.

    section: the chapter's number ("13.2.1"); listing: its name in the section's module;
    kind: one of ``KINDS``; finding: what running the printed code shows; why: the published math or
    the mechanism behind it; package: where the package does it (a dotted name); notebook: the
    notebook that runs the listing next to the package.
    """

    section: str
    listing: str
    kind: str
    finding: str
    why: str
    package: str
    notebook: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Erratum.kind must be one of {KINDS}, got {self.kind!r}")


VERDICTS = {"fault": "wrong", "simplification": "simplified", "correct": "right"}


def errata_table(errata: list[Erratum] | tuple[Erratum, ...]) -> str:
    """A Markdown table of ``errata``: section, listing, verdict, what running it shows, where the
    package does it. For a notebook: ``display(Markdown(errata_table(sec13_2.ERRATA)))``."""
    rows = [
        "| section | listing | the book is | what running it shows | the package |",
        "|---|---|---|---|---|",
    ]
    for e in errata:
        finding = e.finding.replace("|", "\\|")
        rows.append(f"| {e.section} | `{e.listing}` | {VERDICTS[e.kind]} | {finding} | `{e.package}` |")
    return "\n".join(rows)
