"""Processed tables and small JSON files: the one place where steps write and read what they share.

Source files are read by :mod:`helpers.sources.readers`; everything a step derives goes through here, so
every table is Parquet, deterministic for the same data, and a missing one says which step makes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers.core.errors import SourceError


def save_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as Parquet, creating folders; deterministic for the same data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return path


def load_table(path: str | Path, hint: str = "", columns: list[str] | None = None) -> pd.DataFrame:
    """Read a processed Parquet table, saying which notebook makes it when it is missing."""
    path = Path(path)
    if not path.exists():
        raise SourceError(path.name, expected=f"a processed table{(' written by ' + hint) if hint else ''}",
                          got=f"nothing at {path}; run the earlier notebooks first")
    return pd.read_parquet(path, columns=columns)


def load_optional(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A processed table, or None when the data set does not have it (a channel the company lacks). With
    ``columns``, only those of them the table has are read (a company's sends may have no click column): the
    largest tables are read column by column, not whole."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        return None
    if columns is not None:
        present = set(pq.read_schema(path).names)
        columns = [c for c in columns if c in present]
    return pd.read_parquet(path, columns=columns)


def write_json(obj: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def save_tables(tables: dict[str, pd.DataFrame], folder: str | Path) -> list[Path]:
    """Write several tables as ``<folder>/<name>.parquet``."""
    return [save_table(df, Path(folder) / f"{name}.parquet") for name, df in tables.items()]


def write_duckdb(tables: dict[str, pd.DataFrame | Path], path: str | Path, memory_limit: str | None = None) -> Path:
    """(Re)create an embedded DuckDB database file holding ``tables``, for analysts to query with SQL.

    A table given as a Parquet path is copied by DuckDB straight from the file, so pandas never holds it (the web
    events of a large shop are millions of rows). ``memory_limit`` caps DuckDB while it copies (its own default is
    80% of the machine: copying a million customers' tables took the process from 3.7 to 7.0 GB)."""
    import duckdb

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("SET enable_progress_bar = false")  # no progress widgets in the reports
        if memory_limit:
            con.execute("SET memory_limit = ?", [memory_limit])
        for name, df in tables.items():
            if isinstance(df, (str, Path)):
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet(?)', [str(df)])
                continue
            con.register("_frame", df)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _frame')
            con.unregister("_frame")
    return path
