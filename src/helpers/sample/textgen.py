"""A small generative grammar for realistic English customer feedback.

Used by :mod:`helpers.synthetic` to write review, survey and ticket texts. Each
text is composed from topic-specific subjects and predicates with intensifiers,
negation ("was not great"), contrast clauses ("... but ..."), openers, closers
and the occasional emoji, so that no two texts follow one repeated template.
The intended sentiment of every text is known and returned, and becomes the
ground-truth label that the sentiment module is validated against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Topic vocabulary: subjects (noun phrases) and adjectives by polarity.
TOPICS: dict[str, dict[str, list[str]]] = {
    "delivery": {
        "subject": ["the delivery", "shipping", "the parcel", "delivery time", "the courier"],
        "pos": ["fast", "quick", "right on time", "great", "excellent", "super quick", "reliable"],
        "neg": ["slow", "late", "a nightmare", "terrible", "awful", "really disappointing"],
    },
    "quality": {
        "subject": ["the quality", "the material", "the fabric", "the stitching", "the product"],
        "pos": ["excellent", "great", "solid", "perfect", "lovely", "amazing", "really nice"],
        "neg": ["poor", "cheap", "flimsy", "bad", "disappointing", "terrible"],
    },
    "price": {
        "subject": ["the price", "value for money", "the discount", "the price tag"],
        "pos": ["fair", "great value", "a bargain", "good", "reasonable", "excellent"],
        "neg": ["too high", "overpriced", "a rip-off", "bad", "ridiculous"],
    },
    "fit": {
        "subject": ["the size", "the fit", "the sizing", "the cut"],
        "pos": ["perfect", "spot on", "comfortable", "great", "just right"],
        "neg": ["wrong", "way too small", "too tight", "awful", "uncomfortable"],
    },
    "service": {
        "subject": ["customer service", "the support team", "the agent", "the hotline", "the chat support"],
        "pos": ["helpful", "friendly", "excellent", "amazing", "very kind", "quick to help"],
        "neg": ["rude", "useless", "unhelpful", "terrible", "impossible to reach"],
    },
    "packaging": {
        "subject": ["the packaging", "the box", "the wrapping"],
        "pos": ["lovely", "nice", "neat", "perfect", "eco-friendly and nice"],
        "neg": ["damaged", "crushed", "broken", "a mess", "ripped open"],
    },
    "website": {
        "subject": ["the website", "the app", "checkout", "the ordering process", "the search"],
        "pos": ["easy", "smooth", "intuitive", "great", "simple and fast"],
        "neg": ["confusing", "buggy", "frustrating", "annoying", "broken"],
    },
    "returns": {
        "subject": ["the return", "the refund", "the returns process", "the exchange"],
        "pos": ["easy", "hassle-free", "quick", "painless", "fine"],
        "neg": ["a hassle", "slow", "frustrating", "a joke", "complicated"],
    },
}

INTENSIFIERS = ["", "", "", "really ", "very ", "extremely ", "super ", "incredibly ", "absolutely "]
NEG_VERBS = ["was", "is"]
OPENERS_NEU = [
    "Ordered this for my partner.", "Second order here.", "Bought this last month.",
    "Gift for my mum.", "First time ordering from this shop.", "I ordered two of these.",
    "Used it for a week now.", "Got it on sale.", "Ordered on a Sunday.", "Long time customer.",
]
CLOSERS = {
    "pos": ["Would definitely recommend!", "Will order again.", "Five stars from me.", "Very happy overall!",
            "Highly recommended.", "Love it!", "Thanks a lot!", "Great shop."],
    "neg": ["Never again.", "Would not recommend.", "Very disappointed.", "Not happy at all.",
            "I want my money back.", "Avoid.", "What a waste of money.", "Really annoyed."],
    "neu": ["It does the job.", "Nothing special.", "Okay for the price.", "We will see how it lasts.",
            "Average experience.", ""],
}
EMOJI = {"pos": ["😊", "👍", "😍", "🙂", "❤️"], "neg": ["😡", "👎", "🙁", "😞", "😠"], "neu": ["🤷", ""]}
NEUTRAL_PREDICATES = ["was as described", "was as expected", "was standard", "was okay", "was what I expected",
                      "was average", "was neither good nor bad", "was about what you would expect"]


@dataclass(frozen=True)
class Feedback:
    """One generated text with the sentiment it was written to carry."""

    text: str
    label: str  # "positive" | "neutral" | "negative"
    topics: tuple[str, ...]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class FeedbackWriter:
    """Compose feedback texts with a known sentiment from a seeded generator.

    >>> w = FeedbackWriter(np.random.default_rng(0))
    >>> fb = w.write("negative", ["delivery"])
    >>> fb.label
    'negative'
    """

    language = "en"
    topics = TOPICS
    intensifiers = INTENSIFIERS
    verbs = NEG_VERBS
    openers = OPENERS_NEU
    closers = CLOSERS
    emoji = EMOJI
    neutral_predicates = NEUTRAL_PREDICATES
    but = "but"
    negate = "not"
    titles = {
        "positive": ["Great buy", "Love it", "Excellent", "Very good", "Happy customer", "Recommended"],
        "neutral": ["Okay", "It's fine", "Mixed feelings", "Average", "As expected"],
        "negative": ["Disappointed", "Not good", "Poor", "Would not buy again", "Bad experience"],
    }

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def _other_forms(self, subject: str, polarity: str) -> str:
        if polarity == "pos":
            return self._pick([f"I love {subject}", f"really happy with {subject}",
                               f"no complaints about {subject}", f"{subject} exceeded my expectations"])
        return self._pick([f"I am {self._pick(self.intensifiers)}unhappy with {subject}",
                           f"{subject} could have been much better", f"I had problems with {subject}",
                           f"I hate {subject}"])

    def _pick(self, items: list[str]) -> str:
        return items[int(self.rng.integers(len(items)))]

    def _clause(self, topic: str, polarity: str) -> str:
        """One clause about ``topic`` carrying ``polarity`` ('pos', 'neg' or 'neu')."""
        vocab = self.topics[topic]
        subject = self._pick(vocab["subject"])
        verb = self._pick(self.verbs)
        form = self.rng.random()
        if polarity == "neu":
            return f"{subject} {self._pick(self.neutral_predicates)}"
        opposite = "neg" if polarity == "pos" else "pos"
        if form < 0.62:
            adjective = self._pick(vocab[polarity])
            # Intensifiers only before a single adjective ("very slow", never "very a rip-off").
            boost = self._pick(self.intensifiers) if " " not in adjective and "-" not in adjective else ""
            return f"{subject} {verb} {boost}{adjective}"
        if form < 0.82:
            # Negated opposite: "the fit was not great" carries negative sentiment.
            return f"{subject} {verb} {self.negate} {self._pick(vocab[opposite])}"
        return self._other_forms(subject, polarity)

    def write(self, label: str, topics: list[str]) -> Feedback:
        """Write a text about ``topics`` whose overall sentiment is ``label``.

        Positive and negative texts may contain one contrasting clause, placed
        before "but" so that the main message comes last, as people write it.
        Neutral texts are either plainly factual or evenly mixed.
        """
        pol = {"positive": "pos", "negative": "neg", "neutral": "neu"}[label]
        rng = self.rng
        sentences: list[str] = []
        if rng.random() < 0.35:
            sentences.append(self._pick(self.openers))
        used: list[str] = []
        for i, topic in enumerate(topics):
            used.append(topic)
            if pol == "neu" and rng.random() < 0.5 and len(topics) >= 1:
                # Mixed feelings: one good, one bad clause about different aspects.
                other = self._pick([t for t in self.topics if t != topic])
                used.append(other)
                first, second = ("pos", "neg") if rng.random() < 0.5 else ("neg", "pos")
                sentences.append(_cap(f"{self._clause(topic, first)}, {self.but} {self._clause(other, second)}."))
                continue
            if pol != "neu" and i == 0 and rng.random() < 0.25:
                contrast = self._pick([t for t in self.topics if t != topic])
                used.append(contrast)
                opp = "neg" if pol == "pos" else "pos"
                sentences.append(_cap(f"{self._clause(contrast, opp)} {self.but} {self._clause(topic, pol)}."))
                continue
            end = "!" if pol == "pos" and rng.random() < 0.3 else "."
            sentences.append(_cap(self._clause(topic, pol)) + end)
        closer = self._pick(self.closers[pol])
        if closer and rng.random() < 0.6:
            sentences.append(closer)
        text = " ".join(sentences)
        if rng.random() < 0.2:
            emoji = self._pick(self.emoji[pol])
            if emoji:
                text = f"{text} {emoji}"
        return Feedback(text=text, label=label, topics=tuple(dict.fromkeys(used)))

    def title(self, label: str) -> str:
        """A short review title."""
        return self._pick(self.titles[label])


# German: the same grammar with its own vocabulary ("nicht" negates the adjective; "aber" joins the contrast).
TOPICS_DE: dict[str, dict[str, list[str]]] = {
    "delivery": {"subject": ["die Lieferung", "der Versand", "das Paket", "die Lieferzeit", "der Kurier"],
                 "pos": ["schnell", "pünktlich", "super", "zuverlässig", "ausgezeichnet", "blitzschnell"],
                 "neg": ["langsam", "verspätet", "eine Katastrophe", "furchtbar", "enttäuschend"]},
    "quality": {"subject": ["die Qualität", "das Material", "der Stoff", "die Verarbeitung", "das Produkt"],
                "pos": ["hervorragend", "sehr gut", "solide", "perfekt", "toll", "hochwertig"],
                "neg": ["schlecht", "billig", "minderwertig", "enttäuschend", "mangelhaft"]},
    "price": {"subject": ["der Preis", "das Preis-Leistungs-Verhältnis", "der Rabatt"],
              "pos": ["fair", "günstig", "gut", "angemessen", "top"],
              "neg": ["zu hoch", "überteuert", "eine Frechheit", "unverschämt"]},
    "fit": {"subject": ["die Größe", "die Passform", "der Schnitt"],
            "pos": ["perfekt", "genau richtig", "bequem", "super"],
            "neg": ["falsch", "viel zu klein", "zu eng", "unbequem"]},
    "service": {"subject": ["der Kundenservice", "das Support-Team", "die Hotline", "der Chat"],
                "pos": ["hilfsbereit", "freundlich", "kompetent", "sehr nett"],
                "neg": ["unfreundlich", "nutzlos", "nicht erreichbar", "inkompetent"]},
    "packaging": {"subject": ["die Verpackung", "der Karton"],
                  "pos": ["schön", "ordentlich", "perfekt", "umweltfreundlich"],
                  "neg": ["beschädigt", "zerdrückt", "kaputt", "aufgerissen"]},
    "website": {"subject": ["die Webseite", "die App", "der Bestellvorgang", "die Suche"],
                "pos": ["einfach", "übersichtlich", "intuitiv", "schnell"],
                "neg": ["verwirrend", "fehlerhaft", "umständlich", "nervig"]},
    "returns": {"subject": ["die Rücksendung", "die Erstattung", "der Umtausch"],
                "pos": ["einfach", "problemlos", "schnell", "unkompliziert"],
                "neg": ["umständlich", "langsam", "ärgerlich", "kompliziert"]},
}


class GermanFeedbackWriter(FeedbackWriter):
    """German feedback with a known sentiment, from the same grammar as :class:`FeedbackWriter`.

    >>> w = GermanFeedbackWriter(np.random.default_rng(1))
    >>> w.write("positive", ["delivery"]).label
    'positive'
    """

    language = "de"
    topics = TOPICS_DE
    intensifiers = ["", "", "", "sehr ", "wirklich ", "extrem ", "total "]
    verbs = ["war", "ist"]
    openers = ["Für meinen Partner bestellt.", "Zweite Bestellung hier.", "Letzten Monat gekauft.",
               "Geschenk für meine Mutter.", "Zum ersten Mal hier bestellt.", "Im Angebot gekauft.",
               "Seit einer Woche in Gebrauch."]
    closers = {"pos": ["Klare Empfehlung!", "Gerne wieder.", "Fünf Sterne von mir.", "Sehr zufrieden!",
                       "Absolut empfehlenswert.", "Danke!"],
               "neg": ["Nie wieder.", "Keine Empfehlung.", "Sehr enttäuscht.", "Ich will mein Geld zurück.",
                       "Finger weg.", "Reine Geldverschwendung."],
               "neu": ["Erfüllt seinen Zweck.", "Nichts Besonderes.", "Für den Preis okay.",
                       "Mal sehen, wie lange es hält.", ""]}
    neutral_predicates = ["war wie beschrieben", "war wie erwartet", "war in Ordnung", "war okay",
                          "war durchschnittlich", "war weder gut noch schlecht"]
    but = "aber"
    negate = "nicht"
    titles = {"positive": ["Toller Kauf", "Super", "Sehr gut", "Zufrieden", "Empfehlenswert"],
              "neutral": ["Okay", "Geht so", "Durchschnitt", "Wie erwartet", "Gemischte Gefühle"],
              "negative": ["Enttäuscht", "Nicht gut", "Schlecht", "Nie wieder", "Ärgerlich"]}

    def _other_forms(self, subject: str, polarity: str) -> str:
        if polarity == "pos":
            return self._pick([f"{subject} hat mich überzeugt", f"{subject} hat meine Erwartungen übertroffen",
                               f"an {subject} gibt es nichts auszusetzen"])
        return self._pick([f"{subject} hat mich enttäuscht", f"{subject} hätte viel besser sein können",
                           f"{subject} war ein einziges Ärgernis", f"{subject} geht gar nicht"])
