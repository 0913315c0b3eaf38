"""Probabilistic identity matching of customer accounts with Splink (Fellegi–Sunter), beside the exact rules.

The exact rules of :mod:`helpers.canonical.identity` join accounts that share a normalised e-mail, phone or person
key. They miss the person who signed up twice with a new e-mail and no phone, or whose name was typed differently.
This module scores pairs of CRM accounts on every identifying column the data has (first, last or full name,
postcode, address, city, date of birth, e-mail, phone) and links the pairs whose match probability reaches a stated
threshold (``match_threshold``, 0.99 by default). The links join the exact ones before the connected groups are
formed, so a customer key is the same connected-components clustering at that threshold.

How the model is trained, in order:

1. **u probabilities** (how often two *different* people agree on a column by chance) from random pairs of
   accounts (Splink's ``estimate_u_using_random_sampling``, seeded);
2. **m probabilities** (how often the *same* person's accounts agree) from the pairs the exact rules already joined
   (``estimate_m_from_label_column`` on the exact-rule cluster). These pairs are the data's own labels; EM is the
   fallback when the exact rules join no accounts at all. EM alone degenerates on data where the exact rules catch
   most duplicates: it has almost no disagreeing matches to learn from;
3. **the prior** (the chance that two random accounts are one person) from the exact rules, assuming they find
   80% of the true pairs (``estimate_probability_two_random_records_match``).

Names and postcodes get term-frequency adjustments: agreeing on "Müller" says less than agreeing on "Oyelaran".
Names are compared with Jaro–Winkler after case and accent folding, so "Jürgen Müller" and "jurgen muller" agree.
Splink runs on DuckDB by default and on the workbench's Spark session with ``engine: spark``.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from helpers.canonical.identity import normalise_email, normalise_phone

MATCH_THRESHOLD = 0.99
ASSUMED_RECALL_OF_EXACT_RULES = 0.8
U_SAMPLE_PAIRS = 1_000_000
RULE = "probabilistic match (Splink)"
EXAMPLES = 3
# columns that describe the person rather than a contact channel: at least two are needed for a useful model
DESCRIPTIVE = ("first_name", "last_name", "full_name", "postcode", "address", "city", "birth_date")


@dataclass
class Matching:
    """What probabilistic matching did, for the report and the tests."""

    ran: bool
    note: str
    accounts: int = 0
    comparisons: list[str] = field(default_factory=list)
    threshold: float = MATCH_THRESHOLD
    prior: float | None = None
    trained_m_from: str = ""
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)  # pairs at or above the threshold, exact rules apart
    examples: pd.DataFrame = field(default_factory=pd.DataFrame)  # a few scored pairs with each column's weight
    scored_pairs: int = 0  # candidate pairs at or above the threshold, whether or not the exact rules joined them
    links: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["left", "right", "rule"]))

    @property
    def new_merges(self) -> int:
        """Pairs linked here whose accounts the exact rules had left apart."""
        return len(self.links)


def fold(text: object) -> str | None:
    """Lower-case, accents removed, ß as ss, inner whitespace collapsed; None for blanks.

    >>> fold("  Jürgen   MÜLLER "), fold("Straße"), fold("  ")
    ('jurgen muller', 'strasse', None)
    """
    if text is None or (isinstance(text, float) and np.isnan(text)) or text is pd.NA:
        return None
    s = unicodedata.normalize("NFKD", str(text).replace("ß", "ss").replace("ẞ", "ss"))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).lower()
    s = " ".join(s.split())
    return s or None


def account_records(engine, exact_keys: pd.Series) -> pd.DataFrame:
    """One row per CRM account with its normalised identifying columns and ``exact_cluster`` (the customer key the
    exact rules gave it). Only columns the data has, with at least one value, are kept."""
    from helpers.canonical.cleaning import ROW

    if not engine.exists("clean__customers"):
        return pd.DataFrame()
    cols = set(engine.columns("clean__customers"))
    wanted = [c for c in ("first_name", "last_name", "full_name", "email", "phone", "postcode", "address", "city",
                          "birth_date", "country") if c in cols]
    d = engine.dialect
    # the latest row of each account (by source line), as the 360° table does
    latest = d.arg_max
    sel = ", ".join(f"{latest(d.q(c), d.q(ROW))} AS {d.q(c)}" for c in wanted)
    latest_rows = (f"SELECT customer_id{', ' + sel if sel else ''} FROM clean__customers "
                   "WHERE customer_id IS NOT NULL GROUP BY customer_id")
    # e-mails and phones as the exact rules normalised them (identity.build_links keeps both tables)
    known_email = "email" in cols and engine.exists("email_norm")
    known_phone = "phone" in cols and engine.exists("crm_phone_norm")
    joins, extra = [], []
    if known_email:
        joins.append("LEFT JOIN email_norm e ON e.raw = l.email")
        extra.append("e.norm AS email_norm")
    if known_phone:
        joins.append("LEFT JOIN (SELECT customer_id, raw, min(norm) AS norm FROM crm_phone_norm GROUP BY 1, 2) p "
                     "ON p.customer_id = l.customer_id AND p.raw = l.phone")
        extra.append("p.norm AS phone_norm")
    raw = engine.frame(f"SELECT l.*{''.join(', ' + x for x in extra)} FROM ({latest_rows}) l {' '.join(joins)} "
                       "ORDER BY l.customer_id")
    out = pd.DataFrame({"unique_id": raw["customer_id"].astype(str)})
    for c in ("first_name", "last_name", "full_name", "address", "city"):
        if c in raw:
            out[c] = _map_distinct(raw[c], fold)
    if "postcode" in raw:
        out["postcode"] = _map_distinct(raw["postcode"], lambda v: None if fold(v) is None else
                                        fold(v).replace(" ", "").upper())
    if "email" in raw:
        out["email"] = raw["email_norm"] if known_email else _map_distinct(raw["email"], normalise_email)
    if "phone" in raw:
        country = raw["country"] if "country" in raw else pd.Series([None] * len(raw))
        out["phone"] = raw["phone_norm"] if known_phone else \
            [normalise_phone(p, k) if isinstance(p, str) else None for p, k in zip(raw["phone"], country)]
    if "birth_date" in raw:
        out["birth_date"] = pd.to_datetime(raw["birth_date"], errors="coerce").dt.strftime("%Y-%m-%d")
    for c in list(out.columns[1:]):
        out[c] = out[c].astype("object").where(out[c].notna(), None)
        if out[c].isna().all():
            out = out.drop(columns=c)
    out["exact_cluster"] = exact_keys.reindex(out["unique_id"]).to_numpy()
    out["exact_cluster"] = out["exact_cluster"].astype("object").where(out["exact_cluster"].notna(),
                                                                        "alone:" + out["unique_id"])
    return out


def _map_distinct(values: pd.Series, fn) -> pd.Series:
    uniq = pd.unique(values.dropna())
    lookup = {v: fn(v) for v in uniq}
    return values.map(lookup)


def _comparisons(columns: list[str]):
    import splink.comparison_library as cl

    comps = []
    for c in ("first_name", "last_name", "full_name"):
        if c in columns:
            comps.append(cl.NameComparison(c).configure(term_frequency_adjustments=True))
    if "email" in columns:
        comps.append(cl.EmailComparison("email"))
    if "phone" in columns:
        comps.append(cl.ExactMatch("phone"))
    if "postcode" in columns:
        comps.append(cl.ExactMatch("postcode").configure(term_frequency_adjustments=True))
    if "address" in columns:
        comps.append(cl.JaroWinklerAtThresholds("address", [0.95, 0.88]))
    if "city" in columns:
        comps.append(cl.ExactMatch("city").configure(term_frequency_adjustments=True))
    if "birth_date" in columns:
        comps.append(cl.DateOfBirthComparison("birth_date", input_is_string=True))
    return comps


def _blocking_rules(columns: list[str]):
    """Pairs worth scoring: accounts that share a strong combination of descriptive columns."""
    from splink import block_on

    have = set(columns)
    combos = [("last_name", "postcode"), ("first_name", "last_name"), ("last_name", "birth_date"),
              ("first_name", "birth_date"), ("postcode", "birth_date"), ("full_name",), ("address", "postcode"),
              ("last_name", "city")]
    return [block_on(*c) for c in combos if set(c) <= have]


def _exact_rules(columns: list[str]):
    from splink import block_on

    return [block_on(c) for c in ("email", "phone") if c in columns]


def match_accounts(records: pd.DataFrame, threshold: float = MATCH_THRESHOLD, spark=None,
                   seed: int = 42, duckdb_connection=None) -> Matching:
    """Train a Splink model on ``records`` (see :func:`account_records`), score candidate pairs and return the pairs
    at or above ``threshold`` that join accounts the exact rules left apart.

    ``spark``: a SparkSession to run Splink on (the workbench's, with ``engine: spark``); DuckDB otherwise, on
    ``duckdb_connection`` when given (the workbench engine's, so Splink keeps to its memory limit and spill
    folder instead of taking up to 80% of the machine; its tables are dropped afterwards), else a fresh one.
    """
    if records.empty or len(records) < 2:
        return Matching(False, "This data has no customer profiles (names, postcodes, birth dates) to compare, so "
                               "only the exact rules link records.")
    columns = [c for c in records.columns if c not in ("unique_id", "exact_cluster")]
    descriptive = [c for c in columns if c in DESCRIPTIVE]
    if len(descriptive) < 2:
        return Matching(False, "Probabilistic matching needs at least two of name, postcode, address, city and date "
                               f"of birth; the customer data has {', '.join(descriptive) or 'none of them'}, so only "
                               "the exact rules link accounts.", accounts=len(records))
    rules = _blocking_rules(columns)
    if not rules:
        return Matching(False, "No pair of identifying columns is strong enough to find candidate pairs "
                               f"({', '.join(descriptive)}); only the exact rules link accounts.",
                        accounts=len(records))
    from splink import SettingsCreator

    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)  # training chatter would land in the report
    settings = SettingsCreator(link_type="dedupe_only", unique_id_column_name="unique_id",
                               comparisons=_comparisons(columns), blocking_rules_to_generate_predictions=rules,
                               retain_intermediate_calculation_columns=True, retain_matching_columns=False)
    if spark is not None:
        from splink import SparkAPI

        api = SparkAPI(spark_session=spark)
        import pyarrow as pa

        table = spark.createDataFrame(pa.Table.from_pandas(records, preserve_index=False))  # through Arrow
    else:
        from splink import DuckDBAPI

        api, table = DuckDBAPI(duckdb_connection) if duckdb_connection is not None else DuckDBAPI(), records
    before = _relations(duckdb_connection) if duckdb_connection is not None else set()
    try:
        return _train_and_predict(api, table, records, settings, columns, rules, threshold, seed)
    finally:
        if duckdb_connection is not None:
            _drop_new_relations(duckdb_connection, before)


def _relations(con) -> set[tuple[str, str]]:
    return set(con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())


def _drop_new_relations(con, before: set[tuple[str, str]]) -> None:
    """Drop the tables and views Splink left in a shared DuckDB connection (those that were not there before)."""
    for name, kind in _relations(con) - before:
        try:
            con.unregister(name)  # a frame Splink registered
        except Exception:  # noqa: BLE001 - not a registered frame: a table or view of its own
            pass
        con.execute(f'DROP {"VIEW" if kind == "VIEW" else "TABLE"} IF EXISTS "{name}"')


def _train_and_predict(api, table, records: pd.DataFrame, settings, columns: list[str], rules: list,
                       threshold: float, seed: int) -> Matching:
    """Train (u by random sampling, m from the exact rules' clusters or by EM), predict and keep the new links."""
    from splink import Linker

    linker = Linker(api.register(table), settings)
    exact = _exact_rules(columns)
    n_pairs = len(records) * (len(records) - 1) / 2
    linker.training.estimate_u_using_random_sampling(max_pairs=min(U_SAMPLE_PAIRS, n_pairs), seed=seed)
    labelled = records["exact_cluster"].duplicated(keep=False).any()
    if labelled:
        linker.training.estimate_m_from_label_column("exact_cluster")
        trained = "the pairs the exact rules joined"
    else:
        for rule in rules[:2]:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        trained = "expectation maximisation (the exact rules joined no accounts)"
    if exact:
        linker.training.estimate_probability_two_random_records_match(exact, recall=ASSUMED_RECALL_OF_EXACT_RULES)
    prior = float(linker._settings_obj._probability_two_random_records_match)
    everything = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()
    everything = everything.sort_values(["unique_id_l", "unique_id_r"], kind="stable").reset_index(drop=True)
    cluster = records.set_index("unique_id")["exact_cluster"]
    scored = everything
    if len(everything):
        apart = (cluster.reindex(everything["unique_id_l"]).to_numpy()
                 != cluster.reindex(everything["unique_id_r"]).to_numpy())
        scored = everything.loc[apart].reset_index(drop=True)
        # examples for the report: the merges only this model made first, then pairs the exact rules agree with
        new_merges = scored.head(EXAMPLES).assign(exact_rules_joined=False)
        agreed = everything.loc[~apart].head(EXAMPLES - len(new_merges)).assign(exact_rules_joined=True)
        examples = pd.concat([new_merges, agreed], ignore_index=True)
    else:
        examples = everything.assign(exact_rules_joined=pd.Series(dtype=bool))
    links = pd.DataFrame({"left": "crm:" + scored["unique_id_l"].astype(str),
                          "right": "crm:" + scored["unique_id_r"].astype(str), "rule": RULE}) if len(scored) else \
        pd.DataFrame(columns=["left", "right", "rule"])
    keep = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"] + \
        [c for c in scored.columns if c.startswith("mw_")]
    ex_keep = keep + ["exact_rules_joined"]
    return Matching(True, "", accounts=len(records), comparisons=columns, threshold=threshold,
                    prior=prior, trained_m_from=trained, pairs=scored[keep] if len(scored) else scored,
                    examples=examples[ex_keep].reset_index(drop=True) if len(examples) else examples,
                    scored_pairs=len(everything), links=links)
