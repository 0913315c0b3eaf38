"""Text analytics in the customers' languages: language detection on mixed files, a classifier per language
trained on the data's own ratings, texts in a language without a method left out (and said so), and the German
gold set written for the project."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import language as L
from helpers.analysis import sentiment as S
from helpers.sample.textgen import TOPICS, FeedbackWriter, GermanFeedbackWriter

MIXED = [
    ("en", "The parcel arrived two days late and the box was crushed."),
    ("en", "Lovely quality, the jumper fits perfectly."),
    ("en", "Customer service never answered my emails."),
    ("de", "Die Lieferung kam pünktlich und alles war gut verpackt."),
    ("de", "Leider ist die Naht nach dem ersten Waschen aufgegangen."),
    ("de", "Der Kundenservice war sehr freundlich und hilfsbereit."),
    ("fr", "La livraison était rapide et le produit est conforme."),
    ("fr", "Je suis très déçue, la taille ne correspond pas du tout."),
    ("fr", "Le service client ne répond jamais au téléphone."),
    ("nl", "De levering was snel en het product is prima."),
    ("nl", "Helaas was de jas te klein, ik heb hem teruggestuurd."),
    ("nl", "De klantenservice reageert niet op mijn berichten."),
    ("pt", "O produto chegou antes do prazo, recomendo muito."),
    ("pt", "Péssima qualidade, o tecido rasgou na primeira semana."),
    ("pt", "Atendimento excelente, resolveram tudo rapidamente."),
    ("es", "El pedido llegó roto y nadie me ha contestado."),
    ("it", "La consegna è stata veloce e il prodotto è bellissimo."),
]


def test_language_detection_on_a_mixed_file():
    truth, texts = zip(*MIXED)
    found = L.detect(pd.Series(texts))
    assert (found["language"].to_numpy() == np.array(truth)).mean() == 1.0, found.assign(truth=truth)
    mix = L.language_mix(pd.DataFrame({"channel": ["review"] * len(texts), "language": found["language"]}))
    assert set(mix["language"]) >= {"German (de)", "French (fr)", "Portuguese (pt)"}
    assert mix["share"].sum() == pytest.approx(1.0)


def test_short_unsure_texts_take_the_data_sets_language_mix_as_prior():
    portuguese = ["O produto chegou rápido e bem embalado.", "Gostei muito, recomendo a loja.",
                  "Entrega atrasou duas semanas.", "Qualidade muito boa pelo preço."] * 10
    found = L.detect(pd.Series(portuguese + ["Ótimo", "Top!", "", "12345"]))
    assert found["language"].iloc[:40].eq("pt").all()
    assert found["language"].iloc[40] == "pt"  # unsure alone, Portuguese given that the data are
    assert found["language"].iloc[42:].eq("und").all()  # no letters: undetermined
    declared = L.detect(pd.Series(["Ótimo"]), declared=pd.Series(["PT-br"]))
    assert declared["language"].iloc[0] == "pt" and declared["language_confidence"].iloc[0] == 1.0


def _rated(writer, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Planted labels, stars implied by them with some noise (a 3-star review can read positive), and texts."""
    labels = rng.choice(["positive", "neutral", "negative"], n, p=[0.5, 0.25, 0.25])
    stars = np.select([labels == "positive", labels == "neutral"], [rng.choice([4, 5], n), np.full(n, 3)],
                      rng.choice([1, 2], n))
    topics = list(TOPICS)
    texts = [writer.write(lab, list(rng.choice(topics, 1 + int(rng.random() < 0.4), replace=False))).text
             for lab in labels]
    return pd.DataFrame({"text": texts, "body": texts, "stars": stars.astype(float), "planted": labels})


def test_a_classifier_per_language_learns_from_the_data_s_own_ratings():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(4)
    en = _rated(FeedbackWriter(np.random.default_rng(1)), 400, rng)
    de = _rated(GermanFeedbackWriter(np.random.default_rng(2)), 400, rng)
    # a third of the German texts come without a rating (tickets): scored by the model fitted on the rated ones
    de.loc[de.index[:130], "stars"] = np.nan
    fb = pd.concat([en, de], ignore_index=True)
    fb["language"] = L.detect(fb["text"])["language"]
    assert (fb["language"].iloc[:400] == "en").mean() > 0.97 and (fb["language"].iloc[400:] == "de").mean() > 0.97
    scores, methods = S.score_by_language(fb, seed=0)
    by = {m.language: m for m in methods}
    assert by["de"].method == "classifier trained on this data's ratings" and by["de"].rated == 270
    assert by["de"].macro_f1 >= 0.80 > 0.30 > by["de"].baseline_f1
    german = fb["language"] == "de"
    planted_f1 = f1_score(fb.loc[german, "planted"], scores.loc[german, "sentiment"], average="macro")
    assert planted_f1 >= 0.80, planted_f1  # rated texts out of fold, unrated ones by the fitted model
    assert set(by) == {"en", "de"} and scores["compound"].between(-1, 1).all()
    assert by["de"].confusion.to_numpy().sum() == 270


def test_a_language_without_a_method_is_left_out_and_said_so():
    french = ["La livraison était rapide et le produit est conforme.", "Je suis très déçue de la qualité.",
              "Le service client ne répond jamais."] * 4
    english = ["Great quality, very happy!", "Terrible delivery, the box was broken."] * 3
    fb = pd.DataFrame({"text": french + english, "body": french + english,
                       "language": ["fr"] * len(french) + ["en"] * len(english)})
    scores, methods = S.score_by_language(fb)
    assert scores.loc[:11, "sentiment"].isna().all() and scores.loc[:11, "method"].eq("none").all()
    assert scores.loc[12:, "sentiment"].notna().all()  # English: VADER
    fa = S.FeedbackAnalysis(fb.join(scores), fb.join(scores).dropna(subset=["sentiment"]), methods=methods)
    notes = S.method_notes(fa)
    assert len(notes) == 1 and "12 French texts are not scored" in notes[0] and "labelled_file" in notes[0]
    assert "left out" in " ".join(S.conclusion(fa, None))


def test_german_gold_set_scored_by_a_classifier_trained_on_german_ratings():
    """The German gold set (written for the project, labelled by the rule in the README) scored by the classifier
    that German reviews with stars train: hand-written sentences it has never seen."""
    from sklearn.metrics import f1_score

    gold = S.gold_set("de")
    assert len(gold) >= 300 and set(gold["label"]) == {"positive", "neutral", "negative"}
    train = _rated(GermanFeedbackWriter(np.random.default_rng(0)), 900, np.random.default_rng(0))
    fb = pd.concat([train.assign(language="de"),
                    pd.DataFrame({"text": gold["text"], "body": gold["text"], "language": "de"})], ignore_index=True)
    scores, _ = S.score_by_language(fb, seed=0)
    got = scores["sentiment"].iloc[len(train):]
    f1 = f1_score(gold["label"], got, average="macro")
    # measured 0.53 on the 301 sentences (reviews, tickets, questions; the generator writes only reviews);
    # always predicting the commonest class gives 0.18
    assert f1 >= 0.45, f1


def test_german_gold_set_as_a_labelled_file_cross_validates():
    """The gold set used as an analyst's labelled file: the report's classifier, cross-validated on 301
    hand-written German sentences (measured macro-F1 0.62 over five folds; majority class 0.18)."""
    gold = S.gold_set("de")
    _, folds = S.train_classifier(gold["text"], gold["label"], folds=5, seed=0)
    assert folds["macro_f1"].mean() >= 0.55, folds


def test_an_analyst_s_labels_are_normalised_or_refused():
    from helpers.core.errors import SourceError

    assert S.normalise_labels(pd.Series(["Negativ", "positivo", "neutral"])).tolist() == \
        ["negative", "positive", "neutral"]
    assert S.normalise_labels(pd.Series(["-1", "0", "1"])).tolist() == ["negative", "neutral", "positive"]
    with pytest.raises(SourceError, match="label.*negative / neutral / positive"):
        S.normalise_labels(pd.Series(["spam", "ham"]))


def test_rating_labels_follow_stars_then_nps():
    fb = pd.DataFrame({"stars": [1, 3, 5, np.nan, np.nan], "nps": [np.nan, np.nan, np.nan, 3, 10]})
    assert S.rating_labels(fb).tolist() == ["negative", "neutral", "positive", "negative", "positive"]
    ten = pd.DataFrame({"stars": [1.0, 5.0, 10.0]})  # a 1–10 scale is rescaled to 1–5
    assert S.rating_labels(ten).tolist() == ["negative", "neutral", "positive"]
