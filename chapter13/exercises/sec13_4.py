"""Self-checks for the exercises of notebook 13.4 (video and audio diffusion).

Each checker prints what is wrong (or "not attempted yet" for ``None``) and returns False, or prints a
confirmation and returns True. None of them raises on a student's answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from chapter13.exercises import as_number, not_attempted


def _reference_consistency(pred: torch.Tensor, target: torch.Tensor) -> float:
    e = (pred - target).double()
    return float(e.pow(2).mean() + 0.5 * (e[:, :, 1:] - e[:, :, :-1]).pow(2).mean())


CONSISTENCY_HINT = (
    "my_consistency_loss(pred, target) should return the per-frame MSE, mean((pred - target)^2), plus "
    "0.5 x the MSE of the frame differences, mean((Δpred - Δtarget)^2) with Δz_f = z_{f+1} - z_f "
    "(the equation of 13.4.3). In (B, C, F, H, W) the frames are dim 2: Δz = z[:, :, 1:] - z[:, :, :-1]."
)


def check_consistency_loss(fn: Callable[[torch.Tensor, torch.Tensor], Any] | None) -> bool:
    """Exercise 13.4.3a: ``fn(pred, target)`` on clips (B, C, F, H, W) returns per-frame MSE plus
    0.5 × the MSE of the differences between consecutive frames (frame axis 2).

    ``None``, or a function that still returns ``None`` (the notebook's template), counts as not
    attempted."""
    if not_attempted(fn, CONSISTENCY_HINT):
        return False
    if not callable(fn):
        print(f"Expected a function my_consistency_loss(pred, target), got {type(fn).__name__}.")
        return False
    gen = torch.Generator().manual_seed(13)
    cases = [
        (torch.randn(2, 1, 5, 4, 4, generator=gen), torch.randn(2, 1, 5, 4, 4, generator=gen)),
        (torch.randn(1, 3, 4, 2, 2, generator=gen), torch.randn(1, 3, 4, 2, 2, generator=gen)),
    ]
    for i, (pred, target) in enumerate(cases):
        try:
            value = fn(pred.clone(), target.clone())
            if value is None and i == 0 and not_attempted(value, CONSISTENCY_HINT):
                return False
            got = float(value)
        except Exception as error:
            print(f"case {i}: your function raised {type(error).__name__}: {error}")
            return False
        want = _reference_consistency(pred, target)
        if math.isnan(got):
            print(
                f"case {i} (shape {tuple(pred.shape)}): got NaN. Did you difference along dim 1? In "
                "(B, C, F, H, W) the frames are dim 2; with C = 1, x[:, 1:] is empty and its mean is NaN."
            )
            return False
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6):
            hint = ""
            frame_only = float((pred - target).double().pow(2).mean())
            if math.isclose(got, frame_only, rel_tol=1e-4):
                hint = " That is the per-frame MSE alone: add 0.5 x the frame-difference MSE."
            print(f"case {i} (shape {tuple(pred.shape)}): got {got:.6f}, expected {want:.6f}.{hint}")
            return False
    print("Correct: per-frame MSE + 0.5 x MSE of the frame differences, along the frame axis (dim 2).")
    return True


def check_samples_per_period(answer: float | None) -> bool:
    """Exercise 13.4.2a: how many samples does one period of C5 (523.25 Hz) last at 4000 Hz?"""
    if not_attempted(
        answer,
        "one period of a tone at f Hz lasts 1 / f seconds, and 4000 samples pass per second: "
        "multiply the two.",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    want = 4000 / 523.25
    if math.isclose(value, want, rel_tol=0.01):
        print(
            f"Correct: {want:.2f} samples. A kernel-5 convolution sees less than one period, which is why "
            "the network needs several down-sampling levels and attention to hold one pitch for 2048 samples "
            "(the chapter's two kernel-3 layers see 5)."
        )
        return True
    if math.isclose(value, 523.25 / 4000, rel_tol=0.01):
        print("That is f / sample_rate (periods per sample); invert it.")
    else:
        print(f"{value} is not right: samples per period = sample_rate / frequency.")
    return False


def check_dominant_frequency(fn: Callable[[np.ndarray, float], Any] | None) -> bool:
    """Exercise 13.4.2b: ``fn(wave, sample_rate)`` returns the frequency (Hz) of the largest spectral
    peak of a 1-D NumPy waveform, within 1 %. ``None``, or a function that returns ``None`` (the
    notebook's template), counts as not attempted."""
    hint = (
        "my_dominant_frequency(wave, sample_rate) should take the magnitude spectrum "
        "np.abs(np.fft.rfft(wave)) without its 0 Hz bin (subtract the mean first), find the bin k of its "
        "largest value and return k * sample_rate / N, N the FFT length."
    )
    if not_attempted(fn, hint):
        return False
    if not callable(fn):
        print(f"Expected a function my_dominant_frequency(wave, sample_rate), got {type(fn).__name__}.")
        return False
    sr, n = 4000, 2048
    t = np.arange(n) / sr
    rng = np.random.default_rng(4)
    for freq in (261.63, 440.0, 523.25, 1234.5):
        wave = 0.3 + 0.6 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6)) + 0.05 * rng.standard_normal(n)
        try:
            value = fn(wave, sr)
            if value is None and freq == 261.63 and not_attempted(value, hint):
                return False
            got = float(value)
        except Exception as error:
            print(f"your function raised {type(error).__name__}: {error}")
            return False
        if not math.isclose(got, freq, rel_tol=0.01):
            hint = ""
            if got == 0.0:
                hint = " The largest bin is DC (the mean 0.3): subtract the mean or skip bin 0."
            elif math.isclose(got, freq * n / sr, rel_tol=0.02) or got > sr:
                hint = " That looks like a bin index: convert with k * sample_rate / len(wave)."
            print(f"for a {freq} Hz tone you returned {got:.2f} Hz.{hint}")
            return False
    print("Correct: the largest peak of the magnitude spectrum, away from DC, converted to Hz.")
    return True


def check_factorised_cost(answer: float | None) -> bool:
    """Exercise 13.4.1: how many times more multiply-adds per voxel does a 3×3×3 ``Conv3d`` (C -> C
    channels) cost than a 3×3 spatial convolution followed by a 3-tap temporal one?"""
    if not_attempted(
        answer,
        "per voxel, a kernel with k taps from C to C channels costs k·C² multiply-adds. Count the taps "
        "of the 3×3×3 kernel and of the 3×3 and 3-tap pair, and divide.",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    if math.isclose(value, 27 / 12, rel_tol=0.01):
        print("Correct: 27 C^2 against 9 C^2 + 3 C^2 = 12 C^2, 2.25 times as much.")
        return True
    if math.isclose(value, 27 / 9, rel_tol=0.01):
        print("You compared with the spatial convolution alone; add the temporal one (3 taps).")
    elif math.isclose(value, 27 / 3, rel_tol=0.01):
        print("You compared with the temporal convolution alone; add the spatial one (3x3 = 9 taps).")
    else:
        print(f"{value} is not right: a k1 x k2 x k3 kernel has k1*k2*k3 taps per input-output channel pair.")
    return False


def check_reversed_warp_error(answer: float | None) -> bool:
    """Exercise 13.4.3b: the warping error of a real clip played backwards (to 3 decimals)."""
    if not_attempted(
        answer,
        "reverse the frame axis (dim 2) of `real` with .flip, measure it with warp_error (13.4.3) and "
        "average over the clips; or think: what does a clip played backwards show?",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    if abs(value) < 5e-4:
        print(
            "Correct: 0. Played backwards a digit still only translates, so every frame is its "
            "predecessor shifted. The warping error measures consistency, not the direction of time."
        )
        return True
    print(f"{value} is not right. A real clip backwards is still one digit moving in straight lines.")
    return False
