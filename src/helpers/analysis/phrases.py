"""Terms, phrases and topics a reader can name, in each text's language.

* **Tokens** are lower-cased words of the text's language with that language's stop words removed, and a
  **negation kept with the word it negates** ("not arrived", "nicht erreichbar", "pas reçu"): a phrase list that
  shows "arrived" for "not arrived" says the opposite of what customers wrote.
* Words are grouped by their **Snowball stem** (NLTK's stemmers: pure code, no data download), and each group is
  shown in its most frequent written form ("Lieferung" and "Lieferungen" are one term).
* **Phrases** are word pairs that occur together more often than chance, by Dunning's log-likelihood ratio
  (NLTK's collocation finder), not merely the most frequent pairs ("time customer" is frequent and meaningless).
* **Topics** are NMF components over terms and phrases; each is labelled by its most distinctive phrases, and takes
  a canonical name (Delivery, Returns and refunds…, used to route follow-ups) only when its words clearly say so.

NLTK is the right tool here: its Snowball stemmers cover the European languages and its collocation measures are
the standard ones. Its stop-word lists are data that would need a download, so short lists per language ship below.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

NEGATIONS: dict[str, set[str]] = {
    "en": {"not", "no", "never", "nothing", "without", "hardly", "cannot", "nor", "neither", "none"},
    "de": {"nicht", "kein", "keine", "keinen", "keinem", "keiner", "nie", "niemals", "ohne", "nichts"},
    "fr": {"pas", "jamais", "rien", "sans", "aucun", "aucune", "ni"},
    "nl": {"niet", "geen", "nooit", "zonder", "niets"},
    "pt": {"não", "nao", "nunca", "nenhum", "nenhuma", "sem", "nada"},
    "es": {"no", "nunca", "ningún", "ninguna", "ninguno", "sin", "nada"},
    "it": {"non", "mai", "senza", "nessun", "nessuna", "niente"},
}

_STOP = {
    "de": """aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf
        aus bei bin bis bist da damit dann das dass dasselbe dazu dein deine dem den denn der des dessen dich die dies
        diese diesem diesen dieser dieses dir doch dort du durch ein eine einem einen einer eines einige einmal er es
        etwas euch euer eure für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr
        ihre im in indem ins ist jede jedem jeden jeder jedes jene jetzt kann können könnte machen man manche mein
        meine mich mir mit muss musste nach noch nun nur ob oder sehr sein seine seit sich sie sind so solche soll
        sollte sondern sonst über um und uns unser unter viel vom von vor war waren warst was weil weiter welche wenn
        werde werden wie wieder will wir wird wirst wo wollen wollte würde würden zu zum zur zwar zwischen schon
        mal ganz ja wirklich total extrem echt leider""",
    "fr": """au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me même mes moi mon
        ne nos notre nous on ou par pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos votre vous c d j
        l à m n s t y été était étais est sont suis ai as avons avez ont avait fait être avoir très plus tout tous
        bien cette cet""",
    "nl": """de en van ik te dat die in een hij het is was op aan met als voor had er maar om hem dan zou of wat mijn
        men dit zo door over ze zich bij ook tot je mij uit der daar haar naar heb hoe heeft hebben deze u want nog
        zal me zij al toch na worden werd wel kan zijn erg heel echt""",
    "pt": """a o as os de da do das dos e em um uma uns umas para por com que se na no nas nos ao aos à às eu ele ela
        eles elas meu minha seu sua foi é era são está estava muito mais mas como já também isso este esta esse essa
        me te lhe nós vocês ter tem tinha ser""",
    "es": """el la los las de del y en un una unos unas para por con que se su sus lo al es era fue son está estaba
        muy más pero como ya también esto este esta ese esa me te le nos yo mi ha han""",
    "it": """il lo la i gli le di del della dei delle e ed in un una uno per con che si su al alla è era sono sta molto
        più ma come già anche questo questa quello quella mi ti ci ho ha hanno""",
}
STEMMER_LANGUAGES = {"en": "english", "de": "german", "fr": "french", "nl": "dutch", "pt": "portuguese",
                     "es": "spanish", "it": "italian", "da": "danish", "sv": "swedish", "no": "norwegian",
                     "fi": "finnish"}
_WORD = re.compile(r"[^\W\d_][^\W\d_'’-]*", re.UNICODE)


def stop_words(language: str) -> set[str]:
    """The stop words of ``language`` minus its negations (English: scikit-learn's list)."""
    if language == "en":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        words = set(ENGLISH_STOP_WORDS) | {"really", "just", "bit", "got", "get"}
    else:
        words = set(_STOP.get(language, "").split())
    return words - NEGATIONS.get(language, set())


class Tokeniser:
    """Words of one language: stop words out, negation joined to the next word, stems for grouping."""

    def __init__(self, language: str) -> None:
        from nltk.stem.snowball import SnowballStemmer

        self.language = language
        self.stop = stop_words(language)
        self.negations = NEGATIONS.get(language, set())
        self._stemmer = SnowballStemmer(STEMMER_LANGUAGES[language]) if language in STEMMER_LANGUAGES else None
        self.surface: dict[str, Counter] = {}

    def stem(self, word: str) -> str:
        return self._stemmer.stem(word) if self._stemmer else word

    def words(self, text: str) -> list[str]:
        """Content words of ``text`` as stems; "not arrived" becomes the single token ``not_arriv``."""
        if not isinstance(text, str):
            return []
        raw = _WORD.findall(text.lower().replace("n't", " not").replace("n’t", " not"))
        out, negate = [], None
        for w in raw:
            if w in self.negations:
                negate = w
                continue
            if w in self.stop or len(w) < 2:
                continue
            s = self.stem(w)
            self.surface.setdefault(s, Counter())[w] += 1
            if negate:
                key = f"{negate}_{s}"
                self.surface.setdefault(key, Counter())[f"{negate} {w}"] += 1
                out.append(key)
                negate = None
            else:
                out.append(s)
        return out

    def show(self, token: str) -> str:
        """The most frequent written form of a stem or of a phrase of stems."""
        parts = token.split(" ")
        return " ".join(self.surface[p].most_common(1)[0][0] if p in self.surface else p.replace("_", " ")
                        for p in parts)


def tokenise(texts: pd.Series, languages: pd.Series) -> tuple[list[list[str]], dict[str, Tokeniser]]:
    """Token lists of every text with its language's tokeniser (English rules for an unknown language)."""
    tokenisers: dict[str, Tokeniser] = {}
    docs = []
    for text, lang in zip(texts.tolist(), languages.fillna("en").tolist()):
        lang = lang if lang in NEGATIONS else "en"
        tok = tokenisers.setdefault(lang, Tokeniser(lang))
        docs.append([f"{lang}:{t}" for t in tok.words(text)])
    return docs, tokenisers


def _display(token: str, tokenisers: dict[str, Tokeniser]) -> str:
    words = []
    for part in token.split(" "):
        lang, _, t = part.partition(":")
        words.append(tokenisers[lang].show(t) if lang in tokenisers else t)
    return " ".join(words)


def collocations(docs: list[list[str]], n: int = 20, min_count: int = 3) -> list[tuple[str, str, float, int]]:
    """Word pairs that occur together more often than chance (Dunning's log-likelihood ratio), within texts."""
    from nltk.collocations import BigramAssocMeasures, BigramCollocationFinder

    finder = BigramCollocationFinder.from_documents(docs)
    finder.apply_freq_filter(min_count)
    finder.apply_ngram_filter(lambda a, b: a.split(":")[0] != b.split(":")[0])  # one language per phrase
    scored = finder.score_ngrams(BigramAssocMeasures.likelihood_ratio)[:n]
    return [(a, b, float(score), int(finder.ngram_fd[(a, b)])) for (a, b), score in scored]


def phrase_table(texts: pd.Series, languages: pd.Series, n: int = 15) -> pd.DataFrame:
    """The most characteristic phrases (collocations) with their log-likelihood score and number of texts."""
    docs, toks = tokenise(texts, languages)
    rows = []
    for a, b, score, count in collocations(docs, n):
        rows.append({"phrase": _display(f"{a} {b}", toks), "language": a.split(":")[0], "texts": count,
                     "log-likelihood": score})
    return pd.DataFrame(rows, columns=["phrase", "language", "texts", "log-likelihood"])


def term_table(texts: pd.Series, languages: pd.Series, n: int = 15) -> pd.DataFrame:
    """The most frequent terms (stems shown in their common form; negated words as one term), by texts."""
    docs, toks = tokenise(texts, languages)
    df = Counter(t for d in docs for t in set(d))
    total = max(len(docs), 1)
    return pd.DataFrame([{"term": _display(t, toks), "language": t.split(":")[0], "texts": c, "share": c / total}
                         for t, c in df.most_common(n)])


def _with_phrases(doc: list[str], pairs: set[tuple[str, str]]) -> list[str]:
    return doc + [f"{a} {b}" for a, b in zip(doc, doc[1:]) if (a, b) in pairs]


def topic_model(texts: pd.Series, languages: pd.Series, n_topics: int = 6, seed: int = 0, n_terms: int = 8,
                canonical: dict[str, set[str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NMF topics over terms and collocation phrases: (document-topic weights, topic table).

    Each topic's ``label`` is its three most distinctive phrases (phrases first, then terms); its ``name`` is a
    canonical name from ``canonical`` (name → keywords in any language) when at least two of its top terms are
    that name's keywords, else the label.
    """
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs, toks = tokenise(texts, languages)
    pairs = {(a, b) for a, b, _, _ in collocations(docs, 200)}
    docs = [_with_phrases(d, pairs) for d in docs]
    vec = TfidfVectorizer(analyzer=lambda d: d, min_df=3, max_df=0.5, sublinear_tf=True)
    X = vec.fit_transform(docs)
    nmf = NMF(n_components=n_topics, init="nndsvda", random_state=seed, max_iter=500)
    W = nmf.fit_transform(X)
    terms = vec.get_feature_names_out()
    rows, used = [], set()
    for k, comp in enumerate(nmf.components_):
        order = np.argsort(-comp)
        top = [str(terms[i]) for i in order[:n_terms]]
        shown = [_display(t, toks) for t in top]
        phrases = [_display(t, toks) for t in top if " " in t or "_" in t.split(":")[-1]]
        label = " · ".join((phrases + [s for s in shown if s not in phrases])[:3])
        name = label
        if canonical:
            words = {w.lower() for s in shown for w in s.replace("-", " ").split()}
            hits = {n_: len(words & keys) for n_, keys in canonical.items()}
            best = max(hits, key=lambda n_: (hits[n_], n_ not in used))
            if hits[best] >= 2 and best not in used:
                name = best
        if name in used:
            name = f"{name} ({label})"
        used.add(name)
        rows.append({"topic": k, "name": name, "label": label, "top_terms": ", ".join(shown)})
    weights = pd.DataFrame(W, index=texts.index, columns=[r["name"] for r in rows])
    return weights, pd.DataFrame(rows)
