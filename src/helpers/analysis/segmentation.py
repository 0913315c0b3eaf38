"""Segmentation: RFM scores and named segments, lifecycle stages, behavioural clusters, personas, audiences.

All functions take and return DataFrames; nothing here reads or writes files except :func:`export_audiences`.

RFM named segments
------------------
Recency (R), frequency (F) and monetary value (M) are scored 1–5 (5 = best). F and M are combined into
``fm_score = round_half_up((F + M) / 2)``, and each (R, FM) cell of the 5 × 5 grid below holds exactly one
segment, so every buyer lands in exactly one segment (customers without an order are "No purchase yet").

======  ==============  ==================  ==================  ==============  ==============
R \\ FM  1               2                   3                   4               5
======  ==============  ==================  ==================  ==============  ==============
5       New             Potential loyalist  Potential loyalist  Champions       Champions
4       Promising       Potential loyalist  Potential loyalist  Loyal           Champions
3       About to sleep  About to sleep      Need attention      Loyal           Loyal
2       Hibernating     Hibernating         At risk             At risk         Can't lose
1       Lost            Hibernating         At risk             At risk         Can't lose
======  ==============  ==================  ==================  ==============  ==============

Lifecycle stages
----------------
Evaluated at an ``as_of`` date, first match wins:

1. *not yet registered*: signed up after ``as_of``;
2. *prospect*: no completed order yet;
3. *churned*: last order more than ``churn_days`` ago;
4. *at risk*: last order more than ``at_risk_days`` ago;
5. *new*: first order at most ``new_days`` ago;
6. *reactivated*: the gap before the latest order was longer than ``churn_days``;
7. *trial*: exactly one order (older than ``new_days``);
8. *active*: everyone else (repeat buyers with a recent order).

The default thresholds come from the distribution of days between a customer's consecutive orders
(:func:`derive_thresholds`).
"""

from __future__ import annotations

import html

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analysis.sentiment import nps_with_se
from helpers.canonical import summaries as SQ
from helpers.core.threads import by_size, threads_for
from helpers.canonical.transactions import purchases

# ---------------------------------------------------------------------------
# RFM
# ---------------------------------------------------------------------------

RFM_GRID: dict[int, list[str]] = {
    5: ["New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"],
    4: ["Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Champions"],
    3: ["About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"],
    2: ["Hibernating", "Hibernating", "At risk", "At risk", "Can't lose"],
    1: ["Lost", "Hibernating", "At risk", "At risk", "Can't lose"],
}
NO_PURCHASE = "No purchase yet"

#: What each named segment means and what to do about it, in the order they are shown.
RFM_SEGMENTS: dict[str, tuple[str, str]] = {
    "Champions": ("bought recently, buy often and spend the most", "reward them; early access, ask for reviews"),
    "Loyal": ("spend well and buy regularly", "upsell higher-value products; loyalty programme"),
    "Potential loyalist": ("recent customers with average frequency", "membership or loyalty offer, recommend"),
    "New": ("bought most recently, but only once or twice", "onboarding series; build the relationship early"),
    "Promising": ("recent shoppers who have not spent much yet", "brand awareness; free trials of premium lines"),
    "Need attention": ("above-average recency, frequency and spend", "limited-time offers based on past purchases"),
    "About to sleep": ("below-average recency and frequency", "share popular products; renew interest"),
    "At risk": ("spent good money often, but long ago", "personalised win-back e-mails and offers"),
    "Can't lose": ("used to be among the best, but have not returned", "win them back; talk to them, do not lose "
                   "them to a competitor"),
    "Hibernating": ("last purchase long ago, low spend and few orders", "offer relevant products and discounts"),
    "Lost": ("lowest recency, frequency and spend", "revive interest with a campaign, otherwise ignore"),
    NO_PURCHASE: ("registered but never completed an order", "welcome offer to convert the first order"),
}


def rfm_table(orders: pd.DataFrame, analysis_date: pd.Timestamp, customer_keys: pd.Index | None = None
              ) -> pd.DataFrame:
    """Recency (days to ``analysis_date``), frequency (orders) and monetary value (net revenue) per customer.

    Uses completed orders placed on or before ``analysis_date`` (the columns ``customer_key``, ``order_date``,
    ``net_eur`` and ``is_cancelled`` of the cleaned orders). Customers in ``customer_keys`` without such an
    order get frequency 0 and missing recency.

    >>> o = pd.DataFrame({"customer_key": ["a", "a", "b"], "order_date": pd.to_datetime(
    ...     ["2026-01-01", "2026-03-01", "2026-02-15"]), "net": [10.0, 30.0, 5.0], "is_cancelled": False})
    >>> rfm_table(o, pd.Timestamp("2026-03-31"), pd.Index(["a", "b", "c"]))[["recency_days", "frequency"]]
    ... # doctest: +NORMALIZE_WHITESPACE
                  recency_days  frequency
    customer_key
    a                       30          2
    b                       44          1
    c                     <NA>          0
    """
    day = pd.Timestamp(analysis_date).normalize()
    out = SQ.run_summary(purchases(orders), ["customer_key", "order_date", "net"], lambda d, source: SQ.rfm_summary_sql(
        d, source, "customer_key", "order_date", "net", day)).set_index("customer")
    out.index.name = "customer_key"
    if customer_keys is not None:
        out = out.reindex(pd.Index(customer_keys, name="customer_key"))
    out["frequency"] = out["frequency"].fillna(0).astype("int64")
    out["monetary"] = out["monetary"].fillna(0.0)
    out["recency_days"] = out["recency_days"].astype("Int64")
    for col in ["first_order", "last_order"]:
        out[col] = out[col].astype(orders["order_date"].dtype)
    return out[["recency_days", "frequency", "monetary", "first_order", "last_order"]]


def quintile_scores(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Scores 1–5 from percentile ranks; tied values share the same score (average rank).

    >>> quintile_scores(pd.Series([1, 1, 1, 1, 2, 3, 4, 5, 6, 7])).tolist()
    [2, 2, 2, 2, 3, 3, 4, 4, 5, 5]
    >>> quintile_scores(pd.Series([10, 20, 30, 40, 50]), higher_is_better=False).tolist()
    [5, 4, 3, 2, 1]
    """
    pct = (values if higher_is_better else -values).rank(method="average", pct=True)
    return np.ceil(pct * 5).clip(1, 5).astype("int64")


def fixed_scores(values: pd.Series, cuts: list[float], higher_is_better: bool = True) -> pd.Series:
    """Scores 1–5 from four ascending cut points: a value above the i-th cut scores at least i + 1.

    For "lower is better" (recency) the order flips: a value at or below the first cut scores 5.

    >>> fixed_scores(pd.Series([1, 2, 3, 5, 9]), [1, 2, 3, 5]).tolist()
    [1, 2, 3, 4, 5]
    >>> fixed_scores(pd.Series([10, 40, 400]), [30, 90, 180, 365], higher_is_better=False).tolist()
    [5, 4, 1]
    """
    if len(cuts) != 4 or list(cuts) != sorted(cuts):
        raise ValueError(f"expected four ascending cut points, got {cuts!r}")
    bins = np.searchsorted(np.asarray(cuts, dtype=float), values.to_numpy(dtype=float), side="left") + 1
    scores = bins if higher_is_better else 6 - bins
    return pd.Series(scores, index=values.index, dtype="int64")


def rfm_scores(rfm: pd.DataFrame, method: str = "quantile", cuts: dict[str, list[float]] | None = None
               ) -> pd.DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score``, ``fm_score`` and ``rfm_segment`` to an :func:`rfm_table`.

    ``method="quantile"`` scores buyers against each other (rank-based quintiles); ``method="fixed"`` uses
    the cut points in ``cuts`` (keys ``recency_days``, ``frequency``, ``monetary``), which keeps scores
    comparable between runs. Customers without an order get no scores and the segment "No purchase yet".

    **One order is never frequent.** With quantiles, a buyer with a single order always gets F = 1, and repeat
    buyers share the scores 2–5 by quartiles among themselves. Otherwise, where most customers bought once
    (common in real shops), ties would lift one-order buyers into "Loyal" and "Champions".

    >>> r = pd.DataFrame({"recency_days": [5, 50, 200, 9], "frequency": [1, 1, 1, 4],
    ...                   "monetary": [10.0, 20.0, 30.0, 90.0]})
    >>> rfm_scores(r)["f_score"].tolist()
    [1, 1, 1, 5]
    """
    out = rfm.copy()
    buyers = out["frequency"] > 0
    b = out[buyers]
    if method == "quantile":
        r = quintile_scores(b["recency_days"].astype(float), higher_is_better=False)
        repeat = b["frequency"] > 1
        f = pd.Series(1, index=b.index, dtype="int64")
        if repeat.any():
            pct = b.loc[repeat, "frequency"].astype(float).rank(method="average", pct=True)
            f[repeat] = (1 + np.ceil(pct * 4)).clip(2, 5).astype("int64")
        m = quintile_scores(b["monetary"].astype(float))
    elif method == "fixed":
        if not cuts or set(cuts) != {"recency_days", "frequency", "monetary"}:
            raise ValueError("method='fixed' needs cut points for recency_days, frequency and monetary; "
                             f"got {sorted(cuts or {})}")
        r = fixed_scores(b["recency_days"].astype(float), cuts["recency_days"], higher_is_better=False)
        f = fixed_scores(b["frequency"].astype(float), cuts["frequency"])
        m = fixed_scores(b["monetary"].astype(float), cuts["monetary"])
    else:
        raise ValueError(f"RFM method must be 'quantile' or 'fixed', got {method!r}")
    for name, s in [("r_score", r), ("f_score", f), ("m_score", m)]:
        out[name] = s.reindex(out.index).astype("Int64")
    out["fm_score"] = ((out["f_score"] + out["m_score"] + 1) // 2).astype("Int64")  # round half up
    out["rfm_segment"] = [segment_of(rr, fm) if pd.notna(rr) else NO_PURCHASE
                          for rr, fm in zip(out["r_score"], out["fm_score"])]
    return out


def one_order_share(rfm: pd.DataFrame) -> float:
    """Share of buyers with exactly one order."""
    b = rfm[rfm["frequency"] > 0]
    return float((b["frequency"] == 1).mean()) if len(b) else float("nan")


def rfm_warnings(summary: pd.DataFrame, rfm: pd.DataFrame) -> list[str]:
    """Plain sentences on what makes the segments weak on this data (empty when nothing does)."""
    out = []
    share = one_order_share(rfm)
    if share >= 0.5:
        out.append(f"{share:.0%} of buyers ordered only once, so frequency separates few customers: the segments "
                   "rest mostly on recency and spend, and every one-order buyer has F = 1.")
    thin = summary[(summary["segment"] != NO_PURCHASE) & (summary["customers"] < 30)]
    if len(thin):
        out.append("Segments with fewer than 30 customers are too small to act on separately: "
                   + ", ".join(f"{s} ({n})" for s, n in zip(thin["segment"], thin["customers"])) + ".")
    return out


def segment_of(r_score: int, fm_score: int) -> str:
    """The named segment of one (R, FM) cell of :data:`RFM_GRID`.

    >>> segment_of(5, 5), segment_of(1, 1), segment_of(2, 5)
    ('Champions', 'Lost', "Can't lose")
    """
    if not (1 <= int(r_score) <= 5 and 1 <= int(fm_score) <= 5):
        raise ValueError(f"scores must be 1-5, got R={r_score}, FM={fm_score}")
    return RFM_GRID[int(r_score)][int(fm_score) - 1]


def rfm_summary(scored: pd.DataFrame) -> pd.DataFrame:
    """Customers, revenue and averages per named segment, with the suggested action."""
    g = scored.groupby("rfm_segment")
    out = pd.DataFrame({"customers": g.size(), "revenue": g["monetary"].sum(),
                        "avg_recency_days": g["recency_days"].mean().astype(float),
                        "avg_orders": g["frequency"].mean(), "avg_revenue": g["monetary"].mean()})
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["revenue_share"] = out["revenue"] / out["revenue"].sum()
    order = [s for s in RFM_SEGMENTS if s in out.index]
    out = out.loc[order]
    out["meaning"] = [RFM_SEGMENTS[s][0] for s in out.index]
    out["action"] = [RFM_SEGMENTS[s][1] for s in out.index]
    return out.rename_axis("segment").reset_index()


def plot_rfm_segments(summary: pd.DataFrame):
    """Side-by-side bars: share of customers vs share of net revenue per RFM segment."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, percent

    s = summary.iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 5.2))
    y = np.arange(len(s))
    ax.barh(y + 0.2, s["customer_share"], height=0.4, color=PALETTE[0], label="customers")
    ax.barh(y - 0.2, s["revenue_share"], height=0.4, color=PALETTE[1], label="net revenue")
    ax.set_yticks(y, s["segment"])
    percent(ax, "x")
    ax.legend(loc="lower right")
    label(ax, "RFM segments: size and value", "Share of all customers / of net revenue (%)", "")
    return fig


def rfm_caption(summary: pd.DataFrame) -> str:
    s = summary[summary["segment"] != NO_PURCHASE].set_index("segment")
    top = s["revenue_share"].idxmax()
    risk = s.reindex(["At risk", "Can't lose"])["revenue_share"].fillna(0).sum()
    return (f"{top} are {s.at[top, 'customer_share']:.0%} of buyers but bring {s.at[top, 'revenue_share']:.0%} "
            f"of net revenue; the 'At risk' and 'Can't lose' segments hold {risk:.0%} of revenue that a win-back "
            "campaign could protect.")


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------

STAGES = ["not yet registered", "prospect", "new", "trial", "active", "reactivated", "at risk", "churned"]


@dataclass(frozen=True)
class LifecycleThresholds:
    """Day thresholds of the lifecycle stages (see the module docstring)."""

    new_days: int
    at_risk_days: int
    churn_days: int

    def __post_init__(self) -> None:
        if not (0 < self.new_days <= self.at_risk_days < self.churn_days):
            raise ValueError("lifecycle thresholds must satisfy 0 < new_days <= at_risk_days < churn_days; got "
                             f"new={self.new_days}, at_risk={self.at_risk_days}, churn={self.churn_days}")


def inter_purchase_days(orders: pd.DataFrame, until: pd.Timestamp | None = None) -> pd.Series:
    """Days between a customer's consecutive completed orders (same-day orders count once)."""
    gaps = SQ.run_summary(purchases(orders), ["customer_key", "order_date"], lambda d, source: SQ.purchase_gaps_sql(
        d, source, "customer_key", "order_date", until))["gap_days"]
    return gaps.astype("int64").rename("gap_days").reset_index(drop=True)


DEFAULT_THRESHOLDS = (30, 90, 180)  # new, at risk, churned (days) when the data has too few repeat purchases


def derive_thresholds(gaps: pd.Series, new_q: float = 0.5, at_risk_q: float = 0.75, churn_q: float = 0.9
                      ) -> LifecycleThresholds:
    """Default thresholds from the inter-purchase-time distribution.

    *new*: the median gap (a new customer has not yet had a typical gap's time to come back); *at risk*: a
    silence longer than 75% of observed gaps; *churned*: longer than 90% of them. With fewer than 20 repeat
    purchases the gaps say too little, and :data:`DEFAULT_THRESHOLDS` are used (see :func:`thresholds_note`).

    >>> derive_thresholds(pd.Series(range(1, 101)))
    LifecycleThresholds(new_days=51, at_risk_days=76, churn_days=91)
    """
    if len(gaps) < 20:
        return LifecycleThresholds(*DEFAULT_THRESHOLDS)
    q = gaps.astype(float).quantile([new_q, at_risk_q, churn_q]).to_numpy()
    new, risk, churn = (int(math.ceil(v)) for v in q)
    risk = max(risk, new)
    return LifecycleThresholds(max(new, 1), max(risk, 1), max(churn, risk + 1))


def thresholds_note(gaps: pd.Series, derived: LifecycleThresholds, used: LifecycleThresholds) -> str:
    """One sentence saying where the lifecycle thresholds come from."""
    if used != derived:
        return (f"The thresholds are set by parameters: new {used.new_days}, at risk {used.at_risk_days} and "
                f"churned {used.churn_days} days.")
    if len(gaps) < 20:
        return (f"Only {len(gaps)} repeat purchases: too few to learn how long customers usually wait, so the "
                f"thresholds are the defaults ({used.new_days}, {used.at_risk_days} and {used.churn_days} days).")
    return (f"Across {len(gaps):,} repeat orders, half came within {used.new_days} days of the previous one, 75% "
            f"within {used.at_risk_days} and 90% within {used.churn_days} days; those are the thresholds.")


def lifecycle_stages(orders: pd.DataFrame, customers: pd.DataFrame, as_of: pd.Timestamp,
                     thresholds: LifecycleThresholds) -> pd.Series:
    """The lifecycle stage of each customer (index ``customer_key`` of ``customers``) at ``as_of``.

    ``customers`` needs ``customer_key`` and ``signup_date``; ``orders`` the cleaned order columns.
    """
    day = pd.Timestamp(as_of).normalize()
    hist = SQ.run_summary(purchases(orders), ["customer_key", "order_date"], lambda d, source: SQ.purchase_history_sql(
        d, source, "customer_key", "order_date", day)).set_index("customer")
    hist = pd.DataFrame({"first": pd.to_datetime(hist["first_day"]), "last": pd.to_datetime(hist["last_day"]),
                         "n": hist["n_days"], "last_gap": hist["last_gap"]}, index=hist.index)
    c = customers.set_index("customer_key")
    hist = hist.reindex(c.index)
    since_last = (day - hist["last"]).dt.days
    since_first = (day - hist["first"]).dt.days
    signup = c["signup_date"].fillna(hist["first"])
    t = thresholds
    conditions = [
        signup.dt.normalize() > day,
        hist["n"].isna(),
        since_last > t.churn_days,
        since_last > t.at_risk_days,
        since_first <= t.new_days,
        hist["last_gap"] > t.churn_days,
        hist["n"] == 1,
    ]
    names = ["not yet registered", "prospect", "churned", "at risk", "new", "reactivated", "trial"]
    stage = np.select([cnd.fillna(False).to_numpy(dtype=bool) for cnd in conditions], names, default="active")
    return pd.Series(pd.Categorical(stage, categories=STAGES), index=c.index, name="lifecycle_stage")


def transition_matrix(before: pd.Series, after: pd.Series, normalize: bool = True) -> pd.DataFrame:
    """Customers moving from each stage (rows, earlier date) to each stage (columns, later date)."""
    tab = pd.crosstab(before.rename("from"), after.rename("to"), dropna=False)
    tab = tab.loc[[s for s in STAGES if s in tab.index and tab.loc[s].sum() > 0],
                  [s for s in STAGES if s in tab.columns and s != "not yet registered"]]
    return tab.div(tab.sum(axis=1), axis=0) if normalize else tab


def plot_gap_distribution(gaps: pd.Series, t: LifecycleThresholds):
    """Histogram of inter-purchase gaps with the derived thresholds marked."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label

    fig, ax = plt.subplots(figsize=(9, 4))
    upper = float(gaps.quantile(0.98))
    ax.hist(gaps.clip(upper=upper), bins=60, color=PALETTE[0], alpha=0.85)
    for value, name, color in [(t.new_days, "new", PALETTE[2]), (t.at_risk_days, "at risk", PALETTE[1]),
                               (t.churn_days, "churned", PALETTE[3])]:
        ax.axvline(value, color=color, lw=2, ls="--")
        ax.text(value, ax.get_ylim()[1] * 0.92, f" {name}: {value} d", color=color, fontsize=11)
    label(ax, "Days between a customer's consecutive orders", "Gap between orders (days; top 2% pooled)",
          "Repeat orders")
    return fig


def plot_transitions(matrix: pd.DataFrame, earlier: str, later: str):
    """Heat map of a row-normalised transition matrix."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(9, 4.8))
    sns.heatmap(matrix, annot=True, fmt=".0%", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=ax,
                annot_kws={"fontsize": 10})
    ax.set_title(f"Where customers moved: stage on {earlier} (rows) → stage on {later} (columns)")
    ax.set_xlabel(f"Stage on {later}")
    ax.set_ylabel(f"Stage on {earlier}")
    ax.tick_params(axis="x", rotation=0)
    return fig


def transition_caption(counts: pd.DataFrame) -> str:
    """One sentence on the most important movements in a count transition matrix."""
    def moved(src: str, dst: list[str]) -> tuple[int, int]:
        if src not in counts.index:
            return 0, 0
        row = counts.loc[src]
        return int(row.reindex(dst).fillna(0).sum()), int(row.sum())

    churn, active_total = moved("active", ["at risk", "churned"])
    rescued, risk_total = moved("at risk", ["active", "reactivated"])
    converted, new_total = moved("new", ["active"])
    return (f"Of {active_total:,} customers in the 'active' stage at the start, {churn:,} ({churn / max(active_total, 1):.0%}) "
            f"slid to at risk or churned; of {risk_total:,} at risk, {rescued:,} came back; and "
            f"{converted / max(new_total, 1):.0%} of new customers became active repeat buyers.")


# ---------------------------------------------------------------------------
# Behavioural clustering
# ---------------------------------------------------------------------------

#: Clustering features: name -> (family, transform, description). "log" features get log1p.
CLUSTER_FEATURES: dict[str, tuple[str, str, str]] = {
    "orders_per_month": ("transactional", "log", "completed orders per month since sign-up"),
    "avg_order_value": ("transactional", "log", "average gross order value"),
    "items_per_order": ("transactional", "log", "units per order"),
    "discount_share": ("transactional", "none", "share of order lines bought on discount"),
    "return_rate": ("transactional", "none", "share of units returned"),
    "sessions_per_month": ("behavioural", "log", "web/app sessions per month since sign-up"),
    "share_app": ("behavioural", "none", "share of sessions in the app"),
    "open_rate": ("engagement", "none", "share of marketing e-mails opened"),
    "satisfaction": ("psychographic", "none", "mean of standardised star rating and latest NPS score"),
}


def clustering_features(c360: pd.DataFrame, min_orders: int = 2, columns: list[str] | None = None
                        ) -> pd.DataFrame:
    """The raw clustering features (see :data:`CLUSTER_FEATURES`) of customers with ``min_orders`` or more.

    One order says too little to tell a deal seeker from someone who happened to buy in a sale, so by default
    the clusters are fitted on repeat buyers; one-order buyers are then placed in the nearest cluster
    (:func:`assign_nearest`) and prospects are left to the lifecycle stages. Missing values (no e-mail consent,
    no review) stay missing and are imputed inside the pipeline. ``columns`` restricts the features (see
    :func:`available_features`).
    """
    c = c360[c360["orders"] >= min_orders].set_index("customer_key")
    months = (c["tenure_days"].astype(float) / 30.44).clip(lower=1.0)
    rating = (c["avg_rating"].astype(float) - 3.0) / 1.2
    nps = (c["latest_nps"].astype(float) - 7.5) / 1.6
    out = pd.DataFrame({
        "orders_per_month": c["orders"] / months,
        "avg_order_value": c["avg_order_value"],
        "items_per_order": c["units"] / c["orders"],
        "discount_share": c["discount_share"],
        "return_rate": c["return_rate"].clip(0, 1),
        "sessions_per_month": c["sessions"].where(c["sessions"] > 0) / months,
        "share_app": c["share_app"],
        "open_rate": c["open_rate"],
        "satisfaction": pd.concat([rating, nps], axis=1).mean(axis=1),
    }).astype(float)
    return out[columns] if columns is not None else out


def available_features(features: pd.DataFrame, min_coverage: float = 0.2) -> tuple[list[str], dict[str, str]]:
    """The features this data can support, and why each other one is left out.

    A feature is used when at least ``min_coverage`` of the customers have a value and the values vary; a
    data set without web events has no sessions, one without returns no return rate.
    """
    used, dropped = [], {}
    for col in features.columns:
        s = features[col]
        cover = float(s.notna().mean()) if len(s) else 0.0
        if cover < min_coverage:
            dropped[col] = f"only {cover:.0%} of customers have a value" if cover else "the data has no values"
        elif s.nunique(dropna=True) < 2:
            dropped[col] = "every customer has the same value"
        else:
            used.append(col)
    return used, dropped


class QuantileClipper:
    """Clip each column to the 1st and 99th percentiles seen in fit (winsorising), so that a handful of extreme
    customers (a wholesaler among shoppers) cannot claim a cluster of their own. scikit-learn transformer."""

    def __init__(self, lower: float = 0.01, upper: float = 0.99) -> None:
        self.lower, self.upper = lower, upper

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.low_ = np.nanquantile(X, self.lower, axis=0)
        self.high_ = np.nanquantile(X, self.upper, axis=0)
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), self.low_, self.high_)

    def get_params(self, deep: bool = True) -> dict:
        return {"lower": self.lower, "upper": self.upper}

    def set_params(self, **params):
        for k, v in params.items():
            setattr(self, k, v)
        return self


def feature_pipeline(columns: list[str] | None = None):
    """scikit-learn pipeline: median imputation, log1p for skewed counts and amounts, winsorising at the 1st and
    99th percentiles, standard scaling."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    columns = list(CLUSTER_FEATURES) if columns is None else columns
    logs = [c for c in columns if CLUSTER_FEATURES[c][1] == "log"]
    plain = [c for c in columns if CLUSTER_FEATURES[c][1] != "log"]
    parts = []
    if logs:
        parts.append(("log", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p)), logs))
    if plain:
        parts.append(("plain", SimpleImputer(strategy="median"), plain))
    pre = ColumnTransformer(parts, verbose_feature_names_out=False)
    return make_pipeline(pre, QuantileClipper(), StandardScaler())


# Above this many repeat buyers, the number of clusters is chosen, the model fitted and its stability checked on a
# fixed random sample of this size, and every customer is then assigned by the fitted model: centroids and
# covariances of a hundred thousand points are those of a million for a few features, and the 36 fits of the
# step stay minutes instead of hours.
FIT_SAMPLE = 100_000
SILHOUETTE_SAMPLE = 10_000  # per-cluster silhouettes on at most this many customers (the exact value is O(n^2))


def fit_model(X: np.ndarray, k: int, method: str = "gmm", seed: int = 0):
    """A fitted k-means or Gaussian mixture with a shared (tied) covariance matrix; both offer ``predict``.

    The tied mixture is k-means with elliptical, correlated clusters: it fits features such as sessions and
    app share that move together better than k-means' round clusters.
    """
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    if method not in ("kmeans", "gmm"):
        raise ValueError(f"cluster_method must be 'kmeans' or 'gmm', got {method!r}")
    # On tens of thousands of rows and a few features, OpenMP/BLAS threads spend more time synchronising than
    # computing (measured 2.6-16x slower on two cores, same labels); threads pay off only on large data.
    with threads_for(len(X)):
        if method == "kmeans":
            return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(X)
        return GaussianMixture(n_components=k, covariance_type="tied", n_init=3, random_state=seed).fit(X)


def fit_labels(X: np.ndarray, k: int, method: str = "gmm", seed: int = 0) -> np.ndarray:
    """Cluster labels 0..k-1 of ``X`` from :func:`fit_model`."""
    return fit_model(X, k, method, seed).predict(X)


def silhouette_by_k(X: np.ndarray, k_values, seed: int = 0, sample_size: int = 3000, min_size: int = 0
                    ) -> pd.DataFrame:
    """Silhouette of k-means and of the Gaussian mixture for each k (on a fixed random sample of points), with
    the size of each method's smallest cluster."""
    from sklearn.metrics import pairwise_distances, silhouette_score
    from sklearn.utils import check_random_state

    # The points sklearn's silhouette_score(sample_size=..., random_state=seed) would draw, and their distances
    # computed once for every k and method instead of once per score.
    sample = check_random_state(seed).permutation(len(X))[:min(sample_size, len(X))]
    distances = pairwise_distances(X[sample])
    rows = []
    for k in k_values:
        row = {"k": k}
        for method in ["kmeans", "gmm"]:
            labels = fit_labels(X, k, method, seed)
            row[f"smallest_{method}"] = int(np.bincount(labels, minlength=k).min())
            if len(np.unique(labels)) < 2:
                row[f"silhouette_{method}"] = float("nan")
                continue
            row[f"silhouette_{method}"] = float(silhouette_score(distances, labels[sample], metric="precomputed"))
        rows.append(row)
    return pd.DataFrame(rows)


def choose_k(table: pd.DataFrame, method: str = "gmm") -> int:
    """The k with the highest silhouette for ``method`` (the smaller k on a tie)."""
    col = f"silhouette_{method}"
    return int(table.sort_values([col, "k"], ascending=[False, True]).iloc[0]["k"])


def value_order(labels: np.ndarray, value: pd.Series) -> dict[int, int]:
    """Map raw cluster labels to 1..k by descending mean ``value``, so that numbering is stable between runs.

    >>> value_order(np.array([0, 0, 1, 2]), pd.Series([1.0, 3.0, 9.0, 0.5]))
    {1: 1, 0: 2, 2: 3}
    """
    means = pd.Series(np.asarray(value, dtype=float)).groupby(labels).mean().sort_values(ascending=False)
    return {int(old): new for new, old in enumerate(means.index, start=1)}


def relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Apply a :func:`value_order` mapping."""
    return np.array([mapping[int(x)] for x in labels], dtype=int)


def bootstrap_stability(X: np.ndarray, labels: np.ndarray, k: int, method: str = "gmm", n_boot: int = 20,
                        seed: int = 0) -> pd.Series:
    """Hennig's (2007) bootstrap Jaccard stability of each cluster in ``labels``.

    For each bootstrap resample, the data are clustered again; each original cluster (restricted to the
    resampled points) is matched to its most similar new cluster by Jaccard similarity. The mean over
    resamples is the stability: >= 0.75 is usually read as stable, < 0.6 as dissolving.
    """
    rng = np.random.default_rng(seed)
    n = len(X)
    ids = np.unique(labels)
    scores = {c: [] for c in ids}
    for b in range(n_boot):
        pts = np.unique(rng.integers(0, n, n))
        new = fit_labels(X[pts], k, method, seed + b + 1)
        orig = labels[pts]
        for c in ids:
            in_c = orig == c
            if not in_c.any():
                continue
            best = 0.0
            for d in np.unique(new):
                in_d = new == d
                best = max(best, (in_c & in_d).sum() / (in_c | in_d).sum())
            scores[c].append(best)
    return pd.Series({c: float(np.mean(v)) for c, v in scores.items()}, name="stability")


def plot_silhouette(table: pd.DataFrame, chosen: int):
    """Silhouette by k for both methods, with the chosen k marked."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(table["k"], table["silhouette_kmeans"], marker="o", color=PALETTE[0], label="k-means")
    ax.plot(table["k"], table["silhouette_gmm"], marker="s", color=PALETTE[1], label="Gaussian mixture (tied)")
    ax.axvline(chosen, color="grey", ls="--")
    ax.text(chosen, ax.get_ylim()[0], f" chosen k = {chosen}", va="bottom", fontsize=11)
    ax.set_xticks(table["k"])
    ax.legend()
    label(ax, "How well separated are the clusters?", "Number of clusters k", "Mean silhouette (−1 to 1)")
    return fig


# ---------------------------------------------------------------------------
# Personas and quality
# ---------------------------------------------------------------------------

#: (trait, direction) -> (persona name, suggested action). Traits are compared with all profiled customers.
PERSONA_RULES: dict[tuple[str, int], tuple[str, str]] = {
    ("discount_share", 1): ("Deal seekers", "responds to promotions: send limited-time offers and bundles, "
                            "and keep full-price messages for other segments"),
    ("return_rate", 1): ("Impulse browsers", "browses often and returns a lot: push new arrivals in the app, "
                         "add fit guides and reviews to product pages to cut returns"),
    ("avg_order_value", 1): ("Premium loyalists", "high value without discounts: early access, loyalty "
                                 "perks and personal service; avoid training them on discounts"),
    ("orders_per_month", 1): ("Frequent buyers", "buys often: replenishment reminders and a loyalty tier"),
    ("sessions_per_month", 1): ("Heavy browsers", "browses a lot: retarget viewed products, app notifications"),
    ("share_app", 1): ("App-first shoppers", "lives in the app: app-exclusive drops and push messages"),
    ("open_rate", 1): ("E-mail fans", "reads our e-mails: richer newsletters and personalised picks"),
    ("sessions_per_month", -1): ("Occasional buyers", "rarely visits: time reminders to seasonal needs and "
                                 "re-engage before they lapse"),
    ("open_rate", -1): ("Hard to reach", "ignores e-mail: try other channels (app, retargeting, SMS with "
                        "consent)"),
    ("satisfaction", -1): ("Unhappy customers", "low satisfaction: fix service issues before selling more"),
    ("avg_order_value", -1): ("Budget shoppers", "small baskets: cross-sell low-price add-ons, free-"
                                  "shipping threshold"),
}


def trait_z_scores(features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Cluster means of each raw feature, in standard deviations from the mean of all profiled customers."""
    mu, sd = features.mean(), features.std(ddof=0).replace(0, np.nan)
    return ((features.groupby(labels).mean() - mu) / sd).rename_axis("cluster")


def persona_names(z: pd.DataFrame, min_z: float = 0.8) -> pd.DataFrame:
    """A unique name per cluster from its most distinctive trait, and actions from its strongest traits.

    Names are handed out globally, strongest |z| first: a cluster takes the name of its most extreme trait
    that has a rule in :data:`PERSONA_RULES`, unless a cluster with a more extreme value took it already. The
    suggested action joins the actions of up to three traits with |z| >= ``min_z``.
    """
    candidates = sorted(((abs(v), c, t, int(np.sign(v))) for c, row in z.iterrows() for t, v in row.dropna().items()
                         if (t, int(np.sign(v))) in PERSONA_RULES), key=lambda x: (-x[0], x[1], x[2]))
    chosen: dict = {}
    for _, cluster, trait, sign in candidates:
        name = PERSONA_RULES[(trait, sign)][0]
        if cluster not in chosen and name not in {n for n, _ in chosen.values()}:
            chosen[cluster] = (name, trait)
    rows = []
    for cluster, row in z.iterrows():
        name, trait = chosen.get(cluster, (f"Segment {cluster}", ""))
        ranked = sorted(((abs(v), t, int(np.sign(v))) for t, v in row.dropna().items()), reverse=True)
        strong = [(t, sg) for a, t, sg in ranked if a >= min_z and (t, sg) in PERSONA_RULES][:3]
        action = "; ".join(PERSONA_RULES[m][1] for m in strong) or (
            PERSONA_RULES[(trait, int(np.sign(row[trait])))][1] if trait else "no single trait stands out: "
            "treat with the general programme")
        rows.append({"cluster": cluster, "persona": name, "action": action, "defining_trait": trait})
    return pd.DataFrame(rows).set_index("cluster")


def _top(values: pd.Series, n: int = 2) -> str:
    counts = values.dropna().value_counts(normalize=True).head(n)
    return ", ".join(f"{k} ({v:.0%})" for k, v in counts.items()) if len(counts) else "unknown"


def cluster_profiles(c360: pd.DataFrame, features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Size, value share, demographics, channels, categories, discounts, returns and satisfaction per cluster.

    A trait the data has no values for is missing (NaN / "unknown"), never 0.
    """
    c = c360.set_index("customer_key").loc[features.index].assign(cluster=labels)
    g = c.groupby("cluster")

    def mean(col: str) -> pd.Series:
        return g[col].mean().astype(float) if col in c and c[col].notna().any() else \
            pd.Series(np.nan, index=g.size().index)

    nps = g["latest_nps"].agg(lambda s: nps_with_se(s)["nps"] if s.notna().any() else np.nan)
    sessions = features["sessions_per_month"] if "sessions_per_month" in features else \
        pd.Series(np.nan, index=features.index)
    prof = pd.DataFrame({
        "customers": g.size(), "net_revenue": g["net_revenue"].sum(),
        "avg_net_revenue": g["net_revenue"].mean(), "avg_orders": g["orders"].mean(),
        "avg_order_value": mean("avg_order_value"),
        "discount_share": mean("discount_share"), "return_rate": mean("return_rate"),
        "sessions_per_month": sessions.groupby(labels).mean().to_numpy(),
        "share_app": mean("share_app"), "open_rate": mean("open_rate"),
        "avg_rating": mean("avg_rating"), "nps": nps.astype(float),
        "consent_share": mean("marketing_consent"),
        "age_bands": g["age_band"].agg(_top), "countries": g["country"].agg(_top),
        "order_channels": g["preferred_channel"].agg(_top),
        "acquisition": g["acquisition_channel"].agg(lambda s: _top(s, 1)),
        "categories": g["preferred_category"].agg(_top),
    })
    prof["customer_share"] = prof["customers"] / prof["customers"].sum()
    total = prof["net_revenue"].sum()
    prof["value_share"] = prof["net_revenue"] / total if total else np.nan
    return prof.rename_axis("cluster")


def persona_card(name: str, prof: pd.Series, overall: pd.Series, action: str, currency: str = "") -> str:
    """A plain-language persona card (Markdown) from a cluster profile and the all-customer averages.

    Lines whose data the company does not have (no web events, no e-mails, no reviews…) are left out rather
    than shown as blanks.
    """
    from helpers.core.fmt import fmt_money
    from helpers.core.safety import md_escape

    def known(*cols: str) -> bool:
        return all(not (isinstance(prof[c], float) and np.isnan(prof[c])) and prof[c] != "unknown" for c in cols)

    def vs(col: str, fmt: str) -> str:
        return f"{format(prof[col], fmt)} (all: {format(overall[col], fmt)})"

    money = lambda v: fmt_money(v, currency)  # noqa: E731
    lines = [f"#### {md_escape(name)}",
             f"**{prof['customers']:,.0f} customers ({prof['customer_share']:.0%}) bringing "
             f"{prof['value_share']:.0%} of net revenue**, {money(prof['avg_net_revenue'])} each on average "
             f"(all: {money(overall['avg_net_revenue'])}).", ""]
    who = [f"aged {md_escape(prof['age_bands'])}" if known("age_bands") else "",
           f"from {md_escape(prof['countries'])}" if known("countries") else "",
           f"mostly acquired via {md_escape(prof['acquisition'])}" if known("acquisition") else ""]
    if any(who):
        lines.append("- **Who:** " + "; ".join(w for w in who if w) + ".")
    chan = [f"orders via {md_escape(prof['order_channels'])}" if known("order_channels") else "",
            f"{prof['share_app']:.0%} of sessions in the app (all: {overall['share_app']:.0%})"
            if known("share_app") else "",
            f"{prof['sessions_per_month']:.1f} sessions a month" if known("sessions_per_month") else ""]
    if any(chan):
        lines.append("- **Channels:** " + "; ".join(c for c in chan if c) + ".")
    buys = ([md_escape(prof["categories"])] if known("categories") else []) + [
        f"{prof['avg_orders']:.1f} orders, {money(prof['avg_order_value'])} per order (all: "
        f"{money(overall['avg_order_value'])})"]
    lines.append("- **Buys:** " + "; ".join(buys) + ".")
    dr = [f"{vs('discount_share', '.0%')} of items on discount" if known("discount_share") else "",
          f"returns {vs('return_rate', '.0%')} of units" if known("return_rate") else ""]
    if any(dr):
        lines.append("- **Discounts and returns:** " + "; ".join(x for x in dr if x) + ".")
    sat = [f"{prof['avg_rating']:.1f}★ average review" if known("avg_rating") else "",
           f"NPS {prof['nps']:+.0f} (latest answer of each customer)" if known("nps") else "",
           f"opens {prof['open_rate']:.0%} of e-mails" if known("open_rate") else ""]
    if any(sat):
        lines.append("- **Satisfaction and engagement:** " + "; ".join(s for s in sat if s) + ".")
    lines.append(f"- **Suggested action:** {md_escape(action)}.")
    return "\n".join(lines) + "\n"


def overall_profile(c360: pd.DataFrame, features: pd.DataFrame) -> pd.Series:
    """All-profiled-customer averages in the same columns as :func:`cluster_profiles`."""
    return cluster_profiles(c360, features, np.zeros(len(features), dtype=int)).iloc[0]


def quality_card(X: np.ndarray, labels: np.ndarray, stability: pd.Series, profiles: pd.DataFrame) -> pd.DataFrame:
    """Size, mean silhouette, bootstrap stability and separation in value and behaviour per cluster.

    *Value separation* is Cohen's d of net revenue per customer against all other clusters. *Behaviour
    separation* is the distance (in pooled standard deviations of the scaled features) from the cluster's
    centre to the nearest other centre.
    """
    from sklearn.metrics import silhouette_samples

    # exact up to SILHOUETTE_SAMPLE customers; above, on a fixed random sample (as silhouette_by_k does), because
    # the exact value needs every pairwise distance
    idx = np.arange(len(X))
    if len(X) > SILHOUETTE_SAMPLE:
        idx = np.sort(np.random.default_rng(0).choice(len(X), SILHOUETTE_SAMPLE, replace=False))
    sil = pd.Series(silhouette_samples(X[idx], labels[idx])).groupby(labels[idx]).mean()
    centres = pd.DataFrame(X).groupby(labels).mean()
    rows = []
    for c in profiles.index:
        others = centres.drop(index=c)
        dist = np.sqrt(((others - centres.loc[c]) ** 2).sum(axis=1)).min()
        rows.append({"cluster": c, "customers": int(profiles.at[c, "customers"]),
                     "silhouette": float(sil.get(c, np.nan)), "stability": float(stability[c]),
                     "stable": bool(stability[c] >= 0.75), "behaviour_separation_sd": float(dist)})
    return pd.DataFrame(rows).set_index("cluster")


def value_separation(c360: pd.DataFrame, features: pd.DataFrame, labels: np.ndarray) -> pd.Series:
    """Cohen's d of net revenue per customer, each cluster against all the others."""
    rev = c360.set_index("customer_key").loc[features.index, "net_revenue"].to_numpy()
    out = {}
    for c in np.unique(labels):
        a, b = rev[labels == c], rev[labels != c]
        pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
        out[c] = float((a.mean() - b.mean()) / pooled) if pooled > 0 else float("nan")
    return pd.Series(out, name="value_separation_d")


def plot_traits(z: pd.DataFrame, names: pd.Series):
    """Heat map of cluster trait z-scores: what makes each persona different."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    import textwrap

    wrapped = {c: textwrap.fill(n, 14) for c, n in names.items()}
    shown = z.rename(index=wrapped, columns={c: CLUSTER_FEATURES[c][2] for c in z.columns})
    fig, ax = plt.subplots(figsize=(10, 0.7 * len(shown) + 3.2))
    from helpers.core.plotting import DIVERGING

    sns.heatmap(shown.T, annot=True, fmt="+.1f", cmap=DIVERGING, center=0, vmin=-2, vmax=2, ax=ax,
                cbar_kws={"label": "difference from all customers (standard deviations)"})
    ax.set_title("What sets each persona apart")
    ax.set_xlabel("Persona")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=0)
    return fig


def plot_persona_value(profiles: pd.DataFrame, names: pd.Series):
    """Bars: share of customers vs share of net revenue per persona."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, percent

    p = profiles.rename(index=names.to_dict())
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(p))
    ax.bar(x - 0.2, p["customer_share"], width=0.4, color=PALETTE[0], label="customers")
    ax.bar(x + 0.2, p["value_share"], width=0.4, color=PALETTE[1], label="net revenue")
    ax.set_xticks(x, p.index)
    percent(ax)
    ax.legend()
    label(ax, "Personas: size and value", "", "Share of profiled customers / net revenue (%)")
    return fig


def persona_value_caption(profiles: pd.DataFrame, names: pd.Series) -> str:
    p = profiles.rename(index=names.to_dict())
    ratio = p["value_share"] / p["customer_share"]
    hi, lo = ratio.idxmax(), ratio.idxmin()
    return (f"{hi} bring {ratio[hi]:.1f}× their share of customers in revenue ({p.at[hi, 'value_share']:.0%} "
            f"from {p.at[hi, 'customer_share']:.0%}), while {lo} bring only {ratio[lo]:.1f}×.")


# ---------------------------------------------------------------------------
# Interaction and activation
# ---------------------------------------------------------------------------


def segment_explorer(profiles: pd.DataFrame, names: pd.Series, z: pd.DataFrame, actions: pd.Series,
                     currency: str = ""):
    """Choose a persona, see its card and trait chart; works in JupyterLab and in the exported HTML."""
    import matplotlib.pyplot as plt

    from helpers.core.fmt import fmt_money
    from helpers.core.plotting import PALETTE
    from helpers.core.widgets import choice_explorer, figure_html

    overall = (profiles["avg_net_revenue"] * profiles["customers"]).sum() / profiles["customers"].sum()
    panels = {}
    for c in profiles.index:
        text = (f"<p><strong>{html.escape(str(names[c]))}</strong>: {profiles.at[c, 'customers']:,} customers, "
                f"{profiles.at[c, 'value_share']:.0%} of revenue, "
                f"{html.escape(fmt_money(profiles.at[c, 'avg_net_revenue'], currency))} each (all customers: "
                f"{html.escape(fmt_money(overall, currency))}). Suggested action: {html.escape(str(actions[c]))}.</p>")
        fig, ax = plt.subplots(figsize=(7, 3.2))
        row = z.loc[c].dropna().rename(lambda t: CLUSTER_FEATURES.get(t, (None, None, t))[2])
        ax.barh(row.index, row.to_numpy(), color=[PALETTE[0] if v > 0 else PALETTE[1] for v in row])
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel("Difference from all customers (standard deviations)")
        ax.set_title(f"{names[c]}: traits")
        strongest = row.abs().idxmax()
        caption = (f"Bars to the right mean more than the average customer; the strongest trait of "
                   f"{names[c]} is {strongest.lower()} ({row[strongest]:+.1f} SD).")
        panels[str(names[c])] = text + figure_html(fig, f"Traits of {names[c]}: {caption}", caption)
    return choice_explorer("Persona", panels)


def slugify(name: str) -> str:
    """File-name friendly segment name.

    >>> slugify("Can't lose / VIP")
    'cant_lose_vip'
    """
    return re.sub(r"[^a-z0-9]+", "_", name.lower().replace("'", "")).strip("_")


AUDIENCE_COLUMNS = ["customer_pseudo_id", "persona", "persona_basis", "rfm_segment", "lifecycle_stage"]


def export_audiences(segments: pd.DataFrame, out_dir: str | Path, by: str = "persona") -> pd.DataFrame:
    """Write one CSV per segment (``<out_dir>/<slug>.csv``) of consenting customers' pseudonymous ids.

    ``segments`` needs ``customer_pseudo_id``, ``marketing_consent`` and the :data:`AUDIENCE_COLUMNS`.
    Earlier exports in ``out_dir`` are removed first, so a file never outlives its segment. When the data has
    no consent information at all, nothing is exported (:func:`audience_withheld` says why). Returns one row
    per audience: size of the segment, customers with consent, file written.
    """
    from helpers.core.safety import write_csv_safe

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.csv"):
        old.unlink()
    if audience_withheld(segments):
        return pd.DataFrame(columns=["audience", "customers", "with_consent", "exported", "file"])
    rows = []
    for name, group in segments.dropna(subset=[by]).groupby(by, sort=True):
        consented = group[group["marketing_consent"].fillna(False).astype(bool)]
        path = out_dir / f"{slugify(str(name))}.csv"
        write_csv_safe(consented[AUDIENCE_COLUMNS].sort_values("customer_pseudo_id"), path)
        rows.append({"audience": name, "customers": len(group), "with_consent": len(consented),
                     "exported": len(consented), "file": f"audiences/{path.name}"})
    return pd.DataFrame(rows)


def audience_withheld(segments: pd.DataFrame) -> str:
    """Why audience files cannot be exported, or "" when they can."""
    if "marketing_consent" not in segments or segments["marketing_consent"].isna().all():
        return ("The data has no marketing-consent information, so no audience file is exported: contacting "
                "customers without recorded consent would breach the GDPR. Map a consent column "
                "(customers.marketing_consent) to export audiences.")
    if "persona" not in segments or segments["persona"].isna().all():
        return "There are no personas to export (see above)."
    return ""


def segment_table(c360: pd.DataFrame, scored: pd.DataFrame, stages: pd.Series, clusters: pd.Series,
                  personas: pd.DataFrame, fitted_keys: pd.Index) -> pd.DataFrame:
    """One row per customer: pseudonymous id, consent, RFM scores and segment, lifecycle stage, cluster, persona.

    ``clusters`` holds the cluster number of every buyer (index ``customer_key``); ``fitted_keys`` are those the
    clusters were fitted on (``persona_basis`` says which). Customers without an order get no persona.
    """
    out = c360.set_index("customer_key")[["customer_pseudo_id", "marketing_consent"]]
    out = out.join(scored[["recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
                           "fm_score", "rfm_segment"]])
    out["lifecycle_stage"] = stages.reindex(out.index).astype("string")
    out["cluster"] = clusters.reindex(out.index).astype("Int64")
    out["persona"] = out["cluster"].map(personas["persona"]).astype("string")
    out["persona_basis"] = pd.Series("none (no order)", index=out.index, dtype="string")
    out.loc[out["cluster"].notna(), "persona_basis"] = "nearest persona (one order)"
    out.loc[out.index.isin(fitted_keys), "persona_basis"] = "clustered"
    out["rfm_segment"] = out["rfm_segment"].astype("string")
    return out.reset_index()


def stage_counts(stages: pd.Series) -> pd.DataFrame:
    """Customers per lifecycle stage, in lifecycle order, without the not-yet-registered."""
    counts = stages.value_counts().reindex([s for s in STAGES if s != "not yet registered"]).fillna(0).astype(int)
    return pd.DataFrame({"customers": counts, "share": counts / counts.sum()}).rename_axis("stage").reset_index()


def plot_stages(counts: pd.DataFrame):
    """Bars: customers per lifecycle stage."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, thousands

    fig, ax = plt.subplots(figsize=(9, 3.8))
    ax.bar(counts["stage"], counts["customers"], color=PALETTE[0])
    for x, (n, sh) in enumerate(zip(counts["customers"], counts["share"])):
        ax.text(x, n, f"{sh:.0%}", ha="center", va="bottom", fontsize=10)
    thousands(ax)
    label(ax, "Customers by lifecycle stage", "Lifecycle stage", "Customers")
    return fig


def stages_caption(counts: pd.DataFrame, t: LifecycleThresholds) -> str:
    """One sentence on the stage chart, in the registry's words (active customers = new, trial, active or
    reactivated)."""
    c = counts.set_index("stage")["customers"]
    total = max(int(c.sum()), 1)
    active = int(c.reindex(ACTIVE_STAGES).fillna(0).sum())
    risk, churned = int(c.get("at risk", 0)), int(c.get("churned", 0))
    return (f"{active:,} active customers ({active / total:.0%} of {total:,} customers: new, trial, active or "
            f"reactivated); {risk:,} customers at risk (no order for over {t.at_risk_days} days) and {churned:,} "
            f"churned customers (over {t.churn_days} days).")


def feature_table() -> pd.DataFrame:
    """The clustering features with their family, transform and meaning."""
    return pd.DataFrame([{"feature": k, "family": v[0], "transform": "log(1 + x)" if v[1] == "log" else "none",
                          "meaning": v[2]} for k, v in CLUSTER_FEATURES.items()])


def method_agreement(labels: np.ndarray, other: np.ndarray) -> float:
    """Adjusted Rand index between two clusterings of the same customers (1 = identical partitions)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(labels, other))


def silhouette_caption(table: pd.DataFrame, k: int, method: str, agreement: float, n_clustered: int,
                       n_nearest: int) -> str:
    t = table.set_index("k")
    col = f"silhouette_{method}"
    runner_up = t[col].drop(index=k).max() if len(t) > 1 else float("nan")
    who = "Gaussian mixture" if method == "gmm" else "k-means"
    return (f"Clusters were fitted on {n_clustered:,} repeat buyers ({n_nearest:,} one-order buyers then joined the "
            f"nearest); k = {k} separates them "
            f"best ({who} silhouette {t.at[k, col]:.2f} against at most {runner_up:.2f} for any other k), and "
            f"k-means and the mixture agree closely on the {k} clusters (adjusted Rand index {agreement:.2f}).")


def traits_caption(z: pd.DataFrame, names: pd.Series) -> str:
    parts = []
    for c in z.index:
        trait = z.loc[c].abs().idxmax()
        parts.append(f"{names[c]} stand out by {CLUSTER_FEATURES[trait][2]} ({z.at[c, trait]:+.1f} SD)")
    return "; ".join(parts) + "."


def quality_sentence(quality: pd.DataFrame, names: pd.Series) -> str:
    unstable = [names[c] for c in quality.index if not quality.at[c, "stable"]]
    base = (f"All {len(quality)} clusters are stable (bootstrap Jaccard ≥ 0.75; lowest "
            f"{quality['stability'].min():.2f})" if not unstable else
            f"Unstable clusters (bootstrap Jaccard < 0.75): {', '.join(unstable)}; treat them as tentative")
    return (f"{base}. Mean silhouette per cluster ranges from {quality['silhouette'].min():.2f} to "
            f"{quality['silhouette'].max():.2f}, and every cluster centre is at least "
            f"{quality['behaviour_separation_sd'].min():.1f} standard deviations from the next.")


def recovery_sentence(check: dict | None) -> str:
    if check is None:
        return "No generator truth in this data folder (real data): the truth check is skipped."
    verdict = "recover" if check["ari"] >= 0.9 else "do NOT recover"
    return (f"On the synthetic sample the personas {verdict} the planted customer types: adjusted Rand index "
            f"{check['ari']:.3f} over {check['n']:,} customers (1 = perfect agreement; the test requires ≥ 0.9).")


def assign_nearest(c360: pd.DataFrame, fitted_keys: pd.Index, pipeline, model, mapping: dict[int, int],
                   columns: list[str] | None = None) -> pd.Series:
    """Cluster of buyers not used for fitting (e.g. one-order customers), from the fitted pipeline and model."""
    rest = clustering_features(c360, min_orders=1, columns=columns).drop(index=fitted_keys, errors="ignore")
    if rest.empty:
        return pd.Series(dtype="int64", name="cluster")
    return pd.Series(relabel(model.predict(pipeline.transform(rest)), mapping), index=rest.index, name="cluster")


@dataclass
class PersonaFit:
    """Everything the clustering step produces (see :func:`fit_personas`)."""

    features: pd.DataFrame  # raw features of the customers the clusters were fitted on
    pipeline: object  # fitted feature pipeline
    X: np.ndarray  # scaled features
    by_k: pd.DataFrame  # silhouette by k and method
    k: int
    method: str
    model: object  # fitted k-means or Gaussian mixture
    mapping: dict[int, int]  # raw label -> cluster number (1 = highest value)
    labels: np.ndarray  # cluster number of each fitted customer
    nearest: pd.Series  # cluster number of the other buyers, by customer_key
    agreement: float  # ARI between the chosen method and the other one at the same k
    stability: pd.Series  # bootstrap Jaccard per cluster
    used: list[str] = field(default_factory=list)  # features the data supports
    dropped: dict[str, str] = field(default_factory=dict)  # features left out, with the reason
    min_size: int = 0  # smallest persona allowed
    skipped: str = ""  # why there are no personas (empty when there are)

    @classmethod
    def skip(cls, reason: str, features: pd.DataFrame, dropped: dict[str, str]) -> "PersonaFit":
        return cls(features, None, np.empty((0, 0)), pd.DataFrame(), 0, "", None, {}, np.array([], dtype=int),
                   pd.Series(dtype="int64"), float("nan"), pd.Series(dtype=float), list(features.columns), dropped,
                   0, reason)


MIN_CLUSTER_SHARE = 0.05  # a persona must hold at least this share of the customers it was fitted on...
MIN_CLUSTER_SIZE = 50  # ...and at least this many customers
MIN_CLUSTERED = 100  # fewer repeat buyers than this: no clustering


def fit_personas(c360: pd.DataFrame, min_orders: int = 2, k_values: range = range(2, 9), n_clusters: int = 0,
                 method: str = "gmm", n_bootstrap: int = 20, seed: int = 42) -> PersonaFit:
    """Fit the clustering: features the data supports, pipeline, k by silhouette (unless ``n_clusters``) among
    the k whose every cluster is large enough, labels ordered by value, agreement with the other method,
    bootstrap stability, and nearest-cluster assignment of the other buyers.

    When the data cannot support personas (too few repeat buyers, too few usable features, or no k with large
    enough clusters), the returned fit has ``skipped`` set to the reason and no labels.
    """
    raw_features = clustering_features(c360, min_orders)
    used, dropped = available_features(raw_features)
    features = raw_features[used]
    if len(features) < MIN_CLUSTERED:
        return PersonaFit.skip(f"only {len(features):,} customers have {min_orders} or more orders; personas need "
                               f"at least {MIN_CLUSTERED} repeat buyers to be worth acting on", features, dropped)
    if len(used) < 2:
        return PersonaFit.skip("the data supports fewer than two behavioural features (" + "; ".join(
            f"{k}: {v}" for k, v in dropped.items()) + ")", features, dropped)
    pipeline = feature_pipeline(used).fit(features)
    X = pipeline.transform(features)
    min_size = max(MIN_CLUSTER_SIZE, int(math.ceil(MIN_CLUSTER_SHARE * len(features))))
    k_values = [k for k in k_values if k * min_size <= len(features)]
    if not k_values and not n_clusters:
        return PersonaFit.skip(f"{len(features):,} repeat buyers cannot form two personas of at least {min_size} "
                               "customers each", features, dropped)
    # fit on a sample when the buyers are many (FIT_SAMPLE); the cluster-size rule holds on that sample
    fit_rows = np.sort(np.random.default_rng(seed).choice(len(X), FIT_SAMPLE, replace=False)) \
        if len(X) > FIT_SAMPLE else slice(None)
    X_fit = X[fit_rows]
    fit_min_size = max(MIN_CLUSTER_SIZE, int(math.ceil(MIN_CLUSTER_SHARE * len(X_fit))))
    by_k = silhouette_by_k(X_fit, k_values or [n_clusters], seed, min_size=fit_min_size)
    if n_clusters:
        k = n_clusters
    else:
        ok = by_k[by_k[f"smallest_{method}"] >= fit_min_size]
        if ok.empty:  # the other method may give balanced clusters where this one isolates a few customers
            other_method = "kmeans" if method == "gmm" else "gmm"
            if (by_k[f"smallest_{other_method}"] >= fit_min_size).any():
                method = other_method
                ok = by_k[by_k[f"smallest_{method}"] >= fit_min_size]
        if ok.empty:
            return PersonaFit.skip(f"no number of clusters gives personas of at least {min_size} customers each "
                                   f"({MIN_CLUSTER_SHARE:.0%} of the {len(features):,} repeat buyers)", features,
                                   dropped)
        k = choose_k(ok, method)
    model = fit_model(X_fit, k, method, seed)
    raw = model.predict(X)
    mapping = value_order(raw, c360.set_index("customer_key").loc[features.index, "net_revenue"])
    labels = relabel(raw, mapping)
    other = "kmeans" if method == "gmm" else "gmm"
    agreement = method_agreement(labels[fit_rows], fit_labels(X_fit, k, other, seed))
    stability = bootstrap_stability(X_fit, labels[fit_rows], k, method, n_bootstrap, seed)
    nearest = assign_nearest(c360, features.index, pipeline, model, mapping, used)
    return PersonaFit(features, pipeline, X, by_k, k, method, model, mapping, labels, nearest, agreement, stability,
                      used, dropped, min_size)



# ---------------------------------------------------------------------------
# The whole step, for notebook 03
# ---------------------------------------------------------------------------


@dataclass
class Segmentation:
    """Everything report 03 shows, computed once by :func:`segment_customers`."""

    as_of: pd.Timestamp
    earlier: pd.Timestamp
    scored: pd.DataFrame
    rfm_summary: pd.DataFrame
    gaps: pd.Series
    derived: LifecycleThresholds
    thresholds: LifecycleThresholds
    stages: pd.Series
    stages_before: pd.Series
    counts: pd.DataFrame
    fit: PersonaFit
    segments: pd.DataFrame
    z: pd.DataFrame | None = None
    personas: pd.DataFrame | None = None
    profiles: pd.DataFrame | None = None
    overall: pd.Series | None = None
    quality: pd.DataFrame | None = None

    @property
    def names(self) -> pd.Series:
        return self.personas["persona"] if self.personas is not None else pd.Series(dtype="string")

    @property
    def has_personas(self) -> bool:
        return not self.fit.skipped


@by_size(lambda c360, *args, **kwargs: len(c360))
def segment_customers(c360: pd.DataFrame, orders: pd.DataFrame, as_of: pd.Timestamp, rfm_method: str = "quantile",
                      cuts: dict[str, list[float]] | None = None, new_days: int = 0, at_risk_days: int = 0,
                      churn_days: int = 0, transition_days: int = 180, min_orders: int = 2,
                      k_values: range = range(2, 9), n_clusters: int = 0, cluster_method: str = "gmm",
                      n_bootstrap: int = 20, seed: int = 42) -> Segmentation:
    """RFM, lifecycle stages now and ``transition_days`` earlier, personas (when the data supports them) and the
    per-customer segment table."""
    scored = rfm_scores(rfm_table(orders, as_of, pd.Index(c360["customer_key"])), rfm_method, cuts)
    gaps = inter_purchase_days(orders, until=as_of)
    derived = derive_thresholds(gaps)
    thresholds = LifecycleThresholds(new_days or derived.new_days, at_risk_days or derived.at_risk_days,
                                     churn_days or derived.churn_days)
    customers = c360[["customer_key", "signup_date"]]
    stages = lifecycle_stages(orders, customers, as_of, thresholds)
    earlier = as_of - pd.Timedelta(days=transition_days)
    stages_before = lifecycle_stages(orders, customers, earlier, thresholds)
    fit = fit_personas(c360, min_orders, k_values, n_clusters, cluster_method, n_bootstrap, seed)
    out = Segmentation(as_of, earlier, scored, rfm_summary(scored), gaps, derived, thresholds, stages, stages_before,
                       stage_counts(stages), fit, pd.DataFrame())
    if fit.skipped:
        clusters = pd.Series(dtype="int64")
        personas = pd.DataFrame({"persona": pd.Series(dtype="string")})
    else:
        out.z = trait_z_scores(fit.features, fit.labels)
        out.personas = persona_names(out.z)
        # profiles describe everyone who carries the persona (clustered or assigned to the nearest), so a
        # persona's size and NPS here are those of its audience file and of report 05
        assigned = pd.concat([pd.Series(fit.labels, index=fit.features.index), fit.nearest])
        out.profiles = cluster_profiles(c360, fit.features.reindex(assigned.index), assigned.to_numpy())
        out.overall = overall_profile(c360, fit.features.reindex(assigned.index))
        out.quality = quality_card(fit.X, fit.labels, fit.stability, out.profiles).join(
            value_separation(c360, fit.features, fit.labels))
        clusters = pd.concat([pd.Series(fit.labels, index=fit.features.index), fit.nearest])
        personas = out.personas
    out.segments = segment_table(c360, scored, stages, clusters, personas, fit.features.index)
    return out


def conclusion(seg: Segmentation, currency: str) -> list[str]:
    """Two to four sentences answering the page's question, with the money figures."""
    from helpers.core.fmt import fmt_money

    s = seg.rfm_summary[seg.rfm_summary["segment"] != NO_PURCHASE].set_index("segment")
    out = []
    if len(s):
        top = s["revenue_share"].idxmax()
        out.append(f"**{top}** are {s.at[top, 'customer_share']:.0%} of buyers and bring "
                   f"{s.at[top, 'revenue_share']:.0%} of net revenue ({fmt_money(s.at[top, 'revenue'], currency)}).")
        risk = s.reindex(["At risk", "Can't lose"])
        if risk["customers"].fillna(0).sum():
            out.append(f"{int(risk['customers'].fillna(0).sum()):,} buyers who used to buy well have gone quiet "
                       f"('At risk' and 'Can't lose'): {fmt_money(risk['revenue'].fillna(0).sum(), currency)} of past "
                       "revenue that a win-back campaign could protect.")
    c = seg.counts.set_index("stage")["customers"]
    active = int(c.reindex(ACTIVE_STAGES).fillna(0).sum())
    out.append(f"**{active:,} active customers** of {int(c.sum()):,} customers (new, trial, active or reactivated); "
               f"{int(c.get('at risk', 0)):,} customers at risk and {int(c.get('churned', 0)):,} churned customers "
               f"(no order for more than {seg.thresholds.churn_days} days).")
    if seg.has_personas:
        p = seg.profiles.rename(index=seg.names.to_dict())
        top = p["value_share"].idxmax()
        out.append(f"{len(p)} personas describe the {len(seg.fit.features):,} buyers with enough history to cluster; {top} hold "
                   f"{p.at[top, 'value_share']:.0%} of their revenue with {p.at[top, 'customer_share']:.0%} of them.")
    else:
        out.append(f"No personas: {seg.fit.skipped}.")
    return out


ACTIVE_STAGES = ["new", "trial", "active", "reactivated"]


def features_sentence(fit: PersonaFit) -> str:
    """Which behavioural features the data supports, and which it does not (with the reason)."""
    used = ", ".join(CLUSTER_FEATURES[c][2] for c in fit.used)
    text = f"Features used: {used}."
    if fit.dropped:
        text += " Left out: " + "; ".join(f"{CLUSTER_FEATURES[c][2]} ({why})" for c, why in fit.dropped.items()) + "."
    return text


def step_metrics(seg: Segmentation, audiences: pd.DataFrame, withheld: str, cluster_method: str,
                 recovery: dict | None) -> dict:
    """What report 03 hands to the summary and the index."""
    fit = seg.fit
    out = {"analysis_date": f"{seg.as_of:%Y-%m-%d}", "thresholds": vars(seg.thresholds),
           "stages": seg.counts.set_index("stage")["customers"].to_dict(),
           "stages_before": stage_counts(seg.stages_before).set_index("stage")["customers"].to_dict(),
           "stages_before_date": f"{seg.earlier:%Y-%m-%d}",
           "rfm_segments": seg.rfm_summary.set_index("segment")["customers"].to_dict(),
           "one_order_share": one_order_share(seg.scored),
           "personas_skipped": fit.skipped, "audience_withheld": withheld,
           "audience_exported": int(audiences["exported"].sum()) if len(audiences) else 0}
    if not fit.skipped:
        seg_personas = seg.segments.dropna(subset=["persona"]).groupby("persona").size()
        out.update({"clustered_customers": len(fit.features), "assigned_nearest": len(fit.nearest), "k": int(fit.k),
                    "cluster_method": cluster_method,
                    "silhouette": float(fit.by_k.set_index("k").at[fit.k, f"silhouette_{cluster_method}"]),
                    "min_stability": float(fit.stability.min()),
                    "personas": {str(k): int(v) for k, v in seg_personas.items()},
                    "personas_fitted": {seg.names[c]: int(seg.profiles.at[c, "customers"]) for c in seg.profiles.index},
                    "ari_planted": recovery["ari"] if recovery else None})
    return out


def rfm_display(summary: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The RFM summary as a stakeholder reads it: shares in %, money in the reporting currency."""
    from helpers.core.fmt import fmt_money, fmt_pct

    return pd.DataFrame({"segment": summary["segment"], "customers": summary["customers"],
                         "share of customers": summary["customer_share"].map(fmt_pct),
                         "share of revenue": summary["revenue_share"].map(fmt_pct),
                         "days since last order": summary["avg_recency_days"].round(0),
                         "orders per customer": summary["avg_orders"].round(1),
                         "revenue per customer": summary["avg_revenue"].map(lambda v: fmt_money(v, currency)),
                         "what to do": summary["action"]})


def save_outputs(seg: Segmentation, processed_dir: str | Path) -> None:
    """Write ``segments.parquet`` (one row per customer) and ``personas.parquet`` (profiles and quality)."""
    from helpers.core.tables import save_table

    processed_dir = Path(processed_dir)
    save_table(seg.segments, processed_dir / "segments.parquet")
    if seg.has_personas:
        table = seg.personas.join(seg.profiles).join(seg.quality.drop(columns="customers")).reset_index()
    else:
        table = pd.DataFrame({"cluster": pd.Series(dtype="int64"), "persona": pd.Series(dtype="string")})
    save_table(table, processed_dir / "personas.parquet")


def kpi_values(seg: Segmentation) -> dict:
    """The registry KPIs report 03 owns (see :mod:`helpers.core.kpis`)."""
    c = seg.counts.set_index("stage")["customers"]
    return {"active_customers": int(c.reindex(ACTIVE_STAGES).fillna(0).sum()),
            "at_risk_customers": int(c.get("at risk", 0)), "churned_customers": int(c.get("churned", 0))}
