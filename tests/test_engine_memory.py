"""The embedded engine keeps to its memory limit by spilling, and cleans up after itself."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.canonical.engine import DUCKDB_MEMORY, DuckDBEngine


def _limit(eng: DuckDBEngine) -> str:
    return eng.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_default_limit_environment_override_and_private_spill_folder(monkeypatch):
    monkeypatch.delenv("CIW_MEMORY_LIMIT", raising=False)
    with DuckDBEngine() as eng:
        default = _limit(eng)
        spill = Path(eng.con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        assert spill.is_dir() and spill.name.startswith("ciw-duckdb-")
    assert not spill.exists()  # removed on close
    assert DUCKDB_MEMORY == "768MB" and default.endswith("MiB") and 700 < float(default.split()[0]) < 750
    monkeypatch.setenv("CIW_MEMORY_LIMIT", "3GB")
    with DuckDBEngine() as eng:
        assert _limit(eng).startswith("2.7")  # 3 GB in GiB


def test_a_table_larger_than_the_limit_is_built_by_spilling():
    """10 M rows of wide text (about 500 MB) sorted and aggregated under a 100 MB limit: DuckDB spills to the private
    folder instead of failing, and the answer is exact."""
    with DuckDBEngine(memory_limit="100MB") as eng:
        eng.create("big", "SELECT i, repeat(CAST(i % 1000 AS VARCHAR), 12) AS txt FROM range(10000000) t(i)")
        got = eng.frame("SELECT txt, count(*) AS n, max(i) AS top FROM big GROUP BY txt ORDER BY txt LIMIT 3")
    expected = pd.DataFrame({"txt": ["0" * 12, "100" * 12, "10" * 12], "n": [10_000] * 3,
                             "top": [9_999_000, 9_999_100, 9_999_010]})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_one_thread_on_small_input_every_core_past_the_threshold(tmp_path, monkeypatch):
    from helpers.canonical import engine as E

    monkeypatch.delenv("CIW_THREADS", raising=False)
    pd.DataFrame({"x": range(50_000)}).to_parquet(tmp_path / "t.parquet")
    with DuckDBEngine() as eng:
        cores = eng._all_threads
        eng.register_parquet("t", tmp_path / "t.parquet")
        assert eng.threads == 1  # a few hundred kilobytes
    monkeypatch.setattr(E, "SMALL_INPUT_BYTES", 1024)
    with DuckDBEngine() as eng:
        eng.register_parquet("t", tmp_path / "t.parquet")
        assert eng.threads == cores and eng.frame("SELECT count(*) AS n FROM t")["n"].iloc[0] == 50_000
    monkeypatch.setenv("CIW_THREADS", "1")
    with DuckDBEngine() as eng:
        eng.register_parquet("t", tmp_path / "t.parquet")
        assert eng.threads == 1  # fixed by the environment, whatever the input


def test_working_tables_in_memory_by_default_or_in_a_private_file(monkeypatch):
    monkeypatch.delenv("CIW_ENGINE_DB", raising=False)
    with DuckDBEngine() as eng:
        assert eng.con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                               ).fetchone()[0] is None  # in memory
    monkeypatch.setenv("CIW_ENGINE_DB", "file")
    with DuckDBEngine() as eng:
        path = Path(eng.con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                                    ).fetchone()[0])
        eng.create("t", "SELECT range AS i FROM range(1000)")
        assert path.exists() and path.parent.name.startswith("ciw-duckdb-")
    assert not path.exists()  # removed with the private folder


def test_past_the_large_input_size_tables_are_compressed_files_with_the_same_content(tmp_path, monkeypatch):
    """With a lot of input, created tables live as Parquet files in the private folder behind views: the same rows
    in the same order, a table may be rebuilt from itself, and dropping it removes its file."""
    from helpers.canonical import engine as E

    pd.DataFrame({"i": range(20_000), "t": [f"row {i % 97}" for i in range(20_000)]}).to_parquet(tmp_path / "in.parquet")
    results = {}
    for large in (False, True):
        monkeypatch.setattr(E, "LARGE_INPUT_BYTES", 1 if large else 2**40)
        with DuckDBEngine() as eng:
            eng.register_parquet("src", tmp_path / "in.parquet")
            eng.create("t", "SELECT i, t, i % 7 AS g FROM src WHERE i % 3 <> 0")
            eng.create("t", "SELECT *, row_number() OVER (PARTITION BY g ORDER BY i) AS r FROM t")  # from itself
            eng.create("u", "SELECT g, count(*) AS n FROM t GROUP BY g")
            eng.drop("u")
            files = sorted(p.name for p in Path(eng._spill).glob("*.parquet"))
            assert eng.tables_as_files is large and not eng.exists("u")
            assert files == (["t.v2.parquet"] if large else [])
            results[large] = eng.frame("SELECT * FROM t")
            eng.write_parquet("t", tmp_path / f"out{large}.parquet")
    pd.testing.assert_frame_equal(results[False], results[True])
    assert (tmp_path / "outFalse.parquet").read_bytes() == (tmp_path / "outTrue.parquet").read_bytes()


def test_the_sql_database_for_analysts_is_written_under_the_engines_limit(tmp_path, monkeypatch):
    """Copying the clean tables into workbench.duckdb keeps to the engine's memory limit (DuckDB's own default is
    80% of the machine)."""
    import duckdb

    from helpers.canonical.engine import engine_memory_limit
    from helpers.core.tables import write_duckdb

    monkeypatch.setenv("CIW_MEMORY_LIMIT", "300MB")
    pd.DataFrame({"i": range(1000)}).to_parquet(tmp_path / "t.parquet")
    real = duckdb.connect
    seen = []

    class Recorded:  # the connection write_duckdb opens, with the limit it had when the copy finished
        def __init__(self, con):
            self.con, self.limit = con, None

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.limit = self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
            self.con.close()

        def __getattr__(self, name):
            return getattr(self.con, name)

    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: seen.append(Recorded(real(*a, **k))) or seen[-1])
    write_duckdb({"t": tmp_path / "t.parquet", "f": pd.DataFrame({"x": [1]})}, tmp_path / "w.duckdb", engine_memory_limit())
    assert len(seen) == 1 and seen[0].limit.startswith("286")  # 300 MB in MiB
    with real(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1000


def test_the_engine_draws_no_progress_widgets():
    """A query over two seconds would otherwise put a DuckDB progress widget into the report (a black bar in the
    exported HTML)."""
    with DuckDBEngine() as eng:
        assert eng.con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
