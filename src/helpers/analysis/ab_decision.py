"""The decision framework: goal and guardrail metrics, a target effect per metric, health checks that block,
and one verdict with one sentence of reasons.

Verdicts (:data:`VERDICTS`):

* **ship** — an arm is significantly better on a goal metric (after the multiple-testing correction across goal
  metrics × arms), by at least what the test could reliably detect, with its always-valid p-value below alpha,
  no goal significantly worse and no guardrail significantly harmed;
* **roll back** — every arm is significantly worse than control on a goal, or the best arm harms a guardrail;
* **keep running** — a promising result that is not proven yet (winner's curse, peeking), or no result but an
  interval still wide enough to hide the target effect;
* **no decision** — a health check failed (the data cannot be trusted), or the test rules out an effect as large
  as the target: no difference that matters, keep the cheaper version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from helpers.analysis import ab_metrics as M

VERDICTS = ("ship", "roll back", "keep running", "no decision")


@dataclass
class Decision:
    """What to do, in plain language. ``verdict`` is one of :data:`VERDICTS`; only "ship" recommends a rollout,
    and it is never given while a health check fails (``blocked_by`` says which)."""

    verdict: str
    text: str
    blocked_by: str = ""
    impact: dict | None = None


def evaluate(units: pd.DataFrame, variant: str, control: str, specs: list[M.MetricSpec], alpha: float = 0.05,
             correction: str = "holm", exact_below: int = M.EXACT_BELOW, exact_test: str = "boschloo",
             winsor_upper: float = 0.999) -> pd.DataFrame:
    """Every arm against control on every declared metric: one row per (metric, arm) with the :class:`Effect`
    fields, the role, the target and ``p_adjusted`` (goal metrics × arms corrected with ``correction``;
    guardrails are judged uncorrected, so that harm is not hidden by the number of metrics)."""
    c = units[units[variant] == control]
    rows = []
    for spec in specs:
        for arm in sorted(a for a in units[variant].unique() if a != control):
            e = M.measure(spec, c, units[units[variant] == arm], alpha, exact_below, exact_test, winsor_upper)
            rows.append({"metric": spec.name, "role": spec.role, "arm": arm, "target_mde": spec.target_mde,
                         "higher_is_better": spec.higher_is_better, **e.row()})
    out = pd.DataFrame(rows)
    out["p_adjusted"] = out["p_value"]
    goals = out["role"] == "goal"
    if goals.any():
        out.loc[goals, "p_adjusted"] = M.adjust_pvalues(out.loc[goals, "p_value"], correction, alpha)
    out["correction"] = np.where(goals, correction, "none (" + out["role"] + ")")
    sign = np.where(out["higher_is_better"], 1.0, -1.0)
    out["better"] = (out["p_adjusted"] < alpha) & (sign * out["diff"] > 0)
    out["worse"] = (out["p_adjusted"] < alpha) & (sign * out["diff"] < 0)
    return out


def detectable(row: pd.Series, alpha: float = 0.05, power: float = 0.8) -> float:
    """The absolute effect this test detects with ``power`` given the standard error it achieved."""
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * row["se"])


def expected_impact(row: pd.Series, audience: int, value_per_unit_change: float | None, currency: str = "") -> dict:
    """The change in the goal metric's total (and in money, with a value per unit of the metric) from rolling
    the arm out to ``audience`` units, with the range from the confidence interval."""
    out = {"audience": int(audience), "conversions": float(row["diff"] * audience),
           "conversions_low": float(row["ci_low"] * audience), "conversions_high": float(row["ci_high"] * audience),
           "currency": currency}
    if value_per_unit_change is not None and np.isfinite(value_per_unit_change) and value_per_unit_change > 0:
        out.update({"money": out["conversions"] * value_per_unit_change,
                    "money_low": out["conversions_low"] * value_per_unit_change,
                    "money_high": out["conversions_high"] * value_per_unit_change})
    return out


def impact_sentence(impact: dict, what: str = "conversions") -> str:
    from helpers.core.fmt import fmt_money

    text = (f"Rolled out to an audience the size of this test ({impact['audience']:,} units), that is about "
            f"{impact['conversions']:+,.0f} {what} (range {impact['conversions_low']:+,.0f} to "
            f"{impact['conversions_high']:+,.0f})")
    if "money" in impact:
        text += (f", worth about {fmt_money(impact['money'], impact['currency'])} (range "
                 f"{fmt_money(impact['money_low'], impact['currency'])} to "
                 f"{fmt_money(impact['money_high'], impact['currency'])})")
    return text + "."


def _fmt(row: pd.Series) -> str:
    if row["kind"] == "proportion":
        return (f"{row['arm_value']:.1%} vs {row['control_value']:.1%} for control, {row['diff'] * 100:+.1f} "
                f"percentage points ({row['rel']:+.0%}; 95% CI {row['rel_ci_low']:+.0%} to {row['rel_ci_high']:+.0%})")
    return (f"{row['arm_value']:,.2f} vs {row['control_value']:,.2f} for control ({row['rel']:+.1%}; 95% CI "
            f"{row['rel_ci_low']:+.1%} to {row['rel_ci_high']:+.1%})")


def decide(results: pd.DataFrame, alpha: float = 0.05, blocked: list[str] | None = None,
           audience: int | None = None, value_per_unit_change: float | None = None, currency: str = "",
           impact_unit: str = "conversions") -> Decision:
    """The verdict on one experiment from :func:`evaluate`'s rows and the failed health checks (``blocked``)."""
    goals, guards = results[results["role"] == "goal"], results[results["role"] == "guardrail"]
    if goals.empty:
        raise ValueError("the decision needs at least one goal metric")
    first_goal = goals["metric"].iloc[0]
    main = goals[goals["metric"] == first_goal]
    best = main.assign(_good=np.where(main["higher_is_better"], main["rel"], -main["rel"])) \
        .sort_values("_good", ascending=False).iloc[0]
    lift = f"{best['arm']} on {first_goal}: {_fmt(best)}; chance to beat control {best['chance_to_beat']:.1%}"
    if blocked:
        return Decision("no decision", (
            f"**No decision: the health checks failed.** {'; '.join(blocked)}. Any difference may come from how "
            f"units were assigned or tracked, not from the variants (observed: {lift}). **Next:** find and fix the "
            "cause, then rerun the test."), blocked_by="; ".join(blocked))
    harmed = guards[guards["worse"]]
    winners = [arm for arm, g in goals.groupby("arm") if g["better"].any() and not g["worse"].any()]
    if winners:
        rows = main[main["arm"].isin(winners)]
        best = rows.assign(_good=np.where(rows["higher_is_better"], rows["rel"], -rows["rel"])) \
            .sort_values("_good", ascending=False).iloc[0]
        if not best["better"]:  # the winner is better on another goal metric
            best = goals[(goals["arm"] == best["arm"]) & goals["better"]].iloc[0]
        lift = f"{best['arm']} on {best['metric']}: {_fmt(best)}; chance to beat control {best['chance_to_beat']:.1%}"
        harm = harmed[harmed["arm"] == best["arm"]]
        if len(harm):
            h = harm.iloc[0]
            return Decision("roll back", (
                f"**Do not ship {best['arm']}: it harms a guardrail.** It improves the goal ({lift}) but "
                f"{h['metric']} got worse: {_fmt(h)}, p = {h['p_value']:.3g}. **Next:** keep control, and find out "
                "why the guardrail moved before testing again."), blocked_by=f"guardrail {h['metric']} harmed")
        impact = expected_impact(best, audience, value_per_unit_change, currency) if audience else None
        floor = detectable(best, alpha)
        if abs(best["diff"]) < floor:
            return Decision("keep running", (
                f"**Promising but not proven:** {lift}. The effect is significant but smaller than the "
                f"{abs(floor / best['control_value']) if best['control_value'] else float('nan'):.0%} this test "
                "could reliably detect, and significant results from an underpowered test usually overstate the "
                "true effect (the winner's curse). **Next:** keep the test running to the planned sample size."),
                blocked_by="underpowered for the effect seen", impact=impact)
        if best["seq_p"] >= alpha:
            return Decision("keep running", (
                f"**Promising but not proven:** {lift}. The fixed-sample test is significant, but the always-valid "
                f"p-value ({best['seq_p']:.3g}), which stays honest however often the results were looked at, is "
                "not. **Next:** keep the test running until it is."),
                blocked_by="always-valid interval includes zero", impact=impact)
        text = (f"**{best['arm']} wins:** {lift}; significant after the {best['correction']} correction across "
                f"{len(goals)} goal comparison(s) (adjusted p = {best['p_adjusted']:.3g}), the always-valid p-value "
                f"{best['seq_p']:.3g}, health checks passed" + (f", {len(guards['metric'].unique())} guardrail(s) "
                                                               "unharmed" if len(guards) else "") + ".")
        if impact:
            text += " " + impact_sentence(impact, impact_unit)
        return Decision("ship", text + " **Next:** roll it out and keep a small holdout to confirm the effect.",
                        impact=impact)
    losers = {arm for arm, g in goals.groupby("arm") if g["worse"].any()}
    if losers and losers == set(goals["arm"]):
        worst = main.sort_values("p_adjusted").iloc[0]
        return Decision("roll back", (
            f"**Control wins:** {worst['arm']} is worse on {worst['metric']}: {_fmt(worst)} (adjusted p = "
            f"{worst['p_adjusted']:.3g}). **Next:** keep the control version."))
    target = best["target_mde"]
    if target is not None and np.isfinite(target) and target > 0:
        if best["rel_ci_low"] > -target and best["rel_ci_high"] < target:
            return Decision("no decision", (
                f"**No difference that matters:** {lift}. The interval rules out effects of ±{target:.0%} (the "
                "target you set), so more data would not change the answer. **Next:** keep the cheaper version."))
        needed = M.sample_size(float(best["se"] * np.sqrt(best["n_arm"] / 2)), abs(target * best["control_value"]),
                               alpha) if best["control_value"] else None
        return Decision("keep running", (
            f"**Not yet conclusive:** {lift}. The interval still allows an effect of the {target:.0%} you care "
            "about" + (f"; about {needed:,} units per arm would settle it" if needed else "") + ". **Next:** keep the "
            "test running."), blocked_by="interval wider than the target effect")
    return Decision("no decision", (
        f"**No clear winner:** {lift}, which is not conclusive. The test could detect effects of about "
        f"{abs(detectable(best, alpha) / best['control_value']) if best['control_value'] else float('nan'):.0%} or "
        "more. **Next:** keep the cheaper version, or set a target effect and rerun with the sample size it needs."))


def results_display(results: pd.DataFrame) -> pd.DataFrame:
    """:func:`evaluate`'s rows as a stakeholder reads them."""
    r = results
    pct = r["kind"] == "proportion"

    def value(v, is_pct):
        return f"{v:.2%}" if is_pct else f"{v:,.2f}"

    return pd.DataFrame({
        "metric": r["metric"], "role": r["role"], "type": r["kind"], "arm": r["arm"],
        "control": [value(v, p) for v, p in zip(r["control_value"], pct)],
        "arm value": [value(v, p) for v, p in zip(r["arm_value"], pct)],
        "relative effect (95% CI)": [f"{v:+.1%} ({lo:+.1%} to {hi:+.1%})"
                                     for v, lo, hi in zip(r["rel"], r["rel_ci_low"], r["rel_ci_high"])],
        "p": [f"{v:.3g}" for v in r["p_value"]],
        "p adjusted": [f"{v:.3g}" for v in r["p_adjusted"]],
        "always-valid p": [f"{v:.3g}" for v in r["seq_p"]],
        "chance to beat": [f"{v:.0%}" for v in r["chance_to_beat"]],
        "verdict": np.where(r["better"], "better", np.where(r["worse"], "worse", "no clear change")),
    })
