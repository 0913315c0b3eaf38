"""Identity resolution: property tests of the normalisers and the truth check on the default data."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers.canonical import identity as ID
from helpers.sample.synthetic import phone_variant

local_part = st.from_regex(r"[a-z][a-z0-9]{1,10}(\.[a-z0-9]{1,6})?", fullmatch=True)
domains = st.sampled_from(["gmail.com", "web.de", "outlook.com", "gmx.de", "orange.fr", "icloud.com"])


@given(local_part, domains)
def test_email_normalisation_is_idempotent_and_ignores_case_and_spaces(local, domain):
    e = f"{local}@{domain}"
    n = ID.normalise_email(e)
    assert ID.normalise_email(n) == n
    assert ID.normalise_email(f"  {e.upper()}\t") == n


@given(local_part, st.integers(min_value=1, max_value=5))
def test_gmail_ignores_dots_and_googlemail(local, step):
    plain = local.replace(".", "")
    dotted = ".".join(plain[i:i + step] for i in range(0, len(plain), step))
    assert ID.normalise_email(f"{dotted}@googlemail.com") == ID.normalise_email(f"{plain}@gmail.com")


@given(local_part, st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))
def test_plus_tags_only_dropped_for_providers_that_ignore_them(local, tag):
    assert ID.normalise_email(f"{local}+{tag}@outlook.com") == ID.normalise_email(f"{local}@outlook.com")
    assert ID.normalise_email(f"{local}+{tag}@web.de") != ID.normalise_email(f"{local}@web.de")
    # Dots matter outside Gmail.
    if "." in local:
        assert ID.normalise_email(f"{local}@web.de") != ID.normalise_email(f"{local.replace('.', '')}@web.de")


@given(st.sampled_from([("DE", "49"), ("AT", "43"), ("NL", "31"), ("FR", "33"), ("CH", "41")]),
       st.integers(min_value=150, max_value=179), st.integers(min_value=0, max_value=9_999_999))
def test_every_way_of_typing_a_phone_gives_one_number(country, prefix, number):
    cc_name, cc = country
    e164 = f"+{cc}{prefix}{number:07d}"
    forms = {ID.normalise_phone(phone_variant(e164, cc, k), cc_name) for k in range(5)}
    assert forms == {e164}


@given(st.text(max_size=12))
def test_normalisers_never_crash(text):
    ID.normalise_email(text)
    ID.normalise_phone(text, "DE")


def test_invalid_inputs_give_none():
    assert ID.normalise_email("n/a") is None and ID.normalise_email(None) is None
    assert ID.normalise_phone("0151 123", None) is None  # national number without a country
    assert ID.normalise_phone("+49 12") is None


def test_resolution_joins_chains_of_links():
    links = pd.DataFrame({"left": ["crm:a", "crm:c", "crm:b"], "right": ["crm:b", "crm:d", "crm:d"], "rule": "t"})
    r = ID.resolve(links, ["crm:e"]).set_index("node")["customer_key"]
    assert r[["crm:a", "crm:b", "crm:c", "crm:d"]].nunique() == 1 and r["crm:a"] == "a" and r["crm:e"] == "e"


def test_person_key_decides_who_is_one_customer():
    """Marketplace exports: a new customer id per order, one person key; the person is the customer."""
    links = pd.DataFrame({"left": ["crm:o1", "crm:o2", "crm:o3"], "right": ["person:P9", "person:P9", "person:P1"],
                          "rule": "crm person key"})
    r = ID.resolve(links).set_index("node")["customer_key"]
    assert r["crm:o1"] == r["crm:o2"] == "P9" and r["crm:o3"] == "P1"


def test_resolution_key_is_smallest_crm_id_and_anonymous_groups_get_none():
    links = pd.DataFrame({"left": ["crm:C2", "crm:C1", "cookie:x"], "right": ["email:a@b.de", "email:a@b.de",
                                                                              "crm:C2"], "rule": "t"})
    r = ID.resolve(links, ["cookie:lonely"]).set_index("node")["customer_key"]
    assert r["crm:C2"] == r["cookie:x"] == "C1"
    assert pd.isna(r["cookie:lonely"])


def test_pairwise_scores_against_hand_computed_values():
    # predicted {a,b,c} {d}; truth {a,b} {c,d}: TP pairs 1 (ab), predicted 3, true 2
    s = ID.pairwise_scores(pd.Series([1, 1, 1, 2]), pd.Series(["x", "x", "y", "y"]))
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(1 / 2)


def test_pseudonyms_are_stable_keyed_and_not_the_id():
    ids = pd.Series(["C100001", "C100002", None])
    a, b = ID.pseudonymise(ids, key="k1"), ID.pseudonymise(ids, key="k1")
    assert a.equals(b) and a.iloc[0] != ID.pseudonymise(ids, key="k2").iloc[0]
    assert "100001" not in a.iloc[0] and pd.isna(a.iloc[2])


def test_identity_resolution_matches_truth_on_default_data(default_clean):
    """Precision and recall of record pairs against the generator's identity clusters, both >= 0.99."""
    resolved, truth = default_clean["resolved"], default_clean["identity_truth"]
    truth = truth.assign(node=truth["record_type"] + ":" + truth["record_key"])
    m = truth.merge(resolved, on="node", how="left")
    predicted = m["customer_key"].fillna("alone:" + m["node"])
    scores = ID.pairwise_scores(predicted, m["person_id"])
    assert scores["precision"] >= 0.99 and scores["recall"] >= 0.99, scores
    assert scores["true_pairs"] > 5000  # the check has real pairs to find: duplicate accounts and cookies


def test_probabilistic_matching_runs_on_the_default_data_and_only_adds_true_merges(default_clean):
    """Splink is trained and used on the sample; the truth check the 02 report shows agrees with the test's."""
    from helpers.analysis import truth

    built, layout = default_clean["built"], default_clean["layout"]
    m = built.matching
    assert m is not None and m.ran and {"first_name", "last_name", "postcode", "email"} <= set(m.comparisons)
    assert m.trained_m_from == "the pairs the exact rules joined" and 0 < m.prior < 1e-3
    scores = truth.identity_scores(layout.truth, built.resolved, built.links)
    assert scores["final"]["precision"] >= 0.99 and scores["final"]["recall"] >= 0.99, scores
    if m.new_merges:
        assert scores["final"]["recall"] > scores["exact_only"]["recall"]
        assert scores["final"]["precision"] >= scores["exact_only"]["precision"] - 1e-9
