"""The language of each feedback text, so that no language's tool scores another language in silence.

Detection uses py3langid (BSD licence; its model ships inside the wheel, nothing is downloaded), restricted to the
languages a European retailer's customers write in, which makes short texts far more reliable than choosing among
all 97 of its languages. A text the model is unsure about (a one-word review such as "Ótimo" or "Top!") takes the
language mix of the confident texts of the same data as its prior: with Bayes' rule, the posterior of each language
is the model's probability times that language's share, renormalised. A text that is still unsure, or that has no
letters, is ``und`` (undetermined). A language the catalogue declares for a text (role ``language``) wins.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# Languages considered by default: the EU's most common customer languages (ISO 639-1).
EUROPEAN = ["en", "de", "fr", "nl", "pt", "es", "it", "da", "sv", "no", "fi", "pl", "cs"]
NAMES = {"en": "English", "de": "German", "fr": "French", "nl": "Dutch", "pt": "Portuguese", "es": "Spanish",
         "it": "Italian", "da": "Danish", "sv": "Swedish", "no": "Norwegian", "fi": "Finnish", "pl": "Polish",
         "cs": "Czech", "und": "undetermined"}
UNDETERMINED = "und"
CONFIDENT = 0.90  # a text is confident when the model alone gives its language at least this probability
ACCEPT = 0.50  # after the prior, the best language must reach this probability, or the text is undetermined
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def _identifier(languages: list[str]):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(languages)
    return ident


def name(code: str) -> str:
    """The English name of a language code ("de" → "German")."""
    return NAMES.get(code, code)


def detect(texts: pd.Series, languages: list[str] | None = None, declared: pd.Series | None = None
           ) -> pd.DataFrame:
    """``language`` (ISO 639-1 code or ``und``) and ``language_confidence`` of each text.

    >>> d = detect(pd.Series(["Die Lieferung war schnell und gut", "Fast delivery, great quality", "", None]))
    >>> d["language"].tolist()
    ['de', 'en', 'und', 'und']
    """
    languages = list(languages or EUROPEAN)
    ident = _identifier(languages)
    index = list(ident.nb_classes)
    probs = np.full((len(texts), len(index)), np.nan)
    usable = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts.tolist()):
        if not isinstance(text, str) or not _LETTER.search(text):
            continue
        ranked = dict(ident.rank(text))
        probs[i] = [ranked.get(code, 0.0) for code in index]
        usable[i] = True
    lang = np.full(len(texts), UNDETERMINED, dtype=object)
    conf = np.zeros(len(texts))
    if usable.any():
        best = np.nanargmax(np.where(usable[:, None], probs, -1.0), axis=1)
        top = probs[np.arange(len(texts)), best]
        confident = usable & (top >= CONFIDENT)
        # the language mix of the confident texts is the prior of the unsure ones (add-one smoothing)
        counts = np.bincount(best[confident], minlength=len(index)).astype(float) + 1.0
        prior = counts / counts.sum()
        posterior = probs * prior
        posterior = posterior / np.nansum(posterior, axis=1, keepdims=True)
        best_post = np.nanargmax(np.where(usable[:, None], posterior, -1.0), axis=1)
        top_post = posterior[np.arange(len(texts)), best_post]
        chosen = np.where(confident, best, best_post)
        score = np.where(confident, top, top_post)
        ok = usable & (score >= ACCEPT)
        lang[ok] = np.asarray(index, dtype=object)[chosen[ok]]
        conf[usable] = score[usable]
    out = pd.DataFrame({"language": lang, "language_confidence": conf}, index=texts.index)
    if declared is not None:
        given = declared.astype("string").str.strip().str.lower().str[:2]
        has = given.notna() & (given != "")
        out.loc[has, "language"] = given[has]
        out.loc[has, "language_confidence"] = 1.0
    out["language"] = out["language"].astype("string")
    return out


def language_mix(frame: pd.DataFrame, by: str = "channel") -> pd.DataFrame:
    """Texts per language and ``by`` (channel), with each language's share within the group."""
    t = frame.dropna(subset=["language"])
    table = t.groupby([by, "language"]).size().rename("texts").reset_index()
    table["share"] = table["texts"] / table.groupby(by)["texts"].transform("sum")
    table["language"] = table["language"].map(lambda c: f"{name(c)} ({c})")
    return table.sort_values([by, "texts"], ascending=[True, False]).reset_index(drop=True)
