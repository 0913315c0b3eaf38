"""The executive summary's KPIs and sentences are read from the metrics files, not written by hand."""

from __future__ import annotations

import pytest

from helpers.reporting import summary as SUM

METRICS = {
    "01_collection": {"metrics": {"months": 24}},
    "02_cleaning": {"metrics": {"customers": 5003, "merged_customers": 197, "quarantined": 14, "rows_in": 442814,
                                "balanced": True, "net_revenue_eur": 3098355.6}},
    "03_segmentation": {"metrics": {
        "analysis_date": "2026-09-30", "stages_before_date": "2026-04-03",
        "stages": {"prospect": 520, "new": 176, "trial": 302, "active": 1176, "reactivated": 252, "at risk": 894,
                   "churned": 1683},
        "stages_before": {"prospect": 700, "new": 300, "trial": 400, "active": 1300, "reactivated": 200,
                          "at risk": 700, "churned": 1000, "not yet registered": 403},
        "thresholds": {"churn_days": 123},
        "personas": {"Premium loyalists": 799, "Deal seekers": 1014, "Hard to reach": 530, "App-first": 535}}},
    "04_clv": {"metrics": {"clv_total": 2730008.9, "horizon_days": 365, "currency": "EUR", "gini_holdout": 0.71,
                           "clv_distribution": {"top20_share": 0.62, "median": 211.4}}},
    "05_sentiment": {"metrics": {
        "nps": {"nps": 24.4, "se": 1.7, "n": 1709, "promoters": 0.399, "detractors": 0.155},
        "negative_share": 0.3317, "texts": 2930, "followups": 1006, "alerts": [{}, {}, {}],
        "monthly_sentiment": {"2026-04-01": 0.10, "2026-05-01": 0.12, "2026-06-01": 0.08, "2026-07-01": 0.01,
                              "2026-08-01": -0.02, "2026-09-01": 0.0}}},
    "06_ab_test": {"metrics": {"experiment": "Send time", "decision": "ship", "best_arm": "evening_19",
                               "all_experiments": [
                                   {"test": "Send time", "metric": "clicked", "units": 1976, "best arm": "evening_19",
                                    "lift": 0.532, "Holm p": 0.0085, "decision": "ship"},
                                   {"test": "Subject line", "metric": "opened", "units": 2100, "best arm": "b",
                                    "lift": 0.128, "Holm p": 0.12, "decision": "no clear difference"}]}},
}


def _by_label(kpis):
    return {k["label"]: k for k in kpis}


def test_every_kpi_has_a_link_and_a_sentence_built_from_the_numbers():
    kpis = _by_label(SUM.executive_kpis(METRICS, link=lambda step: f"html/{step}.html"))
    assert len(kpis) == 9 and all(k["href"] == f"html/{k['step']}.html" for k in kpis.values())
    assert kpis["customers (360° view)"]["sentence"].startswith("5,003 customers after merging 197 duplicate")
    assert "14 of 442,814 input rows" in kpis["customers (360° view)"]["sentence"]
    active = kpis["active customers"]
    assert active["value"] == 176 + 302 + 1176 + 252
    assert "1,906 of 5,003 customers (38%) are active" in active["sentence"]
    assert "more than 123 days" in active["sentence"]
    assert "EUR 3.10 M net of returns and cancellations over the 24-month window" in kpis["net revenue"]["sentence"]
    clv = kpis["predicted CLV, next 365 days"]["sentence"]
    assert "EUR 2.73 M" in clv and "top 20% hold 62%" in clv and "EUR 211.40" in clv and "well (Gini 0.71)" in clv
    # NPS CI = 24.4 ± 1.96 × 1.7
    assert "NPS is 24 (95% CI 21 to 28, 1,709 survey answers)" in kpis["NPS (−100 to +100)"]["sentence"]
    # the last three months (−0.003) against the three before (+0.10): a fall of 0.10
    assert "worsened" in kpis["negative feedback"]["sentence"] and "+0.10" in kpis["negative feedback"]["sentence"]
    assert "routed to 3 teams" in kpis["open follow-ups"]["sentence"]
    exp = kpis["experiments to ship"]
    assert exp["value"] == "1 of 2"
    assert exp["sentence"] == "Send time: ship evening_19 (+53% on clicked); Subject line: no clear difference."


def test_the_change_in_the_active_base_reads_in_the_right_direction():
    kpis = _by_label(SUM.executive_kpis(METRICS))
    # active before: 300 + 400 + 1300 + 200 = 2,200; now 1,906
    assert "the active base shrank from 2,200 to 1,906 customers (-294)" in kpis["personas"]["sentence"]
    grown = {**METRICS, "03_segmentation": {"metrics": {**METRICS["03_segmentation"]["metrics"],
                                                        "stages_before": {"active": 100}}}}
    assert "grew from 100 to 1,906" in _by_label(SUM.executive_kpis(grown))["personas"]["sentence"]
    mix = SUM.stage_mix(METRICS)
    assert list(mix.columns) == ["03 Apr 2026", "30 Sep 2026"]
    assert list(mix.index) == ["prospect", "new", "trial", "active", "reactivated", "at risk", "churned"]
    assert "biggest gain was in 'churned' (+683)" in SUM.stage_mix_caption(mix)


def test_missing_steps_say_so_instead_of_showing_a_number():
    kpis = SUM.executive_kpis({"02_cleaning": METRICS["02_cleaning"]})
    missing = [k for k in kpis if k["value"] == "–"]
    assert len(missing) == 7 and all(k["href"] is None for k in missing)
    assert any("step 04 (CLV) has not run" in k["sentence"] for k in missing)


def test_unbalanced_rows_and_poor_rankings_are_not_glossed_over():
    m = {**METRICS, "02_cleaning": {"metrics": {**METRICS["02_cleaning"]["metrics"], "balanced": False}},
         "04_clv": {"metrics": {**METRICS["04_clv"]["metrics"], "gini_holdout": 0.3}}}
    kpis = _by_label(SUM.executive_kpis(m))
    assert "do not balance" in kpis["customers (360° view)"]["sentence"]
    assert "poorly (Gini 0.30)" in kpis["predicted CLV, next 365 days"]["sentence"]


def test_sentiment_trend_needs_two_full_periods():
    assert SUM.sentiment_trend({"2026-01-01": 0.1}) is None
    recent, before = SUM.sentiment_trend(METRICS["05_sentiment"]["metrics"]["monthly_sentiment"])
    assert recent == pytest.approx(-0.01 / 3) and before == pytest.approx(0.10)


def test_decisions_table_lists_every_experiment_with_readable_lifts():
    table = SUM.decisions_table(METRICS)
    assert table["lift"].tolist() == ["+53%", "+13%"] and table["decision"].tolist() == ["ship", "no clear difference"]
