"""Schema validation: typing a loaded source and listing every value that breaks a rule.

A violation names the source file, the row (as ``_row``), the column, the raw
value, the rule and a reason in words. Collection reports them; cleaning turns
rejecting violations into quarantined rows. ``strict`` mode raises on the first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.catalog import SourceSpec
from helpers.dataio import ROW
from helpers.errors import SourceError
from helpers.parsing import blank_to_na, describe_expected, parse_column

VIOLATION_COLUMNS = ["source", "file", ROW, "column", "value", "rule", "reason"]


def empty_violations() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == ROW else "string") for c in VIOLATION_COLUMNS})


def _violations(spec: SourceSpec, label: str, rows: pd.Series, column: str, values: pd.Series, rule: str,
                reason: str | pd.Series) -> pd.DataFrame:
    return pd.DataFrame({
        "source": spec.name, "file": label, ROW: rows.to_numpy(dtype="int64"), "column": column,
        "value": values.astype("string").to_numpy(), "rule": rule, "reason": reason,
    })


def type_source(frame: pd.DataFrame, spec: SourceSpec, label: str | None = None,
                as_of: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse a loaded source to proper dtypes and list rule violations.

    Values that fail their rule become missing in the typed frame; the raw value is
    kept in the violations table. Columns not in the catalogue pass through as text.

    Rules: ``required`` (value missing), ``type`` (cannot be parsed as the declared
    type), ``allowed`` (not in the allowed list), ``range`` (outside min/max) and
    ``future_date`` (after ``as_of``).
    """
    label = label or spec.label
    opts = spec.options
    typed = pd.DataFrame({ROW: frame[ROW].to_numpy()}, index=frame.index)
    parts = []
    for name in frame.columns:
        if name == ROW:
            continue
        col = spec.columns.get(name)
        if col is None:
            typed[name] = blank_to_na(frame[name])
            continue
        raw = frame[name]
        parsed = parse_column(raw, col, opts.get("decimal", "."), opts.get("thousands"))
        values = parsed.values
        if parsed.n_failed:
            rule = "allowed" if col.type == "string" and col.allowed else "type"
            bad = parsed.failed
            parts.append(_violations(spec, label, frame.loc[bad, ROW], name, raw[bad], rule,
                                     f"expected {describe_expected(col)}"))
        if col.min is not None or col.max is not None:
            v = values.astype("float64") if col.type in ("integer", "float") else None
            if v is not None:
                low = (v < col.min) if col.min is not None else pd.Series(False, index=v.index)
                high = (v > col.max) if col.max is not None else pd.Series(False, index=v.index)
                out = (low | high).fillna(False).astype(bool)
                if out.any():
                    rng = f"between {col.min:g} and {col.max:g}" if col.min is not None and col.max is not None \
                        else (f"at least {col.min:g}" if col.min is not None else f"at most {col.max:g}")
                    parts.append(_violations(spec, label, frame.loc[out, ROW], name, raw[out], "range",
                                             f"expected a value {rng}"))
                    values = values.mask(out)
        if col.type == "datetime" and as_of is not None:
            fut = (values > as_of).fillna(False).astype(bool)
            if fut.any():
                parts.append(_violations(spec, label, frame.loc[fut, ROW], name, raw[fut], "future_date",
                                         f"expected a date on or before {as_of:%Y-%m-%d}"))
                values = values.mask(fut)
        if col.required:
            miss = blank_to_na(raw).isna().to_numpy()
            if miss.any():
                parts.append(_violations(spec, label, frame.loc[miss, ROW], name, raw[miss], "required",
                                         "expected a value; the field is empty"))
        typed[name] = values
    violations = pd.concat(parts, ignore_index=True) if parts else empty_violations()
    return typed, violations.sort_values([ROW, "column"], kind="stable").reset_index(drop=True)


def raise_first(violations: pd.DataFrame) -> None:
    """Raise a :class:`SourceError` for the first violation, if there is one (strict mode)."""
    if violations.empty:
        return
    v = violations.iloc[0]
    more = len(violations) - 1
    got = f"{v['value']!r}" if pd.notna(v["value"]) else "an empty field"
    if more:
        got += f" ({more} more problem{'s' if more > 1 else ''} in this source)"
    raise SourceError(str(v["file"]), str(v["column"]), int(v[ROW]), str(v["reason"]).removeprefix("expected "),
                      got)


def summarise_violations(violations: pd.DataFrame) -> pd.DataFrame:
    """Count violations per source, column and rule, with one example row and value."""
    if violations.empty:
        return pd.DataFrame(columns=["source", "column", "rule", "rows", "example_row", "example_value", "reason"])
    g = violations.groupby(["source", "column", "rule"], sort=True)
    out = g.agg(rows=(ROW, "size"), example_row=(ROW, "first"), example_value=("value", "first"),
                reason=("reason", "first")).reset_index()
    return out.sort_values(["source", "rows"], ascending=[True, False], kind="stable").reset_index(drop=True)


def missing_share(typed: pd.DataFrame) -> pd.Series:
    """Share of missing values per column (``_row`` excluded)."""
    cols = [c for c in typed.columns if c != ROW]
    return pd.Series({c: float(np.mean(typed[c].isna().to_numpy())) for c in cols}, dtype="float64")
