"""The sample-data generator: deterministic, realistic dirt, and a truth file consistent with the data."""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from helpers.sample import synthetic
from helpers.core.paths import DataLayout


def _digest(folder):
    out = {}
    for p in sorted(folder.iterdir()):
        if p.suffix == ".xlsx":  # zip members carry timestamps; compare the content instead
            out[p.name] = pd.read_excel(p).to_csv()
        else:
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_same_seed_gives_identical_files(tmp_path, small_data):
    again = DataLayout(tmp_path)
    synthetic.generate(again.raw, again.truth, n_customers=400, seed=7)
    assert _digest(again.raw) == _digest(small_data.raw)
    for name in ["persons.parquet", "identity.parquet", "text_labels.parquet", "truth.json"]:
        assert (again.truth / name).read_bytes() == (small_data.truth / name).read_bytes(), name


def test_other_seed_gives_other_data(tmp_path, small_data):
    other = DataLayout(tmp_path)
    synthetic.generate(other.raw, other.truth, n_customers=400, seed=8)
    assert _digest(other.raw)["orders.csv"] != _digest(small_data.raw)["orders.csv"]


def test_every_source_is_written_in_its_real_world_form(small_data):
    raw = small_data.raw
    with sqlite3.connect(raw / "crm.sqlite") as con:
        n = con.execute("SELECT COUNT(*) FROM customers").fetchone()[0]
    assert n > 400  # duplicate accounts and legacy duplicate rows on top of one row per person
    assert (raw / "returns.csv").read_bytes().decode("latin-1").splitlines()[0].count(";") == 7
    with pytest.raises(UnicodeDecodeError):  # Latin-1 umlauts in the German export
        (raw / "returns.csv").read_bytes().decode("utf-8")
    lines = gzip.decompress((raw / "web_events.jsonl.gz").read_bytes()).decode().splitlines()
    bad = 0
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            bad += 1
    assert bad == 3
    assert pd.read_excel(raw / "products.xlsx", sheet_name="catalogue").shape[0] == 240
    assert pd.read_parquet(raw / "email_sends.parquet")["variant"].nunique() >= 5


def test_truth_matches_the_data(small_data):
    _assert_truth_matches_the_data(small_data)


def _assert_truth_matches_the_data(layout):
    raw, truth = layout.raw, layout.truth
    persons = pd.read_parquet(truth / "persons.parquet")
    ident = pd.read_parquet(truth / "identity.parquet")
    meta = json.loads((truth / "truth.json").read_text())
    with sqlite3.connect(raw / "crm.sqlite") as con:
        crm = pd.read_sql("SELECT customer_id FROM customers", con)
    # Every CRM account belongs to exactly one known person.
    crm_truth = ident[ident["record_type"] == "crm"]
    assert set(crm["customer_id"]) == set(crm_truth["record_key"])
    assert crm_truth["record_key"].is_unique
    assert set(crm_truth["person_id"]) == set(persons["person_id"])
    # Completed orders of real customers = purchases of the BTYD process.
    orders = pd.read_csv(raw / "orders.csv", dtype=str).drop_duplicates()
    completed = orders[orders["status"].str.lower() == "completed"]
    completed = completed[completed["customer_id"].isin(crm_truth["record_key"]) & ~completed["order_id"].str.startswith("O9")]
    purchases = pd.read_parquet(truth / "purchases.parquet")
    assert len(completed) == len(purchases)
    per_person = completed["customer_id"].map(crm_truth.set_index("record_key")["person_id"]).value_counts()
    assert per_person.sort_index().equals(purchases["person_id"].value_counts().sort_index().rename("count"))
    # Segments and experiments are described in the truth file.
    assert set(persons["segment"]) == set(meta["segments"])
    campaigns = pd.read_csv(raw / "campaigns.csv", dtype=str).fillna("")
    assert set(campaigns.loc[campaigns["experiment"] != "", "experiment"]) == set(meta["experiments"])
    sends = pd.read_parquet(raw / "email_sends.parquet")
    for exp in meta["experiments"].values():
        arms = set(sends.loc[sends["campaign_id"] == exp["campaign_id"], "variant"])
        assert arms == set(exp["arms"])
    # Every text has a sentiment label.
    labels = pd.read_parquet(truth / "text_labels.parquet")
    reviews = pd.read_csv(raw / "reviews.csv", dtype=str)
    assert set(reviews["review_id"]) <= set(labels["id"])
    assert set(labels["label"]) <= {"positive", "neutral", "negative"}


def test_segments_differ_as_planted(small_data):
    """The latent segments behave differently, so that clustering and CLV have something to find."""
    persons = pd.read_parquet(small_data.truth / "persons.parquet")
    rate = persons.groupby("segment")["lambda"].mean()
    assert rate["loyal_premium"] > 2 * rate["occasional"]
    assert persons["segment"].value_counts(normalize=True).min() > 0.1


def test_planted_dirt_is_present(small_data):
    raw = small_data.raw
    orders = pd.read_csv(raw / "orders.csv", dtype=str)
    assert orders.duplicated().sum() >= 1
    assert (orders["customer_id"] == "C999999").sum() == 1
    assert orders["order_date"].str.contains(r"^\d{2}\.\d{2}\.\d{4}").sum() > 0
    assert set(orders["currency"]) == {"EUR", "CHF"}
    lines = pd.read_csv(raw / "order_lines.csv", dtype=str)
    assert (lines["unit_price"].astype(float) < 0).sum() == 1
    with sqlite3.connect(raw / "crm.sqlite") as con:
        crm = pd.read_sql("SELECT * FROM customers", con)
    assert crm.duplicated().sum() >= 1
    assert crm["phone"].isna().mean() > 0.03
    assert (crm["email"] != crm["email"].str.strip()).sum() > 0


def test_texts_are_varied_not_one_template(small_data):
    reviews = pd.read_csv(small_data.raw / "reviews.csv", dtype=str)
    texts = reviews["text"].dropna()
    assert texts.nunique() / len(texts) > 0.9
    joined = " ".join(texts).lower()
    for marker in [" not ", " but ", "really", "very"]:
        assert marker in joined


def test_generator_rejects_tiny_sizes(tmp_path):
    with pytest.raises(ValueError, match="at least 50"):
        synthetic.generate(tmp_path / "raw", tmp_path / "truth", n_customers=10)
    with pytest.raises(ValueError, match="at most 2,000,000; got 2,000,001"):
        synthetic.generate(tmp_path / "raw", tmp_path / "truth", n_customers=2_000_001)
    with pytest.raises(ValueError, match="block_size must be at least 50"):
        synthetic.generate(tmp_path / "raw", tmp_path / "truth", n_customers=100, block_size=20)


def test_email_variants_keep_the_mailbox():
    assert synthetic.email_variant("anna.meyer@gmail.com", "dots").endswith("@googlemail.com")
    assert synthetic.email_variant("anna.meyer@web.de", "plus") == "anna.meyer@web.de"  # web.de: no plus rule
    assert synthetic.phone_variant("+4915100000012", "49", 2) == "0151 00000012"
    assert np.isclose(sum(s.share for s in synthetic.SEGMENTS.values()), 1.0)


@pytest.fixture(scope="module")
def blocked_data(tmp_path_factory) -> DataLayout:
    """900 customers simulated in three blocks of 300, as a million customers are in blocks of 25,000."""
    layout = DataLayout(tmp_path_factory.mktemp("blocks"))
    synthetic.generate(layout.raw, layout.truth, n_customers=900, seed=3, block_size=300)
    return layout


def test_a_sample_of_one_block_is_what_one_block_gives(tmp_path, small_data):
    """Blocks change nothing up to the block size: the default sample stays the data every figure was checked on."""
    one = DataLayout(tmp_path)
    synthetic.generate(one.raw, one.truth, n_customers=400, seed=7, block_size=400)
    assert _digest(one.raw) == _digest(small_data.raw)


def test_blocks_are_deterministic_and_differ_from_each_other(tmp_path, blocked_data):
    again = DataLayout(tmp_path)
    synthetic.generate(again.raw, again.truth, n_customers=900, seed=3, block_size=300)
    assert _digest(again.raw) == _digest(blocked_data.raw)
    persons = pd.read_parquet(blocked_data.truth / "persons.parquet")
    assert len(persons) == 900 and persons["person_id"].is_unique
    # Each block draws its own people: the three blocks' rates are not copies of one another.
    assert persons["lambda"].iloc[:300].to_numpy().tolist() != persons["lambda"].iloc[300:600].to_numpy().tolist()


def test_ids_mailboxes_and_phones_stay_unique_across_blocks(blocked_data):
    raw = blocked_data.raw
    _assert_truth_matches_the_data(blocked_data)
    orders = pd.read_csv(raw / "orders.csv", dtype=str).drop_duplicates()
    assert orders["order_id"].is_unique
    assert (orders["customer_id"] == synthetic.UNKNOWN_CUSTOMER).sum() == 3  # the planted dirt, once per block
    for name, key in [("returns.csv", "return_id"), ("reviews.csv", "review_id"), ("surveys.csv", "response_id"),
                      ("tickets.csv", "ticket_id")]:
        frame = pd.read_csv(raw / name, dtype=str, sep=";" if name == "returns.csv" else ",",
                            encoding="latin-1" if name == "returns.csv" else "utf-8")
        assert frame[key].is_unique and len(frame) > 0, name
    assert pd.read_parquet(raw / "email_sends.parquet")["send_id"].is_unique
    events = [json.loads(line) for line in gzip.decompress((raw / "web_events.jsonl.gz").read_bytes()).decode()
              .splitlines() if line.endswith("}")]
    assert pd.Series([e["event_id"] for e in events]).is_unique
    # Two people never share a mailbox or a phone number, whichever block they were drawn in.
    ident = pd.read_parquet(blocked_data.truth / "identity.parquet").query("record_type == 'crm'")
    with sqlite3.connect(raw / "crm.sqlite") as con:
        crm = pd.read_sql("SELECT DISTINCT customer_id, email, phone FROM customers", con)
    crm["person"] = crm["customer_id"].map(ident.set_index("record_key")["person_id"])
    mailbox = crm["email"].str.strip().str.lower().str.replace(r"\+shop@", "@", regex=True)
    real = mailbox.str.contains("@")  # not the planted "n/a"
    assert (crm[real].groupby(mailbox[real])["person"].nunique() == 1).all()
    digits = crm["phone"].str.replace(r"\D", "", regex=True).str[-7:]
    assert (crm.dropna(subset=["phone"]).groupby(digits)["person"].nunique() == 1).all()


def test_blocked_sample_cleans_balances_and_resolves_to_its_people(blocked_data):
    """Steps 01-02 on a sample written in blocks: every row accounted for, people found again across blocks' ids."""
    from conftest import build
    from helpers.analysis import truth

    _, built = build(blocked_data)
    assert built.balance["balanced"].all()
    scores = truth.identity_scores(blocked_data.truth, built.resolved)["final"]
    assert scores["precision"] >= 0.99 and scores["recall"] >= 0.99, scores
