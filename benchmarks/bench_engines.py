"""The same small run on both engines: steps 01 and 02 (staging, validation, cleaning, netting, identity links, the
360° table) on embedded DuckDB and on Spark (PySpark, ``local[*]``), side by side in one run.

Each engine runs in its own process on a copy of the same generated raw files; the benchmark times collection
and the canonical build (the JVM's start-up is part of Spark's time, as it is in a real run), then compares every
Parquet file the two runs wrote, schema and values, with no tolerance.

Spark is built for clusters: on one small machine its per-query overhead dominates, so DuckDB is expected to win
here by a wide margin. What this benchmark shows is that the one definition of each transformation runs on both
and gives the same tables, and what the overhead costs at a small size.

Writes ``benchmarks/results/engines.json`` and ``engines.md``.

Run: ``python benchmarks/bench_engines.py [n_customers]`` (default 2,000).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results  # noqa: E402

CASE = r"""
import json, resource, sys, time
import pandas as pd
from pathlib import Path
from helpers.core.paths import DataLayout
from helpers.canonical import collection as C
from helpers.canonical.build import build_canonical
from helpers.canonical.engine import make_engine
from helpers.sources.catalog import load_catalog
root, engine = Path(sys.argv[1]), sys.argv[2]
layout = DataLayout(root)
cat = load_catalog(None)
start = time.perf_counter()
with make_engine(engine) as eng:
    col = C.collect(cat, layout.raw, str(layout.raw / "crm.sqlite"), layout.staged, eng, "2024-10-01", "2026-09-30")
    as_of = pd.Timestamp(col.window[1]) + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    C.stage(col, layout.staged, C.inventory(col, as_of), C.dataset_info(col, layout.raw, "", False), layout.processed)
collected = time.perf_counter()
with make_engine(engine) as eng:
    built = build_canonical(layout, eng, as_of)
done = time.perf_counter()
print(json.dumps({"collect_s": collected - start, "build_s": done - collected, "total_s": done - start,
                  "records_in": int(built.balance["records_in"].sum()), "customers": len(built.c360),
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def compare(a: Path, b: Path) -> tuple[int, list[str]]:
    """Number of Parquet files compared and the names of those that differ (schema or any value)."""
    files_a = {str(p.relative_to(a)): p for p in a.rglob("*.parquet")}
    files_b = {str(p.relative_to(b)): p for p in b.rglob("*.parquet")}
    differ = sorted(set(files_a) ^ set(files_b))
    for name in sorted(set(files_a) & set(files_b)):
        x, y = pq.read_table(files_a[name]), pq.read_table(files_b[name])
        # names, types and values; not the files' metadata or nullability flags (DuckDB marks a column NOT NULL
        # when the query proves it, Spark does not), which describe the file rather than the data
        same = (x.schema.names == y.schema.names and x.schema.types == y.schema.types
                and x.cast(y.schema).equals(y))
        if not same:
            differ.append(name)
    return len(files_a), differ


def main() -> int:
    from helpers.core.paths import DataLayout
    from helpers.sample import synthetic

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    tmp = Path(tempfile.mkdtemp())
    source = DataLayout(tmp / "source")
    synthetic.generate(source.raw, source.truth, n_customers=n, seed=42)
    results = {}
    for engine in ("duckdb", "spark"):
        layout = DataLayout(tmp / engine)
        shutil.copytree(source.raw, layout.raw)
        res = subprocess.run([sys.executable, "-c", CASE, str(layout.root), engine], capture_output=True, text=True,
                             check=True)
        results[engine] = json.loads(res.stdout.strip().splitlines()[-1])
        print(engine, results[engine], flush=True)
    files, differ = compare(DataLayout(tmp / "duckdb").processed, DataLayout(tmp / "spark").processed)
    duck = results["duckdb"]
    rows = [{"engine": name, "customers": r["customers"], "input records": r["records_in"],
             "collect s": r["collect_s"], "build s": r["build_s"], "total s": r["total_s"],
             "time / DuckDB": r["total_s"] / duck["total_s"], "driver peak MiB": r["peak_mib"]}
            for name, r in [("DuckDB (embedded)", duck), ("Spark (local[*])", results["spark"])]]
    notes = [f"{n:,} generated customers (seed 42); both engines read copies of the same raw files.",
             f"Every Parquet file written by steps 01 and 02 compared, schema and values: {files} files, "
             + ("all identical." if not differ else f"DIFFERENT: {', '.join(differ)}"),
             "Spark's time includes starting the JVM; its driver's peak memory is the Python process only."]
    write_results("engines", rows, notes)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if not differ else 1


if __name__ == "__main__":
    raise SystemExit(main())
