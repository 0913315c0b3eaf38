"""The A/B metric types, health checks and decision framework against independent references (scipy,
statsmodels, textbook formulas written out here, hand-computed values) and planted truth in simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.analysis import ab_decision as D
from helpers.analysis import ab_health as H
from helpers.analysis import ab_metrics as M

Z = stats.norm.ppf(0.975)


# ---------------------------------------------------------------------------
# Proportions: the reference quantities
# ---------------------------------------------------------------------------

CASES = [(480, 10_000, 560, 10_000), (44_700, 90_189, 45_489, 90_189), (30, 400, 45, 410)]


def _wilson(x, n):
    p = x / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


@pytest.mark.parametrize("x_c,n_c,x_t,n_t", CASES)
def test_proportion_quantities_match_statsmodels_and_textbook_formulas(x_c, n_c, x_t, n_t):
    from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest, test_proportions_2indep

    e = M.proportion(x_c, n_c, x_t, n_t, exact_below=0)
    p_c, p_t = x_c / n_c, x_t / n_t
    # pooled z (the p-value used) and unpooled z
    assert e.p_value == pytest.approx(proportions_ztest([x_t, x_c], [n_t, n_c])[1], rel=1e-6)
    assert e.extra["p_unpooled_z"] == pytest.approx(
        test_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff").pvalue, rel=1e-6)
    # Newcombe's hybrid score interval (Newcombe 1998, method 10), from Wilson intervals written out here
    l_t, u_t = _wilson(x_t, n_t)
    l_c, u_c = _wilson(x_c, n_c)
    d = p_t - p_c
    assert e.extra["newcombe_low"] == pytest.approx(d - np.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2), abs=1e-9)
    assert e.extra["newcombe_high"] == pytest.approx(d + np.sqrt((u_t - p_t) ** 2 + (p_c - l_c) ** 2), abs=1e-9)
    # log-ratio interval of the relative lift: exp(log RR ± z sqrt(1/x_t − 1/n_t + 1/x_c − 1/n_c)) − 1
    half = Z * np.sqrt(1 / x_t - 1 / n_t + 1 / x_c - 1 / n_c)
    assert e.extra["log_ratio_low"] == pytest.approx(np.exp(np.log(p_t / p_c) - half) - 1, rel=1e-6)
    assert e.extra["log_ratio_high"] == pytest.approx(np.exp(np.log(p_t / p_c) + half) - 1, rel=1e-6)
    # relative lift: delta-method SE and its p-value
    se_rel = np.sqrt(p_t * (1 - p_t) / n_t / p_c**2 + p_t**2 * p_c * (1 - p_c) / n_c / p_c**4)
    assert e.rel_se == pytest.approx(se_rel, rel=1e-9)
    assert e.rel_p == pytest.approx(2 * stats.norm.sf(abs(p_t / p_c - 1) / se_rel), rel=1e-6)
    # Cohen's h
    assert e.extra["cohens_h"] == pytest.approx(proportion_effectsize(p_t, p_c), rel=1e-9)
    # exact Beta-posterior chance against Monte Carlo
    rng = np.random.default_rng(0)
    mc = (rng.beta(1 + x_t, 1 + n_t - x_t, 400_000) > rng.beta(1 + x_c, 1 + n_c - x_c, 400_000)).mean()
    assert e.chance_to_beat == pytest.approx(mc, abs=0.003)


def test_exact_tests_below_the_size_threshold_match_scipy_and_a_hand_fisher():
    small = M.proportion(3, 40, 11, 42)  # 82 units < 1,000: exact test
    assert small.test.startswith("boschloo")
    table = np.array([[11, 31], [3, 37]])
    assert small.p_value == pytest.approx(stats.boschloo_exact(table).pvalue, rel=1e-6)
    assert M.exact_p(3, 40, 11, 42, "barnard") == pytest.approx(stats.barnard_exact(table).pvalue, rel=1e-6)
    # Fisher by hand: sum of hypergeometric probabilities no larger than the observed one
    hyper = stats.hypergeom(82, 14, 42)
    observed = hyper.pmf(11)
    support = np.arange(0, 15)
    fisher = hyper.pmf(support)[hyper.pmf(support) <= observed * (1 + 1e-7)].sum()
    assert M.exact_p(3, 40, 11, 42, "fisher") == pytest.approx(fisher, rel=1e-6)
    assert M.proportion(300, 4000, 330, 4000).test.startswith("pooled")  # large: z-test


def test_multiple_testing_corrections_against_hand_computed_values():
    p = [0.01, 0.02, 0.03, 0.04, 0.05]
    assert M.adjust_pvalues(p, "bonferroni") == pytest.approx([0.05, 0.10, 0.15, 0.20, 0.25])
    assert M.adjust_pvalues(p, "holm") == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    assert M.adjust_pvalues(p, "hochberg") == pytest.approx([0.05] * 5)
    assert M.adjust_pvalues(p, "bh") == pytest.approx([0.05] * 5)
    c5 = sum(1 / i for i in range(1, 6))
    assert M.adjust_pvalues(p, "by") == pytest.approx([0.05 * c5] * 5)
    with pytest.raises(ValueError, match="correction must be one of"):
        M.adjust_pvalues(p, "sidak-ish")


def test_power_and_sample_size_match_statsmodels_for_any_metric():
    from statsmodels.stats.power import NormalIndPower

    sd, n, effect = 12.0, 900, 1.5
    se = sd * np.sqrt(2 / n)
    assert M.power_at_effect(effect, se) == pytest.approx(
        NormalIndPower().power(effect_size=effect / sd, nobs1=n, alpha=0.05, ratio=1.0), rel=1e-6)
    exact_n = NormalIndPower().solve_power(effect_size=effect / sd, alpha=0.05, power=0.8, ratio=1.0)
    assert M.sample_size(sd, effect) == int(np.ceil(exact_n))
    # CUPED-adjusted variance: (1 − ρ²) fewer units
    assert M.sample_size(sd, effect, variance_reduction=0.36) == int(np.ceil(exact_n * 0.64 - 1e-9)) or \
        abs(M.sample_size(sd, effect, variance_reduction=0.36) - exact_n * 0.64) < 1
    assert M.minimum_detectable_effect(sd, int(np.ceil(exact_n))) == pytest.approx(effect, rel=1e-3)


# ---------------------------------------------------------------------------
# Means, ratios, quantiles
# ---------------------------------------------------------------------------


def test_mean_matches_welch_and_the_relative_effect_the_delta_method():
    rng = np.random.default_rng(1)
    y_c, y_t = rng.gamma(2.0, 10.0, 3000), rng.gamma(2.0, 10.6, 3200)
    e = M.mean(y_c, y_t)
    w = stats.ttest_ind(y_t, y_c, equal_var=False)
    ci = w.confidence_interval(0.95)
    assert e.p_value == pytest.approx(w.pvalue, rel=1e-6)
    assert (e.ci_low, e.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-6)
    v_c, v_t = y_c.var(ddof=1) / y_c.size, y_t.var(ddof=1) / y_t.size
    m_c, m_t = y_c.mean(), y_t.mean()
    se_rel = np.sqrt(v_t / m_c**2 + m_t**2 * v_c / m_c**4)
    assert (e.rel_ci_low, e.rel_ci_high) == pytest.approx((m_t / m_c - 1 - Z * se_rel, m_t / m_c - 1 + Z * se_rel),
                                                          rel=1e-9)
    assert e.rel_p == pytest.approx(2 * stats.norm.sf(abs(m_t / m_c - 1) / se_rel), rel=1e-9)
    # always-valid p is larger than the fixed-sample p, and the always-valid interval wider
    assert e.seq_p >= e.p_value and e.seq_low < e.ci_low and e.seq_high > e.ci_high


def test_ratio_matches_the_existing_delta_method_and_cuped_on_the_ratio_narrows_it():
    from helpers.analysis.experiments import ratio_metric

    rng = np.random.default_rng(2)
    n = 4000
    pre_orders = rng.poisson(3, 2 * n) + 1
    pre_rev = pre_orders * rng.gamma(5, 8, 2 * n)
    taste = pre_rev / pre_orders  # a customer's typical order value carries over
    orders = rng.poisson(3, 2 * n) + 1
    rev = orders * (0.5 * taste + rng.gamma(5, 4, 2 * n))
    rev[n:] *= 1.03  # +3% revenue per order in the arm
    e = M.ratio(rev[:n], orders[:n], rev[n:], orders[n:])
    ref = ratio_metric(rev[:n], orders[:n], rev[n:], orders[n:])
    assert e.diff == pytest.approx(ref["diff"], rel=1e-9) and e.p_value == pytest.approx(ref["p_value"], rel=1e-6)
    adjusted = M.ratio(rev[:n], orders[:n], rev[n:], orders[n:], pre_rev[:n], pre_orders[:n], pre_rev[n:],
                       pre_orders[n:])
    assert adjusted.extra["variance_reduction"] > 0.1 and adjusted.se < e.se
    assert abs(adjusted.rel - 0.03) < 3 * adjusted.rel_se


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_quantile_intervals_cover_at_their_nominal_rate(q):
    """Deng et al. (2018) intervals for the difference of two arms' quantiles: 95% coverage ± 2 pp over 1,500
    simulated tests on skewed (log-normal) order values with a planted shift of the quantile."""
    rng = np.random.default_rng(3)
    true_c = stats.lognorm(0.8, scale=40.0).ppf(q)
    true_t = stats.lognorm(0.8, scale=44.0).ppf(q)
    hits = 0
    sims = 1500
    for _ in range(sims):
        y_c = rng.lognormal(np.log(40.0), 0.8, 600)
        y_t = rng.lognormal(np.log(44.0), 0.8, 600)
        e = M.quantile(y_c, y_t, q)
        hits += e.ci_low <= true_t - true_c <= e.ci_high
    assert abs(hits / sims - 0.95) <= 0.02, hits / sims


# ---------------------------------------------------------------------------
# Estimators unbiased on planted effects
# ---------------------------------------------------------------------------


def _unbiased(estimates: np.ndarray, truth: float) -> bool:
    return abs(estimates.mean() - truth) <= 2 * estimates.std(ddof=1) / np.sqrt(len(estimates))


def test_winsorised_regression_adjusted_and_post_stratified_estimators_are_unbiased():
    """400 simulated tests with a planted additive effect of 2.0 on a metric driven by two pre-period covariates
    and a device stratum; each estimator's mean over the simulations lies within 2 standard errors of 2.0, and
    regression adjustment removes most of the variance."""
    rng = np.random.default_rng(4)
    effect = 2.0
    wins, regs, strat, reductions = [], [], [], []
    for _ in range(400):  # each check is a 95% band: 400 draws keep a chance miss of one estimator rare
        n = 2000
        x1, x2 = rng.normal(50, 10, n), rng.gamma(2, 5, n)
        device = rng.choice(["mobile", "desktop", "tablet"], n, p=[0.6, 0.3, 0.1])
        base = 0.8 * x1 + 0.5 * x2 + np.select([device == "desktop", device == "tablet"], [8.0, -4.0], 0.0)
        t = rng.permutation(n) < n // 2
        y = base + rng.normal(0, 6, n) + effect * t
        wins.append(M.winsorised(y[~t], y[t], upper=0.999).diff)
        r = M.regression_adjusted(y, t, pd.DataFrame({"x1": x1, "x2": x2, "device": device}))
        regs.append(r.diff)
        reductions.append(r.extra["variance_reduction"])
        strat.append(M.post_stratified(y, t, device).diff)
    for name, est in [("winsorised", wins), ("regression", regs), ("post-stratified", strat)]:
        assert _unbiased(np.array(est), effect), (name, np.mean(est))
    assert np.mean(reductions) > 0.6


def test_regression_adjustment_matches_statsmodels_ols_with_hc2():
    import statsmodels.api as sm

    rng = np.random.default_rng(5)
    n = 800
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.gamma(2, 1, n)})
    t = (rng.random(n) < 0.5).astype(float)
    y = 1 + 0.4 * t + X["a"] * (1 + 0.5 * t) + 0.3 * X["b"] + rng.normal(size=n)
    Xc = X - X.mean()
    design = sm.add_constant(np.column_stack([t, Xc, Xc.to_numpy() * t[:, None]]))
    ols = sm.OLS(y.to_numpy(), design).fit(cov_type="HC2")
    e = M.regression_adjusted(y, t, X)
    assert e.diff == pytest.approx(ols.params[1], rel=1e-9)
    assert e.se == pytest.approx(ols.bse[1], rel=1e-6)


def test_cuped_relative_effect_recovers_a_planted_lift():
    rng = np.random.default_rng(6)
    n = 5000
    x = rng.gamma(3, 10, 2 * n)
    y = 0.9 * x + rng.gamma(2, 5, 2 * n)
    y[n:] *= 1.05
    e = M.cuped_mean(y[:n], y[n:], x[:n], x[n:])
    plain = M.mean(y[:n], y[n:])
    assert e.extra["variance_reduction"] > 0.5 and e.rel_se < plain.rel_se
    assert abs(e.rel - 0.05) < 3 * e.rel_se


# ---------------------------------------------------------------------------
# A/A calibration
# ---------------------------------------------------------------------------


def test_aa_simulation_holds_the_false_positive_rate_for_every_metric_type():
    """2,000 random splits of one population: every metric type rejects 5% ± 1.5 pp of the time."""
    rng = np.random.default_rng(7)
    n = 3000
    orders = rng.poisson(1.2, n)
    units = pd.DataFrame({"converted": (orders > 0).astype(int), "orders": orders,
                          "revenue": orders * rng.lognormal(3.5, 0.9, n), "sessions": rng.poisson(4, n) + 1})
    specs = [M.MetricSpec("conversion", "proportion", "converted"), M.MetricSpec("revenue", "mean", "revenue"),
             M.MetricSpec("revenue per session", "ratio", "revenue", denominator="sessions"),
             M.MetricSpec("median revenue", "quantile", "revenue", q=0.5),
             M.MetricSpec("revenue (capped)", "winsorised", "revenue")]
    table = M.aa_simulation(units, specs, n_sims=2000, seed=1)
    assert (table["false_positive_rate"].sub(0.05).abs() <= 0.015).all(), table


# ---------------------------------------------------------------------------
# Health checks
# ---------------------------------------------------------------------------


def _units(n=20_000, seed=8, broken_device=None):
    rng = np.random.default_rng(seed)
    device = rng.choice(["mobile", "desktop"], n, p=[0.7, 0.3])
    arm = np.where(rng.random(n) < 0.5, "a", "b")
    if broken_device:  # a tracking bug loses a third of arm b's units on one device
        lost = (device == broken_device) & (arm == "b") & (rng.random(n) < 0.33)
        device, arm = device[~lost], arm[~lost]
    m = len(arm)
    day = pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, 10, m), unit="D")
    return pd.DataFrame({"unit_id": np.arange(m), "variant": arm, "device": device, "assigned_at": day,
                         "pre_revenue": rng.gamma(2, 20, m), "converted": (rng.random(m) < 0.1).astype(int)})


def test_srm_by_dimension_names_the_broken_slice():
    units = _units(broken_device="desktop")
    srm = H.srm_by_dimension(units, "variant", ["device"])
    broken = srm[srm["mismatch"]]
    assert "desktop" in set(broken["value"]) and "mobile" not in set(broken["value"])
    healthy = H.srm_by_dimension(_units(), "variant", ["device"])
    assert not healthy["mismatch"].any()


def test_crossover_and_pre_exposure_bias_are_detected():
    exposures = pd.DataFrame({"unit": [1, 1, 2, 3, 4, 4], "variant": ["a", "b", "a", "b", "a", "a"]})
    cx = H.crossover(exposures, "unit", "variant")
    assert cx["crossed"] == 1 and cx["crossed_units"] == [1] and cx["fail"]
    units = _units()
    ok = H.pre_exposure_bias(units, "variant", "a", ["pre_revenue"])
    assert (ok["status"] == "pass").all()
    biased = units.copy()
    biased.loc[biased["variant"] == "b", "pre_revenue"] *= 1.15  # arm b got the heavier spenders
    assert (H.pre_exposure_bias(biased, "variant", "a", ["pre_revenue"])["status"] == "fail").all()


def test_a_failed_health_check_blocks_the_decision():
    units = _units(broken_device="desktop")
    units.loc[units["variant"] == "b", "converted"] = 1  # an absurdly good arm
    checks, detail = H.health_checks(units, "variant", "a", None, ["device"], ["pre_revenue"], when="assigned_at")
    reasons = H.blocking(checks)
    assert reasons and any("device" in r for r in reasons)
    assert detail["traffic"]["daily"].shape[0] == 10
    results = D.evaluate(units, "variant", "a", [M.MetricSpec("conversion", "proportion", "converted")])
    decision = D.decide(results, blocked=reasons)
    assert decision.verdict == "no decision" and "health checks failed" in decision.text


# ---------------------------------------------------------------------------
# The decision framework
# ---------------------------------------------------------------------------


def _experiment(lift_goal: float, lift_guard: float, n: int = 40_000, seed: int = 9):
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "control", "new")
    t = arm == "new"
    conv = rng.random(n) < 0.10 * np.where(t, 1 + lift_goal, 1.0)
    refunds = rng.random(n) < 0.02 * np.where(t, 1 + lift_guard, 1.0)
    return pd.DataFrame({"variant": arm, "converted": conv.astype(int), "refunded": refunds.astype(int)})


SPECS = [M.MetricSpec("conversion", "proportion", "converted", target_mde=0.05),
         M.MetricSpec("refunds", "proportion", "refunded", role="guardrail", higher_is_better=False)]


def test_framework_ships_a_clear_winner_and_rolls_back_on_guardrail_harm():
    results = D.evaluate(_experiment(0.15, 0.0), "variant", "control", SPECS)
    ship = D.decide(results, audience=20_000, value_per_unit_change=40.0, currency="EUR")
    assert ship.verdict == "ship" and "wins" in ship.text and not ship.blocked_by
    # impact: the difference × 20,000 units, × EUR 40 per conversion; the range from the CI of the difference
    goal = results[results["metric"] == "conversion"].iloc[0]
    assert ship.impact["conversions"] == pytest.approx(goal["diff"] * 20_000)
    assert ship.impact["money_low"] == pytest.approx(goal["ci_low"] * 20_000 * 40)
    assert "EUR" in ship.text
    harm = D.decide(D.evaluate(_experiment(0.15, 0.6), "variant", "control", SPECS))
    assert harm.verdict == "roll back" and "guardrail" in harm.text and "refunds" in harm.text


def test_framework_rolls_back_a_loser_keeps_running_when_unsure_and_stops_when_nothing_matters():
    lose = D.decide(D.evaluate(_experiment(-0.2, 0.0), "variant", "control", SPECS))
    assert lose.verdict == "roll back" and "Control wins" in lose.text
    unsure = D.decide(D.evaluate(_experiment(0.0, 0.0, n=4000), "variant", "control", SPECS))
    assert unsure.verdict == "keep running" and "units per arm" in unsure.text
    wide_target = [M.MetricSpec("conversion", "proportion", "converted", target_mde=0.5)]
    nothing = D.decide(D.evaluate(_experiment(0.0, 0.0, n=200_000), "variant", "control", wide_target))
    assert nothing.verdict == "no decision" and "No difference that matters" in nothing.text
