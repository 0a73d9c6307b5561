"""Self-checks for the exercises of 13.5 (neural multimodal integration).

Exercise numbers follow the notebook's sections: 13.5.2a-d (cue combination, causal inference, McGurk,
attention), 13.5.3a-b (the hierarchy), 13.5.4 (the flash-beep illusion); the three "beyond the chapter"
sections have one each (multisensory neurons, temporal coincidence, fitting to data).

Each ``check_*`` prints what is wrong (or "not attempted yet" for ``None``) and returns False, or
prints a confirmation and returns True. None of them raises on a student's answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from chapter13 import neuro
from chapter13.exercises import as_number, not_attempted

__all__ = [
    "REFERENCE_CASES",
    "check_attention_gain",
    "check_common_cause_threshold",
    "check_enhancement",
    "check_far_button",
    "check_flash_alone",
    "check_lag_sign",
    "check_mcgurk_settings",
    "check_mle_sigma",
    "check_product_of_experts",
    "check_receptive_field",
]


def _close(answer: Any, want: float, tol: float, hint: str, unit: str = "") -> bool:
    value = as_number(answer)
    if value is None:
        return False
    if abs(value - want) <= tol:
        print(f"Correct: {want:.4g}{unit}.")
        return True
    print(f"Not quite: you have {value:.4g}{unit}. {hint}")
    return False


def check_mle_sigma(answer: float | None) -> bool:
    """Exercise 13.5.2a: the combined standard deviation of a visual cue (sigma 2) and an auditory cue
    (sigma 4) under maximum-likelihood combination."""
    if not_attempted(
        answer,
        "reliabilities add: 1 / sigma_VA^2 = 1 / sigma_V^2 + 1 / sigma_A^2 (the maximum-likelihood rule of "
        "13.5.2). Set `combined_sigma` to the sigma_VA that follows.",
    ):
        return False
    want = 1 / math.sqrt(1 / 2**2 + 1 / 4**2)
    return _close(answer, want, 0.01, "Add the precisions 1/sigma^2, then take 1/sqrt of the sum.")


def check_common_cause_threshold(answer: float | None) -> bool:
    """Exercise 13.5.2b: with Körding's sigmas, p_common = 0.5 and x_a = 0, the visual measurement x_v
    (> 0) at which p(C=1 | x) falls to 0.5."""
    if not_attempted(
        answer,
        "evaluate neuro.causal_inference_posterior(x_v, 0.0, **(KORDING_2007 | dict(p_common=0.5))) on a "
        "fine grid of x_v > 0 and set `threshold` to the first x_v where it drops below 0.5 (degrees).",
    ):
        return False
    k = neuro.KORDING_2007

    def gap(x: float) -> float:
        return (
            float(neuro.causal_inference_posterior(x, 0.0, k["sigma_v"], k["sigma_a"], k["sigma_p"], 0.5))
            - 0.5
        )

    want = brentq(gap, 0.0, 100.0)
    return _close(
        answer,
        want,
        0.1,
        "Evaluate causal_inference_posterior on a fine grid of x_v (or use brentq).",
        " deg",
    )


def check_mcgurk_settings(settings: dict | None) -> bool:
    """Exercise 13.5.2c: an observer (sigma_a, sigma_v, p_common) that hears auditory "ba" + visual "ga"
    as "da" at least 85 % of the time while still hearing congruent "ba" as "ba" at least 90 %."""
    if not_attempted(
        settings,
        "try settings in neuro.mcgurk_responses('ba', 'ga', sigma_a=..., sigma_v=..., p_common=...) and "
        "neuro.mcgurk_responses('ba', 'ba', ...) (or move the McGurk widget's sliders) until both numbers "
        "pass, then set `settings = dict(sigma_a=..., sigma_v=..., p_common=...)`.",
    ):
        return False
    try:
        args = {key: float(settings[key]) for key in ("sigma_a", "sigma_v", "p_common")}
        fusion = neuro.mcgurk_responses("ba", "ga", **args)["da"]
        congruent = neuro.mcgurk_responses("ba", "ba", **args)["ba"]
    except (KeyError, TypeError, ValueError) as error:
        print(f"Could not evaluate these settings: {error}")
        return False
    if fusion >= 0.85 and congruent >= 0.9:
        print(f'Correct: "da" {fusion:.0%} for AbaVga, "ba" {congruent:.0%} for AbaVba.')
        return True
    print(
        f'Not yet: "da" {fusion:.0%} for AbaVga (need >= 85 %), "ba" {congruent:.0%} for AbaVba (need >= 90 %). '
        "Which cue must be trusted more, and how sure must the observer be that voice and face belong together?"
    )
    return False


def check_flash_alone(answer: float | None) -> bool:
    """Exercise 13.5.4: probability that the flash-beep observer (sigma_v = 0.7, counts 1-4 equally
    likely a priori) reports one flash for one flash and no beep."""
    if not_attempted(
        answer,
        "with a flat prior the report is the count nearest to x_v ~ N(1, 0.7^2), so it is 1 when x_v < 1.5: "
        "set `p_one` to that probability (scipy.stats.norm.cdf).",
    ):
        return False
    want = float(norm.cdf(0.5 / 0.7))
    return _close(
        answer, want, 0.01, "With a flat prior the report is the count nearest to x_v: when is x_v < 1.5?"
    )


def check_enhancement(answer: float | None) -> bool:
    """Exercise (multisensory neurons): the enhancement index of a neuron firing 30 spikes/s to the
    combined stimulus and 12 and 8 spikes/s to vision and sound alone."""
    if not_attempted(
        answer,
        "ME = 100 (CM - SM_max) / SM_max with CM the combined response and SM_max the best single one; "
        "set `enhancement_answer` to it in percent.",
    ):
        return False
    return _close(answer, 150.0, 0.5, "Divide by the best unisensory response, not by their sum.", " %")


def check_lag_sign(answer: int | None) -> bool:
    """Exercise (temporal coincidence): the sign (+1 or -1) of the correlation detector's time-averaged
    lag output when the sound comes 100 ms before the flash."""
    if not_attempted(
        answer,
        "the figure above plots MCD_lag against the sound's delay; a sound 100 ms early is a delay of "
        "-100 ms. Set `lag_sign` to +1 or -1 (or run neuro.correlation_detector on two clicks).",
    ):
        return False
    t = np.arange(0, 1.0, 1e-3)
    flash, click = np.zeros_like(t), np.zeros_like(t)
    flash[300], click[200] = 1e3, 1e3
    want = int(np.sign(neuro.correlation_detector(flash, click, 1e-3)["lag_mean"]))
    value = as_number(answer)
    if value is None:
        return False
    if int(np.sign(value)) == want:
        print(f"Correct: {want:+d}. The subunit that delays the leading modality wins.")
        return True
    print("Not quite: which subunit, u_1 (delayed vision x sound) or u_2 (vision x delayed sound), lines up?")
    return False


def check_receptive_field(answer: int | None) -> bool:
    """Exercise 13.5.3a: the receptive field (pixels) of a unit after a fourth 3x3 convolution (stride
    1) added after the IT stage of :class:`chapter13.hierarchy.HierarchicalCNN`."""
    if not_attempted(
        answer,
        "apply r_out = r_in + (k - 1) j_in once more to the IT stage's receptive field and unit spacing "
        "(printed above); set `rf_next` to the result in pixels.",
    ):
        return False
    return _close(
        answer, 20.0, 0.0, "After two poolings neighbouring IT units are 4 pixels apart: r + (k-1) j."
    )


def check_product_of_experts(combine: Callable | None) -> bool:
    """Exercise 13.5.3b: ``combine(p_visual, p_auditory)`` returns the class probabilities of an ideal
    observer with conditionally independent cues and a flat class prior (each input ``(K,)``)."""
    if not_attempted(
        combine,
        "Bayes' rule with conditionally independent cues and a flat prior: p(k | v, a) is proportional "
        "to p(k | v) p(k | a). Define `combine(p_visual, p_auditory)` to return it, normalised to sum to 1.",
    ):
        return False
    cases = [
        (np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.6, 0.3])),
        (np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.25, 0.25])),
        (np.array([0.9, 0.05, 0.05]), np.array([1 / 3, 1 / 3, 1 / 3])),
    ]
    for p_v, p_a in cases:
        want = p_v * p_a / np.sum(p_v * p_a)
        try:
            got = np.asarray(combine(p_v.copy(), p_a.copy()), dtype=float)
        except Exception as error:  # a student's function may fail in any way
            print(f"Your function raised {type(error).__name__}: {error}")
            return False
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-6):
            print(
                f"Not quite: for p_v={p_v}, p_a={p_a} you return {np.round(got, 3)}, the ideal observer "
                f"says {np.round(want, 3)}. Multiply the likelihoods, then normalise."
            )
            return False
    print("Correct: the product of experts, p(k | v, a) ∝ p(k | v) p(k | a) with a flat prior.")
    return True


def check_far_button(answer: float | None) -> bool:
    """Exercise 9: an observer with Körding et al.'s sigma_A = 9.2° and sigma_P = 12.3° (prior centred
    at 0°), no motor noise and a 5 % lapse rate hears a sound alone at 0° and presses one of five
    buttons at -10°, -5°, 0°, 5°, 10°. The probability that it presses the -10° button (exercise of
    "from model to data")."""
    if not_attempted(
        answer,
        "the estimate w x_A, w = sigma_P^2 / (sigma_A^2 + sigma_P^2), is Gaussian with sd w sigma_A; the "
        "-10° button is pressed when it falls below -7.5°, plus the lapses: (1 - 0.05) p + 0.05 / 5. Set "
        "`p_far` to that probability.",
    ):
        return False
    k = neuro.KORDING_2007
    want = float(
        neuro.unimodal_response_probabilities(
            0.0, k["sigma_a"], k["sigma_p"], neuro.KORDING_BUTTONS, lapse=0.05
        )[0]
    )
    return _close(
        answer,
        want,
        0.002,
        "The estimate w x_A is Gaussian with sd w sigma_A, w = sigma_P^2 / (sigma_A^2 + sigma_P^2); the -10° "
        "button is nearest below -7.5°; then mix in the lapses: (1 - 0.05) p + 0.05 / 5.",
    )


def check_attention_gain(answer: float | None) -> bool:
    """Exercise 13.5.2d: vision has sigma_V = 4° and audition sigma_A = 8°; the gain on audition's
    reliability (:func:`chapter13.neuro.attended_sigma`) that makes the two weights equal."""
    if not_attempted(
        answer,
        "a gain g on audition's reliability makes it g / sigma_A^2 (neuro.attended_sigma); the weights "
        "are equal when the two reliabilities are (13.5.2's rule w_i ∝ 1 / sigma_i^2). Solve for g and set "
        "`attention_gain` to it.",
    ):
        return False
    value = as_number(answer)
    if value is None:
        return False
    if value <= 0:
        print(f"A gain must be positive (it multiplies the reliability), got {value:g}.")
        return False
    _, _, weights = neuro.mle_combine([0.0, 0.0], [4.0, float(neuro.attended_sigma(8.0, value))])
    if abs(weights[1] - 0.5) <= 0.005:
        print(
            f"Correct: a gain of {value:g} makes audition's reliability {value:g} / 8^2 = 1 / 4^2, vision's: "
            "equal weights (sigma_A falls from 8° to 4°)."
        )
        return True
    if math.isclose(value, 2.0, rel_tol=0.01):
        print(
            "Not quite: dividing sigma_A by 2 would do it, but the gain multiplies the reliability "
            "1 / sigma^2, so sigma falls by sqrt(g)."
        )
        return False
    print(f"Not quite: with a gain of {value:g} audition's weight is {weights[1]:.3f}, not 0.5.")
    return False


def _reference_combine(p_v: np.ndarray, p_a: np.ndarray) -> np.ndarray:
    product = p_v * p_a
    return product / product.sum()


REFERENCE_CASES: list[tuple[str, Any, Any]] = [
    ("check_mle_sigma", 1.7889, 3.0),
    ("check_common_cause_threshold", 9.597, 20.0),
    ("check_mcgurk_settings", dict(sigma_a=0.7, sigma_v=0.25, p_common=0.98), dict(neuro.MCGURK_DEFAULTS)),
    ("check_flash_alone", 0.7625, 1.0),
    ("check_enhancement", 150.0, 50.0),
    ("check_lag_sign", -1, 1),
    ("check_receptive_field", 20, 14),
    ("check_product_of_experts", _reference_combine, lambda p_v, p_a: (p_v + p_a) / 2),
    ("check_far_button", 0.1067, 0.2071),  # wrong: the prior forgotten (sd sigma_A instead of w sigma_A)
    ("check_attention_gain", 4.0, 2.0),  # wrong: a gain on sigma instead of on the reliability
]
"""(checker, a right answer, a wrong answer), used by the unit tests."""
