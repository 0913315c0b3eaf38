"""Readers for the human-rated corpora in ``tests/data`` (used by the tests and by ``benchmarks/``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd

ICWSM = Path(__file__).resolve().parent / "data" / "vader_icwsm2014"


def icwsm(name: str) -> pd.DataFrame:
    """One ground-truth file of Hutto & Gilbert (2014): ``id``, ``rating`` (−4…+4), ``text``."""
    rows = []
    with gzip.open(ICWSM / f"{name}_GroundTruth.txt.gz", "rt", encoding="latin-1") as f:
        for line in f:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) >= 3:
                rows.append((parts[0], float(parts[1]), "\t".join(parts[2:])))
    return pd.DataFrame(rows, columns=["id", "rating", "text"])


def amazon_reviews(min_sentences: int = 1) -> pd.DataFrame:
    """Whole Amazon reviews: their sentences joined in order, rated by the mean of the sentences' ratings."""
    s = icwsm("amazonReviewSnippets")
    parts = s["id"].str.split("_", expand=True).astype(int)
    s = s.assign(review=parts[0], sentence=parts[1]).sort_values(["review", "sentence"])
    out = s.groupby("review").agg(rating=("rating", "mean"), text=("text", " ".join), sentences=("text", "size"))
    return out[out["sentences"] >= min_sentences].reset_index()
