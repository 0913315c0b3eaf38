"""Step 01: load every channel, validate it against the catalogue, stage it, and describe it (data inventory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers.catalog import DATA_TYPES, SourceSpec
from helpers.dataio import ROW, Loaded, load_source, save_table
from helpers.plotting import label, thousands
from helpers.validation import empty_violations, missing_share, raise_first, type_source


@dataclass
class Collection:
    """Every loaded source: raw text frames, typed frames, rule violations and unreadable lines."""

    specs: dict[str, SourceSpec]
    loaded: dict[str, Loaded] = field(default_factory=dict)
    typed: dict[str, pd.DataFrame] = field(default_factory=dict)
    violations: pd.DataFrame = field(default_factory=empty_violations)

    @property
    def unreadable(self) -> pd.DataFrame:
        frames = [ld.unreadable for ld in self.loaded.values() if not ld.unreadable.empty]
        return pd.concat(frames, ignore_index=True) if frames else next(iter(self.loaded.values())).unreadable


def collect(specs: dict[str, SourceSpec], source_dir: str | Path, db_url: str, as_of: pd.Timestamp,
            strict: bool = False) -> Collection:
    """Load and validate every source in ``specs``.

    Whole-file faults (missing file, missing required column, empty source) always raise
    :class:`~helpers.errors.SourceError`. Value-level problems are collected; with
    ``strict=True`` the first one raises instead, naming file, column and row.
    """
    col = Collection(specs)
    parts = []
    for name, spec in specs.items():
        loaded = load_source(spec, source_dir, db_url)
        typed, violations = type_source(loaded.frame, spec, loaded.label, as_of)
        if strict:
            raise_first(violations)
        col.loaded[name], col.typed[name] = loaded, typed
        parts.append(violations)
    col.violations = pd.concat(parts, ignore_index=True) if parts else empty_violations()
    return col


def inventory(col: Collection, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per source: size, date coverage, freshness, data types fed, missing values and problems."""
    rows = []
    bad = col.violations.groupby("source")[ROW].nunique() if not col.violations.empty else pd.Series(dtype=int)
    for name, spec in col.specs.items():
        typed = col.typed[name]
        dates = typed[spec.date_column] if spec.date_column in typed else pd.Series(dtype="datetime64[ns]")
        first, last = (dates.min(), dates.max()) if dates.notna().any() else (pd.NaT, pd.NaT)
        rows.append({
            "source": name, "description": spec.description, "form": spec.format,
            "location": col.loaded[name].label, "rows": len(typed), "columns": typed.shape[1] - 1,
            "first_date": first.date() if pd.notna(first) else None,
            "last_date": last.date() if pd.notna(last) else None,
            "freshness_days": int((as_of - last).days) if pd.notna(last) else pd.NA,
            "feeds": ", ".join(spec.feeds), "missing_pct": 100 * float(missing_share(typed).mean()),
            "rows_with_problems": int(bad.get(name, 0)) + len(col.loaded[name].unreadable),
        })
    return pd.DataFrame(rows).astype({"freshness_days": "Int64"})


def feeds_matrix(specs: dict[str, SourceSpec]) -> pd.DataFrame:
    """Sources × the four data types, True where the source feeds that type."""
    return pd.DataFrame({t: [t in s.feeds for s in specs.values()] for t in DATA_TYPES},
                        index=pd.Index(list(specs), name="source"))


def missing_matrix(col: Collection) -> pd.DataFrame:
    """Long table of the share of missing values per source and column."""
    rows = []
    for name, typed in col.typed.items():
        for c, share in missing_share(typed).items():
            rows.append({"source": name, "column": c, "missing_share": share})
    return pd.DataFrame(rows)


def monthly_volume(col: Collection) -> pd.DataFrame:
    """Rows per calendar month per source (sources with a date column), months as rows."""
    series = {}
    for name, spec in col.specs.items():
        typed = col.typed[name]
        if spec.date_column and spec.date_column in typed:
            d = typed[spec.date_column].dropna()
            series[name] = d.dt.to_period("M").value_counts().sort_index()
    out = pd.DataFrame(series).fillna(0).astype(int)
    out.index = out.index.to_timestamp()
    out.index.name = "month"
    return out.sort_index()


def stage(col: Collection, staged_dir: str | Path, inventory_df: pd.DataFrame) -> list[Path]:
    """Write each source as read (text columns + ``_row``) and the problem tables to ``staged_dir``.

    Raw text is staged, not typed values, so that cleaning can quarantine a bad value
    with its original spelling and row number.
    """
    staged_dir = Path(staged_dir)
    written = [save_table(ld.frame, staged_dir / f"{name}.parquet") for name, ld in col.loaded.items()]
    written.append(save_table(col.violations, staged_dir / "_violations.parquet"))
    written.append(save_table(col.unreadable, staged_dir / "_unreadable.parquet"))
    written.append(save_table(inventory_df.astype({"first_date": "string", "last_date": "string"}),
                              staged_dir / "_inventory.parquet"))
    return written


# ---------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------


def plot_monthly_volume(volume: pd.DataFrame, title: str = "Records per month by channel") -> plt.Figure:
    """Log-scale line chart of monthly record counts, one line per source."""
    fig, ax = plt.subplots(figsize=(10, 4.6))
    colours = sns.color_palette("tab10", len(volume.columns))  # one distinct colour per source
    for name, colour in zip(volume.columns, colours):
        ax.plot(volume.index, volume[name].replace(0, np.nan), marker="o", ms=3, lw=1.6, label=name, color=colour)
    ax.set_yscale("log")
    label(ax, title, "Month", "Records per month (log scale)")
    thousands(ax)
    ax.legend(ncol=2, fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_missing(missing: pd.DataFrame, min_share: float = 0.0) -> plt.Figure:
    """Horizontal bars of the share of missing values for columns with any missing value."""
    m = missing[missing["missing_share"] > min_share].copy()
    m["field"] = m["source"] + " · " + m["column"]
    m = m.sort_values("missing_share", ascending=True)
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.28 * len(m) + 1)))
    if m.empty:
        ax.text(0.5, 0.5, "No missing values", ha="center", va="center")
        ax.set_axis_off()
        return fig
    ax.barh(m["field"], m["missing_share"] * 100, color=sns.color_palette()[0])
    label(ax, "Missing values by field", "Share of rows with no value (%)", "")
    return fig


def plot_feeds(feeds: pd.DataFrame) -> plt.Figure:
    """Heat map of which source feeds which of the four data types."""
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(feeds) + 1.2))
    sns.heatmap(feeds.astype(int), cbar=False, cmap=sns.light_palette("#1f5fa8", as_cmap=True), linewidths=1,
                linecolor="white", ax=ax, annot=feeds.replace({True: "✓", False: ""}).to_numpy(), fmt="")
    label(ax, "Which source feeds which data type", "Data type", "Source")
    ax.tick_params(axis="x", rotation=0)
    return fig


# ---------------------------------------------------------------------------
# Plain-language captions, generated from the numbers
# ---------------------------------------------------------------------------


def volume_caption(volume: pd.DataFrame) -> str:
    """One sentence on which channel is largest and how activity grew over the window."""
    totals = volume.sum().sort_values(ascending=False)
    top = totals.index[0]
    orders = volume["orders"] if "orders" in volume else volume[top]
    first_q, last_q = orders.iloc[:3].mean(), orders.iloc[-4:-1].mean() if len(orders) > 4 else orders.iloc[-1]
    trend = "grew" if last_q > first_q * 1.1 else ("fell" if last_q < first_q * 0.9 else "held steady")
    return (f"{top.replace('_', ' ').capitalize()} is by far the largest channel ({totals.iloc[0]:,} records over "
            f"{len(volume)} months); monthly {orders.name.replace('_', ' ')} {trend} from about {first_q:,.0f} in "
            f"the first months to about {last_q:,.0f} recently, and the other channels move with them.")


def missing_caption(missing: pd.DataFrame) -> str:
    """One sentence naming the least complete fields."""
    m = missing[missing["missing_share"] > 0].sort_values("missing_share", ascending=False)
    if m.empty:
        return "Every field of every source is complete."
    top = m.head(3)
    names = ", ".join(f"{r.source} · {r.column} ({r.missing_share:.0%})" for r in top.itertuples())
    return (f"{len(m)} of {len(missing)} fields have gaps; the largest are {names}, which are optional by nature "
            "(e.g. only logged-in events carry a customer id).")


def feeds_caption(feeds: pd.DataFrame) -> str:
    """One sentence on coverage of the four data types."""
    counts = feeds.sum()
    parts = ", ".join(f"{int(n)} {t}" for t, n in counts.items())
    return f"Every data type is covered by at least one source ({parts}), so a full 360° view can be assembled."


def hide_pii_examples(summary: pd.DataFrame, specs: dict[str, SourceSpec]) -> pd.DataFrame:
    """Replace example values of personal-data columns with a placeholder for stakeholder reports."""
    out = summary.copy()
    if out.empty:
        return out
    pii = out.apply(lambda r: r["column"] in specs[r["source"]].pii_columns, axis=1)
    out.loc[pii, "example_value"] = "(personal data hidden)"
    return out
