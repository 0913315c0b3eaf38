"""Value parsers for messy real-world exports.

Each parser takes a column of raw strings and returns the parsed values plus a
boolean mask of the values that were present but could not be parsed, so that
callers decide whether to quarantine, null or raise. Empty strings and
whitespace count as missing, never as failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

TRUE_WORDS = {"1", "true", "t", "yes", "y", "ja", "oui", "x"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "nein", "non"}


@dataclass(frozen=True)
class Parsed:
    """Result of parsing one column."""

    values: pd.Series
    failed: pd.Series  # True where a non-empty raw value could not be parsed

    @property
    def n_failed(self) -> int:
        return int(self.failed.sum())


def blank_to_na(raw: pd.Series) -> pd.Series:
    """Strip whitespace and turn empty strings into missing values.

    >>> blank_to_na(pd.Series([" a ", "", None])).tolist()
    ['a', <NA>, <NA>]
    """
    s = raw.astype("string").str.strip()
    return s.mask(s == "")


def parse_number(raw: pd.Series, decimal: str = ".", thousands: str | None = None) -> Parsed:
    """Parse numbers written with a given decimal mark and thousands separator.

    >>> parse_number(pd.Series(["1.234,56", "7,5", "abc"]), decimal=",", thousands=".").values.tolist()
    [1234.56, 7.5, nan]
    """
    s = blank_to_na(raw)
    t = s
    if thousands:
        t = t.str.replace(thousands, "", regex=False)
    if decimal != ".":
        t = t.str.replace(decimal, ".", regex=False)
    t = t.str.replace(r"\s+", "", regex=True)
    values = pd.to_numeric(t, errors="coerce").astype("float64")
    failed = s.notna() & values.isna()
    return Parsed(values, failed.fillna(False).astype(bool))


def parse_integer(raw: pd.Series) -> Parsed:
    """Parse whole numbers; '3.0' is accepted, '3.5' is a failure."""
    num = parse_number(raw)
    frac = num.values.notna() & (num.values % 1 != 0)
    return Parsed(num.values.where(~frac).astype("Int64"), (num.failed | frac).astype(bool))


def parse_bool(raw: pd.Series) -> Parsed:
    """Parse yes/no style flags in English, German and French.

    >>> parse_bool(pd.Series(["True", "0", "ja", "maybe"])).values.tolist()
    [True, False, True, <NA>]
    """
    s = blank_to_na(raw).str.lower()
    values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    values[s.isin(TRUE_WORDS).fillna(False).astype(bool)] = True
    values[s.isin(FALSE_WORDS).fillna(False).astype(bool)] = False
    failed = s.notna() & values.isna()
    return Parsed(values, failed.fillna(False).astype(bool))


def parse_datetime(raw: pd.Series, formats: list[str] | None = None) -> Parsed:
    """Parse dates and times that come in several formats within one column.

    Each format is tried in order on the values still unparsed; ``None`` or an
    empty list means ISO 8601. Timezone-aware values are converted to UTC and
    made naive, so that all timestamps compare.

    >>> parse_datetime(pd.Series(["2025-03-04 10:00:00", "04.03.2025 10:00"]),
    ...                ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M"]).values.dt.day.tolist()
    [4, 4]
    """
    s = blank_to_na(raw)
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    todo = s.notna()
    for fmt in formats or ["ISO8601"]:
        if not todo.any():
            break
        parsed = pd.to_datetime(s[todo], format=fmt, errors="coerce", utc=fmt in ("ISO8601",) or "%z" in fmt)
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        ok = parsed.notna()
        out.loc[ok[ok].index] = parsed[ok].astype("datetime64[ns]")
        todo = todo & out.isna()
    failed = s.notna() & out.isna()
    return Parsed(out, failed.fillna(False).astype(bool))


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def parse_email(raw: pd.Series) -> Parsed:
    """Check e-mail syntax (whitespace stripped; case kept for the normaliser to decide)."""
    s = blank_to_na(raw)
    ok = s.str.match(EMAIL_RE.pattern).fillna(False).astype(bool)
    return Parsed(s.where(ok), (s.notna() & ~ok).fillna(False).astype(bool))


def parse_string(raw: pd.Series, allowed: list[str] | None = None, lower: bool = False) -> Parsed:
    """Strip strings; with ``allowed``, values outside the list (after optional lower-casing) fail."""
    s = blank_to_na(raw)
    if lower:
        s = s.str.lower()
    if allowed is None:
        return Parsed(s, pd.Series(False, index=raw.index))
    ok = s.isin(allowed).fillna(False).astype(bool)
    return Parsed(s.where(ok), (s.notna() & ~ok).fillna(False).astype(bool))


def parse_column(raw: pd.Series, spec: "ColumnSpec", decimal: str = ".", thousands: str | None = None) -> Parsed:  # noqa: F821
    """Parse ``raw`` according to a catalogue column spec (see :mod:`helpers.catalog`)."""
    kind = spec.type
    if kind == "string":
        return parse_string(raw, spec.allowed, spec.lower)
    if kind == "float":
        return parse_number(raw, decimal, thousands)
    if kind == "integer":
        return parse_integer(raw)
    if kind == "boolean":
        return parse_bool(raw)
    if kind == "datetime":
        return parse_datetime(raw, spec.formats)
    if kind == "email":
        return parse_email(raw)
    raise ValueError(f"unknown column type {kind!r}")


def describe_expected(spec: "ColumnSpec") -> str:  # noqa: F821
    """Say in words what a column expects, for error messages."""
    if spec.type == "datetime":
        return "a date/time in one of the formats " + ", ".join(spec.formats or ["ISO 8601"])
    if spec.type == "string" and spec.allowed:
        return "one of " + ", ".join(repr(a) for a in spec.allowed)
    return {"float": "a number", "integer": "a whole number", "boolean": "yes/no (true/false, 1/0)",
            "email": "an e-mail address (local part, @, domain)", "string": "text"}[spec.type]
