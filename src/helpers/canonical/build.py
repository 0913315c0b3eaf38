"""Step 02 end to end: clean canonical tables, valued transactions, resolved identities and the 360° table.

:func:`build_canonical` reads what step 01 staged and writes, under ``processed/``:

``clean/<table>.parquet``   customers, orders, order_lines, refunds, products, fx_rates, events, web_sessions,
                            campaigns, sends, feedback, assignments: whichever the data has, each with
                            ``customer_key``
``customer_360.parquet``    one row per customer
``quarantine.parquet``      every rejected record with its reason and raw content
``row_balance.parquet``     per source: records in = kept + duplicates merged + quarantined + unreadable
``conflicts.parquet``       key groups with more than one record and how they were settled
``identity_map.parquet``, ``identity_links.parquet``
``workbench.duckdb``        the same tables, for SQL
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from helpers.canonical import cleaning, customer360, identity, matching, transactions
from helpers.canonical.collection import load_dataset_info
from helpers.canonical.engine import Engine, engine_memory_limit
from helpers.core.paths import DataLayout
from helpers.core.tables import load_table, save_table
from helpers.sources.catalog import load_catalog

ROW = "_row"
OUTPUT_TABLES = {  # file name in processed/clean -> engine table
    "customers": "keyed__customers", "orders": "keyed__orders", "order_lines": "keyed__lines",
    "refunds": "keyed__refunds", "products": "clean__products", "fx_rates": "clean__fx_rates",
    "events": "keyed__events", "web_sessions": "web_sessions", "campaigns": "clean__campaigns",
    "sends": "keyed__sends", "feedback": "keyed__feedback", "assignments": "keyed__assignments",
}


@dataclass
class Built:
    """Everything step 02 shows in its report."""

    info: dict
    balance: pd.DataFrame
    quarantine: pd.DataFrame
    conflicts: pd.DataFrame
    links: pd.DataFrame
    resolved: pd.DataFrame
    c360: pd.DataFrame
    money: dict
    fixes: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    derived_orders: bool = False
    matching: matching.Matching | None = None

    @property
    def totals(self) -> dict[str, int]:
        cols = ["records_in", "kept", "duplicates_merged", "exact_duplicates", "key_duplicates", "quarantined",
                "unreadable", "blank_lines"]
        return {c: int(self.balance[c].sum()) for c in cols}


def build_canonical(layout: DataLayout, engine: Engine, as_of: pd.Timestamp, identity_matching: str = "probabilistic",
                    match_threshold: float = matching.MATCH_THRESHOLD) -> Built:
    """Run cleaning, valuation, identity resolution and the 360° table; write every output.

    ``identity_matching``: ``exact`` links accounts by the exact rules only; ``probabilistic`` (the default) adds
    the pairs of accounts Splink scores at or above ``match_threshold`` (see :mod:`helpers.canonical.matching`).
    """
    if identity_matching not in ("exact", "probabilistic"):
        raise ValueError(f"identity_matching must be 'exact' or 'probabilistic', got {identity_matching!r}")
    info = load_dataset_info(layout.processed)
    catalog = load_catalog(info["catalog"])
    staged = layout.staged
    violations = load_table(staged / "violations.parquet", "01_collection")
    unreadable = load_table(staged / "unreadable.parquet", "01_collection")
    accounting = load_table(staged / "accounting.parquet", "01_collection")
    labels = dict(zip(accounting["source"], accounting["file"]))
    for name in catalog.sources:
        engine.register_parquet(f"raw__{name}", staged / "raw" / f"{name}.parquet")
    state = cleaning.start(engine, catalog, labels, violations)
    cleaning.clean_all(engine, state, {n: str(staged / "typed" / f"{n}.parquet") for n in catalog.sources})
    tx = transactions.build(engine, catalog)
    for p in tx.problems:
        state.add_problems(p)
    if engine.exists("clean__returns"):
        # Refunds against orders that were quarantined or do not exist: by the references rule.
        cleaning.enforce_references(engine, state, cleaning.ENTITIES["returns"], {"orders": "tx_orders"})
        transactions.build(engine, catalog)  # rebuild refunds and orders without the rejected returns
    links = identity.build_links(engine)
    nodes = identity.record_nodes(engine)
    resolved = identity.resolve(links, nodes)
    matched = None
    if identity_matching == "probabilistic":
        records = matching.account_records(engine, identity.node_keys(resolved, "crm"))
        matched = matching.match_accounts(records, match_threshold, spark=getattr(engine, "spark", None),
                                          duckdb_connection=getattr(engine, "con", None))
        if len(matched.links):
            links = pd.concat([links, matched.links], ignore_index=True)
            resolved = identity.resolve(links, nodes)
    identity.attach_keys(engine, resolved)
    c360 = customer360.build(engine, as_of)
    quarantine = cleaning.quarantine_table(engine, state, unreadable)
    final = {"customers": "clean__customers", "products": "clean__products", "fx_rates": "clean__fx_rates",
             "campaigns": "clean__campaigns", "events": "clean__events", "sends": "clean__sends",
             "feedback": "clean__feedback", "assignments": "clean__assignments", "order_lines": "tx_lines",
             "returns": "tx_refunds"}
    if not tx.derived_orders:
        final["orders"] = "tx_orders" if engine.exists("clean__order_lines") else "tx_lines"
    if not engine.exists("clean__order_lines"):
        final.pop("order_lines")
    bal = cleaning.balance(engine, state, accounting, quarantine, final)
    fixes = violations[violations["action"] == "set_missing"] if len(violations) else violations
    built = Built(info, bal, quarantine, cleaning.conflicts_table(state), links, resolved, c360,
                  transactions.money_summary(engine), fixes, notes=list(tx.notes),
                  derived_orders=tx.derived_orders, matching=matched)
    built.written = write_outputs(engine, layout, built)
    return built


def write_outputs(engine: Engine, layout: DataLayout, built: Built) -> list[Path]:
    """Write the clean tables, the 360° table and the accounting tables (and the DuckDB file for SQL users)."""
    clean_dir = layout.processed / "clean"
    clean_dir.mkdir(parents=True, exist_ok=True)
    for old in clean_dir.glob("*.parquet"):
        old.unlink()  # a table the data no longer has must not linger from an earlier run
    written = []
    for name, table in OUTPUT_TABLES.items():
        if engine.exists(table):
            written.append(engine.write_parquet(table, clean_dir / f"{name}.parquet"))
    p = layout.processed
    written += [save_table(built.c360, p / "customer_360.parquet"), save_table(built.quarantine, p / "quarantine.parquet"),
                save_table(built.balance, p / "row_balance.parquet"), save_table(built.conflicts, p / "conflicts.parquet"),
                save_table(built.resolved, p / "identity_map.parquet"),
                save_table(built.links, p / "identity_links.parquet")]
    from helpers.core.tables import write_duckdb

    tables = {"customer_360": built.c360}
    for path in written:
        if path.parent == clean_dir and path.stem != "customers":
            tables[path.stem] = path
    written.append(write_duckdb(tables, p / "workbench.duckdb", engine_memory_limit()))
    return written
