"""The executive summary: headline KPIs from every step's metrics file, each with one sentence read from the numbers.

Notebook 07 and ``reports/index.html`` show the same headline, built by :func:`executive_kpis`. A step that has
not run shows "–" and says so instead of a number.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from helpers.core.fmt import fmt_number

ACTIVE_STAGES = ["new", "trial", "active", "reactivated"]
STEP_TITLES = {"02_cleaning": "cleaning", "03_segmentation": "segmentation", "04_clv": "CLV",
               "05_sentiment": "sentiment", "06_ab_test": "A/B tests"}


_SKIPPED: dict[str, str] = {}


def _missing(label: str, step: str) -> dict:
    reason = _SKIPPED.get(step)
    sentence = (f"Not available: {reason}" if reason else
                f"Not available: step {step[:2]} ({STEP_TITLES.get(step, step)}) has not run.")
    return {"label": label, "value": "–", "step": step, "sentence": sentence}


def _m(metrics: dict[str, dict], step: str) -> dict | None:
    m = metrics.get(step, {}).get("metrics")
    if m and m.get("skipped"):
        _SKIPPED[step] = m["skipped"]
        return None
    return m


def customers_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "02_cleaning")
    if not m:
        return _missing("customers", "02_cleaning")
    balance = ("every input row is accounted for" if m.get("balanced")
               else "WARNING: the row counts do not balance")
    return {"label": "customers (360° view)", "value": m["customers"], "step": "02_cleaning",
            "sentence": f"{m['customers']:,} customers after merging {m.get('merged_customers', 0):,} duplicate "
                        f"accounts across channels; {m['quarantined']:,} of {m['records_in']:,} input rows were "
                        f"quarantined and {balance}."}


def revenue_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "02_cleaning")
    if not m:
        return _missing("net revenue", "02_cleaning")
    months = (_m(metrics, "01_collection") or {}).get("months")
    period = f" over the {months}-month window" if months else ""
    per_customer = m["net_revenue"] / m["customers"] if m["customers"] else 0.0
    return {"label": "net revenue", "value": m["net_revenue"], "unit": m.get("currency", "EUR"), "step": "02_cleaning",
            "sentence": f"{fmt_number(m['net_revenue'], m.get('currency', 'EUR'))} net of returns and cancellations{period}, "
                        f"{fmt_number(per_customer, m.get('currency', 'EUR'))} per customer."}


def active_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "03_segmentation")
    if not m or "stages" not in m:
        return _missing("active customers", "03_segmentation")
    stages = m["stages"]
    total = sum(stages.values())
    active = sum(stages.get(s, 0) for s in ACTIVE_STAGES)
    churn_days = m.get("thresholds", {}).get("churn_days")
    churn_rule = f" (no order for more than {churn_days} days)" if churn_days else ""
    return {"label": "active customers", "value": active, "step": "03_segmentation",
            "sentence": f"{active:,} of {total:,} customers ({active / max(total, 1):.0%}) are active; "
                        f"{stages.get('at risk', 0):,} are at risk and {stages.get('churned', 0):,} have "
                        f"churned{churn_rule}."}


def segment_mix_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "03_segmentation")
    if not m or not m.get("personas"):
        return _missing("personas", "03_segmentation")
    personas = pd.Series(m["personas"], dtype=float)
    top = personas.idxmax()
    sentence = f"{len(personas)} personas; the largest is {top} ({personas[top] / personas.sum():.0%} of repeat buyers)"
    before, now = m.get("stages_before"), m["stages"]
    if before:
        b = sum(before.get(s, 0) for s in ACTIVE_STAGES)
        a = sum(now.get(s, 0) for s in ACTIVE_STAGES)
        change = "grew" if a > b else "shrank" if a < b else "held steady"
        sentence += (f". Since {pd.Timestamp(m['stages_before_date']):%d %b %Y} the active base {change} from "
                     f"{b:,} to {a:,} customers ({a - b:+,})")
    return {"label": "personas", "value": len(personas), "step": "03_segmentation", "sentence": sentence + "."}


def clv_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "04_clv")
    if not m:
        return _missing("predicted CLV", "04_clv")
    currency = m.get("currency", "EUR")
    d = m.get("clv_distribution") or {}
    sentence = f"Today's customers are expected to bring {fmt_number(m['clv_total'], currency)} over the next " \
               f"{m['horizon_days']} days"
    if d:
        sentence += (f"; the top 20% hold {d['top20_share']:.0%} of it, and the median customer is worth "
                     f"{fmt_number(d['median'], currency)}")
    gini = m.get("gini_holdout")
    if gini is not None:
        quality = "well" if gini >= 0.6 else "moderately" if gini >= 0.4 else "poorly"
        sentence += f". On held-out months the model ranked customers {quality} (Gini {gini:.2f})"
    return {"label": f"predicted CLV, next {m['horizon_days']} days", "value": m["clv_total"], "unit": currency,
            "step": "04_clv", "sentence": sentence + "."}


def nps_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "05_sentiment")
    if not m or not m.get("nps"):
        return _missing("NPS", "05_sentiment")
    n = m["nps"]
    low, high = n["nps"] - 1.96 * n["se"], n["nps"] + 1.96 * n["se"]
    return {"label": "NPS (−100 to +100)", "value": int(round(n["nps"])), "step": "05_sentiment",
            "sentence": f"NPS is {n['nps']:.0f} (95% CI {low:.0f} to {high:.0f}, {n['n']:,} survey answers): "
                        f"{n['promoters']:.0%} promoters against {n['detractors']:.0%} detractors."}


def _monthly_means(monthly: dict) -> pd.Series:
    """Monthly mean sentiment from metrics (``{month: mean}`` or ``{month: {"mean", "n"}}``)."""
    values = {k: (v["mean"] if isinstance(v, dict) else v) for k, v in (monthly or {}).items()}
    return pd.Series(values, dtype=float).sort_index().dropna()


def sentiment_trend(monthly: dict[str, float], months: int = 3) -> tuple[float, float] | None:
    """Mean monthly sentiment over the last ``months`` months and the ``months`` before them.

    >>> sentiment_trend({"2026-01-01": 0.1, "2026-02-01": 0.1, "2026-03-01": 0.4, "2026-04-01": 0.2}, months=2)
    (0.30000000000000004, 0.1)
    """
    s = _monthly_means(monthly)
    if len(s) < 2 * months:
        return None
    return float(s.iloc[-months:].mean()), float(s.iloc[-2 * months:-months].mean())


def sentiment_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "05_sentiment")
    if not m:
        return _missing("negative feedback", "05_sentiment")
    sentence = f"{m['negative_share']:.0%} of {m['texts']:,} reviews, surveys and tickets are negative"
    trend = sentiment_trend(m.get("monthly_sentiment") or {})
    if trend:
        recent, before = trend
        direction = "improved" if recent - before > 0.02 else "worsened" if recent - before < -0.02 else "was stable"
        sentence += (f"; average sentiment {direction} over the last three months ({recent:+.2f} against "
                     f"{before:+.2f} on a −1 to +1 scale)")
    return {"label": "negative feedback", "value": f"{m['negative_share']:.0%}", "step": "05_sentiment",
            "sentence": sentence + "."}


def followups_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "05_sentiment")
    if not m:
        return _missing("open follow-ups", "05_sentiment")
    teams = len(m.get("alerts") or [])
    routed = f", routed to {teams} teams" if teams else ""
    return {"label": "open follow-ups", "value": m["followups"], "step": "05_sentiment",
            "sentence": f"{m['followups']:,} negative items wait for a reply{routed}, the most valuable "
                        "customers first."}


def experiments_kpi(metrics: dict[str, dict]) -> dict:
    m = _m(metrics, "06_ab_test")
    if not m:
        return _missing("experiment decisions", "06_ab_test")
    tests = m.get("all_experiments") or [{"test": m["experiment"], "decision": m["decision"],
                                          "best arm": m["best_arm"], "lift": None}]
    shipped = [t for t in tests if t["decision"] == "ship"]
    parts = []
    for t in tests:
        lift = f" ({t['lift']:+.0%} on {t['metric']})" if t.get("lift") is not None and t.get("metric") else ""
        verdict = f"ship {t['best arm']}{lift}" if t["decision"] == "ship" else t["decision"]
        parts.append(f"{t['test']}: {verdict}")
    return {"label": "experiments to ship", "value": f"{len(shipped)} of {len(tests)}", "step": "06_ab_test",
            "sentence": "; ".join(parts) + "."}


KPI_BUILDERS: list[Callable[[dict[str, dict]], dict]] = [
    customers_kpi, active_kpi, revenue_kpi, clv_kpi, segment_mix_kpi, nps_kpi, sentiment_kpi, followups_kpi,
    experiments_kpi]


def executive_kpis(metrics: dict[str, dict], link: Callable[[str], str | None] = lambda step: f"{step}.html"
                   ) -> list[dict]:
    """The headline: one KPI per question the workbench answers, each with ``sentence`` and ``href``.

    ``link`` maps a step name to the report behind it (None for no link).
    """
    out = []
    for build in KPI_BUILDERS:
        kpi = build(metrics)
        kpi["href"] = link(kpi["step"]) if kpi["value"] != "–" else None
        out.append(kpi)
    return out


def stage_mix(metrics: dict[str, dict]) -> pd.DataFrame | None:
    """Customers per lifecycle stage at the earlier date and at the analysis date (rows: stages)."""
    m = _m(metrics, "03_segmentation")
    if not m or not m.get("stages_before"):
        return None
    out = pd.DataFrame({pd.Timestamp(m["stages_before_date"]).strftime("%d %b %Y"): m["stages_before"],
                        pd.Timestamp(m["analysis_date"]).strftime("%d %b %Y"): m["stages"]}).fillna(0).astype(int)
    from helpers.analysis.segmentation import STAGES

    return out.reindex([s for s in STAGES if s in out.index and s != "not yet registered"])  # lifecycle order


def plot_stage_mix(mix: pd.DataFrame):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, thousands

    fig, ax = plt.subplots(figsize=(9, 4))
    mix.plot.bar(ax=ax, color=[PALETTE[7], PALETTE[0]], rot=0, width=0.75)
    label(ax, "Lifecycle mix then and now", "Lifecycle stage", "Customers")
    thousands(ax)
    ax.legend(title="date")
    return fig


def stage_mix_caption(mix: pd.DataFrame) -> str:
    then, now = mix.columns
    change = (mix[now] - mix[then]).sort_values()
    return (f"Between {then} and {now} the biggest gain was in '{change.index[-1]}' ({change.iloc[-1]:+,}) and the "
            f"biggest loss in '{change.index[0]}' ({change.iloc[0]:+,}).")


def plot_sentiment_trend(monthly: dict[str, float]):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label

    s = _monthly_means(monthly)
    s.index = pd.to_datetime(s.index)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(s.index, s.to_numpy(), marker="o", color=PALETTE[0])
    ax.axhline(0, color="grey", lw=0.8)
    label(ax, "Average feedback sentiment per month", "Month", "Mean sentiment (−1 to +1)")
    return fig


def sentiment_trend_caption(monthly: dict[str, float]) -> str:
    s = _monthly_means(monthly)
    best, worst = s.idxmax(), s.idxmin()
    return (f"Sentiment stayed between {s.min():+.2f} ({pd.Timestamp(worst):%b %Y}) and {s.max():+.2f} "
            f"({pd.Timestamp(best):%b %Y}); below zero, negative feedback outweighs positive.")


def value_by_persona(clv: pd.DataFrame) -> pd.DataFrame | None:
    """Predicted CLV total and share per persona from ``clv.parquet`` (None without personas)."""
    if "persona" not in clv or clv["persona"].isna().all():
        return None
    out = clv.groupby("persona")["clv"].agg(customers="size", total="sum").sort_values("total", ascending=False)
    out["share"] = out["total"] / out["total"].sum()
    return out


def plot_value_by_persona(table: pd.DataFrame, currency: str):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, thousands

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.barh(table.index[::-1], table["total"].to_numpy()[::-1], color=PALETTE[0])
    label(ax, "Predicted customer value by persona", f"Predicted CLV ({currency})", "")
    thousands(ax, "x")
    return fig


def value_by_persona_caption(table: pd.DataFrame) -> str:
    top = table.index[0]
    per_head = table.at[top, "total"] / table.at[top, "customers"]
    return (f"{top} hold {table.at[top, 'share']:.0%} of the predicted value with {table.at[top, 'customers']:,} "
            f"customers, about {per_head:,.0f} each.")


def decisions_table(metrics: dict[str, dict]) -> pd.DataFrame | None:
    """One row per experiment: test, metric, best arm, lift, Holm p, decision."""
    m = _m(metrics, "06_ab_test")
    if not m or not m.get("all_experiments"):
        return None
    t = pd.DataFrame(m["all_experiments"])[["test", "metric", "units", "best arm", "lift", "Holm p", "decision"]]
    return t.assign(lift=t["lift"].map(lambda v: f"{v:+.0%}"))
