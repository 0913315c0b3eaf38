"""Metric types for A/B tests, each summarised the same way.

Every metric type returns one :class:`Effect`: the absolute and the relative effect of an arm against control,
each with a confidence interval and a p-value, a Bayesian chance to beat control with its expected loss (flat
prior, normal approximation; exact Beta posteriors for proportions), and always-valid intervals and p-values
(normal-mixture sequential test, Johari et al. 2017) that stay honest however often the test is looked at.

Metric types: proportions (with exact tests below a stated size), means, ratios of means by the delta method
(with CUPED on numerator and denominator), quantiles (Deng, Knoblich & Lu 2018), winsorised means, and two
variance reductions beyond single-covariate CUPED: regression adjustment on several covariates (Lin 2013, the
estimator behind CUPAC/CURE) and post-stratification. Planning (power at an effect, sample size for any metric
including CUPED-adjusted variance), multiple-testing control and an A/A simulation complete the set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

EXACT_BELOW = 1000  # units in the two arms together: below this, proportions get an exact test (as tea-tasting)
EXACT_TESTS = ("boschloo", "barnard", "fisher")
CORRECTIONS = {"holm": "holm", "hochberg": "simes-hochberg", "bonferroni": "bonferroni", "bh": "fdr_bh",
               "by": "fdr_by"}


@dataclass
class Effect:
    """One arm against control on one metric. ``diff`` is arm − control; ``rel`` is arm / control − 1."""

    kind: str
    control_value: float
    arm_value: float
    n_control: int
    n_arm: int
    diff: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    rel: float
    rel_se: float
    rel_ci_low: float
    rel_ci_high: float
    rel_p: float
    chance_to_beat: float
    expected_loss: float  # absolute units of the metric given up in expectation by choosing the arm
    rel_expected_loss: float
    seq_low: float
    seq_high: float
    seq_p: float
    seq_rel_low: float
    seq_rel_high: float
    seq_rel_p: float
    test: str
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def sequential(estimate: float, variance: float, tau: float, alpha: float = 0.05) -> tuple[float, float, float]:
    """Always-valid interval and p-value of a normal estimate (mixture SPRT with a N(0, tau²) mixing prior).

    p = min(1, 1/Λ) with Λ = sqrt(v/(v+τ²)) exp(τ² θ²/(2v(v+τ²))); the interval is the set of values θ0 whose
    p-value exceeds alpha: θ ± sqrt(2v(v+τ²)/τ² (log(1/α) + ½ log((v+τ²)/v))).
    """
    v = max(float(variance), 1e-300)
    log_lr = 0.5 * np.log(v / (v + tau**2)) + tau**2 * estimate**2 / (2 * v * (v + tau**2))
    p = float(min(1.0, np.exp(-log_lr)))
    half = float(np.sqrt(2 * v * (v + tau**2) / tau**2 * (np.log(1 / alpha) + 0.5 * np.log((v + tau**2) / v))))
    return estimate - half, estimate + half, p


def normal_bayes(estimate: float, se: float) -> tuple[float, float]:
    """Chance that the true effect is above zero and the expected loss of choosing the arm (flat prior):
    Φ(d/s) and E[max(−D, 0)] = s φ(d/s) − d Φ(−d/s)."""
    if se <= 0:
        return float(estimate > 0), float(max(-estimate, 0.0))
    z = estimate / se
    return float(stats.norm.cdf(z)), float(se * stats.norm.pdf(z) - estimate * stats.norm.cdf(-z))


def _relative(m_c: float, m_t: float, var_c: float, var_t: float, cov: float = 0.0) -> tuple[float, float]:
    """arm/control − 1 and its delta-method standard error for independent (or, with ``cov``, correlated) means:
    Var(m_t/m_c) ≈ v_t/m_c² + m_t² v_c/m_c⁴ − 2 m_t cov/m_c³."""
    if m_c == 0:
        return float("nan"), float("nan")
    var = var_t / m_c**2 + m_t**2 * var_c / m_c**4 - 2 * m_t * cov / m_c**3
    return m_t / m_c - 1, float(np.sqrt(max(var, 0.0)))


def _effect(kind: str, m_c: float, m_t: float, var_c: float, var_t: float, n_c: int, n_t: int, alpha: float,
            test: str, df: float | None = None, p_value: float | None = None, ci: tuple | None = None,
            tau_rel: float = 0.1, extra: dict | None = None) -> Effect:
    """The common summary from the two arms' estimates and the variances of those estimates."""
    diff, se = m_t - m_c, float(np.sqrt(var_c + var_t))
    if df is not None and np.isfinite(df):
        q = float(stats.t.ppf(1 - alpha / 2, df))
        p = float(2 * stats.t.sf(abs(diff) / se, df)) if se > 0 else float(diff == 0)
    else:
        q = _z(alpha)
        p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else float(diff == 0)
    p = p if p_value is None else p_value
    lo, hi = ci if ci is not None else (diff - q * se, diff + q * se)
    rel, rel_se = _relative(m_c, m_t, var_c, var_t)
    z = _z(alpha)
    rel_p = float(2 * stats.norm.sf(abs(rel) / rel_se)) if rel_se and rel_se > 0 else float("nan")
    chance, loss = normal_bayes(diff, se)
    _, rel_loss = normal_bayes(rel, rel_se) if np.isfinite(rel_se) else (np.nan, np.nan)
    tau_abs = max(abs(tau_rel * m_c), 1e-9)
    s_lo, s_hi, s_p = sequential(diff, se**2, tau_abs, alpha)
    r_lo, r_hi, r_p = sequential(rel, rel_se**2, tau_rel, alpha) if np.isfinite(rel_se) and rel_se > 0 else \
        (np.nan, np.nan, np.nan)
    return Effect(kind, float(m_c), float(m_t), int(n_c), int(n_t), float(diff), se, float(lo), float(hi), p,
                  float(rel), rel_se, rel - z * rel_se, rel + z * rel_se, rel_p, chance, loss, rel_loss, s_lo, s_hi,
                  s_p, r_lo, r_hi, r_p, test, extra or {})


def _adjusted(kind: str, y_c: np.ndarray, y_t: np.ndarray, diff: float, se: float, alpha: float, test: str,
              df: float | None = None, tau_rel: float = 0.1, extra: dict | None = None) -> Effect:
    """An effect estimated with a variance reduction (CUPED, regression, strata): the arms' raw means are shown as
    their values, the effect and its standard error are the adjusted ones, and the relative effect is the
    adjusted difference over the raw control mean (delta method, with the control mean's own uncertainty)."""
    m_c, m_t = float(y_c.mean()), float(y_t.mean())
    var_mc = float(y_c.var(ddof=1) / y_c.size)
    e = _effect(kind, m_c, m_c + diff, 0.0, se**2, y_c.size, y_t.size, alpha, test, df=df, tau_rel=tau_rel,
                extra=extra)
    e.arm_value = m_t
    e.rel = diff / m_c if m_c else float("nan")
    e.rel_se = float(np.sqrt(se**2 / m_c**2 + diff**2 * var_mc / m_c**4)) if m_c else float("nan")
    z = _z(alpha)
    e.rel_ci_low, e.rel_ci_high = e.rel - z * e.rel_se, e.rel + z * e.rel_se
    ok = np.isfinite(e.rel_se) and e.rel_se > 0
    e.rel_p = float(2 * stats.norm.sf(abs(e.rel) / e.rel_se)) if ok else float("nan")
    e.rel_expected_loss = normal_bayes(e.rel, e.rel_se)[1] if ok else float("nan")
    if ok:
        e.seq_rel_low, e.seq_rel_high, e.seq_rel_p = sequential(e.rel, e.rel_se**2, tau_rel, alpha)
    return e


# ---------------------------------------------------------------------------
# Proportions
# ---------------------------------------------------------------------------


def exact_p(x_c: int, n_c: int, x_t: int, n_t: int, method: str = "boschloo") -> float:
    """Two-sided exact p-value of a 2×2 table: Boschloo (uniformly more powerful than Fisher), Barnard or Fisher,
    as computed by scipy."""
    table = np.array([[x_t, n_t - x_t], [x_c, n_c - x_c]])
    if method == "fisher":
        return float(stats.fisher_exact(table).pvalue)
    if method == "barnard":
        return float(stats.barnard_exact(table).pvalue)
    if method == "boschloo":
        return float(stats.boschloo_exact(table).pvalue)
    raise ValueError(f"exact test must be one of {', '.join(EXACT_TESTS)}, got {method!r}")


def cohens_h(p_t: float, p_c: float) -> float:
    """Cohen's effect size for two proportions, 2 asin√p_t − 2 asin√p_c."""
    return float(2 * np.arcsin(np.sqrt(p_t)) - 2 * np.arcsin(np.sqrt(p_c)))


def proportion(x_c: int, n_c: int, x_t: int, n_t: int, alpha: float = 0.05, exact_below: int = EXACT_BELOW,
               exact_test: str = "boschloo", prior: tuple[float, float] = (1.0, 1.0), tau_rel: float = 0.1,
               details: bool = True) -> Effect:
    """A 0/1 metric. p-value: pooled two-proportion z-test, or the exact test when the two arms hold fewer than
    ``exact_below`` units together. Difference CI: Wald (unpooled); also the unpooled-z p, Newcombe's hybrid score
    interval, the log-ratio interval of the relative lift, Cohen's h and exact Beta-posterior chance to beat
    (``details=False`` skips these extras, for simulations that need only the p-value)."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    p_c, p_t = x_c / n_c, x_t / n_t
    var_c, var_t = p_c * (1 - p_c) / n_c, p_t * (1 - p_t) / n_t
    pooled = (x_c + x_t) / (n_c + n_t)
    se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    p_pooled = float(2 * stats.norm.sf(abs(p_t - p_c) / se_pooled)) if se_pooled > 0 else 1.0
    se = np.sqrt(var_c + var_t)
    p_unpooled = float(2 * stats.norm.sf(abs(p_t - p_c) / se)) if se > 0 else 1.0
    use_exact = n_c + n_t < exact_below
    p = exact_p(x_c, n_c, x_t, n_t, exact_test) if use_exact else p_pooled
    if not details:
        return _effect("proportion", p_c, p_t, var_c, var_t, n_c, n_t, alpha, "pooled two-proportion z-test"
                       if not use_exact else f"{exact_test} exact test", p_value=p, tau_rel=tau_rel)
    newcombe = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb", compare="diff", alpha=alpha)
    log_ratio = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="log", compare="ratio", alpha=alpha) \
        if x_c > 0 and x_t > 0 else (np.nan, np.nan)
    chance = chance_to_beat_beta(x_c, n_c, x_t, n_t, prior)
    extra = {"p_pooled_z": p_pooled, "p_unpooled_z": p_unpooled, "newcombe_low": float(newcombe[0]),
             "newcombe_high": float(newcombe[1]), "log_ratio_low": float(log_ratio[0]) - 1,
             "log_ratio_high": float(log_ratio[1]) - 1, "cohens_h": cohens_h(p_t, p_c)}
    e = _effect("proportion", p_c, p_t, var_c, var_t, n_c, n_t, alpha,
                f"{exact_test} exact test" if use_exact else "pooled two-proportion z-test", p_value=p,
                tau_rel=tau_rel, extra=extra)
    e.chance_to_beat = chance
    return e


def chance_to_beat_beta(x_c: int, n_c: int, x_t: int, n_t: int, prior: tuple[float, float] = (1.0, 1.0)) -> float:
    """P(p_t > p_c) for independent Beta posteriors, by numerical integration."""
    from scipy.integrate import quad

    a_c, b_c = prior[0] + x_c, prior[1] + n_c - x_c
    a_t, b_t = prior[0] + x_t, prior[1] + n_t - x_t
    lo = min(stats.beta.ppf(1e-10, a_c, b_c), stats.beta.ppf(1e-10, a_t, b_t))
    hi = max(stats.beta.ppf(1 - 1e-10, a_c, b_c), stats.beta.ppf(1 - 1e-10, a_t, b_t))
    val, _ = quad(lambda p: stats.beta.pdf(p, a_c, b_c) * stats.beta.sf(p, a_t, b_t), lo, hi, limit=200,
                  points=[a_c / (a_c + b_c)])
    return float(val)


# ---------------------------------------------------------------------------
# Means, CUPED, winsorising
# ---------------------------------------------------------------------------


def _arrays(*values) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in values]


def mean(y_c, y_t, alpha: float = 0.05, tau_rel: float = 0.1, kind: str = "mean", extra: dict | None = None
         ) -> Effect:
    """A mean per unit (revenue per user): Welch's t-test and interval; relative lift by the delta method."""
    y_c, y_t = _arrays(y_c, y_t)
    v_c, v_t = y_c.var(ddof=1) / y_c.size, y_t.var(ddof=1) / y_t.size
    df = (v_c + v_t) ** 2 / (v_c**2 / (y_c.size - 1) + v_t**2 / (y_t.size - 1)) if v_c + v_t > 0 else np.inf
    return _effect(kind, y_c.mean(), y_t.mean(), v_c, v_t, y_c.size, y_t.size, alpha, "Welch t-test", df=df,
                   tau_rel=tau_rel, extra={"df": float(df), **(extra or {})})


def cuped_mean(y_c, y_t, x_c, x_t, alpha: float = 0.05, tau_rel: float = 0.1) -> Effect:
    """CUPED: y − θ(x − x̄) with θ = Cov(x, y)/Var(x) pooled over both arms, then :func:`mean`; the relative
    effect is on the adjusted means (the adjustment keeps each arm's expected mean)."""
    y_c, y_t, x_c, x_t = _arrays(y_c, y_t, x_c, x_t)
    y, x = np.r_[y_c, y_t], np.r_[x_c, x_t]
    theta = float(np.cov(x, y, ddof=1)[0, 1] / x.var(ddof=1)) if x.var(ddof=1) > 0 else 0.0
    centre = x.mean()
    a_c, a_t = y_c - theta * (x_c - centre), y_t - theta * (x_t - centre)
    reduction = 1 - np.r_[a_c - a_c.mean(), a_t - a_t.mean()].var() / np.r_[y_c - y_c.mean(), y_t - y_t.mean()].var()
    adjusted = mean(a_c, a_t, alpha)
    df = adjusted.extra.get("df")
    return _adjusted("CUPED mean", y_c, y_t, adjusted.diff, adjusted.se, alpha, "Welch t-test on CUPED-adjusted "
                     "values", df=df, tau_rel=tau_rel, extra={"theta": theta, "variance_reduction": float(reduction)})


def winsorised(y_c, y_t, upper: float = 0.999, lower: float | None = None, alpha: float = 0.05,
               tau_rel: float = 0.1) -> Effect:
    """Mean after capping both arms at the pooled ``upper`` quantile (and ``lower``, if given): a few extreme
    units no longer decide the test. The caps come from both arms together, so capping treats them alike."""
    y_c, y_t = _arrays(y_c, y_t)
    pooled = np.r_[y_c, y_t]
    hi = float(np.quantile(pooled, upper))
    lo = float(np.quantile(pooled, lower)) if lower is not None else -np.inf
    capped = int(((pooled > hi) | (pooled < lo)).sum())
    return mean(np.clip(y_c, lo, hi), np.clip(y_t, lo, hi), alpha, tau_rel, kind="winsorised mean",
                extra={"cap_high": hi, "units_capped": capped})


# ---------------------------------------------------------------------------
# Ratio metrics
# ---------------------------------------------------------------------------


def _linearised(num: np.ndarray, den: np.ndarray) -> tuple[float, np.ndarray]:
    """R = Σnum/Σden and each unit's influence on it, (num − R den)/mean(den): Var(R) ≈ Var(influence)/n."""
    r = num.sum() / den.sum()
    return float(r), (num - r * den) / den.mean()


def ratio(num_c, den_c, num_t, den_t, pre_num_c=None, pre_den_c=None, pre_num_t=None, pre_den_t=None,
          alpha: float = 0.05, tau_rel: float = 0.1) -> Effect:
    """Ratio of means (revenue per order, clicks per session) by the delta method. With the pre-period numerator
    and denominator of each unit, CUPED on the ratio: the arm's ratio is adjusted by θ times its pre-period
    ratio's deviation from the pooled pre-period ratio, θ from the units' linearised values."""
    num_c, den_c, num_t, den_t = _arrays(num_c, den_c, num_t, den_t)
    r_c, l_c = _linearised(num_c, den_c)
    r_t, l_t = _linearised(num_t, den_t)
    extra: dict = {}
    if pre_num_c is not None:
        pn_c, pd_c, pn_t, pd_t = _arrays(pre_num_c, pre_den_c, pre_num_t, pre_den_t)
        pr_c, pl_c = _linearised(pn_c, pd_c)
        pr_t, pl_t = _linearised(pn_t, pd_t)
        pooled_pre = (pn_c.sum() + pn_t.sum()) / (pd_c.sum() + pd_t.sum())
        l, pl = np.r_[l_c, l_t], np.r_[pl_c, pl_t]
        theta = float(np.cov(pl, l, ddof=1)[0, 1] / pl.var(ddof=1)) if pl.var(ddof=1) > 0 else 0.0
        before = (l_c.var(ddof=1) / l_c.size + l_t.var(ddof=1) / l_t.size)
        r_c, r_t = r_c - theta * (pr_c - pooled_pre), r_t - theta * (pr_t - pooled_pre)
        l_c, l_t = l_c - theta * pl_c, l_t - theta * pl_t
        after = (l_c.var(ddof=1) / l_c.size + l_t.var(ddof=1) / l_t.size)
        extra = {"theta": theta, "variance_reduction": float(1 - after / before) if before > 0 else 0.0}
    v_c, v_t = l_c.var(ddof=1) / l_c.size, l_t.var(ddof=1) / l_t.size
    return _effect("ratio" if not extra else "CUPED ratio", r_c, r_t, v_c, v_t, num_c.size, num_t.size, alpha,
                   "delta method z-test", tau_rel=tau_rel, extra=extra)


# ---------------------------------------------------------------------------
# Quantiles
# ---------------------------------------------------------------------------


def _quantile_se(y: np.ndarray, q: float, alpha: float) -> tuple[float, float]:
    """Sample quantile and its standard error from the order statistics that bound a (1 − alpha) interval for
    it (Deng, Knoblich & Lu 2018, i.i.d. units): ranks n q ± z sqrt(n q (1 − q)); se = (Y_U − Y_L) / (2 z)."""
    y = np.sort(y)
    n = y.size
    z = _z(alpha)
    half = z * np.sqrt(n * q * (1 - q))
    lo_rank = int(np.clip(np.floor(n * q - half), 0, n - 1))
    hi_rank = int(np.clip(np.ceil(n * q + half), 0, n - 1))
    return float(np.quantile(y, q)), float((y[hi_rank] - y[lo_rank]) / (2 * z))


def quantile(y_c, y_t, q: float = 0.5, alpha: float = 0.05, tau_rel: float = 0.1) -> Effect:
    """A quantile of the metric per unit (median or p90 order value): the difference of the arms' sample
    quantiles with a normal interval whose standard errors come from order statistics (Deng et al. 2018);
    no density estimate and no bootstrap."""
    y_c, y_t = _arrays(y_c, y_t)
    m_c, se_c = _quantile_se(y_c, q, alpha)
    m_t, se_t = _quantile_se(y_t, q, alpha)
    return _effect(f"p{round(q * 100):d}", m_c, m_t, se_c**2, se_t**2, y_c.size, y_t.size, alpha,
                   "quantile z-test (Deng et al. 2018)", tau_rel=tau_rel, extra={"quantile": q})


# ---------------------------------------------------------------------------
# Variance reduction on several covariates
# ---------------------------------------------------------------------------


def regression_adjusted(y, treated, covariates: pd.DataFrame | np.ndarray, alpha: float = 0.05,
                        tau_rel: float = 0.1) -> Effect:
    """Lin's (2013) regression adjustment: y on the treatment, the centred covariates and their interactions,
    with HC2 robust standard errors. Unbiased in large samples whatever the covariates (pre-period metrics, unit
    properties, a model's prediction as in CUPAC); never less precise than the plain difference asymptotically.
    ``extra['variance_reduction']`` compares its variance with the plain difference's."""
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated, dtype=float)
    X = np.asarray(pd.get_dummies(pd.DataFrame(covariates), drop_first=True, dtype=float), dtype=float)
    X = X - X.mean(axis=0)
    design = np.column_stack([np.ones_like(y), t, X, X * t[:, None]])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    bread = np.linalg.pinv(design.T @ design)
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    meat = (design * (resid**2 / np.clip(1 - leverage, 1e-12, None))[:, None]).T @ design
    cov = bread @ meat @ bread
    effect, se = float(beta[1]), float(np.sqrt(cov[1, 1]))
    plain = mean(y[t == 0], y[t == 1], alpha)
    return _adjusted("regression-adjusted mean", y[t == 0], y[t == 1], effect, se, alpha,
                     "Lin (2013) regression adjustment, HC2", tau_rel=tau_rel,
                     extra={"variance_reduction": float(1 - se**2 / plain.se**2) if plain.se > 0 else 0.0,
                            "covariates": int(X.shape[1])})


def post_stratified(y, treated, strata, alpha: float = 0.05, tau_rel: float = 0.1, min_per_cell: int = 2
                    ) -> Effect:
    """Post-stratification: the difference within each stratum (device, country…), weighted by the stratum's
    share of all units; variance Σ w² (s²_t/n_t + s²_c/n_c). Strata with fewer than ``min_per_cell`` units in an
    arm are pooled into one."""
    d = pd.DataFrame({"y": np.asarray(y, dtype=float), "t": np.asarray(treated, dtype=int),
                      "s": pd.Series(strata).astype(str).to_numpy()})
    counts = d.groupby(["s", "t"]).size().unstack(fill_value=0)
    small = counts.index[(counts.min(axis=1) < min_per_cell)]
    d.loc[d["s"].isin(small), "s"] = "(small strata pooled)"
    effect = var = 0.0
    n = len(d)
    for _, part in d.groupby("s"):
        yt, yc = part.loc[part["t"] == 1, "y"], part.loc[part["t"] == 0, "y"]
        if len(yt) < min_per_cell or len(yc) < min_per_cell:
            continue
        w = len(part) / n
        effect += w * (yt.mean() - yc.mean())
        var += w**2 * (yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc))
    y_c, y_t = d.loc[d["t"] == 0, "y"].to_numpy(), d.loc[d["t"] == 1, "y"].to_numpy()
    plain = mean(y_c, y_t, alpha)
    return _adjusted("post-stratified mean", y_c, y_t, effect, float(np.sqrt(var)), alpha, "post-stratification",
                     tau_rel=tau_rel, extra={"variance_reduction": float(1 - var / plain.se**2) if plain.se > 0
                                             else 0.0, "strata": int(d["s"].nunique())})


# ---------------------------------------------------------------------------
# Planning and multiple testing
# ---------------------------------------------------------------------------


def power_at_effect(effect: float, se: float, alpha: float = 0.05) -> float:
    """Two-sided power of a z-test whose estimate has standard error ``se`` when the true effect is ``effect``:
    Φ(|δ|/se − z) + Φ(−|δ|/se − z)."""
    z = _z(alpha)
    d = abs(effect) / se
    return float(stats.norm.cdf(d - z) + stats.norm.cdf(-d - z))


def sample_size(sd: float, mde: float, alpha: float = 0.05, power: float = 0.8, variance_reduction: float = 0.0,
                sd_arm: float | None = None) -> int:
    """Units per arm to detect an absolute effect ``mde`` on a metric whose per-unit standard deviation is ``sd``
    (``sd_arm`` in the arm, if it differs), two-sided: n = (z_α/2 + z_β)² (σ_c² + σ_t²)(1 − ρ²)/δ². Works for any
    metric type: a proportion's σ² is p(1 − p), a ratio's the variance of its linearised values, a CUPED-adjusted
    metric's σ²(1 − ρ²) with ρ² = ``variance_reduction``."""
    sd_arm = sd if sd_arm is None else sd_arm
    z = _z(alpha) + stats.norm.ppf(power)
    return int(np.ceil(z**2 * (sd**2 + sd_arm**2) * (1 - variance_reduction) / mde**2))


def minimum_detectable_effect(sd: float, n_per_arm: int, alpha: float = 0.05, power: float = 0.8,
                              variance_reduction: float = 0.0) -> float:
    """The absolute effect detectable with ``n_per_arm`` units per arm (inverse of :func:`sample_size`)."""
    z = _z(alpha) + stats.norm.ppf(power)
    return float(z * np.sqrt(2 * sd**2 * (1 - variance_reduction) / n_per_arm))


def adjust_pvalues(p_values, method: str = "holm", alpha: float = 0.05) -> np.ndarray:
    """Adjusted p-values: ``holm``, ``hochberg``, ``bonferroni`` (family-wise error) or ``bh``, ``by`` (false
    discovery rate; BY holds under any dependence), via statsmodels."""
    from statsmodels.stats.multitest import multipletests

    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p
    return multipletests(p, alpha=alpha, method=CORRECTIONS[method])[1]


# ---------------------------------------------------------------------------
# Metric specifications and the A/A simulation
# ---------------------------------------------------------------------------


@dataclass
class MetricSpec:
    """One metric of an experiment, as the analyst declares it.

    ``kind``: proportion, mean, ratio, quantile or winsorised. ``column`` is the per-unit value (the numerator
    for a ratio); ``denominator`` the ratio's; ``pre``/``pre_denominator`` pre-period columns for CUPED;
    ``q`` the quantile; ``role`` goal, guardrail or secondary (shown, not decided on); ``target_mde`` the
    smallest relative effect that matters; ``higher_is_better`` False for metrics such as unsubscribes or refunds;
    ``among`` restricts the metric to units whose ``among`` column is positive (e.g. order value of buyers: a
    conditional comparison, no longer protected by the randomisation).
    """

    name: str
    kind: str
    column: str
    denominator: str | None = None
    pre: str | None = None
    pre_denominator: str | None = None
    q: float = 0.5
    role: str = "goal"
    target_mde: float | None = None
    higher_is_better: bool = True
    among: str | None = None


ROLES = ("goal", "guardrail", "secondary")
KINDS = ("proportion", "mean", "ratio", "quantile", "winsorised")


def measure(spec: MetricSpec, control: pd.DataFrame, arm: pd.DataFrame, alpha: float = 0.05,
            exact_below: int = EXACT_BELOW, exact_test: str = "boschloo", winsor_upper: float = 0.999,
            details: bool = True) -> Effect:
    """The :class:`Effect` of ``arm`` against ``control`` on one declared metric."""
    col = spec.column
    if spec.among:
        control, arm = control[control[spec.among] > 0], arm[arm[spec.among] > 0]
    if spec.kind == "proportion":
        return proportion(int(control[col].sum()), len(control), int(arm[col].sum()), len(arm), alpha,
                          exact_below, exact_test, details=details)
    if spec.kind == "mean":
        if spec.pre:
            return cuped_mean(control[col], arm[col], control[spec.pre], arm[spec.pre], alpha)
        return mean(control[col], arm[col], alpha)
    if spec.kind == "ratio":
        pre = {}
        if spec.pre and spec.pre_denominator:
            pre = {"pre_num_c": control[spec.pre], "pre_den_c": control[spec.pre_denominator],
                   "pre_num_t": arm[spec.pre], "pre_den_t": arm[spec.pre_denominator]}
        return ratio(control[col], control[spec.denominator], arm[col], arm[spec.denominator], alpha=alpha, **pre)
    if spec.kind == "quantile":
        return quantile(control[col], arm[col], spec.q, alpha)
    if spec.kind == "winsorised":
        return winsorised(control[col], arm[col], winsor_upper, alpha=alpha)
    raise ValueError(f"metric kind must be one of {', '.join(KINDS)}, got {spec.kind!r}")


def aa_simulation(units: pd.DataFrame, specs: list[MetricSpec], n_sims: int = 500, alpha: float = 0.05,
                  seed: int = 0, exact_below: int = 0) -> pd.DataFrame:
    """False-positive rate of each metric on the analyst's own units: split them at random into two halves
    ``n_sims`` times (an A/A test: no true difference) and count p < alpha. Calibrated methods reject about
    alpha of the time; the table gives the rate with its 95% binomial interval. Pass the control arm's units
    (or pre-period data) so no real treatment effect is present."""
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(seed)
    n = len(units)
    hits = {s.name: 0 for s in specs}
    columns = {c for s in specs for c in (s.column, s.denominator, s.pre, s.pre_denominator) if c}
    data = {c: units[c].to_numpy(dtype=float) for c in columns}  # plain arrays: splitting them is cheap
    for _ in range(n_sims):
        half = rng.permutation(n) < n // 2
        a = pd.DataFrame({c: v[half] for c, v in data.items()})
        b = pd.DataFrame({c: v[~half] for c, v in data.items()})
        for s in specs:
            hits[s.name] += measure(s, a, b, alpha, exact_below=exact_below, details=False).p_value < alpha
    rows = []
    for s in specs:
        lo, hi = proportion_confint(hits[s.name], n_sims, alpha=0.05, method="wilson")
        rows.append({"metric": s.name, "kind": s.kind, "simulations": n_sims,
                     "false_positive_rate": hits[s.name] / n_sims, "ci_low": float(lo), "ci_high": float(hi),
                     "calibrated": bool(lo <= alpha <= hi)})
    return pd.DataFrame(rows)
