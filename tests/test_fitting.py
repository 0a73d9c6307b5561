"""Tests of the 13.5 response models (chapter13.neuro) and of fitting them (chapter13.fitting).

The response probabilities are checked against closed forms worked out here (the nearest-button rule,
the unimodal observer, the no-binding and forced-fusion limits, the lapse mixture) and against a
trial-by-trial simulation; the fitter on a seeded data set whose generating values are known. Each
test names the defect it exists to catch.
"""

import math

import numpy as np
import pytest
from scipy import stats

from chapter13 import fitting, neuro
from chapter13.exercises import sec13_5 as ex

K = neuro.KORDING_2007
B = np.array(neuro.KORDING_BUTTONS)
EDGES = np.array([-7.5, -2.5, 2.5, 7.5])
GRID_V, GRID_A = np.meshgrid(B, B, indexing="ij")


def nearest_by_hand(estimates):
    return np.searchsorted(EDGES, estimates)


def unimodal_by_hand(s, sigma, sigma_p, sigma_motor=0.0):
    """P(button) for one cue: the estimate w x is Gaussian with sd w sigma (Körding et al. 2007, Methods)."""
    w = sigma_p**2 / (sigma**2 + sigma_p**2)
    sd = math.hypot(w * sigma, sigma_motor)
    cdf = stats.norm.cdf(np.r_[-np.inf, EDGES, np.inf], w * s, sd)
    return np.diff(cdf)


# --- response models -----------------------------------------------------------------------------------


def test_button_probabilities_closed_form():
    """Catches edges placed at the buttons instead of between them, and motor noise with the wrong scale."""
    np.testing.assert_array_equal(neuro.button_probabilities(3.0, B), [0, 0, 0, 1, 0])  # 3 is nearest 5
    np.testing.assert_array_equal(neuro.button_probabilities(-7.4, B), [0, 1, 0, 0, 0])
    got = neuro.button_probabilities(3.0, B, sigma_motor=2.0)
    np.testing.assert_allclose(
        got, np.diff(stats.norm.cdf(np.r_[-np.inf, EDGES, np.inf], 3.0, 2.0)), atol=1e-12
    )
    assert got.sum() == pytest.approx(1.0)


def test_lapse_mixes_in_a_uniform_guess():
    """Catches a lapse that is added without taking it away from the model ((1 - lambda) missing) or
    spread over the wrong number of responses."""
    plain = neuro.button_probabilities([-3.0, 8.0], B, sigma_motor=1.0)
    lapsed = neuro.button_probabilities([-3.0, 8.0], B, sigma_motor=1.0, lapse=0.2)
    np.testing.assert_allclose(lapsed, 0.8 * plain + 0.2 / 5)
    for strategy in neuro.STRATEGIES:
        kw = dict(strategy=strategy, sigma_motor=1.0, n_grid=15)
        j0 = neuro.response_probabilities(GRID_V, GRID_A, **K, **kw)["joint"]
        j1 = neuro.response_probabilities(GRID_V, GRID_A, **K, lapse=0.1, **kw)
        np.testing.assert_allclose(j1["joint"], 0.9 * j0 + 0.1 / (5 * 5 * 2), atol=1e-14)
        np.testing.assert_allclose(j1["visual"], 0.9 * j0.sum(axis=(-2, -1)) + 0.1 / 5, atol=1e-14)
        np.testing.assert_allclose(j1["common"], 0.9 * j0[..., 1].sum(axis=(-2, -1)) + 0.05, atol=1e-14)


def test_unimodal_closed_form_against_simulation():
    """Catches a wrong prior weight (e.g. w = sigma^2 / sigma_p^2, or no prior at all)."""
    for s, sigma in ((0.0, K["sigma_a"]), (10.0, K["sigma_a"]), (-5.0, K["sigma_v"])):
        got = neuro.unimodal_response_probabilities(s, sigma, K["sigma_p"], B, sigma_motor=1.5)
        np.testing.assert_allclose(got, unimodal_by_hand(s, sigma, K["sigma_p"], 1.5), atol=1e-12)
        rng = np.random.default_rng(3)
        x = s + sigma * rng.standard_normal(200_000)
        estimate = (x / sigma**2) / (1 / sigma**2 + 1 / K["sigma_p"] ** 2) + 1.5 * rng.standard_normal(x.size)
        np.testing.assert_allclose(
            got, np.bincount(nearest_by_hand(estimate), minlength=5) / x.size, atol=4e-3
        )


@pytest.mark.parametrize("strategy", neuro.STRATEGIES)
def test_joint_probabilities_are_distributions(strategy):
    """Catches branch weights that do not sum to one (e.g. selection's smoothed step used for one branch
    and the hard step for the other) and negative cells from the comonotone coupling."""
    for motor in (0.0, 1.5):
        for unity in (None, "criterion", "matching"):
            out = neuro.response_probabilities(GRID_V, GRID_A, **K, strategy=strategy, sigma_motor=motor,
                                               unity_decision=unity, n_grid=15)  # fmt: skip
            assert out["joint"].min() >= 0
            np.testing.assert_allclose(out["joint"].sum(axis=(-3, -2, -1)), 1.0, atol=1e-12)
            np.testing.assert_allclose(out["visual"].sum(axis=-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("motor", [0.0, 1.5])
def test_no_common_cause_gives_two_unimodal_observers(motor):
    """p_common = 0: each report is its own cue with the prior, independently (catches swapped visual and
    auditory axes, a segregated estimate without the prior, or a spurious coupling of the reports)."""
    for strategy in neuro.STRATEGIES:
        out = neuro.response_probabilities(GRID_V, GRID_A, **{**K, "p_common": 0.0}, strategy=strategy,
                                           sigma_motor=motor, unity_decision=None, n_grid=31)  # fmt: skip
        for i, sv in enumerate(B):
            for j, sa in enumerate(B):
                pv = unimodal_by_hand(sv, K["sigma_v"], K["sigma_p"], motor)
                pa = unimodal_by_hand(sa, K["sigma_a"], K["sigma_p"], motor)
                np.testing.assert_allclose(out["joint"][i, j, :, :, 0], np.outer(pv, pa), atol=4e-3)


@pytest.mark.parametrize("strategy", neuro.STRATEGIES)
def test_forced_fusion_without_motor_noise_presses_one_button_twice(strategy):
    """p_common = 1 and no motor noise: both reports are the one fused estimate, a Gaussian of known mean
    and spread, so the joint is diagonal (catches reports smoothed independently, and wrong fusion weights)."""
    out = neuro.response_probabilities(GRID_V, GRID_A, **{**K, "p_common": 1.0}, strategy=strategy,
                                       unity_decision=None, n_grid=31)  # fmt: skip
    joint = out["joint"][..., 0]
    assert np.abs(joint * (1 - np.eye(5))).max() < 1e-12
    pv, pa, pp = (1 / K[n] ** 2 for n in ("sigma_v", "sigma_a", "sigma_p"))
    total = pv + pa + pp
    mean = (GRID_V * pv + GRID_A * pa) / total
    sd = math.sqrt(pv + pa) / total
    want = np.diff(stats.norm.cdf(np.r_[-np.inf, EDGES, np.inf], mean[..., None], sd), axis=-1)
    np.testing.assert_allclose(out["visual"], want, atol=3e-3)
    np.testing.assert_allclose(out["auditory"], want, atol=3e-3)


@pytest.mark.parametrize("strategy", neuro.STRATEGIES)
def test_quadrature_agrees_with_trial_by_trial_simulation(strategy):
    """The quadrature against the sampler (catches a strategy computed as another one, e.g. matching's
    weights used for selection, and a unity report that ignores its criterion)."""
    params = dict(**K, strategy=strategy, sigma_motor=1.0, lapse=0.05, criterion=0.3)
    conditions = [(5.0, 0.0), (10.0, -5.0), (-5.0, -5.0)]
    sv, sa = np.array(conditions).T
    model = neuro.response_probabilities(sv, sa, **params, n_grid=31)["joint"]
    n = 100_000
    for c, (v, a) in enumerate(conditions):
        trials = neuro.simulate_localization_trials(np.full(n, v), np.full(n, a), **params, rng=c)
        seen = np.zeros((5, 5, 2))
        np.add.at(
            seen,
            (nearest_by_hand(trials["r_v"]), nearest_by_hand(trials["r_a"]), trials["unity"].astype(int)),
            1,
        )
        np.testing.assert_allclose(model[c], seen / n, atol=7e-3)


def test_unity_judgements_agree_with_expected_responses():
    """Matching reports one cause with probability E[p(C=1 | x)], the criterion rule 0.5 with
    P(p(C=1 | x) > 0.5), both computed by neuro.expected_responses (catches a swapped decision rule)."""
    sv, sa = np.array([0.0, 5.0, 10.0]), np.array([0.0, 0.0, -5.0])
    ref = neuro.expected_responses(sv, sa, **K, n_grid=241)
    matching = neuro.unity_judgement_probability(sv, sa, **K, decision="matching", n_grid=31)
    criterion = neuro.unity_judgement_probability(sv, sa, **K, decision="criterion", n_grid=31)
    np.testing.assert_allclose(matching, ref["p_common"], atol=2e-3)
    np.testing.assert_allclose(criterion, ref["report_common"], atol=6e-3)
    assert neuro.unity_judgement_probability(0.0, 20.0, **{**K, "p_common": 1.0}, lapse=0.1) == pytest.approx(
        0.95
    )


def test_response_models_reject_bad_input():
    with pytest.raises(ValueError, match="increasing"):
        neuro.button_probabilities(0.0, [5.0, 0.0])
    with pytest.raises(ValueError, match="at least two"):
        neuro.button_probabilities(0.0, [0.0])
    with pytest.raises(ValueError, match="positive standard deviation"):
        neuro.response_probabilities(0.0, 0.0, 0.0, 9.2, 12.3, 0.3)
    with pytest.raises(ValueError, match="probability in"):
        neuro.response_probabilities(0.0, 0.0, 2.0, 9.2, 12.3, 1.3)
    with pytest.raises(ValueError, match="sigma_motor must be one number >= 0"):
        neuro.unimodal_response_probabilities(0.0, 2.0, 12.3, B, sigma_motor=-1.0)
    with pytest.raises(ValueError, match="lapse must be a probability"):
        neuro.button_probabilities(0.0, B, lapse=2.0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        neuro.unity_judgement_probability(0.0, 0.0, 2.0, 9.2, 12.3, 0.3, criterion=1.0)
    with pytest.raises(ValueError, match="unknown unity decision"):
        neuro.response_probabilities(0.0, 0.0, 2.0, 9.2, 12.3, 0.3, unity_decision="vote")
    with pytest.raises(ValueError, match="unknown strategy"):
        neuro.simulate_localization_trials(0.0, 0.0, 2.0, 9.2, 12.3, 0.3, strategy="voting")


# --- tables ------------------------------------------------------------------------------------------


def test_make_table_rejects_bad_tables():
    with pytest.raises(ValueError, match="no trials"):
        fitting.make_table([], [])
    with pytest.raises(ValueError, match=r"r_a\[1\] = 7 is not one of the buttons.*nearest button"):
        fitting.make_table([0.0, 5.0], [0.0, 0.0], [0.0, 5.0], [0.0, 7.0])
    with pytest.raises(ValueError, match="neither a flash nor a sound"):
        fitting.make_table([np.nan], [np.nan], [0.0])
    with pytest.raises(ValueError, match="without a visual stimulus"):
        fitting.make_table([np.nan], [0.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="different lengths"):
        fitting.make_table([0.0, 5.0], [0.0], [0.0, 5.0])
    with pytest.raises(ValueError, match=r"is 1 .* 0 .* or NaN"):
        fitting.make_table([0.0], [0.0], [0.0], [0.0], [0.5])
    with pytest.raises(ValueError, match="only one stimulus"):
        fitting.make_table([0.0], [np.nan], [0.0], None, [1.0])
    with pytest.raises(ValueError, match="has no response"):
        fitting.make_table([0.0], [0.0])
    with pytest.raises(ValueError, match="increasing"):
        fitting.make_table([0.0], [0.0], [0.0], buttons=[0.0, 0.0])
    # a table built by hand, past make_table's checks, is still refused before fitting
    empty = fitting.TrialTable(*(np.zeros(0),) * 5, buttons=B)
    with pytest.raises(ValueError, match="no trials"):
        fitting.log_likelihood(empty, fitting.KORDING_OBSERVER)
    with pytest.raises(ValueError, match="no trials"):
        fitting.fit(empty)


def test_parse_trials_reads_what_make_table_checks():
    table = fitting.parse_trials(
        "# s_v, s_a, r_v, r_a\n-5, 0, -5, 0\n- 5 - 5\n0, -, 0, -, \n10, 0, 10, 5, 1\n"
    )
    np.testing.assert_array_equal(table.s_v, [-5, np.nan, 0, 10])
    np.testing.assert_array_equal(table.r_a, [0, 5, np.nan, 5])
    np.testing.assert_array_equal(table.unity, [np.nan, np.nan, np.nan, 1])
    with pytest.raises(ValueError, match=r"line 2: .* 3 fields"):
        fitting.parse_trials("0, 0, 0, 0\n1, 2, 3\n")
    with pytest.raises(ValueError, match="no trials"):
        fitting.parse_trials("# nothing\n")


def test_log_likelihood_by_hand():
    """Counts per condition and response pattern give the same log-likelihood as multiplying each trial's
    probability, a missing report summed out of the joint (catches a marginal over the wrong axis)."""
    table = fitting.make_table(
        s_v=[5.0, 5.0, 5.0, np.nan, 0.0],
        s_a=[0.0, 0.0, 0.0, 5.0, -5.0],
        r_v=[5.0, 0.0, np.nan, np.nan, 0.0],
        r_a=[0.0, 5.0, 5.0, 0.0, np.nan],
        unity=[1.0, np.nan, 0.0, np.nan, np.nan],
    )
    params = {**fitting.KORDING_OBSERVER, "criterion": 0.4}
    kw = dict(
        sigma_motor=params["sigma_motor"],
        lapse=params["lapse"],
        criterion=0.4,
        strategy="matching",
        n_grid=21,
    )
    j = neuro.response_probabilities(
        [5.0, 0.0], [0.0, -5.0], K["sigma_v"], K["sigma_a"], K["sigma_p"], K["p_common"], **kw
    )["joint"]
    uni = neuro.unimodal_response_probabilities(
        5.0, K["sigma_a"], K["sigma_p"], B, sigma_motor=1.5, lapse=0.02
    )
    by_hand = (
        np.log(j[0, 3, 2, 1])  # flash 5 reported at 5, sound 0 at 0, "one cause"
        + np.log(j[0, 2, 3].sum())  # no unity judgement
        + np.log(j[0, :, 3, 0].sum())  # visual report missing, "two causes"
        + np.log(uni[2])
        + np.log(j[1, 2].sum())  # auditory report missing
    )
    assert fitting.log_likelihood(table, params, "matching") == pytest.approx(by_hand, rel=1e-12)


# --- fitting -------------------------------------------------------------------------------------------


def test_fit_rejects_bad_parameters():
    table = fitting.simulate_table(fitting.KORDING_OBSERVER, "matching", 70, rng=0)
    with pytest.raises(ValueError, match=r"sigma_v must be > 0 \(a standard deviation"):
        fitting.fit(table, "matching", free=["p_common"], fixed={"sigma_v": 0.0})
    with pytest.raises(ValueError, match=r"p_common must be a probability in \[0, 1\]"):
        fitting.fit(table, "matching", free=["sigma_v"], fixed={"p_common": 1.2})
    with pytest.raises(ValueError, match="unknown parameters"):
        fitting.fit(table, "matching", free=["sigma_x"])
    with pytest.raises(ValueError, match="no unity judgements"):
        fitting.fit(table, "matching", free=["criterion"])
    with pytest.raises(ValueError, match="both free and fixed"):
        fitting.fit(table, "matching", free=["sigma_v"], fixed={"sigma_v": 2.0})
    with pytest.raises(ValueError, match="unknown strategy"):
        fitting.fit(table, "vote")
    with pytest.raises(TypeError, match="TrialTable"):
        fitting.fit({"s_v": [0.0]}, "matching")
    with pytest.raises(ValueError, match=r"sigma_motor must be >= 0"):
        fitting.fit(table, "matching", free=["sigma_v"], fixed={"sigma_motor": -0.5})
    with pytest.raises(ValueError, match=r"lapse must be a probability in \[0, 1\]"):
        fitting.log_likelihood(table, {**fitting.KORDING_OBSERVER, "lapse": -0.01})
    # one name where a list is expected would otherwise be read letter by letter
    with pytest.raises(ValueError, match=r"free must be a list of parameter names, e.g. \['sigma_v'\]"):
        fitting.fit(table, "matching", free="sigma_v")
    with pytest.raises(ValueError, match=r"strategies must be a list of strategy names"):
        fitting.compare_strategies(table, "matching")
    with pytest.raises(ValueError, match=r"strategies must be a list of strategy names"):
        fitting.recover(fitting.KORDING_OBSERVER, "matching", 1, 70, strategies="matching")
    with pytest.raises(ValueError, match="unknown unity decision"):
        fitting.log_likelihood(table, fitting.KORDING_OBSERVER, "matching", unity_decision="vote")


def test_zero_motor_noise_is_a_valid_fixed_observer():
    """sigma_motor = 0 is the hard nearest-button rule (neuro.button_probabilities allows it): it can be
    simulated, held fixed in a fit and scored, and its log-likelihood is the limit of a small motor noise
    (catches 0 refused as if it were a sensory standard deviation, or replaced by the default 1 deg)."""
    observer = {**fitting.KORDING_OBSERVER, "sigma_motor": 0.0}
    table = fitting.simulate_table(observer, "averaging", 140, rng=4)
    ll0 = fitting.log_likelihood(table, observer, "averaging")
    ll_small = fitting.log_likelihood(table, {**observer, "sigma_motor": 1e-3}, "averaging")
    ll_default = fitting.log_likelihood(table, {**observer, "sigma_motor": 1.0}, "averaging")
    assert np.isfinite(ll0) and ll0 == pytest.approx(ll_small, abs=1e-3) and ll0 != pytest.approx(ll_default)
    fixed = {n: v for n, v in observer.items() if n != "p_common"}
    result = fitting.fit(table, "averaging", free=["p_common"], fixed=fixed, starts=1, screen=2)
    assert result.params["sigma_motor"] == 0.0 and np.isfinite(result.log_likelihood)


def test_standard_error_matches_the_curvature_of_the_likelihood():
    """The Fisher-information SE of p_common (others fixed at the truth) against the second difference
    of log L (catches an information matrix without the 1/P factor or with the wrong trial counts)."""
    truth = fitting.KORDING_OBSERVER
    table = fitting.simulate_table(truth, "matching", 1000, rng=5)
    fixed = {n: v for n, v in truth.items() if n != "p_common"}
    result = fitting.fit(table, "matching", free=["p_common"], fixed=fixed, starts=1, screen=2)
    theta, h = math.log(result.params["p_common"] / (1 - result.params["p_common"])), 0.05

    def ll(t):
        return fitting.log_likelihood(table, {**fixed, "p_common": 1 / (1 + math.exp(-t))}, "matching")

    curvature = -(ll(theta + h) - 2 * ll(theta) + ll(theta - h)) / h**2
    se_theta = result.se["p_common"] / (result.params["p_common"] * (1 - result.params["p_common"]))
    assert se_theta == pytest.approx(1 / math.sqrt(curvature), rel=0.25)


def test_recovery_on_a_seeded_data_set():
    """1,000 trials from Körding et al.'s observer with probability matching: the 95 % intervals of the
    sensory and prior parameters contain the truth, and AIC picks matching (catches a likelihood that
    does not depend on the strategy, biased estimates, and intervals that are too narrow)."""
    truth = fitting.KORDING_OBSERVER
    table = fitting.simulate_table(truth, "matching", 1000, rng=1)
    comparison = fitting.compare_strategies(table)
    assert comparison.best == "matching"
    assert min(r["d_aic"] for r in comparison.rows() if r["strategy"] != "matching") > 4
    result = comparison.fits["matching"]
    inside = result.contains(truth)
    assert all(inside[n] for n in ("sigma_v", "sigma_a", "sigma_p", "p_common")), result.summary()
    assert result.aic == pytest.approx(2 * 6 - 2 * result.log_likelihood)
    assert result.bic == pytest.approx(6 * math.log(1000) - 2 * result.log_likelihood)
    assert sum(comparison.akaike_weights.values()) == pytest.approx(1.0)
    assert comparison.seconds < 30  # one data set of 1,000 trials, three strategies (benchmark: ~5 s)


def test_proportions_and_visual_bias():
    """Counts line up with the table, the bias of a segregating observer is zero while a fusing one's is
    about the visual weight (catches a bias measured from the sound position instead of the congruent
    condition, or divided by the wrong disparity sign)."""
    table = fitting.simulate_table(fitting.KORDING_OBSERVER, "averaging", 350, rng=2)
    seen = fitting.observed_proportions(table)
    assert seen["visual"].sum() == seen["auditory"].sum() == table.bimodal.sum()
    sv, sa = seen["s_v"], seen["s_a"]
    apart = fitting.predicted_proportions({**fitting.KORDING_OBSERVER, "p_common": 0.0}, "averaging", sv, sa)
    fused = fitting.predicted_proportions({**fitting.KORDING_OBSERVER, "p_common": 1.0}, "averaging", sv, sa)
    _, bias_apart = fitting.visual_bias(sv, sa, apart["auditory"])
    _, bias_fused = fitting.visual_bias(sv, sa, fused["auditory"])
    assert np.abs(bias_apart).max() < 1e-3 and bias_fused.min() > 0.6
    # by hand: congruent reports at 0; flash at +5 moves them to 5 (bias 1), flash at -5 to 5 (bias -1)
    d, bias = fitting.visual_bias(
        [0.0, 5.0, -5.0], [0.0, 0.0, 0.0], [[0, 0, 2, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 3, 0]]
    )
    np.testing.assert_allclose(d, [5.0])
    np.testing.assert_allclose(
        bias, [(1 * 1.0 + 3 * -1.0) / 4]
    )  # pooled over |disparity|, weighted by trials


def test_flash_beep_table_is_labelled_and_fits():
    """The table says it is illustrative; the model's means are those of neuro.flash_beep_table; a fit
    does not end worse than its start (catches a fit that ignores its data)."""
    table = fitting.FLASH_BEEP_TABLE
    assert table.kind == "illustrative" and "ILLUSTRATIVE" in table.source and "Shams" in table.source
    full = neuro.flash_beep_table(sigma_v=0.7, sigma_a=0.25, p_common=0.8, n_grid=41)
    predicted = fitting.predict_flash_beep(table, 0.7, 0.25, 0.8, n_grid=41)
    np.testing.assert_allclose(predicted, full[table.flashes - 1, table.beeps], atol=1e-12)
    result = fitting.fit_flash_beep(table, n_grid=31, max_evaluations=60)
    start_rmse = np.sqrt(np.mean((result["start_predicted"] - table.mean_reported) ** 2))
    assert result["rmse"] <= start_rmse
    with pytest.raises(ValueError, match="empty"):
        fitting.fit_flash_beep(
            fitting.FlashBeepTable(np.array([], int), np.array([], int), np.array([]), "x", "y")
        )


@pytest.mark.parametrize(
    ("flashes", "beeps", "means", "message"),
    [
        ([1, 2], [0], [1.0, 2.0], "one value per row"),
        ([1], [0], [np.nan], "mean_reported must be finite"),
        ([1.5], [0], [1.0], "flashes must be whole numbers of at least 1"),
        ([0], [2], [1.0], "flashes must be whole numbers of at least 1"),
        ([1], [-1], [1.0], "beeps must be whole numbers of at least 0"),
    ],
)
def test_flash_beep_tables_are_checked(flashes, beeps, means, message):
    """Catches a NaN mean that leaves the fit at its start with an rmse of NaN, a fractional count
    silently truncated by int(), and rows of different lengths failing inside zip()."""
    table = fitting.FlashBeepTable(np.array(flashes), np.array(beeps), np.array(means, float), "x", "y")
    with pytest.raises(ValueError, match=message):
        fitting.fit_flash_beep(table, max_evaluations=5)
    with pytest.raises(ValueError, match=message):
        fitting.predict_flash_beep(table, 0.7, 0.25, 0.8)


def test_design_and_bias_helpers_reject_bad_shapes():
    with pytest.raises(ValueError, match="at least one finite stimulus position"):
        fitting.kording_design(10, positions=[])
    with pytest.raises(ValueError, match=r"auditory of shape \(C, 5\)"):
        fitting.visual_bias([0.0, 5.0], [0.0, 0.0], [[1, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match=r"auditory of shape \(C, 5\)"):
        fitting.visual_bias([0.0], [0.0], [[1, 0, 0]])


def test_far_button_exercise_checker(capsys):
    assert ex.check_far_button(0.1067) is True
    assert ex.check_far_button(0.2071) is False  # the prior forgotten
    assert ex.check_far_button("a lot") is False
    assert ex.check_far_button(None) is False
    assert "not attempted yet" in capsys.readouterr().out.lower()


def test_widget_update_is_fast_and_blitted():
    from chapter13.widgets import fitting as fw

    box = fw.fitting_widget()
    for value in (0.4, 0.6, 0.8):
        before = bytes(box.image.value)
        box.controls["p_common"].value = value
        assert bytes(box.image.value) != before
    assert box.view.blits >= 3
    assert box.timer.summary(skip_first=1).median_ms < 250  # budget 100 ms; slack for a loaded CI machine
    box.entry.value = "0, 0, 0, 0\n5, 0, 5, 0\n"
    box.use_button.click()
    assert box.controls["source"].value == "entered" and "2 entered trials" in box.view.title.get_text()


def test_compare_strategies_shows_a_bar_only_when_asked(capsys):
    table = fitting.simulate_table(fitting.KORDING_OBSERVER, "matching", 70, rng=0)
    options = dict(free=["p_common"], fixed={}, starts=1, screen=2)
    quiet = fitting.compare_strategies(table, ["matching", "averaging"], **options)
    assert capsys.readouterr().err == ""  # the default stays silent
    shown = fitting.compare_strategies(table, ["matching", "averaging"], progress=True, **options)
    err = capsys.readouterr().err
    assert "fitting strategies" in err and "/2 " in err
    assert shown.best == quiet.best  # the bar changes nothing else
    assert shown.fits["matching"].log_likelihood == quiet.fits["matching"].log_likelihood
