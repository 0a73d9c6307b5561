"""Self-checks for 13.0 start-here."""

from __future__ import annotations

import torch


def ink_per_digit(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean fraction of 'on' pixels (value > 0 in the [-1, 1] range) per class: (10,)."""
    on = (x > 0).float().flatten(1).mean(1)
    return torch.stack([on[y == d].mean() for d in range(10)])


def check_most_ink(answer: int | None, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Is ``answer`` the digit class with the most ink on average?"""
    if answer is None:
        print("Not attempted yet: set `most_ink` to the digit (0-9) whose images have the most 'on' pixels.")
        return False
    ink = ink_per_digit(x, y)
    best = int(ink.argmax())
    if int(answer) == best:
        print(f"Correct: digit {best} uses the most ink ({ink[best]:.1%} of pixels on average).")
        return True
    print(
        f"Not quite: digit {int(answer)} has {ink[int(answer)]:.1%} of pixels on; one digit has more. "
        "Compute (x > 0).float().mean() per class."
    )
    return False
