"""chapter13.takeaways (notebook 13.7) and its self-check, chapter13.exercises.sec13_7.

The categorical causal-inference observer is checked against a brute-force enumeration of its generative
model; the d' prediction against a simulated ideal observer; the fits against data with a known answer.
"""

import itertools
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import nn

from chapter13 import takeaways as tk
from chapter13.checkpoints import load_model
from chapter13.config import torch_threads
from chapter13.data import load_mnist
from chapter13.exercises import sec13_7

matplotlib.use("Agg")


def _posteriors(rng, n, k, concentration=0.5):
    return rng.dirichlet(np.full(k, concentration), size=n)


# --- 1. accuracy and d' --------------------------------------------------------------------------------


def test_accuracy_from_dprime_known_values():
    assert tk.accuracy_from_dprime(0.0, 10) == pytest.approx(0.1, abs=1e-9)
    for d in (0.5, 1.0, 2.5):
        assert tk.accuracy_from_dprime(d, 2) == pytest.approx(stats.norm.cdf(d / math.sqrt(2)), abs=1e-8)
        quad = integrate.quad(lambda z, d=d: stats.norm.pdf(z) * stats.norm.cdf(z + d) ** 9, -np.inf, np.inf)[
            0
        ]
        assert tk.accuracy_from_dprime(d, 10) == pytest.approx(quad, abs=1e-8)
    assert tk.accuracy_from_dprime(math.inf) == 1.0
    values = tk.accuracy_from_dprime(np.linspace(0, 6, 25))
    assert values.shape == (25,) and np.all(np.diff(values) > 0)


def test_accuracy_from_dprime_matches_a_simulated_forced_choice():
    rng = np.random.default_rng(0)
    n, d = 200_000, 1.5
    channels = rng.standard_normal((n, 10))
    channels[:, 0] += d
    simulated = np.mean(channels.argmax(1) == 0)
    predicted = tk.accuracy_from_dprime(d, 10)
    assert abs(simulated - predicted) < 4 * math.sqrt(predicted * (1 - predicted) / n)


def test_dprime_from_accuracy_inverts_and_refuses_what_has_no_dprime():
    for d in (0.0, 0.3, 1.7, 4.0):
        assert tk.dprime_from_accuracy(tk.accuracy_from_dprime(d, 10), 10) == pytest.approx(d, abs=1e-6)
    assert np.allclose(
        tk.dprime_from_accuracy([0.5, 0.9]), [tk.dprime_from_accuracy(0.5), tk.dprime_from_accuracy(0.9)]
    )
    for bad in (1.0, 0.05, math.nan):
        with pytest.raises(ValueError, match="accuracy must lie"):
            tk.dprime_from_accuracy(bad, 10)
    with pytest.raises(ValueError, match="n_alternatives"):
        tk.accuracy_from_dprime(1.0, 1)
    with pytest.raises(ValueError, match="d'"):
        tk.accuracy_from_dprime(-1.0)


def test_mle_accuracy_combines_sensitivities_as_cues():
    out = tk.mle_accuracy(0.6, 0.5, n_trials=1000)
    assert out["d_combined"] == pytest.approx(math.hypot(out["d_visual"], out["d_auditory"]), rel=1e-9)
    assert out["sigma_combined"] == pytest.approx(1 / out["d_combined"])
    assert out["accuracy"] > 0.6
    # the prediction is what an ideal observer with both sets of channels reaches (sums the log-likelihoods)
    rng = np.random.default_rng(1)
    n = 100_000
    v, a = rng.standard_normal((n, 10)), rng.standard_normal((n, 10))
    v[:, 0] += out["d_visual"]
    a[:, 0] += out["d_auditory"]
    ideal = np.mean((out["d_visual"] * v + out["d_auditory"] * a).argmax(1) == 0)
    assert abs(ideal - out["accuracy"]) < 4 * math.sqrt(ideal * (1 - ideal) / n)
    # perfect and below-chance scores are clipped, so a prediction always exists
    assert tk.mle_accuracy(1.0, 0.05, n_trials=500)["d_auditory"] == 0.0
    assert tk.mle_accuracy(1.0, 0.05, n_trials=500)["accuracy"] == pytest.approx(1 - 0.5 / 500, abs=1e-6)
    assert tk.mle_accuracy(0.1, 0.1, n_trials=10)["accuracy"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="n_trials"):
        tk.mle_accuracy(0.5, 0.5, n_trials=0)
    with pytest.raises(ValueError, match="proportion"):
        tk.mle_accuracy(1.5, 0.5, n_trials=10)


def test_combination_table_adds_the_prediction_and_the_enhancements():
    rows = [
        dict(
            image_noise=1.0,
            sound_noise=1.0,
            visual=0.6,
            auditory=0.5,
            fused=0.75,
            product=0.74,
            enhancement=25.0,
        )
    ]
    (row,) = tk.combination_table(rows, n_trials=1000)
    assert row["mle"] == pytest.approx(tk.mle_accuracy(0.6, 0.5, n_trials=1000)["accuracy"])
    assert row["product_enhancement"] == pytest.approx(100 * (0.74 - 0.6) / 0.6)
    assert row["mle_enhancement"] == pytest.approx(100 * (row["mle"] - 0.6) / 0.6)
    with pytest.raises(ValueError, match="missing"):
        tk.combination_table([dict(visual=0.5)], n_trials=10)


# --- 2. the categorical causal-inference observer ------------------------------------------------------


def _enumerate(lik_v, lik_a, prior, p_common, w):
    """Brute force over (C, k_V, k_A): the joint probability of every hidden state and the report."""
    k = len(prior)
    joint_c1, report = 0.0, np.zeros(k)
    total = 0.0
    for c, kv, ka in itertools.product((1, 2), range(k), range(k)):
        if c == 1:
            if kv != ka:
                continue
            p = p_common * prior[kv] * lik_v[kv] * lik_a[kv]
            joint_c1 += p
            report[kv] += p
        else:
            p = (1 - p_common) * prior[kv] * prior[ka] * lik_v[kv] * lik_a[ka]
            report[kv] += w * p
            report[ka] += (1 - w) * p
        total += p
    return joint_c1 / total, report / total


@pytest.mark.parametrize("case", range(6))
def test_observer_matches_brute_force_enumeration(case):
    rng = np.random.default_rng(case)
    k = 4 if case < 3 else 10
    prior = rng.dirichlet(np.full(k, 3.0)) if case % 2 else np.full(k, 1 / k)
    lik_v, lik_a = rng.random(k) ** 3, rng.random(k) ** 3  # p(v | k), p(a | k), any positive numbers
    p_common, w = rng.uniform(0.05, 0.95), rng.uniform(0, 1)
    q_v = prior * lik_v / np.sum(prior * lik_v)  # the streams' posteriors under the prior
    q_a = prior * lik_a / np.sum(prior * lik_a)
    want_c1, want_report = _enumerate(lik_v, lik_a, prior, p_common, w)
    obs = tk.causal_inference_observer(q_v, q_a, p_common, prior=prior, visual_weight=w)
    assert obs.p_common_posterior[0] == pytest.approx(want_c1, rel=1e-10)
    assert np.allclose(obs.report[0], want_report, rtol=1e-10, atol=1e-14)
    # Λ is the likelihood ratio p(v, a | C=1) / p(v, a | C=2)
    one = np.sum(prior * lik_v * lik_a)
    two = np.sum(prior * lik_v) * np.sum(prior * lik_a)
    assert tk.common_cause_ratio(q_v, q_a, prior)[0] == pytest.approx(one / two, rel=1e-10)


def test_observer_limits_and_shapes():
    rng = np.random.default_rng(3)
    q_v, q_a = _posteriors(rng, 50, 10), _posteriors(rng, 50, 10)
    fused = tk.causal_inference_observer(q_v, q_a, 1.0)
    product = q_v * q_a / (q_v * q_a).sum(1, keepdims=True)
    assert np.allclose(fused.report, product) and np.allclose(fused.p_common_posterior, 1)
    apart = tk.causal_inference_observer(q_v, q_a, 0.0, visual_weight=0.25)
    assert np.allclose(apart.report, 0.25 * q_v + 0.75 * q_a) and np.all(apart.p_common_posterior == 0)
    mid = tk.causal_inference_observer(q_v, q_a, 0.4)
    assert mid.report.shape == (50, 10) and np.allclose(mid.report.sum(1), 1)
    # a stream that knows nothing gives Λ = 1: the posterior of one cause is the prior
    flat = np.full((1, 10), 0.1)
    assert tk.causal_inference_observer(flat, q_a[:1], 0.3).p_common_posterior[0] == pytest.approx(0.3)
    # one trial as (K,) vectors
    assert tk.causal_inference_observer(q_v[0], q_a[0], 0.4).report.shape == (1, 10)


def test_observer_refuses_bad_input():
    q = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="probabilities"):
        tk.causal_inference_observer(q * 2, q, 0.5)
    with pytest.raises(ValueError, match="shapes"):
        tk.causal_inference_observer(q, q[:, :2] * 1.5, 0.5)
    with pytest.raises(ValueError, match="p_common"):
        tk.causal_inference_observer(q, q, 1.5)
    with pytest.raises(ValueError, match="prior"):
        tk.causal_inference_observer(q, q, 0.5, prior=[0.5, 0.5])
    disjoint_v, disjoint_a = np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="share no class"):
        tk.causal_inference_observer(disjoint_v, disjoint_a, 1.0)
    obs = tk.causal_inference_observer(disjoint_v, disjoint_a, 0.9)  # possible only with two causes
    assert obs.p_common_posterior[0] == 0 and np.allclose(obs.report, [[0.5, 0.5, 0.0]])


def test_report_log_likelihood_sums_the_reports_probabilities():
    rng = np.random.default_rng(4)
    q_v, q_a = _posteriors(rng, 30, 10), _posteriors(rng, 30, 10)
    reports = rng.integers(0, 10, 30)
    obs = tk.causal_inference_observer(q_v, q_a, 0.6)
    want = sum(math.log(obs.report[i, r]) for i, r in enumerate(reports))
    assert tk.report_log_likelihood(q_v, q_a, reports, 0.6) == pytest.approx(want)
    with pytest.raises(ValueError, match="reports"):
        tk.report_log_likelihood(q_v, q_a, reports[:5], 0.6)
    with pytest.raises(ValueError, match="class indices"):
        tk.report_log_likelihood(q_v, q_a, reports + 10, 0.6)


def _simulate_reports(rng, q_v, q_a, p_common):
    report = tk.causal_inference_observer(q_v, q_a, p_common).report
    return np.array([rng.choice(len(row), p=row) for row in report])


def test_fit_p_common_recovers_the_truth_and_maximises_the_likelihood():
    rng = np.random.default_rng(5)
    q_v, q_a = _posteriors(rng, 3000, 10, 0.3), _posteriors(rng, 3000, 10, 0.3)
    reports = _simulate_reports(rng, q_v, q_a, 0.3)
    fit = tk.fit_p_common(q_v, q_a, reports)
    assert abs(fit.p_common - 0.3) < 0.1 and fit.interval[0] <= 0.3 <= fit.interval[1]
    assert fit.interval[0] < fit.p_common < fit.interval[1]
    grid = np.linspace(0.001, 0.999, 300)
    assert fit.log_likelihood >= max(tk.report_log_likelihood(q_v, q_a, reports, p) for p in grid) - 1e-6
    for end in fit.interval:  # the interval's ends lie 1.92 below the maximum
        assert tk.report_log_likelihood(q_v, q_a, reports, end) == pytest.approx(
            fit.log_likelihood - 1.9207, abs=1e-3
        )
    grid, ll = fit.profile
    assert grid.shape == ll.shape and np.nanmax(ll) <= fit.log_likelihood + 1e-9
    assert "p_common = " in fit.summary()


def test_fit_p_common_finds_the_ends():
    rng = np.random.default_rng(6)
    q_v, q_a = _posteriors(rng, 2000, 10, 0.3), _posteriors(rng, 2000, 10, 0.3)
    fused = (q_v * q_a).argmax(1)  # an observer that always fuses (and answers its best guess)
    fit = tk.fit_p_common(q_v, q_a, fused)
    assert fit.p_common > 0.99 and fit.log_likelihood >= fit.log_likelihood_fusion
    assert fit.interval[1] == 1.0 and fit.log_odds_interval[1] == math.inf
    apart = _simulate_reports(rng, q_v, q_a, 0.0)
    fit = tk.fit_p_common(q_v, q_a, apart)
    assert fit.p_common < 0.05 and fit.interval[0] == 0.0
    with pytest.raises(ValueError, match="at least one"):
        tk.fit_p_common(q_v[:0], q_a[:0], apart[:0])


def test_fit_p_common_resolves_a_maximum_within_1e_minus_6_of_one():
    """Confident, conflicting senses make Λ tiny, and then only the log-odds of one cause is identifiable:
    a bounded search over p_common in [0, 1] (tolerance 1e-6) cannot find a maximum at 1 - 1e-7."""
    rng = np.random.default_rng(7)

    def confident(n):  # each sense sure of a random digit, with a confidence from mild to extreme
        logits = rng.normal(0, 1, (n, 10))
        logits[np.arange(n), rng.integers(0, 10, n)] += rng.uniform(2, 30, n)
        return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)

    q_v, q_a = confident(4000), confident(4000)
    ratios = tk.common_cause_ratio(q_v, q_a)
    assert np.mean(ratios < 1e-6) > 0.1  # many trials in the range where a log-odds of 16 matters
    truth = 16.0  # p_common = 1 - 1.1e-7
    report = tk.causal_inference_observer(q_v, q_a, log_odds=truth).report
    reports = np.array([rng.choice(10, p=row) for row in report])
    fit = tk.fit_p_common(q_v, q_a, reports)
    assert fit.log_odds_interval[0] <= truth <= fit.log_odds_interval[1] and abs(fit.log_odds - truth) < 1.5
    assert 1 - fit.p_common == pytest.approx(math.exp(-fit.log_odds), rel=1e-6)
    assert fit.log_likelihood > fit.log_likelihood_fusion + 2  # p_common = 1 is worse, and said so
    assert "log-odds" in fit.summary() and "1 - " in fit.summary()


def test_log_odds_and_p_common_are_one_parameter():
    rng = np.random.default_rng(8)
    q_v, q_a = _posteriors(rng, 20, 10), _posteriors(rng, 20, 10)
    a = tk.causal_inference_observer(q_v, q_a, 0.2)
    b = tk.causal_inference_observer(q_v, q_a, log_odds=math.log(0.2 / 0.8))
    assert np.allclose(a.report, b.report, rtol=1e-12) and np.allclose(
        a.p_common_posterior, b.p_common_posterior
    )
    assert np.allclose(tk.causal_inference_observer(q_v, q_a, log_odds=math.inf).report,
                       tk.causal_inference_observer(q_v, q_a, 1.0).report)  # fmt: skip
    with pytest.raises(ValueError, match="not both"):
        tk.causal_inference_observer(q_v, q_a, 0.2, log_odds=0.0)
    with pytest.raises(ValueError, match="not both"):
        tk.causal_inference_observer(q_v, q_a)


def test_category_fractions():
    v, a = np.array([1, 2, 3, 4]), np.array([2, 3, 4, 5])
    assert np.allclose(tk.category_fractions(np.array([1, 3, 0, 4]), v, a), [0.5, 0.25, 0.25])
    probs = np.zeros((4, 10))
    probs[np.arange(4), v] = 0.5
    probs[np.arange(4), a] = 0.3
    probs[:, 9] = 0.2
    assert np.allclose(tk.category_fractions(probs, v, a), [0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match="incongruent"):
        tk.category_fractions(v, v, v)


class ProductFusion(nn.Module):
    """A stand-in for TwoStreamFusion whose 'learned' fusion is exactly the product of experts."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.sound_weights = torch.randn(10, 256, generator=torch.Generator().manual_seed(0))

    def forward(self, image, sound):
        visual = self.scale * image.flatten(1)[:, :10] * 3
        auditory = sound[:, 0] @ self.sound_weights.T / 8
        fused = visual.log_softmax(1) + auditory.log_softmax(1)
        return dict(visual=visual, auditory=auditory, fused=fused)


def test_av_trials_and_binding_summary_with_a_product_of_experts_network():
    images = torch.rand(60, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    labels = torch.arange(60) % 10
    conditions = [(0.0, 0.0), (1.0, 1.0)]
    model = ProductFusion()
    inc = tk.av_trials(model, images, labels, conditions, seed=3, batch_size=25)
    con = tk.av_trials(model, images, labels, conditions, seed=3, congruent=True)
    again = tk.av_trials(model, images, labels, conditions, seed=3)  # another batch size: the same noise
    assert len(inc) == 2 and all(np.all(t.visual_digit != t.auditory_digit) for t in inc)
    assert all(np.all(t.visual_digit == t.auditory_digit) for t in con)
    assert np.array_equal(
        inc[0].auditory_digit, inc[1].auditory_digit
    )  # the same pairings in every condition
    assert np.array_equal(inc[1].p_fused, again[1].p_fused)  # seeded
    for t in inc:
        for p in (t.p_visual, t.p_auditory, t.p_fused):
            assert p.shape == (60, 10) and p.dtype == np.float64 and np.allclose(p.sum(1), 1)
    summary = tk.binding_summary(inc, con, 1.0)
    assert [r["agreement"] for r in summary] == [1.0, 1.0]  # it IS the observer with p_common = 1
    assert all(np.allclose(r["network"], r["observer"]) for r in summary)
    assert all(r["divergence_incongruent"] < 1e-9 for r in summary)
    fit = tk.fit_p_common(
        np.concatenate([t.p_visual for t in inc]),
        np.concatenate([t.p_auditory for t in inc]),
        np.concatenate([t.report for t in inc]),
    )
    assert fit.p_common > 0.9
    with pytest.raises(ValueError, match="pair them"):
        tk.binding_summary(inc, con[:1], 1.0)
    fig = tk.plot_binding(summary, fit, p_common=fit.p_common)
    _assert_readable(fig)


def test_binding_summary_counts_third_digits_that_share_a_keypad_tone():
    def trials(report):
        n = len(report)
        p = np.full((n, 10), 0.01)
        p[np.arange(n), report] = 0.91
        return tk.AVTrials(0.0, 0.0, np.full(n, 1), np.full(n, 2), p, p, p)

    # the sounded digit is 2 (697 + 1336 Hz): 3 shares its row, 5 its column, 4 neither; 1 is the visual digit
    (row,) = tk.binding_summary([trials(np.array([3, 5, 4, 1]))], [trials(np.array([3, 5, 4, 1]))], 1.0)
    assert row["other_answers"] == 3 and row["other_sharing_tone"] == 2
    # of the 8 digits other than 1 and 2, those sharing a tone with 2: 3 (row) and 5, 8, 0 (column)
    assert row["tone_chance"] == pytest.approx(4 / 8)


def test_av_trials_on_the_shipped_network():
    model = load_model("av-fusion-digits")
    x, y = load_mnist("test", limit=40)
    (trial,) = tk.av_trials(model, x, y, [(0.0, 0.0)], congruent=True)
    assert np.mean(trial.report == trial.visual_digit) > 0.9  # clean, congruent: it knows its digits
    with pytest.raises(ValueError, match="one label each"):
        tk.av_trials(model, x, y[:3])


# --- 3. a joint space two ways -----------------------------------------------------------------------


def _linked_pairs(n, seed, noise=0.5):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    centres_v = torch.randn(10, 20, generator=torch.Generator().manual_seed(100))
    centres_a = torch.randn(10, 12, generator=torch.Generator().manual_seed(101))
    v = centres_v[labels] + noise * torch.randn(n, 20, generator=g)
    a = centres_a[labels] + noise * torch.randn(n, 12, generator=g)
    return v, a, labels


def test_hebbian_similarity_is_the_covariance_rule():
    v, a, _ = _linked_pairs(200, 0)
    vq, ag, _ = _linked_pairs(50, 1)
    sim = tk.hebbian_similarity(v, a, vq, ag)
    w = (v - v.mean(0)).double().T @ (a - a.mean(0)).double() / len(v)
    want = (
        torch.nn.functional.normalize((vq - v.mean(0)).double() @ w, dim=1)
        @ torch.nn.functional.normalize((ag - a.mean(0)).double(), dim=1).T
    )
    assert sim.shape == (50, 50) and torch.allclose(sim, want.float(), atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        tk.hebbian_similarity(v[:1], a[:1], vq, ag)


def test_both_learners_find_the_pairing_and_contrastive_is_seeded():
    train = _linked_pairs(400, 2)
    test_v, test_a, test_y = _linked_pairs(200, 3)
    state = torch.random.get_rng_state()
    curve = tk.retrieval_curve(train[:2], (test_v, test_a), test_y, [10, 400], steps=60, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is untouched
    assert curve["pairs"] == [10, 400] and curve["chance"] == [pytest.approx(0.1)]
    assert curve["hebbian"][-1] > 0.8 and curve["contrastive"][-1] > 0.8
    again = tk.retrieval_curve(train[:2], (test_v, test_a), test_y, [10, 400], steps=60, seed=1)
    assert again["contrastive"] == curve["contrastive"]
    with pytest.raises(ValueError, match="pair count"):
        tk.retrieval_curve(train[:2], (test_v, test_a), test_y, [1000])
    _assert_readable(tk.plot_joint_space({"linked clusters": curve}))


def test_av_trials_and_retrieval_curve_show_a_bar_only_when_asked(capsys):
    images = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    labels = torch.arange(20) % 10
    train = _linked_pairs(40, 2)
    test_v, test_a, test_y = _linked_pairs(20, 3)
    quiet = tk.av_trials(ProductFusion(), images, labels, [(0.0, 0.0), (1.0, 1.0)], seed=3)
    tk.retrieval_curve(train[:2], (test_v, test_a), test_y, [10, 40], steps=2, seed=1)
    assert capsys.readouterr().err == ""  # the default stays silent
    shown = tk.av_trials(ProductFusion(), images, labels, [(0.0, 0.0), (1.0, 1.0)], seed=3, progress=True)
    err = capsys.readouterr().err
    assert "incongruent trials" in err and "/2 " in err  # a bar over the 2 conditions
    assert np.array_equal(shown[1].p_fused, quiet[1].p_fused)  # the bar changes nothing else
    tk.retrieval_curve(train[:2], (test_v, test_a), test_y, [10, 40], steps=2, seed=1, progress=True)
    err = capsys.readouterr().err
    assert "pair counts" in err and "/2 " in err


def test_paired_features_shapes():
    model = load_model("av-fusion-digits")
    x, y = load_mnist("test", limit=12)
    v, a = tk.paired_features(
        model, x, y, sound_noise=1.0, kind="inputs", generator=torch.Generator().manual_seed(0)
    )
    assert v.shape == (12, 784) and a.shape == (12, 129)
    v, a = tk.paired_features(model, x, y, sound_noise=1.0, kind="streams")
    assert v.shape == (12, 64) and a.shape == (12, 64)
    with pytest.raises(ValueError, match="kind"):
        tk.paired_features(model, x, y, sound_noise=1.0, kind="pixels")


# --- 4. diffusion recap, and the figures ----------------------------------------------------------------


def test_diffusion_recap_from_the_shipped_models():
    x, _ = load_mnist("test", limit=1)
    with torch_threads(1):
        recap = tk.diffusion_recap(
            load_model("codelab-mnist"), load_model("latent-text2image-digits"), x, "a handwritten digit 7", 7,
            reverse_samples=2, reverse_steps=3, guided_samples=2, guided_steps=2, scales=(1.0, 3.0),
        )  # fmt: skip
    assert recap.forward.shape == (4, 1, 28, 28) and torch.equal(recap.forward[0], x[0])
    assert recap.forward_t[0] == -1 and recap.forward_t[-1] == recap.reverse_t[0] == 999
    assert recap.reverse_t[-1] == -1 and len(recap.reverse) == 4 and recap.reverse[0].shape == (2, 1, 28, 28)
    assert abs(recap.forward_correlation) < 0.3  # x_T has forgotten the digit
    assert set(recap.guided) == {1.0, 3.0} and all(0 <= a <= 1 for a in recap.accuracy.values())
    _assert_readable(tk.plot_diffusion_recap(recap))


def test_plot_combination():
    rows = [
        dict(image_noise=n, sound_noise=n / 2, visual=v, auditory=a, fused=f, product=f, enhancement=0.0)
        for n, v, a, f in ((0.0, 0.9, 0.95, 0.99), (2.0, 0.5, 0.45, 0.7), (4.0, 0.3, 0.25, 0.4))
    ]
    table = tk.combination_table(rows, n_trials=500)
    _assert_readable(tk.plot_combination(table))


def _assert_readable(fig):
    """Every axis has a title or labels, and no text is smaller than 8 pt."""
    try:
        fig.canvas.draw()
        for text in fig.findobj(matplotlib.text.Text):
            if text.get_text().strip():
                assert text.get_fontsize() >= 8, f"text {text.get_text()!r} is {text.get_fontsize()} pt"
        for ax in fig.axes:
            if ax.get_xlabel() or ax.get_ylabel():
                assert ax.get_title(), "an axis with labels needs a title"
    finally:
        plt.close(fig)


# --- the exercise ----------------------------------------------------------------------------------------


def test_check_common_cause(capsys):
    assert sec13_7.common_cause_answer() == pytest.approx(1.3 / 1.8)
    q_v = np.zeros(10)
    q_a = np.zeros(10)
    for k, p in sec13_7.EXERCISE_P_VISUAL.items():
        q_v[k] = p
    for k, p in sec13_7.EXERCISE_P_AUDITORY.items():
        q_a[k] = p
    posterior = tk.causal_inference_observer(q_v, q_a, sec13_7.EXERCISE_P_COMMON).p_common_posterior[0]
    assert posterior == pytest.approx(sec13_7.common_cause_answer())  # the checker agrees with the module
    assert sec13_7.check_common_cause(0.722) and "Correct" in capsys.readouterr().out
    assert not sec13_7.check_common_cause(None) and "Not attempted" in capsys.readouterr().out
    assert not sec13_7.check_common_cause(0.206) and "prior" in capsys.readouterr().out
    assert not sec13_7.check_common_cause(0.5) and "Not quite" in capsys.readouterr().out
    assert not sec13_7.check_common_cause("a lot") and "Expected a number" in capsys.readouterr().out
