"""Per-customer summaries of a transaction log, as set-based SQL that every engine runs.

The BTYD summary (frequency, recency, T and mean repeat value per customer) is the input of every CLV model; the
RFM summary, the purchase-day history behind the lifecycle stages, the gaps between purchase days and the monthly
acquisition cohorts feed segmentation and the CLV page. Each is defined once here, as SQL written through a
:class:`~helpers.canonical.engine.Dialect`, and runs on DuckDB over a pandas frame (zero-copy), over Parquet files
of any size (DuckDB streams them), or on Spark. pandas never holds the transaction log grouped by customer and day;
it gets one row per customer (or per cohort and month) back.
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
    out = run_summary(transactions, [customer, date, value],
                      lambda d, source: btyd_summary_sql(d, source, customer, date, value, end, unit), engine)
    out = out.set_index("customer")
    out.index.name = customer
    out["frequency"] = out["frequency"].astype("int64")
    return out[SUMMARY_COLUMNS].astype({c: float for c in SUMMARY_COLUMNS[1:]})


def run_summary(transactions: pd.DataFrame | str | Path, columns: list[str | None], sql_of, engine: Engine | None = None
                ) -> pd.DataFrame:
    """Run ``sql_of(dialect, source_table)`` over ``transactions`` (a frame, registered without a copy, or a
    Parquet file or glob) on ``engine`` (a fresh embedded DuckDB by default) and return the result."""
    own = engine is None
    engine = engine or DuckDBEngine()
    try:
        if isinstance(transactions, pd.DataFrame):
            engine.register_frame("_summary_input", transactions[[c for c in columns if c]], copy=False)
        else:
            engine.register_parquet("_summary_input", transactions)
        return engine.frame(sql_of(engine.dialect, "_summary_input"))
    finally:
        if own:
            engine.close()


def _day(d: Dialect, day: pd.Timestamp) -> str:
    return f"CAST({d.lit(pd.Timestamp(day).strftime('%Y-%m-%d'))} AS DATE)"


def rfm_summary_sql(d: Dialect, source: str, customer: str, date: str, value: str, day: pd.Timestamp) -> str:
    """SQL for one row per customer with purchases on or before ``day``: ``first_order`` and ``last_order``
    (timestamps), ``frequency`` (purchases), ``monetary`` (their summed value, exact) and ``recency_days`` (calendar
    days from the last purchase's day to ``day``)."""
    q = d.q
    return (
        f"SELECT {q(customer)} AS customer, min({q(date)}) AS first_order, max({q(date)}) AS last_order, "
        f"count(*) AS frequency, CAST(coalesce(sum(CAST({q(value)} AS {EXACT_MONEY})), 0) AS DOUBLE) AS monetary, "
        f"{d.date_diff_days(f'CAST(max({q(date)}) AS DATE)', _day(d, day))} AS recency_days "
        f"FROM {q(source)} WHERE {q(customer)} IS NOT NULL AND {q(date)} IS NOT NULL "
        f"AND CAST({q(date)} AS DATE) <= {_day(d, day)} GROUP BY 1 ORDER BY 1")


def _purchase_days(d: Dialect, source: str, customer: str, date: str, where: str) -> str:
    """Distinct purchase days per customer with the previous purchase day and the day's rank from the last."""
    q = d.q
    return (
        f"WITH days AS (SELECT DISTINCT {q(customer)} AS customer, CAST({q(date)} AS DATE) AS day FROM {q(source)} "
        f"WHERE {q(customer)} IS NOT NULL AND {q(date)} IS NOT NULL AND {where}), "
        "ranked AS (SELECT customer, day, lag(day) OVER (PARTITION BY customer ORDER BY day) AS previous_day, "
        "row_number() OVER (PARTITION BY customer ORDER BY day DESC) AS from_last FROM days) ")


def purchase_history_sql(d: Dialect, source: str, customer: str, date: str, day: pd.Timestamp) -> str:
    """SQL for one row per customer with purchase days on or before ``day``: ``first_day``, ``last_day``,
    ``n_days`` (distinct purchase days) and ``last_gap`` (days between the last two purchase days; NULL with one)."""
    q = d.q
    gap = d.date_diff_days("previous_day", "day")
    return (
        _purchase_days(d, source, customer, date, f"CAST({q(date)} AS DATE) <= {_day(d, day)}")
        + f"SELECT customer, min(day) AS first_day, max(day) AS last_day, count(*) AS n_days, "
        f"max(CASE WHEN from_last = 1 THEN {gap} END) AS last_gap FROM ranked GROUP BY 1 ORDER BY 1")


def purchase_gaps_sql(d: Dialect, source: str, customer: str, date: str, until: pd.Timestamp | None) -> str:
    """SQL for the days between each customer's consecutive purchase days (purchases up to the instant
    ``until``), one row per gap, ordered by customer and day."""
    q = d.q
    where = "TRUE" if until is None else \
        f"{q(date)} <= CAST({d.lit(pd.Timestamp(until).strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP)"
    return (_purchase_days(d, source, customer, date, where)
            + f"SELECT {d.date_diff_days('previous_day', 'day')} AS gap_days FROM ranked "
            "WHERE previous_day IS NOT NULL ORDER BY customer, day")


def cohort_sql(d: Dialect, source: str, customer: str, date: str, value: str, max_periods: int) -> str:
    """SQL for monthly acquisition cohorts: per cohort (the month index ``year * 12 + month - 1`` of the customer's
    first transaction) and month since it (``period`` < ``max_periods``), the customers buying (``active``) and the
    value they spent (exact sum). Period 0 holds every customer of the cohort, so its ``active`` is the cohort size."""
    q = d.q
    month = f"(year({q(date)}) * 12 + month({q(date)}) - 1)"
    return (
        f"WITH tx AS (SELECT {q(customer)} AS customer, {month} AS month_index, {q(value)} AS value "
        f"FROM {q(source)} WHERE {q(customer)} IS NOT NULL AND {q(date)} IS NOT NULL), "
        "first AS (SELECT customer, min(month_index) AS cohort FROM tx GROUP BY 1) "
        "SELECT f.cohort, tx.month_index - f.cohort AS period, count(DISTINCT tx.customer) AS active, "
        f"CAST(coalesce(sum(CAST(tx.value AS {EXACT_MONEY})), 0) AS DOUBLE) AS value "
        f"FROM tx JOIN first f ON tx.customer = f.customer WHERE tx.month_index - f.cohort < {int(max_periods)} "
        "GROUP BY 1, 2 ORDER BY 1, 2")
