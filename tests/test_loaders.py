"""Loaders and schema validation: good input loads; bad input gets an error naming file, column and row."""

from __future__ import annotations

import gzip
import sqlite3

import pandas as pd
import pytest

from helpers.sources.catalog import ColumnSpec, SourceSpec, load_catalog
from helpers.canonical.collection import collect
from helpers.sources.dataio import (load_source, read_csv, read_excel_source, read_jsonl, read_parquet_source,
                            read_sql_source, redact_url, resolve_db_url)
from helpers.core.errors import SourceError
from helpers.sources.parsing import parse_bool, parse_datetime, parse_number
from helpers.canonical.validation import raise_first, type_source

AS_OF = pd.Timestamp("2026-09-30 23:59:59")


def spec(columns: dict, fmt="csv", file="x.csv", **kw) -> SourceSpec:
    return SourceSpec(name="x", format=fmt, file=file, columns={k: ColumnSpec(k, **v) for k, v in columns.items()},
                      **kw)


# --- whole-file faults -------------------------------------------------------------------------

def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(SourceError, match=r"^orders\.csv: expected an existing file"):
        read_csv(tmp_path / "orders.csv")


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(SourceError, match=r"^e\.csv: expected a header line and at least one data row, got an empty"):
        read_csv(tmp_path / "e.csv")


def test_header_only(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(SourceError, match="h.csv: expected at least one data row, got a header only"):
        read_csv(tmp_path / "h.csv")


def test_wrong_separator_is_named(tmp_path):
    (tmp_path / "s.csv").write_text("a;b\n1;2\n")
    with pytest.raises(SourceError, match=r"s\.csv: expected fields separated by ',', got a header separated by ';'"):
        read_csv(tmp_path / "s.csv")


def test_row_with_too_many_fields_names_the_row(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(SourceError) as e:
        read_csv(tmp_path / "t.csv")
    assert e.value.file == "t.csv" and e.value.row == 3


def test_missing_required_column_names_file_and_column(tmp_path):
    (tmp_path / "x.csv").write_text("order_id,amount\nO1,3\n")
    s = spec({"order_id": {"required": True}, "customer_id": {"required": True}})
    with pytest.raises(SourceError) as e:
        load_source(s, tmp_path)
    assert e.value.file == "x.csv" and e.value.column == "customer_id"
    assert "required column 'customer_id'" in str(e.value)


def test_wrong_declared_encoding_names_the_line(tmp_path):
    (tmp_path / "l.csv").write_bytes("a,b\n1,Größe\n".encode("latin-1"))
    with pytest.raises(SourceError) as e:
        read_csv(tmp_path / "l.csv", encoding="utf-8")
    assert e.value.row == 2 and "utf-8" in str(e.value)


# --- messy but valid formats ---------------------------------------------------------------------

def test_latin1_semicolon_decimal_comma(tmp_path):
    (tmp_path / "r.csv").write_bytes("id;amount;reason\nR1;1.234,56;Größe passt nicht\nR2;7,5; ok \n"
                                     .encode("latin-1"))
    df = read_csv(tmp_path / "r.csv", sep=";", encoding="auto")
    assert df["reason"].iloc[0] == "Größe passt nicht"
    assert df["_row"].tolist() == [2, 3]
    amounts = parse_number(df["amount"], decimal=",", thousands=".")
    assert amounts.values.tolist() == [1234.56, 7.5]


def test_several_date_formats_in_one_column():
    p = parse_datetime(pd.Series(["2025-03-04 10:00:00", "04.03.2025 10:00", "2025/03/04", "31.02.2025 10:00", ""]),
                       ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%Y/%m/%d"])
    assert p.values.iloc[:3].dt.day.tolist() == [4, 4, 4]
    assert p.failed.tolist() == [False, False, False, True, False]


def test_bool_words():
    assert parse_bool(pd.Series(["yes", "Nein", "1", "", "perhaps"])).failed.tolist() == [False] * 4 + [True]


# --- value-level validation ----------------------------------------------------------------------

def test_value_violations_name_row_column_and_expectation(tmp_path):
    (tmp_path / "x.csv").write_text("id,qty,when,status\nA,2,2025-01-02,ok\nB,-1,2025-01-02,ok\nC,2,2031-01-01,ok\n"
                                    "D,x,2025-01-02,weird\n")
    s = spec({"id": {"required": True}, "qty": {"type": "integer", "min": 1},
              "when": {"type": "datetime", "formats": ["%Y-%m-%d"]}, "status": {"allowed": ["ok"]}})
    loaded = load_source(s, tmp_path)
    typed, v = type_source(loaded.frame, s, "x.csv", AS_OF)
    got = set(zip(v["_row"], v["column"], v["rule"]))
    assert got == {(3, "qty", "range"), (4, "when", "future_date"), (5, "qty", "type"), (5, "status", "allowed")}
    assert typed["qty"].isna().sum() == 2
    with pytest.raises(SourceError) as e:
        raise_first(v)
    assert str(e.value).startswith("x.csv, column 'qty', row 3: expected a value at least 1, got '-1'")


def test_strict_mode_stops_at_first_bad_value(small_data):
    specs = load_catalog()
    with pytest.raises(SourceError) as e:
        collect(specs, small_data.raw, str(small_data.raw / "crm.sqlite"), AS_OF, strict=True)
    assert e.value.row is not None and e.value.column is not None


def test_collect_reports_planted_problems(small_data):
    specs = load_catalog()
    col = collect(specs, small_data.raw, str(small_data.raw / "crm.sqlite"), AS_OF)
    v = col.violations
    assert ("orders", "order_date", "type") in set(zip(v["source"], v["column"], v["rule"]))
    assert ("order_lines", "unit_price", "range") in set(zip(v["source"], v["column"], v["rule"]))
    assert len(col.unreadable) == 3 and col.unreadable["reason"].str.contains("not a complete JSON").all()
    # Typed returns parse the German export correctly.
    assert col.typed["returns"]["refund_amount"].notna().all()
    assert col.typed["returns"]["reason"].str.contains("ö|ä|ü|ß").any()


# --- other formats ---------------------------------------------------------------------------------

def test_jsonl_bad_lines_are_reported_with_line_numbers(tmp_path):
    p = tmp_path / "e.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"a": 1}\n{"a": \n[1, 2]\n{"a": 4}\n'))
    df, bad = read_jsonl(p)
    assert df["_row"].tolist() == [1, 4]
    assert bad["_row"].tolist() == [2, 3]


def test_parquet_corrupt_file(tmp_path):
    (tmp_path / "c.parquet").write_bytes(b"not parquet")
    with pytest.raises(SourceError, match=r"c\.parquet: expected a readable Parquet file"):
        read_parquet_source(tmp_path / "c.parquet")


def test_excel_missing_sheet(tmp_path):
    pd.DataFrame({"a": [1]}).to_excel(tmp_path / "p.xlsx", sheet_name="other", index=False)
    with pytest.raises(SourceError, match=r"p\.xlsx: expected a sheet named 'catalogue'"):
        read_excel_source(tmp_path / "p.xlsx", "catalogue")
    df = read_excel_source(tmp_path / "p.xlsx", "other")
    assert df["_row"].tolist() == [2] and df["a"].tolist() == ["1"]


def test_sql_sources(tmp_path, monkeypatch):
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE customers (customer_id TEXT, n INTEGER)")
        con.execute("INSERT INTO customers VALUES ('C1', 3)")
    assert read_sql_source(str(db), "SELECT * FROM customers")["n"].tolist() == ["3"]
    with pytest.raises(SourceError, match="no such table"):
        read_sql_source(str(db), "SELECT * FROM nope")
    with pytest.raises(SourceError, match="expected an existing SQLite database file"):
        read_sql_source(str(tmp_path / "missing.sqlite"), "SELECT 1")
    monkeypatch.setenv("CRM_URL", f"sqlite:///{db}")
    assert resolve_db_url("env:CRM_URL") == f"sqlite:///{db}"
    monkeypatch.delenv("CRM_URL")
    with pytest.raises(SourceError, match="environment variable CRM_URL"):
        resolve_db_url("env:CRM_URL")


def test_duckdb_source(tmp_path):
    import duckdb

    path = tmp_path / "crm.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE customers AS SELECT 'C1' AS customer_id, DATE '2025-01-02' AS signup_date")
    df = read_sql_source(str(path), "SELECT * FROM customers")
    assert df["signup_date"].iloc[0].startswith("2025-01-02")


def test_database_password_never_shown():
    assert "s3cret" not in redact_url("postgresql://u:s3cret@host/db")
    with pytest.raises(SourceError) as e:
        read_sql_source("postgresql+psycopg://u:s3cret@127.0.0.1:1/db", "SELECT 1")
    assert "s3cret" not in str(e.value)
