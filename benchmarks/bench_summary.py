"""The per-customer BTYD summary of a large transaction log: the workbench against one hand-written DuckDB query and
against pandas, side by side in one run.

* **workbench**: ``helpers.canonical.summaries.btyd_summary`` over the Parquet file (the SQL definition that 04
  uses, with exact money sums).
* **hand-written DuckDB**: the same aggregation as one plain query (double sums), written here independently.
* **pandas**: read the Parquet file, then the groupby the workbench used before its summaries moved into the
  engine (kept here as the naive peer).

Each case runs in its own process, so its peak memory (``ru_maxrss``) is its own. The three outputs are compared
(frequency, recency and T exactly; monetary value to 1e-9 relative).

Targets (issue #16): workbench time <= 1.2x the hand-written query's, and workbench memory <= 0.5x pandas'.
Writes ``benchmarks/results/summary.json`` and ``summary.md``.

Run: ``python benchmarks/bench_summary.py [n_transactions]`` (default 10,000,000).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results  # noqa: E402

END = "2025-12-31"
ROUNDS = 3  # each case runs this many times in fresh processes; the table shows the median time

CASE = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
path, which, out, end = sys.argv[1], sys.argv[2], sys.argv[3], pd.Timestamp(sys.argv[4])
start = time.perf_counter()
if which == "workbench":
    from helpers.canonical.summaries import btyd_summary
    s = btyd_summary(path, "customer", "date", "value", end)
elif which == "duckdb":
    import duckdb
    s = duckdb.sql(f'''
        WITH daily AS (SELECT customer, CAST(date AS DATE) AS day, sum(value) AS value FROM read_parquet('{path}')
                       WHERE date <= TIMESTAMP '{end}' GROUP BY ALL)
        SELECT customer, count(*) - 1 AS frequency, date_diff('day', min(day), max(day)) AS recency,
               date_diff('day', min(day), DATE '{end:%Y-%m-%d}') AS T,
               CASE WHEN count(*) > 1 THEN (sum(value) - arg_min(value, day)) / (count(*) - 1) ELSE 0 END
                 AS monetary_value
        FROM daily GROUP BY customer ORDER BY customer''').df().set_index("customer")
else:
    t = pd.read_parquet(path)
    t = t[t["date"] <= end]
    daily = t.assign(_day=t["date"].dt.normalize()).groupby(["customer", "_day"], sort=True)["value"].sum()
    daily = daily.rename("value").reset_index()
    g = daily.groupby("customer")
    first, last = g["_day"].min(), g["_day"].max()
    s = pd.DataFrame({"frequency": g.size() - 1, "recency": (last - first).dt.days,
                      "T": (end.normalize() - first).dt.days})
    first_value = daily.sort_values("_day").groupby("customer")["value"].first()
    s["monetary_value"] = np.where(s["frequency"] > 0,
                                   (g["value"].sum() - first_value) / s["frequency"].replace(0, np.nan), 0.0)
seconds = time.perf_counter() - start
s.astype(float).to_parquet(out)
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_log(n: int, path: Path) -> int:
    """``n`` transactions of n/10 customers over two years, with string ids as exports carry them, written in
    chunks so the generator never holds the whole log."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    customers = max(n // 10, 1)
    rng = np.random.default_rng(16)
    writer = None
    chunk = 1_000_000
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        ids = rng.zipf(1.3, m) % customers  # a few heavy buyers, many occasional ones
        table = pa.table({
            "customer": pa.array([f"C{i:08d}" for i in ids]),
            "date": pa.array(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 2 * 365 * 86400, m),
                                                                           unit="s")),
            "value": pa.array(np.round(rng.gamma(2.0, 25.0, m), 2)),
        })
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return customers


def run_case(path: Path, which: str, out: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", CASE, str(path), which, str(out), END], capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    tmp = Path(tempfile.mkdtemp())
    log = tmp / "transactions.parquet"
    make_log(n, log)
    runs: dict[str, list[dict]] = {k: [] for k in ("workbench", "duckdb", "pandas")}
    outputs = {k: tmp / f"{k}.parquet" for k in runs}
    for round_ in range(ROUNDS):  # interleaved, so a slow moment of the machine hits every case alike
        for which in runs:
            runs[which].append(run_case(log, which, outputs[which]))
            print(round_ + 1, which, runs[which][-1], flush=True)
    results = {k: {"seconds": float(np.median([r["seconds"] for r in v])),
                   "peak_mib": float(max(r["peak_mib"] for r in v))} for k, v in runs.items()}
    frames = {k: pd.read_parquet(v) for k, v in outputs.items()}
    ref = frames["pandas"]
    same = {}
    for k, f in frames.items():
        f = f.reindex(ref.index)
        exact = all(np.array_equal(f[c].to_numpy(), ref[c].to_numpy()) for c in ["frequency", "recency", "T"])
        money = np.allclose(f["monetary_value"], ref["monetary_value"], rtol=1e-9, atol=1e-9)
        same[k] = exact and money and len(frames[k]) == len(ref)
    wb, dd, pdx = results["workbench"], results["duckdb"], results["pandas"]
    rows = [{"implementation": name, "seconds": r["seconds"], "peak memory MiB": r["peak_mib"],
             "time / hand-written DuckDB": r["seconds"] / dd["seconds"],
             "memory / pandas": r["peak_mib"] / pdx["peak_mib"], "customers": len(frames[key]),
             "same output as pandas": "yes" if same[key] else "NO"}
            for name, key, r in [("workbench (btyd_summary over Parquet)", "workbench", wb),
                                 ("hand-written DuckDB query", "duckdb", dd), ("pandas groupby", "pandas", pdx)]]
    ok_time = wb["seconds"] <= 1.2 * dd["seconds"]
    ok_mem = wb["peak_mib"] <= 0.5 * pdx["peak_mib"]
    notes = [f"Median of {ROUNDS} interleaved runs per case, each in a fresh process (imports included).",
             f"{n:,} transactions (string customer ids, timestamps, money with cents) in one Parquet file.",
             "Target: workbench time <= 1.2x the hand-written DuckDB query "
             f"({'met' if ok_time else 'NOT met'}), workbench memory <= 0.5x pandas ({'met' if ok_mem else 'NOT met'}).",
             "The workbench sums money as DECIMAL(38, 6) so re-runs give identical bits; the hand-written query sums "
             "doubles."]
    write_results("summary", rows, notes)
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
