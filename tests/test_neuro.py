"""Tests of chapter13.neuro (13.5) against hand-derived values, limits and numerical integration of
each generative model done here in the test, independently of the code under test."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from chapter13 import neuro

K = neuro.KORDING_2007


def npdf(x, mean, sd):
    return stats.norm.pdf(x, mean, sd)


# --- maximum-likelihood cue combination ------------------------------------------------------------


def test_mle_two_cues_by_hand():
    est, sd, w = neuro.mle_combine([0.0, 10.0], [1.0, 2.0])
    # precisions 1 and 1/4: weights 0.8 and 0.2, variance 1 / 1.25
    np.testing.assert_allclose(w, [0.8, 0.2])
    assert est == pytest.approx(2.0)
    assert sd == pytest.approx(math.sqrt(0.8))


def test_mle_three_cues_and_batch():
    est, sd, w = neuro.mle_combine([[1.0, 2.0, 4.0], [0.0, 0.0, 3.0]], [1.0, 1.0, 2.0])
    # precisions 1, 1, 1/4 -> total 2.25
    np.testing.assert_allclose(w[0], [1 / 2.25, 1 / 2.25, 0.25 / 2.25])
    np.testing.assert_allclose(est, [(1 + 2 + 1) / 2.25, 0.75 / 2.25])
    np.testing.assert_allclose(sd, [1 / 1.5, 1 / 1.5])
    assert est.shape == (2,) and w.shape == (2, 3)


def test_mle_variance_never_exceeds_best_cue():
    rng = np.random.default_rng(1)
    sigmas = rng.uniform(0.1, 10, size=(200, 3))
    _, sd, _ = neuro.mle_combine(np.zeros((200, 3)), sigmas)
    assert np.all(sd <= sigmas.min(axis=1) + 1e-12)


@pytest.mark.parametrize(
    "estimates, sigmas, match",
    [
        ([0.0, 1.0], [1.0, 0.0], "positive"),
        ([0.0, 1.0], [1.0, -2.0], "positive"),
        ([0.0, 1.0, 2.0], [1.0, 2.0], "one sigma per cue"),
        (1.0, 1.0, "last axis"),
        ([0.0, np.nan], [1.0, 1.0], "NaN"),
    ],
)
def test_mle_bad_input(estimates, sigmas, match):
    with pytest.raises(ValueError, match=match):
        neuro.mle_combine(estimates, sigmas)


# --- attention as a gain on reliability ------------------------------------------------------------


def test_attended_sigma_by_hand_and_in_the_weights():
    assert neuro.attended_sigma(6.0, 4.0) == pytest.approx(3.0)  # 4x the reliability: half the sigma
    assert neuro.attended_sigma(2.0, 1.0) == pytest.approx(2.0)  # no gain, no change
    np.testing.assert_allclose(neuro.attended_sigma([1.0, 2.0], [[1.0], [0.25]]), [[1.0, 2.0], [2.0, 4.0]])
    for gain in (0.5, 1.0, 3.0, 9.0):  # equal cues, vision attended: w_V = g / (g + 1)
        _, _, w = neuro.mle_combine([0.0, 10.0], [neuro.attended_sigma(6.0, gain), 6.0])
        assert w[0] == pytest.approx(gain / (gain + 1))
    # attending to vision raises the ventriloquist bias when vision is blurred, attending to audition lowers it
    d, k = np.array([2.0]), K
    bias = {
        gv_ga: neuro.ventriloquist_bias(
            d, neuro.attended_sigma(8.0, gv_ga[0]), neuro.attended_sigma(k["sigma_a"], gv_ga[1]), k["sigma_p"],
            k["p_common"],
        )["bias"][0]
        for gv_ga in ((1.0, 1.0), (4.0, 1.0), (1.0, 4.0))
    }  # fmt: skip
    assert bias[(4.0, 1.0)] > bias[(1.0, 1.0)] > bias[(1.0, 4.0)]


@pytest.mark.parametrize("gain", [0.0, -1.0, np.nan, np.inf])
def test_attended_sigma_refuses_bad_gains(gain):
    with pytest.raises(ValueError, match="gain"):
        neuro.attended_sigma(2.0, gain)
    with pytest.raises(ValueError, match="positive standard deviation"):
        neuro.attended_sigma(0.0, 2.0)


# --- causal inference ------------------------------------------------------------------------------


def numeric_posterior(x_v, x_a, sv, sa, sp, pc, mu=0.0):
    """p(C=1 | x) by integrating the generative model over source positions with quad."""
    lo, hi = mu - 12 * sp, mu + 12 * sp
    l1 = integrate.quad(lambda s: npdf(x_v, s, sv) * npdf(x_a, s, sa) * npdf(s, mu, sp), lo, hi,
                        points=[x_v, x_a], limit=200, epsabs=0)[0]  # fmt: skip
    lv = integrate.quad(
        lambda s: npdf(x_v, s, sv) * npdf(s, mu, sp), lo, hi, points=[x_v], limit=200, epsabs=0
    )[0]
    la = integrate.quad(
        lambda s: npdf(x_a, s, sa) * npdf(s, mu, sp), lo, hi, points=[x_a], limit=200, epsabs=0
    )[0]
    return l1, lv * la, l1 * pc / (l1 * pc + lv * la * (1 - pc))


@pytest.mark.parametrize("x_v, x_a", [(0.0, 0.0), (5.0, -3.0), (12.0, 0.0), (-20.0, 4.0), (30.0, 30.0)])
def test_posterior_matches_numerical_integration(x_v, x_a):
    l1, l2, post = numeric_posterior(x_v, x_a, K["sigma_v"], K["sigma_a"], K["sigma_p"], K["p_common"])
    assert neuro.likelihood_common(x_v, x_a, K["sigma_v"], K["sigma_a"], K["sigma_p"]) == pytest.approx(
        l1, rel=1e-7
    )
    assert neuro.likelihood_separate(x_v, x_a, K["sigma_v"], K["sigma_a"], K["sigma_p"]) == pytest.approx(
        l2, rel=1e-7
    )
    got = neuro.causal_inference_posterior(x_v, x_a, **K)
    assert got == pytest.approx(post, rel=1e-7)


def test_posterior_with_shifted_prior_and_arrays():
    x_v, x_a = np.array([1.0, 6.0, -4.0]), np.array([2.0, -1.0, -4.5])
    got = neuro.causal_inference_posterior(x_v, x_a, 1.5, 3.0, 5.0, 0.6, mu_p=2.0)
    want = [numeric_posterior(v, a, 1.5, 3.0, 5.0, 0.6, mu=2.0)[2] for v, a in zip(x_v, x_a, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-7)
    assert got.shape == (3,)


def test_posterior_limits_of_p_common():
    x = np.linspace(-30, 30, 13)
    assert np.all(neuro.causal_inference_posterior(x, -x, 2.14, 9.2, 12.3, 0.0) == 0.0)
    assert np.all(neuro.causal_inference_posterior(x, -x, 2.14, 9.2, 12.3, 1.0) == 1.0)
    assert neuro.causal_inference_posterior(3.0, 0.0, 2.14, 9.2, 12.3, 1e-12) < 1e-10
    assert neuro.causal_inference_posterior(3.0, 0.0, 2.14, 9.2, 12.3, 1 - 1e-12) > 1 - 1e-10


def test_posterior_falls_with_disparity_without_nan():
    d = np.array([0.0, 5.0, 10.0, 20.0, 40.0, 1e3])
    post = neuro.causal_inference_posterior(d, 0.0, **K)
    assert np.all(np.diff(post) < 0)
    assert post[-1] == 0.0 and np.all(np.isfinite(post))


def numeric_mean(weight_fn, sv, sa, sp, mu=0.0):
    num = integrate.quad(lambda s: s * weight_fn(s) * npdf(s, mu, sp), -200, 200, limit=400)[0]
    den = integrate.quad(lambda s: weight_fn(s) * npdf(s, mu, sp), -200, 200, limit=400)[0]
    return num / den


def test_fused_and_segregated_are_posterior_means():
    x_v, x_a, sv, sa, sp, mu = 4.0, -6.0, 2.0, 5.0, 10.0, 1.0
    fused = numeric_mean(lambda s: npdf(x_v, s, sv) * npdf(x_a, s, sa), sv, sa, sp, mu)
    seg_v = numeric_mean(lambda s: npdf(x_v, s, sv), sv, sa, sp, mu)
    seg_a = numeric_mean(lambda s: npdf(x_a, s, sa), sv, sa, sp, mu)
    assert neuro.fused_estimate(x_v, x_a, sv, sa, sp, mu) == pytest.approx(fused, rel=1e-7)
    got_v, got_a = neuro.segregated_estimates(x_v, x_a, sv, sa, sp, mu)
    assert (got_v, got_a) == (pytest.approx(seg_v, rel=1e-7), pytest.approx(seg_a, rel=1e-7))


def test_strategies_by_hand():
    sv, sa, sp = 2.0, 8.0, 12.0
    x_v, x_a = 3.0, 1.0  # small disparity: p(C=1 | x) > 0.5 at p_common = 0.5
    _, _, post = numeric_posterior(x_v, x_a, sv, sa, sp, 0.5)
    assert post > 0.5
    prec = 1 / sv**2 + 1 / sa**2 + 1 / sp**2
    fused = (x_v / sv**2 + x_a / sa**2) / prec
    seg_v = (x_v / sv**2) / (1 / sv**2 + 1 / sp**2)
    seg_a = (x_a / sa**2) / (1 / sa**2 + 1 / sp**2)
    avg = neuro.causal_inference_estimate(x_v, x_a, sv, sa, sp, 0.5, strategy="averaging")
    np.testing.assert_allclose(avg, [post * fused + (1 - post) * seg_v, post * fused + (1 - post) * seg_a])
    sel = neuro.causal_inference_estimate(x_v, x_a, sv, sa, sp, 0.5, strategy="selection")
    np.testing.assert_allclose(sel, [fused, fused])
    far = neuro.causal_inference_estimate(40.0, -10.0, sv, sa, sp, 0.5, strategy="selection")
    np.testing.assert_allclose(
        far, [40.0 / sv**2 / (1 / sv**2 + 1 / sp**2), -10.0 / sa**2 / (1 / sa**2 + 1 / sp**2)]
    )


def test_matching_picks_fusion_with_the_posterior_probability():
    sv, sa, sp, pc = 2.0, 8.0, 12.0, 0.5
    x_v, x_a = np.full(40000, 6.0), np.zeros(40000)
    _, _, post = numeric_posterior(6.0, 0.0, sv, sa, sp, pc)
    s_v, _ = neuro.causal_inference_estimate(x_v, x_a, sv, sa, sp, pc, strategy="matching", rng=3)
    fused = float(neuro.fused_estimate(6.0, 0.0, sv, sa, sp))
    frac = np.mean(np.isclose(s_v, fused))
    assert abs(frac - post) < 4 * math.sqrt(post * (1 - post) / 40000)
    # on average, matching equals averaging
    avg_v, _ = neuro.causal_inference_estimate(6.0, 0.0, sv, sa, sp, pc)
    assert s_v.mean() == pytest.approx(avg_v, abs=0.02)


def test_p_common_limits_of_the_estimates():
    x_v, x_a = np.array([5.0, -2.0]), np.array([-7.0, 9.0])
    fused = neuro.fused_estimate(x_v, x_a, 2.0, 6.0, 10.0)
    seg_v, seg_a = neuro.segregated_estimates(x_v, x_a, 2.0, 6.0, 10.0)
    for strategy in neuro.STRATEGIES:
        one = neuro.causal_inference_estimate(x_v, x_a, 2.0, 6.0, 10.0, 1.0, strategy=strategy)
        two = neuro.causal_inference_estimate(x_v, x_a, 2.0, 6.0, 10.0, 0.0, strategy=strategy)
        np.testing.assert_allclose(one, [fused, fused])
        np.testing.assert_allclose(two, [seg_v, seg_a])


def test_expected_responses_match_simulation():
    sim = neuro.simulate_responses(8.0, 0.0, **K, n_trials=60000, rng=0)
    quad = neuro.expected_responses(8.0, 0.0, **K)
    se = sim["s_a_hat"].std() / math.sqrt(60000)
    assert quad["s_a_hat"] == pytest.approx(sim["s_a_hat"].mean(), abs=5 * se)
    assert quad["p_common"] == pytest.approx(sim["p_common"].mean(), abs=0.005)
    assert sim["x_v"].shape == (60000,)


def test_ventriloquist_bias_limits_by_hand():
    d = np.array([2.0, 10.0, 30.0])
    sv, sa, sp = 2.0, 8.0, 12.0
    seg = neuro.ventriloquist_bias(d, sv, sa, sp, 0.0)
    np.testing.assert_allclose(seg["bias"], 0.0, atol=1e-12)
    fused = neuro.ventriloquist_bias(d, sv, sa, sp, 1.0)
    # E[fused] = (d / sv^2) / (1/sv^2 + 1/sa^2 + 1/sp^2) with s_a = mu_p = 0
    want = (1 / sv**2) / (1 / sv**2 + 1 / sa**2 + 1 / sp**2)
    np.testing.assert_allclose(fused["bias"], want, rtol=1e-9)
    ci = neuro.ventriloquist_bias(d, sv, sa, sp, 0.5)
    assert np.all(np.diff(ci["bias"]) < 0) and np.all(ci["bias"] < want)
    with pytest.raises(ValueError, match="zero disparity"):
        neuro.ventriloquist_bias([0.0, 1.0], sv, sa, sp, 0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma_v=0.0), "sigma_v must be a positive"),
        (dict(sigma_a=-1.0), "sigma_a must be a positive"),
        (dict(sigma_p=0.0), "sigma_p must be a positive"),
        (dict(p_common=1.5), "p_common must be a probability"),
        (dict(p_common=-0.1), "p_common must be a probability"),
        (dict(x_v=np.zeros(3), x_a=np.zeros(4)), "shapes do not match"),
    ],
)
def test_causal_inference_bad_input(kwargs, match):
    args = dict(x_v=1.0, x_a=0.0, **K) | kwargs
    with pytest.raises(ValueError, match=match):
        neuro.causal_inference_posterior(**args)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="averaging"):
        neuro.causal_inference_estimate(1.0, 0.0, **K, strategy="voting")


# --- FLMP --------------------------------------------------------------------------------------------


def test_flmp_two_alternatives_by_hand():
    a, v = 0.8, 0.3
    want = a * v / (a * v + (1 - a) * (1 - v))  # 0.24 / 0.38
    assert neuro.flmp_binary(a, v) == pytest.approx(0.24 / 0.38)
    np.testing.assert_allclose(neuro.flmp([a, 1 - a], [v, 1 - v]), [want, 1 - want])
    assert neuro.flmp_binary(0.5, 0.9) == pytest.approx(0.9)  # a neutral cue leaves the other as is


def test_flmp_three_alternatives():
    p = neuro.flmp([0.9, 0.5, 0.1], [0.1, 0.8, 0.9])
    prod = np.array([0.09, 0.40, 0.09])
    np.testing.assert_allclose(p, prod / prod.sum())
    batch = neuro.flmp(np.array([[0.9, 0.5, 0.1], [0.2, 0.2, 0.2]]), [0.1, 0.8, 0.9])
    np.testing.assert_allclose(batch[1], [0.1 / 1.8, 0.8 / 1.8, 0.9 / 1.8])


@pytest.mark.parametrize(
    "a, v, match",
    [([0.5, 1.2], [0.5, 0.5], "probability"), ([0.5, 0.5], [0.2, 0.3, 0.5], "alternatives"),
     ([1.0, 0.0], [0.0, 1.0], "undefined"), (0.5, 0.5, "flmp_binary")],
)  # fmt: skip
def test_flmp_bad_input(a, v, match):
    with pytest.raises(ValueError, match=match):
        neuro.flmp(a, v)


# --- McGurk ------------------------------------------------------------------------------------------


def test_mcgurk_asymmetry():
    fusion = neuro.mcgurk_responses("ba", "ga")
    reverse = neuro.mcgurk_responses("ga", "ba")
    assert fusion["da"] > 0.5 and fusion["da"] == max(fusion.values())
    assert reverse["ga"] > 0.5 and reverse["da"] < 0.2
    for name in neuro.SYLLABLES:
        assert neuro.mcgurk_responses(name, name)[name] > 0.8
    assert sum(fusion.values()) == pytest.approx(1.0)


def test_mcgurk_without_common_cause_is_hearing_alone():
    sa = 0.5
    got = neuro.mcgurk_responses("ba", "ga", sigma_a=sa, p_common=0.0, n_grid=801)
    # equal priors and variances: the most probable syllable is the nearest prototype (0, 1, 2)
    phi = stats.norm.cdf
    want = {"ba": phi(0.5 / sa), "da": phi(1.5 / sa) - phi(0.5 / sa), "ga": 1 - phi(1.5 / sa)}
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=2e-3)
    # and the face does not matter
    other = neuro.mcgurk_responses("ba", "ba", sigma_a=sa, p_common=0.0, n_grid=801)
    assert other == pytest.approx(got)


def test_mcgurk_forced_fusion_matches_monte_carlo():
    space = neuro.SyllableSpace()
    sa, sv = 0.5, 0.3
    got = neuro.mcgurk_responses("ba", "ga", sigma_a=sa, sigma_v=sv, p_common=1.0, n_grid=301)
    rng = np.random.default_rng(0)
    x_a = 0.0 + sa * rng.standard_normal(200000)
    x_v = 2.2 + sv * rng.standard_normal(200000)
    va, vv = sa**2 + space.category_sd**2, sv**2 + space.category_sd**2
    score = -((x_a[:, None] - np.array(space.auditory)) ** 2) / (2 * va) - (
        (x_v[:, None] - np.array(space.visual)) ** 2
    ) / (2 * vv)
    freq = np.bincount(score.argmax(1), minlength=3) / len(x_a)
    for k, name in enumerate(space.names):
        assert got[name] == pytest.approx(freq[k], abs=0.005)


def test_mcgurk_posterior_by_enumeration():
    space = neuro.SyllableSpace()
    x_a, x_v, sa, sv, pc = 0.3, 1.9, 0.5, 0.3, 0.7
    va, vv = sa**2 + space.category_sd**2, sv**2 + space.category_sd**2
    pa = [npdf(x_a, m, math.sqrt(va)) for m in space.auditory]
    pv = [npdf(x_v, m, math.sqrt(vv)) for m in space.visual]
    l1 = sum(a * v for a, v in zip(pa, pv, strict=True)) / 3
    l2 = (sum(pa) / 3) * (sum(pv) / 3)
    p1 = pc * l1 / (pc * l1 + (1 - pc) * l2)
    want = [p1 * a * v / (3 * l1) + (1 - p1) * a / sum(pa) for a, v in zip(pa, pv, strict=True)]
    got_p1, got = neuro.mcgurk_posterior(x_a, x_v, sa, sv, pc)
    assert got_p1 == pytest.approx(p1, rel=1e-10)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_mcgurk_congruence_curve_ends():
    curve = neuro.mcgurk_congruence_curve("ba", "ga", [0.0, 1.0])
    assert curve.shape == (2, 3)
    np.testing.assert_allclose(
        curve[0], list(neuro.mcgurk_responses("ba", "ga", n_grid=61).values()), atol=1e-12
    )
    np.testing.assert_allclose(
        curve[1], list(neuro.mcgurk_responses("ba", "ba", n_grid=61).values()), atol=1e-12
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(auditory="pa"), "unknown syllable"), (dict(sigma_a=0.0), "sigma_a"), (dict(p_common=2.0), "p_common"),
     (dict(congruence=1.5), "congruence"), (dict(decision="vote"), "decision")],
)  # fmt: skip
def test_mcgurk_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        neuro.mcgurk_responses(**kwargs)


def test_ned_model_by_hand():
    assert neuro.ned_mcgurk_probability(0.4, 0.4, 0.1) == pytest.approx(0.5)
    assert neuro.ned_mcgurk_probability(0.0, 1.0, 1.0) == pytest.approx(stats.norm.cdf(1.0))
    p = neuro.ned_mcgurk_probability(np.array([0.1, 0.5, 0.9]), 0.5, 0.05)
    np.testing.assert_allclose(p, [stats.norm.cdf(8), 0.5, stats.norm.cdf(-8)])
    with pytest.raises(ValueError, match="sensory_noise"):
        neuro.ned_mcgurk_probability(0.3, 0.5, 0.0)
    with pytest.raises(ValueError, match="shapes"):
        neuro.ned_mcgurk_probability(np.zeros(2), np.zeros(3), 1.0)


# --- flash-beep --------------------------------------------------------------------------------------


def test_flash_beep_without_common_cause_is_vision_alone():
    sv = 0.7
    phi = stats.norm.cdf
    # one flash, uniform prior on 1..4: the report is the nearest count
    want = [phi(0.5 / sv), phi(1.5 / sv) - phi(0.5 / sv), phi(2.5 / sv) - phi(1.5 / sv), 1 - phi(2.5 / sv)]
    for beeps in (0, 1, 2, 4):
        got = neuro.flash_beep_report_probabilities(1, beeps, sigma_v=sv, p_common=0.0, n_grid=801)
        np.testing.assert_allclose(got, want, atol=2e-3)


def test_fission_illusion_grows_with_beeps_and_binding():
    one = neuro.flash_beep_report_probabilities(1, 1)
    two = neuro.flash_beep_report_probabilities(1, 2)
    assert one[0] > 0.9  # one flash, one beep: veridical
    assert two[1] > 0.5  # one flash, two beeps: mostly seen as two
    weak = neuro.flash_beep_report_probabilities(1, 2, p_common=0.2)
    assert weak[1] < two[1]
    table = neuro.flash_beep_table(flashes=(1, 2), beeps=(1, 2), n_grid=81)
    assert table[0, 1] > table[0, 0] and table[1, 0] < table[1, 1]


def test_flash_beep_posterior_by_enumeration():
    x_v, x_a, sv, sa, pc = 1.2, 2.1, 0.7, 0.25, 0.8
    n = np.arange(1, 5)
    nv, na = npdf(x_v, n, sv), npdf(x_a, n, sa)
    l1, l2 = (nv * na).sum() / 4, nv.sum() / 4 * na.sum() / 4
    p1 = pc * l1 / (pc * l1 + (1 - pc) * l2)
    want = p1 * nv * na / (nv * na).sum() + (1 - p1) * nv / nv.sum()
    got_p1, got = neuro.flash_beep_posterior(x_v, x_a, sv, sa, pc)
    assert got_p1 == pytest.approx(p1, rel=1e-10)
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("flashes, beeps", [(0, 1), (-1, 2), (1.5, 2), (True, 1), (1, -1)])
def test_flash_beep_bad_counts(flashes, beeps):
    with pytest.raises(ValueError, match="n_"):
        neuro.flash_beep_report_probabilities(flashes, beeps)


# --- neurons -----------------------------------------------------------------------------------------


def test_enhancement_and_additivity_by_hand():
    assert neuro.enhancement_index(15.0, [10.0, 5.0]) == pytest.approx(50.0)
    assert neuro.enhancement_index(8.0, [10.0, 5.0]) == pytest.approx(-20.0)
    assert neuro.additivity_index(15.0, [10.0, 5.0]) == pytest.approx(1.0)
    assert neuro.additivity_index(30.0, [10.0, 5.0]) == pytest.approx(2.0)
    np.testing.assert_allclose(
        neuro.enhancement_index([4.0, 30.0], [[1.0, 2.0], [20.0, 10.0]]), [100.0, 50.0]
    )
    with pytest.raises(ValueError, match="non-negative"):
        neuro.enhancement_index(-1.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="undefined"):
        neuro.enhancement_index(1.0, [0.0, 0.0])
    with pytest.raises(ValueError, match="shapes"):
        neuro.enhancement_index(np.ones(3), np.ones((2, 2)))


def test_normalization_neuron_inverse_effectiveness():
    # I_v = I_a = 0.5: E = 1 -> 1/2; one alone: E = 0.5 -> 0.25 / 1.25 = 0.2 -> +150 %
    assert neuro.normalization_neuron(0.5, 0.5) == pytest.approx(0.5)
    assert neuro.normalization_neuron(0.5, 0.0) == pytest.approx(0.2)
    strength = np.geomspace(0.05, 20, 30)
    multi = neuro.normalization_neuron(strength, strength)
    uni = neuro.normalization_neuron(strength, 0 * strength)
    enh = neuro.enhancement_index(multi, np.stack([uni, uni], -1))
    assert np.all(np.diff(enh) < 0)  # weaker inputs, larger enhancement
    additivity = neuro.additivity_index(multi, np.stack([uni, uni], -1))
    assert additivity[0] > 1.5 and additivity[-1] < 1.0  # superadditive when weak, subadditive when strong


# --- temporal coincidence ----------------------------------------------------------------------------


def test_gamma_kernel_is_the_gamma_density():
    k = neuro.gamma_kernel(0.05, 1e-3)
    t = np.arange(len(k)) * 1e-3
    np.testing.assert_allclose(k, stats.gamma.pdf(t, a=2, scale=0.05), rtol=1e-10, atol=1e-12)
    assert k.sum() * 1e-3 == pytest.approx(1.0, abs=2e-3)


def test_correlation_detector_on_simultaneous_impulses():
    dt, tau = 2e-4, 0.05
    t = np.arange(0, 1.5, dt)
    pulse = np.zeros_like(t)
    pulse[0] = 1 / dt  # unit-area impulse at t = 0
    out = neuro.correlation_detector(pulse, pulse, dt, tau_v=tau, tau_a=tau, tau_av=tau)
    np.testing.assert_allclose(out["lag"], 0.0, atol=1e-12)
    g2, g4 = stats.gamma.pdf(t, a=2, scale=tau), stats.gamma.pdf(t, a=4, scale=tau)
    want = np.mean((g2 * g4) ** 2)  # u1 = u2 = Gamma(4) * Gamma(2)
    assert out["corr_mean"] == pytest.approx(want, rel=0.03)


def test_correlation_detector_lag_sign_and_tuning():
    dt = 1e-3
    t = np.arange(0, 2.0, dt)

    def pulse(at):
        x = np.zeros_like(t)
        x[int(at / dt)] = 1 / dt
        return x

    vis_first = neuro.correlation_detector(pulse(0.2), pulse(0.3), dt, tau_v=0.05, tau_a=0.05)
    aud_first = neuro.correlation_detector(pulse(0.3), pulse(0.2), dt, tau_v=0.05, tau_a=0.05)
    assert vis_first["lag_mean"] > 0 > aud_first["lag_mean"]
    assert vis_first["lag_mean"] == pytest.approx(-aud_first["lag_mean"], rel=1e-6)
    corr = [neuro.correlation_detector(pulse(0.2), pulse(0.2 + d), dt)["corr_mean"] for d in (0.0, 0.1, 0.4)]
    assert corr[0] > corr[1] > corr[2]
    with pytest.raises(ValueError, match="same shape"):
        neuro.correlation_detector(np.zeros(10), np.zeros(11), dt)


def test_hebbian_by_hand_and_recovers_pairings():
    w = neuro.hebbian_association([[1, 0], [0, 1]], [[0, 1], [1, 0]], learning_rate=1.0)
    np.testing.assert_allclose(w, [[-0.5, 0.5], [0.5, -0.5]])
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 5, 2000)
    partner = np.array([3, 0, 4, 1, 2])
    eye = np.eye(5)
    w = neuro.hebbian_association(eye[classes], eye[partner[classes]], learning_rate=1e-3)
    np.testing.assert_array_equal(w.argmax(1), partner)
    chance = neuro.hebbian_association(eye[classes], eye[rng.integers(0, 5, 2000)], learning_rate=1e-3)
    assert np.abs(chance).max() < 0.2 * w.max()
    # with decay: two steps by hand, dW = eta dv da' - lambda W
    w2 = neuro.hebbian_association([[1.0], [0.0]], [[1.0], [0.0]], learning_rate=1.0, decay=0.5)
    assert w2[0, 0] == pytest.approx((0.25 - 0.5 * 0.25) + 0.25)
    with pytest.raises(ValueError, match="time steps"):
        neuro.hebbian_association(np.zeros((3, 2)), np.zeros((4, 2)))


def test_neuro_does_not_import_torch():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(neuro.__file__).read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(name.split(".")[0] == "torch" for name in names)


# --- widgets and exercises ---------------------------------------------------------------------------


def test_widget_figures_and_updates():
    from matplotlib.figure import Figure

    from chapter13.widgets import neuro as w

    view = w.McGurkView()
    fig = view.update(congruence=0.0)
    assert isinstance(fig, Figure)
    assert view.responses == pytest.approx(neuro.mcgurk_responses("ba", "ga", congruence=0.0, n_grid=61))
    assert w.book_toy_output("ba", "ga", 0.5) == "'da'"
    assert w.book_toy_output("ba", "ga", 1.0).startswith("0.80")  # 0.4 * 2 + 0.6 * 0
    for make in (w.ventriloquist_figure, w.tug_of_war_figure, w.flash_beep_figure, w.mcgurk_figure):
        assert isinstance(make(), Figure)
    box = w.mcgurk_widget()
    before = box.image.value
    box.controls["congruence"].value = 0.6
    assert box.image.value != before
    flash = w.flash_beep_widget()
    flash.controls["n_beeps"].value = 0
    np.testing.assert_allclose(
        flash.view.probabilities, neuro.flash_beep_report_probabilities(1, 0, n_grid=101)
    )


def test_mcgurk_view_recomputes_the_curve_when_its_inputs_change():
    """The congruence curve is kept while only the congruence moves, and follows every other input."""
    from itertools import pairwise

    from chapter13.widgets import neuro as w

    def shown(view):
        return np.stack([view.lines[name].get_ydata() for name in neuro.SYLLABLES], axis=1)

    view = w.McGurkView()
    settings = [
        dict(congruence=0.2, sigma_a=0.3),
        dict(congruence=0.7, sigma_a=0.3),
        dict(congruence=0.7, sigma_a=0.9),
        dict(congruence=0.7, sigma_a=0.9, sigma_v=0.6),
        dict(congruence=0.7, sigma_a=0.9, sigma_v=0.6, p_common=0.2),
        dict(auditory="ga", visual="ba", congruence=0.1, sigma_a=0.9, sigma_v=0.6, p_common=0.2),
    ]
    curves = []
    for setting in settings:
        view.update(**setting)
        rest = {k: v for k, v in setting.items() if k != "congruence"}
        rest = {"auditory": "ba", "visual": "ga", **rest}
        a, v = rest.pop("auditory"), rest.pop("visual")
        expected = neuro.mcgurk_congruence_curve(a, v, view.c, n_grid=41, **rest)
        np.testing.assert_allclose(shown(view), expected, atol=1e-12)
        assert view.responses == pytest.approx(
            neuro.mcgurk_responses(a, v, congruence=setting["congruence"], n_grid=61, **rest)
        )
        curves.append(shown(view))
    np.testing.assert_array_equal(curves[0], curves[1])  # only the congruence moved
    assert all(not np.allclose(x, y) for x, y in pairwise(curves[1:]))  # every other input moves it


def _png_pixels(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


@pytest.mark.parametrize(
    ("view", "first", "second"),
    [
        ("McGurkView", dict(congruence=0.1), dict(auditory="da", congruence=0.8, sigma_a=0.3)),
        ("VentriloquistView", dict(disparity=5.0), dict(disparity=30.0, sigma_v=8.0, strategy="selection")),
        ("FlashBeepView", dict(n_beeps=0), dict(n_flashes=2, n_beeps=3, p_common=0.2)),
        ("TugOfWarView", dict(), dict(sigma_v=5.0, conflict=20.0)),
    ],
)
def test_widget_blitted_update_matches_a_full_draw(view, first, second):
    """A widget's PNG after an update (blitted onto the cached background) is, pixel for pixel, a full
    draw of the same settings: nothing stale from the previous settings, nothing missing."""
    from chapter13.widgets import neuro as w

    live = getattr(w, view)()
    live.update(**first)
    shown_first = _png_pixels(live.png())
    live.update(**second)
    blitted = _png_pixels(live.png())
    fresh = getattr(w, view)()
    fresh.blit = False
    fresh.update(**second)
    full = _png_pixels(fresh.png())
    assert live.blits == 1, f"{view}: the update was not blitted"
    np.testing.assert_array_equal(blitted, full, err_msg=f"{view}: the blit differs from a full draw")
    assert (np.abs(blitted - shown_first).max(axis=-1) > 40).mean() > 1e-3, "the update changed nothing"


def test_exercise_checkers(capsys):
    from chapter13.exercises import sec13_5 as ex

    for name, right, wrong in ex.REFERENCE_CASES:
        check = getattr(ex, name)
        assert check(right) is True, name
        assert check(wrong) is False, name
        assert check(None) is False, name
    out = capsys.readouterr().out
    assert "not attempted yet" in out.lower()
