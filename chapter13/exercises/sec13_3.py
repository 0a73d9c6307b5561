"""Self-checks for 13.3 text-to-image: the guidance conventions, the latent's compression and the
group count of a cross-attention block's GroupNorm.

Exercise 13.3.2 (guidance): write ``guided(eps_u, eps_c, w)`` in Ho & Salimans' convention (2022,
eq. 6), then say which w gives the unconditional model. Exercise 13.3.3 (latent diffusion): how many
times more numbers does one 28 x 28 digit hold than one 4 x 8 x 8 latent? Exercise 13.3.4
(cross-attention): the largest GroupNorm group count <= 32 that 48 channels allow.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from chapter13.attention import norm_groups
from chapter13.exercises import as_number, not_attempted


def reference_guided(eps_u: torch.Tensor, eps_c: torch.Tensor, w: float) -> torch.Tensor:
    """Ho & Salimans (2022), eq. 6: ε̃ = (1 + w) ε_c − w ε_u."""
    return (1 + w) * eps_c - w * eps_u


def check_guided_prediction(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] | None) -> bool:
    """Does ``fn(eps_u, eps_c, w)`` compute Ho & Salimans' eq. 6 for several w and shapes?"""
    if not_attempted(
        fn,
        "define guided(eps_u, eps_c, w) that returns Ho & Salimans' eq. 6 (the first equation of 13.3.2 "
        "above, written with w, not with s) and pass the function itself: check_guided_prediction(guided).",
    ):
        return False
    if not callable(fn):
        print(f"Expected a function guided(eps_u, eps_c, w), got {type(fn).__name__}.")
        return False
    g = torch.Generator().manual_seed(13)
    for w in (0.0, 1.0, 2.5, -1.0):
        eps_u = torch.randn(2, 1, 4, 4, generator=g)
        eps_c = torch.randn(2, 1, 4, 4, generator=g)
        try:
            got = fn(eps_u.clone(), eps_c.clone(), w)
        except Exception as error:  # a student's function may fail in any way
            print(f"Your function raised {type(error).__name__}: {error}")
            return False
        if not isinstance(got, torch.Tensor) or got.shape != eps_c.shape:
            print(f"Return a tensor shaped like eps_c {tuple(eps_c.shape)}; got {type(got).__name__}.")
            return False
        want = reference_guided(eps_u, eps_c, w)
        if not torch.allclose(got, want, atol=1e-5):
            hint = ""
            if torch.allclose(got, eps_u + w * (eps_c - eps_u), atol=1e-5):
                hint = " That is the s-convention ε_u + s(ε_c − ε_u) with s = w; eq. 6 has s = 1 + w."
            print(f"Not quite at w = {w}: eq. 6 weights ε_c by (1 + w) and ε_u by −w.{hint}")
            return False
    print("Correct: w = 0 gives the conditional model, w = -1 the unconditional one, and s = 1 + w.")
    return True


def check_unconditional_w(answer: float | None) -> bool:
    """Which w of eq. 6 gives the unconditional prediction ε_u?"""
    if not_attempted(
        answer,
        "set `w_unconditional` to the w for which eq. 6, (1 + w) ε_c − w ε_u, returns ε_u: "
        "which w makes the weight of ε_c zero?",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    if abs(value + 1.0) < 1e-9:
        print("Correct: w = -1, i.e. s = 0 in the package's convention.")
        return True
    print(f"Not quite: with w = {value:g}, (1 + w) ε_c − w ε_u still contains ε_c. Which w removes it?")
    return False


PIXELS = 1 * 28 * 28
LATENT = 4 * 8 * 8


def check_latent_ratio(answer: float | None) -> bool:
    """How many times more numbers a 1×28×28 image has than a 4×8×8 latent (784 / 256)?"""
    if not_attempted(
        answer,
        "set `ratio` to (numbers per image) / (numbers per latent): a digit is 1 x 28 x 28, "
        "the latent C x H x W = 4 x 8 x 8 (13.3.3).",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    want = PIXELS / LATENT
    if abs(value - want) < 0.01:
        print(
            f"Correct: {PIXELS} / {LATENT} = {want:.3f}. The measured speed-up per step is larger than "
            "this, because the latent U-Net has fewer levels and the attention runs on 64 positions."
        )
        return True
    if abs(value - 1 / want) < 0.01:
        print("Upside down: divide the image's count by the latent's.")
        return False
    print(f"Not quite: an image has 1 x 28 x 28 numbers and a latent C x H x W = 4 x 8 x 8; got {value:g}.")
    return False


CROSS_ATTENTION_CHANNELS = 48
"""The channel count of Exercise 13.3.4 (the book's ``CrossAttentionBlock(48)`` fails on it)."""


def check_group_count(answer: float | None) -> bool:
    """Exercise 13.3.4: the largest G <= 32 for which ``nn.GroupNorm(G, 48)`` works (G divides 48)."""
    channels = CROSS_ATTENTION_CHANNELS
    if not_attempted(
        answer,
        f"set `groups` to the largest G <= 32 that divides {channels} "
        f"(GroupNorm splits the {channels} channels into G equal groups).",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    want = norm_groups(channels)
    if value == want:
        print(
            f"Correct: {channels} = {want} x {channels // want}, and no G from {want + 1} to 32 divides "
            f"{channels}. chapter13.attention.norm_groups({channels}) picks the same."
        )
        return True
    if value > 32:
        print(f"{value:g} is more than the 32 groups the book asks for; look for a divisor <= 32.")
    elif value <= 0 or value != int(value) or channels % int(value):
        print(f"Not quite: {channels} / {value:g} is not a whole number of channels per group.")
    else:
        print(f"{value:g} divides {channels}, but a larger G <= 32 does too.")
    return False
