"""Self-check for 13.7 take-aways: the categorical causal-inference observer, by hand."""

from __future__ import annotations

from typing import Any

from chapter13.exercises import as_number, not_attempted

EXERCISE_P_VISUAL = {3: 0.9, 8: 0.1}
"""The visual stream's posterior (every other digit 0)."""
EXERCISE_P_AUDITORY = {3: 0.2, 8: 0.8}
"""The auditory stream's posterior (every other digit 0)."""
EXERCISE_P_COMMON = 0.5
EXERCISE_DIGITS = 10
"""A flat prior over the ten digits: π_k = 1/10."""


def common_cause_answer(
    p_visual: dict[int, float] = EXERCISE_P_VISUAL,
    p_auditory: dict[int, float] = EXERCISE_P_AUDITORY,
    p_common: float = EXERCISE_P_COMMON,
    n_digits: int = EXERCISE_DIGITS,
) -> float:
    """p(C=1 | v, a) = p_c Λ / (p_c Λ + 1 - p_c) with Λ = Σ_k q_V(k) q_A(k) / π_k and π_k = 1/n_digits."""
    ratio = sum(p * p_auditory.get(k, 0.0) for k, p in p_visual.items()) * n_digits
    return p_common * ratio / (p_common * ratio + 1.0 - p_common)


def check_common_cause(answer: Any) -> bool:
    """The exercise: the visual stream says '3' with 0.9 and '8' with 0.1, the auditory stream '3' with
    0.2 and '8' with 0.8 (every other digit 0 in both), the class prior is flat over the ten digits and
    p_common = 0.5. What is p(C=1 | v, a)?"""
    if not_attempted(answer, "set `p_one_cause` to p(C=1 | v, a), a probability."):
        return False
    value = as_number(answer)
    if value is None:
        return False
    want = common_cause_answer()
    if abs(value - want) < 5e-3:
        print(
            f"Correct: Λ = 10 × (0.9 × 0.2 + 0.1 × 0.8) = 2.6, so p(C=1 | v, a) = 0.5 × 2.6 / (0.5 × 2.6 + 0.5) "
            f"= {want:.3f}. The senses disagree on the digit, yet both point at the same two of ten digits, "
            "which two independent causes would rarely do."
        )
        return True
    no_prior = common_cause_answer(n_digits=1)
    if abs(value - no_prior) < 5e-3:
        print(
            f"Not quite: {value:.3f} forgets the prior in Λ = Σ_k q_V(k) q_A(k) / π_k. Under two causes the "
            "digits would coincide only by chance, with probability π_k each: divide by π_k = 1/10."
        )
        return False
    if not 0.0 <= value <= 1.0:
        print(f"Not quite: a probability lies in [0, 1], got {value}.")
        return False
    print(
        f"Not quite: {value:.3f}. Compute Λ = Σ_k q_V(k) q_A(k) / π_k over the digits, then "
        "p(C=1 | v, a) = p_c Λ / (p_c Λ + 1 - p_c)."
    )
    return False
