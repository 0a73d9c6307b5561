"""Published models of multisensory perception (section 13.5), in NumPy and SciPy only.

The chapter's ``simulate_cross_modal_binding`` (kept as printed in :mod:`chapter13.book.sec13_5`)
mixes a visual and an auditory cue with fixed weights 0.4/0.6 and returns a hard-coded "da" when the
congruence lies between 0.3 and 0.7. This module holds the models from the literature that replace it:

========================================  ==========================================================
model                                      functions
========================================  ==========================================================
maximum-likelihood cue combination         :func:`mle_combine` (Ernst & Banks 2002; Alais & Burr 2004)
attention as a gain on a cue's reliability  :func:`attended_sigma` (feeds any function here)
Bayesian causal inference                  :func:`causal_inference_posterior`,
                                           :func:`causal_inference_estimate`,
                                           :func:`simulate_responses`, :func:`expected_responses`,
                                           :func:`ventriloquist_bias` (Körding et al. 2007; Wozny,
                                           Beierholm & Shams 2010)
responses to the localisation task         :func:`button_probabilities`,
                                           :func:`unimodal_response_probabilities`,
                                           :func:`response_probabilities`,
                                           :func:`unity_judgement_probability`,
                                           :func:`simulate_localization_trials`,
                                           :func:`simulate_unimodal_trials` (nearest button, motor
                                           noise, lapses, unity judgements; fitted by
                                           :mod:`chapter13.fitting`)
fuzzy logical model of perception          :func:`flmp`, :func:`flmp_binary` (Massaro)
McGurk effect                              :func:`mcgurk_posterior`, :func:`mcgurk_responses`,
                                           :func:`mcgurk_congruence_curve` (causal inference over a
                                           syllable space, after Magnotti & Beauchamp 2017);
                                           :func:`ned_mcgurk_probability` (Magnotti & Beauchamp 2015)
sound-induced flash illusion               :func:`flash_beep_posterior`,
                                           :func:`flash_beep_report_probabilities`,
                                           :func:`flash_beep_table` (Shams et al. 2000, 2005)
multisensory neurons                       :func:`enhancement_index`, :func:`additivity_index`,
                                           :func:`normalization_neuron` (Meredith & Stein; Ohshiro et
                                           al. 2011)
learning from temporal coincidence         :func:`correlation_detector` (Parise & Ernst 2016),
                                           :func:`hebbian_association` (covariance rule)
========================================  ==========================================================

Every function accepts scalars or NumPy arrays that broadcast against each other, and raises a
``ValueError`` that says what is wrong for a zero or negative standard deviation, a probability
outside [0, 1], or arrays whose shapes do not match. Nothing here imports torch; the hierarchical
network of 13.5.3 lives in :mod:`chapter13.hierarchy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal as sps
from scipy import special

__all__ = [
    "FLASH_BEEP_DEFAULTS",
    "KORDING_2007",
    "KORDING_BUTTONS",
    "MCGURK_DEFAULTS",
    "STRATEGIES",
    "SYLLABLES",
    "UNITY_DECISIONS",
    "SyllableSpace",
    "additivity_index",
    "attended_sigma",
    "button_edges",
    "button_probabilities",
    "causal_inference_estimate",
    "causal_inference_posterior",
    "correlation_detector",
    "enhancement_index",
    "expected_responses",
    "flash_beep_posterior",
    "flash_beep_report_probabilities",
    "flash_beep_table",
    "flmp",
    "flmp_binary",
    "fused_estimate",
    "gamma_kernel",
    "hebbian_association",
    "likelihood_common",
    "likelihood_separate",
    "mcgurk_congruence_curve",
    "mcgurk_posterior",
    "mcgurk_responses",
    "mle_combine",
    "ned_mcgurk_probability",
    "normalization_neuron",
    "response_probabilities",
    "segregated_estimates",
    "simulate_localization_trials",
    "simulate_responses",
    "simulate_unimodal_trials",
    "unimodal_response_probabilities",
    "unity_judgement_probability",
    "ventriloquist_bias",
]

KORDING_2007: dict[str, float] = dict(sigma_v=2.14, sigma_a=9.2, sigma_p=12.3, p_common=0.28)
"""Parameters fitted by Körding et al. (2007, PLoS ONE 2:e943) to their auditory-visual localisation
data, in degrees of azimuth: visual and auditory sensory noise, the width of the spatial prior
(centred straight ahead, ``mu_p = 0``) and the prior probability of a common cause."""

STRATEGIES = ("averaging", "selection", "matching")
"""Decision strategies of Wozny, Beierholm & Shams (2010, PLoS Comput Biol 6:e1000871)."""

FloatArray = NDArray[np.float64]


# --- input checks ------------------------------------------------------------------------------------


def _as_float(name: str, value: ArrayLike) -> FloatArray:
    """``value`` as a float array; NaN, infinity and non-numbers are errors."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a number or an array of numbers, got {type(value).__name__} {value!r}"
        ) from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity ({value!r}); pass finite numbers")
    return array


def _sigma(name: str, value: ArrayLike) -> FloatArray:
    """A standard deviation: finite and strictly positive."""
    array = _as_float(name, value)
    if np.any(array <= 0):
        raise ValueError(
            f"{name} must be a positive standard deviation, got {value!r}. A zero or negative "
            "sigma has no meaning; use a small positive value for a nearly noiseless cue."
        )
    return array


def _probability(name: str, value: ArrayLike) -> FloatArray:
    """A probability in [0, 1]."""
    array = _as_float(name, value)
    if np.any((array < 0) | (array > 1)):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return array


def _nonnegative(name: str, value: ArrayLike) -> FloatArray:
    array = _as_float(name, value)
    if np.any(array < 0):
        raise ValueError(f"{name} must be non-negative (a response or input strength), got {value!r}")
    return array


def _common_shape(**arrays: FloatArray) -> tuple[int, ...]:
    """The broadcast shape of ``arrays``, or a ValueError that lists every shape."""
    try:
        return np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(
            f"array shapes do not match: {shapes}. Pass scalars or arrays of one shape "
            "(or shapes that broadcast, as NumPy defines it)."
        ) from None


def _scalar_or_array(array: FloatArray) -> FloatArray | np.float64:
    """0-d arrays become NumPy scalars, so that scalar inputs give scalar outputs."""
    return array[()] if array.ndim == 0 else array


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _normal_grid(n: int, width: float = 6.0) -> tuple[FloatArray, FloatArray]:
    """Standard-normal nodes ``z`` on a uniform grid over [-width, width] and weights summing to 1.

    The trapezoid rule on a uniform grid is spectrally accurate for smooth integrands against a
    Gaussian, and converges like the grid step for integrands with jumps (decision boundaries).
    """
    if n < 3:
        raise ValueError(f"the quadrature grid needs at least 3 points, got n_grid={n}")
    z = np.linspace(-width, width, n)
    w = np.exp(-0.5 * z**2)
    return z, w / w.sum()


# --- maximum-likelihood cue combination ------------------------------------------------------------


def mle_combine(estimates: ArrayLike, sigmas: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Maximum-likelihood (reliability-weighted) combination of independent Gaussian cues.

    Ernst & Banks (2002, Nature 415:429) and Alais & Burr (2004, Curr Biol 14:257): with cue ``i``
    reporting ``x_i`` with noise ``sigma_i`` (and a flat prior), the most likely value is

        s_hat = sum_i w_i x_i,   w_i = (1 / sigma_i^2) / sum_j (1 / sigma_j^2),
        sigma_combined^2 = 1 / sum_j (1 / sigma_j^2)  (never larger than the best single cue's).

    Args:
        estimates: ``(..., K)``: one estimate per cue on the last axis, e.g. ``[x_v, x_a]``.
        sigmas: ``(..., K)`` or ``(K,)``: the cues' standard deviations, positive.

    Returns:
        ``(estimate, sigma, weights)`` with shapes ``(...)``, ``(...)`` and ``(..., K)``.
    """
    est = _as_float("estimates", estimates)
    sig = _sigma("sigmas", sigmas)
    if est.ndim == 0 or sig.ndim == 0:
        raise ValueError(
            "mle_combine needs one estimate and one sigma per cue on the last axis, "
            "e.g. mle_combine([x_v, x_a], [sigma_v, sigma_a])"
        )
    if est.shape[-1] != sig.shape[-1]:
        raise ValueError(
            f"{est.shape[-1]} estimates but {sig.shape[-1]} sigmas on the last (cue) axis; "
            "give exactly one sigma per cue"
        )
    if est.shape[-1] == 0:
        raise ValueError("mle_combine needs at least one cue: got no estimates and no sigmas")
    shape = _common_shape(estimates=est, sigmas=sig)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        precision = np.broadcast_to(1.0 / sig**2, shape)
        total = precision.sum(axis=-1)
        weights = precision / total[..., None]
        combined = 1.0 / np.sqrt(total)
    if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(combined)) and np.all(combined > 0)):
        # 1/sigma^2 over- or underflowed (sigma below ~1e-154 or above ~1e154): the same weights from
        # precisions relative to the best cue, (sigma_min / sigma_i)^2 in [0, 1], which cannot overflow
        s = np.broadcast_to(sig, shape)
        s_min = s.min(axis=-1, keepdims=True)
        with np.errstate(under="ignore"):
            relative = (s_min / s) ** 2
        total_relative = relative.sum(axis=-1)
        weights = relative / total_relative[..., None]
        combined = s_min[..., 0] / np.sqrt(total_relative)
    estimate = (weights * np.broadcast_to(est, shape)).sum(axis=-1)
    return _scalar_or_array(estimate), _scalar_or_array(combined), weights


def attended_sigma(sigma: ArrayLike, gain: ArrayLike) -> FloatArray:
    """A cue's noise when attention multiplies its reliability by ``gain``: ``sigma / sqrt(gain)``.

    The simplest model of top-down attention in cue combination: attending to a modality raises the
    precision of its measurements, ``1 / sigma'^2 = gain / sigma^2`` (``gain > 1`` attends, ``gain < 1``
    withdraws attention, ``gain = 1`` leaves the cue as it is). Passed to :func:`mle_combine` it moves
    the weights towards the attended cue, ``w_i = gain_i / sigma_i^2 / sum_j gain_j / sigma_j^2``; passed
    to the causal-inference functions (:func:`ventriloquist_bias`, ...) it changes both the weights and
    how clearly a conflict between the cues shows. Measured reliability gains with attention:
    Vercillo & Gori (2015, Front Integr Neurosci 9:34), audio-tactile; reviews of how attention and
    integration interact: Talsma, Senkowski, Soto-Faraco & Woldorff (2010, Trends Cogn Sci 14:400).

    Args:
        sigma: the cue's standard deviation without the gain (> 0), any shape.
        gain: the factor on its reliability 1 / sigma^2 (> 0), broadcast against ``sigma``.

    Returns:
        ``sigma / sqrt(gain)``, broadcast (a scalar for scalar inputs).
    """
    sig = _sigma("sigma", sigma)
    g = _as_float("gain", gain)
    if np.any(g <= 0):
        raise ValueError(
            f"gain must be positive: it multiplies the reliability 1/sigma^2 (1 = no attention, "
            f"2 = twice as reliable, 0.5 = half), got {gain!r}"
        )
    _common_shape(sigma=sig, gain=g)
    return _scalar_or_array(np.asarray(sig / np.sqrt(g)))


# --- Bayesian causal inference (Körding et al. 2007) -----------------------------------------------


@dataclass(frozen=True)
class _CIParams:
    x_v: FloatArray
    x_a: FloatArray
    var_v: FloatArray
    var_a: FloatArray
    var_p: FloatArray
    mu_p: FloatArray
    p_common: FloatArray
    shape: tuple[int, ...] = field(default=())
    sigmas: tuple[FloatArray, ...] = field(default=())
    """(sigma_v, sigma_a, sigma_p), for the log-space fallback when their squares over- or underflow."""


def _ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, p_common, mu_p) -> _CIParams:
    arrays = dict(
        x_v=_as_float("x_v", x_v),
        x_a=_as_float("x_a", x_a),
        sigma_v=_sigma("sigma_v", sigma_v),
        sigma_a=_sigma("sigma_a", sigma_a),
        sigma_p=_sigma("sigma_p", sigma_p),
        p_common=_probability("p_common", p_common),
        mu_p=_as_float("mu_p", mu_p),
    )
    shape = _common_shape(**arrays)
    with np.errstate(over="ignore", under="ignore"):  # extreme sigmas: see _stable_log_ratio
        return _CIParams(
            x_v=arrays["x_v"],
            x_a=arrays["x_a"],
            var_v=arrays["sigma_v"] ** 2,
            var_a=arrays["sigma_a"] ** 2,
            var_p=arrays["sigma_p"] ** 2,
            mu_p=arrays["mu_p"],
            p_common=arrays["p_common"],
            shape=shape,
            sigmas=(arrays["sigma_v"], arrays["sigma_a"], arrays["sigma_p"]),
        )


def _log_likelihood_common(p: _CIParams) -> FloatArray:
    """log p(x_v, x_a | C=1), Körding et al. 2007, eq. 4."""
    det = p.var_v * p.var_a + p.var_v * p.var_p + p.var_a * p.var_p
    quad = (
        (p.x_v - p.x_a) ** 2 * p.var_p + (p.x_v - p.mu_p) ** 2 * p.var_a + (p.x_a - p.mu_p) ** 2 * p.var_v
    ) / det
    return -np.log(2 * np.pi) - 0.5 * np.log(det) - 0.5 * quad


def _log_likelihood_separate(p: _CIParams) -> FloatArray:
    """log p(x_v, x_a | C=2), Körding et al. 2007, eq. 6."""
    tv, ta = p.var_v + p.var_p, p.var_a + p.var_p
    quad = (p.x_v - p.mu_p) ** 2 / tv + (p.x_a - p.mu_p) ** 2 / ta
    return -np.log(2 * np.pi) - 0.5 * np.log(tv * ta) - 0.5 * quad


def likelihood_common(
    x_v: ArrayLike, x_a: ArrayLike, sigma_v: ArrayLike, sigma_a: ArrayLike, sigma_p: ArrayLike, mu_p=0.0
) -> FloatArray:
    """p(x_v, x_a | C=1): both measurements caused by one source ``s ~ N(mu_p, sigma_p^2)``.

    Körding et al. (2007), eq. 4, the closed form of the integral over ``s`` of
    ``N(x_v; s, sigma_v^2) N(x_a; s, sigma_a^2) N(s; mu_p, sigma_p^2)``::

        exp(-((x_v - x_a)^2 sp^2 + (x_v - mu_p)^2 sa^2 + (x_a - mu_p)^2 sv^2) / (2 D)) / (2 pi sqrt(D)),
        D = sv^2 sa^2 + sv^2 sp^2 + sa^2 sp^2.
    """
    p = _ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, 0.5, mu_p)
    return _scalar_or_array(np.exp(_log_likelihood_common(p)))


def likelihood_separate(
    x_v: ArrayLike, x_a: ArrayLike, sigma_v: ArrayLike, sigma_a: ArrayLike, sigma_p: ArrayLike, mu_p=0.0
) -> FloatArray:
    """p(x_v, x_a | C=2): independent sources ``s_v, s_a ~ N(mu_p, sigma_p^2)``.

    Körding et al. (2007), eq. 6: ``N(x_v; mu_p, sv^2 + sp^2) N(x_a; mu_p, sa^2 + sp^2)``.
    """
    p = _ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, 0.5, mu_p)
    return _scalar_or_array(np.exp(_log_likelihood_separate(p)))


def _stable_log_ratio(p: _CIParams) -> FloatArray:
    """log p(x | C=1) - log p(x | C=2) from log-variances, for sigmas whose squares over- or underflow.

    The same eqs. 4 and 6 with every variance ratio formed in log space: ``log D`` by log-sum-exp of
    the three products, each quadratic term as ``exp(2 log|d| + log v_k - log D)``, and the two
    quadratic forms compared through their logarithms when both are infinite.
    """
    lv, la, lp = (2.0 * np.log(s) for s in p.sigmas)
    log_det = np.logaddexp(np.logaddexp(lv + la, lv + lp), la + lp)
    log_tv, log_ta = np.logaddexp(lv, lp), np.logaddexp(la, lp)
    with np.errstate(divide="ignore", over="ignore"):
        log_sq = [2.0 * np.log(np.abs(d)) for d in (p.x_v - p.x_a, p.x_v - p.mu_p, p.x_a - p.mu_p)]
        log_q1 = np.logaddexp.reduce(
            np.broadcast_arrays(log_sq[0] + lp - log_det, log_sq[1] + la - log_det, log_sq[2] + lv - log_det)
        )
        log_q2 = np.logaddexp(log_sq[1] - log_tv, log_sq[2] - log_ta)
        q1, q2 = np.exp(log_q1), np.exp(log_q2)
    both = np.isinf(q1) & np.isinf(q2)
    with np.errstate(invalid="ignore"):
        gap = np.where(both, np.sign(log_q2 - log_q1) * np.inf, q2 - q1)
    gap = np.where(both & (log_q1 == log_q2), 0.0, gap)
    return 0.5 * (log_tv + log_ta - log_det) + 0.5 * gap


def _logit_common(p: _CIParams) -> FloatArray:
    """log p(C=1 | x) / p(C=2 | x) (Körding et al. 2007, eq. 2 in log-odds form); +-inf at p_common 1 or 0."""
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        log_ratio = _log_likelihood_common(p) - _log_likelihood_separate(p)
    bad = ~np.isfinite(log_ratio)
    if np.any(bad):  # only for sigmas near the float64 limits; moderate ones keep the closed form exactly
        log_ratio = np.where(bad, _stable_log_ratio(p), log_ratio)
    with np.errstate(divide="ignore"):
        log_prior_odds = np.log(p.p_common) - np.log1p(-p.p_common)
    return log_prior_odds + log_ratio


def _posterior_common(p: _CIParams) -> FloatArray:
    return np.broadcast_to(special.expit(_logit_common(p)), p.shape)


def causal_inference_posterior(
    x_v: ArrayLike,
    x_a: ArrayLike,
    sigma_v: ArrayLike,
    sigma_a: ArrayLike,
    sigma_p: ArrayLike,
    p_common: ArrayLike,
    mu_p: ArrayLike = 0.0,
) -> FloatArray:
    """Posterior probability of a common cause, p(C=1 | x_v, x_a).

    Körding, Beierholm, Ma, Quartz, Tenenbaum & Shams (2007), PLoS ONE 2:e943, eq. 2 (Bayes' rule
    over the two causal structures) with the likelihoods of eq. 4 (:func:`likelihood_common`) and
    eq. 6 (:func:`likelihood_separate`)::

        p(C=1 | x) = p(x | C=1) p_c / (p(x | C=1) p_c + p(x | C=2) (1 - p_c)).

    Computed from log-likelihoods, so large disparities give a clean 0 instead of 0/0.

    Args:
        x_v, x_a: visual and auditory measurements (any shapes that broadcast).
        sigma_v, sigma_a: sensory noise of each modality (> 0).
        sigma_p, mu_p: width (> 0) and centre of the Gaussian prior over source positions.
        p_common: prior probability of a common cause, in [0, 1].

    Returns:
        p(C=1 | x_v, x_a), broadcast over the inputs (a scalar for scalar inputs).
    """
    p = _ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, p_common, mu_p)
    return _scalar_or_array(np.array(_posterior_common(p)))


def _reliability_weighted(values: tuple[FloatArray, ...], sigmas: tuple[FloatArray, ...]) -> FloatArray:
    """sum_i x_i / s_i^2 / sum_i 1 / s_i^2 by :func:`mle_combine`'s overflow-safe fallback."""
    arrays = np.broadcast_arrays(*values, *sigmas)
    n = len(values)
    return mle_combine(np.stack(arrays[:n], axis=-1), np.stack(arrays[n:], axis=-1))[0]


def _fused(p: _CIParams) -> FloatArray:
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        num = p.x_v / p.var_v + p.x_a / p.var_a + p.mu_p / p.var_p
        fused = num / (1 / p.var_v + 1 / p.var_a + 1 / p.var_p)
    if not np.all(np.isfinite(fused)):
        fused = _reliability_weighted((p.x_v, p.x_a, p.mu_p), p.sigmas)
    return np.broadcast_to(fused, p.shape)


def _segregated(p: _CIParams) -> tuple[FloatArray, FloatArray]:
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        s_v = (p.x_v / p.var_v + p.mu_p / p.var_p) / (1 / p.var_v + 1 / p.var_p)
        s_a = (p.x_a / p.var_a + p.mu_p / p.var_p) / (1 / p.var_a + 1 / p.var_p)
    sigma_v, sigma_a, sigma_p = p.sigmas
    if not np.all(np.isfinite(s_v)):
        s_v = _reliability_weighted((p.x_v, p.mu_p), (sigma_v, sigma_p))
    if not np.all(np.isfinite(s_a)):
        s_a = _reliability_weighted((p.x_a, p.mu_p), (sigma_a, sigma_p))
    return np.broadcast_to(s_v, p.shape), np.broadcast_to(s_a, p.shape)


def fused_estimate(
    x_v: ArrayLike, x_a: ArrayLike, sigma_v: ArrayLike, sigma_a: ArrayLike, sigma_p: ArrayLike, mu_p=0.0
) -> FloatArray:
    """Optimal estimate if there is one source (C=1): the posterior mean (and mode) of ``s``.

    Körding et al. (2007), Methods, "Optimally estimating the position"::

        s_hat_{C=1} = (x_v / sv^2 + x_a / sa^2 + mu_p / sp^2) / (1 / sv^2 + 1 / sa^2 + 1 / sp^2),

    that is :func:`mle_combine` with the prior as a third cue.
    """
    return _scalar_or_array(np.array(_fused(_ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, 0.5, mu_p))))


def segregated_estimates(
    x_v: ArrayLike, x_a: ArrayLike, sigma_v: ArrayLike, sigma_a: ArrayLike, sigma_p: ArrayLike, mu_p=0.0
) -> tuple[FloatArray, FloatArray]:
    """Optimal estimates if there are two sources (C=2): each cue combined with the prior alone.

    Körding et al. (2007), Methods: ``s_hat_{v,C=2} = (x_v / sv^2 + mu_p / sp^2) / (1 / sv^2 + 1 / sp^2)``
    and likewise for audition.

    Returns:
        ``(s_v_hat, s_a_hat)``.
    """
    s_v, s_a = _segregated(_ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, 0.5, mu_p))
    return _scalar_or_array(np.array(s_v)), _scalar_or_array(np.array(s_a))


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")


def _combine(
    p: _CIParams, strategy: str, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    post = _posterior_common(p)
    fused = _fused(p)
    seg_v, seg_a = _segregated(p)
    if strategy == "averaging":
        s_v = post * fused + (1 - post) * seg_v
        s_a = post * fused + (1 - post) * seg_a
    else:
        if strategy == "selection":
            common = post > 0.5
        else:  # matching: C=1 with probability p(C=1 | x), against a fresh uniform threshold
            common = post > rng.uniform(size=p.shape)
        s_v = np.where(common, fused, seg_v)
        s_a = np.where(common, fused, seg_a)
    return np.array(s_v), np.array(s_a), np.array(post)


def causal_inference_estimate(
    x_v: ArrayLike,
    x_a: ArrayLike,
    sigma_v: ArrayLike,
    sigma_a: ArrayLike,
    sigma_p: ArrayLike,
    p_common: ArrayLike,
    mu_p: ArrayLike = 0.0,
    strategy: str = "averaging",
    rng: np.random.Generator | int | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Visual and auditory position estimates of a causal-inference observer.

    The three strategies compared by Wozny, Beierholm & Shams (2010), PLoS Comput Biol 6:e1000871,
    with ``p = p(C=1 | x_v, x_a)`` from :func:`causal_inference_posterior`:

    - ``"averaging"`` (model averaging, the estimate of Körding et al. 2007 that minimises the
      expected squared error): ``s_hat = p s_hat_{C=1} + (1 - p) s_hat_{C=2}``;
    - ``"selection"`` (model selection): ``s_hat_{C=1}`` if ``p > 0.5``, else ``s_hat_{C=2}``;
    - ``"matching"`` (probability matching): ``s_hat_{C=1}`` if ``p > xi`` with ``xi ~ U(0, 1)``
      drawn afresh for every element (``rng`` seeds it; ``None`` means seed 0).

    Returns:
        ``(s_v_hat, s_a_hat)`` broadcast over the inputs.
    """
    _check_strategy(strategy)
    p = _ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, p_common, mu_p)
    s_v, s_a, _ = _combine(p, strategy, _rng(rng))
    return _scalar_or_array(s_v), _scalar_or_array(s_a)


def simulate_responses(
    s_v: ArrayLike,
    s_a: ArrayLike,
    sigma_v: float,
    sigma_a: float,
    sigma_p: float,
    p_common: float,
    mu_p: float = 0.0,
    strategy: str = "averaging",
    n_trials: int = 1000,
    rng: np.random.Generator | int | None = None,
) -> dict[str, FloatArray]:
    """Simulate trials of the localisation experiment: noisy measurements, then the observer.

    The generative model of Körding et al. (2007): on each trial ``x_v ~ N(s_v, sigma_v^2)`` and
    ``x_a ~ N(s_a, sigma_a^2)`` around the true stimulus positions; the observer computes
    p(C=1 | x) and its estimates with ``strategy`` (:func:`causal_inference_estimate`), and reports
    "one cause" when p(C=1 | x) > 0.5.

    Args:
        s_v, s_a: true visual and auditory positions, broadcast to a stimulus shape ``S``.
        n_trials: trials per stimulus.

    Returns:
        dict of arrays shaped ``(n_trials, *S)``: ``x_v``, ``x_a``, ``p_common`` (the posterior),
        ``s_v_hat``, ``s_a_hat`` and ``report_common`` (bool).
    """
    _check_strategy(strategy)
    if not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive int, got {n_trials!r}")
    sv, sa = _as_float("s_v", s_v), _as_float("s_a", s_a)
    shape = _common_shape(s_v=sv, s_a=sa)
    sig_v, sig_a = _sigma("sigma_v", sigma_v), _sigma("sigma_a", sigma_a)
    generator = _rng(rng)
    x_v = sv + sig_v * generator.standard_normal((n_trials, *shape))
    x_a = sa + sig_a * generator.standard_normal((n_trials, *shape))
    p = _ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, p_common, mu_p)
    est_v, est_a, post = _combine(p, strategy, generator)
    return dict(x_v=x_v, x_a=x_a, p_common=post, s_v_hat=est_v, s_a_hat=est_a, report_common=post > 0.5)


def expected_responses(
    s_v: ArrayLike,
    s_a: ArrayLike,
    sigma_v: float,
    sigma_a: float,
    sigma_p: float,
    p_common: float,
    mu_p: float = 0.0,
    strategy: str = "averaging",
    n_grid: int = 121,
) -> dict[str, FloatArray]:
    """Mean responses over sensory noise, by quadrature instead of simulation (deterministic).

    Integrates the observer's output against ``N(x_v; s_v, sigma_v^2) N(x_a; s_a, sigma_a^2)`` on an
    ``n_grid`` x ``n_grid`` grid over +-6 standard deviations. For ``"matching"`` the expectation over
    the random threshold is taken exactly: ``p s_hat_{C=1} + (1 - p) s_hat_{C=2}``, so its means
    equal those of ``"averaging"`` (the strategies differ in their response distributions, which
    :func:`simulate_responses` shows).

    Returns:
        dict of arrays shaped like ``broadcast(s_v, s_a)``: ``s_v_hat`` and ``s_a_hat`` (mean
        estimates), ``p_common`` (mean posterior) and ``report_common`` (probability that
        p(C=1 | x) > 0.5).
    """
    _check_strategy(strategy)
    sv, sa = _as_float("s_v", s_v), _as_float("s_a", s_a)
    shape = _common_shape(s_v=sv, s_a=sa)
    sig_v, sig_a = float(_sigma("sigma_v", sigma_v)), float(_sigma("sigma_a", sigma_a))
    z, w = _normal_grid(n_grid)
    x_v = np.broadcast_to(sv, shape)[..., None, None] + sig_v * z[:, None]
    x_a = np.broadcast_to(sa, shape)[..., None, None] + sig_a * z[None, :]
    p = _ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, p_common, mu_p)
    post = _posterior_common(p)
    fused = _fused(p)
    seg_v, seg_a = _segregated(p)
    if strategy == "selection":
        weight = (post > 0.5).astype(float)
    else:
        weight = post
    est_v = weight * fused + (1 - weight) * seg_v
    est_a = weight * fused + (1 - weight) * seg_a
    w2 = w[:, None] * w[None, :]

    def mean(values: FloatArray) -> FloatArray:
        return _scalar_or_array(np.sum(values * w2, axis=(-2, -1)))

    return dict(s_v_hat=mean(est_v), s_a_hat=mean(est_a), p_common=mean(post), report_common=mean(post > 0.5))


def ventriloquist_bias(
    disparities: ArrayLike,
    sigma_v: float,
    sigma_a: float,
    sigma_p: float,
    p_common: float,
    mu_p: float = 0.0,
    s_a: float = 0.0,
    strategy: str = "averaging",
    n_grid: int = 121,
) -> dict[str, FloatArray]:
    """Visual bias of the auditory percept as a function of audio-visual disparity.

    The sound is at ``s_a`` and the flash at ``s_v = s_a + disparity``. The bias is the fraction of
    the disparity by which the mean auditory estimate moves towards the flash (Wallace et al. 2004;
    Körding et al. 2007, Fig. 2)::

        bias = (E[s_a_hat] - s_a) / (s_v - s_a).

    With ``s_a = mu_p`` the prior does not pull the auditory estimate, so a pure segregation observer
    has bias 0, full fusion gives ``w_v`` of :func:`mle_combine` (shrunk by the prior), and causal
    inference falls from near-fusion at small disparities towards 0 at large ones.

    Args:
        disparities: ``(D,)``, all non-zero (the bias divides by the disparity).

    Returns:
        dict of ``(D,)`` arrays: ``bias``, ``report_common`` (probability of judging one cause),
        ``p_common`` (mean posterior p(C=1 | x)), ``s_a_hat``, ``s_v_hat``.
    """
    d = _as_float("disparities", disparities)
    if np.any(d == 0):
        raise ValueError(
            "the bias (E[s_a_hat] - s_a) / (s_v - s_a) is undefined at zero disparity; "
            "leave 0 out of disparities (use e.g. np.linspace(0.5, 30, 60))"
        )
    means = expected_responses(s_a + d, s_a, sigma_v, sigma_a, sigma_p, p_common, mu_p, strategy, n_grid)
    bias = (np.asarray(means["s_a_hat"]) - s_a) / d
    return dict(
        bias=_scalar_or_array(bias),
        report_common=means["report_common"],
        p_common=means["p_common"],
        s_a_hat=means["s_a_hat"],
        s_v_hat=means["s_v_hat"],
    )


# --- response models: button presses and unity judgements -------------------------------------------

UNITY_DECISIONS = ("criterion", "matching")
"""How an observer turns p(C=1 | x) into a "one cause" / "two causes" report (:func:`unity_judgement_probability`)."""

KORDING_BUTTONS = (-10.0, -5.0, 0.0, 5.0, 10.0)
"""Response positions of Körding et al.'s (2007) localisation experiment (degrees of azimuth): the five
stimulus positions, one button each; with the auditory-alone and visual-alone trials this gives the
paper's 35 stimulus conditions (Fig. 2)."""


def button_edges(buttons: ArrayLike) -> FloatArray:
    """Decision boundaries of a nearest-button response: ``(K + 1,)`` from ``-inf`` through the ``K - 1``
    midpoints between neighbouring buttons to ``+inf``.

    Args:
        buttons: ``(K,)`` response positions, strictly increasing, ``K >= 2``.
    """
    b = _as_float("buttons", buttons)
    if b.ndim != 1 or b.size < 2:
        raise ValueError(
            f"buttons must list at least two response positions, e.g. {list(KORDING_BUTTONS)}; got {buttons!r}"
        )
    if np.any(np.diff(b) <= 0):
        raise ValueError(
            f"buttons must be strictly increasing positions (sort them, drop repeats); got {buttons!r}"
        )
    return np.concatenate([[-np.inf], (b[1:] + b[:-1]) / 2, [np.inf]])


def _motor_sigma(value: ArrayLike) -> float:
    array = _as_float("sigma_motor", value)
    if array.ndim != 0 or array < 0:
        raise ValueError(
            f"sigma_motor must be one number >= 0 (0: the observer presses exactly the button nearest its "
            f"estimate), got {value!r}"
        )
    return float(array)


def _scalar_probability(name: str, value: ArrayLike) -> float:
    array = _probability(name, value)
    if array.ndim != 0:
        raise ValueError(f"{name} must be one number in [0, 1], got {value!r}")
    return float(array)


def _cumulative(estimate: FloatArray, tau: FloatArray, edges: FloatArray) -> FloatArray:
    """``F[..., k] = P(estimate + N(0, tau^2) < edges[k])`` for ``k = 0..K``: ``(..., K + 1)``, 0 first, 1 last.

    ``tau = 0`` is a hard threshold (the nearest button)."""
    gap = edges[1:-1] - estimate[..., None]
    tau = np.broadcast_to(tau, estimate.shape)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(tau > 0, special.ndtr(gap / tau), (gap >= 0).astype(float))
    shape = (*inner.shape[:-1], 1)
    return np.concatenate([np.zeros(shape), inner, np.ones(shape)], axis=-1)


def button_probabilities(
    estimate: ArrayLike, buttons: ArrayLike, sigma_motor: float = 0.0, lapse: float = 0.0
) -> FloatArray:
    """P(press button k | internal estimate): the nearest button after motor noise, with lapses.

    The response stage of Körding et al. (2007): the observer presses the button nearest to its
    estimate ``s_hat``. Motor (or report) noise ``N(0, sigma_m^2)`` is added first, and on a fraction
    ``lambda`` of trials (lapses) any button is pressed with equal probability::

        P(k | s_hat) = (1 - lambda) [Phi((e_k - s_hat) / sigma_m) - Phi((e_{k-1} - s_hat) / sigma_m)] + lambda / K,

    with ``e_k`` the midpoints between neighbouring buttons (:func:`button_edges`, ``e_0 = -inf``,
    ``e_K = +inf``); ``sigma_m = 0`` gives the hard nearest-button rule.

    Args:
        estimate: ``(*S)`` internal estimates (degrees).
        buttons: ``(K,)`` increasing response positions.
        sigma_motor: motor noise, >= 0. lapse: lapse rate in [0, 1].

    Returns:
        ``(*S, K)`` probabilities, summing to 1 over the last axis.
    """
    edges = button_edges(buttons)
    sm, lam = _motor_sigma(sigma_motor), _scalar_probability("lapse", lapse)
    est = _as_float("estimate", estimate)
    probs = np.diff(_cumulative(est, np.asarray(sm), edges), axis=-1)
    return (1 - lam) * probs + lam / (len(edges) - 1)


def unimodal_response_probabilities(
    s: ArrayLike,
    sigma: float,
    sigma_p: float,
    buttons: ArrayLike,
    mu_p: float = 0.0,
    sigma_motor: float = 0.0,
    lapse: float = 0.0,
) -> FloatArray:
    """P(press button k | one stimulus alone at ``s``), in closed form.

    With one cue the causal structure does not matter: the observer combines its measurement
    ``x ~ N(s, sigma^2)`` with the prior ``N(mu_p, sigma_p^2)`` (Körding et al. 2007, Methods), so the
    estimate ``s_hat = w x + (1 - w) mu_p`` with ``w = sigma_p^2 / (sigma^2 + sigma_p^2)`` is Gaussian,
    ``N(w s + (1 - w) mu_p, w^2 sigma^2)``, and the nearest-button rule with motor noise and lapses of
    :func:`button_probabilities` gives::

        P(k | s) = (1 - lambda) [Phi((e_k - m) / t) - Phi((e_{k-1} - m) / t)] + lambda / K,
        m = w s + (1 - w) mu_p,   t^2 = w^2 sigma^2 + sigma_m^2.

    Args:
        s: ``(*S)`` stimulus positions; sigma: that modality's sensory noise (> 0).

    Returns:
        ``(*S, K)`` probabilities.
    """
    edges = button_edges(buttons)
    sig, sig_p = float(_sigma("sigma", sigma)), float(_sigma("sigma_p", sigma_p))
    sm, lam = _motor_sigma(sigma_motor), _scalar_probability("lapse", lapse)
    mu = float(_as_float("mu_p", mu_p))
    w = sig_p**2 / (sig**2 + sig_p**2)
    mean = w * _as_float("s", s) + (1 - w) * mu
    spread = np.asarray(np.sqrt((w * sig) ** 2 + sm**2))
    probs = np.diff(_cumulative(mean, spread, edges), axis=-1)
    return (1 - lam) * probs + lam / (len(edges) - 1)


def _check_unity(decision: str, criterion: float) -> float:
    if decision not in UNITY_DECISIONS:
        raise ValueError(f"unknown unity decision {decision!r}; choose one of {UNITY_DECISIONS}")
    kappa = _scalar_probability("criterion", criterion)
    if not 0 < kappa < 1:
        raise ValueError(
            f"criterion must lie strictly between 0 and 1 (the observer reports one cause when "
            f"p(C=1 | x) > criterion), got {criterion!r}"
        )
    return kappa


_GRID_WIDTH = 4.0
"""The response quadrature spans +-4 standard deviations of each measurement (1e-4 of the mass lies beyond)."""

_RHO_CUT = 0.02
"""Correlations of the two reports' cell-and-motor spread below this are treated as independence (a
continuous taper, so that the likelihood stays smooth); above it the comonotone coupling is computed."""


def _button_probs(
    estimate: FloatArray, tau: FloatArray | float, inner: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Inner cumulative ``(..., K - 1)`` and probabilities ``(..., K)`` of the nearest button after
    Gaussian noise ``tau > 0`` (array broadcasting against ``estimate``, or a number)."""
    tau = np.asarray(tau)[..., None] if np.ndim(tau) else tau
    cum = special.ndtr((inner - estimate[..., None]) / tau)
    probs = np.empty((*cum.shape[:-1], cum.shape[-1] + 1))
    probs[..., 0] = cum[..., 0]
    probs[..., 1:-1] = cum[..., 1:] - cum[..., :-1]
    probs[..., -1] = 1 - cum[..., -1]
    return cum, np.maximum(probs, 0.0)  # differences of rounded CDFs can be -1e-16


def _button_probs_box(
    estimate: FloatArray, half_width: FloatArray | float, sigma: FloatArray | float, inner: FloatArray
) -> FloatArray:
    """``(..., K)`` nearest-button probabilities for an estimate spread uniformly over
    ``estimate +- half_width`` (across one grid cell, along which it is linear) plus Gaussian noise
    ``sigma`` (motor noise, and the spread along the cell's other axis): the cell average of the button
    rule. ``E_u Phi((e - u) / s) = (s / 2a) [psi((e + a) / s) - psi((e - a) / s)]`` with
    ``psi(x) = x Phi(x) + phi(x)``, the integral of ``Phi``; ``s`` is floored far below the cell width, so
    that the hard nearest-button rule (``sigma = 0``) is the ramp it tends to, and a box much narrower
    than ``s`` is left out (the Gaussian alone)."""
    a = np.asarray(half_width, dtype=float)[..., None]
    s = np.maximum(np.asarray(sigma, dtype=float)[..., None], 1e-4 * a)
    gap = inner - estimate[..., None]

    def psi(x: FloatArray) -> FloatArray:
        return x * special.ndtr(x) + np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)

    wide = a > 1e-3 * s
    safe = np.where(wide, a, 1.0)
    boxed = (s / (2 * safe)) * (psi((gap + safe) / s) - psi((gap - safe) / s))
    cum = np.where(wide, boxed, special.ndtr(gap / s)) if not np.all(wide) else boxed
    probs = np.empty((*cum.shape[:-1], cum.shape[-1] + 1))
    probs[..., 0] = cum[..., 0]
    probs[..., 1:-1] = cum[..., 1:] - cum[..., :-1]
    probs[..., -1] = 1 - cum[..., -1]
    return np.maximum(probs, 0.0), cum


def _comonotone(cum_v: FloatArray, cum_a: FloatArray) -> FloatArray:
    """``(M, K, K)`` joint of two button choices with inner cumulatives ``(M, K - 1)`` driven by one
    underlying variable (the Fréchet upper bound): ``max(0, min(F_v[i], F_a[j]) - max(F_v[i-1], F_a[j-1]))``."""
    zeros, ones = np.zeros((len(cum_v), 1)), np.ones((len(cum_v), 1))
    fv, fa = np.hstack([zeros, cum_v, ones]), np.hstack([zeros, cum_a, ones])
    upper = np.minimum(fv[:, 1:, None], fa[:, None, 1:])
    lower = np.maximum(fv[:, :-1, None], fa[:, None, :-1])
    return np.maximum(upper - lower, 0.0)


def _bimodal_joint(
    s_v: FloatArray,
    s_a: FloatArray,
    sigma_v: float,
    sigma_a: float,
    sigma_p: float,
    p_common: float,
    mu_p: float,
    strategy: str,
    sigma_motor: float,
    lapse: float,
    edges: FloatArray,
    unity_decision: str | None,
    criterion: float,
    n_grid: int,
) -> FloatArray:
    """``(C, K, K, U)`` P(visual button i, auditory button j, unity report u) for stimuli ``(C,)``;
    ``U = 2`` ("two causes", "one cause") or ``U = 1`` (no unity judgement asked)."""
    z, w = _normal_grid(n_grid, width=_GRID_WIDTH)
    cell = (z[1] - z[0]) ** 2 / 12  # variance of a uniform spread over one grid cell
    c, n, k = len(s_v), len(z), len(edges) - 1
    inner = edges[1:-1]
    x_v = s_v[:, None] + sigma_v * z  # (C, n): the visual measurement along grid axis 1
    x_a = s_a[:, None] + sigma_a * z  # (C, n): the auditory one along axis 2
    p = _ci_params(x_v[:, :, None], x_a[:, None, :], sigma_v, sigma_a, sigma_p, p_common, mu_p)
    vv, va, vp = sigma_v**2, sigma_a**2, sigma_p**2
    logit = np.broadcast_to(_logit_common(p), (c, n, n))
    post = special.expit(logit)
    # gradient of the log-odds in grid units: eqs. 4 and 6 are quadratic in (x_v, x_a)
    det = vv * va + vv * vp + va * vp
    dv, da = x_v[:, :, None] - mu_p, x_a[:, None, :] - mu_p
    dd = dv - da
    l_v = (-(dd * vp + dv * va) / det + dv / (vv + vp)) * sigma_v
    l_a = (-(-dd * vp + da * vv) / det + da / (va + vp)) * sigma_a
    l_tau = np.maximum(np.sqrt(cell * (l_v**2 + l_a**2)), 1e-300)
    fused = np.broadcast_to(_fused(p), (c, n, n))
    precision = 1 / vv + 1 / va + 1 / vp
    f_v, f_a = sigma_v / vv / precision, sigma_a / va / precision  # d fused / d z_v, d z_a
    seg_v = (x_v / vv + mu_p / vp) / (1 / vv + 1 / vp)  # (C, n): depends on z_v only
    seg_a = (x_a / va + mu_p / vp) / (1 / va + 1 / vp)
    g_v, g_a = sigma_v / vv / (1 / vv + 1 / vp), sigma_a / va / (1 / va + 1 / vp)
    if unity_decision is None:
        unity = [np.ones((c, n, n))]
    else:
        said_one = (
            post if unity_decision == "matching" else special.ndtr((logit - special.logit(criterion)) / l_tau)
        )
        unity = [1 - said_one, said_one]
    w2 = w[:, None] * w[None, :]
    m2 = sigma_motor**2
    joint = np.zeros((c, k, k, len(unity)))
    if strategy == "averaging":
        pv, pa = post * (1 - post) * l_v, post * (1 - post) * l_a  # gradient of p(C=1 | x)
        gap_v, gap_a = fused - seg_v[:, :, None], fused - seg_a[:, None, :]
        e_v, e_a = fused - (1 - post) * gap_v, fused - (1 - post) * gap_a
        ev_v, ev_a = post * f_v + (1 - post) * g_v + gap_v * pv, post * f_a + gap_v * pa
        ea_v, ea_a = post * f_v + gap_a * pv, post * f_a + (1 - post) * g_a + gap_a * pa
        tau_v = np.sqrt(m2 + cell * (ev_v**2 + ev_a**2))
        tau_a = np.sqrt(m2 + cell * (ea_v**2 + ea_a**2))
        rho = np.clip(cell * (ev_v * ea_v + ev_a * ea_a) / (tau_v * tau_a), 0.0, 1.0)
        rho = np.maximum(rho - _RHO_CUT, 0.0) / (1 - _RHO_CUT)
        # each estimate moves mostly along one axis of a cell (exactly so where the cues segregate): a
        # uniform spread along that axis, a Gaussian one along the other, plus the motor noise
        half = np.sqrt(3 * cell)
        big_v, small_v = np.maximum(np.abs(ev_v), np.abs(ev_a)), np.minimum(np.abs(ev_v), np.abs(ev_a))
        big_a, small_a = np.maximum(np.abs(ea_v), np.abs(ea_a)), np.minimum(np.abs(ea_v), np.abs(ea_a))
        prob_v, cum_v = _button_probs_box(e_v, half * big_v, np.sqrt(m2 + cell * small_v**2), inner)
        prob_a, cum_a = _button_probs_box(e_a, half * big_a, np.sqrt(m2 + cell * small_a**2), inner)
        flat_v, flat_a = prob_v.reshape(c, n * n, k), prob_a.reshape(c, n * n, k)
        coupled = np.nonzero(rho > 0)
        if len(coupled[0]):
            pair = _comonotone(cum_v[coupled], cum_a[coupled])
        for u, said in enumerate(unity):
            weight = w2 * said
            joint[..., u] = np.matmul(
                flat_v.transpose(0, 2, 1), (weight * (1 - rho)).reshape(c, n * n, 1) * flat_a
            )
            if len(coupled[0]):
                np.add.at(joint[..., u], coupled[0], (weight * rho)[coupled][:, None, None] * pair)
    else:
        # matching: C=1 with probability p(C=1 | x); selection: C=1 when p(C=1 | x) > 0.5, the step
        # averaged over each grid cell (the log-odds are linear across a cell)
        common = post if strategy == "matching" else special.ndtr(logit / l_tau)
        spread_f = cell * (f_v**2 + f_a**2)
        rho_f = spread_f / (m2 + spread_f)  # the two reports of one fused estimate are this correlated
        _, prob_f = _button_probs(fused, np.sqrt(m2 + spread_f), inner)
        flat_f = prob_f.reshape(c, n * n, k)
        half = np.sqrt(3 * cell)  # half the grid step: seg_v moves by g_v * step across a cell
        prob_sv, _ = _button_probs_box(seg_v, g_v * half, sigma_motor, inner)  # (C, n, K), exact cell average
        prob_sa, _ = _button_probs_box(seg_a, g_a * half, sigma_motor, inner)
        for u, said in enumerate(unity):
            weight = w2 * said
            fw = (weight * common).reshape(c, n * n, 1)
            joint[..., u] = (1 - rho_f) * np.matmul(flat_f.transpose(0, 2, 1), fw * flat_f)
            joint[..., u] += rho_f * np.eye(k) * (fw * flat_f).sum(axis=1)[:, None, :]
            joint[..., u] += np.matmul(prob_sv.transpose(0, 2, 1), np.matmul(weight * (1 - common), prob_sa))
    return (1 - lapse) * joint + lapse / (k * k * len(unity))


def response_probabilities(
    s_v: ArrayLike,
    s_a: ArrayLike,
    sigma_v: float,
    sigma_a: float,
    sigma_p: float,
    p_common: float,
    buttons: ArrayLike = KORDING_BUTTONS,
    mu_p: float = 0.0,
    strategy: str = "averaging",
    sigma_motor: float = 0.0,
    lapse: float = 0.0,
    unity_decision: str | None = "criterion",
    criterion: float = 0.5,
    n_grid: int = 31,
) -> dict[str, FloatArray]:
    """Probability of every response to a flash at ``s_v`` and a sound at ``s_a``, by quadrature.

    The observer of Körding et al. (2007, PLoS ONE 2:e943) measures ``x_v ~ N(s_v, sigma_v^2)`` and
    ``x_a ~ N(s_a, sigma_a^2)``, computes p(C=1 | x) (eq. 2 with eqs. 4 and 6) and its visual and
    auditory estimates with one of the strategies of Wozny, Beierholm & Shams (2010, PLoS Comput Biol
    6:e1000871; their eqs. 4-6, :func:`causal_inference_estimate`), and reports both by pressing the
    nearest of the ``buttons`` after independent motor noise (:func:`button_probabilities`). Asked
    whether flash and sound had one cause, it answers with the ``unity_decision``
    (:func:`unity_judgement_probability`). On a lapse (probability ``lambda``) every response is a
    uniform guess. The probability of a response triple ``(i, j, u)`` integrates over the
    measurements::

        P(i, j, u | s) = (1 - lambda) sum_b  E_x[ w_b(x) D_u(x) P(i | e_{v,b}(x)) P(j | e_{a,b}(x)) ] + lambda / (K^2 U),

    where the branches ``b`` are: averaging, one branch with weight 1 and model-averaged estimates;
    selection and matching, the fused branch (both estimates ``s_hat_{C=1}``, weight ``1[p > 0.5]`` or
    ``p``) and the segregated branch (``s_hat_{v,C=2}``, ``s_hat_{a,C=2}``, the rest). The expectation is
    the package's quadrature (the trapezoid grid of :func:`expected_responses`, ``n_grid`` points per
    axis over +-4 standard deviations), with one refinement that makes it accurate at decision
    boundaries and smooth in the parameters, as a likelihood for fitting needs: every step inside a
    grid cell is averaged over the cell, the quantity that crosses it being linear across the cell
    (its gradient is analytic). At a button boundary the estimate is spread uniformly along the cell
    axis it moves most (exact where the cues segregate, each estimate then following one measurement)
    and normally along the other, plus the motor noise; selection's ``p > 0.5`` and the unity criterion
    become Gaussian CDFs of the cell's width in log-odds. Where the two reports share one estimate (the
    fused branch, and averaging near fusion) the two button choices are coupled across the cell (a
    mixture of independent and comonotone choices with the right correlation), so that without motor
    noise a fused percept still presses the same button twice. For Körding et al.'s observer the
    largest error of any probability, against a 201-point grid, is about 0.005 at ``n_grid=21`` and
    0.0025 at 31 without motor noise, and half that with 1.5° of motor noise.

    Args:
        s_v, s_a: stimulus positions, any shapes broadcasting to ``S``.
        sigma_v, sigma_a, sigma_p, p_common, mu_p: the observer (scalars).
        buttons: ``(K,)`` response positions (default Körding et al.'s five).
        strategy: ``"averaging"``, ``"selection"`` or ``"matching"``.
        sigma_motor: motor noise (>= 0); lapse: lapse rate in [0, 1].
        unity_decision: ``"criterion"`` (report one cause when p(C=1 | x) > ``criterion``), ``"matching"``
            (report one cause with probability p(C=1 | x)), or None when no unity judgement is asked.

    Returns:
        dict with ``joint`` ``(*S, K, K, U)`` (U = 2 with unity judgements, index 1 = "one cause";
        U = 1 without), ``visual`` and ``auditory`` ``(*S, K)``, and ``common`` ``(*S,)`` (probability
        of reporting one cause; absent when ``unity_decision`` is None). Each distribution sums to 1.
    """
    _check_strategy(strategy)
    edges = button_edges(buttons)
    sv, sa = _as_float("s_v", s_v), _as_float("s_a", s_a)
    shape = _common_shape(s_v=sv, s_a=sa)
    params = [float(_sigma(name, value)) for name, value in
              (("sigma_v", sigma_v), ("sigma_a", sigma_a), ("sigma_p", sigma_p))]  # fmt: skip
    pc = _scalar_probability("p_common", p_common)
    mu = float(_as_float("mu_p", mu_p))
    sm, lam = _motor_sigma(sigma_motor), _scalar_probability("lapse", lapse)
    kappa = _check_unity(unity_decision, criterion) if unity_decision is not None else 0.5
    if not isinstance(n_grid, (int, np.integer)) or n_grid < 5:
        raise ValueError(
            f"n_grid must be an int >= 5 (points per axis of the quadrature grid), got {n_grid!r}"
        )
    flat_v = np.broadcast_to(sv, shape).reshape(-1)
    flat_a = np.broadcast_to(sa, shape).reshape(-1)
    joint = _bimodal_joint(
        flat_v, flat_a, *params, pc, mu, strategy, sm, lam, edges, unity_decision, kappa, n_grid
    )
    k = len(edges) - 1
    joint = joint.reshape(*shape, k, k, joint.shape[-1])
    out = dict(joint=joint, visual=joint.sum(axis=(-2, -1)), auditory=joint.sum(axis=(-3, -1)))
    if unity_decision is not None:
        out["common"] = _scalar_or_array(joint[..., 1].sum(axis=(-2, -1)))
    return out


def unity_judgement_probability(
    s_v: ArrayLike,
    s_a: ArrayLike,
    sigma_v: float,
    sigma_a: float,
    sigma_p: float,
    p_common: float,
    mu_p: float = 0.0,
    decision: str = "criterion",
    criterion: float = 0.5,
    lapse: float = 0.0,
    n_grid: int = 31,
) -> FloatArray:
    """Probability of reporting "one cause" for a flash at ``s_v`` and a sound at ``s_a``.

    An explicit causal judgement of the observer of Körding et al. (2007): ``"criterion"`` reports one
    cause when p(C=1 | x) exceeds ``criterion`` (0.5 is the maximum-a-posteriori choice); ``"matching"``
    reports one cause with probability p(C=1 | x), the probability matching of Wozny et al. (2010)
    applied to the causal report. With lapses::

        P(one | s) = (1 - lambda) E_x[D(x)] + lambda / 2,  D = 1[p(C=1 | x) > criterion] or p(C=1 | x).

    Computed with the quadrature of :func:`response_probabilities` (the criterion step averaged over
    each grid cell).

    Returns:
        ``(*S,)`` probabilities (a scalar for scalar stimuli).
    """
    probs = response_probabilities(
        s_v, s_a, sigma_v, sigma_a, sigma_p, p_common, KORDING_BUTTONS, mu_p, "averaging",
        0.0, lapse, decision, criterion, n_grid,
    )  # fmt: skip
    return probs["common"]


def simulate_unimodal_trials(
    s: ArrayLike,
    sigma: float,
    sigma_p: float,
    buttons: ArrayLike = KORDING_BUTTONS,
    mu_p: float = 0.0,
    sigma_motor: float = 0.0,
    lapse: float = 0.0,
    rng: np.random.Generator | int | None = None,
) -> FloatArray:
    """Sample button presses for trials with one stimulus each: ``(*S)`` pressed positions.

    The generative model of :func:`unimodal_response_probabilities`, by sampling: ``x ~ N(s, sigma^2)``,
    the prior-weighted estimate, motor noise, the nearest button; a lapse presses a random button.
    """
    edges = button_edges(buttons)
    b = np.asarray(buttons, dtype=float)
    sig, sig_p = float(_sigma("sigma", sigma)), float(_sigma("sigma_p", sigma_p))
    sm, lam = _motor_sigma(sigma_motor), _scalar_probability("lapse", lapse)
    mu = float(_as_float("mu_p", mu_p))
    stim = _as_float("s", s)
    gen = _rng(rng)
    x = stim + sig * gen.standard_normal(stim.shape)
    estimate = (x / sig**2 + mu / sig_p**2) / (1 / sig**2 + 1 / sig_p**2)
    index = _nearest(estimate + sm * gen.standard_normal(stim.shape), edges)
    lapsed = gen.uniform(size=stim.shape) < lam
    index = np.where(lapsed, gen.integers(0, len(b), size=stim.shape), index)
    return b[index]


def _nearest(values: FloatArray, edges: FloatArray) -> np.ndarray:
    return np.searchsorted(edges[1:-1], values)


def simulate_localization_trials(
    s_v: ArrayLike,
    s_a: ArrayLike,
    sigma_v: float,
    sigma_a: float,
    sigma_p: float,
    p_common: float,
    buttons: ArrayLike = KORDING_BUTTONS,
    mu_p: float = 0.0,
    strategy: str = "averaging",
    sigma_motor: float = 0.0,
    lapse: float = 0.0,
    unity_decision: str = "criterion",
    criterion: float = 0.5,
    rng: np.random.Generator | int | None = None,
) -> dict[str, np.ndarray]:
    """Sample the responses of :func:`response_probabilities` trial by trial (no quadrature).

    Each trial draws the measurements, the observer's estimates (:func:`causal_inference_estimate`'s
    strategies; matching draws its own uniform threshold), independent motor noise for the two
    reports, the nearest buttons, and the unity report; a lapse replaces all three by uniform guesses.

    Args:
        s_v, s_a: stimulus positions broadcasting to ``S`` (one trial per element).

    Returns:
        dict of ``(*S)`` arrays: ``r_v`` and ``r_a`` (pressed positions), ``unity`` (bool, True = "one
        cause") and ``p_common`` (the posterior p(C=1 | x) on each trial).
    """
    _check_strategy(strategy)
    edges = button_edges(buttons)
    b = np.asarray(buttons, dtype=float)
    sm, lam = _motor_sigma(sigma_motor), _scalar_probability("lapse", lapse)
    kappa = _check_unity(unity_decision, criterion)
    sv, sa = _as_float("s_v", s_v), _as_float("s_a", s_a)
    shape = _common_shape(s_v=sv, s_a=sa)
    gen = _rng(rng)
    x_v = sv + float(_sigma("sigma_v", sigma_v)) * gen.standard_normal(shape)
    x_a = sa + float(_sigma("sigma_a", sigma_a)) * gen.standard_normal(shape)
    p = _ci_params(x_v, x_a, sigma_v, sigma_a, sigma_p, p_common, mu_p)
    est_v, est_a, post = _combine(p, strategy, gen)
    i_v = _nearest(est_v + sm * gen.standard_normal(shape), edges)
    i_a = _nearest(est_a + sm * gen.standard_normal(shape), edges)
    threshold = gen.uniform(size=shape) if unity_decision == "matching" else kappa
    unity = post > threshold
    lapsed = gen.uniform(size=shape) < lam
    i_v = np.where(lapsed, gen.integers(0, len(b), size=shape), i_v)
    i_a = np.where(lapsed, gen.integers(0, len(b), size=shape), i_a)
    unity = np.where(lapsed, gen.uniform(size=shape) < 0.5, unity)
    return dict(r_v=b[i_v], r_a=b[i_a], unity=unity, p_common=post)


# --- fuzzy logical model of perception ---------------------------------------------------------------


def flmp(a: ArrayLike, v: ArrayLike) -> FloatArray:
    """Massaro's fuzzy logical model of perception (FLMP), the relative-goodness rule.

    Oden & Massaro (1978); Massaro (1987, *Speech perception by ear and eye*; 1998, *Perceiving
    talking faces*): each modality gives every response alternative ``k`` a degree of support (a
    fuzzy truth value) ``a_k`` and ``v_k`` in [0, 1]; the supports multiply and are normalised::

        P(k | A, V) = a_k v_k / sum_m a_m v_m.

    With two alternatives and supports ``(a, 1 - a)`` and ``(v, 1 - v)`` this is
    ``a v / (a v + (1 - a)(1 - v))`` (:func:`flmp_binary`).

    Args:
        a, v: ``(..., K)`` auditory and visual supports, K >= 2 alternatives on the last axis.

    Returns:
        ``(..., K)`` response probabilities (each row sums to 1).
    """
    av, vv = _probability("a", a), _probability("v", v)
    if av.ndim == 0 or vv.ndim == 0:
        raise ValueError(
            "flmp needs one support value per response alternative on the last axis, e.g. "
            "flmp([a_ba, a_da, a_ga], [v_ba, v_da, v_ga]); for two alternatives use flmp_binary(a, v)"
        )
    if av.shape[-1] != vv.shape[-1]:
        raise ValueError(
            f"a has {av.shape[-1]} alternatives and v has {vv.shape[-1]}; give both the same alternatives"
        )
    if av.shape[-1] < 2:
        raise ValueError("flmp needs at least two response alternatives on the last axis")
    shape = _common_shape(a=av, v=vv)
    product = np.broadcast_to(av * vv, shape)
    total = product.sum(axis=-1, keepdims=True)
    if np.any(total == 0):
        raise ValueError(
            "no alternative has support in both modalities (every a_k * v_k is 0) for some stimulus; "
            "the FLMP's relative-goodness rule is undefined there"
        )
    return product / total


def flmp_binary(a: ArrayLike, v: ArrayLike) -> FloatArray:
    """FLMP with two alternatives: ``P = a v / (a v + (1 - a)(1 - v))`` (Massaro 1998)."""
    av, vv = _probability("a", a), _probability("v", v)
    _common_shape(a=av, v=vv)
    num = av * vv
    den = num + (1 - av) * (1 - vv)
    if np.any(den == 0):
        raise ValueError("a = 1 with v = 0 (or the reverse) makes the two-alternative FLMP 0/0")
    return _scalar_or_array(num / den)


# --- McGurk effect ------------------------------------------------------------------------------------

SYLLABLES = ("ba", "da", "ga")


@dataclass(frozen=True)
class SyllableSpace:
    """Where the syllables lie on an auditory and a visual feature axis (the model's geometry).

    The auditory axis stands for the acoustic place-of-articulation cue (the second- and third-formant
    transitions), on which /ba/, /da/ and /ga/ form the classic continuum with /da/ in the middle.
    The visual axis stands for what the mouth shows: /ba/ closes the lips, visibly; /da/ and /ga/
    are articulated inside the mouth and look alike (one viseme class). The numbers are illustrative,
    chosen for these qualitative facts, not fitted to data; ``category_sd`` is the spread of each
    category's tokens around its prototype.
    """

    names: tuple[str, ...] = SYLLABLES
    auditory: tuple[float, ...] = (0.0, 1.0, 2.0)
    visual: tuple[float, ...] = (0.0, 1.8, 2.2)
    category_sd: float = 0.25
    prior: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        k = len(self.names)
        if len(self.auditory) != k or len(self.visual) != k:
            raise ValueError(
                f"{k} syllable names but {len(self.auditory)} auditory and {len(self.visual)} visual "
                "prototypes; give one of each per syllable"
            )
        _sigma("category_sd", self.category_sd)
        if self.prior is not None:
            prior = _probability("prior", self.prior)
            if prior.shape != (k,) or not np.isclose(prior.sum(), 1.0):
                raise ValueError(f"prior must hold {k} probabilities summing to 1, got {self.prior!r}")

    def index(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"unknown syllable {name!r}; this space knows {self.names}")
        return self.names.index(name)

    def prior_array(self) -> FloatArray:
        k = len(self.names)
        return np.full(k, 1.0 / k) if self.prior is None else np.asarray(self.prior, dtype=float)


MCGURK_DEFAULTS: dict[str, float] = dict(sigma_a=0.5, sigma_v=0.3, p_common=0.9)
"""Illustrative observer for :func:`mcgurk_responses` (not fitted): moderately reliable hearing and
lip-reading and a strong prior belief that a voice and the face in front of you belong together."""


def _log_normal(x: FloatArray, mean: FloatArray, var: FloatArray) -> FloatArray:
    return -0.5 * np.log(2 * np.pi * var) - 0.5 * (x - mean) ** 2 / var


def mcgurk_posterior(
    x_a: ArrayLike,
    x_v: ArrayLike,
    sigma_a: float,
    sigma_v: float,
    p_common: float,
    space: SyllableSpace | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Causal inference over syllables: p(C=1 | x) and the posterior of what was said.

    The generative model applies Körding et al.'s (2007) causal inference to a syllable space, in the
    spirit of the CIMS model of Magnotti & Beauchamp (2017, PLoS Comput Biol 13:e1005229). A
    syllable ``k`` has prototype ``(A_k, V_k)``; a token lies around it with spread ``tau``. Hearing
    measures the auditory feature, ``x_a ~ N(token_A, sigma_a^2)``, lip-reading the visual one,
    ``x_v ~ N(token_V, sigma_v^2)``.

    - C=1 (one talker): one syllable ``k`` drawn from the prior ``pi`` produced both, so
      ``p(x | C=1) = sum_k pi_k N(x_a; A_k, sa^2 + tau^2) N(x_v; V_k, sv^2 + tau^2)``;
    - C=2 (voice dubbed onto another face): independent syllables for the two streams, so
      ``p(x | C=2) = [sum_k pi_k N(x_a; A_k, sa^2 + tau^2)] [sum_k pi_k N(x_v; V_k, sv^2 + tau^2)]``.

    Then ``p(C=1 | x)`` follows from Bayes' rule as in Körding's eq. 2, and the heard syllable's
    posterior averages the two structures::

        p(k | x) = p(C=1 | x) p(k | x_a, x_v, C=1) + p(C=2 | x) p(k | x_a, C=2).

    The McGurk asymmetry falls out of the geometry. Auditory /ba/ with visual /ga/ lands next to the
    /da/ prototype (acoustically near /ba/, visually like /ga/), so a common cause is plausible and
    the fused percept is /da/. Auditory /ga/ with visual /ba/ lands where no syllable lives (acoustic
    /ga/ with closed lips), a common cause is implausible, and the voice is heard as it is: /ga/.

    Args:
        x_a, x_v: measurements on the auditory and visual axes (any broadcasting shapes ``S``).
        sigma_a, sigma_v: sensory noise of hearing and lip-reading (> 0).
        p_common: prior probability that voice and face share a cause, in [0, 1].

    Returns:
        ``(p_c1, posterior)``: shapes ``S`` and ``(*S, K)`` over ``space.names``.
    """
    space = space or SyllableSpace()
    xa, xv = _as_float("x_a", x_a), _as_float("x_v", x_v)
    shape = _common_shape(x_a=xa, x_v=xv)
    var_a = float(_sigma("sigma_a", sigma_a)) ** 2 + space.category_sd**2
    var_v = float(_sigma("sigma_v", sigma_v)) ** 2 + space.category_sd**2
    pc = float(_probability("p_common", p_common))
    log_pi = np.log(space.prior_array())
    la = _log_normal(np.asarray(xa)[..., None], np.asarray(space.auditory), var_a)  # (*S, K)
    lv = _log_normal(np.asarray(xv)[..., None], np.asarray(space.visual), var_v)
    la, lv = np.broadcast_to(la, (*shape, len(log_pi))), np.broadcast_to(lv, (*shape, len(log_pi)))
    joint = log_pi + la + lv  # log pi_k p(x_a|k) p(x_v|k)
    log_l1 = special.logsumexp(joint, axis=-1)
    log_la = special.logsumexp(log_pi + la, axis=-1)
    log_lv = special.logsumexp(log_pi + lv, axis=-1)
    with np.errstate(divide="ignore"):
        logit = np.log(pc) - np.log1p(-pc) + log_l1 - (log_la + log_lv)
    p_c1 = special.expit(logit)
    post_c1 = np.exp(joint - log_l1[..., None])
    post_c2 = np.exp(log_pi + la - log_la[..., None])
    posterior = p_c1[..., None] * post_c1 + (1 - p_c1[..., None]) * post_c2
    return _scalar_or_array(p_c1), posterior


def _stimulus_features(
    auditory: str, visual: str, congruence: ArrayLike | None, space: SyllableSpace
) -> tuple[float, FloatArray]:
    ia, iv = space.index(auditory), space.index(visual)
    a_feature = space.auditory[ia]
    if congruence is None:
        return a_feature, np.asarray(space.visual[iv], dtype=float)
    c = _probability("congruence", congruence)
    # congruence 1: the face says what the voice says; 0: the face says `visual`
    return a_feature, c * space.visual[ia] + (1 - c) * space.visual[iv]


def _response_probabilities(
    a_feature: float,
    v_feature: FloatArray,
    sigma_a: float,
    sigma_v: float,
    p_common: float,
    space: SyllableSpace,
    decision: str,
    n_grid: int,
) -> FloatArray:
    if decision not in ("map", "matching"):
        raise ValueError(
            f"decision must be 'map' (report the most probable syllable) or 'matching', got {decision!r}"
        )
    sa, sv = float(_sigma("sigma_a", sigma_a)), float(_sigma("sigma_v", sigma_v))
    z, w = _normal_grid(n_grid)
    vf = np.asarray(v_feature, dtype=float)
    x_a = a_feature + sa * z[:, None]  # (n, 1)
    x_v = vf[..., None, None] + sv * z[None, :]  # (*S, 1, n)
    _, post = mcgurk_posterior(x_a, x_v, sa, sv, p_common, space)  # (*S, n, n, K)
    if decision == "map":
        post = np.eye(post.shape[-1])[np.argmax(post, axis=-1)]
    w2 = (w[:, None] * w[None, :])[..., None]
    return np.sum(post * w2, axis=(-3, -2))


def mcgurk_responses(
    auditory: str = "ba",
    visual: str = "ga",
    sigma_a: float = MCGURK_DEFAULTS["sigma_a"],
    sigma_v: float = MCGURK_DEFAULTS["sigma_v"],
    p_common: float = MCGURK_DEFAULTS["p_common"],
    congruence: float | None = None,
    space: SyllableSpace | None = None,
    decision: str = "map",
    n_grid: int = 81,
) -> dict[str, float]:
    """Probability of reporting each syllable for a voice ``auditory`` dubbed onto a face ``visual``.

    Averages the observer of :func:`mcgurk_posterior` over sensory noise (quadrature on an
    ``n_grid``-point grid per axis). ``decision="map"`` reports the most probable syllable on each
    trial; ``"matching"`` reports syllable ``k`` with probability p(k | x).

    ``congruence`` (optional, in [0, 1]) morphs the face: 1 shows the mouth of the auditory syllable
    (a congruent token), 0 the mouth of ``visual``; in between, the visual feature is interpolated.

    Returns:
        ``{"ba": P, "da": P, "ga": P}`` (over ``space.names``), summing to 1.

    Example: ``mcgurk_responses("ba", "ga")`` reports mostly "da" (the McGurk fusion), while
    ``mcgurk_responses("ga", "ba")`` reports mostly "ga" (no fusion), as McGurk & MacDonald (1976)
    found.
    """
    space = space or SyllableSpace()
    if congruence is not None and np.ndim(congruence) != 0:
        raise ValueError("congruence must be one number here; use mcgurk_congruence_curve for many")
    a_feature, v_feature = _stimulus_features(auditory, visual, congruence, space)
    probs = _response_probabilities(a_feature, v_feature, sigma_a, sigma_v, p_common, space, decision, n_grid)
    return {name: float(p) for name, p in zip(space.names, probs, strict=True)}


def mcgurk_congruence_curve(
    auditory: str,
    visual: str,
    congruences: ArrayLike,
    sigma_a: float = MCGURK_DEFAULTS["sigma_a"],
    sigma_v: float = MCGURK_DEFAULTS["sigma_v"],
    p_common: float = MCGURK_DEFAULTS["p_common"],
    space: SyllableSpace | None = None,
    decision: str = "map",
    n_grid: int = 61,
) -> FloatArray:
    """Response probabilities along a morph of the face from ``visual`` (0) to congruent (1).

    Args:
        congruences: ``(N,)`` values in [0, 1].

    Returns:
        ``(N, K)`` probabilities over ``space.names``.
    """
    space = space or SyllableSpace()
    c = _probability("congruences", congruences)
    if c.ndim != 1:
        raise ValueError(f"congruences must be a 1-D array, got shape {c.shape}")
    a_feature, v_feature = _stimulus_features(auditory, visual, c, space)
    return _response_probabilities(a_feature, v_feature, sigma_a, sigma_v, p_common, space, decision, n_grid)


def ned_mcgurk_probability(
    disparity: ArrayLike, threshold: ArrayLike, sensory_noise: ArrayLike
) -> FloatArray:
    """Noisy encoding of disparity (NED) model of the McGurk effect (Magnotti & Beauchamp 2015).

    Psychon Bull Rev 22:701. A stimulus has an audio-visual disparity ``D``; an observer encodes it
    with Gaussian noise ``sigma`` and perceives the fusion when the encoded disparity falls below
    their threshold ``T``::

        P(McGurk) = P(D + eps < T) = Phi((T - D) / sigma),  eps ~ N(0, sigma^2).

    Stimuli differ in ``D`` and people in ``(T, sigma)``, which is why fusion rates vary so widely:
    Basu Mallick, Magnotti & Beauchamp (2015) found 17 % to 58 % across 12 McGurk stimuli and 0 % to
    100 % across 165 people.
    """
    d = _as_float("disparity", disparity)
    t = _as_float("threshold", threshold)
    s = _sigma("sensory_noise", sensory_noise)
    _common_shape(disparity=d, threshold=t, sensory_noise=s)
    return _scalar_or_array(special.ndtr((t - d) / s))


# --- sound-induced flash illusion --------------------------------------------------------------------

FLASH_BEEP_DEFAULTS: dict[str, float] = dict(sigma_v=0.7, sigma_a=0.25, p_common=0.8)
"""Illustrative observer for the flash-beep model (not fitted): counting beeps is about three times as
precise as counting flashes (hearing resolves time better than vision). With Gaussian count
noise this observer shows fusion (two flashes, one beep) about as strongly as fission; in the data
fusion is the weaker illusion, which Shams, Ma & Beierholm (2005) capture with a fitted joint prior."""


def _count_prior(counts: Sequence[int], prior: ArrayLike | None) -> tuple[FloatArray, FloatArray]:
    n = _as_float("counts", counts)
    if n.ndim != 1 or len(n) < 2:
        raise ValueError(f"counts must list at least two possible numbers of events, got {counts!r}")
    if prior is None:
        return n, np.full(len(n), 1.0 / len(n))
    pi = _probability("prior", prior)
    if pi.shape != n.shape or not np.isclose(pi.sum(), 1.0):
        raise ValueError(f"prior must give one probability per count ({len(n)}) summing to 1, got {prior!r}")
    return n, pi


def flash_beep_posterior(
    x_v: ArrayLike,
    x_a: ArrayLike | None,
    sigma_v: float,
    sigma_a: float,
    p_common: float,
    counts: Sequence[int] = (1, 2, 3, 4),
    prior: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Causal inference over numbers of events: posterior of the number of flashes.

    The sound-induced flash illusion (Shams, Kamitani & Shimojo 2000, Nature 408:788) explained as
    Bayesian inference (Shams, Ma & Beierholm 2005, NeuroReport 16:1923), here with the causal
    structure of Körding et al. (2007) over discrete counts (as in Wozny, Beierholm & Shams 2008 and
    Samad, Chung & Shams 2015). Counts ``n`` have prior ``pi``; the perceived numbers of flashes and
    beeps are noisy, ``x_v ~ N(n_v, sigma_v^2)`` and ``x_a ~ N(n_a, sigma_a^2)``.

    - C=1: one event train, ``n_v = n_a = n``: ``p(x | C=1) = sum_n pi_n N(x_v; n, sv^2) N(x_a; n, sa^2)``;
    - C=2: independent counts: ``p(x | C=2) = [sum_n pi_n N(x_v; n, sv^2)] [sum_n pi_n N(x_a; n, sa^2)]``;
    - ``p(n_v | x) = p(C=1 | x) p(n_v | x, C=1) + p(C=2 | x) p(n_v | x_v, C=2)``.

    ``x_a=None`` means no sound: the posterior is vision's alone and p(C=1) is returned as 0.

    Returns:
        ``(p_c1, posterior)`` with shapes ``S`` and ``(*S, len(counts))``.
    """
    n, pi = _count_prior(counts, prior)
    xv = _as_float("x_v", x_v)
    sv = float(_sigma("sigma_v", sigma_v))
    pc = float(_probability("p_common", p_common))
    lv = _log_normal(xv[..., None], n, sv**2) + np.log(pi)
    log_lv = special.logsumexp(lv, axis=-1)
    post_v = np.exp(lv - log_lv[..., None])
    if x_a is None:
        return _scalar_or_array(np.zeros(xv.shape)), post_v
    xa = _as_float("x_a", x_a)
    shape = _common_shape(x_v=xv, x_a=xa)
    sa = float(_sigma("sigma_a", sigma_a))
    la = _log_normal(xa[..., None], n, sa**2)
    joint = np.broadcast_to(lv + la, (*shape, len(n)))  # log pi_n N(x_v; n) N(x_a; n)
    log_l1 = special.logsumexp(joint, axis=-1)
    log_la = special.logsumexp(la + np.log(pi), axis=-1)
    with np.errstate(divide="ignore"):
        logit = np.log(pc) - np.log1p(-pc) + log_l1 - (log_lv + log_la)
    p_c1 = special.expit(logit)
    posterior = p_c1[..., None] * np.exp(joint - log_l1[..., None]) + (1 - p_c1[..., None]) * post_v
    return _scalar_or_array(p_c1), posterior


def flash_beep_report_probabilities(
    n_flashes: int,
    n_beeps: int,
    sigma_v: float = FLASH_BEEP_DEFAULTS["sigma_v"],
    sigma_a: float = FLASH_BEEP_DEFAULTS["sigma_a"],
    p_common: float = FLASH_BEEP_DEFAULTS["p_common"],
    counts: Sequence[int] = (1, 2, 3, 4),
    prior: ArrayLike | None = None,
    n_grid: int = 161,
) -> FloatArray:
    """P(report k flashes | n_flashes shown, n_beeps played), for k in ``counts``.

    The observer of :func:`flash_beep_posterior` reports its most probable number of flashes; the
    probabilities come from integrating that decision over the sensory noise of ``x_v`` and ``x_a``
    (a uniform grid of ``n_grid`` points per axis over +-6 standard deviations). ``n_beeps=0``
    means no sound (vision alone).

    Returns:
        ``(len(counts),)`` probabilities summing to 1.
    """
    for name, value in (("n_flashes", n_flashes), ("n_beeps", n_beeps)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if n_flashes < 1:
        raise ValueError("n_flashes must be at least 1 (a trial shows at least one flash)")
    n, _ = _count_prior(counts, prior)
    sv, sa = float(_sigma("sigma_v", sigma_v)), float(_sigma("sigma_a", sigma_a))
    z, w = _normal_grid(n_grid)
    x_v = n_flashes + sv * z
    if n_beeps == 0:
        _, post = flash_beep_posterior(x_v, None, sv, sa, p_common, counts, prior)
        choice = np.eye(len(n))[np.argmax(post, axis=-1)]
        return np.sum(choice * w[:, None], axis=0)
    x_a = n_beeps + sa * z
    _, post = flash_beep_posterior(x_v[:, None], x_a[None, :], sv, sa, p_common, counts, prior)
    choice = np.eye(len(n))[np.argmax(post, axis=-1)]
    return np.sum(choice * (w[:, None] * w[None, :])[..., None], axis=(0, 1))


def flash_beep_table(
    flashes: Sequence[int] = (1, 2, 3, 4),
    beeps: Sequence[int] = (0, 1, 2, 3, 4),
    sigma_v: float = FLASH_BEEP_DEFAULTS["sigma_v"],
    sigma_a: float = FLASH_BEEP_DEFAULTS["sigma_a"],
    p_common: float = FLASH_BEEP_DEFAULTS["p_common"],
    counts: Sequence[int] = (1, 2, 3, 4),
    n_grid: int = 121,
) -> FloatArray:
    """Mean reported number of flashes for every (flashes, beeps) pair: ``(len(flashes), len(beeps))``.

    The layout of Shams et al.'s (2000, 2002) figures: the diagonal is veridical, one flash with two
    or more beeps is seen as more (fission), two flashes with one beep as fewer (fusion).
    """
    values = np.asarray(counts, dtype=float)
    table = np.empty((len(flashes), len(beeps)))
    for i, f in enumerate(flashes):
        for j, b in enumerate(beeps):
            probs = flash_beep_report_probabilities(f, b, sigma_v, sigma_a, p_common, counts, n_grid=n_grid)
            table[i, j] = probs @ values
    return table


# --- multisensory neurons ------------------------------------------------------------------------------


def enhancement_index(multisensory: ArrayLike, unisensory: ArrayLike) -> FloatArray:
    """Multisensory enhancement in percent (Meredith & Stein 1983, 1986)::

        ME = 100 (CM - SM_max) / SM_max,

    with ``CM`` the response to the combined stimulus and ``SM_max`` the largest response to a
    single modality. Positive: enhancement; negative: depression.

    Args:
        multisensory: ``(...)`` responses to the combined stimulus (non-negative).
        unisensory: ``(..., K)`` responses to each modality alone (non-negative, best one > 0).
    """
    cm = _nonnegative("multisensory", multisensory)
    sm = _nonnegative("unisensory", unisensory)
    if sm.ndim == 0:
        raise ValueError("unisensory needs the modalities on the last axis, e.g. [visual, auditory]")
    best = sm.max(axis=-1)
    _common_shape(multisensory=cm, best_unisensory=best)
    if np.any(best == 0):
        raise ValueError(
            "the best unisensory response is 0, so the enhancement index (CM - SM_max) / SM_max is "
            "undefined; use responses above baseline that are positive for at least one modality"
        )
    return _scalar_or_array(100.0 * (cm - best) / best)


def additivity_index(multisensory: ArrayLike, unisensory: ArrayLike) -> FloatArray:
    """Combined response over the sum of the unisensory responses, ``CM / sum_k SM_k``.

    1 means additive, above 1 superadditive, below 1 subadditive (the comparison with the additive
    prediction used by Stanford, Quessy & Stein 2005, J Neurosci 25:6499, and Stein & Stanford 2008).

    Args:
        multisensory: ``(...)``; unisensory: ``(..., K)``, non-negative with a positive sum.
    """
    cm = _nonnegative("multisensory", multisensory)
    sm = _nonnegative("unisensory", unisensory)
    if sm.ndim == 0:
        raise ValueError("unisensory needs the modalities on the last axis, e.g. [visual, auditory]")
    total = sm.sum(axis=-1)
    _common_shape(multisensory=cm, unisensory_sum=total)
    if np.any(total == 0):
        raise ValueError("the unisensory responses sum to 0; the additivity index is undefined")
    return _scalar_or_array(cm / total)


def normalization_neuron(
    visual: ArrayLike,
    auditory: ArrayLike,
    weights: tuple[float, float] = (1.0, 1.0),
    exponent: float = 2.0,
    semi_saturation: float = 1.0,
    r_max: float = 1.0,
) -> FloatArray:
    """Firing rate of a model multisensory neuron: a power law of summed drive, divisively normalised.

    The normalisation model of Ohshiro, Angelaki & DeAngelis (2011, Nat Neurosci 14:775) with the
    normalisation pool reduced to the neuron itself (a Naka-Rushton function)::

        E = d_v I_v + d_a I_a,   R = r_max E^n / (alpha^n + E^n).

    The expansive exponent (n > 1) makes weak inputs add superadditively; saturation makes strong
    inputs add subadditively. Together they give the *principle of inverse effectiveness*: the
    weaker the unisensory responses, the larger the enhancement index.

    Args:
        visual, auditory: non-negative input strengths (broadcasting shapes).
    """
    iv, ia = _nonnegative("visual", visual), _nonnegative("auditory", auditory)
    _common_shape(visual=iv, auditory=ia)
    if float(_as_float("exponent", exponent)) <= 0:
        raise ValueError(f"exponent must be positive, got {exponent}")
    if float(_as_float("r_max", r_max)) <= 0:
        raise ValueError(f"r_max is the neuron's largest firing rate and must be positive, got {r_max}")
    w = _nonnegative("weights", weights)
    if w.shape != (2,):
        raise ValueError(f"weights must be two numbers (d_v, d_a), got {weights!r}")
    alpha = float(_sigma("semi_saturation", semi_saturation))
    drive = weights[0] * iv + weights[1] * ia
    if np.any(drive < 0):
        raise ValueError("the weighted drive is negative; use non-negative weights")
    return _scalar_or_array(r_max * drive**exponent / (alpha**exponent + drive**exponent))


# --- learning from temporal coincidence -------------------------------------------------------------


def gamma_kernel(tau: float, dt: float, length: float | None = None) -> FloatArray:
    """Causal low-pass kernel ``f(t) = t exp(-t / tau) / tau^2`` sampled every ``dt`` (unit area).

    The temporal filter of the multisensory correlation detector (Parise & Ernst 2016); it is the
    Gamma(2, tau) density, so two of them in series give Gamma(4, tau).
    """
    tau, dt = float(_sigma("tau", tau)), float(_sigma("dt", dt))
    if dt > tau / 4:
        raise ValueError(
            f"dt={dt:g} is too coarse for tau={tau:g}: the sampled kernel would not have unit area "
            f"(at dt >= tau it is 0). Use dt <= tau / 4 = {tau / 4:g}, e.g. dt = tau / 50"
        )
    length = 12 * tau if length is None else float(_sigma("length", length))
    t = np.arange(0.0, length, dt)
    return t * np.exp(-t / tau) / tau**2


def _filter(x: FloatArray, tau: float, dt: float) -> FloatArray:
    kernel = gamma_kernel(tau, dt) * dt
    return sps.fftconvolve(x, kernel, mode="full", axes=-1)[..., : x.shape[-1]]


def correlation_detector(
    visual: ArrayLike,
    auditory: ArrayLike,
    dt: float,
    tau_v: float = 0.07,
    tau_a: float = 0.05,
    tau_av: float = 0.5,
) -> dict[str, FloatArray]:
    """Multisensory correlation detector (MCD) of Parise & Ernst (2016), Nat Commun 7:11543.

    Like a Hassenstein-Reichardt motion detector with one arm per modality. Each signal is low-pass
    filtered (``f_v``, ``f_a``); each subunit multiplies one modality with a further-delayed copy
    (``f_av``) of the other::

        u_1 = (S_v * f_v * f_av) (S_a * f_a),   u_2 = (S_v * f_v) (S_a * f_a * f_av),
        MCD_corr = u_1 u_2,                      MCD_lag = u_1 - u_2,

    (``*`` is convolution in time). ``MCD_corr`` is large when the two signals are correlated in
    time; ``MCD_lag`` is positive when vision leads and negative when sound leads. The filters are
    the Gamma(2, tau) kernels of :func:`gamma_kernel`; the default time constants are illustrative
    (tens of milliseconds for the unimodal filters, longer for the cross-modal delay), not the
    paper's fitted values.

    Args:
        visual, auditory: ``(..., T)`` signals sampled every ``dt`` seconds (same shape).

    Returns:
        dict with ``corr`` and ``lag`` ``(..., T)`` over time and their time averages
        ``corr_mean`` and ``lag_mean`` ``(...)``.
    """
    v, a = _as_float("visual", visual), _as_float("auditory", auditory)
    if v.shape != a.shape:
        raise ValueError(f"visual {v.shape} and auditory {a.shape} must have the same shape (..., T)")
    if v.ndim == 0 or v.shape[-1] < 2:
        raise ValueError("the signals need a time axis (last) with at least 2 samples")
    dt = float(_sigma("dt", dt))
    fv, fa = _filter(v, tau_v, dt), _filter(a, tau_a, dt)
    u1 = _filter(fv, tau_av, dt) * fa
    u2 = fv * _filter(fa, tau_av, dt)
    corr, lag = u1 * u2, u1 - u2
    return dict(corr=corr, lag=lag, corr_mean=corr.mean(axis=-1), lag_mean=lag.mean(axis=-1))


def hebbian_association(
    visual: ArrayLike, auditory: ArrayLike, learning_rate: float = 0.05, decay: float = 0.0
) -> FloatArray:
    """Learn cross-modal associations from co-occurrence with the covariance rule (Sejnowski 1977).

    At every time step ``t`` the weight from visual unit ``i`` to auditory unit ``j`` changes by::

        dW_ij = eta (v_i(t) - <v_i>) (a_j(t) - <a_j>) - lambda W_ij,

    with ``<.>`` the mean over the sequence. Features that occur together more often than chance
    strengthen their link; features that co-occur only by chance stay near zero, so temporal
    coincidence, not mere frequency, builds the association.

    Args:
        visual: ``(T, n_v)`` activity; auditory: ``(T, n_a)``, the same time steps.

    Returns:
        ``W``: ``(n_v, n_a)`` after one pass over the sequence, starting from zero.
    """
    v, a = _as_float("visual", visual), _as_float("auditory", auditory)
    if v.ndim != 2 or a.ndim != 2:
        raise ValueError(f"visual and auditory must be 2-D (T, units), got shapes {v.shape} and {a.shape}")
    if v.shape[0] != a.shape[0]:
        raise ValueError(f"visual has {v.shape[0]} time steps and auditory {a.shape[0]}; they must match")
    if learning_rate <= 0 or not 0 <= decay < 1:
        raise ValueError("learning_rate must be positive and decay in [0, 1)")
    dv, da = v - v.mean(axis=0), a - a.mean(axis=0)
    if decay == 0:
        return learning_rate * dv.T @ da
    w = np.zeros((v.shape[1], a.shape[1]))
    for t in range(v.shape[0]):
        w += learning_rate * np.outer(dv[t], da[t]) - decay * w
    return w
