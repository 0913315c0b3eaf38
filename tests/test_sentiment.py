"""Sentiment against human-rated text and the generator's labels, text analytics helpers, NPS, key drivers,
the follow-up queue and e-mail alerts through a real local SMTP server."""

from __future__ import annotations

import re
import time
from email import message_from_bytes
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.reporting import alerts
from helpers.analysis import sentiment as S


def test_gold_set_macro_f1_and_hard_cases():
    gold = S.gold_set()
    assert len(gold) >= 30 and set(gold["phenomenon"]) >= {"negation", "intensifier", "but-clause", "emoji"}
    scores = S.score(gold["text"])
    result = S.evaluate(gold["label"], scores["sentiment"].astype(object))
    assert result["macro_f1"] >= 0.75 and result["accuracy"] >= 0.8, result
    by = dict(zip(gold["text"], scores["compound"]))
    assert by["The shoes are not bad at all."] > 0 > by["The shoes are not good."]  # negation
    assert by["The quality is extremely good!"] > S.score(pd.Series(["The quality is good."]))["compound"].iloc[0]
    assert by["Love it 😍"] > 0 > by["Arrived broken 😡"]  # emoji
    assert by["The design is lovely but it broke after two days."] < 0  # "but" shifts the weight


def test_sample_labels_and_star_correlation(default_360, default_clean):
    t = default_360["tables"]
    fb = S.feedback_table(t["feedback"], t["products"])
    labels = pd.read_parquet(default_clean["layout"].truth / "text_labels.parquet").rename(columns={"label": "planted"})
    # VADER on the English texts only (the sample also writes German feedback, which VADER must never score)
    english = fb[fb["language"] == "en"]
    vader = english.join(S.score(english["text"])).dropna(subset=["sentiment"]).merge(labels, on="id")
    r = S.evaluate(vader["planted"], vader["sentiment"].astype(object), vader["compound"], vader["stars"])
    # (the generated texts are not human-rated: the document rule is chosen on the human-rated corpora below,
    # where it matches or beats whole-text VADER; on these planted labels it gives macro-F1 0.58)
    assert r["n"] > 1500 and r["macro_f1"] >= 0.55 and r["spearman"] >= 0.7, r
    # the report's method per language, on every text
    assert set(fb["language"].dropna()) >= {"en", "de"}
    scores, methods = S.score_by_language(fb)
    both = fb.join(scores).dropna(subset=["sentiment"]).merge(labels, on="id")
    r = S.evaluate(both["planted"], both["sentiment"].astype(object), both["compound"], both["stars"])
    assert r["n"] > 2500 and r["macro_f1"] >= 0.85 and r["spearman"] >= 0.7, r
    assert {m.language for m in methods if m.method != "none"} >= {"en", "de"}


def test_sentence_averaging_does_not_saturate():
    scorer = S.SentenceScorer()
    text = ("The delivery was fast and the packaging was lovely, exactly as promised on the website. The jacket "
            "itself is terrible and it fell apart after two washes. Customer service was friendly and helpful when "
            "I called them. I will not order again.")
    assert len(text.split()) > S.WHOLE_UP_TO_WORDS
    assert abs(scorer.whole(text)) > abs(scorer.document(text)[0])
    assert scorer.document(text)[1] == 4
    # a short text is scored whole: exactly VADER, whose "but" rule spans the sentences
    short = "Delivery was quick. But the jacket is awful!"
    assert scorer.document(short) == (scorer.whole(short), 2) and scorer.whole(short) < 0


def test_scorer_gives_exactly_vaders_scores_on_human_rated_texts():
    """The fast paths (no lexicon word -> 0, emoji translated only when present, lowercasing once) change no
    score: 7,908 tweets and review sentences of Hutto & Gilbert (2014), and emoji, score as vaderSentiment."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from corpora import icwsm

    texts = pd.concat([icwsm("tweets")["text"], icwsm("amazonReviewSnippets")["text"]]).tolist()
    texts += ["Love it 😍", "bad😡 service", "NOT good at all!!! :(", "no emoji in über", "😀", "kind of ok",
              "the product is the shit", "never so happy", "without doubt great", "at least it works"]
    vader, ours = SentimentIntensityAnalyzer(), S.SentenceScorer(cache=False)
    mismatches = [t for t in texts if ours.sentence(t) != vader.polarity_scores(t)["compound"]]
    assert len(texts) > 7900 and mismatches == []


def test_document_rule_matches_whole_text_vader_on_short_texts_and_beats_it_on_long_ones():
    """Pearson r against human ratings (Hutto & Gilbert 2014): 4,200 tweets (short) and 280 whole Amazon reviews
    of four sentences or more (long, median about 150 words)."""
    from scipy.stats import pearsonr

    from corpora import amazon_reviews, icwsm

    scorer = S.SentenceScorer()
    r = {}
    for name, frame in [("short", icwsm("tweets")), ("long", amazon_reviews(min_sentences=4))]:
        doc = [scorer.document(t)[0] for t in frame["text"]]
        whole = [scorer.whole(t) for t in frame["text"]]
        r[name] = (pearsonr(doc, frame["rating"])[0], pearsonr(whole, frame["rating"])[0])
    assert r["short"][0] >= r["short"][1] - 1e-9 and r["short"][0] > 0.85, r  # published VADER: 0.881 on tweets
    assert r["long"][0] >= r["long"][1] + 0.05, r


def test_sentence_splitter():
    assert S.split_sentences("Great!!! Would buy again 😍. Not sure about the size...") == [
        "Great!!!", "Would buy again 😍.", "Not sure about the size..."]
    assert S.split_sentences("Price 12.50 EUR. OK") == ["Price 12.50 EUR.", "OK"]
    assert S.split_sentences(None) == [] and S.split_sentences("") == []


def test_terms_keep_negations_group_inflections_and_count_documents():
    from helpers.analysis import phrases as PH

    assert "not" not in PH.stop_words("en") and "the" in PH.stop_words("en")
    assert "nicht" not in PH.stop_words("de") and "und" in PH.stop_words("de")
    texts = pd.Series(["not good at all", "not good", "very good", "good good good",
                       "Die Lieferung war nicht pünktlich", "Lieferungen immer pünktlich"])
    terms = PH.term_table(texts, pd.Series(["en"] * 4 + ["de"] * 2), 10)
    got = dict(zip(terms["term"], terms["texts"]))
    # "not good" is one term (never counted as "good"); Lieferung/Lieferungen are one stem
    assert got["good"] == 2 and got["not good"] == 2
    assert got["lieferung"] == 2 and got["nicht pünktlich"] == 1 and got["pünktlich"] == 1


def test_phrases_are_collocations_not_merely_frequent_pairs():
    from helpers.analysis import phrases as PH

    rng = np.random.default_rng(0)
    filler = ["customer", "time", "order", "item", "colour", "box", "week", "shop"]
    texts = []
    for i in range(300):
        words = list(rng.choice(filler, 6))
        if i % 3 == 0:
            words.insert(int(rng.integers(0, 6)), "parcel not arrived")
        texts.append(" ".join(words))
    table = PH.phrase_table(pd.Series(texts), pd.Series(["en"] * len(texts)), 3)
    # the planted phrase, with its negation, beats pairs of frequent filler words that co-occur by chance
    assert table["phrase"].iloc[0] == "parcel not arrived"


def test_nps_standard_error_by_hand():
    # 50 promoters, 30 passives, 20 detractors: NPS 30, SE = 100 sqrt((0.5 + 0.2 - 0.09)/100) = 7.81
    r = S.nps_with_se(pd.Series([10] * 50 + [8] * 30 + [3] * 20))
    assert r["nps"] == pytest.approx(30.0) and r["se"] == pytest.approx(100 * np.sqrt(0.61 / 100), abs=1e-9)
    # and it matches the bootstrap spread of NPS
    rng = np.random.default_rng(0)
    s = np.array([10] * 50 + [8] * 30 + [3] * 20)
    boots = [(lambda b: 100 * ((b >= 9).mean() - (b <= 6).mean()))(rng.choice(s, s.size)) for _ in range(4000)]
    assert r["se"] == pytest.approx(np.std(boots), rel=0.05)


def test_relative_weights_sum_to_r2_and_reduce_to_squared_correlations():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(5000, 3)), columns=["a", "b", "c"])
    X["d"] = X["a"] * 0.8 + rng.normal(scale=0.6, size=5000)  # correlated with a
    y = 1.0 * X["a"] + 0.5 * X["b"] + 0.2 * X["d"] + rng.normal(size=5000)
    rw = S.relative_weights(X, y)
    from numpy.linalg import lstsq

    A = np.column_stack([np.ones(5000), X.to_numpy()])
    resid = y - A @ lstsq(A, y, rcond=None)[0]
    r2 = 1 - resid.var() / y.var()
    assert rw["raw_weight"].sum() == pytest.approx(r2, abs=1e-9)
    # orthogonal predictors: the weight of each is its squared correlation with y
    Z = pd.DataFrame(np.linalg.qr(rng.normal(size=(3000, 3)))[0], columns=["p", "q", "r"])
    yz = Z["p"] * 3 + Z["q"] + rng.normal(scale=0.01, size=3000)
    w = S.relative_weights(Z, yz).set_index("driver")["raw_weight"]
    for c in Z:
        assert w[c] == pytest.approx(np.corrcoef(Z[c], yz)[0, 1] ** 2, abs=1e-3)


def test_mask_pii():
    assert S.mask_pii("Call +49 (0)151 234 5678 or mail a.b@x-y.de from 192.168.1.20") == (
        "Call [phone] or mail [e-mail] from [ip]")


def test_followup_queue_prioritises_by_value_and_hides_identity():
    fb = pd.DataFrame({"channel": ["review", "survey", "ticket", "review"], "id": ["r1", "s1", "t1", "r2"],
                       "customer_key": ["A", "B", "C", "D"], "created_at": pd.Timestamp("2026-09-01"),
                       "text": ["awful, mail me at x@y.com", "meh", "broken", "lovely"], "stars": [1, None, None, 5],
                       "nps": [None, 3, None, None], "compound": [-0.8, 0.0, -0.5, 0.9],
                       "topic": ["Delivery", None, "Customer service", "Delivery"]})
    clv = pd.DataFrame({"customer": ["A", "B", "C", "D"], "clv": [10.0, 5000.0, 100.0, 9999.0]})
    pseudo = pd.Series({"A": "cust_a", "B": "cust_b", "C": "cust_c", "D": "cust_d"})
    q = S.followup_queue(fb, -0.05, clv, pseudo)
    assert list(q["customer_pseudo_id"]) == ["cust_b", "cust_c", "cust_a"]  # D is positive; B is worth most
    assert "x@y.com" not in " ".join(q["excerpt"]) and "customer_key" not in q.columns
    assert q.set_index("id").loc["r1", "team"] == "logistics"


def test_no_nltk_download_anywhere(project_root):
    for path in list((project_root / "src").rglob("*.py")) + list((project_root / "notebooks").glob("*.ipynb")):
        assert "nltk.download" not in path.read_text(encoding="utf-8"), path


def test_classifier_cross_validates():
    texts = pd.Series(["great product love it", "terrible broken awful", "love it great", "awful terrible",
                       "great love", "broken awful"] * 10)
    labels = pd.Series(["pos", "neg"] * 30)
    model, metrics = S.train_classifier(texts, labels, folds=5)
    assert len(metrics) == 5 and metrics["macro_f1"].mean() > 0.9
    assert model.predict(pd.Series(["love this great thing"]))[0] == "pos"


# ---------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------


def _queue():
    return pd.DataFrame({"priority": [3.0, 2.0, 1.0], "customer_pseudo_id": ["cust_1", "cust_2", "cust_3"],
                         "channel": ["review", "ticket", "survey"], "id": ["r1", "t1", "s1"],
                         "team": ["logistics", "customer-service", "logistics"], "compound": [-0.7, -0.4, np.nan],
                         "nps": [np.nan, np.nan, 2.0], "clv": [120.0, np.nan, 40.0],
                         "excerpt": ["late again", "no answer", "meh"]})


ROUTING = {"teams": {"logistics": "logistics@example.com", "customer-service": "care@example.com"},
           "default": "cx@example.com"}


def test_alerts_reach_a_local_smtp_server(tmp_path):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    import socket

    with socket.socket() as sock:  # a free port on the loopback interface
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = alerts.smtp_settings({"CIW_SMTP_HOST": "127.0.0.1", "CIW_SMTP_PORT": str(port),
                                         "CIW_SMTP_SENDER": "cx-bot@example.com", "CIW_SMTP_STARTTLS": "0"},
                                        local_config=tmp_path / "none.yaml")
        messages = alerts.build_messages(_queue(), ROUTING, settings.sender)
        log = alerts.deliver(messages, settings, tmp_path / "outbox", send=True)
        deadline = time.time() + 5
        while len(received) < 2 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        controller.stop()
    assert list(log["status"]) == ["sent", "sent"] and not list((tmp_path / "outbox").glob("*.eml"))
    by_to = {m["To"]: m for m in received}
    assert set(by_to) == {"logistics@example.com", "care@example.com"}
    body = by_to["logistics@example.com"].get_payload()
    assert "cust_1" in body and "cust_3" in body and "cust_2" not in body and "late again" in body
    assert by_to["care@example.com"]["From"] == "cx-bot@example.com"


def test_alerts_default_to_a_dry_run(tmp_path):
    settings = alerts.smtp_settings({}, local_config=tmp_path / "none.yaml")
    assert settings is None
    log = alerts.deliver(alerts.build_messages(_queue(), ROUTING, "bot@example.com"), settings, tmp_path, send=False)
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 2 and all(s.startswith("dry run") for s in log["status"])
    msg = message_from_bytes(files[0].read_bytes())
    assert msg["Subject"].startswith("[CX follow-up]")
    assert "To" not in log.columns  # the report table carries teams, not addresses


def test_smtp_password_is_never_printed(tmp_path):
    s = alerts.smtp_settings({"CIW_SMTP_HOST": "mail", "CIW_SMTP_PASSWORD": "hunter2"}, local_config=tmp_path / "x")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)


def test_routing_file_is_valid(project_root):
    routing = alerts.load_routing(project_root / "config" / "alert_routing.yaml")
    assert set(S.ROUTING_DEFAULT.values()) <= set(routing["teams"])
