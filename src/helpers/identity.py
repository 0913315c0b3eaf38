"""Identity resolution: normalise e-mails and phones, link records across channels, join links with union-find.

Deterministic rules only; every link has a stated reason:

* a CRM account and its (normalised) e-mail and phone;
* a web/app cookie and the CRM account it logged in as, or the e-mail it typed in;
* survey responses, tickets and e-mail sends through their e-mail or customer id.

Records that end up in one connected group get one unified ``customer_key`` (the
smallest CRM id in the group). Groups without any CRM account (anonymous
visitors) get no key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable

import pandas as pd

from helpers.parsing import EMAIL_RE

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


class UnionFind:
    """Disjoint sets over hashable items, with path compression and union by size."""

    def __init__(self) -> None:
        self.parent: dict = {}
        self.size: dict = {}

    def add(self, x) -> None:
        if x not in self.parent:
            self.parent[x] = x
            self.size[x] = 1

    def find(self, x):
        self.add(x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def groups(self) -> dict:
        """Map every item to its root."""
        return {x: self.find(x) for x in self.parent}


def build_links(customers: pd.DataFrame, web_events: pd.DataFrame, surveys: pd.DataFrame, tickets: pd.DataFrame,
                email_sends: pd.DataFrame) -> pd.DataFrame:
    """All deterministic links between records, as ``left, right, rule`` node pairs.

    Node names are typed: ``crm:C123``, ``cookie:a…``, ``email:x@y``, ``phone:+49…``.
    """
    links = []

    def add(left: pd.Series, right: pd.Series, rule: str) -> None:
        ok = left.notna() & right.notna()
        if ok.any():
            links.append(pd.DataFrame({"left": left[ok].to_numpy(), "right": right[ok].to_numpy(), "rule": rule}))

    crm = "crm:" + customers["customer_id"]
    add(crm, "email:" + customers["email"].map(normalise_email), "crm e-mail")
    phones = [normalise_phone(p, c) for p, c in zip(customers["phone"], customers["country"])]
    add(crm, "phone:" + pd.Series(phones, index=customers.index, dtype="object"), "crm phone")
    ev = web_events
    logins = ev[ev["event_type"].eq("login") & ev["customer_id"].notna()]
    add("cookie:" + logins["anonymous_id"], "crm:" + logins["customer_id"], "web login")
    caps = ev[ev["email"].notna()]
    add("cookie:" + caps["anonymous_id"], "email:" + caps["email"].map(normalise_email), "web e-mail capture")
    add("email:" + email_sends["email"].map(normalise_email), "crm:" + email_sends["customer_id"], "e-mail send")
    add("ticket:" + tickets["ticket_id"], "email:" + tickets["requester_email"].map(normalise_email), "ticket e-mail")
    add("ticket:" + tickets["ticket_id"], "crm:" + tickets["customer_ref"], "ticket customer ref")
    add("survey:" + surveys["response_id"], "email:" + surveys["email"].map(normalise_email), "survey e-mail")
    out = pd.concat(links, ignore_index=True).drop_duplicates(["left", "right"])
    return out.sort_values(["left", "right"], kind="stable").reset_index(drop=True)


def resolve(links: pd.DataFrame, nodes: Iterable[str] = ()) -> pd.DataFrame:
    """Join links with union-find; return ``node, customer_key`` for every node.

    The key of a group is its smallest CRM id (``C…``); groups without a CRM account get
    ``<NA>``. ``nodes`` adds records that have no link at all (they stay alone).
    """
    uf = UnionFind()
    for n in nodes:
        uf.add(n)
    for a, b in zip(links["left"].to_numpy(), links["right"].to_numpy()):
        uf.union(a, b)
    roots = pd.Series(uf.groups(), name="root")
    frame = roots.rename_axis("node").reset_index()
    is_crm = frame["node"].str.startswith("crm:")
    keys = frame[is_crm].assign(cid=frame.loc[is_crm, "node"].str[4:]).groupby("root")["cid"].min()
    frame["customer_key"] = frame["root"].map(keys).astype("string")
    return frame[["node", "customer_key"]].sort_values("node", kind="stable").reset_index(drop=True)


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
    for col in ["crm", "cookie", "email", "phone", "ticket", "survey"]:
        if col not in out:
            out[col] = 0
    return out[["crm", "cookie", "email", "phone", "ticket", "survey"]].astype(int)


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
        "ticket": "tickets", "survey": "survey responses"})


def node_keys(resolved: pd.DataFrame, prefix: str) -> pd.Series:
    """customer_key by record id for one node type (e.g. ``cookie``)."""
    r = resolved[resolved["node"].str.startswith(prefix + ":")]
    return pd.Series(r["customer_key"].to_numpy(), index=r["node"].str[len(prefix) + 1:].to_numpy())
