"""Readers count every physical record, give editor line numbers, and turn file-level faults into clear errors."""

from __future__ import annotations

import bz2
import re
import gzip
import os
import sqlite3

import pandas as pd
import pytest

from helpers.core.errors import SourceError
from helpers.sources import readers as RD


def read(tmp_path, text: str | bytes, name: str = "f.csv", **kw) -> RD.ReadResult:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return RD.read_delimited(p, "src", tmp_path / f"{name}.parquet", **kw)


def rows(result: RD.ReadResult) -> dict[int, list]:
    f = result.frame()
    return {int(r["_row"]): [r[c] for c in f.columns if c != "_row"] for _, r in f.iterrows()}


def test_records_balance_and_rows_are_editor_lines(tmp_path):
    """A quoted field over two lines and a blank line do not shift the line numbers of later records."""
    text = 'id,title,text\n1,Good,"two\nlines, here"\n\n2,ok,fine\n3,ok,"last"\n'
    r = read(tmp_path, text)
    assert rows(r) == {2: ["1", "Good", "two\nlines, here"], 5: ["2", "ok", "fine"], 6: ["3", "ok", "last"]}
    a = r.accounting
    assert (a.records, a.staged, a.unreadable, a.blank_lines) == (3, 3, 0, 1)


def test_a_stray_quote_costs_only_its_own_line(tmp_path):
    """One unclosed quote in a title must not swallow the records after it (it made 26 of 81 reviews vanish)."""
    body = "".join(f"{i},title {i},text {i}\n" for i in range(1, 41))
    body = body.replace("5,title 5,", '5,"title 5,')
    r = read(tmp_path, "id,title,text\n" + body)
    assert r.accounting.records == 40 and r.accounting.staged == 39 and r.accounting.unreadable == 1
    bad = r.unreadable.iloc[0]
    assert bad["_row"] == 6 and "line 6" in bad["reason"]
    assert rows(r)[7] == ["6", "title 6", "text 6"]


def test_wrong_field_count_is_unreadable_with_line_and_reason(tmp_path):
    r = read(tmp_path, "a,b\n1,2,3\n4\n5,6,,\n7,8\n")
    assert list(r.unreadable["_row"]) == [2, 3]
    assert r.unreadable["reason"].iloc[0] == "expected 2 fields separated by ',' as in the header, got 3"
    assert rows(r) == {4: ["5", "6"], 5: ["7", "8"]}  # an empty trailing field is tolerated
    assert r.accounting.records == 4


def test_strict_mode_stops_at_the_first_unreadable_line(tmp_path):
    with pytest.raises(SourceError, match=r"f\.csv, row 3: expected a readable record, got expected 2 fields"):
        read(tmp_path, "a,b\n1,2\n1,2,3\n", strict=True)


def test_mixed_utf8_and_cp1252_lines_are_decoded_and_reported(tmp_path):
    text = "id,note\n1,Grüße\n".encode() + "2,Preis 5 €\n".encode("cp1252") + "3,Straße\n".encode()
    r = read(tmp_path, text)
    assert rows(r)[3] == ["2", "Preis 5 €"] and rows(r)[2] == ["1", "Grüße"]
    assert r.accounting.encoding == "utf-8" and r.accounting.decoded_with_fallback == [3]


def test_declared_encoding_reports_undecodable_lines(tmp_path):
    text = "id,note\n1,ok\n".encode() + "2,caf\xe9\n".encode("latin-1")
    r = read(tmp_path, text, encoding="utf-8")
    assert r.unreadable["_row"].tolist() == [3] and "not valid utf-8 (byte 0xe9" in r.unreadable["reason"].iloc[0]


def test_utf16_and_byte_order_marks(tmp_path):
    r = read(tmp_path, "order_id,x\n1,a\n".encode("utf-16"))
    assert rows(r) == {2: ["1", "a"]} and r.accounting.columns == ["order_id", "x"]
    r = read(tmp_path, b"\xef\xbb\xbforder_id,x\r\n1,a\r\n", name="bom.csv")
    assert r.accounting.columns == ["order_id", "x"] and rows(r) == {2: ["1", "a"]}


@pytest.mark.parametrize("content, got", [(b"", "an empty file (0 bytes)"),
                                          (b"\xef\xbb\xbf", "an empty file (only a byte-order mark)"),
                                          (b"\n\n  \n", "an empty file (only blank lines)")])
def test_empty_files_are_refused(tmp_path, content, got):
    with pytest.raises(SourceError, match=re.escape(f"f.csv: expected a header line and data, got {got}")):
        read(tmp_path, content)


def test_header_only_and_wrong_separator(tmp_path):
    with pytest.raises(SourceError, match="expected at least one data row, got a header only"):
        read(tmp_path, "a,b\n")
    with pytest.raises(SourceError, match="expected fields separated by ',', got a header separated by ';'"):
        read(tmp_path, "a;b\n1;2\n", sep=",")
    assert rows(read(tmp_path, "a;b\n1;2\n", name="auto.csv")) == {2: ["1", "2"]}  # sniffed


def test_file_faults_are_source_errors_and_special_files_are_never_opened(tmp_path):
    with pytest.raises(SourceError, match="nothing at"):
        RD.read_delimited(tmp_path / "missing.csv", "s", tmp_path / "o.parquet")
    with pytest.raises(SourceError, match="expected a file, got a directory"):
        RD.read_delimited(tmp_path, "s", tmp_path / "o.parquet")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # a reader that opened it would block for ever
    with pytest.raises(SourceError, match=r"expected a regular file, got a named pipe \(FIFO\)"):
        RD.read_delimited(fifo, "s", tmp_path / "o.parquet")
    loop = tmp_path / "loop.csv"
    loop.symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(loop)
    with pytest.raises(SourceError, match="symbolic link loop"):
        RD.read_delimited(loop, "s", tmp_path / "o.parquet")
    locked = tmp_path / "locked.csv"
    locked.write_text("a\n1\n")
    locked.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        with pytest.raises(SourceError, match="permission denied"):
            RD.read_delimited(locked, "s", tmp_path / "o.parquet")


def test_compression_must_match_the_name(tmp_path):
    good = tmp_path / "e.jsonl.gz"
    good.write_bytes(gzip.compress(b'{"a": 1}\n{"a": 2}\n'))
    assert RD.read_jsonl(good, "e", tmp_path / "e.parquet").accounting.records == 2
    plain = tmp_path / "p.jsonl.gz"
    plain.write_bytes(b'{"a": 1}\n')
    with pytest.raises(SourceError, match=r"p.jsonl.gz: expected gzip-compressed data \(the name ends in \.gz\), "
                                          "got uncompressed data"):
        RD.read_jsonl(plain, "p", tmp_path / "p.parquet")
    truncated = tmp_path / "t.jsonl.gz"
    full = gzip.compress("".join(f'{{"a": {i * 7919 % 10007}}}\n' for i in range(5000)).encode())
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(SourceError, match="t.jsonl.gz: expected a complete compressed file, got a file that ends early"):
        RD.read_jsonl(truncated, "t", tmp_path / "t.parquet")
    hidden = tmp_path / "h.csv"
    hidden.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with pytest.raises(SourceError, match="expected uncompressed text .* got gzip-compressed data; rename"):
        RD.read_delimited(hidden, "h", tmp_path / "h.parquet")
    b = tmp_path / "b.csv.bz2"
    b.write_bytes(bz2.compress(b"a,b\n1,2\n"))
    assert rows(RD.read_delimited(b, "b", tmp_path / "b.parquet")) == {2: ["1", "2"]}


def test_jsonl_bad_lines_keep_their_numbers_and_strict_mode_stops(tmp_path):
    p = tmp_path / "ev.jsonl"
    p.write_text('{"id": 1, "ctx": {"ip": "x"}}\n\n{"id": 2, "ctx": {"ip\n[1, 2]\n{"id": 3}\n')
    r = RD.read_jsonl(p, "ev", tmp_path / "ev.parquet")
    assert r.frame()["_row"].tolist() == [1, 5] and r.frame()["ctx.ip"].tolist()[0] == "x"
    assert r.unreadable["_row"].tolist() == [3, 4]  # a truncated object and a list
    assert (r.accounting.records, r.accounting.blank_lines) == (4, 1)
    with pytest.raises(SourceError, match="ev.jsonl, row 3: expected one JSON object per line"):
        RD.read_jsonl(p, "ev", tmp_path / "ev2.parquet", strict=True)


def test_parquet_rows_and_time_zones(tmp_path):
    df = pd.DataFrame({"id": [1, 2], "ts": pd.to_datetime(["2026-01-01 10:00", "2026-07-01 10:00"]).tz_localize(
        "Europe/Berlin"), "v": [1.5, 2.0]})
    p = tmp_path / "t.parquet"
    df.to_parquet(p)
    r = RD.read_parquet(p, "t", tmp_path / "out.parquet")
    f = r.frame()
    assert f["ts"].tolist() == ["2026-01-01 10:00:00+01:00", "2026-07-01 10:00:00+02:00"]  # the offset is kept
    assert f["v"].tolist() == ["1.5", "2"] and r.accounting.records == 2
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(SourceError, match="bad.parquet: expected a readable Parquet file"):
        RD.read_parquet(bad, "b", tmp_path / "o.parquet")


def test_excel_rows_are_spreadsheet_rows(tmp_path):
    p = tmp_path / "p.xlsx"
    with pd.ExcelWriter(p) as w:
        pd.DataFrame({"sku": ["a", None, "c"], "price": [1.5, None, 3]}).to_excel(w, sheet_name="cat", index=False)
    r = RD.read_excel(p, "p", tmp_path / "o.parquet", sheet="cat")
    assert r.frame()["_row"].tolist() == [2, 4] and r.accounting.blank_lines == 1
    with pytest.raises(SourceError, match="expected a sheet named 'other', got sheets 'cat'"):
        RD.read_excel(p, "p", tmp_path / "o.parquet", sheet="other")


def test_sql_sources_count_rows_and_never_show_credentials(tmp_path, monkeypatch):
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE c (id TEXT, n INTEGER)")
        con.executemany("INSERT INTO c VALUES (?, ?)", [("a", 1), ("b", None)])
    r = RD.read_sql(str(db), "SELECT * FROM c", "c", tmp_path / "c.parquet")
    assert r.accounting.records == 2 and r.frame()["n"].iloc[0] == "1" and pd.isna(r.frame()["n"].iloc[1])
    monkeypatch.setenv("CIW_TEST_DB", "postgresql://ana:Sup3rSecret@127.0.0.1:1/crm?sslmode=require&token=T0k3n")
    with pytest.raises(SourceError) as err:
        RD.read_sql("env:CIW_TEST_DB", "SELECT 1", "c", tmp_path / "x.parquet")
    message = str(err.value)
    assert "Sup3rSecret" not in message and "T0k3n" not in message and "ana" not in message
    assert message.startswith("postgresql database crm on 127.0.0.1")


JSONL_MIX = [
    b'\xef\xbb\xbf{"id": 1, "ts": "2025-01-02T03:04:05Z", "ctx": {"ip": "10.0.0.1", "geo": {"cc": "DE"}}, "ok": true}',
    b'{"id": 2, "ts": "2025-01-02T03:04:06Z", "amount": 1.0, "rate": 0.1, "tiny": 1e-7, "huge": 1e16, "n": null}',
    b'', b'   ', b'{"id": 3, "big": 12345678901234567890, "f": 2.5}',
    b'{"id": 4, "tags": ["a", "b"], "name": "Zo\xc3\xab \\u00e9 \\n"}',
    b'{"id": 5, "ts": "2025-01-02", "trunc', b'[1, 2]', b'"just text"', b'{"id": 6, "id": 7}',
    b'{"id": 8, "x": "text"}', b'{"id": 9, "x": 5}', b'{"id": 10, "cp": "cafe"}',
    b'{"id": 11, "ctx": {"ip": "10.0.0.2"}, "mixed": 3}\r', b'{"id": 12, "mixed": 3.25, "neg": -0.0}', b'{}',
    b'{"id": 13, "flag": false, "nested": {"deep": {"deeper": 1.5}}}',
] + [b'{"id": %d, "ts": "2025-02-%02dT10:00:00Z", "v": %d.5, "ok": %s}' % (100 + i, 1 + i % 28, i,
                                                                          b"true" if i % 2 else b"false")
     for i in range(800)] + [b'{"id": 10000, "cp": "caf\xe9"}']  # a Windows-1252 line after the sniffed 64 KB


@pytest.mark.parametrize("block_bytes", [64, 700, 1 << 20])
def test_jsonl_arrow_blocks_stage_exactly_what_line_by_line_reading_stages(tmp_path, monkeypatch, block_bytes):
    """Blocks Arrow can read exactly are staged by Arrow, the others line by line; the staged table, the unreadable
    lines and the accounting are those of reading every line in Python, whatever the block boundaries."""
    path = tmp_path / "mix.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(JSONL_MIX) + b"\n"))
    monkeypatch.setattr(RD, "LINE_BLOCK_BYTES", block_bytes)
    calls = []
    real = RD._arrow_text_columns
    monkeypatch.setattr(RD, "_arrow_text_columns", lambda payload, known: calls.append(real(payload, known))
                        or calls[-1])
    fast = RD.read_jsonl(path, "ev", tmp_path / "fast.parquet")
    monkeypatch.setattr(RD, "_arrow_text_columns", lambda payload, known: None)
    slow = RD.read_jsonl(path, "ev", tmp_path / "slow.parquet")
    if block_bytes < 1 << 20:  # Arrow staged the clean blocks, the blocks with broken lines were read line by line
        assert any(c is not None for c in calls) and any(c is None for c in calls)
    pd.testing.assert_frame_equal(pd.read_parquet(fast.staged_path), pd.read_parquet(slow.staged_path))
    pd.testing.assert_frame_equal(fast.unreadable, slow.unreadable)
    assert fast.accounting.as_dict() == slow.accounting.as_dict()
    assert fast.accounting.decoded_with_fallback == slow.accounting.decoded_with_fallback == [len(JSONL_MIX)]
    staged = pd.read_parquet(fast.staged_path).set_index("_row")
    assert staged.loc[2, ["amount", "rate", "tiny", "huge"]].tolist() == ["1", "0.1", "1e-07", "1e+16"]
    assert staged.loc[1, "ts"] == "2025-01-02T03:04:05Z" and staged.loc[1, "ctx.geo.cc"] == "DE"
    assert staged.loc[5, "big"] == "12345678901234567890" and staged.loc[6, "tags"] == '["a", "b"]'
    assert set(fast.unreadable["_row"]) == {7, 8, 9}  # truncated, a list, a bare string
