"""Access to the generator's truth (``data/truth/``), for tests and clearly labelled "truth check" cells.

Real data has no truth folder; every function here returns ``None`` or raises ``FileNotFoundError`` then, and
notebooks skip their truth checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def available(truth_dir: str | Path) -> bool:
    """Whether ``truth_dir`` holds the generator's truth files (only for the synthetic sample)."""
    return (Path(truth_dir) / "truth.json").exists() and (Path(truth_dir) / "persons.parquet").exists()


def read_truth(truth_dir: str | Path) -> dict:
    """The generator's ``truth.json`` (segment parameters, planted experiments)."""
    return json.loads((Path(truth_dir) / "truth.json").read_text(encoding="utf-8"))


def person_of_customer(identity_map: pd.DataFrame, truth_identity: pd.DataFrame) -> pd.Series:
    """The true person behind each resolved ``customer_key`` (the majority person of its CRM accounts)."""
    t = truth_identity.assign(node=truth_identity["record_type"] + ":" + truth_identity["record_key"])
    m = t[t["record_type"] == "crm"].merge(identity_map, on="node").dropna(subset=["customer_key"])
    counts = m.groupby(["customer_key", "person_id"]).size().rename("n").reset_index()
    best = counts.sort_values(["customer_key", "n", "person_id"], ascending=[True, False, True], kind="stable")
    return best.drop_duplicates("customer_key").set_index("customer_key")["person_id"]


def planted_segments(truth_dir: str | Path, identity_map: pd.DataFrame) -> pd.Series:
    """The generator's latent segment of each resolved ``customer_key``."""
    truth_dir = Path(truth_dir)
    persons = pd.read_parquet(truth_dir / "persons.parquet", columns=["person_id", "segment"])
    people = person_of_customer(identity_map, pd.read_parquet(truth_dir / "identity.parquet"))
    return people.map(persons.set_index("person_id")["segment"]).rename("planted_segment")


def cluster_recovery(truth_dir: str | Path, identity_map: pd.DataFrame, labels: pd.Series) -> dict | None:
    """Adjusted Rand index of cluster ``labels`` (indexed by ``customer_key``) against the planted segments.

    Returns ``None`` when there is no truth (real data). Otherwise ``{"ari", "n", "crosstab"}``.
    """
    from sklearn.metrics import adjusted_rand_score

    if not available(truth_dir):
        return None
    planted = planted_segments(truth_dir, identity_map).reindex(labels.index)
    ok = planted.notna()
    return {"ari": float(adjusted_rand_score(planted[ok], labels[ok])), "n": int(ok.sum()),
            "crosstab": pd.crosstab(planted[ok].rename("planted segment"), labels[ok].rename("found"))}


def identity_scores(truth_dir: str | Path, identity_map: pd.DataFrame, links: pd.DataFrame | None = None) -> dict | None:
    """Pairwise precision and recall of the resolved customer keys against the generator's identity truth, for the
    final resolution and, when ``links`` is given, for the exact rules alone (its links without the probabilistic
    ones). ``None`` without truth."""
    from helpers.canonical.identity import pairwise_scores, resolve
    from helpers.canonical.matching import RULE

    path = Path(truth_dir) / "identity.parquet"
    if not path.exists():
        return None
    truth = pd.read_parquet(path)
    truth = truth.assign(node=truth["record_type"] + ":" + truth["record_key"])

    def score(resolved: pd.DataFrame) -> dict:
        m = truth.merge(resolved, on="node", how="left")
        return pairwise_scores(m["customer_key"].fillna("alone:" + m["node"]), m["person_id"])

    out = {"final": score(identity_map)}
    if links is not None and (links["rule"] == RULE).any():
        out["exact_only"] = score(resolve(links[links["rule"] != RULE], identity_map["node"]))
    return out
