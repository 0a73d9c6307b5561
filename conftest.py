"""pytest settings shared by the unit tests and the notebook run (nbval).

Notebooks run with ``--nbval-lax``: outputs are compared only in cells marked ``# NBVAL_CHECK_OUTPUT``
(correctness checks are ``assert``s in the cells). Even there, volatile output must not be compared:
tqdm's HTML progress bars, widget views and state (random model ids) and timings. This file adds
those MIME types to nbval's skip list and applies ``tests/nbval_sanitize.cfg`` by default.
"""

from __future__ import annotations

import os
from pathlib import Path

VOLATILE_MIME_TYPES = (
    "text/html",  # tqdm.auto progress bars, animations' HTML
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)
SANITIZE = Path(__file__).parent / "tests" / "nbval_sanitize.cfg"


def pytest_configure(config):
    option = config.option
    if getattr(option, "nbval_lax", False) or getattr(option, "nbval", False):
        os.environ.setdefault("MPLBACKEND", "Agg")  # inherited by the kernels nbval starts
        if not getattr(option, "nbval_sanitize_with", None):
            option.nbval_sanitize_with = str(SANITIZE)


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        parent = item.parent
        if hasattr(parent, "skip_compare"):
            parent.skip_compare = tuple(set(parent.skip_compare) | set(VOLATILE_MIME_TYPES))
