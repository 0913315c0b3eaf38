"""Personal data in reports: masking free text, the analyst-only ``pii: allow`` mode, and the scanner that proves
stakeholder reports and executed notebooks carry no names, e-mails, phone numbers or IP addresses.

Stakeholder reports identify customers only by ``customer_pseudo_id``, a keyed hash (see
:func:`helpers.identity.pseudonymise`) that stays the same across reports, so tables can still be joined.
With ``pii = "allow"`` notebooks 04 and 05 add names and e-mails to their customer lists; the runner then marks
every page of that run as internal.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from helpers.core.safety import _BASE64_RUN, EMAIL, IPV4, PHONE, mask_pii  # noqa: F401  (mask_pii re-exported)

PII_MODES = ("mask", "allow")


@lru_cache(maxsize=1)
def _generator_names() -> re.Pattern:
    from helpers.sample.synthetic import FIRST_NAMES, LAST_NAMES

    first = "|".join(map(re.escape, FIRST_NAMES))
    last = "|".join(map(re.escape, sorted(LAST_NAMES, key=len, reverse=True)))
    return re.compile(rf"\b(?:(?:{first})\s+(?:{last})|(?:{last}),\s*(?:{first}))\b")


def find_pii(text: str) -> list[tuple[str, str]]:
    """``(kind, match)`` for every e-mail, phone number, IPv4 address and sample-data full name in ``text``.

    >>> find_pii("Order 2026-09-30 for EUR 1,234.50 by cust_97edf7e2807b, version 3.11.7")
    []
    >>> find_pii("Anna Gruber <anna.gruber@t-online.de>, 0173 0000000, (0151) 2345 678, from 192.168.10.7")
    [('e-mail', 'anna.gruber@t-online.de'), ('phone', '0173 0000000'), ('phone', '(0151) 2345 678'), \
('ip', '192.168.10.7'), ('name', 'Anna Gruber')]
    """
    text = _BASE64_RUN.sub(" ", text)
    found = []
    for kind, pattern in [("e-mail", EMAIL), ("phone", PHONE), ("ip", IPV4), ("name", _generator_names())]:
        found += [(kind, m.group(0)) for m in pattern.finditer(text)]
    return found


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        # notebook sources and streams are lists of lines: scan them joined, as the reader sees them
        if obj and all(isinstance(x, str) for x in obj):
            return ["".join(obj)]
        return [s for v in obj for s in _strings(v)]
    return []


def scan_file(path: str | Path) -> list[tuple[str, str]]:
    """PII findings in an HTML page, a notebook (every string in it: sources, outputs, widget state) or text."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        return [f for s in _strings(json.loads(text)) for f in find_pii(s)]
    return find_pii(text)


def scan_reports(reports_dir: str | Path) -> dict[str, list[tuple[str, str]]]:
    """Findings per file for every HTML page and executed notebook under ``reports_dir`` (only files with any)."""
    reports_dir = Path(reports_dir)
    files = sorted(reports_dir.rglob("*.html")) + sorted(reports_dir.rglob("*.ipynb"))
    out = {}
    for f in files:
        found = scan_file(f)
        if found:
            out[str(f.relative_to(reports_dir))] = found
    return out


def contact_details(processed_dir: str | Path) -> pd.DataFrame:
    """Name and e-mail per ``customer_pseudo_id`` (the first account of each resolved customer). Analyst use only."""
    processed_dir = Path(processed_dir)
    accounts = pd.read_parquet(processed_dir / "clean" / "customers.parquet",
                               columns=["customer_key", "first_name", "last_name", "email"])
    ids = pd.read_parquet(processed_dir / "customer_360.parquet", columns=["customer_key", "customer_pseudo_id"])
    first = accounts.dropna(subset=["customer_key"]).drop_duplicates("customer_key")
    out = first.merge(ids, on="customer_key")
    out["name"] = (out["first_name"].fillna("") + " " + out["last_name"].fillna("")).str.strip()
    return out.set_index("customer_pseudo_id")[["name", "email"]]


def reveal(table: pd.DataFrame, id_col: str, pii: str, processed_dir: str | Path) -> pd.DataFrame:
    """With ``pii == "allow"``, insert ``name`` and ``email`` after ``id_col``; with ``"mask"``, return ``table``."""
    if pii not in PII_MODES:
        raise ValueError(f"parameter pii must be one of {', '.join(PII_MODES)}, got {pii!r}")
    if pii == "mask":
        return table
    contacts = contact_details(processed_dir).reindex(table[id_col]).reset_index(drop=True)
    at = table.columns.get_loc(id_col) + 1
    out = table.reset_index(drop=True).copy()
    out.insert(at, "name", contacts["name"].to_numpy())
    out.insert(at + 1, "email", contacts["email"].to_numpy())
    return out
