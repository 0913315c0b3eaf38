"""Step 01: read every source in the catalogue, conform it to the canonical model, and describe what the data
holds (the data inventory).

For each source: the reader stages its records as text with their line numbers (and lists unreadable ones);
the mapping is resolved against the file's real header; one SQL query per source types every role and lists
every failed check. What comes out, under ``processed/staged/``:

``raw/<source>.parquet``     the source as read (text, ``_row``), for quarantine records
``typed/<source>.parquet``   the canonical roles, typed (a failed value is NULL)
``violations.parquet``       every failed value: file, row, column, raw value, rule, reason, action
``unreadable.parquet``       every record that could not be read, with its line and reason
``accounting.parquet``       per source: records in the file, staged, unreadable, blank lines, encoding
``inventory.parquet``        the data inventory shown in report 01
``dataset.json`` (in ``processed/``)  the data set's name, currency, window, and which entities exist
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.canonical import conform
from helpers.canonical.engine import Engine
from helpers.core.errors import SourceError
from helpers.core.model import ENTITIES, FEEDS
from helpers.core.paths import resolve
from helpers.core.secrets import db_label
from helpers.core.text import plain_list
from helpers.sources import readers
from helpers.sources.catalog import Catalog, SourceSpec

ROW = "_row"
# A required role where almost every value fails means the mapping or the locale is wrong, not the data.
GROSS_FAILURE_SHARE = 0.9
GROSS_FAILURE_MIN_VALUES = 10


@dataclass
class SourceRead:
    """One source after step 01."""

    spec: SourceSpec
    read: readers.ReadResult
    mapping: conform.Mapping
    typed_path: Path
    violations: pd.DataFrame
    summary: dict = field(default_factory=dict)  # first/last date, missing share per role


@dataclass
class Collection:
    """Every source of a catalogue, read and conformed."""

    catalog: Catalog
    sources: dict[str, SourceRead] = field(default_factory=dict)
    window: tuple[str, str] = ("", "")

    @property
    def violations(self) -> pd.DataFrame:
        frames = [s.violations for s in self.sources.values() if len(s.violations)]
        return pd.concat(frames, ignore_index=True) if frames else empty_violations()

    @property
    def unreadable(self) -> pd.DataFrame:
        frames = [s.read.unreadable for s in self.sources.values() if len(s.read.unreadable)]
        return pd.concat(frames, ignore_index=True) if frames else readers.empty_unreadable()

    def accounting(self) -> pd.DataFrame:
        rows = [{"source": n, "entity": s.spec.entity, "file": s.read.label, **s.read.accounting.as_dict()}
                for n, s in self.sources.items()]
        return pd.DataFrame(rows)


def empty_violations() -> pd.DataFrame:
    cols = ["source", "file", ROW, "column", "role", "value", "rule", "reason", "action"]
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == ROW else "string") for c in cols})


def source_path(spec: SourceSpec, source_dir: str | Path) -> Path:
    """Where a file source is: absolute, or relative to the source folder."""
    p = Path(spec.file)
    return p if p.is_absolute() else resolve(source_dir) / p


def read_source(spec: SourceSpec, source_dir: str | Path, db_url: str, staged_path: Path,
                strict: bool = False) -> readers.ReadResult:
    """Read one source with the reader its format needs."""
    if spec.format == "sql":
        if not db_url:
            raise SourceError(spec.label, expected="a db_url parameter for a database source")
        return readers.read_sql(db_url, spec.query, spec.name, staged_path)
    path = source_path(spec, source_dir)
    if spec.format == "csv":
        return readers.read_delimited(path, spec.name, staged_path, sep=spec.read.get("sep", "auto"),
                                      quote=spec.read.get("quote", '"'), encoding=spec.locale.encoding,
                                      header_row=int(spec.read.get("header_row", 1)), strict=strict)
    if spec.format == "jsonl":
        return readers.read_jsonl(path, spec.name, staged_path, encoding=spec.locale.encoding, strict=strict)
    if spec.format == "json":
        return readers.read_json(path, spec.name, staged_path, spec.read.get("records_path", ""),
                                 spec.locale.encoding)
    if spec.format == "parquet":
        return readers.read_parquet(path, spec.name, staged_path)
    if spec.format == "excel":
        return readers.read_excel(path, spec.name, staged_path, spec.read.get("sheet", 0),
                                  int(spec.read.get("header_row", 1)))
    raise SourceError(spec.label, expected="a known format", got=spec.format)


def window_bounds(window_start: str, window_end: str) -> tuple[str | None, str | None]:
    """The window as SQL-ready text: start at 00:00, end at the last second of its day."""
    start = f"{pd.Timestamp(window_start):%Y-%m-%d} 00:00:00" if window_start else None
    end = f"{pd.Timestamp(window_end):%Y-%m-%d} 23:59:59" if window_end else None
    return start, end


EARLIEST_PLAUSIBLE = "1990-01-01"  # a derived window never starts earlier: older dates are typos


def collect(catalog: Catalog, source_dir: str | Path, db_url: str, staged_dir: str | Path, engine: Engine,
            window_start: str = "", window_end: str = "", strict: bool = False) -> Collection:
    """Read, map, type and check every source in ``catalog``.

    An empty ``window_start``/``window_end`` is taken from the transactions themselves (first and last order
    date, ignoring dates before 1990 or after today); :attr:`Collection.window` holds the window used.
    Whole-file faults and mappings that cannot work raise :class:`SourceError` naming the file and column.
    Value-level problems are collected; with ``strict=True`` the first unreadable record or failed value raises
    instead, naming file, column and row.
    """
    staged_dir = Path(staged_dir)
    d = engine.dialect
    reads, mappings = {}, {}
    for name, spec in catalog.sources.items():
        raw_path = staged_dir / "raw" / f"{name}.parquet"
        reads[name] = read_source(spec, source_dir, db_url, raw_path, strict)
        mappings[name] = conform.resolve_mapping(spec, reads[name].accounting.columns, reads[name].label)
        engine.register_parquet(f"raw__{name}", raw_path)
    if not window_start or not window_end:
        first, last = derive_window(engine, catalog, mappings)
        window_start = window_start or first
        window_end = window_end or last
    start, as_of = window_bounds(window_start, window_end)
    col = Collection(catalog, window=(window_start, window_end))
    for order, (name, spec) in enumerate(catalog.sources.items()):
        mapping = mappings[name]
        engine.create(f"checked__{name}", conform.conform_sql(d, mapping, catalog.dataset, d.q(f"raw__{name}"),
                                                               start, as_of, order))
        texts = conform.reasons(d, mapping, catalog.dataset, start, as_of)
        violations = engine.frame(conform.violations_sql(d, mapping, d.q(f"checked__{name}"), texts) +
                                  f" ORDER BY {ROW}, role")
        violations = violations.astype({ROW: "int64"})
        _check_gross_failures(engine, name, mapping, violations)
        if strict and len(violations):
            first = violations.iloc[0]
            more = len(violations) - 1
            got = f"{first['value']!r}" if pd.notna(first["value"]) else "an empty field"
            if more:
                got += f" ({more} more problem{'s' if more > 1 else ''} in this source)"
            raise SourceError(str(first["file"]), str(first["column"]), int(first[ROW]),
                              str(first["reason"]).removeprefix("expected "), got)
        engine.create(f"typed__{name}", conform.typed_sql(d, mapping, d.q(f"checked__{name}")))
        typed_path = engine.write_parquet(f"typed__{name}", staged_dir / "typed" / f"{name}.parquet")
        col.sources[name] = SourceRead(spec, reads[name], mapping, typed_path, violations,
                                       _summary(engine, name, spec, mapping))
    return col


def derive_window(engine: Engine, catalog: Catalog, mappings: dict[str, conform.Mapping]) -> tuple[str, str]:
    """First and last transaction date (plausible ones only), as ``YYYY-MM-DD``."""
    d = engine.dialect
    today = pd.Timestamp.now().normalize()
    lows, highs = [], []
    for name, spec in catalog.sources.items():
        if spec.entity not in ("orders", "order_lines") or "order_date" not in mappings[name].columns:
            continue
        engine.create(f"probe__{name}", conform.conform_sql(d, mappings[name], catalog.dataset,
                                                             d.q(f"raw__{name}"), None, None))
        v = d.q("v__order_date")
        row = engine.frame(f"SELECT min({v}) AS lo, max({v}) AS hi FROM {d.q('probe__' + name)} WHERE {v} >= "
                           f"CAST({d.lit(EARLIEST_PLAUSIBLE)} AS TIMESTAMP) AND {v} <= "
                           f"CAST({d.lit(f'{today:%Y-%m-%d} 23:59:59')} AS TIMESTAMP)").iloc[0]
        if pd.notna(row["lo"]):
            lows.append(pd.Timestamp(row["lo"]))
            highs.append(pd.Timestamp(row["hi"]))
    if not lows:
        raise SourceError("window", expected="transactions with dates to derive the analysis window from (or set "
                          "window_start and window_end)", got="no plausible order date")
    return f"{min(lows):%Y-%m-%d}", f"{max(highs):%Y-%m-%d}"


def window_warnings(col: "Collection") -> list[str]:
    """Plain sentences on a window that does not fit the data: ending long after the last transaction, or a
    partial last month."""
    out = []
    tx = [s for s in col.sources.values() if s.spec.entity in ("orders", "order_lines") and s.summary.get("last_date")
          is not None and pd.notna(s.summary.get("last_date"))]
    if not tx:
        return out
    last = max(pd.Timestamp(s.summary["last_date"]) for s in tx).normalize()
    end = pd.Timestamp(col.window[1]).normalize()
    gap = (end - last).days
    if gap > 7:
        out.append(f"The analysis window ends on {end:%d %b %Y}, {gap} days after the last transaction "
                   f"({last:%d %b %Y}): recency, churn and P(alive) would look worse than they are. Set "
                   f"window_end to {last:%Y-%m-%d} unless the data really stops early.")
    month_end = (end + pd.offsets.MonthEnd(0)).normalize()
    if end != month_end and end.day < 25:
        out.append(f"The last month is partial (data up to {end:%d %b %Y}): monthly figures for {end:%b %Y} cover "
                   f"{end.day} of {month_end.day} days and are left out of trends.")
    return out


def _check_gross_failures(engine: Engine, name: str, mapping: conform.Mapping, violations: pd.DataFrame) -> None:
    """A mapped column where almost every non-empty value fails its type means the mapping or the locale is wrong
    (dates read in the wrong order, a comma-decimal file declared with dots): stop with a clear error instead of
    quarantining the whole source."""
    if violations.empty:
        return
    d = engine.dialect
    bad = violations[violations["rule"].isin(["type", "decimal_style"])]
    for role, g in bad.groupby("role"):
        if len(g) < GROSS_FAILURE_MIN_VALUES:
            continue
        filled = int(engine.scalar(f"SELECT count({d.q('t__' + role)}) FROM {d.q('checked__' + name)}") or 0)
        if filled and len(g) >= GROSS_FAILURE_SHARE * filled:
            first = g.iloc[0]
            hint = ("check locale.date_order or the column's formats" if mapping.spec.model.roles[role].type in
                    ("datetime", "date") else "check locale.decimal and locale.thousands"
                    if mapping.spec.model.roles[role].type in ("number", "integer", "money") else
                    "check which column the role is mapped to")
            raise SourceError(mapping.label, str(first["column"]), int(first[ROW]),
                              str(first["reason"]).removeprefix("expected ") + f" ({len(g):,} of {filled:,} values "
                              f"fail, so the mapping or locale is probably wrong: {hint})", repr(first["value"]))


def _summary(engine: Engine, name: str, spec: SourceSpec, mapping: conform.Mapping) -> dict:
    d = engine.dialect
    t = d.q(f"typed__{name}")
    roles = [r for r in spec.model.roles if r in mapping.columns or r in mapping.constants]
    parts = ["count(*) AS n"] + [f"avg(CASE WHEN {d.q(r)} IS NULL THEN 1 ELSE 0 END) AS {d.q('m__' + r)}"
                                 for r in roles]
    date_role = spec.model.date_role if spec.model.date_role in roles else None
    if date_role:
        parts += [f"min({d.q(date_role)}) AS first_date", f"max({d.q(date_role)}) AS last_date"]
    row = engine.frame(f"SELECT {', '.join(parts)} FROM {t}").iloc[0]
    return {"rows": int(row["n"]), "missing": {r: float(row[f"m__{r}"]) for r in roles},
            "first_date": row.get("first_date") if date_role else None,
            "last_date": row.get("last_date") if date_role else None, "date_role": date_role}


def inventory(col: Collection, as_of: pd.Timestamp | None) -> pd.DataFrame:
    """One row per source: entity, form, records in the file and what became of them, date coverage, freshness,
    the data types it feeds, missing values and problems."""
    rows = []
    viol = col.violations
    bad_rows = viol.groupby("source")[ROW].nunique() if len(viol) else pd.Series(dtype=int)
    for name, s in col.sources.items():
        acc = s.read.accounting
        first, last = s.summary.get("first_date"), s.summary.get("last_date")
        first = pd.Timestamp(first) if first is not None and pd.notna(first) else pd.NaT
        last = pd.Timestamp(last) if last is not None and pd.notna(last) else pd.NaT
        rows.append({
            "source": name, "entity": s.spec.entity, "description": s.spec.description, "form": s.spec.format,
            "location": s.read.label, "records": acc.records, "unreadable": acc.unreadable,
            "blank_lines": acc.blank_lines, "roles_mapped": len(s.mapping.roles),
            "columns_unused": len(s.mapping.unmapped),
            "first_date": first.date() if pd.notna(first) else None,
            "last_date": last.date() if pd.notna(last) else None,
            "freshness_days": int((as_of - last).days) if as_of is not None and pd.notna(last) else pd.NA,
            "feeds": ", ".join(s.spec.feeds),
            "missing_pct": 100 * float(np.mean(list(s.summary["missing"].values()) or [0.0])),
            "rows_with_problems": int(bad_rows.get(name, 0)) + acc.unreadable,
            "encoding": acc.encoding + (f" (+{len(acc.decoded_with_fallback)} lines {acc.fallback_encoding})"
                                        if acc.decoded_with_fallback else ""),
        })
    return pd.DataFrame(rows).astype({"freshness_days": "Int64"})


def entity_coverage(catalog: Catalog) -> pd.DataFrame:
    """Every canonical entity: whether the data has it, from which sources, and what its absence means."""
    consequence = {
        "customers": "customer profiles (age, region, consent) come from transactions only; audience exports "
                     "need consent information and are withheld",
        "orders": "orders are built from the order lines",
        "order_lines": "product and category analyses are skipped",
        "returns": "refunds come only from reversal lines or order statuses",
        "products": "categories come from the order lines, if they carry them",
        "fx_rates": "every amount must already be in the reporting currency",
        "events": "browsing behaviour is not part of the customer view or the personas",
        "campaigns": "e-mail campaigns and their A/B tests are not analysed",
        "sends": "e-mail engagement is not part of the customer view",
        "feedback": "sentiment, NPS and the follow-up queue are skipped",
        "assignments": "experiments come from e-mail campaigns, if any",
    }
    rows = []
    for e in ENTITIES.values():
        sources = [s.name for s in catalog.by_entity(e.name)]
        rows.append({"entity": e.name, "present": bool(sources), "sources": ", ".join(sources),
                     "meaning": e.description, "if_absent": "" if sources else consequence.get(e.name, "")})
    return pd.DataFrame(rows)


def dataset_info(col: Collection, source_dir: str | Path, db_url: str, sample: bool) -> dict:
    """What later steps need to know about the data: names, currency, window, entities and sources."""
    cat = col.catalog
    text = Path(cat.path).read_bytes() if cat.path and Path(cat.path).exists() else b""
    return {
        "name": cat.dataset.name, "currency": cat.dataset.currency, "timezone": cat.dataset.timezone,
        "description": cat.dataset.description, "catalog": cat.path,
        "catalog_sha256": hashlib.sha256(text).hexdigest()[:16], "sample": bool(sample),
        "window_start": col.window[0], "window_end": col.window[1], "source_dir": str(source_dir),
        "database": db_label(db_url) if db_url else "",
        "entities": {e: [s.name for s in cat.by_entity(e)] for e in cat.entities},
        "sources": {n: {"entity": s.spec.entity, "file": s.read.label, "roles": s.mapping.roles,
                        "absent_roles": s.mapping.absent} for n, s in col.sources.items()},
    }


def stage(col: Collection, staged_dir: str | Path, inventory_df: pd.DataFrame, info: dict,
          processed_dir: str | Path) -> list[Path]:
    """Write the problem tables, the accounting, the inventory and ``dataset.json``."""
    from helpers.core.tables import save_table, write_json

    staged_dir = Path(staged_dir)
    written = [save_table(col.violations, staged_dir / "violations.parquet"),
               save_table(col.unreadable, staged_dir / "unreadable.parquet"),
               save_table(col.accounting(), staged_dir / "accounting.parquet"),
               save_table(inventory_df.astype({"first_date": "string", "last_date": "string"}),
                          staged_dir / "inventory.parquet"),
               write_json(info, Path(processed_dir) / "dataset.json")]
    return written


def load_dataset_info(processed_dir: str | Path) -> dict:
    """``dataset.json`` written by step 01, with a clear error when step 01 has not run."""
    path = Path(processed_dir) / "dataset.json"
    if not path.exists():
        raise SourceError(path.name, expected="the data set description written by step 01",
                          got=f"nothing at {path}; run notebook 01 first")
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# Views and charts for report 01
# ---------------------------------------------------------------------------


def feeds_matrix(catalog: Catalog) -> pd.DataFrame:
    """Sources × the four data types, True where the source feeds that type."""
    return pd.DataFrame({t: [t in s.feeds for s in catalog.sources.values()] for t in FEEDS},
                        index=pd.Index(list(catalog.sources), name="source"))


def missing_matrix(col: Collection) -> pd.DataFrame:
    """Long table of the share of missing values per source and role."""
    rows = [{"source": n, "column": r, "missing_share": share}
            for n, s in col.sources.items() for r, share in s.summary["missing"].items()]
    return pd.DataFrame(rows, columns=["source", "column", "missing_share"])


def monthly_volume(engine: Engine, col: Collection) -> pd.DataFrame:
    """Rows per calendar month per source (sources with a date), months as rows."""
    d = engine.dialect
    series = {}
    for name, s in col.sources.items():
        role = s.summary.get("date_role")
        if not role:
            continue
        df = engine.frame(f"SELECT {d.month_start(d.q(role))} AS month, count(*) AS n FROM "
                          f"{d.q('typed__' + name)} WHERE {d.q(role)} IS NOT NULL GROUP BY 1 ORDER BY 1")
        if len(df):
            series[name] = df.set_index(pd.to_datetime(df["month"]))["n"]
    if not series:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="month"))
    out = pd.DataFrame(series).fillna(0).astype(int).sort_index()
    out.index.name = "month"
    return out


def plot_monthly_volume(volume: pd.DataFrame, title: str = "Records per month by source"):
    """Log-scale line chart of monthly record counts, one line per source."""
    from helpers.core.plotting import categorical, label, thousands

    fig, ax = plt.subplots(figsize=(10, 4.6))
    for (name, colour), marker in zip(zip(volume.columns, categorical(len(volume.columns))), "osD^v<>phX*"):
        ax.plot(volume.index, volume[name].replace(0, np.nan), marker=marker, ms=3.5, lw=1.6, label=name,
                color=colour)
    ax.set_yscale("log")
    label(ax, title, "Month", "Records per month (log scale)")
    thousands(ax)
    ax.legend(ncol=1, fontsize=10, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_missing(missing: pd.DataFrame, top: int = 25):
    """Horizontal bars of the share of missing values for the least complete fields."""
    from helpers.core.plotting import PALETTE, label

    m = missing[missing["missing_share"] > 0].copy()
    m["field"] = m["source"] + " · " + m["column"]
    m = m.sort_values("missing_share", ascending=False).head(top).sort_values("missing_share")
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.3 * len(m) + 1)))
    if m.empty:
        ax.text(0.5, 0.5, "No missing values", ha="center", va="center")
        ax.set_axis_off()
        return fig
    ax.barh(m["field"], m["missing_share"] * 100, color=PALETTE[0])
    label(ax, "Missing values by field", "Share of rows with no value (%)", "")
    return fig


def plot_feeds(feeds: pd.DataFrame):
    """Which source feeds which of the four data types (a tick where it does)."""
    import seaborn as sns

    from helpers.core.plotting import label

    fig, ax = plt.subplots(figsize=(7, 0.4 * len(feeds) + 1.3))
    sns.heatmap(feeds.astype(int), cbar=False, cmap=sns.light_palette("#0072B2", as_cmap=True), linewidths=1,
                linecolor="white", ax=ax, annot=feeds.replace({True: "✓", False: ""}).to_numpy(), fmt="",
                vmin=0, vmax=1)
    label(ax, "Which source feeds which data type", "Data type", "Source")
    ax.tick_params(axis="x", rotation=0)
    ax.tick_params(axis="y", rotation=0)
    return fig


def volume_caption(volume: pd.DataFrame, transactions: list[str]) -> str:
    """One sentence on the largest source and how transactions developed over the window."""
    if volume.empty:
        return "No source carries dates, so activity over time cannot be shown."
    totals = volume.sum().sort_values(ascending=False)
    top = totals.index[0]
    tx = next((s for s in transactions if s in volume), top)
    series = volume[tx]
    if len(series) >= 6:
        first_q, last_q = series.iloc[:3].mean(), series.iloc[-4:-1].mean()
        trend = "grew" if last_q > first_q * 1.1 else ("fell" if last_q < first_q * 0.9 else "held steady")
        change = (f"; monthly {tx.replace('_', ' ')} records {trend} from about {first_q:,.0f} in the first three "
                  f"months to about {last_q:,.0f} in the three months before the last")
    else:
        change = ""
    return (f"{top.replace('_', ' ').capitalize()} is the largest source ({int(totals.iloc[0]):,} records over "
            f"{len(volume)} months){change}.")


def missing_caption(missing: pd.DataFrame) -> str:
    """One sentence naming the least complete fields."""
    m = missing[missing["missing_share"] > 0].sort_values("missing_share", ascending=False)
    if m.empty:
        return "Every mapped field of every source is complete."
    names = ", ".join(f"{r.source} · {r.column} ({r.missing_share:.0%})" for r in m.head(3).itertuples())
    return f"{len(m)} of {len(missing)} mapped fields have gaps; the largest are {names}."


def feeds_caption(feeds: pd.DataFrame) -> str:
    """One sentence on coverage of the four data types."""
    counts = feeds.sum()
    missing = [t for t, n in counts.items() if n == 0]
    parts = ", ".join(f"{int(n)} {t}" for t, n in counts.items() if n)
    if missing:
        return (f"The sources feed {parts} data; there is no {plain_list(missing, 'or')} data, so analyses "
                "that need it are skipped and say so.")
    return f"Every data type is covered by at least one source ({parts}), so a full 360° view can be assembled."


def hide_pii_examples(problems: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Replace example values of personal-data roles with a placeholder for stakeholder reports."""
    out = problems.copy()
    if out.empty:
        return out
    pii = [catalog.sources[s].is_pii(r) if s in catalog.sources else False
           for s, r in zip(out["source"], out["role"])]
    out.loc[pii, "example_value"] = "(personal data hidden)"
    return out


def summarise_violations(violations: pd.DataFrame) -> pd.DataFrame:
    """Count violations per source, column and rule, with one example row and value."""
    cols = ["source", "column", "role", "rule", "rows", "example_row", "example_value", "reason", "action"]
    if violations.empty:
        return pd.DataFrame(columns=cols)
    g = violations.groupby(["source", "column", "role", "rule"], sort=True)
    out = g.agg(rows=(ROW, "size"), example_row=(ROW, "first"), example_value=("value", "first"),
                reason=("reason", "first"), action=("action", "first")).reset_index()
    return out.sort_values(["source", "rows"], ascending=[True, False], kind="stable")[cols].reset_index(drop=True)


def glance_kpis(col: Collection, inv: pd.DataFrame, volume: pd.DataFrame) -> list[dict]:
    """The headline figures of report 01."""
    entities = col.catalog.entities
    return [{"label": "sources loaded", "value": len(col.sources)},
            {"label": "canonical entities present", "value": f"{len(entities)} of {len(ENTITIES)}"},
            {"label": "months of history", "value": len(volume)},
            {"label": "records with a problem", "value": int(inv["rows_with_problems"].sum())}]


def glance_sentence(col: Collection, inv: pd.DataFrame) -> str:
    """Two sentences: what the data set is and what it lacks."""
    cat = col.catalog
    missing = [e for e in ENTITIES if e not in cat.entities and e not in ("fx_rates", "assignments")]
    start, end = col.window
    text = (f"**{cat.dataset.name}**: {len(col.sources)} source(s) feeding {plain_list(cat.entities)}, money in "
            f"{cat.dataset.currency}, analysed from {pd.Timestamp(start):%d %b %Y} to {pd.Timestamp(end):%d %b %Y}.")
    if missing:
        text += f" The data has no {plain_list(missing, 'or')}; the steps that need them say so and skip them."
    return text


def problems_sentence(problems: pd.DataFrame, accounting: pd.DataFrame) -> str:
    """One sentence on the checks: values that break a rule and records that could not be read, counted once."""
    n_values = int(problems["rows"].sum()) if len(problems) else 0
    n_sources = problems["source"].nunique() if len(problems) else 0
    n_unread = int(accounting["unreadable"].sum())
    if not n_values and not n_unread:
        return f"Every one of the {int(accounting['records'].sum()):,} records was read, and every value matches its rule."
    parts = []
    if n_values:
        parts.append(f"**{n_values:,} value(s) break a rule** in {n_sources} source(s)")
    if n_unread:
        parts.append(f"**{n_unread:,} record(s) could not be read at all** "
                     f"({plain_list(accounting.loc[accounting['unreadable'] > 0, 'source'])})")
    return (plain_list(parts) + f", out of {int(accounting['records'].sum()):,} records. They are listed below; step 02 "
            "quarantines the records that cannot be used and keeps the rest.")


def unreadable_summary(unreadable: pd.DataFrame) -> pd.DataFrame:
    """Unreadable records without their raw text (it may hold personal data): source, file, line, reason."""
    if unreadable.empty:
        return pd.DataFrame(columns=["source", "file", "line", "reason"])
    return unreadable.rename(columns={ROW: "line"})[["source", "file", "line", "reason"]]


def encoding_notes(accounting: pd.DataFrame, col: Collection) -> list[str]:
    """Sentences on files with lines in a second encoding (mixed exports) and on blank lines."""
    out = []
    for name, s in col.sources.items():
        acc = s.read.accounting
        if acc.decoded_with_fallback:
            lines = acc.decoded_with_fallback
            shown = ", ".join(str(n) for n in lines[:8]) + (" …" if len(lines) > 8 else "")
            out.append(f"{s.read.label} is {acc.encoding}, but {len(lines):,} line(s) are not ({shown}); they were "
                       f"read as {acc.fallback_encoding} (Windows Western European), the usual second encoding of "
                       "mixed exports. Check them in the quarantine file if accents look wrong.")
        if acc.blank_lines:
            out.append(f"{s.read.label} has {acc.blank_lines:,} blank line(s); they hold no record and are not "
                       "counted.")
    return out


def step_metrics(col: Collection, inv: pd.DataFrame, problems: pd.DataFrame, volume: pd.DataFrame) -> dict:
    """What report 01 hands to the summary and the index."""
    acc = col.accounting()
    return {"sources": len(col.sources), "records_in": int(acc["records"].sum()),
            "unreadable_records": int(acc["unreadable"].sum()),
            "problem_values": int(problems["rows"].sum()) if len(problems) else 0,
            "months": len(volume), "window_start": col.window[0], "window_end": col.window[1],
            "entities": col.catalog.entities, "dataset": col.catalog.dataset.name,
            "currency": col.catalog.dataset.currency}


def kpi_values(col: Collection) -> dict:
    """The registry KPIs report 01 owns (see :mod:`helpers.core.kpis`)."""
    return {"records_in": int(col.accounting()["records"].sum())}
