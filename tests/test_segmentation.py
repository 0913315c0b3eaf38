"""Segmentation: RFM scoring by hand, segment coverage, lifecycle stages on constructed histories, the truth
check against the generator's planted segments, and the audience exports."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import segmentation as S


def _orders(rows: list[tuple[str, str, float]], cancelled: tuple[int, ...] = ()) -> pd.DataFrame:
    o = pd.DataFrame(rows, columns=["customer_key", "order_date", "net"])
    o["order_date"] = pd.to_datetime(o["order_date"], format="mixed")
    o["is_cancelled"] = [i in cancelled for i in range(len(o))]
    return o


def test_rfm_table_by_hand():
    o = _orders([("a", "2026-01-01", 10), ("a", "2026-03-01", 30), ("a", "2026-04-15", 99),  # after the date
                 ("b", "2026-02-15", 5), ("b", "2026-03-20", 50)], cancelled=(4,))
    t = S.rfm_table(o, pd.Timestamp("2026-03-31"), pd.Index(["a", "b", "c"]))
    assert t.loc["a", "recency_days"] == 30 and t.loc["a", "frequency"] == 2 and t.loc["a", "monetary"] == 40
    # b's cancelled order does not count
    assert t.loc["b", "recency_days"] == 44 and t.loc["b", "frequency"] == 1 and t.loc["b", "monetary"] == 5
    assert pd.isna(t.loc["c", "recency_days"]) and t.loc["c", "frequency"] == 0


def test_quintile_scores_hand_computed_with_ties():
    # ten customers; the four tied at 1 order share average rank 2.5 -> pct 0.25 -> score ceil(1.25) = 2
    f = pd.Series([1, 1, 1, 1, 2, 3, 4, 5, 6, 7])
    assert S.quintile_scores(f).tolist() == [2, 2, 2, 2, 3, 3, 4, 4, 5, 5]
    # recency: fewer days is better
    r = pd.Series([5, 50, 500, 20, 200])
    assert S.quintile_scores(r, higher_is_better=False).tolist() == [5, 3, 1, 4, 2]
    # all equal -> one score for everybody
    assert S.quintile_scores(pd.Series([3.0] * 7)).nunique() == 1


def test_fixed_cut_points_and_bad_cuts():
    assert S.fixed_scores(pd.Series([0, 1, 1.5, 4, 8, 9]), [1, 2, 4, 8]).tolist() == [1, 1, 2, 3, 4, 5]
    assert S.fixed_scores(pd.Series([0, 30, 31, 400]), [30, 90, 180, 365], False).tolist() == [5, 5, 4, 1]
    with pytest.raises(ValueError, match="four ascending"):
        S.fixed_scores(pd.Series([1]), [3, 2, 1, 0])
    rfm = pd.DataFrame({"recency_days": [1], "frequency": [1], "monetary": [1.0]})
    with pytest.raises(ValueError, match="needs cut points"):
        S.rfm_scores(rfm, "fixed", {"frequency": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match="'quantile' or 'fixed'"):
        S.rfm_scores(rfm, "deciles")


def test_every_rfm_cell_has_exactly_one_segment():
    cells = {(r, fm): S.segment_of(r, fm) for r, fm in itertools.product(range(1, 6), range(1, 6))}
    assert len(cells) == 25 and set(cells.values()) <= set(S.RFM_SEGMENTS)
    # every named segment of the standard list is reachable
    assert set(cells.values()) == set(S.RFM_SEGMENTS) - {S.NO_PURCHASE}
    with pytest.raises(ValueError):
        S.segment_of(0, 3)


def test_every_customer_in_exactly_one_segment(default_segments):
    seg = default_segments["segments"]
    assert seg["customer_key"].is_unique
    assert seg["rfm_segment"].notna().all() and seg["rfm_segment"].isin(list(S.RFM_SEGMENTS)).all()
    buyers = seg["frequency"] > 0
    assert (seg.loc[~buyers, "rfm_segment"] == S.NO_PURCHASE).all()
    assert (seg.loc[buyers, "rfm_segment"] != S.NO_PURCHASE).all()
    assert seg["lifecycle_stage"].notna().all()
    assert set(seg["lifecycle_stage"]) <= set(S.STAGES)
    # buyers have exactly one persona, prospects none
    assert seg.loc[buyers, "persona"].notna().all() and seg.loc[~buyers, "persona"].isna().all()


def test_lifecycle_stages_on_constructed_histories():
    t = S.LifecycleThresholds(new_days=30, at_risk_days=60, churn_days=120)
    as_of = pd.Timestamp("2026-06-30")
    o = _orders([
        ("new", "2026-06-20", 1),
        ("trial", "2026-05-20", 1),
        ("active", "2026-03-01", 1), ("active", "2026-04-01", 1), ("active", "2026-06-01", 1),
        ("risk", "2026-01-01", 1), ("risk", "2026-04-15", 1),
        ("churned", "2025-10-01", 1), ("churned", "2026-01-15", 1),
        ("back", "2025-06-01", 1), ("back", "2025-07-01", 1), ("back", "2026-06-10", 1),
        ("cancel_only", "2026-06-25", 1),
        ("future", "2026-07-05", 1),
    ], cancelled=(12,))
    customers = pd.DataFrame({"customer_key": ["new", "trial", "active", "risk", "churned", "back", "cancel_only",
                                               "future", "late_signup", "no_signup_date"],
                              "signup_date": pd.to_datetime(["2026-06-19", "2026-05-01", "2026-01-01", "2025-12-01",
                                                             "2025-09-01", "2025-05-01", "2026-06-01", "2026-06-01",
                                                             "2026-07-10", None])})
    stages = S.lifecycle_stages(o, customers, as_of, t)
    assert stages.astype(str).to_dict() == {
        "new": "new", "trial": "trial", "active": "active", "risk": "at risk", "churned": "churned",
        "back": "reactivated", "cancel_only": "prospect", "future": "prospect",
        "late_signup": "not yet registered", "no_signup_date": "prospect"}


def test_threshold_checks_and_derivation():
    with pytest.raises(ValueError, match="new_days <= at_risk_days < churn_days"):
        S.LifecycleThresholds(30, 20, 40)
    # Too few repeat purchases to learn from: the stated defaults, and a note that says so.
    few = S.derive_thresholds(pd.Series([1, 2, 3]))
    assert (few.new_days, few.at_risk_days, few.churn_days) == S.DEFAULT_THRESHOLDS
    assert "too few" in S.thresholds_note(pd.Series([1, 2, 3]), few, few)
    gaps = pd.Series(np.arange(1, 201))
    t = S.derive_thresholds(gaps)
    assert (t.new_days, t.at_risk_days, t.churn_days) == (101, 151, 181)


def test_inter_purchase_days_merge_same_day_and_skip_cancelled():
    o = _orders([("a", "2026-01-01 09:00", 1), ("a", "2026-01-01 18:00", 1), ("a", "2026-01-11", 1),
                 ("a", "2026-01-05", 1), ("b", "2026-01-01", 1)], cancelled=(3,))
    assert S.inter_purchase_days(o).tolist() == [10]


def test_transition_matrix_rows_sum_to_one():
    before = pd.Series(["active", "active", "new", "prospect"], index=list("abcd"))
    after = pd.Series(["active", "churned", "active", "prospect"], index=list("abcd"))
    m = S.transition_matrix(before, after)
    assert np.allclose(m.sum(axis=1), 1.0)
    assert m.loc["active", "churned"] == 0.5


def test_bootstrap_stability_separates_real_from_spurious_clusters():
    rng = np.random.default_rng(0)
    blobs = np.vstack([rng.normal(c, 0.3, size=(150, 2)) for c in [(0, 0), (5, 5), (0, 5)]])
    labels = S.fit_labels(blobs, 3, "kmeans", 0)
    assert S.bootstrap_stability(blobs, labels, 3, "kmeans", 10, 0).min() > 0.95
    noise = rng.normal(size=(450, 2))  # no structure: forcing 5 clusters gives unstable ones
    nl = S.fit_labels(noise, 5, "kmeans", 0)
    assert S.bootstrap_stability(noise, nl, 5, "kmeans", 10, 0).min() < 0.75


def test_clusters_recover_planted_segments(default_segments):
    """On the default synthetic data the personas recover the generator's planted types (ARI >= 0.9)."""
    d = default_segments
    assert d["k"] == 4
    assert d["recovery"]["ari"] >= 0.9, d["recovery"]["crosstab"]
    assert d["stability"].min() >= 0.75


def test_audience_exports_hold_only_consenting_pseudonymous_ids(default_segments, tmp_path):
    seg = default_segments["segments"]
    summary = S.export_audiences(seg, tmp_path)
    files = sorted(tmp_path.glob("*.csv"))
    assert len(files) == 4 == len(summary)
    consent = seg.set_index("customer_pseudo_id")["marketing_consent"]
    c360 = default_segments["c360"]
    for f in files:
        df = pd.read_csv(f, dtype=str)
        assert list(df.columns) == S.AUDIENCE_COLUMNS
        assert consent.loc[df["customer_pseudo_id"]].all(), f"{f.name} holds customers without consent"
        text = f.read_text()
        assert "@" not in text and "customer_key" not in text
        assert not df["customer_pseudo_id"].isin(c360["customer_key"]).any()
    assert summary["exported"].sum() == int((seg["persona"].notna() & seg["marketing_consent"]).sum())
    # a second export removes files of segments that no longer exist
    gone = seg["persona"].dropna().iloc[0]
    S.export_audiences(seg.assign(persona=seg["persona"].where(seg["persona"] != gone)), tmp_path)
    assert len(list(tmp_path.glob("*.csv"))) == 3
    assert not (tmp_path / f"{S.slugify(gone)}.csv").exists()


def test_persona_names_are_unique_and_named_after_traits():
    z = pd.DataFrame({"discount_share": [2.0, 1.5, -1.0], "return_rate": [0.1, 0.2, 1.8],
                      "open_rate": [0.0, 0.0, 0.0]}, index=[1, 2, 3])
    p = S.persona_names(z)
    # the most extreme discount share wins "Deal seekers"; the strongest returner gets "Impulse browsers"
    assert p.loc[1, "persona"] == "Deal seekers"
    assert p.loc[3, "persona"] == "Impulse browsers"
    assert p["persona"].is_unique and p.loc[2, "persona"] == "Segment 2"
    assert "promotions" in p.loc[2, "action"]  # still gets the action of its strongest trait


def test_segment_explorer_precomputes_a_panel_per_persona_linked_to_the_dropdown():
    import matplotlib

    matplotlib.use("Agg")
    profiles = pd.DataFrame({"customers": [10, 20], "value_share": [0.7, 0.3], "avg_net_revenue": [300.0, 50.0]},
                            index=pd.Index([1, 2], name="cluster"))
    names = pd.Series({1: "Premium loyalists", 2: "Deal seekers"})
    z = pd.DataFrame({"discount_share": [-1.0, 1.2], "open_rate": [0.5, 0.1]}, index=[1, 2])
    box = S.segment_explorer(profiles, names, z, pd.Series({1: "reward", 2: "send offers"}))
    dropdown, stack = box.children
    assert list(dropdown.options) == ["Premium loyalists", "Deal seekers"]
    # Each panel belongs to its persona and carries its chart; no Python callback is needed to switch.
    assert "Premium loyalists" in stack.children[0].value and "send offers" in stack.children[1].value
    assert all("data:image/png;base64," in p.value for p in stack.children)
    assert "share of order lines bought on discount (+1.2 SD)" in stack.children[1].value
    assert [(link.source, link.target) for link in box.links] == [((dropdown, "index"), (stack, "selected_index"))]


def test_silhouette_by_k_is_sklearns_sampled_silhouette():
    """The distances of the sample are computed once for every k; the scores are sklearn's own."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (700, 4)), rng.normal(3, 1, (700, 4))]
    table = S.silhouette_by_k(X, [2, 3], seed=5, sample_size=500)
    for k, row in table.set_index("k").iterrows():
        for method in ["kmeans", "gmm"]:
            expected = silhouette_score(X, S.fit_labels(X, k, method, 5), sample_size=500, random_state=5)
            assert row[f"silhouette_{method}"] == pytest.approx(expected, abs=1e-12)


def test_many_buyers_are_clustered_on_a_sample_and_all_assigned(default_clean, default_360, monkeypatch):
    """With more repeat buyers than FIT_SAMPLE, k, the model and its stability come from a fixed sample and every
    buyer is assigned: the planted segments are still recovered (here with a sample of 800 of the ~2,500)."""
    from helpers.analysis import truth

    monkeypatch.setattr(S, "FIT_SAMPLE", 800)
    fit = S.fit_personas(default_360["c360"])
    assert len(fit.labels) == len(fit.features) > 2 * S.FIT_SAMPLE and fit.k == 4
    recovery = truth.cluster_recovery(default_clean["layout"].truth, default_clean["resolved"],
                                      pd.Series(fit.labels, index=fit.features.index))
    assert recovery["ari"] >= 0.85, recovery["crosstab"]
