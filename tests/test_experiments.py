"""A/B statistics against statsmodels/scipy closed forms, A/A false-positive rate, CI coverage, the planted lifts
of the sample's campaign tests, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.analysis import experiments as E


def test_conversion_test_matches_statsmodels():
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    x_c, n_c, x_t, n_t = 412, 5_000, 468, 5_100
    r = E.conversion_test(x_c, n_c, x_t, n_t)
    z, p = proportions_ztest([x_t, x_c], [n_t, n_c])
    assert r["z"] == pytest.approx(z, abs=1e-6) and r["p_value"] == pytest.approx(p, abs=1e-6)
    lo, hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff")
    assert r["diff_ci"][0] == pytest.approx(lo, abs=1e-6) and r["diff_ci"][1] == pytest.approx(hi, abs=1e-6)
    # delta-method relative lift: check against an independent formula via the log-ratio-free expression
    pc, pt = x_c / n_c, x_t / n_t
    se = np.sqrt(pt * (1 - pt) / n_t / pc**2 + pt**2 * pc * (1 - pc) / n_c / pc**4)
    q = stats.norm.ppf(0.975)
    assert r["relative_ci"][0] == pytest.approx(pt / pc - 1 - q * se, abs=1e-6)


def test_mean_tests_match_scipy():
    rng = np.random.default_rng(1)
    c, t = rng.lognormal(3, 1, 800), rng.lognormal(3.1, 1, 900)
    r = E.mean_test(c, t, n_boot=500)
    w = stats.ttest_ind(t, c, equal_var=False)
    assert r["welch_t"] == pytest.approx(w.statistic, abs=1e-6) and r["welch_p"] == pytest.approx(w.pvalue, abs=1e-6)
    # Welch CI from the closed form: diff ± t_{df} * sqrt(s_t²/n_t + s_c²/n_c)
    se = np.sqrt(t.var(ddof=1) / t.size + c.var(ddof=1) / c.size)
    df = se**4 / ((t.var(ddof=1) / t.size) ** 2 / (t.size - 1) + (c.var(ddof=1) / c.size) ** 2 / (c.size - 1))
    half = stats.t.ppf(0.975, df) * se
    assert r["welch_ci"][0] == pytest.approx(t.mean() - c.mean() - half, abs=1e-6)
    mw = stats.mannwhitneyu(t, c, alternative="two-sided")
    assert r["mann_whitney_p"] == pytest.approx(mw.pvalue, abs=1e-6)
    lo, hi = r["bootstrap_ci"]
    assert lo < r["diff"] < hi and (hi - lo) == pytest.approx(2 * half, rel=0.15)


def test_srm_matches_scipy_chisquare():
    r = E.srm_test(pd.Series({"a": 5_100, "b": 4_900, "c": 10_300}), {"a": 0.25, "b": 0.25, "c": 0.5})
    chi2, p = stats.chisquare([5_100, 4_900, 10_300], [5_075, 5_075, 10_150])
    assert r["chi2"] == pytest.approx(chi2, abs=1e-6) and r["p_value"] == pytest.approx(p, abs=1e-6)
    assert E.srm_test(pd.Series({"a": 5_000, "b": 5_400}))["mismatch"]


def test_ratio_metric_delta_method_matches_a_bootstrap():
    rng = np.random.default_rng(2)
    orders_c, orders_t = rng.poisson(2, 3000) + 1, rng.poisson(2, 3000) + 1
    rev_c = orders_c * rng.gamma(4, 10, 3000)
    rev_t = orders_t * rng.gamma(4, 11, 3000)
    r = E.ratio_metric(rev_c, orders_c, rev_t, orders_t)
    boots = []
    for _ in range(400):
        i, j = rng.integers(0, 3000, 3000), rng.integers(0, 3000, 3000)
        boots.append(rev_t[j].sum() / orders_t[j].sum() - rev_c[i].sum() / orders_c[i].sum())
    se = (r["diff_ci"][1] - r["diff_ci"][0]) / (2 * stats.norm.ppf(0.975))
    assert se == pytest.approx(np.std(boots, ddof=1), rel=0.15)


def test_cuped_reduces_variance_by_rho_squared():
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, 20_000)
    y = 0.8 * x + rng.normal(0, 1, 20_000)
    adjusted, theta, reduction = E.cuped(y, x)
    rho = np.corrcoef(x, y)[0, 1]
    assert theta == pytest.approx(0.8, rel=0.02)
    assert reduction == pytest.approx(rho**2, abs=1e-6)
    assert adjusted.mean() == pytest.approx(y.mean(), abs=1e-9)


def test_bayesian_chance_to_beat_against_exact_integration_and_normal_closed_form():
    mc = E.beta_binomial(120, 1000, 145, 1000, draws=400_000)
    exact = E.chance_to_beat_exact(120, 1000, 145, 1000)
    assert mc["chance_to_beat_control"] == pytest.approx(exact, abs=3e-3)
    n = E.normal_posterior(2.0, 1.0)
    assert n["chance_to_beat_control"] == pytest.approx(stats.norm.cdf(2.0), abs=1e-9)
    # E[max(-D, 0)] for D ~ N(2, 1) by numerical integration
    from scipy.integrate import quad

    loss = quad(lambda d: -d * stats.norm.pdf(d, 2, 1), -np.inf, 0)[0]
    assert n["expected_loss_treatment"] == pytest.approx(loss, abs=1e-7)


def test_planner_matches_statsmodels_and_inverts():
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    n = E.sample_size_per_arm(0.10, 0.10)
    expected = NormalIndPower().solve_power(proportion_effectsize(0.11, 0.10), alpha=0.05, power=0.8)
    assert n == int(np.ceil(expected))
    assert E.minimum_detectable_lift(0.10, n) == pytest.approx(0.10, abs=1e-3)


def test_adjustments_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.001, 0.02, 0.03, 0.2]
    a = E.adjust(p)
    assert np.allclose(a["p_holm"], multipletests(p, method="holm")[1], atol=1e-12)
    assert np.allclose(a["p_bh"], multipletests(p, method="fdr_bh")[1], atol=1e-12)


def test_aa_tests_reject_about_five_percent():
    rng = np.random.default_rng(4)
    n, sims = 2_000, 3_000
    x = rng.binomial(n, 0.1, size=(sims, 2))
    rejections = np.mean([E.conversion_test(a, n, b, n)["p_value"] < 0.05 for a, b in x])
    assert 0.04 <= rejections <= 0.06, rejections


def test_confidence_intervals_cover_the_truth():
    rng = np.random.default_rng(5)
    n, sims, pc, pt = 3_000, 3_000, 0.10, 0.12
    xc, xt = rng.binomial(n, pc, sims), rng.binomial(n, pt, sims)
    diff_cover = rel_cover = 0
    for a, b in zip(xc, xt):
        r = E.conversion_test(a, n, b, n)
        diff_cover += r["diff_ci"][0] <= pt - pc <= r["diff_ci"][1]
        rel_cover += r["relative_ci"][0] <= pt / pc - 1 <= r["relative_ci"][1]
    assert 0.935 <= diff_cover / sims <= 0.965
    assert 0.93 <= rel_cover / sims <= 0.965


def test_confidence_sequence_stays_valid_under_continuous_peeking():
    """A/A tests monitored at 50 looks: the naive CI excludes 0 at some look far more often than 5%; the
    confidence sequence does so at most about 5% of the time."""
    rng = np.random.default_rng(6)
    sims, n = 400, 4_000
    naive = cs = 0
    for _ in range(sims):
        df = pd.DataFrame({"v": np.where(rng.random(n) < 0.5, "a", "b"), "y": rng.random(n) < 0.1})
        path = E.monitoring_path(df, "v", "a", "b", "y", looks=50)
        naive += bool(((path["ci_low"] > 0) | (path["ci_high"] < 0)).any())
        cs += bool(((path["cs_low"] > 0) | (path["cs_high"] < 0)).any())
    assert naive / sims > 0.12
    assert cs / sims <= 0.06


@pytest.mark.parametrize("frame, control, match", [
    (pd.DataFrame({"v": ["a", "b"], "y": [1, 0]}), "ctrl", "control arm 'ctrl' not found"),
    (pd.DataFrame({"v": ["a", "a"], "y": [1, 0]}), "a", "only one arm"),
    (pd.DataFrame({"v": ["a", "b", "a"], "y": [0, 0, 0]}), "a", "0 for every unit"),
    (pd.DataFrame({"v": ["a", "b", "a"], "y": [1, np.nan, 0]}), "a", "column 'y', row 1: missing"),
    (pd.DataFrame({"v": ["a", "b ", "a"], "y": [1, 0, 0]}), "a", "leading or trailing spaces"),
    (pd.DataFrame({"v": ["a", "b", "a"], "y": [1, "x", 0]}), "a", "non-numeric"),
    (pd.DataFrame({"v": ["a", "b"]}), "a", "missing column"),
])
def test_bad_input_gets_a_clear_error(frame, control, match):
    with pytest.raises(E.ExperimentError, match=match):
        E.check_experiment(frame, "v", control, ["y"], source="test.csv")


def test_a_unit_listed_twice_is_a_clear_error():
    df = pd.DataFrame({"user": [1, 2, 2], "v": ["a", "b", "b"], "y": [1, 0, 1]})
    with pytest.raises(E.ExperimentError, match="column 'user', row 2: unit 2 appears more than once"):
        E.check_experiment(df, "v", "a", ["y"], source="t.csv", unit="user")


def test_planted_campaign_lifts_fall_inside_the_intervals(default_360, default_clean):
    """The sample's subject-line (open +15%) and send-time (evening click +25%) tests: the true lifts planted by
    the generator lie inside the 95% CIs, and the analysis reports them."""
    from helpers.analysis import truth

    tables = default_360["tables"]
    spec = truth.read_truth(default_clean["layout"].truth)["experiments"]
    for name, exp in spec.items():
        units = E.campaign_units(tables["sends"], tables["campaigns"], tables["orders"], name)
        metric = "opened" if exp["metric"] == "open" else "clicked"
        comp = E.compare_arms(units, "variant", exp["control"], metric)
        rates = exp["true_open_rate"] if exp["metric"] == "open" else exp["true_click_rate"]
        for _, row in comp.iterrows():
            true_diff = rates[row["arm"]] - rates[exp["control"]]
            assert row["ci_low"] <= true_diff <= row["ci_high"], (name, row["arm"], true_diff, row.to_dict())


# ---------------------------------------------------------------------------
# Honest decisions: no "ship" while a health check fails
# ---------------------------------------------------------------------------


def test_judge_on_planted_data_blocks_srm_and_ships_a_healthy_large_effect():
    rng = np.random.default_rng(3)
    n = 40_000
    arm = np.where(rng.random(n) < 0.5, "a", "b")
    units = pd.DataFrame({"arm": arm, "y": (rng.random(n) < np.where(arm == "a", 0.10, 0.13)).astype(int)})
    _, srm, mde, path, decision, results = E.judge(units, "arm", "a", "y", None, seed=1)
    assert not srm["mismatch"] and mde < 0.3 and decision.verdict == "ship", decision.text
    assert results["p_adjusted"].iloc[0] < 1e-6
    # drop 8% of arm b's units: the split breaks and the same +30% lift may no longer be shipped
    broken = units[~((units["arm"] == "b") & (rng.random(n) < 0.08))]
    _, srm, _, _, decision, _ = E.judge(broken, "arm", "a", "y", None, seed=1)
    assert srm["mismatch"] and decision.verdict == "no decision" and decision.blocked_by.startswith("sample-ratio")


def test_report_uses_exact_chance_to_beat_and_the_welch_standard_error():
    from scipy.special import betaln

    # Evan Miller's closed form for P(p_t > p_c) with integer Beta parameters: an independent reference
    def closed_form(a_t, b_t, a_c, b_c):
        return sum(np.exp(betaln(a_c + i, b_c + b_t) - np.log(b_t + i) - betaln(1 + i, b_t) - betaln(a_c, b_c))
                   for i in range(a_t))

    units = pd.DataFrame({"v": ["c"] * 900 + ["t"] * 1100,
                          "y": [1] * 100 + [0] * 800 + [1] * 150 + [0] * 950})
    comp = E.compare_arms(units, "v", "c", "y")
    ref = closed_form(1 + 150, 1 + 950, 1 + 100, 1 + 800)
    assert comp.at[0, "chance_to_beat_control"] == pytest.approx(ref, abs=1e-6)

    rng = np.random.default_rng(5)
    rev = pd.DataFrame({"v": ["c"] * 3000 + ["t"] * 3000,
                        "r": np.r_[rng.exponential(10, 3000), rng.exponential(10.6, 3000)]})
    table = E.revenue_table(rev, "v", "c", "r", None)
    yc, yt = rev.loc[rev["v"] == "c", "r"], rev.loc[rev["v"] == "t", "r"]
    se = np.sqrt(yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc))
    assert table.at[0, "chance_to_beat_control"] == pytest.approx(stats.norm.cdf((yt.mean() - yc.mean()) / se),
                                                                  abs=1e-12)
