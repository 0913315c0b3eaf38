"""Health checks that come before any A/B result: is the split as intended overall and in every slice, did
units see more than one arm, were the arms alike before the test, and how did traffic arrive.

A check that fails blocks the decision (:func:`blocking`), and the report says which and why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

SRM_THRESHOLD = 0.001  # p-value below which a split is called broken (overall and, after Holm, per slice)
CROSSOVER_LIMIT = 0.01  # share of units exposed to more than one arm above which the test is not trusted
BIAS_BLOCK = 0.001  # Holm-adjusted p-value of a pre-period difference that blocks the decision
BIAS_WARN = 0.05


def _srm(counts: pd.Series, shares: pd.Series) -> tuple[float, float]:
    expected = shares.reindex(counts.index).fillna(0) / shares.reindex(counts.index).fillna(0).sum() * counts.sum()
    chi2, p = stats.chisquare(counts.to_numpy(dtype=float), expected.to_numpy(dtype=float))
    return float(chi2), float(p)


def srm_by_dimension(units: pd.DataFrame, variant: str, dimensions: list[str], intended: dict | None = None,
                     min_units: int = 100) -> pd.DataFrame:
    """The sample-ratio test overall and within every value of each dimension (device, country, persona, day)
    with at least ``min_units`` units; slice p-values are Holm-adjusted across all slices, so many slices do not
    raise false alarms, and a broken slice is named."""
    from statsmodels.stats.multitest import multipletests

    arms = sorted(units[variant].dropna().unique())
    shares = pd.Series(intended if intended else {a: 1.0 for a in arms}, dtype=float)
    rows = []
    counts = units[variant].value_counts().reindex(arms, fill_value=0)
    chi2, p = _srm(counts, shares)
    rows.append({"dimension": "(all units)", "value": "", "units": int(counts.sum()), "chi2": chi2, "p_value": p,
                 **{f"share {a}": counts[a] / counts.sum() for a in arms}})
    for dim in dimensions:
        if dim not in units:
            continue
        for value, part in units.dropna(subset=[dim]).groupby(dim):
            c = part[variant].value_counts().reindex(arms, fill_value=0)
            if c.sum() < min_units:
                continue
            chi2, p = _srm(c, shares)
            rows.append({"dimension": dim, "value": str(value), "units": int(c.sum()), "chi2": chi2, "p_value": p,
                         **{f"share {a}": c[a] / c.sum() for a in arms}})
    out = pd.DataFrame(rows)
    slices = out["dimension"] != "(all units)"
    out["p_holm"] = out["p_value"]
    if slices.any():
        out.loc[slices, "p_holm"] = multipletests(out.loc[slices, "p_value"], method="holm")[1]
    out["mismatch"] = out["p_holm"] < SRM_THRESHOLD
    return out


def crossover(exposures: pd.DataFrame, unit: str, variant: str) -> dict:
    """Units exposed to more than one arm (a unit seen in both the control and the variant): their count and
    share. Such units are dropped from the analysis; above :data:`CROSSOVER_LIMIT` the test is not trusted."""
    arms_per_unit = exposures.groupby(unit)[variant].nunique()
    crossed = arms_per_unit[arms_per_unit > 1].index
    share = len(crossed) / max(len(arms_per_unit), 1)
    return {"units": int(len(arms_per_unit)), "crossed": int(len(crossed)), "share": float(share),
            "crossed_units": list(crossed), "fail": bool(share > CROSSOVER_LIMIT)}


def pre_exposure_bias(units: pd.DataFrame, variant: str, control: str, pre_metrics: list[str]) -> pd.DataFrame:
    """Did the arms differ before the test? Welch's t-test of each pre-period metric, each arm against control,
    Holm-adjusted: a real difference means the assignment was not random (or the arms were built from different
    populations), and every result would be confounded."""
    from statsmodels.stats.multitest import multipletests

    rows = []
    c = units[units[variant] == control]
    for m in [m for m in pre_metrics if m in units]:
        for arm in sorted(a for a in units[variant].unique() if a != control):
            t = units[units[variant] == arm]
            x_c, x_t = c[m].astype(float), t[m].astype(float)
            if x_c.var() == 0 and x_t.var() == 0:
                continue
            res = stats.ttest_ind(x_t, x_c, equal_var=False)
            rows.append({"metric": m, "arm": arm, "control_mean": float(x_c.mean()), "arm_mean": float(x_t.mean()),
                         "relative_difference": float(x_t.mean() / x_c.mean() - 1) if x_c.mean() else np.nan,
                         "p_value": float(res.pvalue)})
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = multipletests(out["p_value"], method="holm")[1]
        out["status"] = np.where(out["p_holm"] < BIAS_BLOCK, "fail", np.where(out["p_holm"] < BIAS_WARN, "warn",
                                                                                 "pass"))
    return out


def traffic(units: pd.DataFrame, variant: str, when: str, freq: str | None = None) -> pd.DataFrame:
    """Units per arm per day (per hour when everything arrived within three days; or ``freq``) and cumulatively:
    a sudden gap or jump shows a tracking or rollout problem that the totals hide."""
    stamps = pd.to_datetime(units[when])
    if freq is None:
        freq = "h" if stamps.max() - stamps.min() < pd.Timedelta(days=3) else "D"
    days = stamps.dt.floor(freq)
    daily = units.assign(_day=days).groupby(["_day", variant]).size().unstack(fill_value=0).sort_index()
    daily.index.name = "hour" if freq == "h" else "day"
    cumulative = daily.cumsum()
    out = pd.concat({"daily": daily, "cumulative": cumulative}, axis=1)
    out.attrs["period"] = "hour" if freq == "h" else "day"
    return out


def health_checks(units: pd.DataFrame, variant: str, control: str, intended: dict | None, dimensions: list[str],
                  pre_metrics: list[str], exposures: pd.DataFrame | None = None, unit: str | None = None,
                  when: str | None = None) -> tuple[pd.DataFrame, dict]:
    """All checks as one table (check, status pass/warn/fail, figure, detail) and the detailed results."""
    rows, detail = [], {}
    dims = [d for d in dimensions if d in units]
    if when and when in units and units[when].notna().any():
        day = f"_{when}_day"
        units = units.assign(**{day: pd.to_datetime(units[when]).dt.date.astype(str)})
        dims.append(day)
        detail["traffic"] = traffic(units, variant, when)
    srm = srm_by_dimension(units, variant, dims, intended)
    detail["srm"] = srm
    overall = srm.iloc[0]
    rows.append({"check": "sample ratio (all units)", "status": "fail" if overall["mismatch"] else "pass",
                 "figure": f"χ² p = {overall['p_value']:.3g}",
                 "detail": "split as intended" if not overall["mismatch"] else
                 "the arms did not receive the intended split: assignment or tracking is broken"})
    slices = srm.iloc[1:]
    if len(slices):
        broken = slices[slices["mismatch"]]
        rows.append({"check": "sample ratio by " + ", ".join(d.strip("_").replace("_day", " day") for d in dims),
                     "status": "fail" if len(broken) else "pass",
                     "figure": f"{len(slices)} slices, smallest Holm p = {slices['p_holm'].min():.3g}",
                     "detail": ("broken in " + ", ".join(f"{r.dimension.strip('_')} = {r.value}"
                                                         for r in broken.itertuples()))
                     if len(broken) else "no slice deviates from the intended split"})
    if exposures is not None and unit:
        cx = crossover(exposures, unit, variant)
        detail["crossover"] = cx
        rows.append({"check": "units in more than one arm", "status": "fail" if cx["fail"] else
                     ("warn" if cx["crossed"] else "pass"),
                     "figure": f"{cx['crossed']:,} of {cx['units']:,} ({cx['share']:.2%})",
                     "detail": (f"above {CROSSOVER_LIMIT:.0%}: exposure is leaking between arms" if cx["fail"] else
                                "dropped from the analysis" if cx["crossed"] else "every unit saw one arm")})
    bias = pre_exposure_bias(units, variant, control, pre_metrics)
    detail["bias"] = bias
    if len(bias):
        worst = bias.sort_values("p_holm").iloc[0]
        status = "fail" if (bias["status"] == "fail").any() else "warn" if (bias["status"] == "warn").any() else \
            "pass"
        rows.append({"check": "pre-exposure bias (" + ", ".join(bias["metric"].unique()) + ")", "status": status,
                     "figure": f"largest difference {worst['relative_difference']:+.1%} ({worst['metric']}, "
                               f"Holm p = {worst['p_holm']:.3g})",
                     "detail": "the arms differed before the test" if status == "fail" else
                     "arms alike before the test" if status == "pass" else "a small pre-period difference; "
                     "CUPED or regression adjustment corrects for it"})
    return pd.DataFrame(rows), detail


def blocking(checks: pd.DataFrame) -> list[str]:
    """The failed checks, each as a short reason, for the decision."""
    failed = checks[checks["status"] == "fail"]
    return [f"{r.check}: {r.detail}" for r in failed.itertuples()]


def plot_traffic(traffic_table: pd.DataFrame):
    """Daily and cumulative units per arm."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, thousands

    daily, cumulative = traffic_table["daily"], traffic_table["cumulative"]
    period = traffic_table.attrs.get("period", "day")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, arm in enumerate(daily.columns):
        style = {"color": PALETTE[i % len(PALETTE)], "label": str(arm), "marker": "o" if len(daily) < 15 else None}
        axes[0].plot(daily.index, daily[arm], **style)
        axes[1].plot(cumulative.index, cumulative[arm], **style)
    for ax in axes:
        thousands(ax, "y")
        ax.tick_params(axis="x", labelrotation=30)
    axes[0].legend(title="arm", fontsize=9)
    label(axes[0], f"Units per {period} by arm", period.capitalize(), f"Units per {period}")
    label(axes[1], "Cumulative units by arm", period.capitalize(), "Units (cumulative)")
    fig.tight_layout()
    return fig


def traffic_caption(traffic_table: pd.DataFrame) -> str:
    cumulative = traffic_table["cumulative"].iloc[-1]
    shares = ", ".join(f"{arm} {v / cumulative.sum():.1%}" for arm, v in cumulative.items())
    period = traffic_table.attrs.get("period", "day")
    return (f"Units arrived over {len(traffic_table)} {period}(s); the final shares are {shares}. Lines that keep "
            f"their proportion mean the split held every {period}; a gap or a jump in one arm points to a tracking "
            "or rollout problem.")
