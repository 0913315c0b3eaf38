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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from helpers.errors import WorkbenchError


class ExperimentError(WorkbenchError, ValueError):
    """The experiment table cannot be analysed as given."""


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def check_experiment(df: pd.DataFrame, variant: str, control: str, metrics: list[str], source: str = "table"
                     ) -> None:
    """Raise :class:`ExperimentError` naming the problem: missing columns, a missing control arm, a single arm,
    variant names padded with spaces, missing metric values, or a metric that is zero for everyone."""
    missing = [c for c in [variant, *metrics] if c not in df.columns]
    if missing:
        raise ExperimentError(f"{source}: missing column(s) {missing}; expected a variant column {variant!r} and "
                              f"metric columns {metrics}")
    names = df[variant].dropna().astype(str)
    padded = sorted({v for v in names.unique() if v != v.strip()})
    if padded:
        raise ExperimentError(f"{source}, column {variant!r}: variant names with leading or trailing spaces "
                              f"{padded!r} would be counted as separate arms; expected trimmed names")
    if df[variant].isna().any():
        row = int(np.flatnonzero(df[variant].isna().to_numpy())[0])
        raise ExperimentError(f"{source}, column {variant!r}, row {row}: missing variant; expected every unit "
                              "to be assigned to an arm")
    arms = sorted(names.unique())
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
                     "chance_to_beat_control": b["chance_to_beat_control"],
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
                    order: str | None = None, looks: int = 40, alpha: float = 0.05, tau: float | None = None
                    ) -> pd.DataFrame:
    """Difference, fixed-sample CI and confidence sequence after each of ``looks`` equally spaced looks at the
    units in order of ``order`` (e.g. enrolment time) — what a monitor of the running test would have seen."""
    d = df[df[variant].isin([control, treatment])]
    d = d.sort_values(order, kind="stable") if order else d
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
    peek = path[(path["ci_low"] > 0) | (path["ci_high"] < 0)]
    if len(excl):
        first = int(excl["units"].iloc[0])
        return (f"The always-valid confidence sequence excluded zero from {first:,} units on "
                f"({first / path['units'].iloc[-1]:.0%} of the final sample): stopping the test there would have "
                "been safe.")
    msg = "The always-valid confidence sequence never excluded zero, so stopping early would not have been safe"
    if len(peek):
        msg += (f"; a naive fixed-sample interval looked 'significant' at {len(peek)} of {len(path)} looks, "
                "which is exactly the peeking trap")
    return msg + "."


# ---------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------


@dataclass
class Decision:
    """What to do, in plain language."""

    verdict: str  # "ship", "keep control", "no clear difference"
    text: str


def decide(comparisons: pd.DataFrame, metric_label: str, alpha: float = 0.05, mde: float | None = None) -> Decision:
    """Plain-language decision from :func:`compare_arms`: the best arm that is significant after Holm, how much
    better, how sure we are, and what to do next."""
    best = comparisons.sort_values("diff", ascending=False).iloc[0]
    worst = comparisons.sort_values("diff").iloc[0]
    if best["significant"] and best["diff"] > 0:
        return Decision("ship", (
            f"**{best['arm']} wins on {metric_label}:** {best['rate']:.1%} vs {best['control_rate']:.1%} for "
            f"control, {best['diff'] * 100:+.1f} percentage points ({best['relative_lift']:+.0%}, 95% CI "
            f"{best['rel_ci_low']:+.0%} to {best['rel_ci_high']:+.0%}). Chance to beat control "
            f"{best['chance_to_beat_control']:.0%}; significant after correcting for {len(comparisons)} "
            f"comparison(s) (Holm p = {best['p_holm']:.3g}). **Next:** roll it out and keep a small holdout to "
            "confirm the lift."))
    if worst["significant"] and worst["diff"] < 0:
        return Decision("keep control", (
            f"**Control wins on {metric_label}:** {worst['arm']} is worse by {worst['diff'] * 100:.1f} percentage "
            f"points ({worst['relative_lift']:+.0%}, Holm p = {worst['p_holm']:.3g}). **Next:** keep the control "
            "version."))
    floor = f" The test could only detect lifts of about {mde:.0%} or more." if mde else ""
    return Decision("no clear difference", (
        f"**No clear winner on {metric_label}.** The best arm, {best['arm']}, is {best['diff'] * 100:+.1f} "
        f"percentage points ({best['relative_lift']:+.0%}; 95% CI {best['rel_ci_low']:+.0%} to "
        f"{best['rel_ci_high']:+.0%}) with a {best['chance_to_beat_control']:.0%} chance to beat control, which is "
        f"not conclusive.{floor} **Next:** keep the cheaper version, or rerun with the sample size from the "
        "planner below."))


# ---------------------------------------------------------------------------
# The workbench's campaign experiments
# ---------------------------------------------------------------------------


def campaign_experiments(campaigns: pd.DataFrame) -> pd.DataFrame:
    """The A/B-test campaigns with their intended split (parsed from JSON)."""
    import json

    ab = campaigns[campaigns["experiment"].notna()].copy()
    ab["intended_split"] = ab["intended_split"].map(lambda s: json.loads(s) if isinstance(s, str) and s else None)
    return ab.sort_values("sent_at").reset_index(drop=True)


def campaign_units(sends: pd.DataFrame, campaigns: pd.DataFrame, orders: pd.DataFrame, experiment: str,
                   pre_days: int = 90) -> pd.DataFrame:
    """One row per e-mail send of ``experiment``: variant, 0/1 opened, clicked and converted, attributed revenue,
    and pre-period covariates for CUPED (opens of earlier e-mails and net order revenue in the ``pre_days``
    before the send)."""
    ab = campaign_experiments(campaigns)
    match = ab[ab["experiment"] == experiment]
    if match.empty:
        raise ExperimentError(f"campaigns: no A/B test named {experiment!r}; found {ab['experiment'].tolist()}")
    camp = match.iloc[0]
    s = sends[sends["campaign_id"] == camp["campaign_id"]]
    units = pd.DataFrame({"customer_key": s["customer_key"].to_numpy(), "variant": s["variant"].astype(str).to_numpy(),
                          "sent_at": s["sent_at"].to_numpy(), "opened": s["open_at"].notna().astype(int).to_numpy(),
                          "clicked": s["click_at"].notna().astype(int).to_numpy(),
                          "converted": s["converted"].fillna(False).astype(int).to_numpy(),
                          "revenue_eur": s["revenue_eur"].fillna(0.0).to_numpy()})
    start = pd.Timestamp(camp["sent_at"]) - pd.Timedelta(days=pre_days)
    before = sends[(sends["sent_at"] < camp["sent_at"]) & (sends["sent_at"] >= start)]
    opens = before.groupby("customer_key")["open_at"].count()
    done = orders[~orders["is_cancelled"].astype(bool) & (orders["order_date"] < camp["sent_at"])
                  & (orders["order_date"] >= start)]
    revenue = done.groupby("customer_key")["net_eur"].sum()
    units["pre_opens"] = units["customer_key"].map(opens).fillna(0).astype(float)
    units["pre_revenue_eur"] = units["customer_key"].map(revenue).fillna(0.0)
    units.attrs.update({"experiment": experiment, "campaign_id": camp["campaign_id"], "name": camp["name"],
                        "intended_split": camp["intended_split"]})
    return units


def read_table(path: str | Path, columns: list[str]) -> pd.DataFrame:
    """A user-supplied experiment table (CSV or Parquet) with at least ``columns``; booleans become 0/1."""
    path = Path(path)
    if not path.exists():
        raise ExperimentError(f"{path}: file not found; expected a CSV or Parquet table with one row per unit")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ExperimentError(f"{path}: missing column(s) {missing}; the file has {list(df.columns)}")
    for c in df.columns:
        if df[c].dtype == bool:
            df[c] = df[c].astype(int)
    df.attrs.update({"name": path.name})
    return df
