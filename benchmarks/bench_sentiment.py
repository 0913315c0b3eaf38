"""Sentence scoring throughput: the workbench's scorer against NLTK's VADER on the same lexicon.

The sentences are those of the default sample's reviews, survey comments and ticket descriptions (generated on the
fly, 5,000 customers), three times over. Three numbers: vaderSentiment without cache (every sentence
scored), the workbench's cached scorer (feedback repeats sentences), and NLTK's SentimentIntensityAnalyzer built
from vaderSentiment's lexicon file (no nltk_data download needed). Target: at least 20,000 sentences per second.

Run: ``python benchmarks/bench_sentiment.py`` (or ``make bench``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from helpers.analysis import sentiment
from helpers.sample import synthetic


def sample_sentences() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        raw, truth = Path(tmp) / "raw", Path(tmp) / "truth"
        synthetic.generate(raw, truth, n_customers=5000, seed=42)
        texts = pd.concat([pd.read_csv(raw / "reviews.csv")["text"], pd.read_csv(raw / "surveys.csv")["comment"],
                           pd.read_csv(raw / "tickets.csv")["description"]]).dropna()
    return [s for t in texts for s in sentiment.split_sentences(t)]


def nltk_analyzer(lexicon: Path):
    """NLTK's VADER from the same lexicon, via a private nltk_data folder (NLTK only reads from such folders)."""
    import zipfile

    import nltk
    from nltk.sentiment.vader import SentimentIntensityAnalyzer as NLTKVader

    root = Path(tempfile.mkdtemp()) / "nltk_data"
    (root / "sentiment").mkdir(parents=True)
    with zipfile.ZipFile(root / "sentiment" / "vader_lexicon.zip", "w") as z:
        z.write(lexicon, "vader_lexicon/vader_lexicon.txt")
    nltk.data.path.insert(0, str(root))
    return NLTKVader()


def rate(fn, sentences: list[str]) -> float:
    start = time.perf_counter()
    for s in sentences:
        fn(s)
    return len(sentences) / (time.perf_counter() - start)


def main() -> int:
    import vaderSentiment
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sentences = sample_sentences() * 3
    print(f"{len(sentences):,} sentences ({len(set(sentences)):,} distinct)", flush=True)
    plain = SentimentIntensityAnalyzer()
    uncached = rate(plain.polarity_scores, sentences)
    cached = rate(sentiment.SentenceScorer().sentence, sentences)
    nltk_vader = nltk_analyzer(Path(vaderSentiment.__file__).with_name("vader_lexicon.txt"))
    nltk_rate = rate(nltk_vader.polarity_scores, sentences[: len(sentences) // 3])
    print(f"vaderSentiment, every sentence scored: {uncached:,.0f} sentences/s")
    print(f"workbench SentenceScorer (cached):     {cached:,.0f} sentences/s")
    print(f"NLTK SentimentIntensityAnalyzer:       {nltk_rate:,.0f} sentences/s")
    print(f"ratios: uncached vaderSentiment / NLTK = {uncached / nltk_rate:.1f}x; cached / NLTK = "
          f"{cached / nltk_rate:.0f}x")
    print(f"at least 20,000 sentences/s without the cache: {'yes' if uncached >= 20_000 else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
