"""Self-checks for the 13.6 code lab.

Every checker prints what is wrong (or "not attempted yet" for ``None``) and returns False, or prints a
confirmation and returns True; it never raises, so the notebook runs top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from chapter13.diffusion import timesteps
from chapter13.exercises import as_number, not_attempted

__all__ = [
    "check_ddim_grid",
    "check_ema_window",
    "check_frechet_1d",
    "check_normalised_entropy",
    "check_space_to_depth",
]


def check_space_to_depth(my_patchify: Callable | None) -> bool:
    """``my_patchify(x: (B, 1, 28, 28)) -> (B, 4, 14, 14)``: channel ``2 i + j`` holds the pixels at
    row offset i and column offset j of every 2x2 patch (what ``F.pixel_unshuffle(x, 2)`` does)."""
    if not_attempted(
        my_patchify,
        "write my_patchify(x): view x as (B, 1, 14, 2, 14, 2) (row block, row offset, column block, "
        "column offset), permute the two offsets in front of the 14 x 14 grid, reshape to (B, 4, 14, 14).",
    ):
        return False
    x = torch.arange(2 * 28 * 28, dtype=torch.float32).reshape(2, 1, 28, 28)
    try:
        got = my_patchify(x)
    except Exception as error:  # a student's function may fail in any way; report it
        print(f"Your function raised {type(error).__name__}: {error}")
        return False
    expected = F.pixel_unshuffle(x, 2)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        print(f"Not quite: expected shape {tuple(expected.shape)}, got {shape}.")
        return False
    if torch.equal(got, expected):
        print("Correct: each 2x2 patch became 4 channels of one 14x14 pixel; nothing was lost or mixed.")
        return True
    if torch.equal(got.sort(1).values, expected.sort(1).values):
        print("Almost: the right pixels are in each position but the channel order differs from 2*i + j.")
    else:
        print("Not quite: some pixels moved to the wrong place. Try x.view(B, 1, 14, 2, 14, 2).")
    return False


def check_ddim_grid(answer: list[int] | None, T: int = 1000, steps: int = 10) -> bool:
    """``answer``: the DDIM timesteps visited with trailing spacing, T = 1000, 10 steps (descending)."""
    if not_attempted(
        answer,
        f"list the {steps} timesteps DDIM visits, noisiest first: trailing spacing starts at T - 1 = {T - 1} "
        f"and steps down by T/steps = {T // steps}.",
    ):
        return False
    expected = timesteps(T, steps, "trailing")
    try:
        got = [int(v) for v in answer]
    except (TypeError, ValueError):
        print(f"Not quite: expected a list of {steps} integers, got {answer!r}.")
        return False
    if got == expected:
        print(f"Correct: {expected}; the first step starts from pure noise at t = {T - 1}.")
        return True
    if sorted(got) == expected[::-1]:
        print("Almost: the sampler walks from noise to data, so list the timesteps in descending order.")
    elif got == timesteps(T, steps, "leading"):
        print(f"That is the 'leading' grid: it starts at {got[0]}, never at pure noise ({T - 1}).")
    else:
        print(f"Not quite: trailing spacing is round(T - i*T/steps) - 1 for i = 0..{steps - 1}.")
    return False


def check_normalised_entropy(answer: float | None) -> bool:
    """``answer``: the normalised class entropy of 256 samples of which 128 are 1s and 128 are 7s."""
    if not_attempted(
        answer,
        "the class frequencies are p = (1/2, 1/2, 0, ..., 0); compute H = -Σ p_k log p_k and divide by "
        "log 10, the entropy of ten equally frequent digits.",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    expected = math.log(2) / math.log(10)
    if abs(value - expected) < 1e-3:
        print(f"Correct: log 2 / log 10 = {expected:.4f}. A model that makes only two digits scores 0.30.")
        return True
    if abs(value - math.log(2)) < 1e-3 or abs(value - 1.0) < 1e-3:
        print("Not quite: that is the unnormalised entropy (in nats or bits); divide by log 10.")
    else:
        print("Not quite: p = (0.5, 0.5, 0, ...); H = -sum p log p; normalise by log K with K = 10.")
    return False


def check_frechet_1d(answer: float | None) -> bool:
    """``answer``: the Fréchet distance between N(0, 1) and N(2, 4) (variance 4)."""
    if not_attempted(
        answer,
        "in one dimension d² = (μ1 - μ2)² + σ1² + σ2² - 2 σ1 σ2 with σ the standard deviations (variance 4 "
        "means σ = 2); compute it for N(0, 1) and N(2, 4).",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    expected = (0 - 2) ** 2 + 1 + 4 - 2 * math.sqrt(1 * 4)
    if abs(value - expected) < 1e-6:
        print("Correct: 4 + (1 - 2)^2 = 5. In 1-D the trace term is the squared gap between the std devs.")
        return True
    if abs(value - 4) < 1e-6:
        print("Not quite: the means differ by 2 (giving 4), but the spreads differ too (std 1 vs 2).")
    elif abs(value - 13) < 1e-6 or abs(value - 9) < 1e-6:
        print("Not quite: the trace term uses the standard deviations: 1 + 4 - 2 * sqrt(1 * 4).")
    else:
        print("Not quite: d^2 = (mu1 - mu2)^2 + (s1 - s2)^2 in one dimension, with s the std devs.")
    return False


def check_ema_window(answer: float | None, decay: float = 0.999) -> bool:
    """``answer``: roughly how many recent training steps an EMA with ``decay`` averages over."""
    if not_attempted(
        answer,
        f"the weights of k steps ago enter the EMA with weight (1 - d) d^k, d = {decay}: compute their "
        "mean age Σ k (1 - d) d^k (a geometric series), or where d^k has fallen to 1/e.",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    expected = 1 / (1 - decay)
    if abs(value - expected) <= 0.05 * expected:
        print(
            f"Correct: about 1/(1 - decay) = {expected:.0f} steps. A run much shorter than that would "
            "average in the random start, which is why fit() warms the decay up."
        )
        return True
    print("Not quite: the weight of a step k steps ago is (1 - d) d^k; its mean age is about 1/(1 - d).")
    return False
