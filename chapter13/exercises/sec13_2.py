"""Self-checks for 13.2 Diffusion models.

Every checker prints what is wrong (or "not attempted yet" for ``None``) and returns False, or prints a
confirmation and returns True; it never raises, so the notebook runs top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from chapter13.diffusion import NoiseSchedule
from chapter13.exercises import as_number, not_attempted

__all__ = [
    "SCHEDULE_FAMILIES",
    "check_ddpm_eta",
    "check_q_sample",
    "check_respaced_beta",
    "check_reverse_mean",
    "check_snr_crossing",
    "snr_crossing",
]


def _call(fn: Callable, *args: object) -> torch.Tensor | None:
    try:
        return fn(*args)
    except Exception as error:  # a student's function may fail in any way; report it, do not raise
        print(f"Your function raised {type(error).__name__}: {error}")
        return None


def check_q_sample(my_q_sample: Callable | None) -> bool:
    """``my_q_sample(x0, t, noise, alpha_bars) -> x_t`` must implement DDPM eq. 4 for (B, C, H, W) x0."""
    if not_attempted(
        my_q_sample,
        "write my_q_sample(x0, t, noise, alpha_bars) that returns sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) noise "
        "(DDPM eq. 4) with ᾱ_t = alpha_bars[t] reshaped to (B, 1, 1, 1), and pass it in.",
    ):
        return False
    schedule = NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(13)
    x0 = torch.rand(4, 1, 5, 5, generator=g) * 2 - 1
    noise = torch.randn(4, 1, 5, 5, generator=g)
    t = torch.tensor([0, 10, 500, 999])
    got = _call(my_q_sample, x0, t, noise, schedule.alpha_bars.float())
    if got is None:
        return False
    expected = schedule.q_sample(x0, t, noise)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        print(f"Not quite: expected a tensor of shape {tuple(expected.shape)}, got {shape}.")
        return False
    if torch.allclose(got.float(), expected, atol=1e-5):
        print("Correct: x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε, one ᾱ per example.")
        return True
    wrong_alpha = torch.sqrt(1 - schedule.betas[t]).float().view(-1, 1, 1, 1)
    if torch.allclose(got.float(), wrong_alpha * x0 + (1 - wrong_alpha**2).sqrt() * noise, atol=1e-5):
        print("Not quite: you used α_t = 1 - β_t (the book's error); eq. 4 needs the cumulative ᾱ_t.")
    else:
        print(
            "Not quite: compare with eq. 4; remember to reshape ᾱ[t] to (B, 1, 1, 1) so that it "
            "broadcasts over the image."
        )
    return False


SCHEDULE_FAMILIES = ("linear", "cosine", "quadratic", "sigmoid")


def snr_crossing(schedule: NoiseSchedule) -> int:
    """The first t (0-based) at which SNR(t) = ᾱ_t/(1 - ᾱ_t) drops below 1 (i.e. ᾱ_t < 1/2).

    For the cosine schedule with T = 1000 that is t = 496, not the midpoint 499: ᾱ_t = f(t+1)/f(0)
    with f(u) = cos²((u/T + s)/(1 + s) · π/2) crosses 1/2 where (u/T + s)/(1 + s) = 1/2 (a little
    later, for the division by f(0) ≈ 0.99984), i.e. at u/T ≈ 0.49605 for s = 0.008.
    """
    below = (schedule.snr < 1).nonzero()
    if len(below) == 0:
        raise ValueError(f"the SNR of {schedule!r} never drops below 1")
    return int(below[0])


def check_snr_crossing(answer: int | None, family: str = "cosine", T: int = 1000) -> bool:
    """``answer``: the first timestep t (0-based) at which the SNR of ``family`` falls below 1."""
    if not_attempted(
        answer,
        f"SNR(t) = ᾱ_t / (1 - ᾱ_t) falls below 1 where ᾱ_t falls below 1/2: find the first index t "
        f"with {family}.alpha_bars[t] < 0.5 (a boolean tensor's .nonzero() or .int().argmax()).",
    ):
        return False
    if family not in SCHEDULE_FAMILIES:
        print(f"Unknown schedule family {family!r}; choose one of {SCHEDULE_FAMILIES}.")
        return False
    truth = snr_crossing(getattr(NoiseSchedule, family)(T))
    try:
        value = int(answer)  # an int, a NumPy integer or a one-element tensor
        integral = not isinstance(answer, bool) and float(answer) == value
    except (TypeError, ValueError, RuntimeError):
        integral = False
    if not integral:
        print(f"Not quite: the answer should be an integer timestep, got {answer!r}.")
        return False
    if value == truth:
        print(f"Correct: t = {truth} (t/T = {truth / T:.3f}); there ᾱ_t crosses 1/2.")
        return True
    if family == "cosine" and value in (T // 2 - 1, T // 2):
        print(
            f"Not quite: {value} is the midpoint of cos² without the offset s = 0.008; with it, "
            "(t/T + s)/(1 + s) = 1/2 comes a little earlier. Look at alpha_bars itself."
        )
        return False
    hint = "later" if value < truth else "earlier"
    print(f"Not quite: {value} is off; look {hint}. SNR < 1 means ᾱ_t < 0.5: use (schedule.snr < 1).")
    return False


def check_reverse_mean(my_reverse_mean: Callable | None) -> bool:
    """``my_reverse_mean(x_t, t, eps, betas, alpha_bars) -> μ_θ`` must implement DDPM eq. 11 (t an int)."""
    if not_attempted(
        my_reverse_mean,
        "write my_reverse_mean(x_t, t, eps, betas, alpha_bars) that returns (x_t - β_t / sqrt(1 - ᾱ_t) "
        "· eps) / sqrt(α_t) (DDPM eq. 11) with α_t = 1 - β_t and ᾱ_t = alpha_bars[t], and pass it in.",
    ):
        return False
    schedule = NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(7)
    x_t = torch.randn(3, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 2, generator=g, dtype=torch.float64)
    for t in (999, 400, 1):
        got = _call(my_reverse_mean, x_t, t, eps, schedule.betas, schedule.alpha_bars)
        if got is None:
            return False
        expected = schedule.ddpm_step(x_t, t, eps, noise=torch.zeros_like(x_t), clip=False)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            print(f"Not quite: expected a tensor shaped like x_t {tuple(x_t.shape)}.")
            return False
        if not torch.allclose(got.to(expected), expected, atol=1e-6):
            print(
                f"Not quite at t={t}: μ = (x_t - β_t / sqrt(1 - ᾱ_t) · ε) / sqrt(α_t), with α_t = 1 - β_t "
                "and ᾱ_t the cumulative product."
            )
            return False
    print("Correct: that is DDPM eq. 11, the mean of every ancestral step.")
    return True


def check_ddpm_eta(answer: float | None) -> bool:
    """``answer``: the η for which DDIM's σ_t (eq. 16) equals the DDPM posterior's sqrt(β̃_t)."""
    if not_attempted(
        answer,
        "set eta_ddpm to the η at which DDIM's σ_t (eq. 16) with prev = t - 1 equals DDPM's sqrt(β̃_t) "
        "(eq. 7); use 1 - ᾱ_t/ᾱ_{t-1} = β_t.",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    if math.isclose(value, 1.0):
        print("Correct: with η = 1, σ_t² = (1-ᾱ_{t-1})/(1-ᾱ_t) · (1-ᾱ_t/ᾱ_{t-1}) = β̃_t, DDPM's variance.")
        return True
    if math.isclose(value, 0.0):
        print("Not quite: η = 0 is deterministic DDIM (no noise at all); DDPM adds noise every step.")
    else:
        print("Not quite: write σ_t of eq. 16 for prev = t - 1 and compare it with β̃_t of DDPM eq. 7.")
    return False


def check_respaced_beta(my_beta: Callable | None) -> bool:
    """``my_beta(alpha_bar_t, alpha_bar_prev) -> β'``: the variance of one jump t -> prev (respacing)."""
    if not_attempted(
        my_beta,
        "write my_beta(alpha_bar_t, alpha_bar_prev): a jump from prev to t keeps the product of the "
        "skipped α's of the signal (in terms of ᾱ_t and ᾱ_prev); β' is the rest, and pass it in.",
    ):
        return False
    schedule = NoiseSchedule.linear(1000)
    ab = schedule.alpha_bars
    for t, prev in ((999, 979), (500, 250), (19, -1)):
        ab_prev = torch.tensor(1.0, dtype=torch.float64) if prev < 0 else ab[prev]
        got = _call(my_beta, ab[t], ab_prev)
        if got is None:
            return False
        expected = 1 - ab[t] / ab_prev
        try:
            ok = math.isclose(float(got), float(expected), rel_tol=1e-6)
        except (TypeError, ValueError):
            print(f"Not quite: return a number (or a 0-d tensor), got {type(got).__name__}.")
            return False
        if not ok:
            print(
                f"Not quite for the jump {t} -> {prev}: the product of the skipped α's is ᾱ_t/ᾱ_prev, "
                "so β' = 1 - ᾱ_t/ᾱ_prev (not β_t)."
            )
            return False
    print("Correct: β' = 1 - ᾱ_t/ᾱ_prev keeps the marginals of the full chain (Nichol & Dhariwal §4).")
    return True
