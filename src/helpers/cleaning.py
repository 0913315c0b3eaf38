"""Step 02: validate with quarantine, deduplicate, net returns and cancellations, convert currency.

Every staged row ends in exactly one of three places, and the row balance
``rows_in = kept + quarantined + duplicates_merged`` holds for every source:

* **quarantined**: a required value is missing or invalid, a referenced record does
  not exist, or the line could not be read at all. The quarantine table keeps the
  source, row number, column, raw value, rule and a reason in words;
* **duplicates merged**: an exact copy of an earlier row, or a later row repeating
  the key of a kept row (the more complete row is kept);
* **kept**: everything else. Invalid values in optional columns are set to missing
  and logged in the fixes table instead of rejecting the whole row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from helpers.catalog import SourceSpec
from helpers.dataio import ROW
from helpers.validation import type_source

QUARANTINE_COLUMNS = ["source", "file", ROW, "column", "value", "rule", "reason", "problems", "record"]
# Order in which sources are cleaned: a source comes after the sources it references.
CLEANING_ORDER = ["customers", "products", "fx_rates", "campaigns", "orders", "order_lines", "returns",
                  "web_events", "email_sends", "reviews", "surveys", "tickets"]


@dataclass
class SourceResult:
    """One source after cleaning."""

    name: str
    file: str
    rows_in: int
    kept: pd.DataFrame
    quarantine: pd.DataFrame
    fixes: pd.DataFrame
    exact_duplicates: int = 0
    key_duplicates: int = 0

    @property
    def duplicates_merged(self) -> int:
        return self.exact_duplicates + self.key_duplicates


@dataclass
class CleanResult:
    """All sources after cleaning, with the accounting that proves nothing was lost."""

    sources: dict[str, SourceResult] = field(default_factory=dict)

    def balance(self) -> pd.DataFrame:
        """Row balance per source: rows in = kept + quarantined + duplicates merged."""
        rows = []
        for r in self.sources.values():
            q = r.quarantine[ROW].nunique() if not r.quarantine.empty else 0
            rows.append({"source": r.name, "file": r.file, "rows_in": r.rows_in, "kept": len(r.kept),
                         "quarantined": q, "duplicates_merged": r.duplicates_merged,
                         "exact_duplicates": r.exact_duplicates, "key_duplicates": r.key_duplicates,
                         "values_set_missing": len(r.fixes)})
        df = pd.DataFrame(rows)
        df["balanced"] = df["rows_in"] == df["kept"] + df["quarantined"] + df["duplicates_merged"]
        return df

    @property
    def quarantine(self) -> pd.DataFrame:
        parts = [r.quarantine for r in self.sources.values() if not r.quarantine.empty]
        return (pd.concat(parts, ignore_index=True) if parts else _empty_quarantine())

    @property
    def fixes(self) -> pd.DataFrame:
        parts = [r.fixes for r in self.sources.values() if not r.fixes.empty]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c in (ROW, "problems") else "string")
                         for c in QUARANTINE_COLUMNS})


def _records(raw: pd.DataFrame) -> pd.Series:
    """The original row as compact JSON, so that a quarantined row can be inspected or replayed."""
    cols = [c for c in raw.columns if c != ROW]
    vals = raw[cols].astype(object).where(raw[cols].notna(), None).to_dict("records")
    return pd.Series([json.dumps(v, ensure_ascii=False, sort_keys=True) for v in vals], index=raw.index)


def _quarantine_rows(source: str, file: str, raw: pd.DataFrame, problems: pd.DataFrame) -> pd.DataFrame:
    """One quarantine row per rejected source row: its first problem, the number of problems, the raw record."""
    if problems.empty:
        return _empty_quarantine()
    first = problems.sort_values([ROW], kind="stable").groupby(ROW, sort=True).agg(
        column=("column", "first"), value=("value", "first"), rule=("rule", "first"), reason=("reason", "first"),
        problems=("rule", "size")).reset_index()
    by_row = raw.set_index(ROW)
    first["record"] = _records(by_row.loc[first[ROW]].reset_index()).to_numpy()
    first.insert(0, "file", file)
    first.insert(0, "source", source)
    return first[QUARANTINE_COLUMNS].astype({ROW: "int64", "problems": "int64"})


def clean_source(staged: pd.DataFrame, spec: SourceSpec, file: str, as_of: pd.Timestamp,
                 unreadable: pd.DataFrame | None = None) -> SourceResult:
    """Type, validate and deduplicate one staged source.

    Rows with a problem in a required column are quarantined; problems in optional
    columns only set that value to missing (logged in ``fixes``). Exact duplicate rows
    and rows repeating a key are merged into the first, most complete row.
    """
    typed, violations = type_source(staged, spec, file, as_of)
    cols = [c for c in staged.columns if c != ROW]
    exact = staged.duplicated(subset=cols, keep="first").to_numpy()
    dup_rows = set(staged.loc[exact, ROW])
    violations = violations[~violations[ROW].isin(dup_rows)]
    required = set(spec.required_columns)
    reject = violations[violations["column"].isin(required)]
    fixes = violations[~violations["column"].isin(required)].assign(action="set to missing")
    rejected_rows = set(reject[ROW])
    keep_mask = ~exact & ~staged[ROW].isin(rejected_rows).to_numpy()
    kept = typed[keep_mask]
    key_dups = 0
    if spec.key:
        # Near-duplicates: the same key twice. Keep the most complete row (then the first one).
        completeness = kept.notna().sum(axis=1)
        order = kept.assign(_complete=completeness).sort_values(["_complete", ROW], ascending=[False, True],
                                                                 kind="stable")
        dupe = order.duplicated(subset=spec.key, keep="first")
        key_dups = int(dupe.sum())
        kept = order[~dupe].drop(columns="_complete").sort_values(ROW, kind="stable")
    quarantine = _quarantine_rows(spec.name, file, staged, reject)
    if unreadable is not None and not unreadable.empty:
        extra = pd.DataFrame({"source": spec.name, "file": file, ROW: unreadable[ROW].astype("int64"),
                              "column": "(whole line)", "value": unreadable["raw"].str.slice(0, 120),
                              "rule": "unreadable", "reason": unreadable["reason"], "problems": 1,
                              "record": unreadable["raw"]})
        quarantine = pd.concat([quarantine, extra], ignore_index=True)
    rows_in = len(staged) + (0 if unreadable is None else len(unreadable))
    return SourceResult(spec.name, file, rows_in, kept.reset_index(drop=True), quarantine,
                        fixes.reset_index(drop=True), int(exact.sum()), key_dups)


def enforce_reference(result: SourceResult, column: str, target: SourceResult, target_column: str,
                      staged: pd.DataFrame) -> SourceResult:
    """Quarantine kept rows whose ``column`` points to no kept row of ``target`` (referential integrity)."""
    valid = set(target.kept[target_column].dropna())
    values = result.kept[column]
    bad = values.notna() & ~values.isin(valid)
    if not bad.any():
        return result
    rows = result.kept.loc[bad, ROW]
    quarantined_targets = set(target.quarantine["record"].map(lambda r: json.loads(r).get(target_column)
                                                              if r.startswith("{") else None))
    reasons = [f"expected an existing {target.name}.{target_column}; {v!r} "
               + ("was quarantined" if v in quarantined_targets else "does not exist")
               for v in values[bad]]
    problems = pd.DataFrame({ROW: rows.to_numpy(), "column": column, "value": values[bad].astype("string").to_numpy(),
                             "rule": "reference", "reason": reasons})
    q = _quarantine_rows(result.name, result.file, staged, problems)
    result.quarantine = pd.concat([result.quarantine, q], ignore_index=True)
    result.kept = result.kept[~bad].reset_index(drop=True)
    return result


def clean_all(staged: dict[str, pd.DataFrame], specs: dict[str, SourceSpec], labels: dict[str, str],
              as_of: pd.Timestamp, unreadable: pd.DataFrame | None = None) -> CleanResult:
    """Clean every staged source in dependency order and enforce declared references."""
    out = CleanResult()
    order = [n for n in CLEANING_ORDER if n in staged] + [n for n in staged if n not in CLEANING_ORDER]
    for name in order:
        bad_lines = None
        if unreadable is not None and not unreadable.empty:
            bad_lines = unreadable[unreadable["source"] == name]
        res = clean_source(staged[name], specs[name], labels.get(name, name), as_of, bad_lines)
        for col in specs[name].columns.values():
            if col.references:
                tsrc, tcol = col.references.split(".")
                if tsrc in out.sources:
                    res = enforce_reference(res, col.name, out.sources[tsrc], tcol, staged[name])
        out.sources[name] = res
    return out


# ---------------------------------------------------------------------------
# Transactions: currency, outliers, returns and cancellations
# ---------------------------------------------------------------------------


def fx_to_eur(amount: pd.Series, currency: pd.Series, when: pd.Series, fx: pd.DataFrame) -> pd.Series:
    """Convert amounts to EUR with the monthly rate of their currency (EUR passes unchanged).

    Raises ValueError naming the currency and month when a needed rate is missing.
    """
    month = when.dt.to_period("M").dt.to_timestamp()
    rates = fx.assign(month=fx["month"].dt.to_period("M").dt.to_timestamp()).set_index(["currency", "month"])[
        "eur_per_unit"]
    key = pd.MultiIndex.from_arrays([currency.to_numpy(), month.to_numpy()])
    rate = pd.Series(rates.reindex(key).to_numpy(), index=amount.index)
    rate[currency.eq("EUR").to_numpy()] = 1.0
    missing = rate.isna() & amount.notna()
    if missing.any():
        i = missing[missing].index[0]
        raise ValueError(f"fx_rates.csv: expected a rate for {currency[i]} in {month[i]:%Y-%m}, found none")
    return amount * rate


OUTLIER_RULE = ("a line is flagged as an outlier when its quantity is above 20 units, or its value is more than "
                "5 robust standard deviations (median and MAD of log value) above its category's typical line")


def flag_outliers(lines: pd.DataFrame) -> pd.Series:
    """Boolean flag per order line following :data:`OUTLIER_RULE`; flagged lines are kept, not dropped."""
    logv = np.log1p(lines["line_gross_eur"].clip(lower=0))
    grp = logv.groupby(lines["category"].fillna("unknown"))
    med = grp.transform("median")
    mad = grp.transform(lambda s: (s - s.median()).abs().median()).replace(0, np.nan)
    robust_z = (logv - med) / (1.4826 * mad)
    return (lines["quantity"] > 20) | (robust_z > 5).fillna(False)


def build_transactions(orders: pd.DataFrame, lines: pd.DataFrame, returns: pd.DataFrame, fx: pd.DataFrame,
                       products: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Net returns and cancellations against their orders, in EUR.

    Returns ``(orders, lines, returns)``: lines with ``line_gross_eur`` and an outlier flag;
    returns with ``refund_eur``; orders with gross, refunds, net revenue (0 for cancelled
    orders), units, discount share and flags.
    """
    o = orders.copy()
    o["is_cancelled"] = o["status"].eq("cancelled")
    ln = lines.merge(o[["order_id", "currency", "order_date"]], on="order_id", how="left")
    cat = products.set_index("product_id")["category"]
    ln["category"] = ln["category"].fillna(ln["product_id"].map(cat))
    disc = ln["discount_pct"].fillna(0) / 100
    gross = ln["quantity"].astype(float) * ln["unit_price"] * (1 - disc)
    ln["line_gross_eur"] = fx_to_eur(gross, ln["currency"], ln["order_date"], fx).round(2)
    ln["is_discounted"] = disc > 0
    ln["is_outlier"] = flag_outliers(ln)
    r = returns.copy()
    r_currency = r["currency"].fillna(r["order_id"].map(o.set_index("order_id")["currency"]))
    r["refund_eur"] = fx_to_eur(r["refund_amount"], r_currency, r["return_date"], fx).round(2)
    per_order = ln.groupby("order_id").agg(gross_eur=("line_gross_eur", "sum"), n_lines=("line_no", "size"),
                                           units=("quantity", "sum"), discount_share=("is_discounted", "mean"),
                                           has_outlier=("is_outlier", "any"))
    refunds = r.groupby("order_id").agg(refund_eur=("refund_eur", "sum"), returned_units=("quantity", "sum"))
    o = o.merge(per_order, on="order_id", how="left").merge(refunds, on="order_id", how="left")
    o[["gross_eur", "refund_eur"]] = o[["gross_eur", "refund_eur"]].fillna(0.0)
    o[["n_lines", "units", "returned_units"]] = o[["n_lines", "units", "returned_units"]].fillna(0).astype(int)
    o["has_outlier"] = o["has_outlier"].astype("boolean").fillna(False).astype(bool)
    # A cancelled order earns nothing; a completed one earns what was not refunded.
    o["net_eur"] = np.where(o["is_cancelled"], 0.0, (o["gross_eur"] - o["refund_eur"]).clip(lower=0)).round(2)
    return o, ln.drop(columns=["currency", "order_date"]), r


# ---------------------------------------------------------------------------
# Report views and charts
# ---------------------------------------------------------------------------


def quarantine_summary(quarantine: pd.DataFrame, specs: dict[str, SourceSpec]) -> pd.DataFrame:
    """Quarantined rows per source and rule with one example; personal-data values are hidden."""
    if quarantine.empty:
        return pd.DataFrame(columns=["source", "rule", "rows", "example_row", "column", "example_value", "reason"])
    q = quarantine.copy()
    pii = q.apply(lambda r: r["column"] in specs[r["source"]].pii_columns if r["source"] in specs else False,
                  axis=1)
    q.loc[pii, "value"] = "(personal data hidden)"
    q.loc[q["rule"] == "unreadable", "value"] = "(raw line, see quarantine file)"
    out = q.groupby(["source", "rule"], sort=True).agg(
        rows=(ROW, "size"), example_row=(ROW, "first"), column=("column", "first"), example_value=("value", "first"),
        reason=("reason", "first")).reset_index()
    return out.sort_values(["rows"], ascending=False, kind="stable").reset_index(drop=True)


def plot_balance(balance: pd.DataFrame):
    """Stacked horizontal bars: share of each source's rows kept, quarantined and merged as duplicates."""
    import matplotlib.pyplot as plt

    from helpers.plotting import PALETTE, label

    b = balance.set_index("source")
    shares = b[["kept", "quarantined", "duplicates_merged"]].div(b["rows_in"], axis=0) * 100
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(b) + 1.6))
    left = np.zeros(len(b))
    colours = {"kept": PALETTE[2], "quarantined": PALETTE[3], "duplicates_merged": PALETTE[1]}
    for col in ["kept", "quarantined", "duplicates_merged"]:
        ax.barh(shares.index, shares[col], left=left, color=colours[col], label=col.replace("_", " "))
        left += shares[col].to_numpy()
    ax.set_xlim(95, 100)
    ax.invert_yaxis()
    label(ax, "Where every row went (zoomed to 95–100%)", "Share of the source's rows (%)", "")
    ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, -0.32 - 0.01 * len(b)))
    return fig


def balance_caption(balance: pd.DataFrame) -> str:
    tot = balance[["rows_in", "kept", "quarantined", "duplicates_merged"]].sum()
    worst = balance.assign(lost=1 - balance["kept"] / balance["rows_in"]).sort_values("lost").iloc[-1]
    ok = "and the balance holds for every source" if balance["balanced"].all() else \
        "but the balance FAILS for " + ", ".join(balance.loc[~balance["balanced"], "source"])
    return (f"Of {tot['rows_in']:,} rows read, {tot['kept']:,} were kept, {tot['quarantined']:,} quarantined and "
            f"{tot['duplicates_merged']:,} merged as duplicates, {ok}; {worst['source']} lost the largest share "
            f"({100 * (1 - worst['kept'] / worst['rows_in']):.1f}%).")


def monthly_revenue(orders: pd.DataFrame) -> pd.DataFrame:
    """Gross, refunded and net revenue (EUR) per month of order, cancelled orders excluded from net."""
    o = orders.assign(month=orders["order_date"].dt.to_period("M").dt.to_timestamp())
    o["gross_completed"] = np.where(o["is_cancelled"], 0.0, o["gross_eur"])
    o["cancelled_value"] = np.where(o["is_cancelled"], o["gross_eur"], 0.0)
    return o.groupby("month")[["gross_completed", "cancelled_value", "refund_eur", "net_eur"]].sum()


def plot_netting(monthly: pd.DataFrame):
    """Monthly net revenue with the refunds and cancellations netted out of it stacked on top."""
    import matplotlib.pyplot as plt

    from helpers.plotting import PALETTE, label, thousands

    fig, ax = plt.subplots(figsize=(10, 4.2))
    x = monthly.index
    width = 20
    ax.bar(x, monthly["net_eur"], width=width, color=PALETTE[0], label="net revenue")
    ax.bar(x, monthly["refund_eur"], width=width, bottom=monthly["net_eur"], color=PALETTE[1], label="refunded")
    ax.bar(x, monthly["cancelled_value"], width=width, bottom=monthly["net_eur"] + monthly["refund_eur"],
           color=PALETTE[7], label="cancelled")
    label(ax, "Revenue per month after returns and cancellations", "Month of order", "Revenue (EUR)")
    thousands(ax)
    ax.legend(loc="upper left")
    return fig


def netting_caption(orders: pd.DataFrame) -> str:
    done = orders[~orders["is_cancelled"]]
    gross = done["gross_eur"].sum()
    refunds = done["refund_eur"].sum()
    cancelled = orders["is_cancelled"].sum()
    return (f"Returns took back EUR {refunds:,.0f} ({refunds / gross:.1%} of completed sales), and "
            f"{cancelled:,} cancelled orders (EUR {orders.loc[orders['is_cancelled'], 'gross_eur'].sum():,.0f}) "
            f"earn nothing; net revenue is EUR {done['net_eur'].sum():,.0f}.")


def fixes_sentence(fixes: pd.DataFrame, specs: dict[str, SourceSpec], limit: int = 6) -> str:
    """Plain-language list of optional values that were set to missing (personal data not quoted)."""
    if fixes.empty:
        return "No optional value had to be set to missing."
    parts = []
    for _, r in fixes.head(limit).iterrows():
        parts.append(f"{r['source']}.{r['column']} in row {r[ROW]} ({r['reason']})")
    more = f", and {len(fixes) - limit} more" if len(fixes) > limit else ""
    return (f"{len(fixes)} optional value(s) were invalid and set to missing instead of rejecting the row: "
            + "; ".join(parts) + more + ".")
