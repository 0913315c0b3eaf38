"""The executive summary (report 07) and the index headline: a director's landing page.

Every figure comes from the metric registry (:mod:`helpers.core.kpis`), as recorded by the step that owns it, so
the summary, the index and the step reports show one value under one name. On top of the registry values this
module adds what a landing page needs:

* **periods and changes**: the last complete quarter (three months) against the one before, from the monthly
  series the steps record, with the number of answers behind survey figures and a plain verdict on whether a
  change is larger than its noise (two standard errors);
* **sparklines**: one small inline SVG per trend, drawn from the same monthly series;
* **recommended actions**: at most three, each with an owner and an expected value in money, computed from the
  registry values and stated assumptions (parameters of report 07);
* **the follow-up queue** by owner: recent unanswered negative feedback, with its age against the reply SLA.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.core.fmt import fmt_money, fmt_pct
from helpers.core.kpis import kpi
from helpers.core.safety import inline_markup

HEADLINE = ["customers", "buyers", "net_revenue", "active_customers", "at_risk_customers", "predicted_clv",
            "revenue_at_risk", "nps", "csat", "open_followups", "email_open_rate", "experiments_to_ship"]
INDEX_HEADLINE = ["customers", "net_revenue", "active_customers", "revenue_at_risk", "nps", "experiments_to_ship"]

# How each monthly series is rolled up into a quarter and how its change is judged.
#   sum: money or counts that add up (net revenue); mean: a monthly level (buyers per month);
#   rate: a share or score with n answers per month, combined weighted by n.
TRENDS: dict[str, tuple[str, str, str]] = {
    # series: (label, aggregation, unit)
    "net_revenue": ("net revenue", "sum", "money"),
    "buyers": ("buyers per month", "mean", "count"),
    "nps": ("NPS", "rate", "score"),
    "csat": ("CSAT", "rate", "share"),
    "negative_share": ("negative feedback", "rate", "share"),
    "email_open_rate": ("e-mail open rate", "rate", "share"),
    "email_click_rate": ("e-mail click rate", "rate", "share"),
}


# ---------------------------------------------------------------------------
# Periods and changes
# ---------------------------------------------------------------------------


@dataclass
class Change:
    """One measure over the last complete quarter against the quarter before."""

    name: str
    label: str
    unit: str
    last: float
    previous: float | None
    n_last: int | None
    n_previous: int | None
    se_diff: float | None  # standard error of last − previous (rates only)
    months: list[str]
    values: list[float]

    @property
    def diff(self) -> float | None:
        return None if self.previous is None else self.last - self.previous

    @property
    def significant(self) -> bool | None:
        """Whether the change is larger than two standard errors (None when there is no standard error)."""
        if self.diff is None or self.se_diff is None or not math.isfinite(self.se_diff) or self.se_diff == 0:
            return None
        return abs(self.diff) > 2 * self.se_diff


def _value(v) -> tuple:
    """(value, n, standard error, (promoters, detractors) or None) of one month of a series."""
    if isinstance(v, dict):
        shares = (v["promoters"], v["detractors"]) if "promoters" in v and "detractors" in v else None
        return float(v["value"]), (int(v["n"]) if v.get("n") is not None else None), v.get("se"), shares
    return float(v), None, None, None


def _rate_se(unit: str, value: float, n: int, se: float | None) -> float:
    if se is not None and math.isfinite(se):
        return float(se)
    if unit == "share":
        return math.sqrt(max(value * (1 - value), 0.0) / n) if n else float("nan")
    return float("nan")


def _roll(points: list[tuple[float, int | None, float | None]], how: str, unit: str
          ) -> tuple[float, int | None, float | None]:
    values = [p[0] for p in points]
    if how == "sum":
        return sum(values), None, None
    if how == "mean":
        return sum(values) / len(values), None, None
    ns = [p[1] or 0 for p in points]
    total = sum(ns)
    if total == 0:
        return float("nan"), 0, None
    if unit == "score" and all(len(p) > 3 and p[3] is not None for p in points):
        # NPS from the pooled shares of promoters and detractors: exact, unlike combining monthly errors
        prom = sum(n * p[3][0] for n, p in zip(ns, points)) / total
        detr = sum(n * p[3][1] for n, p in zip(ns, points)) / total
        return 100 * (prom - detr), total, 100 * math.sqrt(max(prom + detr - (prom - detr) ** 2, 0.0) / total)
    value = sum(v * n for v, n in zip(values, ns)) / total
    # the variance of an n-weighted mean of independent monthly estimates
    var = sum((n / total) ** 2 * _rate_se(unit, v, n, se) ** 2 for (v, n, se, _) in points if n)
    return value, total, math.sqrt(var) if math.isfinite(var) else None


def quarter_change(name: str, series: dict, months: int = 3) -> Change | None:
    """The last ``months`` complete months of a monthly series against the ``months`` before.

    >>> s = {f"2026-{m:02d}-01": {"value": 0.5 + 0.01 * m, "n": 400} for m in range(1, 7)}
    >>> c = quarter_change("csat", s)
    >>> round(c.last, 3), round(c.previous, 3), c.n_last, c.significant
    (0.55, 0.52, 1200, False)
    """
    if name not in TRENDS or not series:
        return None
    label, how, unit = TRENDS[name]
    keys = sorted(series)
    points = [_value(series[k]) for k in keys]
    last = points[-months:]
    if len(last) < 1:
        return None
    prev = points[-2 * months:-months] if len(points) >= 2 * months else []
    lv, ln, lse = _roll(last, how, unit)
    pv, pn, pse = _roll(prev, how, unit) if prev else (None, None, None)
    se_diff = math.sqrt(lse ** 2 + pse ** 2) if lse is not None and pse is not None else None
    return Change(name, label, unit, lv, pv, ln, pn, se_diff, keys, [p[0] for p in points])


def _fmt(unit: str, value: float | None, currency: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit == "money":
        return fmt_money(value, currency)
    if unit == "share":
        return fmt_pct(value)
    if unit == "score":
        return f"{value:+.0f}"
    return f"{value:,.0f}"


def change_text(c: Change, currency: str = "") -> str:
    """The change in words: relative for money and counts, in points for shares and scores, and whether it is
    more than noise when a standard error exists."""
    if c.diff is None:
        return "no earlier quarter"
    if c.unit in ("money", "count"):
        if not c.previous:
            return "–"
        text = f"{c.diff / abs(c.previous):+.0%}"
    elif c.unit == "share":
        text = f"{c.diff * 100:+.1f} pts"
    else:
        text = f"{c.diff:+.0f} pts"
    if c.significant is False:
        text += " (within noise)"
    elif c.significant:
        text += " (beyond noise)"
    return text


def sparkline(values: list[float], label: str, width: int = 110, height: int = 26) -> str:
    """An inline SVG line of ``values`` with its last point marked; the ``label`` becomes its accessible name."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    step = (width - 6) / (len(vals) - 1)
    pts = [(3 + i * step, height - 3 - (v - lo) / span * (height - 6)) for i, v in enumerate(vals)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    x, y = pts[-1]
    return (f'<svg class="wb-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{html.escape(label)}"><polyline fill="none" stroke="#0072B2" stroke-width="1.6" '
            f'points="{path}"/><circle cx="{x:.1f}" cy="{y:.1f}" r="2.4" fill="#D55E00"/></svg>')


def trend_table(series: dict[str, dict], currency: str) -> list[Change]:
    """Every measure with a monthly series, in a fixed order."""
    return [c for name in TRENDS if (c := quarter_change(name, series.get(name, {}))) is not None]


def trend_table_html(changes: list[Change], currency: str) -> str:
    """The quarter-on-quarter table with sparklines (the months are the complete months of the window)."""
    if not changes:
        return "<p>No monthly series recorded yet.</p>"
    rows = []
    for c in changes:
        n = f"{c.n_last:,}" if c.n_last is not None else ""
        rows.append(f"<tr><td>{html.escape(c.label)}</td><td class='num'>{html.escape(_fmt(c.unit, c.last, currency))}"
                    f"</td><td class='num'>{html.escape(_fmt(c.unit, c.previous, currency))}</td>"
                    f"<td class='num'>{html.escape(change_text(c, currency))}</td><td class='num'>{n}</td>"
                    f"<td>{sparkline(c.values, f'{c.label} per month, {c.months[0][:7]} to {c.months[-1][:7]}')}"
                    "</td></tr>")
    first, last = changes[0].months[0][:7], changes[0].months[-1][:7]
    return ("<table class='wb-table wb-trends'><caption>Last three complete months against the three before; n = "
            f"answers or e-mails behind the last quarter; trend lines from {first} to {last}.</caption>"
            "<tr><th>measure</th><th>last quarter</th><th>previous quarter</th><th>change</th><th>n</th>"
            "<th>trend</th></tr>" + "".join(rows) + "</table>")


# ---------------------------------------------------------------------------
# Recommended actions
# ---------------------------------------------------------------------------


@dataclass
class Action:
    action: str
    owner: str
    expected_value: float | None
    basis: str  # how the value was estimated, with its assumption
    step: str  # the report with the evidence


DEFAULT_OWNERS = {"win-back": "CRM / retention marketing", "follow-up": "Customer service",
                  "experiment": "E-mail marketing", "second order": "E-commerce / CRM"}


def recommended_actions(values: dict, metrics: dict[str, dict], currency: str, winback_rate: float = 0.10,
                        save_rate: float = 0.20, second_order_rate: float = 0.05,
                        owners: dict[str, str] | None = None, limit: int = 3) -> list[Action]:
    """At most ``limit`` actions, ranked by expected value (money), each with an owner and the assumption behind
    its value. Actions whose value cannot be put in money (an experiment to keep running or to fix) come after
    those that can."""
    owners = {**DEFAULT_OWNERS, **(owners or {})}
    out: list[Action] = []
    at_risk = values.get("revenue_at_risk")
    if at_risk:
        out.append(Action(f"Win back the customers at risk ({kpi('revenue_at_risk').format(at_risk, currency)} of "
                          "predicted value)", owners["win-back"], at_risk * winback_rate,
                          f"{winback_rate:.0%} of the predicted value at risk kept by a win-back campaign",
                          "03_segmentation"))
    m5 = (metrics.get("05_sentiment") or {}).get("metrics") or {}
    if values.get("open_followups"):
        clv = m5.get("followup_value")
        out.append(Action(f"Answer the {values['open_followups']:,} recent negative items "
                          f"({m5.get('followups_overdue', 0):,} overdue)", owners["follow-up"],
                          clv * save_rate if clv else None,
                          f"{save_rate:.0%} of these customers' predicted value kept by a reply" if clv else
                          "protects customers who complained; no predicted value available", "05_sentiment"))
    m6 = (metrics.get("06_ab_test") or {}).get("metrics") or {}
    if m6 and not m6.get("skipped"):
        verdict, impact = m6.get("decision"), m6.get("impact") or {}
        if verdict == "ship":
            out.append(Action(f"Roll out {m6.get('best_arm')} from {m6.get('experiment')}", owners["experiment"],
                              impact.get("money"), "the test's lift at its own audience size, control's value per "
                              "conversion", "06_ab_test"))
        elif verdict == "keep running" or (verdict == "no decision" and m6.get("blocked_by")):
            what = "Keep running" if verdict == "keep running" else "Fix the health checks of"
            out.append(Action(f"{what} {m6.get('experiment')} before deciding ({m6.get('blocked_by')})",
                              owners["experiment"], None, "avoids rolling out an effect that may not exist",
                              "06_ab_test"))
    m2 = (metrics.get("02_cleaning") or {}).get("metrics") or {}
    buyers, repeat = values.get("buyers"), values.get("repeat_buyers")
    if buyers and repeat is not None and m2.get("orders"):
        one_time = buyers - repeat
        aov = values.get("net_revenue", 0.0) / max(m2["orders"] - m2.get("cancelled_orders", 0), 1)
        if one_time > 0 and aov > 0:
            out.append(Action(f"Bring the {one_time:,} one-time buyers back for a second order",
                              owners["second order"], one_time * second_order_rate * aov,
                              f"{second_order_rate:.0%} of them ordering once more at the average order value "
                              f"({fmt_money(aov, currency)})", "03_segmentation"))
    out.sort(key=lambda a: (a.expected_value is None, -(a.expected_value or 0)))
    return out[:limit]


def actions_html(actions: list[Action], currency: str, link_prefix: str = "") -> str:
    if not actions:
        return "<p>No action can be recommended yet: the steps that would support one have not run.</p>"
    rows = "".join(
        f"<tr><td>{i}</td><td>{html.escape(a.action)} <a href='{html.escape(link_prefix + a.step)}.html'>evidence"
        f"&nbsp;&rarr;</a></td><td>{html.escape(a.owner)}</td><td class='num'>"
        f"{html.escape(fmt_money(a.expected_value, currency)) if a.expected_value is not None else '–'}</td>"
        f"<td>{html.escape(a.basis)}</td></tr>" for i, a in enumerate(actions, 1))
    return ("<table class='wb-table wb-actions'><tr><th>#</th><th>action</th><th>owner</th><th>expected value</th>"
            f"<th>assumption</th></tr>{rows}</table>")


# ---------------------------------------------------------------------------
# Follow-up queue by owner
# ---------------------------------------------------------------------------


def queue_by_owner(queue_file: str | Path) -> pd.DataFrame | None:
    """Open follow-ups per owning team: items, overdue, oldest age (days)."""
    path = Path(queue_file)
    if not path.exists():
        return None
    q = pd.read_csv(path, encoding="utf-8-sig")
    if not len(q) or "team" not in q:
        return pd.DataFrame(columns=["owner", "open items", "overdue", "oldest (days)"])
    overdue = q["overdue"].astype(str).str.lower().eq("true") if "overdue" in q else False
    g = q.assign(overdue=overdue).groupby("team")
    out = pd.DataFrame({"open items": g.size(), "overdue": g["overdue"].sum().astype(int),
                        "oldest (days)": g["age_days"].max() if "age_days" in q else pd.NA})
    return out.sort_values("open items", ascending=False).rename_axis("owner").reset_index()


# ---------------------------------------------------------------------------
# The answer
# ---------------------------------------------------------------------------


def conclusion(values: dict, changes: list[Change], actions: list[Action], metrics: dict[str, dict],
               currency: str) -> list[str]:
    """Two to four sentences a director reads first: money, customers, what they say, what to do."""
    by = {c.name: c for c in changes}
    out = []
    if values.get("net_revenue") is not None:
        text = f"Net revenue was **{kpi('net_revenue').format(values['net_revenue'], currency)}** over the window"
        if "net_revenue" in by and by["net_revenue"].diff is not None:
            text += f"; the last quarter changed {change_text(by['net_revenue'], currency)} on the one before"
        out.append(text + ".")
    band = card_notes(metrics, currency).get("predicted_clv")
    if values.get("active_customers") is not None:
        text = (f"{kpi('active_customers').format(values['active_customers'])} active customers of "
                f"{kpi('customers').format(values.get('customers'))} customers; "
                f"{kpi('at_risk_customers').format(values.get('at_risk_customers'))} customers at risk")
        if values.get("revenue_at_risk"):
            text += (f", holding **{kpi('revenue_at_risk').format(values['revenue_at_risk'], currency)}** of predicted "
                     "value")
        if values.get("predicted_clv") is not None:
            text += (f"; today's customers are predicted to bring "
                     f"{kpi('predicted_clv').format(values['predicted_clv'], currency)}" + (f" ({band})" if band else ""))
        out.append(text + ".")
    if values.get("nps") is not None:
        text = f"NPS is {kpi('nps').format(values['nps'])}"
        c = by.get("nps")
        if c is not None and c.diff is not None:
            noise = {True: ", beyond noise", False: ", within noise"}.get(c.significant, "")
            text += (f"; last quarter {abs(c.diff):.0f} points {'above' if c.diff >= 0 else 'below'} the one before"
                     f"{noise} (n = {c.n_last:,})")
        out.append(text + ".")
    if actions:
        a = actions[0]
        worth = f", worth about {fmt_money(a.expected_value, currency)}" if a.expected_value is not None else ""
        out.append(f"First action: **{a.action}** ({a.owner}{worth}).")
    return out[:4]


def missing_steps(metrics: dict[str, dict]) -> list[str]:
    """Sentences for the steps that were skipped or have not run."""
    from helpers.core.kpis import KPIS

    out = []
    for step in sorted({k.step for k in KPIS.values()}):
        m = (metrics.get(step) or {}).get("metrics")
        if m is None:
            out.append(f"Step {step[:2]} has not run: its figures show as –.")
        elif m.get("skipped"):
            out.append(f"Step {step[:2]} was skipped: {m['skipped']}")
    return out


def headline_html(values: dict, currency: str, ids: list[str] = INDEX_HEADLINE, link_prefix: str = "") -> str:
    """The registry cards of the index page."""
    from helpers.reporting.pages import registry_cards

    return registry_cards(ids, values, currency, link_prefix=link_prefix)


def sentences_html(sentences: list[str]) -> str:
    return '<div class="wb-conclusion"><ul>' + "".join(f"<li>{inline_markup(s)}</li>" for s in sentences) + \
        "</ul></div>"


def decisions_table(metrics: dict[str, dict]) -> pd.DataFrame | None:
    """One row per experiment: test, metric, best arm, lift, decision and the check that blocks a rollout."""
    m = (metrics.get("06_ab_test") or {}).get("metrics") or {}
    if m.get("skipped"):
        return None
    rows = m.get("all_experiments") or ([{"test": m["experiment"], "metric": "", "units": m["units"],
                                          "best arm": m["best_arm"], "lift": None, "decision": m["decision"],
                                          "why": m.get("blocked_by", "")}] if m.get("experiment") else [])
    if not rows:
        return None
    t = pd.DataFrame(rows)
    t["lift"] = [f"{v:+.1%}" if v is not None and pd.notna(v) else "–" for v in t.get("lift", [None] * len(t))]
    if "why" not in t:
        t["why"] = ""
    return t[["test", "metric", "units", "best arm", "lift", "decision", "why"]].rename(
        columns={"test": "experiment", "why": "blocked by"})


def trends_sentence(changes: list[Change], currency: str) -> str:
    """One sentence on the trend table: what moved beyond its noise, and what did not."""
    if not changes:
        return "No step recorded monthly figures, so no trend can be shown."
    moved = [f"{c.label} {change_text(c, currency).split(' (')[0]}" for c in changes
             if c.significant or (c.unit in ("money", "count") and c.diff is not None and c.previous
                                  and abs(c.diff / c.previous) >= 0.05)]
    level = [c.label for c in changes if c.significant is False]
    text = ("Compared with the quarter before, " + ", ".join(moved) + "." if moved else
            "No measure moved by more than its noise (or 5% for money and counts) against the quarter before.")
    if level:
        joined = ", ".join(level)
        text += " " + joined[:1].upper() + joined[1:] + " stayed within noise."
    return text


def card_notes(metrics: dict[str, dict], currency: str) -> dict[str, str]:
    """Lines under some headline cards: the uncertainty of the predicted value (report 04)."""
    m4 = (metrics.get("04_clv") or {}).get("metrics") or {}
    band = m4.get("clv_total_interval")
    if band and all(v is not None and math.isfinite(v) for v in band):
        return {"predicted_clv": f"90% interval {fmt_money(band[0], currency)} – {fmt_money(band[1], currency)}"}
    return {}
