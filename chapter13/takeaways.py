"""13.7 Take-aways: the chapter's networks measured against the observers of 13.5.

One measurement and one figure per take-away of the chapter's 13.7 (notebook
``13.7-take-aways.ipynb`` and its presenter page call these):

1. **Combining modalities helps, most when each is weak.** The two-stream network of 13.5
   (:class:`chapter13.hierarchy.TwoStreamFusion`) against each stream alone, the product of experts,
   and the maximum-likelihood prediction from the two unisensory accuracies alone
   (:func:`mle_accuracy`: each accuracy becomes the d' of an M-alternative forced choice, Green & Swets
   1966; the two are combined as Ernst & Banks 2002 combine cues, with
   :func:`chapter13.neuro.mle_combine`). :func:`combination_table`, :func:`plot_combination`.
2. **Cross-modal binding.** A categorical causal-inference observer (Körding et al. 2007, in its
   discrete form) built from the network's own unisensory posteriors
   (:func:`causal_inference_observer`), confronted with the network's reports on incongruent digits
   (:func:`av_trials`); its prior of a common cause is fitted by maximum likelihood, in log-odds
   (:func:`fit_p_common`). :func:`binding_summary`, :func:`plot_binding`.
3. **A joint space, two ways.** A contrastive fit (CLIP's symmetric InfoNCE loss, Radford et al.
   2021; :func:`fit_contrastive`) and the Hebbian covariance rule (:func:`chapter13.neuro.hebbian_association`;
   :func:`hebbian_similarity`) learn the same image-sound pairing from co-occurring pairs;
   :func:`retrieval_curve` measures Recall@1 on held-out pairs against the number of pairs seen.
   :func:`plot_joint_space`.
4. **Diffusion as principled generation.** Forward noising, a reverse DDIM chain and classifier-free
   guidance, from the shipped models (:func:`diffusion_recap`, :func:`plot_diffusion_recap`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy import optimize, special, stats
from scipy.integrate import trapezoid
from torch import nn
from tqdm.auto import tqdm

from chapter13.config import check_finite, check_seed, torch_threads
from chapter13.diffusion import sample_ddim, timesteps
from chapter13.evaluate import CONFIDENCE_THRESHOLD, classify
from chapter13.hierarchy import DTMF_HZ, TwoStreamFusion, auditory_code, fusion_posteriors
from chapter13.multimodal import contrastive_loss, recall_at_k, similarity_matrix
from chapter13.neuro import enhancement_index, hebbian_association, mle_combine
from chapter13.plotting import show_grid
from chapter13.text2image import generate
from chapter13.train import fit

__all__ = [
    "BINDING_CONDITIONS",
    "CATEGORIES",
    "COLORS",
    "LOG_ODDS_GRID",
    "AVTrials",
    "DiffusionRecap",
    "ObserverReport",
    "PCommonFit",
    "PairProjection",
    "accuracy_from_dprime",
    "av_trials",
    "binding_summary",
    "category_fractions",
    "causal_inference_observer",
    "combination_table",
    "common_cause_ratio",
    "diffusion_recap",
    "dprime_from_accuracy",
    "fit_contrastive",
    "fit_p_common",
    "hebbian_similarity",
    "mle_accuracy",
    "paired_features",
    "plot_binding",
    "plot_combination",
    "plot_diffusion_recap",
    "plot_joint_space",
    "report_log_likelihood",
    "retrieval_curve",
]

COLORS = {
    "visual": "#0072B2",  # Okabe & Ito's colour-blind-safe palette
    "auditory": "#E69F00",
    "network": "#000000",
    "product": "#009E73",
    "mle": "#D55E00",
    "observer": "#CC79A7",
    "hebbian": "#E69F00",
    "contrastive": "#0072B2",
}
"""Colours of the figures (Okabe & Ito 2008); every line also has its own marker and line style."""


# --- 1. combining modalities: the maximum-likelihood prediction from two accuracies ---------------------

_Z = np.linspace(-12.0, 12.0, 4801)
_PHI_Z = stats.norm.pdf(_Z)


def _check_alternatives(n_alternatives: int) -> int:
    if isinstance(n_alternatives, bool) or not isinstance(n_alternatives, int) or n_alternatives < 2:
        raise ValueError(
            f"n_alternatives must be an int >= 2 (the choices of the task), got {n_alternatives!r}"
        )
    return n_alternatives


def accuracy_from_dprime(d_prime: ArrayLike, n_alternatives: int = 10) -> np.ndarray | float:
    """Proportion correct of an M-alternative forced choice with sensitivity d' (Green & Swets 1966).

    One of M equal-variance Gaussian channels carries the signal (mean d'), the others noise (mean
    0); the observer picks the largest. It is right when the signal channel beats all M - 1 others::

        P_c(d') = ∫ φ(z) Φ(z + d')^(M - 1) dz

    (trapezoidal quadrature on z ∈ [-12, 12]; error below 1e-9). ``P_c(0) = 1/M``; for M = 2,
    ``Φ(d' / √2)``.

    Args:
        d_prime: d' >= 0, a number or an array (``inf`` gives 1).
        n_alternatives: M, the number of choices (10 digits).

    Returns:
        P_c with the shape of ``d_prime`` (a float for a number).
    """
    m = _check_alternatives(n_alternatives)
    d = np.asarray(d_prime, dtype=float)
    if np.any(np.isnan(d)) or np.any(d < 0):
        raise ValueError(f"d' must be >= 0 (and not NaN), got {d_prime!r}")
    finite = np.where(np.isfinite(d), d, 0.0)
    cdf = stats.norm.cdf(_Z + finite[..., None])
    pc = trapezoid(_PHI_Z * cdf ** (m - 1), _Z, axis=-1)
    pc = np.where(np.isfinite(d), np.clip(pc, 1.0 / m, 1.0), 1.0)
    return float(pc) if pc.ndim == 0 else pc


def dprime_from_accuracy(accuracy: ArrayLike, n_alternatives: int = 10) -> np.ndarray | float:
    """The d' that gives proportion correct ``accuracy`` in an M-alternative forced choice: the inverse
    of :func:`accuracy_from_dprime` (Brent's method). ``accuracy`` must lie in [1/M, 1): chance gives
    0, and a perfect score has no finite d' (correct it first, e.g. to 1 - 1/(2N) for N trials)."""
    m = _check_alternatives(n_alternatives)
    p = np.asarray(accuracy, dtype=float)
    if np.any(np.isnan(p)) or np.any(p < 1.0 / m - 1e-12) or np.any(p >= 1.0):
        raise ValueError(
            f"accuracy must lie in [1/M, 1) = [{1 / m:.3g}, 1) for d' to exist, got {accuracy!r}; clip a "
            "below-chance score to 1/M and a perfect one to 1 - 1/(2N)"
        )
    flat = [
        0.0 if q <= 1.0 / m else optimize.brentq(lambda d, q=q: accuracy_from_dprime(d, m) - q, 0.0, 40.0)
        for q in p.ravel()
    ]
    out = np.array(flat).reshape(p.shape)
    return float(out) if out.ndim == 0 else out


def mle_accuracy(
    accuracy_visual: float, accuracy_auditory: float, *, n_trials: int, n_alternatives: int = 10
) -> dict[str, float]:
    """The accuracy an ideal observer reaches with both senses, predicted from the two accuracies alone.

    Each unisensory accuracy is turned into a sensitivity d' (:func:`dprime_from_accuracy`), i.e. a
    noise ``σ = 1/d'`` in units of the signal; the two noises combine as independent Gaussian cues
    (Ernst & Banks 2002, :func:`chapter13.neuro.mle_combine`)::

        σ_VA² = σ_V² σ_A² / (σ_V² + σ_A²)   ⇔   d'_VA = √(d'_V² + d'_A²),

    and ``d'_VA`` goes back to a proportion correct (:func:`accuracy_from_dprime`). Accuracies are first
    clipped into [1/M, 1 - 1/(2N)] (a perfect score out of N trials counts as 1 - 1/(2N)).

    Returns:
        ``d_visual``, ``d_auditory``, ``d_combined``, ``sigma_combined`` and the predicted ``accuracy``.
    """
    m = _check_alternatives(n_alternatives)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(
            f"n_trials must be a positive int (the trials behind each accuracy), got {n_trials!r}"
        )
    accuracies = []
    for name, value in (("accuracy_visual", accuracy_visual), ("accuracy_auditory", accuracy_auditory)):
        if not 0.0 <= check_finite(value, name) <= 1.0:
            raise ValueError(f"{name} is a proportion in [0, 1], got {value}")
        accuracies.append(min(max(float(value), 1.0 / m), 1.0 - 0.5 / n_trials))
    d_v, d_a = (float(dprime_from_accuracy(a, m)) for a in accuracies)
    if max(d_v, d_a) == 0.0:
        sigma, d_va = math.inf, 0.0
    else:
        sigmas = [1.0 / d if d > 0 else 1e12 for d in (d_v, d_a)]  # d' = 0: no information, sigma "infinite"
        _, sigma_combined, _ = mle_combine([0.0, 0.0], sigmas)
        sigma = float(sigma_combined)
        d_va = 1.0 / sigma
    return dict(
        d_visual=d_v,
        d_auditory=d_a,
        d_combined=d_va,
        sigma_combined=sigma,
        accuracy=float(accuracy_from_dprime(d_va, m)),
    )


def combination_table(
    rows: Sequence[dict[str, float]], *, n_trials: int, n_alternatives: int = 10
) -> list[dict[str, float]]:
    """:func:`chapter13.hierarchy.evaluate_fusion`'s rows with the maximum-likelihood prediction added.

    Each row gains ``mle`` (:func:`mle_accuracy` from its ``visual`` and ``auditory`` accuracies),
    ``d_visual``, ``d_auditory``, and the enhancement index (Meredith & Stein) of the product of experts
    and of the prediction, ``product_enhancement`` and ``mle_enhancement`` (``enhancement`` is the
    network's own).
    """
    out = []
    for row in rows:
        missing = {"visual", "auditory", "fused", "product"} - set(row)
        if missing:
            raise ValueError(f"each row needs the accuracies of evaluate_fusion; missing {sorted(missing)}")
        best = [row["visual"], row["auditory"]]
        mle = mle_accuracy(row["visual"], row["auditory"], n_trials=n_trials, n_alternatives=n_alternatives)
        out.append(
            {
                **row,
                "mle": mle["accuracy"],
                "d_visual": mle["d_visual"],
                "d_auditory": mle["d_auditory"],
                "product_enhancement": float(enhancement_index(row["product"], best)),
                "mle_enhancement": float(enhancement_index(mle["accuracy"], best)),
            }
        )
    return out


def plot_combination(table: Sequence[dict[str, float]], n_alternatives: int = 10) -> Figure:
    """Figure: accuracy of each stream, of the network's fusion, of the product of experts and of the
    maximum-likelihood prediction across noise (left); the enhancement index against the best single
    stream's accuracy, inverse effectiveness (right). ``table``: rows of :func:`combination_table`."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    level = np.arange(len(table))
    labels = [f"{r['image_noise']:g} / {r['sound_noise']:g}" for r in table]
    lines = (
        ("visual", "visual stream alone", "o-", 1.2),
        ("auditory", "auditory stream alone", "s-", 1.2),
        ("fused", "network: learned fusion", "^-", 2.2),
        ("product", "product of experts", "x--", 1.4),
        ("mle", "MLE prediction from the two accuracies", "d:", 1.8),
    )
    for key, label, style, width in lines:
        color = COLORS["network" if key == "fused" else key]
        ax1.plot(level, [100 * r[key] for r in table], style, color=color, lw=width, label=label)
    ax1.axhline(100 / n_alternatives, color="0.5", lw=0.8, ls=":", label="chance")
    ax1.set_xticks(level, labels)
    ax1.set_xlabel("noise std (image / sound)")
    ax1.set_ylabel("accuracy (%)")
    ax1.set_ylim(0, 102)
    ax1.set_title("both senses beat either one")
    ax1.legend(fontsize=8, loc="lower left")
    best = [100 * max(r["visual"], r["auditory"]) for r in table]
    for key, label, style, color in (
        ("enhancement", "network", "^-", COLORS["network"]),
        ("product_enhancement", "product of experts", "x--", COLORS["product"]),
        ("mle_enhancement", "MLE prediction", "d:", COLORS["mle"]),
    ):
        ax2.plot(best, [r[key] for r in table], style, color=color, label=label)
    ax2.invert_xaxis()
    ax2.set_xlabel("best single-sense accuracy (%)  (weaker senses to the right)")
    ax2.set_ylabel("enhancement index (%)")
    ax2.set_title("inverse effectiveness")
    ax2.legend(fontsize=8, loc="upper left")
    return fig


# --- 2. cross-modal binding: a categorical causal-inference observer ---------------------------------


def _posteriors(p_visual: ArrayLike, p_auditory: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p_v = np.asarray(p_visual, dtype=float)
    p_a = np.asarray(p_auditory, dtype=float)
    if p_v.ndim == 1:
        p_v, p_a = p_v[None], np.asarray(p_a, dtype=float).reshape(1, -1)
    if p_v.ndim != 2 or p_v.shape != p_a.shape or p_v.shape[1] < 2:
        raise ValueError(
            f"p_visual and p_auditory must both be (N, K) posteriors over K >= 2 classes (or (K,)), got "
            f"shapes {np.shape(p_visual)} and {np.shape(p_auditory)}"
        )
    for name, p in (("p_visual", p_v), ("p_auditory", p_a)):
        if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(1), 1.0, atol=1e-6):
            raise ValueError(
                f"{name} must hold probabilities (finite, >= 0, each row summing to 1), e.g. "
                "logits.softmax(1) of a stream's read-out"
            )
    return p_v, p_a


def _prior(prior: ArrayLike | None, k: int) -> np.ndarray:
    if prior is None:
        return np.full(k, 1.0 / k)
    pi = np.asarray(prior, dtype=float)
    if pi.shape != (k,) or not np.all(np.isfinite(pi)) or np.any(pi <= 0) or not np.isclose(pi.sum(), 1):
        raise ValueError(f"prior must be {k} positive probabilities summing to 1, got {prior!r}")
    return pi


def _check_probability(name: str, value: float) -> float:
    if not 0.0 <= check_finite(value, name) <= 1.0:
        raise ValueError(f"{name} is a probability in [0, 1], got {value}")
    return float(value)


def common_cause_ratio(
    p_visual: ArrayLike, p_auditory: ArrayLike, prior: ArrayLike | None = None
) -> np.ndarray:
    """The likelihood ratio of one cause against two, Λ = p(v, a | C=1) / p(v, a | C=2), per trial.

    With stream posteriors ``q_V(k) = p(k | v)`` and ``q_A(k) = p(k | a)`` under the class prior π
    (Bayes' rule: ``p(v | k) = q_V(k) p(v) / π_k``)::

        p(v, a | C=1) = Σ_k π_k p(v | k) p(a | k) = p(v) p(a) Σ_k q_V(k) q_A(k) / π_k
        p(v, a | C=2) = [Σ_k π_k p(v | k)] [Σ_k π_k p(a | k)] = p(v) p(a)
        Λ = Σ_k q_V(k) q_A(k) / π_k.

    Λ > 1 when the two senses agree on a digit more than independent causes would by chance, Λ < 1
    when they disagree; a stream that knows nothing (``q = π``) gives Λ = 1.

    Args:
        p_visual, p_auditory: ``(N, K)`` (or ``(K,)``) posteriors of the two streams.
        prior: ``(K,)`` class prior π (uniform by default).

    Returns:
        ``(N,)`` Λ.
    """
    p_v, p_a = _posteriors(p_visual, p_auditory)
    pi = _prior(prior, p_v.shape[1])
    return (p_v * p_a / pi).sum(1)


@dataclass(frozen=True)
class ObserverReport:
    """What the categorical causal-inference observer computes for N trials over K classes.

    ``p_common_posterior``: ``(N,)`` p(C=1 | v, a); ``fused``: ``(N, K)`` p(k | v, a, C=1), the
    product of experts; ``segregated``: ``(N, K)`` p(k | v, a, C=2); ``report``: ``(N, K)`` the
    model-averaged report probabilities (each row sums to 1).
    """

    p_common_posterior: np.ndarray
    fused: np.ndarray
    segregated: np.ndarray
    report: np.ndarray


def _log_odds(p_common: float | None, log_odds: float | None) -> float:
    """The prior log-odds of one cause, θ = log(p_c / (1 - p_c)), from exactly one of the two."""
    if (p_common is None) == (log_odds is None):
        raise ValueError("give the prior of one cause as p_common (a probability) or as log_odds, not both")
    if log_odds is not None:
        if not isinstance(log_odds, (int, float, np.floating)) or math.isnan(log_odds):
            raise ValueError(f"log_odds must be a number (±inf allowed), got {log_odds!r}")
        return float(log_odds)
    pc = _check_probability("p_common", p_common)  # type: ignore[arg-type]
    with np.errstate(divide="ignore"):
        return float(np.log(pc) - np.log1p(-pc))


def causal_inference_observer(
    p_visual: ArrayLike,
    p_auditory: ArrayLike,
    p_common: float | None = None,
    *,
    log_odds: float | None = None,
    prior: ArrayLike | None = None,
    visual_weight: float = 0.5,
) -> ObserverReport:
    """Körding et al.'s (2007) causal inference over K categories, from two streams' posteriors.

    Generative model: with probability ``p_common`` one digit k ~ π caused both the image and the sound
    (C = 1); otherwise two digits k_V, k_A ~ π, drawn independently, caused one each (C = 2). Then
    (:func:`common_cause_ratio` for Λ)::

        p(C=1 | v, a)    = p_c Λ / (p_c Λ + 1 - p_c)                        (Körding et al.'s eq. 2)
        p(k | v, a, C=1) = q_V(k) q_A(k) / (π_k Λ)                          (product of experts)
        p(k | v, a, C=2) = w q_V(k) + (1 - w) q_A(k)
        p(report k)      = p(C=1 | v, a) p(k | v, a, C=1) + p(C=2 | v, a) p(k | v, a, C=2)

    The last line is model averaging. Under C = 2 there are two digits and the question ("which
    digit?") names no sense: it refers to the visual one with probability ``w = visual_weight`` (1/2:
    either sense equally; 0: "what did you hear?", as in McGurk experiments). The report is probabilistic
    (the observer samples its answer from p(report k)), which gives every report a likelihood.

    The posterior is computed in log-odds, ``logit p(C=1 | v, a) = θ + log Λ`` with ``θ = log(p_c /
    (1 - p_c))``, so that a prior within 1e-16 of 0 or 1 (which a float cannot tell from 0 or 1) can
    still be given, as ``log_odds``.

    Args:
        p_visual, p_auditory: ``(N, K)`` (or ``(K,)``) posteriors of the two streams, each row a
            probability vector (e.g. ``logits.softmax(1)`` of each stream's read-out).
        p_common: the prior probability of one cause, in [0, 1]; or instead
        log_odds: its log-odds θ (``inf`` for p_common = 1).
        prior: ``(K,)`` class prior π, the one the stream posteriors were computed under (uniform).
        visual_weight: w in [0, 1].

    Raises:
        ValueError: bad shapes or probabilities; or ``p_common = 1`` for a trial whose streams share no
            digit (Λ = 0: the observation is impossible under one cause).
    """
    p_v, p_a = _posteriors(p_visual, p_auditory)
    theta = _log_odds(p_common, log_odds)
    w = _check_probability("visual_weight", visual_weight)
    pi = _prior(prior, p_v.shape[1])
    joint = p_v * p_a / pi  # (N, K)
    ratio = joint.sum(1)
    if theta == math.inf and np.any(ratio == 0):
        raise ValueError(
            "with p_common = 1 every trial must be possible under one cause, but in some the two streams' "
            "posteriors share no class (Λ = 0); use p_common < 1"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        fused = np.where(ratio[:, None] > 0, joint / ratio[:, None], pi)
        logit = np.where(ratio > 0, theta + np.log(ratio), -math.inf)
    if theta == -math.inf:
        logit = np.full_like(ratio, -math.inf)
    one, two = special.expit(logit), special.expit(-logit)  # both, for precision near 0 and 1
    segregated = w * p_v + (1.0 - w) * p_a
    report = one[:, None] * fused + two[:, None] * segregated
    return ObserverReport(one, fused, segregated, report)


def _check_reports(reports: ArrayLike, n: int, k: int) -> np.ndarray:
    r = np.asarray(reports)
    if r.shape != (n,) or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(
            f"reports must be ({n},) integer class indices, one per trial, got {r.dtype} {r.shape}"
        )
    if n and (r.min() < 0 or r.max() >= k):
        raise ValueError(f"reports must be class indices in 0..{k - 1}")
    return r


def report_log_likelihood(
    p_visual: ArrayLike,
    p_auditory: ArrayLike,
    reports: ArrayLike,
    p_common: float | None = None,
    *,
    log_odds: float | None = None,
    prior: ArrayLike | None = None,
    visual_weight: float = 0.5,
) -> float:
    """log L = Σ_n log p(report r_n | v_n, a_n): how well the observer (at ``p_common``, or at prior
    log-odds ``log_odds``) predicts the reports ``(N,)`` (class indices, e.g. the network's ``argmax`` of
    its fused output). ``-inf`` when a report has probability 0, or for p_common = 1 when a trial is
    impossible under one cause."""
    p_v, p_a = _posteriors(p_visual, p_auditory)
    r = _check_reports(reports, *p_v.shape)
    theta = _log_odds(p_common, log_odds)
    if theta == math.inf and np.any(common_cause_ratio(p_v, p_a, prior) == 0):
        return -math.inf
    obs = causal_inference_observer(p_v, p_a, log_odds=theta, prior=prior, visual_weight=visual_weight)
    with np.errstate(divide="ignore"):
        return float(np.log(obs.report[np.arange(len(r)), r]).sum())


def _near_one(p: float) -> str:
    """``0.731``, or ``1 - 2.1e-07`` for a probability too close to 1 for decimals."""
    return f"1 - {1 - p:.2g}" if 0.999 < p < 1 else f"{p:.4g}"


LOG_ODDS_GRID = np.linspace(-30.0, 30.0, 121)
"""Where :func:`fit_p_common` first looks: prior log-odds of one cause from -30 to 30 (p_common from
1e-13 to 1 - 1e-13), every 0.5, and then at p_common = 0 and 1 themselves."""


@dataclass(frozen=True)
class PCommonFit:
    """The maximum-likelihood prior of one cause, as ``p_common`` and as its log-odds ``log_odds``
    (θ = log(p_c / (1 - p_c)), what the data pin down when p_common is close to 0 or 1), with the
    ``log_likelihood``, the likelihood-ratio 95 % interval (where 2 (log L_max - log L) <= 3.84,
    chi-squared with one degree of freedom) as ``interval`` (p_common) and ``log_odds_interval``, the
    log likelihood of the two extreme observers, ``log_likelihood_fusion`` (p_common = 1, always one
    cause) and ``log_likelihood_segregation`` (0), and the ``profile``: (θ on :data:`LOG_ODDS_GRID`,
    log L there)."""

    p_common: float
    log_odds: float
    log_likelihood: float
    interval: tuple[float, float]
    log_odds_interval: tuple[float, float]
    n_trials: int
    log_likelihood_fusion: float
    log_likelihood_segregation: float
    profile: tuple[np.ndarray, np.ndarray]

    def summary(self) -> str:
        lo, hi = (_near_one(p) for p in self.interval)
        t_lo, t_hi = self.log_odds_interval
        return (
            f"p_common = {_near_one(self.p_common)}, log-odds {self.log_odds:.1f} (95 % interval: p_common "
            f"{lo} to {hi}, log-odds {t_lo:.1f} to {t_hi:.1f}) from {self.n_trials} answers; log L "
            f"{self.log_likelihood:.1f} (always fuse: {self.log_likelihood_fusion:.1f}, never: "
            f"{self.log_likelihood_segregation:.1f})"
        )


def fit_p_common(
    p_visual: ArrayLike,
    p_auditory: ArrayLike,
    reports: ArrayLike,
    *,
    prior: ArrayLike | None = None,
    visual_weight: float = 0.5,
) -> PCommonFit:
    """Fit the observer's prior of one cause to reports by maximum likelihood.

    The search runs over the log-odds θ = log(p_c / (1 - p_c)): the best point of :data:`LOG_ODDS_GRID`
    and of the two ends θ = ±∞ (p_common = 0 and 1), refined with ``scipy.optimize.minimize_scalar``
    (bounded) between the grid's neighbours. In p_common itself a bounded search on [0, 1] cannot resolve
    a maximum at 1 - 1e-8, which is where the 13.7 network's lies. The interval's ends are found with
    Brent's method where the profile crosses log L_max - 1.92 (an end of the range where it never does).
    """
    p_v, p_a = _posteriors(p_visual, p_auditory)
    r = _check_reports(reports, *p_v.shape)
    if len(r) == 0:
        raise ValueError("fit_p_common needs at least one trial")
    kw = dict(prior=prior, visual_weight=visual_weight)

    def loglik(theta: float) -> float:
        return report_log_likelihood(p_v, p_a, r, log_odds=float(theta), **kw)  # type: ignore[arg-type]

    grid = LOG_ODDS_GRID
    profile = np.array([loglik(t) for t in grid])
    ends = {-math.inf: loglik(-math.inf), math.inf: loglik(math.inf)}
    i = int(np.argmax(profile))
    candidates = [(profile[i], float(grid[i])), *((v, t) for t, v in ends.items())]
    if 0 < i < len(grid) - 1 and np.isfinite(profile[i]):
        result = optimize.minimize_scalar(
            lambda t: -loglik(t), bounds=(grid[i - 1], grid[i + 1]), method="bounded", options={"xatol": 1e-6}
        )
        candidates.append((loglik(float(result.x)), float(result.x)))
    best_ll, best_theta = max(candidates)
    if not math.isfinite(best_ll):
        raise ValueError("no p_common gives the reports a non-zero probability")
    level = best_ll - stats.chi2.ppf(0.95, 1) / 2
    far = 1000.0  # log-odds beyond which nothing changes any more (a finite stand-in for ±inf)

    def crossing(direction: int) -> float:
        if best_theta == direction * math.inf:
            return best_theta
        inner = float(np.clip(best_theta, -far, far))
        outward = sorted(
            (t for t in [*grid, direction * far] if (t - inner) * direction > 0), key=lambda t: t * direction
        )
        for t in outward:
            if loglik(t) < level:
                return float(optimize.brentq(lambda x: loglik(x) - level, min(inner, t), max(inner, t)))
            inner = t
        return direction * math.inf

    interval = (crossing(-1), crossing(+1))
    return PCommonFit(
        p_common=float(special.expit(best_theta)),
        log_odds=best_theta,
        log_likelihood=best_ll,
        interval=(float(special.expit(interval[0])), float(special.expit(interval[1]))),
        log_odds_interval=interval,
        n_trials=len(r),
        log_likelihood_fusion=ends[math.inf],
        log_likelihood_segregation=ends[-math.inf],
        profile=(grid.copy(), profile),
    )


@dataclass(frozen=True)
class AVTrials:
    """The network's answers on N audio-visual trials at one noise level.

    ``visual_digit``, ``auditory_digit``: ``(N,)`` the digit shown and the digit sounded (they differ in
    every incongruent trial); ``p_visual``, ``p_auditory``, ``p_fused``: ``(N, 10)`` float64
    probabilities of the visual read-out, the auditory read-out and the learned fusion; ``report``:
    the network's answer, the fused ``argmax``.
    """

    image_noise: float
    sound_noise: float
    visual_digit: np.ndarray
    auditory_digit: np.ndarray
    p_visual: np.ndarray
    p_auditory: np.ndarray
    p_fused: np.ndarray

    @property
    def report(self) -> np.ndarray:
        return self.p_fused.argmax(1)


BINDING_CONDITIONS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.0, 2.0),
    (1.5, 2.0),
    (2.5, 2.0),
    (3.5, 2.0),
    (4.5, 2.0),
    (5.5, 2.0),
)
"""(image noise std, sound noise std) of the binding test: both senses clean, then a sweep in which
the image gets noisier against a sound of fixed noise, so that the more reliable sense changes."""


@torch.no_grad()
def av_trials(
    model: TwoStreamFusion,
    images: torch.Tensor,
    labels: torch.Tensor,
    conditions: Sequence[tuple[float, float]] = BINDING_CONDITIONS,
    *,
    congruent: bool = False,
    seed: int = 0,
    batch_size: int = 500,
    progress: bool = False,
) -> list[AVTrials]:
    """Show the network each image with a sound: of its own digit (``congruent``) or of another one.

    For incongruent trials the sound's digit is ``(label + shift) % 10`` with a shift drawn uniformly
    from 1..9 (seeded, the same for every condition), so the two senses always disagree and every
    pairing is equally common. The noise is seeded per condition.

    Args:
        images: ``(N, 1, 28, 28)`` in [-1, 1]; labels: ``(N,)`` their digits.
        conditions: (image noise std, sound noise std) pairs.
        progress: show a ``tqdm.auto`` bar over the conditions (off by default).

    Returns:
        one :class:`AVTrials` per condition.
    """
    labels = torch.as_tensor(labels).long()
    if images.ndim != 4 or len(images) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"need a non-empty batch of images (N, 1, 28, 28) with one label each, got {tuple(images.shape)} "
            f"and {tuple(labels.shape)}"
        )
    seed = check_seed(seed)
    shift = torch.randint(1, 10, (len(labels),), generator=torch.Generator().manual_seed(seed))
    heard = labels if congruent else (labels + shift) % 10
    out = []
    desc = "congruent trials" if congruent else "incongruent trials"
    for level, (sv, sa) in enumerate(tqdm(conditions, desc=desc, disable=not progress, leave=False)):
        generator = torch.Generator().manual_seed(seed + 1000 * (level + 1))
        p = {k: v.numpy() for k, v in fusion_posteriors(
            model, images, heard, sv, sa, generator=generator, batch_size=batch_size
        ).items()}  # fmt: skip
        out.append(
            AVTrials(
                float(sv),
                float(sa),
                visual_digit=labels.numpy().copy(),
                auditory_digit=heard.numpy().copy(),
                p_visual=p["visual"],
                p_auditory=p["auditory"],
                p_fused=p["fused"],
            )
        )
    return out


def category_fractions(reports: ArrayLike, visual_digit: ArrayLike, auditory_digit: ArrayLike) -> np.ndarray:
    """Shares of reports that name the visual digit, the auditory digit, or another one: ``(3,)``.

    ``reports``: ``(N,)`` class indices (the network's answers) or ``(N, K)`` report probabilities
    (an observer's: the expected shares). Trials must be incongruent (the two digits differ).
    """
    v, a = np.asarray(visual_digit), np.asarray(auditory_digit)
    if v.shape != a.shape or v.ndim != 1 or len(v) == 0:
        raise ValueError(
            f"visual_digit and auditory_digit must be (N,) with N >= 1, got {v.shape} and {a.shape}"
        )
    if np.any(v == a):
        raise ValueError(
            "category_fractions needs incongruent trials: the visual and auditory digits must differ"
        )
    r = np.asarray(reports)
    rows = np.arange(len(v))
    if r.ndim == 1 and r.shape == v.shape:
        shares = np.array([np.mean(r == v), np.mean(r == a)])
    elif r.ndim == 2 and r.shape[0] == len(v):
        shares = np.array([r[rows, v].mean(), r[rows, a].mean()])
    else:
        raise ValueError(
            f"reports must be (N,) answers or (N, K) probabilities for N = {len(v)}, got {r.shape}"
        )
    return np.append(shares, 1.0 - shares.sum())


CATEGORIES = ("visual digit", "auditory digit", "another digit")


def _divergence_from_product(t: AVTrials) -> float:
    """Mean KL(network || product of experts) of the answer distributions, in nats."""
    fused = causal_inference_observer(t.p_visual, t.p_auditory, 1.0).fused
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(t.p_fused > 0, t.p_fused * (np.log(t.p_fused) - np.log(fused)), 0.0)
    return float(terms.sum(1).mean())


def binding_summary(
    incongruent: Sequence[AVTrials],
    congruent: Sequence[AVTrials],
    p_common: float,
    *,
    reference_p_common: float = 0.5,
    visual_weight: float = 0.5,
) -> list[dict[str, Any]]:
    """Network against observer, condition by condition (the same noise levels in both lists).

    Per condition: ``network`` and ``observer`` ``(3,)`` shares of incongruent answers naming the
    visual digit, the auditory digit or another (:func:`category_fractions`; the observer answers with
    its most probable digit, at ``p_common``); ``agreement``: the share of incongruent trials on which
    both give the same answer; ``confidence_*``: the mean probability of the answer on incongruent
    trials, for the network, the observer at ``p_common`` and at ``reference_p_common``, and for the
    network on congruent trials; ``p_common_posterior_*``: the reference observer's mean
    p(C=1 | v, a) on incongruent and on congruent trials; ``divergence_*``: the mean KL divergence of
    the network's answer distribution from the product of experts, on incongruent and congruent trials;
    ``other_answers``: how many incongruent answers name neither digit, ``other_sharing_tone``: how many of
    those share a keypad tone (a row or column of :data:`chapter13.hierarchy.DTMF_HZ`) with the sounded
    digit, and ``tone_chance``: the share expected if the other digit were picked at random.
    """
    if len(incongruent) != len(congruent):
        raise ValueError(
            f"{len(incongruent)} incongruent but {len(congruent)} congruent conditions; pair them"
        )
    rows = []
    for inc, con in zip(incongruent, congruent, strict=True):
        if (inc.image_noise, inc.sound_noise) != (con.image_noise, con.sound_noise):
            raise ValueError("the incongruent and congruent trials must come in the same conditions")
        obs = causal_inference_observer(inc.p_visual, inc.p_auditory, p_common, visual_weight=visual_weight)
        ref = causal_inference_observer(
            inc.p_visual, inc.p_auditory, reference_p_common, visual_weight=visual_weight
        )
        ref_con = causal_inference_observer(
            con.p_visual, con.p_auditory, reference_p_common, visual_weight=visual_weight
        )

        answer = obs.report.argmax(1)
        other = (inc.report != inc.visual_digit) & (inc.report != inc.auditory_digit)
        tones = {d: set(hz) for d, hz in DTMF_HZ.items()}
        sharing = sum(
            bool(tones[int(r)] & tones[int(a)])
            for r, a in zip(inc.report[other], inc.auditory_digit[other], strict=True)
        )
        chance = np.mean(
            [
                np.mean([bool(tones[k] & tones[int(a)]) for k in range(10) if k not in (int(v), int(a))])
                for v, a in zip(inc.visual_digit, inc.auditory_digit, strict=True)
            ]
        )
        rows.append(
            dict(
                image_noise=inc.image_noise,
                sound_noise=inc.sound_noise,
                network=category_fractions(inc.report, inc.visual_digit, inc.auditory_digit),
                observer=category_fractions(answer, inc.visual_digit, inc.auditory_digit),
                agreement=float(np.mean(answer == inc.report)),
                confidence_network=float(inc.p_fused.max(1).mean()),
                confidence_observer=float(obs.report.max(1).mean()),
                confidence_reference=float(ref.report.max(1).mean()),
                confidence_network_congruent=float(con.p_fused.max(1).mean()),
                p_common_posterior_incongruent=float(ref.p_common_posterior.mean()),
                p_common_posterior_congruent=float(ref_con.p_common_posterior.mean()),
                divergence_incongruent=_divergence_from_product(inc),
                divergence_congruent=_divergence_from_product(con),
                other_answers=int(other.sum()),
                other_sharing_tone=int(sharing),
                tone_chance=float(chance),
            )
        )
    return rows


def _runs(summary: Sequence[dict[str, Any]]) -> list[np.ndarray]:
    """Indices of consecutive conditions with the same sound noise: one line each in a figure."""
    runs: list[list[int]] = []
    for i, row in enumerate(summary):
        if runs and summary[runs[-1][-1]]["sound_noise"] == row["sound_noise"]:
            runs[-1].append(i)
        else:
            runs.append([i])
    return [np.array(r) for r in runs]


def _plot_runs(ax: plt.Axes, runs: list[np.ndarray], values: Sequence[float], style: str, **kw: Any) -> None:
    values = np.asarray(values, dtype=float)
    for j, r in enumerate(runs):
        ax.plot(r, values[r], style, **(kw if j == 0 else {k: v for k, v in kw.items() if k != "label"}))


def plot_binding(
    summary: Sequence[dict[str, Any]], fit: PCommonFit, *, p_common: float, reference_p_common: float = 0.5
) -> Figure:
    """Figure of :func:`binding_summary`: (1) what the network and the observer answer on incongruent
    trials; (2) how sure they are; (3) the reference observer's belief in a common cause, incongruent
    against congruent; (4) the profile log-likelihood of p_common (log-odds axis), with the fit and its
    interval. Conditions with the same sound noise are joined by lines."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.2), layout="constrained")
    level = np.arange(len(summary))
    runs = _runs(summary)
    labels = [f"{r['image_noise']:g} / {r['sound_noise']:g}" for r in summary]
    colors = (COLORS["visual"], COLORS["auditory"], COLORS["observer"])
    ax = axes[0, 0]
    for i, name in enumerate(CATEGORIES):
        _plot_runs(
            ax, runs, [100 * r["network"][i] for r in summary], "o-", color=colors[i], lw=2, label=name
        )
        _plot_runs(ax, runs, [100 * r["observer"][i] for r in summary], "x--", color=colors[i], ms=8)
    handles = ax.get_legend_handles_labels()[0]
    handles += [
        plt.Line2D([], [], color="k", marker="o", lw=2, label="network"),
        plt.Line2D([], [], color="k", marker="x", ls="--", ms=8, label="observer (its most probable digit)"),
    ]
    ax.legend(
        handles=handles, fontsize=8, loc="upper right", title="answers naming the ...", title_fontsize=8
    )
    ax.set_ylim(-2, 102)
    ax.set_ylabel("share of incongruent trials (%)")
    ax.set_title(f"what they answer (observer: p_common = {_near_one(p_common)})", fontsize=10)
    ax = axes[0, 1]
    for key, label, style, color in (
        ("confidence_network_congruent", "network, congruent pairs", "o:", "0.55"),
        ("confidence_network", "network, incongruent", "o-", COLORS["network"]),
        ("confidence_observer", f"observer, p_common = {_near_one(p_common)}", "x--", COLORS["product"]),
        ("confidence_reference", f"observer, p_common = {reference_p_common:.3g}", "v-.", COLORS["mle"]),
    ):
        _plot_runs(ax, runs, [r[key] for r in summary], style, color=color, label=label)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("mean probability of the answer")
    ax.set_title("how sure they are", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1, 0]
    _plot_runs(ax, runs, [r["p_common_posterior_congruent"] for r in summary], "o-", color=COLORS["product"],
               label="congruent pairs")  # fmt: skip
    _plot_runs(ax, runs, [r["p_common_posterior_incongruent"] for r in summary], "s--", color=COLORS["mle"],
               label="incongruent pairs")  # fmt: skip
    ax.axhline(reference_p_common, color="0.5", lw=0.8, ls=":", label="its prior p_common")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("mean p(C=1 | v, a)")
    ax.set_title(f"the observer's belief in one cause (p_common = {reference_p_common:.3g})", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        ax.set_xticks(level, labels)
        ax.set_xlabel("noise std (image / sound)")
    ax = axes[1, 1]
    grid, ll = fit.profile
    finite = np.isfinite(ll)
    ax.plot(grid[finite], ll[finite] - fit.log_likelihood, "-", color="k", label="log L - log L_max")
    ax.axhline(-stats.chi2.ppf(0.95, 1) / 2, color="0.5", lw=0.8, ls=":", label="95 % threshold (-1.92)")
    lo, hi = (float(np.clip(t, grid[0], grid[-1])) for t in fit.log_odds_interval)
    ax.axvspan(lo, hi, color=COLORS["observer"], alpha=0.3, label="95 % interval")
    if math.isfinite(fit.log_odds):
        ax.axvline(fit.log_odds, color=COLORS["observer"], ls="--",
                   label=f"maximum: log-odds {fit.log_odds:.1f},\np_common = {_near_one(fit.p_common)}")  # fmt: skip
    else:
        ax.plot([], [], " ", label=f"maximum at p_common = {fit.p_common:.4g} (log-odds {fit.log_odds})")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(top=1.0)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel("prior log-odds of one cause, log(p_common / (1 - p_common))")
    ax.set_ylabel("log L - log L_max (symmetric log scale)")
    ax.set_title(f"fitting p_common to the network's {fit.n_trials} answers", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    return fig


# --- 3. a joint space, two ways ------------------------------------------------------------------------


@torch.no_grad()
def paired_features(
    model: TwoStreamFusion,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    sound_noise: float,
    kind: str = "inputs",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Co-occurring image and sound features: each image with a fresh noisy sound of its own digit.

    ``kind="inputs"``: the raw senses, pixels ``(N, 784)`` and the cochlea's log spectrum ``(N, 129)``
    (:meth:`chapter13.hierarchy.AuditoryStream.spectrum`, no learned weights), so nothing but the
    co-occurrence says which goes with which. ``kind="streams"``: the trained streams' association
    features ``(N, 64)`` each (already shaped by learning to recognise digits).
    """
    if kind not in ("inputs", "streams"):
        raise ValueError(f"kind must be 'inputs' or 'streams', got {kind!r}")
    sound = auditory_code(torch.as_tensor(labels).long(), sound_noise, generator=generator)
    device = next(model.parameters()).device
    model.eval()
    if kind == "inputs":
        return images.flatten(1).float().cpu(), model.auditory.spectrum(sound.to(device)).float().cpu()
    return (
        model.visual.features(images.to(device)).float().cpu(),
        model.auditory.features(sound.to(device)).float().cpu(),
    )


def _check_pairs(v: torch.Tensor, a: torch.Tensor, what: str) -> None:
    if not (isinstance(v, torch.Tensor) and isinstance(a, torch.Tensor)) or v.ndim != 2 or a.ndim != 2:
        raise ValueError(f"{what}: visual and auditory features must be 2-D tensors (N, D)")
    if len(v) != len(a) or len(v) < 2:
        raise ValueError(f"{what}: need at least 2 pairs, one sound per image; got {len(v)} and {len(a)}")


def hebbian_similarity(
    v_train: torch.Tensor, a_train: torch.Tensor, v_query: torch.Tensor, a_gallery: torch.Tensor
) -> torch.Tensor:
    """Retrieval scores after Hebbian learning on the training pairs: ``(Q, G)``.

    The covariance rule (:func:`chapter13.neuro.hebbian_association`, Sejnowski 1977) learns
    ``W = Σ_t (v_t - <v>)(a_t - <a>)^T / T`` from the co-occurring pairs in one pass. A query image
    then predicts a sound pattern ``W^T (v - <v>)``, compared with each gallery sound ``a - <a>`` by
    cosine similarity.
    """
    _check_pairs(v_train, a_train, "hebbian_similarity")
    v = v_train.double().numpy()
    a = a_train.double().numpy()
    w = torch.as_tensor(hebbian_association(v, a, learning_rate=1.0 / len(v)))
    predicted = (v_query.double() - v_train.double().mean(0)) @ w
    return similarity_matrix(predicted, a_gallery.double() - a_train.double().mean(0)).float()


class PairProjection(nn.Module):
    """Two linear maps into a shared ``dim``-dimensional space, after standardising each input with
    the training pairs' mean and standard deviation: CLIP's projection heads (Radford et al. 2021) on
    fixed features. ``forward(v (B, D_v), a (B, D_a)) -> (z_v, z_a)``, both ``(B, dim)``."""

    def __init__(self, visual_dim: int, auditory_dim: int, dim: int = 32) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(visual_dim=visual_dim, auditory_dim=auditory_dim, dim=dim)
        self.visual = nn.Linear(visual_dim, dim, bias=False)
        self.auditory = nn.Linear(auditory_dim, dim, bias=False)
        for name, size in (("v_mean", visual_dim), ("a_mean", auditory_dim)):
            self.register_buffer(name, torch.zeros(size))
        self.register_buffer("v_std", torch.ones(visual_dim))
        self.register_buffer("a_std", torch.ones(auditory_dim))

    def standardise_on(self, v: torch.Tensor, a: torch.Tensor) -> None:
        self.v_mean.copy_(v.mean(0))
        self.a_mean.copy_(a.mean(0))
        self.v_std.copy_(v.std(0) + 1e-2)
        self.a_std.copy_(a.std(0) + 1e-2)

    def embed_visual(self, v: torch.Tensor) -> torch.Tensor:
        return self.visual((v - self.v_mean) / self.v_std)

    def embed_auditory(self, a: torch.Tensor) -> torch.Tensor:
        return self.auditory((a - self.a_mean) / self.a_std)

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_visual(v), self.embed_auditory(a)


def fit_contrastive(
    v_train: torch.Tensor,
    a_train: torch.Tensor,
    *,
    dim: int = 32,
    steps: int = 100,
    batch_size: int = 256,
    lr: float = 3e-3,
    weight_decay: float = 0.5,
    temperature: float = 0.2,
    seed: int = 0,
) -> PairProjection:
    """Fit :class:`PairProjection` to the pairs with CLIP's symmetric contrastive loss
    (:func:`chapter13.multimodal.contrastive_loss`; each image must pick its own sound among the batch's
    and each sound its image), through :func:`chapter13.train.fit` (AdamW, warm-up and cosine decay,
    gradient clipping, NaN guard), on one CPU thread. A batch holds ``min(batch_size, N)`` pairs."""
    _check_pairs(v_train, a_train, "fit_contrastive")
    with torch.random.fork_rng():  # the initial weights from the seed, the global generator untouched
        torch.manual_seed(check_seed(seed))
        model = PairProjection(v_train.shape[1], a_train.shape[1], dim)
    model.standardise_on(v_train.float(), a_train.float())

    def loss_fn(m: PairProjection, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        z_v, z_a = m(batch[0], batch[1])
        return contrastive_loss(z_v, z_a, temperature=temperature)

    with torch_threads(1):  # two small linear maps: one thread is fastest (on a shared CPU, by far)
        result = fit(
            model, loss_fn, (v_train.float(), a_train.float()), steps=steps, batch_size=min(batch_size, len(v_train)),
            lr=lr, weight_decay=weight_decay, warmup=max(1, steps // 10), ema_decay=None, seed=seed, device="cpu",
            progress=False,
        )  # fmt: skip
    return result.model.eval()


def retrieval_curve(
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    test_labels: torch.Tensor,
    pair_counts: Sequence[int],
    *,
    progress: bool = False,
    **fit_kwargs: Any,
) -> dict[str, list[float]]:
    """Image -> sound Recall@1 on held-out pairs after learning from the first n training pairs, for
    each n in ``pair_counts``, with Hebbian learning and with the contrastive fit.

    A query is a held-out image; the gallery is every held-out sound; a sound of the same digit counts
    as right (chance: the share of the gallery with that digit, 10 %). Returns ``pairs``, ``hebbian``,
    ``contrastive`` and ``chance``. ``progress`` shows a ``tqdm.auto`` bar over the pair counts (off by
    default); the other keywords go to :func:`fit_contrastive`.
    """
    v_train, a_train = train
    v_test, a_test = test
    _check_pairs(v_train, a_train, "retrieval_curve (train)")
    _check_pairs(v_test, a_test, "retrieval_curve (test)")
    labels = torch.as_tensor(test_labels).long()
    relevant = labels[:, None] == labels[None, :]
    out: dict[str, list[float]] = {"pairs": [], "hebbian": [], "contrastive": []}
    for n in tqdm(pair_counts, desc="pair counts", disable=not progress, leave=False):
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= len(v_train):
            raise ValueError(f"each pair count must be an int in 2..{len(v_train)}, got {n!r}")
        hebb = hebbian_similarity(v_train[:n], a_train[:n], v_test, a_test)
        proj = fit_contrastive(v_train[:n], a_train[:n], **fit_kwargs)
        with torch.no_grad():
            clip = similarity_matrix(proj.embed_visual(v_test.float()), proj.embed_auditory(a_test.float()))
        out["pairs"].append(n)
        out["hebbian"].append(recall_at_k(hebb, relevant, (1,))[1])
        out["contrastive"].append(recall_at_k(clip, relevant, (1,))[1])
    out["chance"] = [float(relevant.float().mean())]
    return out


def plot_joint_space(curves: dict[str, dict[str, list[float]]]) -> Figure:
    """Figure: Recall@1 against the number of co-occurring pairs seen, Hebbian and contrastive, one
    panel per feature set (``{title: retrieval_curve(...)}``)."""
    fig, axes = plt.subplots(
        1, len(curves), figsize=(5.2 * len(curves), 3.8), layout="constrained", squeeze=False
    )
    for ax, (title, c) in zip(axes[0], curves.items(), strict=True):
        ax.semilogx(c["pairs"], [100 * r for r in c["hebbian"]], "o-", color=COLORS["hebbian"],
                    label="Hebbian covariance rule (13.5)")  # fmt: skip
        ax.semilogx(c["pairs"], [100 * r for r in c["contrastive"]], "s--", color=COLORS["contrastive"],
                    label="contrastive, CLIP's loss (13.1)")  # fmt: skip
        ax.axhline(100 * c["chance"][0], color="0.5", lw=0.8, ls=":", label="chance")
        ax.set_ylim(0, 100)
        ax.set_xlabel("co-occurring image-sound pairs seen")
        ax.set_ylabel("image → sound Recall@1 on held-out pairs (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    return fig


# --- 4. diffusion as principled generation --------------------------------------------------------------


@dataclass
class DiffusionRecap:
    """Images of :func:`diffusion_recap`: the ``forward`` strip (one digit at ``forward_t``), the
    ``reverse`` frames (each ``(n, 1, 28, 28)``, at ``reverse_t``; ``-1`` is x_0), and per guidance
    scale the ``guided`` samples with their judged ``accuracy`` and feature ``spread``."""

    forward: torch.Tensor
    forward_t: list[int]
    reverse: list[torch.Tensor]
    reverse_t: list[int]
    prompt: str
    digit: int
    guided: dict[float, torch.Tensor] = field(default_factory=dict)
    accuracy: dict[float, float] = field(default_factory=dict)
    spread: dict[float, float] = field(default_factory=dict)
    confident_final: float = 0.0
    forward_correlation: float = 0.0


@torch.no_grad()
def diffusion_recap(
    unconditional: nn.Module,
    text_model: nn.Module,
    digit_image: torch.Tensor,
    prompt: str,
    digit: int,
    *,
    reverse_samples: int = 4,
    reverse_steps: int = 10,
    guided_samples: int = 16,
    guided_steps: int = 20,
    scales: Sequence[float] = (1.0, 3.0),
    seed: int = 0,
) -> DiffusionRecap:
    """Forward, reverse and guidance in numbers and images, from shipped models (no training).

    - forward: ``q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)`` (Ho et al. 2020, eq. 4) on ``digit_image``
      ``(1, 1, 28, 28)`` with the unconditional model's schedule, at the timesteps the reverse chain
      visits; ``forward_correlation`` is the correlation of x_T with x_0.
    - reverse: a DDIM chain (Song et al. 2021, eq. 12) of ``unconditional`` over ``reverse_steps``
      steps; ``confident_final``: the share of its final samples the shipped digit classifier reads with
      probability > 0.9.
    - guidance: ``guided_samples`` images of ``prompt`` from ``text_model`` at each scale s
      (ε̃ = ε_u + s (ε_c − ε_u), Ho & Salimans 2022), all from the same start noise; ``accuracy``: the
      share the classifier reads as ``digit``; ``spread``: the mean pairwise distance of the
      classifier's features (variety).
    """
    seed = check_seed(seed)
    schedule = unconditional.schedule
    grid = timesteps(schedule.T, reverse_steps)
    reverse_t = [grid[0], *grid[1:], -1]
    shape = (reverse_samples, unconditional.in_channels, unconditional.image_size, unconditional.image_size)
    final, frames = sample_ddim(
        unconditional, schedule, shape, steps=reverse_steps, generator=torch.Generator().manual_seed(seed),
        device="cpu", progress=False, return_trajectory=True,
    )  # fmt: skip
    probs, _ = classify(final.clamp(-1, 1))
    forward_t = [-1, *reversed(grid[1:]), grid[0]]
    noise = torch.randn(digit_image.shape, generator=torch.Generator().manual_seed(seed + 1))
    forward = torch.cat(
        [
            digit_image if t < 0 else schedule.q_sample(digit_image, torch.tensor([t]), noise)
            for t in forward_t
        ]
    )
    x_last, x_0 = forward[-1].flatten(), digit_image.flatten()
    correlation = float(torch.corrcoef(torch.stack([x_last, x_0]))[0, 1])
    recap = DiffusionRecap(
        forward=forward, forward_t=forward_t, reverse=frames, reverse_t=reverse_t, prompt=prompt, digit=int(digit),
        confident_final=float((probs.max(1).values > CONFIDENCE_THRESHOLD).float().mean()),
        forward_correlation=correlation,
    )  # fmt: skip
    x_T = torch.randn(
        (guided_samples, *text_model.sample_shape), generator=torch.Generator().manual_seed(seed + 2)
    )
    for s in scales:
        images = generate(
            text_model,
            [prompt] * guided_samples,
            guidance=float(s),
            steps=guided_steps,
            x_T=x_T,
            seed=seed + 3,
        )
        p, feats = classify(images)
        recap.guided[float(s)] = images
        recap.accuracy[float(s)] = float((p.argmax(1) == digit).float().mean())
        recap.spread[float(s)] = float(torch.pdist(feats).mean())
    return recap


def _t_label(t: int) -> str:
    return "$x_0$" if t < 0 else f"t = {t}"


def plot_diffusion_recap(recap: DiffusionRecap) -> Figure:
    """Figure: the forward process on one digit (top), the reverse chain from noise (middle), and the
    guided samples at each scale with their judged accuracy and variety (bottom)."""
    n_frames = len(recap.forward_t)
    scales = list(recap.guided)
    rows = 1 + len(recap.reverse[0])
    fig = plt.figure(figsize=(11, 1.0 * rows + 2.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0 * rows + 0.5, 2.1])
    axes = top.subplots(rows, n_frames, gridspec_kw=dict(hspace=0.05, wspace=0.05))
    for j, t in enumerate(recap.forward_t):
        axes[0, j].imshow(recap.forward[j, 0].numpy(), cmap="gray", vmin=-1, vmax=1)
        axes[0, j].set_title(_t_label(t), fontsize=8)
    for j, (frame, t) in enumerate(zip(recap.reverse, recap.reverse_t, strict=True)):
        for i in range(len(frame)):
            axes[1 + i, j].imshow(frame[i, 0].clamp(-1, 1).numpy(), cmap="gray", vmin=-1, vmax=1)
        axes[1, j].set_title(_t_label(t), fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    axes[0, 0].set_ylabel("forward", fontsize=9)
    axes[1, 0].set_ylabel("reverse", fontsize=9)
    top.suptitle(
        f"forward: q(x_t | x_0) adds noise until nothing of the digit is left (corr(x_T, x_0) = "
        f"{recap.forward_correlation:+.2f})\nreverse: a DDIM chain of codelab-mnist, {len(recap.reverse) - 1} "
        f"steps from pure noise ({recap.confident_final:.0%} of the final digits read with confidence > 0.9)",
        fontsize=9,
    )
    gaxes = bottom.subplots(1, len(scales))
    for ax, s in zip(np.atleast_1d(gaxes), scales, strict=True):
        show_grid(recap.guided[s], nrow=8, ax=ax)
        ax.set_title(
            f"guidance s = {s:g}: {recap.accuracy[s]:.0%} read as {recap.digit}, variety {recap.spread[s]:.1f}",
            fontsize=9,
        )
    bottom.suptitle(f"classifier-free guidance, prompt “{recap.prompt}”, the same start noise", fontsize=9)
    return fig
