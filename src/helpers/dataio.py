"""Reading and writing data: the one place where the workbench touches files and databases.

Loaders return every column as text exactly as the source holds it (stripped of
nothing), plus ``_row``: the row number a person would look up in the source
(the line number in a text file, where the header is line 1; the spreadsheet
row in Excel; the position in a table or query result). Typing and validation
happen afterwards, so that a bad value can be reported with its row and raw
text instead of disappearing inside a parser.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from helpers.catalog import SourceSpec
from helpers.errors import SourceError

ROW = "_row"


@dataclass
class Loaded:
    """A source as read: text columns plus ``_row``, and the lines that could not be read at all."""

    name: str
    label: str
    frame: pd.DataFrame
    unreadable: pd.DataFrame  # columns: source, _row, raw, reason


def _empty_unreadable() -> pd.DataFrame:
    return pd.DataFrame({"source": pd.Series(dtype="string"), ROW: pd.Series(dtype="int64"),
                         "raw": pd.Series(dtype="string"), "reason": pd.Series(dtype="string")})


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Convert every column to nullable text, writing timestamps as ISO and whole floats without '.0'."""
    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            txt = s.dt.strftime("%Y-%m-%d %H:%M:%S")
        elif pd.api.types.is_bool_dtype(s):
            txt = s.map({True: "true", False: "false"})
        elif pd.api.types.is_float_dtype(s):
            txt = s.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))
        else:
            txt = s.astype("string")  # None and NaN become <NA>; numbers are written as str() does
        out[col] = txt.astype("string")
    return pd.DataFrame(out, index=df.index)


def _decode(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if encoding != "auto":
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise SourceError(path.name, row=line, expected=f"text encoded as {encoding}",
                              got=f"bytes that are not {encoding} ({exc.reason})") from exc
    # Western European exports that are not UTF-8 are almost always Windows-1252 or Latin-1.
    for candidate in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # never fails: every byte is a Latin-1 character


def read_csv(path: str | Path, sep: str = ",", encoding: str = "auto", **_: object) -> pd.DataFrame:
    """Read a delimited text file with every value as text.

    ``encoding='auto'`` reads UTF-8 and falls back to Windows-1252/Latin-1.
    Raises :class:`SourceError` naming the file for a missing, empty or
    unparseable file, and naming the row for a row with too many fields.
    """
    import io

    path = Path(path)
    if not path.exists():
        raise SourceError(path.name, expected="an existing file", got=f"nothing at {path}")
    text = _decode(path, encoding)
    if not text.strip():
        raise SourceError(path.name, expected="a header line and at least one data row", got="an empty file")
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[],
                         skipinitialspace=False)
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SourceError(path.name, row=int(m.group(1)) if m else None,
                          expected=f"the same number of {sep!r}-separated fields as the header",
                          got=str(exc).split(".")[0]) from exc
    if len(df.columns) == 1 and sep not in text.splitlines()[0] and any(d in text.splitlines()[0] for d in ",;\t|"):
        found = next(d for d in ",;\t|" if d in text.splitlines()[0])
        raise SourceError(path.name, expected=f"fields separated by {sep!r}", got=f"a header separated by {found!r}")
    if df.empty:
        raise SourceError(path.name, expected="at least one data row", got="a header only")
    df.columns = [c.strip() for c in df.columns]
    df = as_text(df.replace({"": None}))
    df.insert(0, ROW, pd.RangeIndex(2, len(df) + 2))
    return df


def read_jsonl(path: str | Path, name: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read JSON Lines (optionally gzipped); lines that are not valid JSON objects are returned separately.

    Returns ``(frame, unreadable)``; ``unreadable`` has one row per bad line with its line number.
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(path.name, expected="an existing file", got=f"nothing at {path}")
    text = _decode(path, "utf-8")
    records, rows, bad = [], [], []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            bad.append({"source": name or path.name, ROW: i, "raw": line[:500],
                        "reason": f"line {i} is not a complete JSON object ({str(exc).split(':')[0]})"})
            continue
        records.append(obj)
        rows.append(i)
    if not records:
        raise SourceError(path.name, expected="at least one JSON object per line", got="no readable line")
    df = as_text(pd.DataFrame.from_records(records))
    df.insert(0, ROW, rows)
    unreadable = pd.DataFrame(bad) if bad else _empty_unreadable()
    return df, unreadable.astype({ROW: "int64"})


def read_parquet_source(path: str | Path) -> pd.DataFrame:
    """Read a Parquet file as text columns with ``_row`` (1-based position)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(path.name, expected="an existing file", got=f"nothing at {path}")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise SourceError(path.name, expected="a readable Parquet file", got=type(exc).__name__) from exc
    if df.empty:
        raise SourceError(path.name, expected="at least one row", got="an empty table")
    df = as_text(df.reset_index(drop=True))
    df.insert(0, ROW, pd.RangeIndex(1, len(df) + 1))
    return df


def read_excel_source(path: str | Path, sheet: str | int = 0) -> pd.DataFrame:
    """Read one sheet of an Excel workbook as text; ``_row`` is the spreadsheet row (header = 1)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(path.name, expected="an existing file", got=f"nothing at {path}")
    try:
        df = pd.read_excel(path, sheet_name=sheet, dtype=object)
    except ValueError as exc:
        raise SourceError(path.name, expected=f"a sheet named {sheet!r}", got=str(exc)) from exc
    except Exception as exc:
        raise SourceError(path.name, expected="a readable .xlsx workbook", got=type(exc).__name__) from exc
    if df.empty:
        raise SourceError(path.name, expected="at least one data row", got="an empty sheet")
    df = as_text(df)
    df.insert(0, ROW, pd.RangeIndex(2, len(df) + 2))
    return df


def resolve_db_url(db_url: str) -> str:
    """Turn the ``db_url`` parameter into a database URL.

    ``env:NAME`` reads the URL from environment variable ``NAME`` (so that passwords never
    appear in notebook parameters); a bare path to ``.sqlite``/``.db``/``.duckdb`` becomes a URL.

    >>> resolve_db_url("data/raw/crm.sqlite").startswith("sqlite:///")
    True
    """
    if db_url.startswith("env:"):
        var = db_url[4:]
        value = os.environ.get(var)
        if not value:
            raise SourceError("db_url", expected=f"environment variable {var} to hold a database URL",
                              got="nothing")
        return value
    if "://" in db_url:
        return db_url
    from helpers.paths import resolve

    p = resolve(db_url)
    return f"duckdb:///{p}" if p.suffix == ".duckdb" else f"sqlite:///{p}"


def redact_url(url: str) -> str:
    """Hide the password in a database URL, for display.

    >>> redact_url("postgresql://ana:s3cret@db.internal:5432/crm")
    'postgresql://ana:***@db.internal:5432/crm'
    """
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def db_label(db_url: str) -> str:
    """A short, safe name for a database: the file name for SQLite/DuckDB, else scheme, host and database.

    >>> db_label("postgresql://ana:pw@db.internal:5432/crm")
    'postgresql database crm on db.internal'
    """
    url = resolve_db_url(db_url)
    if url.startswith(("sqlite:///", "duckdb:///")):
        return Path(url.split(":///", 1)[1]).name
    parts = urlsplit(url)
    return f"{parts.scheme.split('+')[0]} database {parts.path.lstrip('/')} on {parts.hostname}"


def read_sql_source(db_url: str, query: str) -> pd.DataFrame:
    """Run ``query`` against a database (SQLite or DuckDB file, or any SQLAlchemy URL) and return text columns."""
    url = resolve_db_url(db_url)
    shown = redact_url(url)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if not path.exists():
            raise SourceError(shown, expected="an existing SQLite database file", got=f"nothing at {path}")
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            df = pd.read_sql_query(query, con)
        except Exception as exc:
            raise SourceError(shown, expected=f"the query to run ({query})", got=str(exc)) from exc
        finally:
            con.close()
    elif url.startswith("duckdb:///"):
        import duckdb

        path = url[len("duckdb:///"):]
        try:
            with duckdb.connect(path, read_only=True) as con:
                df = con.execute(query).df()
        except Exception as exc:
            raise SourceError(shown, expected=f"the query to run ({query})", got=str(exc)) from exc
    else:
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(url)
            with engine.connect() as con:
                df = pd.read_sql_query(sqlalchemy.text(query), con)
        except Exception as exc:
            # Never echo the URL itself: it may carry a password.
            raise SourceError(shown, expected=f"a reachable database answering {query!r}",
                              got=type(exc).__name__) from exc
    if df.empty:
        raise SourceError(shown, expected=f"rows from {query!r}", got="an empty result")
    df = as_text(df)
    df.insert(0, ROW, pd.RangeIndex(1, len(df) + 1))
    return df


def load_source(spec: SourceSpec, source_dir: str | Path, db_url: str | None = None) -> Loaded:
    """Load one catalogue source and check that its required columns exist.

    Raises :class:`SourceError` (naming file and column) when the file cannot be read
    or a required column is missing; value-level problems are left to validation.
    """
    source_dir = Path(source_dir)
    unreadable = _empty_unreadable()
    if spec.format == "csv":
        df = read_csv(source_dir / spec.file, **spec.options)
    elif spec.format == "jsonl":
        df, unreadable = read_jsonl(source_dir / spec.file, spec.name)
    elif spec.format == "parquet":
        df = read_parquet_source(source_dir / spec.file)
    elif spec.format == "excel":
        df = read_excel_source(source_dir / spec.file, spec.options.get("sheet", 0))
    elif spec.format == "sql":
        if not db_url:
            raise SourceError(spec.label, expected="a db_url parameter for a database source")
        df = read_sql_source(db_url, spec.query or f"SELECT * FROM {spec.name}")
    else:  # the catalogue loader already rejects unknown formats
        raise SourceError(spec.label, expected="a known format", got=spec.format)
    label = spec.file or db_label(db_url or "")
    missing = [c for c in spec.required_columns if c not in df.columns]
    if missing:
        raise SourceError(spec.file or spec.name, column=missing[0],
                          expected=f"required column {missing[0]!r} (required: {', '.join(spec.required_columns)})",
                          got="columns " + ", ".join(c for c in df.columns if c != ROW))
    return Loaded(spec.name, label, df, unreadable)


# ---------------------------------------------------------------------------
# Processed data (Parquet) and metrics
# ---------------------------------------------------------------------------


def save_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as Parquet, creating folders; deterministic for the same data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return path


def load_table(path: str | Path, hint: str = "") -> pd.DataFrame:
    """Read a processed Parquet table, saying which notebook makes it when it is missing."""
    path = Path(path)
    if not path.exists():
        raise SourceError(path.name, expected=f"a processed table{(' written by ' + hint) if hint else ''}",
                          got=f"nothing at {path}; run the earlier notebooks first")
    return pd.read_parquet(path)


def write_json(obj: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def load_staged(staged_dir: str | Path, names: list[str]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame,
                                                                     pd.DataFrame]:
    """Read what step 01 staged: ``(frames by source, unreadable lines, inventory)``."""
    staged_dir = Path(staged_dir)
    frames = {n: load_table(staged_dir / f"{n}.parquet", "01_collection") for n in names}
    unreadable = load_table(staged_dir / "_unreadable.parquet", "01_collection")
    inventory = load_table(staged_dir / "_inventory.parquet", "01_collection")
    return frames, unreadable, inventory


def save_tables(tables: dict[str, pd.DataFrame], folder: str | Path) -> list[Path]:
    """Write several tables as ``<folder>/<name>.parquet``."""
    return [save_table(df, Path(folder) / f"{name}.parquet") for name, df in tables.items()]


def write_duckdb(tables: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """(Re)create an embedded DuckDB database file holding ``tables``, for analysts to query with SQL."""
    import duckdb

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        for name, df in tables.items():
            con.register("_frame", df)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _frame')
            con.unregister("_frame")
    return path
