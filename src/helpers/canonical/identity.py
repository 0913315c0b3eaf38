"""Identity resolution: normalise e-mails and phones, link records across channels, join the links into people.

Deterministic rules only; every link has a stated reason, and only the channels the data has take part:

* an account and its person key (``person_id``, e.g. Olist's ``customer_unique_id``), e-mail and phone;
* an order and the account, person key or e-mail that placed it;
* a web/app cookie and the account it logged in as, or the e-mail it typed in;
* an e-mail send and its recipient; a review, survey answer or ticket and its e-mail, account, person or order.

Records that end up in one connected group are one customer, with one ``customer_key``: the group's smallest
person id when the data has person keys, else its smallest customer id. Groups with neither (anonymous
visitors, e-mails nobody ordered with) get no key. **Why the person key matters:** in marketplace exports the
``customer_id`` is often new for every order; without the person key every order looks like a new customer and
nobody ever buys twice.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from helpers.core.model import EMAIL_RE

# Providers that ignore "+tag" in the local part, and the ones that also ignore dots.
PLUS_PROVIDERS = {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "icloud.com", "me.com",
                  "protonmail.com", "proton.me", "fastmail.com"}
DOT_PROVIDERS = {"gmail.com", "googlemail.com"}
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
COUNTRY_CALLING_CODES = {"DE": "49", "AT": "43", "NL": "31", "FR": "33", "CH": "41", "BE": "32", "LU": "352",
                         "GB": "44", "IT": "39", "ES": "34", "DK": "45", "PL": "48"}


def normalise_email(email: str | None) -> str | None:
    """Canonical form of an e-mail address, or None when it is not one.

    Lower-cases and strips it; for providers that ignore them, drops a ``+tag`` and
    (Gmail) dots in the local part; maps googlemail.com to gmail.com.

    >>> normalise_email("  J.Doe+shop@GoogleMail.com ")
    'jdoe@gmail.com'
    >>> normalise_email("jane.doe+news@web.de")
    'jane.doe+news@web.de'
    >>> normalise_email("n/a") is None
    True
    """
    if email is None or (not isinstance(email, str)) or not email.strip():
        return None
    e = email.strip().lower()
    if not EMAIL_RE.match(e):
        return None
    local, domain = e.rsplit("@", 1)
    domain = domain.rstrip(".")
    if domain in PLUS_PROVIDERS:
        local = local.split("+", 1)[0]
    if domain in DOT_PROVIDERS:
        local = local.replace(".", "")
    domain = DOMAIN_ALIASES.get(domain, domain)
    if not local:
        return None
    return f"{local}@{domain}"


def normalise_phone(phone: str | None, country: str | None = None) -> str | None:
    """E.164 form of a phone number (``+4915112345678``), or None when it cannot be one.

    Accepts ``+49 151 …``, ``0049-151-…``, ``(0151) …`` and national numbers with a leading
    0 when the country is known.

    >>> normalise_phone("(0151) 1234 5678", "DE")
    '+4915112345678'
    >>> normalise_phone("0049-151-12345678")
    '+4915112345678'
    >>> normalise_phone("12") is None
    True
    """
    if phone is None or not isinstance(phone, str) or not phone.strip():
        return None
    p = phone.strip()
    plus = p.startswith("+")
    digits = re.sub(r"\D", "", p)
    if plus:
        e164 = digits
    elif digits.startswith("00"):
        e164 = digits[2:]
    elif digits.startswith("0") and country in COUNTRY_CALLING_CODES:
        e164 = COUNTRY_CALLING_CODES[country] + digits[1:]
    else:
        return None
    if not 8 <= len(e164) <= 15:
        return None
    return "+" + e164


def email_norm_table(engine) -> pd.DataFrame:
    """Every distinct e-mail in the clean tables with its normalised form (computed once per address)."""
    d = engine.dialect
    parts = []
    for table in ("clean__customers", "tx_orders", "clean__events", "clean__sends", "clean__feedback"):
        if engine.exists(table) and "email" in engine.columns(table):
            parts.append(f"SELECT DISTINCT {d.q('email')} AS raw FROM {d.q(table)} WHERE {d.q('email')} IS NOT NULL")
    if not parts:
        return pd.DataFrame({"raw": pd.Series(dtype="string"), "norm": pd.Series(dtype="string")})
    raw = engine.frame(" UNION ".join(parts))["raw"]
    return pd.DataFrame({"raw": raw.astype("string"), "norm": raw.map(normalise_email).astype("string")})


def build_links(engine) -> pd.DataFrame:
    """All deterministic links between records of the clean tables, as ``left, right, rule`` node pairs.

    Node names are typed: ``crm:<customer id>``, ``person:<person id>``, ``email:<normalised>``,
    ``phone:<E.164>``, ``cookie:<anonymous id>``, ``feedback:<id>``. Only the tables and columns the data has
    contribute; a data set without e-mails simply has no e-mail links.
    """
    d = engine.dialect
    engine.register_frame("email_norm", email_norm_table(engine))
    links: list[pd.DataFrame] = []

    def add(sql: str, rule: str) -> None:
        df = engine.frame(sql)
        if len(df):
            df.columns = ["left", "right"]
            df = df.dropna()
            links.append(df.assign(rule=rule))

    def cols(table: str) -> set[str]:
        return set(engine.columns(table)) if engine.exists(table) else set()

    def email_join(alias: str) -> str:
        return f"JOIN email_norm e ON e.raw = {alias}.{d.q('email')}"

    node = lambda prefix, expr: d.cat(d.lit(prefix + ":"), expr)  # noqa: E731
    c = cols("clean__customers")
    if c:
        if "person_id" in c:
            add(f"SELECT DISTINCT {node('crm', 'customer_id')}, {node('person', 'person_id')} FROM clean__customers "
                f"WHERE customer_id IS NOT NULL AND person_id IS NOT NULL", "crm person key")
        if "email" in c:
            add(f"SELECT DISTINCT {node('crm', 'c.customer_id')}, {node('email', 'e.norm')} FROM clean__customers c "
                f"{email_join('c')} WHERE e.norm IS NOT NULL", "crm e-mail")
        if "phone" in c:
            country = "country" if "country" in c else "NULL"
            phones = engine.frame(f"SELECT DISTINCT customer_id, phone, {country} AS country FROM clean__customers "
                                  "WHERE phone IS NOT NULL")
            if len(phones):
                norm = [normalise_phone(p, k) for p, k in zip(phones["phone"], phones["country"])]
                # kept for probabilistic matching, which compares the same normalised phones
                engine.register_frame("crm_phone_norm", pd.DataFrame({
                    "customer_id": phones["customer_id"].astype(str), "raw": phones["phone"].astype(str),
                    "norm": pd.Series(norm, dtype="object")}))
                df = pd.DataFrame({"left": "crm:" + phones["customer_id"].astype(str),
                                   "right": pd.Series(norm, dtype="object").map(lambda v: f"phone:{v}" if v else None)})
                links.append(df.dropna().assign(rule="crm phone"))
    o = cols("tx_orders")
    if o:
        add(f"SELECT DISTINCT {node('crm', 'customer_id')}, {node('person', 'person_id')} FROM tx_orders "
            "WHERE customer_id IS NOT NULL AND person_id IS NOT NULL", "order person key")
        add(f"SELECT DISTINCT {node('crm', 'o.customer_id')}, {node('email', 'e.norm')} FROM tx_orders o "
            f"{email_join('o')} WHERE o.customer_id IS NOT NULL AND e.norm IS NOT NULL", "order e-mail")
    ev = cols("clean__events")
    if {"anonymous_id", "customer_id"} <= ev:
        add(f"SELECT DISTINCT {node('cookie', 'anonymous_id')}, {node('crm', 'customer_id')} FROM clean__events "
            "WHERE anonymous_id IS NOT NULL AND customer_id IS NOT NULL", "web login")
    if {"anonymous_id", "email"} <= ev:
        add(f"SELECT DISTINCT {node('cookie', 'v.anonymous_id')}, {node('email', 'e.norm')} FROM clean__events v "
            f"{email_join('v')} WHERE v.anonymous_id IS NOT NULL AND e.norm IS NOT NULL", "web e-mail capture")
    s = cols("clean__sends")
    if {"email", "customer_id"} <= s:
        add(f"SELECT DISTINCT {node('email', 'e.norm')}, {node('crm', 's.customer_id')} FROM clean__sends s "
            f"{email_join('s')} WHERE s.customer_id IS NOT NULL AND e.norm IS NOT NULL", "e-mail send")
    f = cols("clean__feedback")
    if f:
        if "email" in f:
            add(f"SELECT DISTINCT {node('feedback', 'f.feedback_id')}, {node('email', 'e.norm')} FROM "
                f"clean__feedback f {email_join('f')} WHERE e.norm IS NOT NULL", "feedback e-mail")
        if "customer_id" in f:
            add(f"SELECT DISTINCT {node('feedback', 'feedback_id')}, {node('crm', 'customer_id')} FROM clean__feedback "
                "WHERE customer_id IS NOT NULL", "feedback customer id")
        if "person_id" in f:
            add(f"SELECT DISTINCT {node('feedback', 'feedback_id')}, {node('person', 'person_id')} FROM "
                "clean__feedback WHERE person_id IS NOT NULL", "feedback person key")
        if "order_id" in f and o:
            add(f"SELECT DISTINCT {node('feedback', 'f.feedback_id')}, COALESCE({node('person', 'o.person_id')}, "
                f"{node('crm', 'o.customer_id')}) FROM clean__feedback f JOIN tx_orders o ON o.order_id = f.order_id "
                "WHERE o.customer_id IS NOT NULL OR o.person_id IS NOT NULL", "feedback order")
    if not links:
        return pd.DataFrame({"left": pd.Series(dtype="string"), "right": pd.Series(dtype="string"),
                             "rule": pd.Series(dtype="string")})
    out = pd.concat(links, ignore_index=True).drop_duplicates(["left", "right"])
    return out.sort_values(["left", "right"], kind="stable").reset_index(drop=True)


def record_nodes(engine) -> list[str]:
    """Every customer record that must get a key even without links: accounts, people and ordering customers."""
    d = engine.dialect
    parts = []
    if engine.exists("clean__customers"):
        parts.append(f"SELECT DISTINCT {d.cat(d.lit('crm:'), 'customer_id')} AS n FROM clean__customers "
                     "WHERE customer_id IS NOT NULL")
        if "person_id" in engine.columns("clean__customers"):
            parts.append(f"SELECT DISTINCT {d.cat(d.lit('person:'), 'person_id')} FROM clean__customers "
                         "WHERE person_id IS NOT NULL")
    for table in ("tx_orders", "tx_refunds"):  # a customer whose only transactions are credit notes is one too
        if engine.exists(table):
            parts.append(f"SELECT DISTINCT {d.cat(d.lit('crm:'), 'customer_id')} FROM {table} "
                         "WHERE customer_id IS NOT NULL")
            parts.append(f"SELECT DISTINCT {d.cat(d.lit('person:'), 'person_id')} FROM {table} "
                         "WHERE person_id IS NOT NULL")
    if engine.exists("clean__events") and "anonymous_id" in engine.columns("clean__events"):
        parts.append(f"SELECT DISTINCT {d.cat(d.lit('cookie:'), 'anonymous_id')} FROM clean__events "
                     "WHERE anonymous_id IS NOT NULL")
    if not parts:
        return []
    return engine.frame(" UNION ".join(parts)).iloc[:, 0].dropna().tolist()


def resolve(links: pd.DataFrame, nodes: Iterable[str] = ()) -> pd.DataFrame:
    """Join links into connected groups; return ``node, customer_key`` for every node.

    The key of a group is its smallest person id (``person:…``) when the data has person keys, else its
    smallest customer id (``crm:…``). Groups with neither (anonymous visitors, unknown e-mails) get ``<NA>``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    import pyarrow as pa
    import pyarrow.compute as pc

    # Node ids are numbered by Arrow's dictionary encoding of nodes, left and right ends together: no Python string
    # per id (a million customers bring some 7 M nodes and 20 M link ends, gigabytes as Python objects).
    def text(values) -> pa.Array:
        return pa.array(pd.Series(values, dtype="string"), type=pa.large_string(), from_pandas=True)

    node_list = text(list(nodes))
    ends = pa.chunked_array([node_list, text(links["left"]), text(links["right"])], type=pa.large_string())
    encoded = pc.dictionary_encode(ends).combine_chunks()
    all_nodes, codes = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)
    n = len(all_nodes)
    if n == 0:
        return pd.DataFrame({"node": pd.Series(dtype="string"), "customer_key": pd.Series(dtype="string")})
    a = codes[len(node_list): len(node_list) + len(links)]
    b = codes[len(node_list) + len(links):]
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    frame = pd.DataFrame({"node": pd.Series(pd.arrays.ArrowStringArray(all_nodes.cast(pa.large_string()))
                                            ).astype(str), "group": labels})
    parts = frame["node"].str.partition(":")
    kind, ident = parts[0].to_numpy(), parts[2]

    def smallest(mask: np.ndarray) -> pd.Series:
        # sort and keep the first per group: a groupby-min on Arrow strings falls back to a Python loop per group
        sub = pd.DataFrame({"group": labels[mask], "i": ident[mask].to_numpy()})
        sub = sub.sort_values(["group", "i"], kind="stable").drop_duplicates("group")
        return pd.Series(sub["i"].to_numpy(), index=sub["group"].to_numpy())

    groups = range(labels.max() + 1)
    key = smallest(kind == "person").reindex(groups).fillna(smallest(kind == "crm").reindex(groups))
    frame["customer_key"] = frame["group"].map(key).astype("string")
    return frame[["node", "customer_key"]].sort_values("node", kind="stable").reset_index(drop=True)


def attach_keys(engine, resolved: pd.DataFrame) -> None:
    """Give every clean table a ``customer_key`` column (``<NA>`` for guests and anonymous records).

    Creates ``keyed__<table>`` for each of customers, orders, refunds, lines, events, sends, feedback and
    assignments that exist.
    """
    d = engine.dialect
    engine.register_frame("identity_map", resolved)

    def key_of(prefix: str, expr: str, alias: str) -> tuple[str, str]:
        return (f"LEFT JOIN identity_map {alias} ON {alias}.node = {d.cat(d.lit(prefix + ':'), expr)}",
                f"{alias}.customer_key")

    plans = {
        "clean__customers": [("crm", "t.customer_id"), ("person", "t.person_id")],
        "tx_orders": [("person", "t.person_id"), ("crm", "t.customer_id"), ("email", "en.norm")],
        "tx_refunds": [("person", "t.person_id"), ("crm", "t.customer_id"), ("email", "en.norm")],
        "tx_lines": [("person", "t.person_id"), ("crm", "t.customer_id"), ("email", "en.norm")],
        "clean__events": [("cookie", "t.anonymous_id"), ("crm", "t.customer_id")],
        "clean__sends": [("crm", "t.customer_id"), ("email", "en.norm")],
        "clean__feedback": [("feedback", "t.feedback_id")],
        "clean__assignments": [("crm", "t.customer_id")],
    }
    for table, plan in plans.items():
        if not engine.exists(table):
            continue
        cols = set(engine.columns(table))
        joins, keys = [], []
        if "email" in cols:
            joins.append("LEFT JOIN email_norm en ON en.raw = t.email")
        for i, (prefix, expr) in enumerate(plan):
            col = expr.split(".", 1)[1]
            if col == "norm" and "email" not in cols or col != "norm" and col not in cols:
                continue
            j, k = key_of(prefix, expr, f"k{i}")
            joins.append(j)
            keys.append(k)
        key = f"COALESCE({', '.join(keys)})" if keys else d.null_of("id")
        # The order of the original rows is kept, so keyed tables stay deterministic.
        keyed = {"tx_orders": "keyed__orders", "tx_refunds": "keyed__refunds", "tx_lines": "keyed__lines"}.get(
            table, "keyed__" + table.split("__")[-1])
        engine.create(keyed, f"SELECT t.*, {key} AS customer_key FROM {d.q(table)} t "
                                                         f"{' '.join(joins)}")


def pairwise_scores(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision and recall of a clustering against the true clusters (same index).

    A pair of records counts as a true positive when both clusterings put them together.

    >>> pairwise_scores(pd.Series([1, 1, 2, 3]), pd.Series(["a", "a", "a", "b"]))["precision"]
    1.0
    """
    df = pd.DataFrame({"p": predicted.to_numpy(), "t": truth.to_numpy()})

    def pairs(counts: pd.Series) -> float:
        c = counts.to_numpy(dtype=float)
        return float((c * (c - 1) / 2).sum())

    tp = pairs(df.groupby(["p", "t"]).size())
    pred = pairs(df.groupby("p").size())
    true = pairs(df.groupby("t").size())
    return {"precision": tp / pred if pred else 1.0, "recall": tp / true if true else 1.0,
            "true_pairs": true, "predicted_pairs": pred}


DEFAULT_PSEUDONYM_KEY = "ciw-sample-key-change-me"


def pseudonymise(ids: pd.Series, key: str | None = None, prefix: str = "cust_") -> pd.Series:
    """Keyed hash (HMAC-SHA256) of ids: stable across reports, not reversible without the key.

    The key comes from ``CIW_PSEUDONYM_KEY``; the built-in default is only for the sample data.

    >>> pseudonymise(pd.Series(["C100001"]), key="k").iloc[0]
    'cust_5e39529e9164'
    """
    k = (key or os.environ.get("CIW_PSEUDONYM_KEY") or DEFAULT_PSEUDONYM_KEY).encode()
    out = [None if pd.isna(v) else prefix + hmac.new(k, str(v).encode(), hashlib.sha256).hexdigest()[:12]
           for v in ids]
    return pd.Series(out, index=ids.index, dtype="string")


def cluster_sizes(resolved: pd.DataFrame) -> pd.DataFrame:
    """Per customer key: how many CRM accounts, cookies, e-mails and phones were joined."""
    r = resolved.dropna(subset=["customer_key"]).copy()
    r["kind"] = r["node"].str.split(":", n=1).str[0]
    out = r.pivot_table(index="customer_key", columns="kind", values="node", aggfunc="count", fill_value=0)
    for col in ["crm", "person", "cookie", "email", "phone", "feedback"]:
        if col not in out:
            out[col] = 0
    return out[["crm", "person", "cookie", "email", "phone", "feedback"]].astype(int)


def merged_examples(sizes: pd.DataFrame, n: int = 5, seed: int = 0) -> pd.DataFrame:
    """A few customers whose records came from more than one CRM account, pseudonymised."""
    multi = sizes[sizes["crm"] > 1]
    if multi.empty:
        return multi.reset_index()
    pick = multi.sample(n=min(n, len(multi)), random_state=seed).sort_index()
    out = pick.reset_index()
    out.insert(0, "customer", pseudonymise(out["customer_key"]))
    return out.drop(columns="customer_key").rename(columns={
        "crm": "CRM accounts", "cookie": "web/app cookies", "email": "e-mail addresses", "phone": "phone numbers",
        "person": "person keys", "feedback": "reviews, surveys and tickets"})


def node_keys(resolved: pd.DataFrame, prefix: str) -> pd.Series:
    """customer_key by record id for one node type (e.g. ``cookie``)."""
    r = resolved[resolved["node"].str.startswith(prefix + ":")]
    return pd.Series(r["customer_key"].to_numpy(), index=r["node"].str[len(prefix) + 1:].to_numpy())
