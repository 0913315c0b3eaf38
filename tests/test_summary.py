"""The executive summary's arithmetic: quarter roll-ups against a direct computation on the raw answers, honest
change verdicts, ranked actions with owners and money, and no "ship" on a blocked experiment."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers.analysis.sentiment import nps_with_se
from helpers.reporting import summary as SUM
from helpers.reporting.pages import registry_cards


def _nps_series(scores_by_month: dict[str, np.ndarray]) -> dict:
    out = {}
    for month, scores in scores_by_month.items():
        r = nps_with_se(pd.Series(scores))
        out[month] = {"value": r["nps"], "n": r["n"], "se": r["se"], "promoters": r["promoters"],
                      "detractors": r["detractors"]}
    return out


def test_quarter_nps_equals_the_nps_of_the_pooled_answers():
    rng = np.random.default_rng(11)
    months = [f"2026-{m:02d}-01" for m in range(1, 7)]
    raw = {m: rng.integers(0, 11, size=rng.integers(5, 60)) for m in months}
    c = SUM.quarter_change("nps", _nps_series(raw))
    last = nps_with_se(pd.Series(np.concatenate([raw[m] for m in months[3:]])))
    prev = nps_with_se(pd.Series(np.concatenate([raw[m] for m in months[:3]])))
    assert c.last == pytest.approx(last["nps"], abs=1e-9) and c.previous == pytest.approx(prev["nps"], abs=1e-9)
    assert c.n_last == last["n"] and c.n_previous == prev["n"]
    assert c.se_diff == pytest.approx(math.hypot(last["se"], prev["se"]), abs=1e-9)


def test_a_change_smaller_than_its_noise_is_called_so_and_a_large_one_is_not():
    flat = {f"2026-{m:02d}-01": {"value": 0.60 + (0.02 if m > 3 else 0.0), "n": 50} for m in range(1, 7)}
    c = SUM.quarter_change("csat", flat)
    assert c.diff == pytest.approx(0.02) and c.significant is False
    assert SUM.change_text(c) == "+2.0 pts (within noise)"
    big = {f"2026-{m:02d}-01": {"value": 0.60 + (0.10 if m > 3 else 0.0), "n": 2000} for m in range(1, 7)}
    assert SUM.quarter_change("csat", big).significant is True
    revenue = {f"2026-{m:02d}-01": 100.0 * m for m in range(1, 7)}
    r = SUM.quarter_change("net_revenue", revenue)
    assert (r.last, r.previous) == (1500.0, 600.0) and SUM.change_text(r, "GBP") == "+150%"
    assert SUM.quarter_change("net_revenue", {"2026-01-01": 5.0}).previous is None


def test_sparkline_is_inert_and_scaled():
    svg = SUM.sparkline([1, 2, 3], 'x"><script>alert(1)</script>')
    assert "<script>" not in svg and "&lt;script&gt;" in svg and svg.count("<polyline") == 1
    assert SUM.sparkline([1.0], "one point") == ""


METRICS = {
    "02_cleaning": {"metrics": {"orders": 1000, "cancelled_orders": 0}},
    "05_sentiment": {"metrics": {"followup_value": 50_000.0, "followups_overdue": 3}},
    "06_ab_test": {"metrics": {"decision": "no decision", "experiment": "Send time", "best_arm": "noon",
                               "blocked_by": "sample-ratio mismatch", "units": 900, "impact": None,
                               "all_experiments": [{"test": "Send time", "metric": "clicked", "units": 900,
                                                    "best arm": "noon", "lift": 0.4, "decision": "no decision",
                                                    "why": "sample-ratio mismatch"}]}},
}
VALUES = {"revenue_at_risk": 200_000.0, "open_followups": 12, "buyers": 900, "repeat_buyers": 300,
          "net_revenue": 90_000.0, "experiments_to_ship": "0 of 1"}


def test_actions_are_ranked_by_expected_value_with_owner_and_assumption():
    actions = SUM.recommended_actions(VALUES, METRICS, "GBP", winback_rate=0.1, save_rate=0.2,
                                      second_order_rate=0.05, owners={"follow-up": "Service desk"})
    assert len(actions) == 3
    # win-back 200,000 × 10% = 20,000; follow-up 50,000 × 20% = 10,000; second order 600 × 5% × (90,000 / 1,000)
    # = 2,700; the blocked experiment has no money value and ranks last, so it is cut at three
    assert [round(a.expected_value) for a in actions] == [20_000, 10_000, 2_700]
    assert actions[1].owner == "Service desk" and "20%" in actions[1].basis
    html_text = SUM.actions_html(actions, "GBP")
    assert "GBP 20,000" in html_text and "evidence" in html_text
    four = SUM.recommended_actions(VALUES, METRICS, "GBP", limit=4)
    assert four[-1].expected_value is None and "Fix the health checks of" in four[-1].action


def test_a_blocked_experiment_never_reads_ship_on_the_summary():
    table = SUM.decisions_table(METRICS)
    assert table["decision"].tolist() == ["no decision"] and table["blocked by"].tolist() == ["sample-ratio mismatch"]
    actions = SUM.recommended_actions(VALUES, METRICS, "GBP", limit=5)
    assert not any(a.action.startswith("Roll out") for a in actions)
    text = " ".join(SUM.conclusion(VALUES, [], actions, METRICS, "GBP"))
    assert "ship" not in text.lower() and "roll out" not in text.lower()


def test_registry_cards_carry_one_label_and_the_registry_format():
    html_text = registry_cards(["net_revenue", "nps", "csat", "probably_active"],
                               {"net_revenue": 1234567.8, "nps": 12.4, "csat": 0.618}, "GBP")
    assert 'data-kpi="net_revenue">GBP 1.23 M<' in html_text
    assert 'data-kpi="nps">+12<' in html_text and 'data-kpi="csat">62%<' in html_text
    assert 'data-kpi="probably_active">–<' in html_text  # not recorded: a dash, never a stale number
    assert 'href="02_cleaning.html#Money' in html_text
