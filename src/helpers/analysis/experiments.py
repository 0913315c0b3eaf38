"""A/B test analysis on scipy/statsmodels: SRM, conversion and revenue tests, CUPED, Bayesian chance to win,
power and sample size, multiple variants, segment effects and always-valid confidence sequences.

Every function takes plain arrays or a tidy table with one row per unit (a user, an e-mail send), a variant
column and metric columns. Formula choices are stated in the docstrings and in the report:

* conversion: two-proportion z-test with the pooled standard error (as ``statsmodels`` ``proportions_ztest``),
  the absolute lift with a Wald interval (unpooled standard error), and the relative lift with a delta-method
  interval that includes the uncertainty of the control rate;
* revenue per unit: Welch's t-test, Mann-Whitney U, a percentile bootstrap interval for the difference in means;
  ratio metrics (revenue per order) by the delta method;
* CUPED: ``y - theta (x - mean x)`` with ``theta = cov(x, y) / var(x)`` pooled over the arms.

The other metric types, the health checks and the goal/guardrail decision live in :mod:`ab_metrics`,
:mod:`ab_health` and :mod:`ab_decision`; :func:`judge` brings them together for one experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from helpers.analysis import ab_decision as D
from helpers.analysis import ab_metrics as M
from helpers.canonical.transactions import purchases
from helpers.core.errors import WorkbenchError


class ExperimentError(WorkbenchError, ValueError):
    """The experiment table cannot be analysed as given."""


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _arm_name(value) -> str:
    """An arm's name as text: 0/1 codes, 1.0 floats and strings all compare alike.

    >>> _arm_name(1), _arm_name(1.0), _arm_name(" b ")
    ('1', '1', ' b ')
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_binary(df: pd.DataFrame, metric: str, source: str) -> None:
    """A conversion metric must be 0/1: anything else is refused with what to do instead."""
    values = pd.to_numeric(df[metric], errors="coerce").dropna()
    other = sorted(set(values.unique()) - {0, 1})
    if other:
        raise ExperimentError(f"{source}, column {metric!r}: a conversion metric must be 0 or 1 for every unit, but it "
                              f"holds {other[:3]}; analyse it as a mean instead (set revenue_metric={metric} and pick a "
                              "0/1 column as metric)")


def check_experiment(df: pd.DataFrame, variant: str, control: str, metrics: list[str], source: str = "table",
                     unit: str | None = None) -> None:
    """Raise :class:`ExperimentError` naming the problem: missing columns, a unit listed twice, a missing control
    arm, a single arm, variant names padded with spaces, missing metric values, or a metric that is zero for
    everyone."""
    missing = [c for c in [variant, *metrics, *([unit] if unit else [])] if c not in df.columns]
    if missing:
        raise ExperimentError(f"{source}: missing column(s) {missing}; expected a variant column {variant!r} and "
                              f"metric columns {metrics}")
    if unit and df[unit].duplicated().any():
        row = int(np.flatnonzero(df[unit].duplicated().to_numpy())[0])
        raise ExperimentError(f"{source}, column {unit!r}, row {row}: unit {df[unit].iloc[row]} appears more than "
                              "once; expected one row per unit (aggregate repeated events per unit first)")
    names = df[variant].dropna().map(_arm_name)
    padded = sorted({v for v in df[variant].dropna().astype(str).unique() if v != v.strip()})
    if padded:
        raise ExperimentError(f"{source}, column {variant!r}: variant names with leading or trailing spaces "
                              f"{padded!r} would be counted as separate arms; expected trimmed names")
    if df[variant].isna().any():
        row = int(np.flatnonzero(df[variant].isna().to_numpy())[0])
        raise ExperimentError(f"{source}, column {variant!r}, row {row}: missing variant; expected every unit "
                              "to be assigned to an arm")
    arms = sorted(names.unique())
    control = _arm_name(control)
    if control not in arms:
        raise ExperimentError(f"{source}, column {variant!r}: control arm {control!r} not found; arms are {arms}")
    if len(arms) < 2:
        raise ExperimentError(f"{source}, column {variant!r}: only one arm ({arms[0]!r}); expected a control and "
                              "at least one treatment")
    for m in metrics:
        values = pd.to_numeric(df[m], errors="coerce")
        bad = values.isna() & df[m].notna() | df[m].isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ExperimentError(f"{source}, column {m!r}, row {row}: missing or non-numeric value "
                                  f"{df[m].iloc[row]!r}; expected a number for every unit (0 when nothing "
                                  "happened)")
        if (values == 0).all():
            raise ExperimentError(f"{source}, column {m!r}: the metric is 0 for every unit, so there is nothing "
                                  "to compare; check the metric and the tracking")


# ---------------------------------------------------------------------------
# Sample ratio mismatch
# ---------------------------------------------------------------------------


def srm_test(counts: pd.Series, intended: dict[str, float] | None = None, threshold: float = 0.001) -> dict:
    """Chi-square goodness-of-fit of the units per arm against the intended split (equal when not given).

    >>> round(srm_test(pd.Series({"a": 44700, "b": 45489}))["p_value"], 4)
    0.0086
    """
    counts = counts.astype(float)
    share = pd.Series(intended if intended else {k: 1.0 for k in counts.index}, dtype=float).reindex(counts.index)
    if share.isna().any():
        raise ExperimentError(f"intended split {intended} does not cover the arms {list(counts.index)}")
    expected = share / share.sum() * counts.sum()
    chi2, p = stats.chisquare(counts.to_numpy(), expected.to_numpy())
    return {"chi2": float(chi2), "p_value": float(p), "mismatch": bool(p < threshold),
            "observed": counts.astype(int).to_dict(), "expected": expected.round(1).to_dict()}


# ---------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------


def conversion_test(x_c: int, n_c: int, x_t: int, n_t: int, alpha: float = 0.05) -> dict:
    """Two-proportion z-test (pooled SE), absolute lift with a Wald CI (unpooled SE), and the relative lift
    with a delta-method CI: Var(p_t/p_c) ≈ Var(p_t)/p_c² + p_t² Var(p_c)/p_c⁴."""
    p_c, p_t = x_c / n_c, x_t / n_t
    pooled = (x_c + x_t) / (n_c + n_t)
    se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    z = (p_t - p_c) / se_pooled if se_pooled > 0 else 0.0
    p_value = float(2 * stats.norm.sf(abs(z)))
    var_c, var_t = p_c * (1 - p_c) / n_c, p_t * (1 - p_t) / n_t
    se = np.sqrt(var_c + var_t)
    q = stats.norm.ppf(1 - alpha / 2)
    diff = p_t - p_c
    rel = p_t / p_c - 1 if p_c > 0 else np.nan
    se_rel = np.sqrt(var_t / p_c**2 + p_t**2 * var_c / p_c**4) if p_c > 0 else np.nan
    return {"control_rate": p_c, "treatment_rate": p_t, "diff": diff, "diff_ci": (diff - q * se, diff + q * se),
            "relative_lift": rel, "relative_ci": (rel - q * se_rel, rel + q * se_rel), "z": float(z),
            "p_value": p_value, "n_control": int(n_c), "n_treatment": int(n_t)}


# ---------------------------------------------------------------------------
# Continuous metrics
# ---------------------------------------------------------------------------


def mean_test(y_c: np.ndarray, y_t: np.ndarray, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> dict:
    """Welch's t-test, Mann-Whitney U and a percentile bootstrap CI for the difference in means."""
    y_c, y_t = np.asarray(y_c, dtype=float), np.asarray(y_t, dtype=float)
    welch = stats.ttest_ind(y_t, y_c, equal_var=False)
    ci = welch.confidence_interval(1 - alpha)
    mw = stats.mannwhitneyu(y_t, y_c, alternative="two-sided")
    rng = np.random.default_rng(seed)
    boots = np.array([rng.choice(y_t, y_t.size).mean() - rng.choice(y_c, y_c.size).mean() for _ in range(n_boot)])
    m_c, m_t = y_c.mean(), y_t.mean()
    return {"control_mean": float(m_c), "treatment_mean": float(m_t), "diff": float(m_t - m_c),
            "welch_ci": (float(ci.low), float(ci.high)), "welch_t": float(welch.statistic),
            "welch_se": float(np.sqrt(y_t.var(ddof=1) / y_t.size + y_c.var(ddof=1) / y_c.size)),
            "welch_p": float(welch.pvalue), "welch_df": float(welch.df), "mann_whitney_u": float(mw.statistic),
            "mann_whitney_p": float(mw.pvalue),
            "bootstrap_ci": (float(np.quantile(boots, alpha / 2)), float(np.quantile(boots, 1 - alpha / 2))),
            "relative_lift": float(m_t / m_c - 1) if m_c else np.nan}


def ratio_metric(num_c, den_c, num_t, den_t, alpha: float = 0.05) -> dict:
    """Ratio of sums per arm (e.g. revenue per order) with delta-method standard errors.

    Var(R) ≈ (Var(Y) − 2R Cov(X, Y) + R² Var(X)) / (n X̄²) for R = ΣY / ΣX over the arm's n units.
    """
    def ratio(num, den):
        num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
        n, mx = len(num), den.mean()
        r = num.sum() / den.sum()
        var = (num.var(ddof=1) - 2 * r * np.cov(num, den, ddof=1)[0, 1] + r**2 * den.var(ddof=1)) / (n * mx**2)
        return r, var

    r_c, v_c = ratio(num_c, den_c)
    r_t, v_t = ratio(num_t, den_t)
    se = np.sqrt(v_c + v_t)
    q = stats.norm.ppf(1 - alpha / 2)
    z = (r_t - r_c) / se
    return {"control_ratio": r_c, "treatment_ratio": r_t, "diff": r_t - r_c, "diff_ci": (r_t - r_c - q * se,
            r_t - r_c + q * se), "z": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))}


def cuped(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """CUPED adjustment with the pre-period covariate ``x``: returns (adjusted y, theta, variance reduction)."""
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    vx = x.var(ddof=1)
    theta = float(np.cov(x, y, ddof=1)[0, 1] / vx) if vx > 0 else 0.0
    adjusted = y - theta * (x - x.mean())
    reduction = 1 - adjusted.var(ddof=1) / y.var(ddof=1) if y.var(ddof=1) > 0 else 0.0
    return adjusted, theta, float(reduction)


# ---------------------------------------------------------------------------
# Bayesian
# ---------------------------------------------------------------------------


def beta_binomial(x_c: int, n_c: int, x_t: int, n_t: int, prior: tuple[float, float] = (1.0, 1.0),
                  draws: int = 200_000, seed: int = 0) -> dict:
    """Beta posteriors per arm: chance that the treatment's rate beats the control's, and the expected loss
    (rate given up, in absolute terms) of choosing each arm."""
    rng = np.random.default_rng(seed)
    pc = rng.beta(prior[0] + x_c, prior[1] + n_c - x_c, draws)
    pt = rng.beta(prior[0] + x_t, prior[1] + n_t - x_t, draws)
    return {"chance_to_beat_control": float((pt > pc).mean()),
            "expected_loss_treatment": float(np.maximum(pc - pt, 0).mean()),
            "expected_loss_control": float(np.maximum(pt - pc, 0).mean()),
            "credible_interval": tuple(np.quantile(pt - pc, [0.025, 0.975]).tolist())}


def chance_to_beat_exact(x_c: int, n_c: int, x_t: int, n_t: int, prior: tuple[float, float] = (1.0, 1.0)) -> float:
    """P(p_t > p_c) for Beta posteriors by numerical integration (reference for the Monte Carlo estimate)."""
    from scipy.integrate import quad

    a_c, b_c = prior[0] + x_c, prior[1] + n_c - x_c
    a_t, b_t = prior[0] + x_t, prior[1] + n_t - x_t
    lo = min(stats.beta.ppf(1e-10, a_c, b_c), stats.beta.ppf(1e-10, a_t, b_t))
    hi = max(stats.beta.ppf(1 - 1e-10, a_c, b_c), stats.beta.ppf(1 - 1e-10, a_t, b_t))
    val, _ = quad(lambda p: stats.beta.pdf(p, a_c, b_c) * stats.beta.sf(p, a_t, b_t), lo, hi, limit=200,
                  points=[a_c / (a_c + b_c)])
    return float(val)


def normal_posterior(diff: float, se: float) -> dict:
    """Chance to beat control and expected loss for a mean difference with a flat prior (normal approximation).

    With D ~ N(diff, se²): chance = Φ(diff/se); loss of choosing the treatment = E[max(−D, 0)]
    = se·φ(diff/se) − diff·Φ(−diff/se).
    """
    z = diff / se if se > 0 else np.inf * np.sign(diff)
    return {"chance_to_beat_control": float(stats.norm.cdf(z)),
            "expected_loss_treatment": float(se * stats.norm.pdf(z) - diff * stats.norm.cdf(-z)),
            "expected_loss_control": float(se * stats.norm.pdf(z) + diff * stats.norm.cdf(z))}


# ---------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------


def sample_size_per_arm(base_rate: float, relative_mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per arm to detect a relative lift of ``relative_mde`` on ``base_rate`` (two-sided, Cohen's h)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    h = proportion_effectsize(base_rate * (1 + relative_mde), base_rate)
    return int(np.ceil(NormalIndPower().solve_power(effect_size=abs(h), alpha=alpha, power=power, ratio=1.0)))


def minimum_detectable_lift(base_rate: float, n_per_arm: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest relative lift on ``base_rate`` detectable with ``n_per_arm`` units per arm."""
    from scipy.optimize import brentq
    from statsmodels.stats.power import NormalIndPower

    h = NormalIndPower().solve_power(nobs1=n_per_arm, alpha=alpha, power=power, ratio=1.0)
    # invert Cohen's h: h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0))
    target = np.sin(np.arcsin(np.sqrt(base_rate)) + h / 2) ** 2
    return float(brentq(lambda lift: base_rate * (1 + lift) - target, 0.0, 1 / base_rate - 1))


def planner(base_rate: float, lifts: list[float], alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Units per arm for a range of relative lifts."""
    return pd.DataFrame({"relative_lift": lifts,
                         "units_per_arm": [sample_size_per_arm(base_rate, x, alpha, power) for x in lifts]})


# ---------------------------------------------------------------------------
# Multiple variants and segments
# ---------------------------------------------------------------------------


def adjust(p_values: list[float], alpha: float = 0.05) -> pd.DataFrame:
    """Holm (family-wise error) and Benjamini-Hochberg (false discovery rate) adjusted p-values."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    holm = multipletests(p, alpha=alpha, method="holm")[1]
    bh = multipletests(p, alpha=alpha, method="fdr_bh")[1]
    return pd.DataFrame({"p_value": p, "p_holm": holm, "p_bh": bh})


def compare_arms(df: pd.DataFrame, variant: str, control: str, metric: str, alpha: float = 0.05) -> pd.DataFrame:
    """Each arm against control on a 0/1 metric, with Holm and BH adjustments across the comparisons."""
    g = df.groupby(variant)[metric].agg(["sum", "count"])
    rows = []
    for arm in [a for a in g.index if a != control]:
        r = conversion_test(int(g.at[control, "sum"]), int(g.at[control, "count"]), int(g.at[arm, "sum"]),
                            int(g.at[arm, "count"]), alpha)
        b = beta_binomial(int(g.at[control, "sum"]), int(g.at[control, "count"]), int(g.at[arm, "sum"]),
                          int(g.at[arm, "count"]))
        rows.append({"arm": arm, "n": r["n_treatment"], "rate": r["treatment_rate"], "control_rate": r["control_rate"],
                     "diff": r["diff"], "ci_low": r["diff_ci"][0], "ci_high": r["diff_ci"][1],
                     "relative_lift": r["relative_lift"], "rel_ci_low": r["relative_ci"][0],
                     "rel_ci_high": r["relative_ci"][1], "z": r["z"], "p_value": r["p_value"],
                     "chance_to_beat_control": chance_to_beat_exact(
                         int(g.at[control, "sum"]), int(g.at[control, "count"]), int(g.at[arm, "sum"]),
                         int(g.at[arm, "count"])),
                     "expected_loss": b["expected_loss_treatment"]})
    out = pd.DataFrame(rows)
    adj = adjust(out["p_value"].tolist(), alpha)
    out["p_holm"], out["p_bh"] = adj["p_holm"].to_numpy(), adj["p_bh"].to_numpy()
    out["significant"] = out["p_holm"] < alpha
    return out


def segment_effects(df: pd.DataFrame, variant: str, control: str, treatment: str, metric: str, segment: str,
                    alpha: float = 0.05, min_units: int = 30) -> pd.DataFrame:
    """Treatment vs control on a 0/1 metric within each segment, BH-adjusted across segments."""
    rows = []
    for name, part in df.dropna(subset=[segment]).groupby(segment):
        g = part.groupby(variant)[metric].agg(["sum", "count"])
        if control not in g.index or treatment not in g.index or g["count"].min() < min_units:
            continue
        r = conversion_test(int(g.at[control, "sum"]), int(g.at[control, "count"]), int(g.at[treatment, "sum"]),
                            int(g.at[treatment, "count"]), alpha)
        rows.append({"segment": name, "n": int(g["count"].sum()), "control_rate": r["control_rate"],
                     "treatment_rate": r["treatment_rate"], "diff": r["diff"], "ci_low": r["diff_ci"][0],
                     "ci_high": r["diff_ci"][1], "p_value": r["p_value"]})
    out = pd.DataFrame(rows)
    if len(out):
        out["p_bh"] = adjust(out["p_value"].tolist(), alpha)["p_bh"].to_numpy()
    return out


# ---------------------------------------------------------------------------
# Sequential monitoring
# ---------------------------------------------------------------------------


def confidence_sequence(diff: np.ndarray, var: np.ndarray, alpha: float = 0.05, tau: float = 0.02
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Always-valid (normal-mixture / mixture-SPRT) confidence sequence for a difference estimated with
    variance ``var`` at each look: half-width = sqrt(2 v (v + τ²)/τ² · (log(1/α) + ½ log((v + τ²)/v))).

    Unlike a fixed-sample CI, the whole sequence covers the true difference with probability 1 − α, so the
    test may be stopped the first time it excludes zero. ``tau`` is the scale of effects expected.
    """
    v = np.asarray(var, dtype=float)
    half = np.sqrt(2 * v * (v + tau**2) / tau**2 * (np.log(1 / alpha) + 0.5 * np.log((v + tau**2) / v)))
    return np.asarray(diff) - half, np.asarray(diff) + half


def monitoring_path(df: pd.DataFrame, variant: str, control: str, treatment: str, metric: str,
                    order: str | None = None, looks: int = 40, alpha: float = 0.05, tau: float | None = None,
                    seed: int = 0) -> pd.DataFrame:
    """Difference, fixed-sample CI and confidence sequence after each of ``looks`` equally spaced looks at the
    units in order of ``order`` (e.g. enrolment time) — what a monitor of the running test would have seen."""
    d = df[df[variant].isin([control, treatment])]
    # Without an arrival order (e.g. an e-mail sent to everyone at once) the units are replayed in a random
    # order, as a continuously enrolling test would have seen them.
    d = d.sort_values(order, kind="stable") if order else d.sample(frac=1.0, random_state=seed)
    is_t = (d[variant] == treatment).to_numpy()
    y = d[metric].astype(float).to_numpy()
    n = len(d)
    base = y[~is_t].mean()
    tau = tau if tau is not None else max(0.1 * base, 1e-3)
    rows = []
    q = stats.norm.ppf(1 - alpha / 2)
    for k in np.unique(np.linspace(n / looks, n, looks).astype(int)):
        t, c = y[:k][is_t[:k]], y[:k][~is_t[:k]]
        if len(t) < 10 or len(c) < 10:
            continue
        diff = t.mean() - c.mean()
        var = t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c)
        if var <= 0:
            continue
        lo, hi = confidence_sequence(np.array([diff]), np.array([var]), alpha, tau)
        rows.append({"units": int(k), "diff": diff, "ci_low": diff - q * np.sqrt(var), "ci_high": diff + q * np.sqrt(var),
                     "cs_low": float(lo[0]), "cs_high": float(hi[0])})
    return pd.DataFrame(rows)


def monitoring_sentence(path: pd.DataFrame) -> str:
    excl = path[(path["cs_low"] > 0) | (path["cs_high"] < 0)]
    last = path.iloc[-1]
    final_sig = bool(last["ci_low"] > 0 or last["ci_high"] < 0)
    if len(excl):
        first = int(excl["units"].iloc[0])
        return (f"The always-valid confidence sequence excluded zero from {first:,} units on "
                f"({first / last['units']:.0%} of the final sample): a monitor could have stopped the test there "
                "and still trusted the result.")
    if final_sig:
        return ("At the planned sample size the fixed-sample test is significant, but the always-valid sequence "
                "never excluded zero: someone watching the test continuously could not have stopped it early with "
                "confidence. Run tests to their planned size, or monitor with the sequence.")
    return ("Neither the fixed-sample interval at the end nor the always-valid sequence excludes zero: there was no "
            "point at which stopping for a winner would have been justified.")


# ---------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------


VERDICTS = D.VERDICTS
Decision = D.Decision


def default_specs(units: pd.DataFrame, metric: str, revenue: str | None = None, covariate: str | None = None,
                  target_mde: float | None = None) -> list[M.MetricSpec]:
    """The metrics an experiment is judged on when the analyst declares none: the primary 0/1 metric as the goal
    (with ``target_mde``, relative) and, when the data has it, revenue per unit as a guardrail (CUPED on
    ``covariate``): a variant that lifts clicks but loses money is not a winner."""
    specs = [M.MetricSpec(metric.replace("_", " "), "proportion", metric, target_mde=target_mde)]
    if revenue and revenue in units and revenue != metric:
        specs.append(M.MetricSpec(f"{revenue.replace('_', ' ')} per unit", "mean", revenue, role="guardrail",
                                  pre=covariate if covariate and covariate in units else None))
    return specs


def srm_reason(srm: dict) -> str:
    return (f"sample-ratio mismatch (χ² p = {srm['p_value']:.2g}): the arms did not receive the intended split")


def judge(units: pd.DataFrame, variant: str, control: str, metric: str, intended: dict | None, alpha: float = 0.05,
          order: str | None = None, value_col: str | None = None, currency: str = "", seed: int = 0,
          specs: list[M.MetricSpec] | None = None, blocked: list[str] | None = None, correction: str = "holm",
          exact_below: int = M.EXACT_BELOW, exact_test: str = "boschloo", winsor_upper: float = 0.999,
          covariate: str | None = None, target_mde: float | None = None
          ) -> tuple[pd.DataFrame, dict, float, pd.DataFrame, Decision, pd.DataFrame]:
    """Everything a decision needs for one experiment: the comparisons on the primary metric, the SRM test, the
    minimum detectable lift, the monitoring path of the best arm, the :mod:`ab_decision` verdict on the declared
    metrics (``specs``; :func:`default_specs` otherwise) gated by SRM and the other failed checks in ``blocked``,
    and the per-metric results behind it."""
    comparisons = compare_arms(units, variant, control, metric, alpha)
    srm = srm_test(units[variant].value_counts(), intended)
    base = float(units.loc[units[variant] == control, metric].mean())
    n_min = int(units[variant].value_counts().min())
    mde = minimum_detectable_lift(base, n_min, alpha) if 0 < base < 1 else float("nan")
    best_arm = comparisons.sort_values("diff", ascending=False).iloc[0]["arm"]
    path = monitoring_path(units, variant, control, best_arm, metric, order, 40, alpha, seed=seed)
    value = None
    if value_col and value_col in units:
        conv = units[(units[variant] == control) & (units[metric] > 0)]
        value = float(conv[value_col].mean()) if len(conv) else None
    audience = int(len(units) / max(units[variant].nunique(), 1))
    specs = specs or default_specs(units, metric, value_col, covariate, target_mde)
    results = D.evaluate(units, variant, control, specs, alpha, correction, exact_below, exact_test, winsor_upper)
    reasons = ([srm_reason(srm)] if srm["mismatch"] else []) + [r for r in (blocked or []) if "sample ratio (all" not in r]
    decision = D.decide(results, alpha, reasons, audience, value, currency)
    return comparisons, srm, mde, path, decision, results


# ---------------------------------------------------------------------------
# The workbench's campaign experiments
# ---------------------------------------------------------------------------


def campaign_experiments(campaigns: pd.DataFrame) -> pd.DataFrame:
    """The A/B-test campaigns with their intended split (parsed from JSON)."""
    import json

    ab = campaigns[campaigns["experiment"].notna()].copy()
    def parse(value) -> dict | None:
        # Stored as JSON text in the CSV; Parquet round trips may turn it into a struct whose keys are the union
        # over all campaigns, with None for arms the campaign does not have.
        if isinstance(value, str):
            value = json.loads(value) if value else None
        return {k: float(v) for k, v in value.items() if v is not None} if isinstance(value, dict) else None

    # A list, not Series.map: pandas would turn the dicts back into one struct column.
    ab["intended_split"] = pd.Series([parse(v) for v in ab["intended_split"]], index=ab.index, dtype=object)
    return ab.sort_values("sent_at").reset_index(drop=True)


def campaign_units(sends: pd.DataFrame, campaigns: pd.DataFrame, orders: pd.DataFrame | None, experiment: str,
                   pre_days: int = 90) -> pd.DataFrame:
    """One row per recipient of ``experiment``: variant, 0/1 opened, clicked and converted, attributed revenue,
    and pre-period covariates for CUPED (opens of earlier e-mails and net order revenue in the ``pre_days``
    before the send).

    The unit is the address the e-mail went to (its account, or its e-mail address when there is no account),
    because that is what the e-mail tool randomised; two accounts of one person are two units. A recipient who
    got the test twice keeps the first send (the count is in ``units.attrs["repeated_sends"]``).
    """
    ab = campaign_experiments(campaigns)
    match = ab[ab["experiment"] == experiment]
    if match.empty:
        raise ExperimentError(f"campaigns: no A/B test named {experiment!r}; found {ab['experiment'].tolist()}")
    camp = match.iloc[0]
    s = sends[sends["campaign_id"] == camp["campaign_id"]].sort_values("sent_at", kind="stable")
    col = lambda name: s[name] if name in s else pd.Series(pd.NA, index=s.index)  # noqa: E731
    unit = col("customer_id").astype("string").fillna(col("email").astype("string"))
    if "send_id" in s:
        unit = unit.fillna(s["send_id"].astype("string"))
    units = pd.DataFrame({"unit_id": unit.to_numpy(), "customer_key": col("customer_key").to_numpy(),
                          "variant": s["variant"].astype(str).to_numpy(), "sent_at": s["sent_at"].to_numpy()})
    # Only the outcomes the data records become metrics: a missing column is not a column of zeros.
    if "opened_at" in s:
        units["opened"] = s["opened_at"].notna().astype(int).to_numpy()
    if "clicked_at" in s:
        units["clicked"] = s["clicked_at"].notna().astype(int).to_numpy()
    if "converted" in s:
        units["converted"] = s["converted"].fillna(False).astype(bool).astype(int).to_numpy()
    if "revenue" in s:
        units["revenue"] = pd.to_numeric(s["revenue"], errors="coerce").fillna(0.0).to_numpy()
    repeated = int(units["unit_id"].duplicated().sum())
    units = units.drop_duplicates("unit_id", keep="first").reset_index(drop=True)
    start = pd.Timestamp(camp["sent_at"]) - pd.Timedelta(days=pre_days)
    before = sends[(sends["sent_at"] < camp["sent_at"]) & (sends["sent_at"] >= start)]
    opens = before.groupby("customer_key")["opened_at"].count() if "opened_at" in before else pd.Series(dtype=float)
    units["pre_opens"] = units["customer_key"].map(opens).fillna(0).astype(float)
    if orders is not None and "revenue" in units:
        done = purchases(orders)
        done = done[(done["order_date"] < camp["sent_at"]) & (done["order_date"] >= start)]
        units["pre_revenue"] = units["customer_key"].map(done.groupby("customer_key")["net"].sum()).fillna(0.0)
    units.attrs.update({"experiment": experiment, "campaign_id": camp["campaign_id"],
                        "name": camp["name"] if pd.notna(camp.get("name")) else experiment,
                        "intended_split": camp["intended_split"], "repeated_sends": repeated,
                        "primary_metric": camp.get("primary_metric"), "control_variant": camp.get("control_variant")})
    return units


def read_table(path: str | Path, columns: list[str]) -> pd.DataFrame:
    """A user-supplied experiment table (CSV in any encoding and separator, Parquet, Excel or JSON Lines) with at
    least ``columns``; booleans become 0/1, arm codes become text (so 0/1 arms work)."""
    import tempfile

    from helpers.core.errors import SourceError
    from helpers.sources import readers
    from helpers.sources.catalog import infer_format

    path = Path(path)
    fmt = infer_format(path.name) or "csv"
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "t.parquet"
        try:
            if fmt == "parquet":
                res = readers.read_parquet(path, "experiment", staged)
            elif fmt == "excel":
                res = readers.read_excel(path, "experiment", staged)
            elif fmt == "jsonl":
                res = readers.read_jsonl(path, "experiment", staged)
            else:
                res = readers.read_delimited(path, "experiment", staged)
        except SourceError as exc:
            raise ExperimentError(str(exc)) from None
        df = pd.read_parquet(staged)
    if len(res.unreadable):
        first = res.unreadable.iloc[0]
        raise ExperimentError(f"{path.name}, row {first['_row']}: {first['reason']} ({len(res.unreadable)} unreadable "
                              "record(s)); fix the file so that every unit is counted")
    df = df.drop(columns=readers.ROW)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ExperimentError(f"{path.name}: missing column(s) {missing}; the file has {list(df.columns)}")
    for c in df.columns:
        s = df[c].astype("string").str.strip()
        low = s.str.lower()
        if low.dropna().isin(["true", "false"]).all() and low.notna().any():
            df[c] = (low == "true").astype("Int64")
            continue
        num = pd.to_numeric(s, errors="coerce")
        df[c] = num if num.notna().sum() == s.notna().sum() and s.notna().any() else s
    df.attrs.update({"name": path.name})
    return df


# ---------------------------------------------------------------------------
# Report helpers
# ---------------------------------------------------------------------------


@dataclass
class Setup:
    """One experiment ready to analyse."""

    units: pd.DataFrame
    name: str
    variant: str
    control: str
    metric: str
    revenue: str | None
    covariate: str | None
    intended: dict | None
    order: str | None
    segment: str | None


SOURCES = ("auto", "campaigns", "assignments", "table")


def choose_source(source: str, available: set[str], table_file: str) -> tuple[str, str]:
    """The experiment source to analyse, and why there is none when there is nothing (``("", reason)``).

    ``auto`` takes a table file when one is given, else the data's experiment assignments, else its e-mail
    campaign tests.
    """
    if source not in SOURCES:
        raise ExperimentError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "auto":
        source = "table" if table_file else "assignments" if "assignments" in available else \
            "campaigns" if "sends" in available else ""
    if not source:
        return "", ("No experiment data in this data set (no experiment assignments, no A/B-tested e-mail "
                    "campaigns, no table_file): A/B analysis skipped.")
    if source == "campaigns" and "sends" not in available:
        return "", "The data has no e-mail sends, so there are no campaign tests to analyse."
    if source == "assignments" and "assignments" not in available:
        return "", "The data has no experiment assignments to analyse."
    return source, ""


def campaign_tests_exist(campaigns: pd.DataFrame | None) -> bool:
    return campaigns is not None and "experiment" in campaigns and campaigns["experiment"].notna().any()


# What step 06 reads of the clean tables that grow with the business (ten million sends at a million customers):
# the columns the units, outcomes and pre-period covariates are built from. Other tables are read whole.
LOAD_COLUMNS = {
    "sends": ["send_id", "campaign_id", "customer_id", "email", "customer_key", "variant", "sent_at", "opened_at",
              "clicked_at", "converted", "revenue"],
    "orders": ["order_id", "customer_key", "order_date", "net", "is_cancelled", "is_reversal"],
}


def with_campaigns(tables: dict[str, pd.DataFrame | None]) -> dict[str, pd.DataFrame | None]:
    """The tables with a campaigns table: the data's own, or, when it has none, one derived from the sends, where
    every campaign sent in two or more variants is an A/B test named after the campaign."""
    sends = tables.get("sends")
    if tables.get("campaigns") is not None or sends is None or "variant" not in sends:
        return tables
    g = sends.dropna(subset=["variant"]).groupby("campaign_id")
    camp = pd.DataFrame({"campaign_id": g.size().index, "sent_at": g["sent_at"].min().to_numpy(),
                         "variants": g["variant"].nunique().to_numpy()})
    camp["experiment"] = camp["campaign_id"].where(camp["variants"] >= 2)
    camp["name"] = camp["campaign_id"]
    camp["intended_split"] = None
    return {**tables, "campaigns": camp.drop(columns="variants")}


def assignment_units(assignments: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """The units of one experiment from the canonical assignments table (the latest experiment when empty)."""
    a = assignments
    if "experiment" in a and a["experiment"].notna().any():
        names = a.dropna(subset=["experiment"]).sort_values("assigned_at" if "assigned_at" in a else "experiment")
        name = experiment or str(names["experiment"].iloc[-1])
        if name not in set(a["experiment"].dropna()):
            raise ExperimentError(f"assignments: no experiment named {name!r}; found "
                                  f"{sorted(a['experiment'].dropna().unique())}")
        units = a[a["experiment"] == name].copy()
    else:
        name, units = experiment or "experiment", a.copy()
    units = units.reset_index(drop=True)
    units["variant"] = units["variant"].astype(str).str.strip()
    units.attrs.update({"name": name, "experiment": name})
    return units


def prepare(source: str, tables: dict[str, pd.DataFrame] | None, experiment: str, table_file: str | Path,
            variant: str, control: str, metric: str, revenue: str, covariate: str, intended: dict, order: str,
            segment: str, segments: pd.DataFrame | None = None, unit: str = "") -> Setup:
    """Load and check the experiment named by the parameters (see notebook 06)."""
    if source == "campaigns":
        ab = campaign_experiments(tables["campaigns"])
        if ab.empty:
            raise ExperimentError("campaigns: no campaign is an A/B test (no experiment names)")
        name = experiment or str(ab["experiment"].iloc[-1])
        units = campaign_units(tables["sends"], tables["campaigns"], tables.get("orders"), name)
        variant = "variant"
        declared = _declared(name, units)
        control = control or declared["control"]
        metric = metric or declared["metric"]
        intended = intended or units.attrs["intended_split"]
        title = f"{units.attrs['name']} ({name})" if units.attrs["name"] != name else name
        unit = "unit_id"
    elif source == "assignments":
        units = assignment_units(tables["assignments"], experiment)
        variant, unit, title = "variant", "unit_id", units.attrs["name"]
        metric = metric or _first_binary(units)
        control = control or sorted(units["variant"].unique())[0]
    elif source == "table":
        units = read_table(table_file, [c for c in [unit, variant, metric] if c])
        title = units.attrs["name"]
        order = order if order in units else ""
    else:
        raise ExperimentError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if segments is not None and segment and "customer_key" in units and segment not in units:
        units[segment] = units["customer_key"].map(segments.set_index("customer_key")[segment])
    revenue = revenue if revenue and revenue in units else ""
    covariate = covariate if covariate and covariate in units else ""
    metrics = [m for m in [metric, revenue, covariate] if m]
    check_experiment(units, variant, control, metrics, source=title, unit=unit or None)
    check_binary(units, metric, title)
    units[variant] = units[variant].map(_arm_name)
    control = _arm_name(control)
    intended = {_arm_name(k): v for k, v in intended.items()} if intended else intended
    return Setup(units, title, variant, control, metric, revenue or None, covariate or None, intended or None,
                 order or None, segment if segment and segment in units else None)


def _first_binary(units: pd.DataFrame) -> str:
    for c in units.columns:
        if c in ("unit_id", "variant", "experiment", "customer_id", "customer_key", "assigned_at") or c.startswith("_"):
            continue
        v = pd.to_numeric(units[c], errors="coerce")
        if v.notna().all() and set(v.unique()) <= {0, 1}:
            return c
    raise ExperimentError("assignments: no 0/1 outcome column to analyse; set the metric parameter")


def _declared(name: str, units: pd.DataFrame) -> dict:
    """Control arm and primary metric a campaign test declared: the campaign's ``control_variant`` and
    ``primary_metric`` when the data has them; otherwise the first arm of the intended split, and opens for a
    subject-line test (the subject only changes whether the e-mail is opened), clicks for any other."""
    split = units.attrs.get("intended_split") or {}
    declared_control = units.attrs.get("control_variant")
    control = (str(declared_control) if isinstance(declared_control, str) and declared_control else
               next(iter(split)) if split else sorted(units["variant"].unique())[0])
    declared_metric = units.attrs.get("primary_metric")
    metric = (str(declared_metric) if isinstance(declared_metric, str) and declared_metric in
              ("opened", "clicked", "converted") else "opened" if "subject" in name.lower() else "clicked")
    if metric not in units:  # the data records fewer outcomes: judge on what it has
        metric = next((m for m in ("clicked", "opened", "converted") if m in units), metric)
    return {"control": control, "metric": metric}


def overview(tables: dict[str, pd.DataFrame], alpha: float = 0.05) -> pd.DataFrame:
    """Every campaign A/B test in the data: arms, units, primary metric, SRM and the decision."""
    rows = []
    for name in campaign_experiments(tables["campaigns"])["experiment"]:
        units = campaign_units(tables["sends"], tables["campaigns"], tables.get("orders"), name)
        d = _declared(name, units)
        comp, srm, mde, _, decision, _ = judge(units, "variant", d["control"], d["metric"],
                                               units.attrs["intended_split"], alpha, value_col="revenue",
                                               covariate="pre_revenue")
        best = comp.sort_values("diff", ascending=False).iloc[0]
        rows.append({"experiment": name, "test": units.attrs["name"], "units": len(units),
                     "arms": units["variant"].nunique(), "metric": d["metric"], "SRM p": srm["p_value"],
                     "best arm": best["arm"], "lift": best["relative_lift"], "Holm p": best["p_holm"],
                     "decision": decision.verdict, "why": decision.blocked_by})
    return pd.DataFrame(rows)


def overview_display(experiments: pd.DataFrame) -> pd.DataFrame:
    """:func:`overview` as a stakeholder reads it: lifts in %, p-values to three figures."""
    out = experiments.copy()
    out["lift"] = [f"{v:+.1%}" if pd.notna(v) else "–" for v in out["lift"]]
    for col in ("SRM p", "Holm p"):
        out[col] = [f"{v:.3g}" for v in out[col]]
    return out.drop(columns=["experiment"]).rename(columns={"test": "experiment"})


def srm_message(srm: dict, name: str) -> tuple[str, str]:
    """(callout kind, text) for the sample-ratio check."""
    obs = ", ".join(f"{k}: {v:,}" for k, v in srm["observed"].items())
    expected = ", ".join(f"{k}: {float(v):,.0f}" for k, v in dict(srm["expected"]).items())
    if srm["mismatch"]:
        return "alarm", (f"**Sample-ratio mismatch in {name}** (χ² p = {srm['p_value']:.2g} < 0.001): the arms "
                           f"received {obs} units, against {expected} expected. Assignment or tracking is "
                           "broken; do not trust the results below until the cause is found.")
    return "info", (f"**Sample ratio OK** (χ² p = {srm['p_value']:.3g}; flagged below 0.001): the arms received "
                    f"{obs} units, as intended.")


def revenue_table(units: pd.DataFrame, variant: str, control: str, revenue: str, covariate: str | None,
                  alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Revenue per unit for each arm against control: Welch, Mann-Whitney, bootstrap CI, CUPED and Bayesian."""
    y_c = units.loc[units[variant] == control, revenue].to_numpy(dtype=float)
    adjusted = None
    if covariate:
        adjusted, theta, reduction = cuped(units[revenue].to_numpy(dtype=float), units[covariate].to_numpy(dtype=float))
    rows = []
    for arm in sorted(a for a in units[variant].unique() if a != control):
        y_t = units.loc[units[variant] == arm, revenue].to_numpy(dtype=float)
        r = mean_test(y_c, y_t, alpha, seed=seed)
        posterior = normal_posterior(r["diff"], r["welch_se"])
        row = {"arm": arm, "control_mean": r["control_mean"], "arm_mean": r["treatment_mean"], "diff": r["diff"],
               "welch_low": r["welch_ci"][0], "welch_high": r["welch_ci"][1], "welch_p": r["welch_p"],
               "mann_whitney_p": r["mann_whitney_p"], "boot_low": r["bootstrap_ci"][0],
               "boot_high": r["bootstrap_ci"][1],
               "chance_to_beat_control": posterior["chance_to_beat_control"],
               "expected_loss": posterior["expected_loss_treatment"]}
        if adjusted is not None:
            a_c = adjusted[(units[variant] == control).to_numpy()]
            a_t = adjusted[(units[variant] == arm).to_numpy()]
            w = stats.ttest_ind(a_t, a_c, equal_var=False)
            ci = w.confidence_interval(1 - alpha)
            row.update({"cuped_low": float(ci.low), "cuped_high": float(ci.high), "cuped_p": float(w.pvalue),
                        "variance_reduction": reduction})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_arms(units: pd.DataFrame, variant: str, metric: str, alpha: float = 0.05):
    """Rate per arm with its confidence interval."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, percent

    g = units.groupby(variant)[metric].agg(["mean", "count"])
    q = stats.norm.ppf(1 - alpha / 2)
    err = q * np.sqrt(g["mean"] * (1 - g["mean"]) / g["count"])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(g.index, g["mean"], yerr=err, capsize=8, color=PALETTE[0])
    for x, (m, e) in enumerate(zip(g["mean"], err)):
        ax.text(x, m + e, f"{m:.1%}", ha="center", va="bottom", fontsize=11)
    ax.set_ylim(0, float((g["mean"] + err).max()) * 1.18)  # headroom, so the top label clears the title
    percent(ax, decimals=0)
    label(ax, f"{metric.replace('_', ' ').capitalize()} rate by arm ({1 - alpha:.0%} CI)", "Arm",
          f"{metric.replace('_', ' ').capitalize()} rate (%)")
    return fig


def plot_monitoring(path: pd.DataFrame, metric: str):
    """Difference over looks with the fixed-sample CI and the always-valid confidence sequence."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, thousands

    fig, ax = plt.subplots(figsize=(9, 4))
    x = path["units"]
    ax.fill_between(x, path["cs_low"] * 100, path["cs_high"] * 100, color=PALETTE[0], alpha=0.2,
                    label="always-valid confidence sequence")
    ax.plot(x, path["ci_low"] * 100, color=PALETTE[1], ls="--", lw=1, label="fixed-sample 95% CI (invalid when peeking)")
    ax.plot(x, path["ci_high"] * 100, color=PALETTE[1], ls="--", lw=1)
    ax.plot(x, path["diff"] * 100, color=PALETTE[0], lw=2, label="observed difference")
    ax.axhline(0, color="black", lw=0.8)
    thousands(ax, "x")
    # The sequence is very wide for the first units; frame the chart on the fixed-sample interval instead.
    span = max(abs(path["ci_low"].iloc[len(path) // 4:]).max(), abs(path["ci_high"].iloc[len(path) // 4:]).max())
    ax.set_ylim(-2 * span * 100, 2 * span * 100)
    ax.legend(loc="upper right", fontsize=9)
    label(ax, "Monitoring the test as units came in", "Units observed",
          f"Difference in {metric.replace('_', ' ')} rate (percentage points)")
    return fig


def truth_check(setup: Setup, comparisons: pd.DataFrame, truth_experiments: dict | None) -> str | None:
    """Whether the generator's planted differences lie inside the CIs (sample campaigns only)."""
    if not truth_experiments:
        return None
    key = setup.name.rsplit("(", 1)[-1].rstrip(")")
    exp = truth_experiments.get(key)
    if exp is None or setup.metric not in ("opened", "clicked"):
        return None
    rates = exp["true_open_rate"] if setup.metric == "opened" else exp["true_click_rate"]
    parts = []
    for _, row in comparisons.iterrows():
        true = rates[row["arm"]] - rates[setup.control]
        inside = row["ci_low"] <= true <= row["ci_high"]
        parts.append(f"{row['arm']}: planted {true * 100:+.1f} pp, estimated {row['diff'] * 100:+.1f} pp "
                     f"[{row['ci_low'] * 100:+.1f}, {row['ci_high'] * 100:+.1f}] — {'inside' if inside else 'OUTSIDE'}")
    return "**Truth check (synthetic sample):** " + "; ".join(parts) + "."


def arms_caption(comparisons: pd.DataFrame, control: str) -> str:
    best = comparisons.sort_values("diff", ascending=False).iloc[0]
    return (f"{best['arm']} reached {best['rate']:.1%} against {best['control_rate']:.1%} for {control}; the bars "
            "show each arm's rate and its 95% interval, and overlapping intervals mean the difference may be chance.")


def revenue_sentence(table: pd.DataFrame, metric: str) -> str:
    row = table.sort_values("diff", ascending=False).iloc[0]
    text = (f"{row['arm']} changes {metric} per unit by {row['diff']:+.2f} (Welch 95% CI {row['welch_low']:+.2f} to "
            f"{row['welch_high']:+.2f}, p = {row['welch_p']:.3g}; bootstrap {row['boot_low']:+.2f} to "
            f"{row['boot_high']:+.2f}); chance to beat control {row['chance_to_beat_control']:.0%}.")
    if "variance_reduction" in row:
        text += (f" CUPED removed {row['variance_reduction']:.0%} of the variance, giving {row['cuped_low']:+.2f} to "
                 f"{row['cuped_high']:+.2f}.")
    return text


def revenue_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`revenue_table` with intervals as readable ranges, for the report."""
    def rng(lo, hi):
        return [f"{a:+,.2f} to {b:+,.2f}" for a, b in zip(table[lo], table[hi])]

    out = pd.DataFrame({"arm": table["arm"], "control mean": table["control_mean"], "arm mean": table["arm_mean"],
                        "difference": table["diff"], "Welch 95% CI": rng("welch_low", "welch_high"),
                        "Welch p": table["welch_p"], "Mann-Whitney p": table["mann_whitney_p"],
                        "bootstrap 95% CI": rng("boot_low", "boot_high")})
    if "cuped_low" in table:
        out["CUPED 95% CI"] = rng("cuped_low", "cuped_high")
    out["chance to beat control"] = table["chance_to_beat_control"]
    out["expected loss"] = table["expected_loss"]
    return out


def conversion_display(comparisons: pd.DataFrame) -> pd.DataFrame:
    """:func:`compare_arms` with percentages and readable intervals, for the report."""
    c = comparisons
    return pd.DataFrame({
        "arm": c["arm"], "units": c["n"], "rate": [f"{v:.2%}" for v in c["rate"]],
        "control": [f"{v:.2%}" for v in c["control_rate"]],
        "difference (95% CI)": [f"{d * 100:+.2f} ({lo * 100:+.2f} to {hi * 100:+.2f})"
                                for d, lo, hi in zip(c["diff"], c["ci_low"], c["ci_high"])],
        "relative lift (95% CI)": [f"{r:+.1%} ({lo:+.1%} to {hi:+.1%})"
                                   for r, lo, hi in zip(c["relative_lift"], c["rel_ci_low"], c["rel_ci_high"])],
        "p": c["p_value"], "p Holm": c["p_holm"], "p BH": c["p_bh"],
        "chance to beat control": [f"{v:.1%}" for v in c["chance_to_beat_control"]],
        "expected loss": [f"{v * 100:.3f} pp" for v in c["expected_loss"]],
    })


def ratio_table(units: pd.DataFrame, variant: str, control: str, numerator: str, denominator: str,
                alpha: float = 0.05) -> pd.DataFrame:
    """A ratio metric (e.g. revenue per conversion) per arm against control, by the delta method."""
    c = units[units[variant] == control]
    rows = []
    for arm in sorted(a for a in units[variant].unique() if a != control):
        t = units[units[variant] == arm]
        r = ratio_metric(c[numerator], c[denominator], t[numerator], t[denominator], alpha)
        rows.append({"arm": arm, "control": r["control_ratio"], "arm ratio": r["treatment_ratio"],
                     "difference": r["diff"], "95% CI": f"{r['diff_ci'][0]:+,.2f} to {r['diff_ci'][1]:+,.2f}",
                     "p": r["p_value"]})
    return pd.DataFrame(rows)


def step_metrics(setup: Setup, srm: dict, decision: Decision, comparisons: pd.DataFrame, mde: float,
                 experiments: pd.DataFrame | None) -> dict:
    """What report 06 hands to the summary and the index."""
    best_arm = comparisons.sort_values("diff", ascending=False).iloc[0]["arm"]
    return {"experiment": setup.name, "units": len(setup.units), "srm_p": srm["p_value"],
            "srm_mismatch": srm["mismatch"], "decision": decision.verdict, "blocked_by": decision.blocked_by,
            "impact": decision.impact, "best_arm": str(best_arm), "comparisons": comparisons.to_dict(orient="records"),
            "mde": mde, "all_experiments": experiments.to_dict(orient="records") if experiments is not None else []}


def kpi_values(decision: Decision, experiments: pd.DataFrame | None) -> dict:
    """The registry KPI report 06 owns: how many of the experiments analysed are ready to ship."""
    verdicts = experiments["decision"].tolist() if experiments is not None and len(experiments) else \
        [decision.verdict]
    return {"experiments_to_ship": f"{verdicts.count('ship')} of {len(verdicts)}"}


# ---------------------------------------------------------------------------
# Declared metrics, health, variance reduction, power and A/A for report 06
# ---------------------------------------------------------------------------


def declared_specs(metrics: dict, units: pd.DataFrame, default: list[M.MetricSpec]) -> list[M.MetricSpec]:
    """The analyst's metric declarations (``metrics`` parameter: name → fields of :class:`ab_metrics.MetricSpec`)
    checked against the units' columns, or ``default`` when none are declared."""
    if not metrics:
        return default
    specs = []
    for name, fields in metrics.items():
        where = f"parameter metrics[{name!r}]"
        if not isinstance(fields, dict):
            raise ExperimentError(f"{where}: expected a mapping such as {{'kind': 'mean', 'column': 'revenue'}}")
        allowed = set(M.MetricSpec.__dataclass_fields__) - {"name"}
        unknown = set(fields) - allowed
        if unknown:
            raise ExperimentError(f"{where}: unknown field(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
        spec = M.MetricSpec(name=name, **fields)
        if spec.kind not in M.KINDS:
            raise ExperimentError(f"{where}: kind {spec.kind!r}; expected one of {', '.join(M.KINDS)}")
        if spec.role not in M.ROLES:
            raise ExperimentError(f"{where}: role {spec.role!r}; expected one of {', '.join(M.ROLES)}")
        for col in (spec.column, spec.denominator, spec.pre, spec.pre_denominator, spec.among):
            if col and col not in units:
                raise ExperimentError(f"{where}: column {col!r} is not in the experiment's units (columns: "
                                      f"{', '.join(map(str, units.columns))})")
        if spec.kind == "ratio" and not spec.denominator:
            raise ExperimentError(f"{where}: a ratio metric needs a 'denominator' column")
        specs.append(spec)
    if not any(s.role == "goal" for s in specs):
        raise ExperimentError("parameter metrics: declare at least one metric with role 'goal'")
    return specs


def secondary_specs(units: pd.DataFrame, revenue: str | None, winsor_upper: float = 0.999,
                    denominator: str = "") -> list[M.MetricSpec]:
    """Secondary views of revenue when the data has it: revenue per click or per conversion (a ratio metric,
    delta method), the median order value of units that bought (a quantile metric, conditional on buying) and
    revenue per unit capped at the pooled ``winsor_upper`` quantile (beside the raw mean)."""
    if not revenue or revenue not in units:
        return []
    out = []
    per = {"clicked": "click", "converted": "conversion", "orders": "order", "sessions": "session"}
    if denominator:  # the analyst's choice first
        per = {denominator: per.get(denominator, denominator), **per}
    for denominator, noun in per.items():
        if denominator in units and units[denominator].sum() > 0:
            out.append(M.MetricSpec(f"{revenue} per {noun}", "ratio", revenue, denominator=denominator,
                                    role="secondary"))
            break
    out.append(M.MetricSpec(f"median {revenue} of buying units", "quantile", revenue, q=0.5, role="secondary",
                            among=revenue))
    out.append(M.MetricSpec(f"{revenue} per unit, capped at p{winsor_upper * 100:g}", "winsorised", revenue,
                            role="secondary"))
    return out


def campaign_exposures(sends: pd.DataFrame, campaigns: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Every send of one campaign test as (unit_id, variant): the input of the crossover check."""
    camp = campaign_experiments(campaigns)
    camp = camp[camp["experiment"] == experiment]
    if camp.empty:
        return pd.DataFrame(columns=["unit_id", "variant"])
    s = sends[sends["campaign_id"] == camp["campaign_id"].iloc[0]]
    unit = (s["customer_id"] if "customer_id" in s else pd.Series(pd.NA, index=s.index)).astype("string")
    if "email" in s:
        unit = unit.fillna(s["email"].astype("string"))
    return pd.DataFrame({"unit_id": unit.to_numpy(), "variant": s["variant"].astype(str).map(_arm_name).to_numpy()})


def variance_reduction_table(units: pd.DataFrame, variant: str, control: str, arm: str, metric: str,
                             covariates: list[str], stratum: str | None, alpha: float = 0.05) -> pd.DataFrame:
    """The same effect estimated four ways: plain difference, CUPED on the first covariate, regression adjustment
    on all covariates (and the stratum), post-stratification on the stratum; with each one's standard error and
    the variance it removes relative to the plain difference."""
    d = units[units[variant].isin([control, arm])].copy()
    covariates = [c for c in covariates if c in d]
    t = (d[variant] == arm).to_numpy()
    y = d[metric].to_numpy(dtype=float)
    rows = [("plain difference", M.mean(y[~t], y[t], alpha))]
    if covariates:
        x = d[covariates[0]].to_numpy(dtype=float)
        rows.append((f"CUPED on {covariates[0]}", M.cuped_mean(y[~t], y[t], x[~t], x[t], alpha)))
        X = d[covariates + ([stratum] if stratum and stratum in d else [])].copy()
        if stratum and stratum in X:
            X[stratum] = X[stratum].astype(str).fillna("unknown")
        rows.append((f"regression adjustment on {', '.join(X.columns)}", M.regression_adjusted(y, t, X, alpha)))
    if stratum and stratum in d and d[stratum].notna().any():
        rows.append((f"post-stratification by {stratum}",
                     M.post_stratified(y, t, d[stratum].astype(str).fillna("unknown"), alpha)))
    base = rows[0][1].se ** 2
    return pd.DataFrame([{"estimator": name, "effect": e.diff, "standard error": e.se,
                          "95% CI": f"{e.ci_low:+,.3f} to {e.ci_high:+,.3f}", "p": e.p_value,
                          "variance removed": 1 - e.se**2 / base if base > 0 else 0.0} for name, e in rows])


def power_table(results: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """For each declared metric (first arm): the effect this test detects with 80% power, absolute and relative to
    control, and its power at the metric's target effect."""
    rows = []
    for _, r in results.drop_duplicates("metric").iterrows():
        floor = D.detectable(r, alpha)
        target = r["target_mde"]
        has_target = target is not None and np.isfinite(target) and target > 0
        rows.append({"metric": r["metric"], "type": r["kind"], "role": r["role"], "units per arm": int(r["n_arm"]),
                     "detectable effect (80% power)": floor,
                     "relative": floor / abs(r["control_value"]) if r["control_value"] else np.nan,
                     "target": f"{target:.0%}" if has_target else "–",
                     "power at target": M.power_at_effect(target * r["control_value"], r["se"], alpha)
                     if has_target and r["control_value"] else np.nan})
    return pd.DataFrame(rows)


def aa_check(units: pd.DataFrame, variant: str, control: str, specs: list[M.MetricSpec], n_sims: int,
             alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """A/A simulation on the control arm's own units (no treatment effect there): the false-positive rate of each
    declared metric over ``n_sims`` random half-splits."""
    table = M.aa_simulation(units[units[variant] == control], specs, n_sims, alpha, seed)
    table["false-positive rate (95% CI)"] = [f"{v:.1%} ({lo:.1%} to {hi:.1%})" for v, lo, hi in
                                            zip(table["false_positive_rate"], table["ci_low"], table["ci_high"])]
    table["as designed"] = np.where(table["calibrated"], f"yes (α = {alpha:.0%})", "NO")
    return table[["metric", "kind", "simulations", "false-positive rate (95% CI)", "as designed"]]


def with_unit_properties(units: pd.DataFrame, c360: pd.DataFrame | None,
                         columns: tuple[str, ...] = ("country", "acquisition_channel", "preferred_channel")
                         ) -> pd.DataFrame:
    """Units with properties of their customer from the 360° table (country, channel…), for SRM by slice and
    regression adjustment. Units without a customer key get none."""
    if c360 is None or "customer_key" not in units:
        return units
    props = c360.set_index("customer_key")
    out = units.copy()
    for col in columns:
        if col in props and col not in out:
            out[col] = out["customer_key"].map(props[col])
    out.attrs = units.attrs
    return out


def with_decision(experiments: pd.DataFrame | None, name: str, decision: Decision) -> pd.DataFrame | None:
    """The overview with the analysed experiment's row carrying the report's own decision (its declared metrics
    and full health checks), so the table and the answer above it agree."""
    if experiments is None or not len(experiments):
        return experiments
    out = experiments.copy()
    key = name.rsplit("(", 1)[-1].rstrip(")")
    hit = (out["experiment"] == key) | (out["test"] == name)
    out.loc[hit, "decision"] = decision.verdict
    out.loc[hit, "why"] = decision.blocked_by
    return out


def health_and_decision(setup: Setup, units: pd.DataFrame, source: str, tables: dict, currency: str,
                        alpha: float = 0.05, seed: int = 0, metrics: dict | None = None,
                        target_mde: float | None = None, correction: str = "holm", exact_below: int = M.EXACT_BELOW,
                        exact_test: str = "boschloo", winsor_upper: float = 0.999,
                        dimensions: list[str] | None = None, pre_metrics: list[str] | None = None) -> dict:
    """Report 06's analysis of one experiment: the declared metrics (:func:`declared_specs`), the health checks
    (:func:`ab_health.health_checks`, with crossover from the sends of a campaign test) and :func:`judge` gated by
    them. Returns a dict with ``specs``, ``checks``, ``health``, ``comparisons``, ``srm``, ``mde``, ``path``,
    ``decision`` and ``results``."""
    from helpers.analysis import ab_health as H

    specs = declared_specs(metrics or {}, units, default_specs(units, setup.metric, setup.revenue, setup.covariate,
                                                                target_mde))
    exposures = campaign_exposures(tables["sends"], tables["campaigns"], units.attrs.get("experiment", "")) \
        if source == "campaigns" else None
    when = setup.order or ("sent_at" if "sent_at" in units else None)
    checks, health = H.health_checks(units, setup.variant, setup.control, setup.intended, list(dimensions or []),
                                     pre_metrics or [c for c in units if str(c).startswith("pre_")], exposures,
                                     "unit_id" if exposures is not None else None, when)
    comparisons, srm, mde, path, decision, results = judge(
        units, setup.variant, setup.control, setup.metric, setup.intended, alpha, setup.order, setup.revenue,
        currency, seed, specs, H.blocking(checks), correction, exact_below, exact_test, winsor_upper)
    return {"specs": specs, "checks": checks, "health": health, "comparisons": comparisons, "srm": srm, "mde": mde,
            "path": path, "decision": decision, "results": results}
