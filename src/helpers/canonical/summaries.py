"""Per-customer summaries of a transaction log, as set-based SQL that every engine runs.

The BTYD summary (frequency, recency, T and mean repeat value per customer) is the input of every CLV model. It is
defined once here, as SQL written through a :class:`~helpers.canonical.engine.Dialect`, and runs on DuckDB over a
pandas frame (zero-copy), over Parquet files of any size (DuckDB streams them), or on Spark. pandas never holds
the transaction log grouped by customer and day.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.canonical.engine import Dialect, DuckDBEngine, Engine

UNITS = {"D": 1.0, "W": 7.0}
SUMMARY_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
EXACT_MONEY = "DECIMAL(38, 6)"  # as Dialect.exact_sum: exact to a millionth, any row order gives the same sum


def btyd_summary_sql(d: Dialect, source: str, customer: str, date: str, value: str | None, end: pd.Timestamp,
                     unit: str = "D") -> str:
    """SQL for one row per customer with ``frequency``, ``recency``, ``T`` and ``monetary_value``.

    Rules (the BTYD literature's): transactions after ``end`` are ignored; several transactions of a customer on
    one day are one purchase (their values summed); ``frequency`` counts repeat purchase days; ``recency`` is the
    time from the first to the last purchase and ``T`` from the first purchase to ``end``'s day, in days
    (``unit='D'``) or weeks (``'W'``); ``monetary_value`` is the mean value of the repeat purchase days (0 for a
    customer without one). Without a ``value`` column every transaction is worth 1. Money is summed exactly
    (as :meth:`Dialect.exact_sum` does), so the result does not depend on the order the engine reads the rows in.

    >>> "arg_min(value, day)" in btyd_summary_sql(Dialect("duckdb"), "tx", "c", "d", None, pd.Timestamp("2025-01-31"))
    True
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be 'D' (days) or 'W' (weeks), got {unit!r}")
    end = pd.Timestamp(end)
    q = d.q
    end_ts = d.lit(end.strftime("%Y-%m-%d %H:%M:%S.%f"))
    end_day = d.lit(end.strftime("%Y-%m-%d"))
    # money stays DECIMAL through both aggregations and becomes a double only at the end: a double sum's last
    # bits depend on the order the threads combine their parts in
    amount = f"sum(CAST({q(value)} AS {EXACT_MONEY}))" if value else f"CAST(count(*) AS {EXACT_MONEY})"
    scale = UNITS[unit]
    first, last = "min(day)", "max(day)"
    return (
        f"WITH daily AS (SELECT {q(customer)} AS customer, CAST({q(date)} AS DATE) AS day, {amount} AS value "
        f"FROM {q(source)} WHERE {q(date)} IS NOT NULL AND {q(customer)} IS NOT NULL "
        f"AND {q(date)} <= CAST({end_ts} AS TIMESTAMP) GROUP BY 1, 2) "
        "SELECT customer, count(*) - 1 AS frequency, "
        f"{d.date_diff_days(first, last)} / {scale} AS recency, "
        f"{d.date_diff_days(first, f'CAST({end_day} AS DATE)')} / {scale} AS T, "
        f"CASE WHEN count(*) > 1 THEN CAST(sum(value) - {d.arg_min('value', 'day')} AS DOUBLE) / (count(*) - 1) "
        "ELSE 0.0 END "
        "AS monetary_value FROM daily GROUP BY customer ORDER BY customer")


def btyd_summary(transactions: pd.DataFrame | str | Path, customer: str, date: str, value: str | None,
                 end: pd.Timestamp, unit: str = "D", engine: Engine | None = None) -> pd.DataFrame:
    """The BTYD summary of a transaction log given as a pandas frame or a Parquet file (or glob), indexed by
    customer (sorted), with ``frequency`` as an integer. Runs on ``engine`` (a fresh embedded DuckDB by
    default); see :func:`btyd_summary_sql` for the rules.

    >>> tx = pd.DataFrame({"c": ["a", "a", "a", "b"], "v": [10.0, 5.0, 30.0, 7.0],
    ...                    "d": pd.to_datetime(["2025-01-01 09:00", "2025-01-01 17:00", "2025-01-08 00:00", "2025-01-10 00:00"])})
    >>> btyd_summary(tx, "c", "d", "v", pd.Timestamp("2025-01-15")).to_dict("index")["a"]
    {'frequency': 1, 'recency': 7.0, 'T': 14.0, 'monetary_value': 30.0}
    """
    own = engine is None
    engine = engine or DuckDBEngine()
    try:
        if isinstance(transactions, pd.DataFrame):
            cols = [c for c in (customer, date, value) if c]
            engine.register_frame("_btyd_input", transactions[cols], copy=False)
        else:
            engine.register_parquet("_btyd_input", transactions)
        out = engine.frame(btyd_summary_sql(engine.dialect, "_btyd_input", customer, date, value, end, unit))
    finally:
        if own:
            engine.close()
    out = out.set_index("customer")
    out.index.name = customer
    out["frequency"] = out["frequency"].astype("int64")
    return out[SUMMARY_COLUMNS].astype({c: float for c in SUMMARY_COLUMNS[1:]})
