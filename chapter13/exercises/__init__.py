"""Self-checks for the notebooks' exercises, one module per section.

A checker prints what is wrong (or "not attempted yet" for ``None``) and returns False, or prints a
confirmation and returns True. It never raises on a student's answer, so notebooks run top to bottom.
The two helpers below are shared by the section modules.
"""

from __future__ import annotations

import math
from typing import Any


def not_attempted(answer: Any, what: str = "replace None with your answer and run the cell again.") -> bool:
    """True, after printing "Not attempted yet: <what>", when ``answer`` is still ``None``."""
    if answer is None:
        print(f"Not attempted yet: {what}")
        return True
    return False


def as_number(answer: Any) -> float | None:
    """``answer`` as a finite float, or ``None`` after printing why it is not one."""
    try:
        value = float(answer)
    except (TypeError, ValueError):
        print(f"Expected a number, got {type(answer).__name__} {answer!r}.")
        return None
    if not math.isfinite(value):
        print(f"Expected a finite number, got {value}.")
        return None
    return value
