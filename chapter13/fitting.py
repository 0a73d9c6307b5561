"""From model to data (13.5): fit the causal-inference observer to responses and compare strategies.

The models of :mod:`chapter13.neuro` say what an observer perceives; an experiment records what people
*press*. This module closes the gap, in NumPy and SciPy only:

==========================================  =======================================================
step                                        functions
==========================================  =======================================================
a table of trials (stimuli, responses)      :class:`TrialTable`, :func:`make_table`, :func:`parse_trials`
its likelihood under an observer            :func:`log_likelihood` (response models of
                                            :func:`chapter13.neuro.response_probabilities` and
                                            :func:`chapter13.neuro.unimodal_response_probabilities`)
maximum-likelihood fit of one strategy      :func:`fit` -> :class:`FitResult` (estimates, standard
                                            errors, 95 % intervals, AIC, BIC)
which strategy explains the responses       :func:`compare_strategies` -> :class:`Comparison`
parameter recovery                          :func:`kording_design`, :func:`simulate_table`,
                                            :func:`recover`, :func:`recovery_table`
curves to draw over the data                :func:`observed_proportions`, :func:`predicted_proportions`,
                                            :func:`visual_bias`
flash-beep counts                           :data:`FLASH_BEEP_TABLE`, :func:`predict_flash_beep`,
                                            :func:`fit_flash_beep`
==========================================  =======================================================

**The likelihood.** Trials with the same stimuli share one response distribution, so a table is
reduced to counts per stimulus condition and response pattern, and the log-likelihood is
``sum_c sum_r n_{c,r} log P(r | s_c, theta)``: its cost does not grow with the number of trials. A
trial may report the visual position, the auditory position, the causal structure ("one cause"), or
any subset; a missing report is summed out of the joint distribution, which keeps the visual and
auditory reports of one trial correlated, as the observer makes them (a fused percept moves both).

**The optimiser, and why.** The parameters are mapped to an unconstrained scale (log for the standard
deviations, logit for the probabilities) and the negative log-likelihood is minimised with SciPy's
L-BFGS-B from the best few of several screened starting points. L-BFGS-B because the likelihood is
smooth in the parameters (the response quadrature averages every decision step over its grid cell,
see :func:`chapter13.neuro.response_probabilities`), so a quasi-Newton method with finite-difference
gradients converges in a few dozen iterations, where Nelder-Mead needs hundreds of evaluations in six
or seven dimensions, and because its box bounds on the transformed scale keep a wandering start away
from degenerate corners (a lapse rate of 1, a prior of zero width). Several starts, because
``p_common`` and the noise levels trade off and a single start can stop in a poorer local optimum.

**Uncertainty.** Standard errors come from the expected (Fisher) information of the multinomial
likelihood at the estimate, ``I = sum_c n_c sum_r (dP_r/dtheta)(dP_r/dtheta)^T / P_r``, with the
derivatives of the response probabilities taken by central differences on the transformed scale
(13 evaluations instead of the 72 of a numerical Hessian). The 95 % intervals are
``theta_hat +- 1.96 SE`` on the transformed scale, mapped back, so that an interval for a standard
deviation stays positive and one for a probability stays in (0, 1). ``AIC = 2k - 2 log L`` (Akaike
1974) and ``BIC = k ln N - 2 log L`` (Schwarz 1978) compare strategies; the three strategies have the
same parameters, so both rank them by likelihood and their differences are log-likelihood ratios.

Fitting all three strategies to 1,000 trials of Körding et al.'s design takes about 4 s on one core
of a shared 2-core machine (median over 80 data sets, at most 6 s; ``benchmarks/bench_fitting.py``
measures it). Bad input raises ``ValueError`` naming the fix.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special
from tqdm.auto import tqdm

from chapter13 import neuro

__all__ = [
    "DEFAULT_START",
    "FLASH_BEEP_TABLE",
    "KORDING_OBSERVER",
    "PARAMETERS",
    "SIMULATION_RESPONSE",
    "Comparison",
    "FitResult",
    "FlashBeepTable",
    "Recovery",
    "TrialTable",
    "compare_strategies",
    "fit",
    "fit_flash_beep",
    "kording_design",
    "log_likelihood",
    "make_table",
    "observed_proportions",
    "parse_trials",
    "predict_flash_beep",
    "predicted_proportions",
    "recover",
    "recovery_table",
    "simulate_table",
    "visual_bias",
]

FloatArray = NDArray[np.float64]

PARAMETERS: dict[str, str] = {
    "sigma_v": "log",
    "sigma_a": "log",
    "sigma_p": "log",
    "p_common": "logit",
    "mu_p": "identity",
    "sigma_motor": "log",
    "lapse": "logit",
    "criterion": "logit",
}
"""Every parameter of the observer and the scale it is fitted on: the sensory noise of vision and
audition, the width and centre of the spatial prior, the prior probability of a common cause
(Körding et al. 2007), the motor noise and lapse rate of the button presses, and the criterion of a
unity judgement (report "one cause" when p(C=1 | x) > criterion)."""

_BOUNDS: dict[str, tuple[float, float]] = {
    "sigma_v": (np.log(0.05), np.log(100.0)),
    "sigma_a": (np.log(0.05), np.log(100.0)),
    "sigma_p": (np.log(0.5), np.log(500.0)),
    "p_common": (-10.0, 10.0),
    "mu_p": (-50.0, 50.0),
    "sigma_motor": (np.log(0.02), np.log(30.0)),
    "lapse": (-12.0, -0.5),
    "criterion": (-8.0, 8.0),
}
"""Box bounds on the transformed scale (a lapse rate at most 0.38, standard deviations 0.05°-100°)."""

DEFAULT_START: dict[str, float] = dict(
    sigma_v=2.0, sigma_a=8.0, sigma_p=15.0, p_common=0.3, mu_p=0.0, sigma_motor=1.0, lapse=0.02, criterion=0.5
)
"""Where a fit starts when the table gives no better guess, and the value of a parameter neither
fitted nor fixed (``mu_p = 0``: the prior centred straight ahead, as Körding et al. assumed)."""

SIMULATION_RESPONSE: dict[str, float] = dict(sigma_motor=1.5, lapse=0.02)
"""Response parameters of the simulated observers (illustrative, ours: Körding et al. 2007 report no
motor noise or lapse rate): 1.5° of motor noise and a 2 % lapse rate."""

KORDING_OBSERVER: dict[str, float] = {**neuro.KORDING_2007, "mu_p": 0.0, **SIMULATION_RESPONSE}
"""Körding et al.'s (2007, PLoS ONE 2:e943) fitted observer (sigma_V 2.14°, sigma_A 9.2°, sigma_P
12.3°, p_common 0.28, prior centred at 0) with :data:`SIMULATION_RESPONSE`'s button presses."""

_MISSING_UNITY = 2


def _transform(name: str, value: float) -> float:
    kind = PARAMETERS[name]
    with np.errstate(divide="ignore"):  # sigma_motor = 0 or a probability of 0 or 1: +-inf, clipped by fit
        if kind == "log":
            return float(np.log(value))
        if kind == "logit":
            return float(special.logit(value))
    return float(value)


def _untransform(name: str, theta: float) -> float:
    kind = PARAMETERS[name]
    if kind == "log":
        return float(np.exp(theta))
    if kind == "logit":
        return float(special.expit(theta))
    return float(theta)


def _check_value(name: str, value: object) -> float:
    """A parameter value, checked for its kind; the error says what is allowed."""
    if name not in PARAMETERS:
        raise ValueError(f"unknown parameter {name!r}; the observer's parameters are {list(PARAMETERS)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    kind = PARAMETERS[name]
    if name == "sigma_motor" and number < 0:
        raise ValueError(
            f"sigma_motor must be >= 0 (motor noise in degrees; 0: the observer presses exactly the button "
            f"nearest its estimate), got {value!r}"
        )
    if kind == "log" and name != "sigma_motor" and number <= 0:
        raise ValueError(
            f"{name} must be > 0 (a standard deviation in degrees), got {value!r}; use a small positive "
            "value for a nearly noiseless cue"
        )
    if name in ("p_common", "lapse") and not 0 <= number <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    if name == "criterion" and not 0 < number < 1:
        raise ValueError(
            f"criterion must lie strictly between 0 and 1 (a posterior probability), got {value!r}"
        )
    return number


# --- the table of trials ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialTable:
    """Trials of an audio-visual localisation experiment, one row each, ``(N,)`` arrays.

    ``s_v``, ``s_a``: flash and sound positions (degrees), NaN where a trial has no flash or no sound
    (a unimodal trial); ``r_v``, ``r_a``: the reported positions, each one of ``buttons``, NaN where
    not asked; ``unity``: 1 for "one cause", 0 for "two causes", NaN where not asked. Build it with
    :func:`make_table`, which checks everything.
    """

    s_v: FloatArray
    s_a: FloatArray
    r_v: FloatArray
    r_a: FloatArray
    unity: FloatArray
    buttons: FloatArray

    def __len__(self) -> int:
        return len(self.s_v)

    @property
    def bimodal(self) -> NDArray[np.bool_]:
        return ~np.isnan(self.s_v) & ~np.isnan(self.s_a)

    @property
    def has_unity(self) -> bool:
        return bool(np.any(~np.isnan(self.unity)))

    def __repr__(self) -> str:
        return (
            f"TrialTable({len(self)} trials: {int(self.bimodal.sum())} audio-visual, "
            f"{int(np.sum(np.isnan(self.s_a)))} visual alone, {int(np.sum(np.isnan(self.s_v)))} auditory "
            f"alone; buttons {self.buttons.tolist()}; unity judgements {int(np.sum(~np.isnan(self.unity)))})"
        )


def _column(name: str, values: ArrayLike | None, n: int | None) -> FloatArray:
    if values is None:
        if n is None:
            raise ValueError(f"{name} is required")
        return np.full(n, np.nan)
    try:
        array = (
            np.asarray(values, dtype=float).reshape(-1)
            if np.ndim(values)
            else np.asarray([values], dtype=float)
        )
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers (NaN for missing), got {values!r}") from None
    if np.any(np.isinf(array)):
        raise ValueError(f"{name} contains infinity; use NaN for a missing value")
    return array


def make_table(
    s_v: ArrayLike,
    s_a: ArrayLike,
    r_v: ArrayLike | None = None,
    r_a: ArrayLike | None = None,
    unity: ArrayLike | None = None,
    buttons: ArrayLike = neuro.KORDING_BUTTONS,
) -> TrialTable:
    """Check trials and return a :class:`TrialTable`.

    Args:
        s_v, s_a: ``(N,)`` stimulus positions (degrees), NaN for an absent flash or sound.
        r_v, r_a: ``(N,)`` reported positions (each must be one of ``buttons``), NaN where not asked.
        unity: ``(N,)`` 1 ("one cause"), 0 ("two causes") or NaN; only on audio-visual trials.
        buttons: ``(K,)`` the response positions of the experiment, increasing.

    Raises:
        ValueError: for an empty table, columns of different lengths, a trial without a stimulus or
            without a response, a report of an absent stimulus, a response that is not a button, or a
            unity judgement that is not 0 or 1. The message says how to fix it.
    """
    b = np.asarray(buttons, dtype=float)
    neuro.button_edges(b)  # checks the buttons
    sv, sa = _column("s_v", s_v, None), _column("s_a", s_a, None)
    n = len(sv)
    if n == 0:
        raise ValueError(
            "the table has no trials: pass at least one trial (stimulus positions s_v, s_a and a response)"
        )
    columns = dict(s_v=sv, s_a=sa, r_v=_column("r_v", r_v, n), r_a=_column("r_a", r_a, n),
                   unity=_column("unity", unity, n))  # fmt: skip
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"the columns have different lengths {lengths}; give one value per trial in each")
    rv, ra, un = columns["r_v"], columns["r_a"], columns["unity"]
    nothing = np.isnan(sv) & np.isnan(sa)
    if nothing.any():
        raise ValueError(
            f"trial {int(np.argmax(nothing))} has neither a flash nor a sound (s_v and s_a both NaN); "
            "drop it or give its stimulus positions"
        )
    for report, stim, sense in ((rv, sv, "visual"), (ra, sa, "auditory")):
        orphan = ~np.isnan(report) & np.isnan(stim)
        if orphan.any():
            i = int(np.argmax(orphan))
            raise ValueError(
                f"trial {i} reports a {sense} position without a {sense} stimulus; set the report to NaN "
                "or give the stimulus position"
            )
        given = ~np.isnan(report)
        off = given & (
            np.min(np.abs(report[:, None] - b[None, :]), axis=1, initial=np.inf) > 1e-6 * (1 + np.abs(report))
        )
        if off.any():
            i = int(np.argmax(off))
            name = "r_v" if sense == "visual" else "r_a"
            raise ValueError(
                f"{name}[{i}] = {report[i]:g} is not one of the buttons {b.tolist()}: responses must be button "
                "positions. Round free responses to the nearest button (buttons[np.argmin(abs(r - buttons))]) "
                "or pass the buttons your experiment used"
            )
    bad_unity = ~np.isnan(un) & ~np.isin(un, (0.0, 1.0))
    if bad_unity.any():
        i = int(np.argmax(bad_unity))
        raise ValueError(f"unity[{i}] = {un[i]:g}: a unity judgement is 1 (one cause), 0 (two causes) or NaN")
    lone_unity = ~np.isnan(un) & (np.isnan(sv) | np.isnan(sa))
    if lone_unity.any():
        raise ValueError(
            f"trial {int(np.argmax(lone_unity))} has a unity judgement but only one stimulus; unity "
            "judgements need a flash and a sound"
        )
    silent = np.isnan(rv) & np.isnan(ra) & np.isnan(un)
    if silent.any():
        raise ValueError(
            f"trial {int(np.argmax(silent))} has no response (r_v, r_a and unity all NaN); drop it or give "
            "its responses"
        )
    snap = lambda r: np.where(
        np.isnan(r), np.nan, b[np.argmin(np.abs(np.nan_to_num(r)[:, None] - b), axis=1)]
    )
    return TrialTable(sv, sa, snap(rv), snap(ra), un, b)


def parse_trials(text: str, buttons: ArrayLike = neuro.KORDING_BUTTONS) -> TrialTable:
    """A :class:`TrialTable` from text, one trial a line: ``s_v, s_a, r_v, r_a[, unity]``.

    Fields are separated by commas (or spaces); ``-``, ``nan`` or an empty field mark a missing value
    (no flash, no sound, no report). Lines starting with ``#`` are skipped. Example::

        # s_v, s_a, r_v, r_a
        -5, 0, -5, -5
        10, 0, 10, 0
        -, 5, -, 5
    """
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in (line.split(",") if "," in line else line.split())]
        if len(fields) not in (4, 5):
            raise ValueError(
                f"line {number}: {line!r} has {len(fields)} fields; write s_v, s_a, r_v, r_a (and optionally "
                "unity), with - for a missing value"
            )
        try:
            rows.append(
                [np.nan if f.lower() in ("", "-", "nan") else float(f) for f in fields]
                + [np.nan] * (5 - len(fields))
            )
        except ValueError:
            raise ValueError(
                f"line {number}: {line!r} has a field that is not a number (use - for missing)"
            ) from None
    if not rows:
        raise ValueError("no trials in the text: write one trial a line, s_v, s_a, r_v, r_a (- for missing)")
    data = np.asarray(rows)
    return make_table(*data.T, buttons=buttons)


@dataclass(frozen=True)
class _Counts:
    """A table reduced to counts per stimulus condition and response pattern."""

    bi_v: FloatArray  # (Cb,) flash positions of the audio-visual conditions
    bi_a: FloatArray
    bi_counts: FloatArray  # (Cb, K + 1, K + 1, 3): index K / 2 = not reported
    uni_v: FloatArray  # (Cv,) flash positions of visual-alone conditions
    uni_v_counts: FloatArray  # (Cv, K)
    uni_a: FloatArray
    uni_a_counts: FloatArray
    has_unity: bool
    n_trials: int
    buttons: FloatArray


def _index(report: FloatArray, buttons: FloatArray) -> NDArray[np.int64]:
    k = len(buttons)
    idx = np.argmin(np.abs(np.nan_to_num(report)[:, None] - buttons), axis=1)
    return np.where(np.isnan(report), k, idx)


def _counts(table: TrialTable) -> _Counts:
    b, k = table.buttons, len(table.buttons)
    iv, ia = _index(table.r_v, b), _index(table.r_a, b)
    iu = np.where(np.isnan(table.unity), _MISSING_UNITY, np.nan_to_num(table.unity)).astype(int)
    bi = table.bimodal
    pairs, inverse = np.unique(np.stack([table.s_v[bi], table.s_a[bi]], axis=1), axis=0, return_inverse=True)
    bi_counts = np.zeros((len(pairs), k + 1, k + 1, 3))
    np.add.at(bi_counts, (inverse.reshape(-1), iv[bi], ia[bi], iu[bi]), 1.0)

    def unimodal(
        only: NDArray[np.bool_], stim: FloatArray, index: NDArray[np.int64]
    ) -> tuple[FloatArray, FloatArray]:
        where, inv = np.unique(stim[only], return_inverse=True)
        counts = np.zeros((len(where), k))
        np.add.at(counts, (inv.reshape(-1), index[only]), 1.0)
        return where, counts

    uv, uvc = unimodal(np.isnan(table.s_a), table.s_v, iv)
    ua, uac = unimodal(np.isnan(table.s_v), table.s_a, ia)
    return _Counts(pairs[:, 0], pairs[:, 1], bi_counts, uv, uvc, ua, uac, table.has_unity, len(table), b)


def _extend(joint: FloatArray) -> FloatArray:
    """``(C, K, K, U)`` -> ``(C, K + 1, K + 1, 3)``: index K (or 2) holds the sum over a missing report."""
    c, k = joint.shape[0], joint.shape[1]
    out = np.zeros((c, k + 1, k + 1, 3))
    if joint.shape[-1] == 2:
        out[:, :k, :k, :2] = joint
        out[:, :k, :k, 2] = joint.sum(axis=-1)
    else:
        out[:, :k, :k, 2] = joint[..., 0]
    out[:, k, :k] = out[:, :k, :k].sum(axis=1)
    out[:, :k, k] = out[:, :k, :k].sum(axis=2)
    out[:, k, k] = out[:, :k, :k].sum(axis=(1, 2))
    return out


def _probabilities(
    counts: _Counts, params: Mapping[str, float], strategy: str, unity_decision: str, n_grid: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Model probabilities matching the layout of ``counts``: audio-visual, visual-alone, auditory-alone."""
    b = counts.buttons
    shared = dict(
        sigma_p=params["sigma_p"],
        mu_p=params["mu_p"],
        sigma_motor=params["sigma_motor"],
        lapse=params["lapse"],
    )
    if len(counts.bi_v):
        joint = neuro.response_probabilities(
            counts.bi_v, counts.bi_a, params["sigma_v"], params["sigma_a"], p_common=params["p_common"],
            buttons=b, strategy=strategy,
            unity_decision=unity_decision if counts.has_unity else None, criterion=params["criterion"],
            n_grid=n_grid, **shared,
        )["joint"]  # fmt: skip
        bi = _extend(joint)
    else:
        bi = np.zeros((0, *counts.bi_counts.shape[1:]))
    uv = (
        neuro.unimodal_response_probabilities(counts.uni_v, params["sigma_v"], buttons=b, **shared)
        if len(counts.uni_v)
        else np.zeros((0, len(b)))
    )
    ua = (
        neuro.unimodal_response_probabilities(counts.uni_a, params["sigma_a"], buttons=b, **shared)
        if len(counts.uni_a)
        else np.zeros((0, len(b)))
    )
    return bi, uv, ua


def _prepare(table: TrialTable) -> _Counts:
    if not isinstance(table, TrialTable):
        raise TypeError(f"expected a TrialTable (see fitting.make_table), got {type(table).__name__}")
    if len(table) == 0:
        raise ValueError(
            "the table has no trials: pass at least one trial (stimulus positions s_v, s_a and a response)"
        )
    return _counts(table)


def _log_likelihood(
    counts: _Counts, params: Mapping[str, float], strategy: str, unity_decision: str, n_grid: int
) -> float:
    total = 0.0
    for probs, n in zip(_probabilities(counts, params, strategy, unity_decision, n_grid),
                        (counts.bi_counts, counts.uni_v_counts, counts.uni_a_counts), strict=True):  # fmt: skip
        seen = n > 0
        total += float(np.sum(n[seen] * np.log(np.maximum(probs[seen], 1e-300))))
    return total


def _check_unity_decision(unity_decision: object) -> None:
    if unity_decision not in neuro.UNITY_DECISIONS:
        raise ValueError(f"unknown unity decision {unity_decision!r}; choose one of {neuro.UNITY_DECISIONS}")


def _check_strategies(strategies: object) -> None:
    if isinstance(strategies, str):
        raise ValueError(
            f"strategies must be a list of strategy names, e.g. [{strategies!r}], got the string {strategies!r}"
        )
    if not strategies:
        raise ValueError(f"strategies is empty; choose from {neuro.STRATEGIES}")


def _full_params(values: Mapping[str, float] | None) -> dict[str, float]:
    params = dict(DEFAULT_START)
    for name, value in (values or {}).items():
        params[name] = _check_value(name, value)
    return params


def log_likelihood(
    table: TrialTable,
    params: Mapping[str, float],
    strategy: str = "averaging",
    unity_decision: str = "criterion",
    n_grid: int = 21,
) -> float:
    """``log L = sum_trials log P(responses | stimuli, params)`` under one strategy.

    Args:
        table: the trials (:func:`make_table`).
        params: observer parameters (:data:`PARAMETERS`); any left out take :data:`DEFAULT_START`.
        strategy: one of :data:`chapter13.neuro.STRATEGIES`.
        unity_decision: how unity judgements are made, if the table has any.
        n_grid: quadrature points per axis (see :func:`chapter13.neuro.response_probabilities`).
    """
    neuro._check_strategy(strategy)
    _check_unity_decision(unity_decision)
    return _log_likelihood(_prepare(table), _full_params(params), strategy, unity_decision, n_grid)


# --- fitting ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    """A maximum-likelihood fit of one strategy.

    ``params`` holds every parameter (fitted and fixed); ``se`` (natural units, delta method) and
    ``intervals`` (95 %, from the transformed scale) the fitted ones. ``aic = 2k - 2 log L``,
    ``bic = k ln N - 2 log L`` with ``k = len(free)`` and ``N = n_trials``.
    """

    strategy: str
    params: dict[str, float]
    free: tuple[str, ...]
    se: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    log_likelihood: float
    n_trials: int
    unity_decision: str
    n_evaluations: int
    seconds: float
    converged: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def n_params(self) -> int:
        return len(self.free)

    @property
    def aic(self) -> float:
        return 2 * self.n_params - 2 * self.log_likelihood

    @property
    def bic(self) -> float:
        return self.n_params * float(np.log(self.n_trials)) - 2 * self.log_likelihood

    def contains(self, truth: Mapping[str, float]) -> dict[str, bool]:
        """For each fitted parameter in ``truth``: does its 95 % interval contain the true value?"""
        return {n: self.intervals[n][0] <= truth[n] <= self.intervals[n][1] for n in self.free if n in truth}

    def summary(self) -> str:
        lines = [
            f"{self.strategy}: log L = {self.log_likelihood:.1f}, AIC = {self.aic:.1f}, BIC = {self.bic:.1f} "
            f"({self.n_trials} trials, {self.n_params} parameters, {self.seconds:.1f} s)"
        ]
        for name in self.free:
            low, high = self.intervals[name]
            lines.append(
                f"  {name:12s} {self.params[name]:8.3f}  SE {self.se[name]:7.3f}  95% [{low:.3f}, {high:.3f}]"
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _start_from_data(table: TrialTable) -> dict[str, float]:
    """Starting values from the unimodal trials (the spread of the reports around the stimuli)."""
    start = dict(DEFAULT_START)
    spacing = float(np.min(np.diff(table.buttons)))
    for sense, stim, report in (("sigma_v", table.s_v, table.r_v), ("sigma_a", table.s_a, table.r_a)):
        alone = ~np.isnan(stim) & ~np.isnan(report) & (np.isnan(table.s_a) | np.isnan(table.s_v))
        if alone.sum() >= 5:
            spread = float(np.var(report[alone] - stim[alone])) - spacing**2 / 12
            start[sense] = float(np.clip(np.sqrt(max(spread, 0.25 * spacing**2 / 12)), 0.5, 40.0))
    return start


def _default_free(counts: _Counts, unity_decision: str) -> tuple[str, ...]:
    free = ("sigma_v", "sigma_a", "sigma_p", "p_common", "sigma_motor", "lapse")
    if counts.has_unity and unity_decision == "criterion":
        free += ("criterion",)
    return free


def _information(
    counts: _Counts,
    params: dict[str, float],
    free: Sequence[str],
    strategy: str,
    unity_decision: str,
    n_grid: int,
    step: float = 1e-4,
) -> FloatArray:
    """Expected Fisher information on the transformed scale, from central differences of the response
    probabilities: ``I = sum_c sum_r n_c (dP_r)(dP_r)^T / P_r``."""
    theta = np.array([_transform(n, params[n]) for n in free])
    derivatives = []
    for m in range(len(free)):
        sides = []
        for sign in (1, -1):
            shifted = dict(params)
            shifted[free[m]] = _untransform(free[m], theta[m] + sign * step)
            sides.append(_probabilities(counts, shifted, strategy, unity_decision, n_grid))
        derivatives.append([(plus - minus) / (2 * step) for plus, minus in zip(*sides, strict=True)])
    base = _probabilities(counts, params, strategy, unity_decision, n_grid)
    k = len(counts.uni_v_counts[0]) if len(counts.uni_v_counts) else counts.bi_counts.shape[1] - 1
    info = np.zeros((len(free), len(free)))
    # trials per condition and response pattern (which of r_v, r_a, unity were given)
    bi = counts.bi_counts
    if len(bi):
        kind_v = np.r_[np.zeros(k, int), 1][:, None, None]
        kind_a = np.r_[np.zeros(k, int), 1][None, :, None]
        kind_u = np.array([0, 0, 1])[None, None, :]
        kind = np.broadcast_to(4 * kind_v + 2 * kind_a + kind_u, bi.shape[1:])
        per_kind = np.stack([bi[:, kind == t].sum(axis=1) for t in range(8)], axis=1)  # (Cb, 8)
        weights = per_kind[:, kind]  # (Cb, K+1, K+1, 3): trials of each cell's pattern
    for part, (p, n_part) in enumerate(
        zip(base, (bi, counts.uni_v_counts, counts.uni_a_counts), strict=True)
    ):
        if not len(n_part):
            continue
        weight = weights if part == 0 else np.broadcast_to(n_part.sum(axis=1, keepdims=True), n_part.shape)
        d = np.stack([deriv[part] for deriv in derivatives])  # (M, *shape)
        use = (weight > 0) & (p > 1e-12)
        dd = d[:, use]
        info += (dd * (weight[use] / p[use])) @ dd.T
    return info


_LBFGSB = dict(maxiter=200, eps=1e-6, ftol=1e-7, gtol=1e-2)
"""L-BFGS-B settings: stop when an iteration improves -log L by less than 1e-7 of itself (about 2e-4 for
1,000 trials) or the projected gradient is below 0.01; finite-difference step 1e-6 on the transformed scale."""


def _standard_errors(info: FloatArray) -> tuple[FloatArray, list[str]]:
    """Standard errors on the transformed scale from the information matrix; infinite for a parameter
    that loads on a direction the data do not inform (a near-zero eigenvalue)."""
    values, vectors = np.linalg.eigh(0.5 * (info + info.T))
    null = values <= 1e-9 * max(values.max(), 1e-300)
    with np.errstate(divide="ignore"):
        variances = (vectors**2 / np.where(null, np.inf, values)) @ np.ones(len(values))
    unidentified = (vectors[:, null] ** 2).sum(axis=1) > 1e-6
    notes = []
    if unidentified.any():
        notes.append(
            "the likelihood is flat along some direction: parameters with infinite SE are not identified "
            "by these trials"
        )
    return np.where(unidentified, np.inf, np.sqrt(variances)), notes


def fit(
    table: TrialTable,
    strategy: str = "averaging",
    *,
    free: Iterable[str] | None = None,
    fixed: Mapping[str, float] | None = None,
    start: Mapping[str, float] | None = None,
    unity_decision: str = "criterion",
    starts: int = 2,
    screen: int = 8,
    rng: int | np.random.Generator = 0,
    n_grid: int = 21,
    coarse_grid: int = 13,
) -> FitResult:
    """Maximum-likelihood fit of the causal-inference observer with one decision strategy.

    Args:
        table: the trials (:func:`make_table`, :func:`simulate_table`, :func:`parse_trials`).
        strategy: ``"averaging"``, ``"selection"`` or ``"matching"`` (Wozny et al. 2010).
        free: parameters to fit (default: sigma_v, sigma_a, sigma_p, p_common, sigma_motor, lapse, and
            criterion when the table has unity judgements and ``unity_decision="criterion"``).
        fixed: values of parameters held fixed (default ``mu_p = 0``).
        start: a starting point to try first (e.g. another strategy's estimate).
        unity_decision: ``"criterion"`` or ``"matching"`` (see :func:`chapter13.neuro.response_probabilities`).
        starts: local optimisations run (from the best of the screened starting points).
        screen: starting points screened by one likelihood evaluation each (the data-driven guess,
            ``start`` if given, and random perturbations of the guess, seeded by ``rng``).
        n_grid: quadrature points per axis of the final fit and its standard errors.
        coarse_grid: points per axis while screening and searching (a cheaper, rougher likelihood; the
            best optimum found is then polished with ``n_grid``).

    Returns:
        a :class:`FitResult`.
    """
    t0 = time.perf_counter()
    neuro._check_strategy(strategy)
    _check_unity_decision(unity_decision)
    if isinstance(free, str):
        raise ValueError(f"free must be a list of parameter names, e.g. [{free!r}], got the string {free!r}")
    if (
        not isinstance(starts, (int, np.integer))
        or starts < 1
        or not isinstance(screen, (int, np.integer))
        or screen < starts
    ):
        raise ValueError(f"need starts >= 1 and screen >= starts, got starts={starts!r}, screen={screen!r}")
    counts = _prepare(table)
    names = tuple(free) if free is not None else _default_free(counts, unity_decision)
    fixed = {name: _check_value(name, value) for name, value in (fixed or {}).items()}
    unknown = [name for name in names if name not in PARAMETERS]
    if unknown:
        raise ValueError(
            f"unknown parameters {unknown} in free; the observer's parameters are {list(PARAMETERS)}"
        )
    both = set(names) & set(fixed)
    if both:
        raise ValueError(f"{sorted(both)} are both free and fixed; leave them out of one of the two")
    if "criterion" in names and not counts.has_unity:
        raise ValueError(
            "the table has no unity judgements, so criterion cannot be fitted; leave it out of free"
        )
    if len(names) == 0:
        raise ValueError("nothing to fit: free is empty")
    guess = {**_start_from_data(table), **fixed}
    base = {**DEFAULT_START, **fixed}
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    bounds = [_BOUNDS[n] for n in names]
    low, high = np.array(bounds).T

    def theta_of(values: Mapping[str, float]) -> FloatArray:
        return np.clip([_transform(n, _check_value(n, values[n])) for n in names], low, high)

    def params_of(theta: FloatArray) -> dict[str, float]:
        return {**base, **{n: _untransform(n, t) for n, t in zip(names, theta, strict=True)}}

    evaluations = 0

    grid = min(coarse_grid, n_grid)

    def objective(theta: FloatArray) -> float:
        nonlocal evaluations
        evaluations += 1
        return -_log_likelihood(counts, params_of(theta), strategy, unity_decision, grid)

    centre = theta_of(guess)
    candidates = [theta_of({**guess, **start})] if start else []
    candidates.append(centre)
    while len(candidates) < screen:
        candidates.append(np.clip(centre + generator.normal(0, 0.7, len(names)), low, high))
    values = [objective(c) for c in candidates]
    order = np.argsort(values)
    best = None
    for i in order[:starts]:
        result = optimize.minimize(
            objective, candidates[i], method="L-BFGS-B", bounds=bounds, options=_LBFGSB
        )
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    if coarse_grid < n_grid:  # polish on the full grid, from the best coarse optimum
        grid = n_grid
        best = optimize.minimize(objective, best.x, method="L-BFGS-B", bounds=bounds, options=_LBFGSB)
    params = params_of(best.x)
    se_theta, notes = _standard_errors(_information(counts, params, names, strategy, unity_decision, n_grid))
    se, intervals = {}, {}
    for name, theta, s in zip(names, best.x, se_theta, strict=True):
        value = params[name]
        kind = PARAMETERS[name]
        slope = value if kind == "log" else value * (1 - value) if kind == "logit" else 1.0
        se[name] = float(slope * s)
        with np.errstate(over="ignore"):
            intervals[name] = (_untransform(name, theta - 1.96 * s), _untransform(name, theta + 1.96 * s))
        if np.isclose(theta, _BOUNDS[name][0]) or np.isclose(theta, _BOUNDS[name][1]):
            notes.append(f"{name} stopped at its bound ({value:.3g}); its interval is not reliable")
    return FitResult(
        strategy=strategy,
        params=params,
        free=names,
        se=se,
        intervals=intervals,
        log_likelihood=-float(best.fun),
        n_trials=counts.n_trials,
        unity_decision=unity_decision,
        n_evaluations=evaluations,
        seconds=time.perf_counter() - t0,
        converged=bool(best.success),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class Comparison:
    """Fits of several strategies to one table; ``best`` has the lowest AIC."""

    fits: dict[str, FitResult]

    @property
    def best(self) -> str:
        return min(self.fits, key=lambda s: self.fits[s].aic)

    @property
    def akaike_weights(self) -> dict[str, float]:
        """``w_s = exp(-dAIC_s / 2) / sum exp(-dAIC / 2)``: the relative likelihood of each strategy."""
        aic = np.array([f.aic for f in self.fits.values()])
        rel = np.exp(-(aic - aic.min()) / 2)
        return dict(zip(self.fits, rel / rel.sum(), strict=True))

    @property
    def seconds(self) -> float:
        return sum(f.seconds for f in self.fits.values())

    def rows(self) -> list[dict[str, float | str]]:
        aic_min = min(f.aic for f in self.fits.values())
        bic_min = min(f.bic for f in self.fits.values())
        weights = self.akaike_weights
        return [
            dict(strategy=s, log_likelihood=f.log_likelihood, aic=f.aic, d_aic=f.aic - aic_min, bic=f.bic,
                 d_bic=f.bic - bic_min, weight=weights[s], p_common=f.params["p_common"])
            for s, f in self.fits.items()
        ]  # fmt: skip

    def summary(self) -> str:
        lines = [
            f"{'strategy':10s} {'log L':>9s} {'AIC':>9s} {'dAIC':>7s} {'BIC':>9s} {'dBIC':>7s} {'weight':>7s}"
        ]
        for r in self.rows():
            lines.append(
                f"{r['strategy']:10s} {r['log_likelihood']:9.1f} {r['aic']:9.1f} {r['d_aic']:7.1f} "
                f"{r['bic']:9.1f} {r['d_bic']:7.1f} {r['weight']:7.3f}"
            )
        lines.append(f"AIC picks {self.best!r} ({self.seconds:.1f} s for {len(self.fits)} fits)")
        return "\n".join(lines)


def compare_strategies(
    table: TrialTable,
    strategies: Sequence[str] = neuro.STRATEGIES,
    *,
    progress: bool = False,
    **fit_options: object,
) -> Comparison:
    """Fit each strategy (:func:`fit`, same options) and compare them by AIC and BIC.

    Each fit after the first also tries the previous fits' estimates as a starting point. ``progress``
    shows a ``tqdm.auto`` bar over the strategies (off by default).
    """
    _check_strategies(strategies)
    fits: dict[str, FitResult] = {}
    for strategy in tqdm(strategies, desc="fitting strategies", disable=not progress, leave=False):
        previous = max(fits.values(), key=lambda f: f.log_likelihood).params if fits else None
        fits[strategy] = fit(table, strategy, start=previous, **fit_options)  # type: ignore[arg-type]
    return Comparison(fits)


# --- simulated experiments and parameter recovery -------------------------------------------------------


def kording_design(
    n_trials: int, positions: Sequence[float] = neuro.KORDING_BUTTONS, unimodal: bool = True
) -> tuple[FloatArray, FloatArray]:
    """Stimuli of Körding et al.'s (2007) experiment: every flash position with every sound position
    (25 conditions), and each alone (10 more, when ``unimodal``), ``n_trials`` spread evenly.

    Returns:
        ``(s_v, s_a)``, ``(n_trials,)`` each, NaN for an absent stimulus.
    """
    if not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive int, got {n_trials!r}")
    pos = np.asarray(positions, dtype=float).reshape(-1)
    if pos.size == 0 or not np.all(np.isfinite(pos)):
        raise ValueError(f"positions must be at least one finite stimulus position, got {positions!r}")
    pairs = [(v, a) for v in pos for a in pos]
    if unimodal:
        pairs += [(v, np.nan) for v in pos] + [(np.nan, a) for a in pos]
    conditions = np.asarray(pairs)
    index = np.arange(n_trials) % len(conditions)
    return conditions[index, 0].copy(), conditions[index, 1].copy()


def simulate_table(
    params: Mapping[str, float],
    strategy: str = "averaging",
    n_trials: int = 1000,
    *,
    design: tuple[ArrayLike, ArrayLike] | None = None,
    buttons: ArrayLike = neuro.KORDING_BUTTONS,
    unity: bool = False,
    unity_decision: str = "criterion",
    rng: int | np.random.Generator = 0,
) -> TrialTable:
    """Responses of a simulated observer, drawn trial by trial (no quadrature).

    Args:
        params: the observer (:data:`PARAMETERS`; missing ones take :data:`DEFAULT_START`).
        design: ``(s_v, s_a)`` stimuli (NaN for absent); default :func:`kording_design` with ``n_trials``.
        unity: also ask for a unity judgement on every audio-visual trial.

    Returns:
        a :class:`TrialTable`: both positions reported on audio-visual trials, the presented one alone.
    """
    neuro._check_strategy(strategy)
    p = _full_params(params)
    s_v, s_a = (
        kording_design(n_trials)
        if design is None
        else (np.asarray(design[0], float), np.asarray(design[1], float))
    )
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = len(s_v)
    r_v, r_a, un = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    bi = ~np.isnan(s_v) & ~np.isnan(s_a)
    response = dict(sigma_motor=p["sigma_motor"], lapse=p["lapse"], buttons=buttons, mu_p=p["mu_p"])
    if bi.any():
        out = neuro.simulate_localization_trials(
            s_v[bi], s_a[bi], p["sigma_v"], p["sigma_a"], p["sigma_p"], p["p_common"], strategy=strategy,
            unity_decision=unity_decision, criterion=p["criterion"], rng=gen, **response,
        )  # fmt: skip
        r_v[bi], r_a[bi] = out["r_v"], out["r_a"]
        if unity:
            un[bi] = out["unity"].astype(float)
    for stim, other, sigma, report in ((s_v, s_a, p["sigma_v"], r_v), (s_a, s_v, p["sigma_a"], r_a)):
        alone = ~np.isnan(stim) & np.isnan(other)
        if alone.any():
            report[alone] = neuro.simulate_unimodal_trials(
                stim[alone], sigma, p["sigma_p"], rng=gen, **response
            )
    return make_table(s_v, s_a, r_v, r_a, un, buttons)


@dataclass(frozen=True)
class Recovery:
    """Fits of simulated data sets: ``truth``, the generating ``strategy`` and one :class:`Comparison` each."""

    truth: dict[str, float]
    strategy: str
    comparisons: list[Comparison]
    label: str = ""

    @property
    def picked(self) -> dict[str, int]:
        """How often AIC picked each strategy."""
        names = list(self.comparisons[0].fits)
        return {s: sum(c.best == s for c in self.comparisons) for s in names}

    def coverage(self) -> dict[str, int]:
        """For each fitted parameter: in how many data sets the generating strategy's 95 % interval
        contains the true value."""
        fits = [c.fits[self.strategy] for c in self.comparisons]
        return {n: sum(f.contains(self.truth)[n] for f in fits) for n in fits[0].free if n in self.truth}

    def estimates(self, name: str) -> FloatArray:
        return np.array([c.fits[self.strategy].params[name] for c in self.comparisons])


def recover(
    truth: Mapping[str, float],
    strategy: str,
    n_datasets: int = 20,
    n_trials: int = 1000,
    seed: int = 0,
    strategies: Sequence[str] = neuro.STRATEGIES,
    label: str = "",
    **fit_options: object,
) -> Recovery:
    """Parameter recovery: simulate ``n_datasets`` tables from ``truth`` with ``strategy`` (seeds
    ``seed, seed + 1, ...``), fit every strategy to each and keep the comparisons."""
    if not isinstance(n_datasets, (int, np.integer)) or n_datasets < 1:
        raise ValueError(f"n_datasets must be a positive int, got {n_datasets!r}")
    _check_strategies(strategies)
    comparisons = []
    for i in range(n_datasets):
        table = simulate_table(truth, strategy, n_trials, rng=seed + i)
        comparisons.append(compare_strategies(table, strategies, rng=seed + i, **fit_options))
    return Recovery(_full_params(truth), strategy, comparisons, label)


def recovery_table(recoveries: Sequence[Recovery]) -> str:
    """The recovery table: per generating observer and strategy, each parameter's true value, median
    estimate, interval coverage, and how often AIC picked each strategy; then fit times."""
    lines = []
    for rec in recoveries:
        n = len(rec.comparisons)
        fits = [c.fits[rec.strategy] for c in rec.comparisons]
        lines.append(
            f"{rec.label or 'observer'}, generated with {rec.strategy!r}: {n} data sets of {fits[0].n_trials} trials"
        )
        lines.append(
            f"  {'parameter':12s} {'true':>7s} {'median':>7s} {'[q10, q90] of estimates':>25s} {'in 95% CI':>10s}"
        )
        coverage = rec.coverage()
        for name in fits[0].free:
            est = rec.estimates(name)
            q10, q90 = np.quantile(est, [0.1, 0.9])
            lines.append(
                f"  {name:12s} {rec.truth[name]:7.3f} {np.median(est):7.3f} {f'[{q10:.3f}, {q90:.3f}]':>25s} "
                f"{coverage[name]:>5d}/{n:<4d}"
            )
        picks = ", ".join(f"{s} {k}/{n}" for s, k in rec.picked.items())
        times = [c.seconds for c in rec.comparisons]
        lines.append(f"  AIC picked: {picks}")
        lines.append(
            f"  time to fit all {len(rec.comparisons[0].fits)} strategies: median {np.median(times):.1f} s, "
            f"max {np.max(times):.1f} s per data set"
        )
    return "\n".join(lines)


# --- curves to draw over the data -------------------------------------------------------------------


def observed_proportions(table: TrialTable) -> dict[str, FloatArray]:
    """Response counts of the audio-visual conditions: ``s_v``, ``s_a`` ``(C,)``, ``visual`` and
    ``auditory`` ``(C, K)`` counts of each button, ``common`` ``(C,)`` and ``asked`` ``(C,)`` (unity
    reports "one cause" and unity judgements given)."""
    counts = _counts(table)
    k = len(table.buttons)
    bi = counts.bi_counts
    return dict(
        s_v=counts.bi_v,
        s_a=counts.bi_a,
        visual=bi[:, :k].sum(axis=(2, 3)),
        auditory=bi[:, :, :k].sum(axis=(1, 3)),
        common=bi[..., 1].sum(axis=(1, 2)),
        asked=bi[..., :2].sum(axis=(1, 2, 3)),
    )


def predicted_proportions(
    params: Mapping[str, float],
    strategy: str,
    s_v: ArrayLike,
    s_a: ArrayLike,
    buttons: ArrayLike = neuro.KORDING_BUTTONS,
    unity_decision: str = "criterion",
    n_grid: int = 21,
) -> dict[str, FloatArray]:
    """Model probabilities for audio-visual conditions ``(C,)``: ``visual``, ``auditory`` ``(C, K)`` and
    ``common`` ``(C,)``."""
    p = _full_params(params)
    out = neuro.response_probabilities(
        s_v, s_a, p["sigma_v"], p["sigma_a"], p["sigma_p"], p["p_common"], buttons, p["mu_p"], strategy,
        p["sigma_motor"], p["lapse"], unity_decision, p["criterion"], n_grid,
    )  # fmt: skip
    return dict(visual=out["visual"], auditory=out["auditory"], common=out["common"])


def visual_bias(
    s_v: ArrayLike, s_a: ArrayLike, auditory: ArrayLike, buttons: ArrayLike = neuro.KORDING_BUTTONS
) -> tuple[FloatArray, FloatArray]:
    """The ventriloquist curve: how far the flash moves the mean auditory report, as a fraction of the
    disparity, pooled over conditions of equal ``|s_v - s_a|``::

        bias = (E[r_a | s_v, s_a] - E[r_a | s_a, s_a]) / (s_v - s_a),

    measured from the congruent condition of the same sound (flash at the sound), so that the pull of
    the prior and the end buttons, the same in both, cancels: a segregating observer has bias 0 and
    forced fusion about the visual weight (cf. Körding et al. 2007, Fig. 2e). Sounds without a
    congruent condition are left out.

    Args:
        s_v, s_a: ``(C,)`` audio-visual conditions; auditory: ``(C, K)`` counts or probabilities.

    Returns:
        ``(disparities, bias)``, ``(D,)`` each, for the non-zero absolute disparities.
    """
    sv, sa = np.asarray(s_v, float), np.asarray(s_a, float)
    aud = np.asarray(auditory, float)
    b = np.asarray(buttons, float)
    if sv.ndim != 1 or sv.shape != sa.shape or aud.shape != (len(sv), len(b)):
        raise ValueError(
            f"visual_bias needs s_v and s_a of one length C and auditory of shape (C, {len(b)}) (one column "
            f"per button); got s_v {sv.shape}, s_a {sa.shape}, auditory {aud.shape}"
        )
    weight = aud.sum(axis=1)
    mean = (aud @ b) / np.maximum(weight, 1e-300)
    congruent = {float(a): float(m) for v, a, m in zip(sv, sa, mean, strict=True) if v == a}
    use = np.array([v != a and float(a) in congruent for v, a in zip(sv, sa, strict=True)], dtype=bool)
    if not use.any():
        return np.zeros(0), np.zeros(0)
    base = np.array([congruent[float(a)] for a in sa[use]])
    each = (mean[use] - base) / (sv[use] - sa[use])
    disparity, w = np.abs(sv[use] - sa[use]), weight[use]
    levels = np.unique(disparity)
    bias = np.array(
        [np.sum(w[disparity == d] * each[disparity == d]) / np.sum(w[disparity == d]) for d in levels]
    )
    return levels, bias


# --- flash-beep counts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlashBeepTable:
    """Mean reported number of flashes for pairings of flashes and beeps: ``(M,)`` arrays."""

    flashes: NDArray[np.int64]
    beeps: NDArray[np.int64]
    mean_reported: FloatArray
    kind: str
    source: str

    def rows(self) -> list[tuple[int, int, float]]:
        return list(zip(self.flashes.tolist(), self.beeps.tolist(), self.mean_reported.tolist(), strict=True))


FLASH_BEEP_TABLE = FlashBeepTable(
    flashes=np.array([1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]),
    beeps=np.array([0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 3, 0, 1, 4]),
    mean_reported=np.array([1.05, 1.05, 1.9, 2.2, 2.3, 1.95, 1.95, 2.05, 2.8, 2.8, 2.95, 3.4, 3.4, 3.6]),
    kind="illustrative",
    source=(
        "ILLUSTRATIVE values, not measurements. The design is that of Shams, Kamitani & Shimojo (2002, "
        "Cogn Brain Res 14:147; Experiment 1): one flash with 0-4 beeps, and 2-4 flashes with no beep, "
        "one beep or as many beeps as flashes. The published means are shown only as figures (Shams et "
        "al. 2000, Nature 408:788; 2002); no table of them was available to us, so "
        "these numbers are chosen to follow what the papers report in words: one flash with two or more "
        "beeps is seen as about two flashes (fission), three or four beeps rarely add more, and the "
        "counts with no beep or one beep are close to veridical (Shams et al. did not find fusion). "
        "Replace them with values read off the figures, or your own data, before drawing conclusions."
    ),
)
"""A short table of flash-beep counts, clearly labelled as illustrative (see ``source``)."""


def _check_flash_beep(table: FlashBeepTable) -> None:
    """The rows of a flash-beep table: equal lengths, whole counts (at least one flash), finite means."""
    if not isinstance(table, FlashBeepTable):
        raise TypeError(
            f"expected a FlashBeepTable (see fitting.FLASH_BEEP_TABLE), got {type(table).__name__}"
        )
    columns = dict(flashes=table.flashes, beeps=table.beeps, mean_reported=table.mean_reported)
    arrays = {name: np.asarray(col, dtype=float) for name, col in columns.items()}
    lengths = {name: a.shape for name, a in arrays.items()}
    if any(a.ndim != 1 for a in arrays.values()) or len(set(lengths.values())) != 1:
        raise ValueError(
            f"flashes, beeps and mean_reported need one value per row each, got shapes {lengths}"
        )
    if len(arrays["flashes"]) == 0:
        raise ValueError("the flash-beep table is empty; give at least one (flashes, beeps, mean) row")
    for name, least in (("flashes", 1), ("beeps", 0)):
        a = arrays[name]
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or np.any(a < least):
            raise ValueError(f"{name} must be whole numbers of at least {least}, got {a.tolist()}")
    if not np.all(np.isfinite(arrays["mean_reported"])):
        raise ValueError(f"mean_reported must be finite numbers, got {arrays['mean_reported'].tolist()}")


def predict_flash_beep(
    table: FlashBeepTable, sigma_v: float, sigma_a: float, p_common: float, n_grid: int = 61
) -> FloatArray:
    """Mean reported flashes of :func:`chapter13.neuro.flash_beep_report_probabilities` for each row."""
    _check_flash_beep(table)
    counts = np.arange(1, 5, dtype=float)
    return np.array([
        neuro.flash_beep_report_probabilities(int(f), int(b), sigma_v, sigma_a, p_common, n_grid=n_grid) @ counts
        for f, b in zip(table.flashes, table.beeps, strict=True)
    ])  # fmt: skip


def fit_flash_beep(
    table: FlashBeepTable = FLASH_BEEP_TABLE,
    start: Mapping[str, float] = neuro.FLASH_BEEP_DEFAULTS,
    n_grid: int = 61,
    max_evaluations: int = 300,
) -> dict[str, object]:
    """Least-squares fit of the count observer (sigma_v, sigma_a, p_common) to a table of means.

    A table of means has no trial counts, so there is no likelihood and no standard error: the fit
    minimises the squared difference of mean reports with Nelder-Mead (the model's reports come from
    a most-probable-count decision, a step function of the parameters at fixed quadrature nodes, so a
    derivative-free method is the safe choice here).

    Returns:
        dict with ``params``, ``predicted`` ``(M,)``, ``rmse`` and ``start_predicted`` (the starting
        observer's means).
    """
    _check_flash_beep(table)
    names = ("sigma_v", "sigma_a", "p_common")
    x0 = [_transform(n, _check_value(n, start[n])) for n in names]

    def params(theta: FloatArray) -> dict[str, float]:
        return dict(
            sigma_v=float(np.exp(theta[0])),
            sigma_a=float(np.exp(theta[1])),
            p_common=float(special.expit(theta[2])),
        )

    def loss(theta: FloatArray) -> float:
        return float(
            np.mean((predict_flash_beep(table, n_grid=n_grid, **params(theta)) - table.mean_reported) ** 2)
        )

    result = optimize.minimize(
        loss, x0, method="Nelder-Mead", options=dict(xatol=1e-3, fatol=1e-6, maxfev=max_evaluations)
    )
    best = params(result.x)
    predicted = predict_flash_beep(table, n_grid=n_grid, **best)
    return dict(
        params=best,
        predicted=predicted,
        rmse=float(np.sqrt(np.mean((predicted - table.mean_reported) ** 2))),
        start_predicted=predict_flash_beep(table, n_grid=n_grid, **{n: float(start[n]) for n in names}),
    )
