"""Reading sources record by record, so that every physical record is accounted for.

Each reader streams a file (or a query result) into a staged Parquet table of **text** columns, exactly as the
source wrote them, plus ``_row``: the number an analyst looks up in an editor or spreadsheet (the line on which a
CSV record starts, counting the header as line 1; the JSON-Lines line; the spreadsheet row; the position in a
Parquet file or query result). Records that cannot be read at all go to an *unreadable* table with their line
and a reason. The accounting that comes back says how many records the file holds, counted from the file itself
and not from what a parser kept, so that ``records = staged + unreadable`` can be checked.

File-level faults (missing, not a regular file, unreadable, empty, wrongly compressed, truncated) raise
:class:`~helpers.core.errors.SourceError` naming the file and what was expected. Named pipes, sockets and
devices are refused without being opened, so a reader never blocks.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import errno
import gzip
import io
import json
import lzma
import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.core.errors import SourceError
from helpers.core.secrets import db_label, redact_url, resolve_db_url

ROW = "_row"
CHUNK_RECORDS = 100_000  # records per Parquet row group: bounded memory on any file size
MAX_RECORD_LINES = 200  # a quoted field spanning more lines than this is treated as an unclosed quote
SEPARATORS = (",", ";", "\t", "|")
UNREADABLE_COLUMNS = ["source", "file", ROW, "raw", "reason"]
MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"PK\x03\x04": "zip"}
SUFFIX_COMPRESSION = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zip": "zip"}


@dataclass
class Accounting:
    """What a file physically holds, counted from the file itself."""

    records: int = 0  # records found (staged + unreadable)
    staged: int = 0
    unreadable: int = 0
    blank_lines: int = 0  # empty lines between records: not records, listed for completeness
    header_lines: int = 0
    encoding: str = ""
    decoded_with_fallback: list[int] = field(default_factory=list)  # lines not in the main encoding (mixed files)
    fallback_encoding: str = ""
    separator: str = ""
    columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"records": self.records, "staged": self.staged, "unreadable": self.unreadable,
                "blank_lines": self.blank_lines, "header_lines": self.header_lines, "encoding": self.encoding,
                "lines_in_fallback_encoding": len(self.decoded_with_fallback),
                "fallback_encoding": self.fallback_encoding, "separator": self.separator}


@dataclass
class ReadResult:
    """A source as read: the staged text table on disk, its unreadable records and the accounting."""

    name: str
    label: str
    staged_path: Path
    unreadable: pd.DataFrame
    accounting: Accounting

    def frame(self) -> pd.DataFrame:
        return pd.read_parquet(self.staged_path)


def empty_unreadable() -> pd.DataFrame:
    return pd.DataFrame({"source": pd.Series(dtype="string"), "file": pd.Series(dtype="string"),
                         ROW: pd.Series(dtype="int64"), "raw": pd.Series(dtype="string"),
                         "reason": pd.Series(dtype="string")})


# ---------------------------------------------------------------------------
# File-level checks and byte streams
# ---------------------------------------------------------------------------


def check_file(path: Path) -> None:
    """Refuse anything that is not an existing, readable, non-empty regular file, without opening it."""
    name = path.name or str(path)
    try:
        st = path.stat()  # follows symlinks; a loop raises ELOOP
    except FileNotFoundError:
        if path.is_symlink():
            raise SourceError(name, expected="an existing file", got=f"a broken symbolic link at {path}") from None
        raise SourceError(name, expected="an existing file", got=f"nothing at {path}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceError(name, expected="a file", got=f"a symbolic link loop at {path}") from None
        raise SourceError(name, expected="a readable file", got=f"{exc.strerror or exc} at {path}") from None
    if stat.S_ISDIR(st.st_mode):
        raise SourceError(name, expected="a file", got=f"a directory at {path}")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a special file")
        raise SourceError(name, expected="a regular file", got=f"{kind} at {path}; it was not opened")
    if not os.access(path, os.R_OK):
        raise SourceError(name, expected="a file the workbench may read", got="permission denied")
    if st.st_size == 0:
        raise SourceError(name, expected="a header line and data", got="an empty file (0 bytes)")


def compression_of(path: Path) -> str | None:
    """The compression the file's bytes use, checked against what its name says.

    Raises :class:`SourceError` when the name promises a compression the bytes do not have (or the reverse).
    """
    check_file(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except PermissionError:
        raise SourceError(path.name, expected="a file the workbench may read", got="permission denied") from None
    actual = next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)
    named = SUFFIX_COMPRESSION.get(path.suffix.lower())
    if named and actual != named:
        raise SourceError(path.name, expected=f"{named}-compressed data (the name ends in {path.suffix})",
                          got="uncompressed data" if actual is None else f"{actual}-compressed data")
    if actual in ("gzip", "bzip2", "xz") and not named and path.suffix.lower() not in (".parquet", ".xlsx",
                                                                                       ".xlsm", ".pq"):
        raise SourceError(path.name, expected="uncompressed text (the name has no compression suffix)",
                          got=f"{actual}-compressed data; rename the file to end in "
                              f"{ {'gzip': '.gz', 'bzip2': '.bz2', 'xz': '.xz'}[actual]}")
    return actual if named else None


def open_bytes(path: Path) -> io.BufferedIOBase:
    """A binary stream of the file's (decompressed) content."""
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "zip":
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise SourceError(path.name, expected="a readable zip archive", got=str(exc)) from None
        members = [m for m in zf.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise SourceError(path.name, expected="a zip archive holding exactly one file",
                              got=f"{len(members)} files")
        return zf.open(members[0])
    return open(path, "rb")


def _byte_lines(path: Path) -> Iterator[bytes]:
    """Lines of the decompressed file, without their line ends; compression faults become SourceErrors."""
    n = 0
    try:
        with open_bytes(path) as fh:
            for raw in fh:
                n += 1
                yield raw.rstrip(b"\n").rstrip(b"\r")
    except (EOFError, gzip.BadGzipFile, OSError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise _read_fault(path, exc, n) from None


def _read_fault(path: Path, exc: Exception, lines_read: int) -> SourceError:
    """The SourceError for a file that stops being readable after ``lines_read`` lines."""
    if isinstance(exc, EOFError):
        return SourceError(path.name, expected="a complete compressed file",
                           got=f"a file that ends early after line {lines_read:,} (truncated?)")
    if isinstance(exc, PermissionError):
        return SourceError(path.name, expected="a file the workbench may read", got="permission denied")
    return SourceError(path.name, expected="a readable compressed file",
                       got=f"{type(exc).__name__} after line {lines_read:,}: {exc}")


LINE_BLOCK_BYTES = 8 << 20  # JSON Lines are parsed in blocks of about this many (decompressed) bytes


def _line_blocks(path: Path, block_bytes: int = LINE_BLOCK_BYTES) -> Iterator[tuple[int, list[bytes]]]:
    """``(number of the first line, lines)`` in blocks of whole lines, each line as :func:`_byte_lines` gives it
    (line ends removed, a UTF-8 byte-order mark taken off line 1)."""
    n = 0
    tail = b""
    try:
        with open_bytes(path) as fh:
            while True:
                chunk = fh.read(block_bytes)
                if not chunk:
                    break
                data = tail + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    tail = data
                    continue
                tail = data[cut + 1:]
                lines = data[:cut].split(b"\n")
                if b"\r" in data:
                    lines = [line.rstrip(b"\r") for line in lines]
                if n == 0 and lines[0].startswith(codecs.BOM_UTF8):
                    lines[0] = lines[0][len(codecs.BOM_UTF8):]
                yield n + 1, lines
                n += len(lines)
    except (EOFError, gzip.BadGzipFile, OSError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise _read_fault(path, exc, n) from None
    if tail:
        last = tail.rstrip(b"\r")
        yield n + 1, [last[len(codecs.BOM_UTF8):] if n == 0 and last.startswith(codecs.BOM_UTF8) else last]


# ---------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------

BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]
FALLBACK = "cp1252"  # Western European exports that are not UTF-8 are almost always Windows-1252


def sniff_encoding(sample: bytes, complete: bool = True) -> str:
    """The encoding of a text sample: a byte-order mark decides; UTF-16 without one is recognised by its zero
    bytes; otherwise UTF-8 when the sample decodes as UTF-8, else Windows-1252.

    >>> sniff_encoding("Grüße".encode("utf-8")), sniff_encoding("Grüße".encode("cp1252"))
    ('utf-8', 'cp1252')
    >>> sniff_encoding("order_id,x".encode("utf-16-le"))
    'utf-16-le'
    """
    for bom, enc in BOMS:
        if sample.startswith(bom):
            return enc
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if not complete and exc.reason == "unexpected end of data" and exc.start >= len(sample) - 4:
            return "utf-8"  # a character cut by the end of the sample
    # Some lines are not UTF-8. If other lines hold valid multi-byte UTF-8, the file is a mixed export (UTF-8
    # with a few Windows-1252 lines, decoded line by line); otherwise it is Windows-1252 throughout.
    utf8_lines = bad_lines = 0
    for line in sample.split(b"\n")[:-1] if not complete else sample.split(b"\n"):
        if max(line, default=0) < 0x80:
            continue
        try:
            line.decode("utf-8")
            utf8_lines += 1
        except UnicodeDecodeError:
            bad_lines += 1
    return "utf-8" if utf8_lines and utf8_lines >= bad_lines else FALLBACK


def _read_sample(path: Path, size: int = 1 << 16) -> bytes:
    """The first ``size`` decompressed bytes; compression faults become SourceErrors."""
    try:
        with open_bytes(path) as fh:
            return fh.read(size)
    except EOFError:
        raise SourceError(path.name, expected="a complete compressed file",
                          got="a file that ends early (truncated?)") from None
    except (gzip.BadGzipFile, lzma.LZMAError, zipfile.BadZipFile, OSError) as exc:
        if isinstance(exc, PermissionError):
            raise SourceError(path.name, expected="a file the workbench may read", got="permission denied") from None
        raise SourceError(path.name, expected="a readable compressed file", got=f"{type(exc).__name__}: {exc}") from None


class LineDecoder:
    """Decodes a file's lines, reporting the lines that are not in the file's main encoding.

    ``declared='auto'`` sniffs the encoding from the start of the file. In a UTF-8 file, a line that is not valid
    UTF-8 (a mixed export) is decoded as Windows-1252 and its number is recorded. With a declared encoding, such a
    line is reported as undecodable instead (``None`` is returned for it).
    """

    def __init__(self, path: Path, declared: str = "auto") -> None:
        self.path = path
        self.declared = declared or "auto"
        self.sample = _read_sample(path)
        if not self.sample.strip(b"\xef\xbb\xbf\xff\xfe\x00\r\n\t "):
            got = "only a byte-order mark" if self.sample.strip(b"\r\n\t ") else "only blank lines"
            raise SourceError(path.name, expected="a header line and data", got=f"an empty file ({got})")
        if self.declared != "auto":
            try:
                codecs.lookup(self.declared)
            except LookupError:
                raise SourceError(path.name, expected="a known text encoding such as utf-8 or cp1252",
                                  got=f"encoding {self.declared!r}") from None
        complete = len(self.sample) < (1 << 16)
        self.encoding = sniff_encoding(self.sample, complete) if self.declared == "auto" else self.declared
        self.fallback_lines: list[int] = []
        self.undecodable: list[tuple[int, str]] = []

    @property
    def wide(self) -> bool:
        return self.encoding.replace("_", "-").lower().startswith(("utf-16", "utf-32"))

    def lines(self) -> Iterator[tuple[int, str | None]]:
        """``(line number, text)``; text is None for a line that cannot be decoded under a declared encoding."""
        if self.wide:
            with open_bytes(self.path) as fh:
                try:
                    text = io.TextIOWrapper(fh, encoding=self.encoding, newline="").read()
                except UnicodeDecodeError as exc:
                    raise SourceError(self.path.name, expected=f"text in {self.encoding}",
                                      got=f"bytes that are not {self.encoding} ({exc.reason})") from None
            for i, line in enumerate(text.split("\n"), start=1):
                if i == 1:
                    line = line.lstrip("\ufeff")
                yield i, line.rstrip("\r")
            return
        for i, raw in enumerate(_byte_lines(self.path), start=1):
            if i == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            yield i, self.decode(i, raw)

    def decode(self, i: int, raw: bytes) -> str | None:
        """Line ``i`` (its bytes without the line end) as text; None if it cannot be decoded (see the class)."""
        enc = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        try:
            return raw.decode(enc)
        except UnicodeDecodeError as exc:
            if self.declared == "auto" and enc == "utf-8":
                self.fallback_lines.append(i)
                return raw.decode(FALLBACK, errors="replace")
            self.undecodable.append((i, f"line {i} is not valid {enc} (byte 0x{raw[exc.start]:02x} at "
                                        f"position {exc.start + 1})"))
            return None


# ---------------------------------------------------------------------------
# Staging writer
# ---------------------------------------------------------------------------


class _Stager:
    """Collects text records and writes them as Parquet row groups."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.schema = pa.schema([(ROW, pa.int64())] + [(c, pa.string()) for c in columns])
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(str(path), self.schema)
        self.rows: list[int] = []
        self.values: list[list[str | None]] = []
        self.count = 0

    def add(self, row: int, values: list[str | None]) -> None:
        self.rows.append(row)
        self.values.append(values)
        if len(self.rows) >= CHUNK_RECORDS:
            self.flush()

    def add_frame(self, frame: pd.DataFrame, rows: list[int] | range) -> None:
        cols = {c: (pa.array(frame[c].astype("string"), type=pa.string(), from_pandas=True) if c in frame
                    else pa.nulls(len(frame), type=pa.string())) for c in self.columns}
        self.writer.write_table(pa.table({ROW: pa.array(list(rows), type=pa.int64()), **cols}, schema=self.schema))
        self.count += len(frame)

    def add_table(self, table: pa.Table) -> None:
        """Add an Arrow table of ``ROW`` and text columns; columns it lacks are null."""
        cols = {c: (table.column(c) if c in table.column_names else pa.nulls(table.num_rows, type=pa.string()))
                for c in self.columns}
        self.writer.write_table(pa.table({ROW: table.column(ROW), **cols}, schema=self.schema))
        self.count += table.num_rows

    def flush(self) -> None:
        if not self.rows:
            return
        cols = list(zip(*self.values)) if self.values else [[] for _ in self.columns]
        arrays = [pa.array(self.rows, type=pa.int64())] + [pa.array(list(c), type=pa.string()) for c in cols]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.count += len(self.rows)
        self.rows, self.values = [], []

    def close(self) -> None:
        self.flush()
        if self.count == 0:
            self.writer.write_table(self.schema.empty_table())
        self.writer.close()


def _unique_headers(names: list[str]) -> list[str]:
    out, seen = [], {}
    for i, n in enumerate(names):
        n = n.strip().lstrip("\ufeff") or f"column_{i + 1}"
        if n in seen:
            seen[n] += 1
            n = f"{n}_{seen[n]}"
        else:
            seen[n] = 1
        out.append(n)
    return out


# ---------------------------------------------------------------------------
# Delimited text
# ---------------------------------------------------------------------------


def detect_separator(header: str, declared: str | None = None) -> str:
    """The field separator: the declared one, else the candidate that occurs most often in the header line.

    >>> detect_separator("a;b;c"), detect_separator("a,b"), detect_separator("single")
    (';', ',', ',')
    """
    if declared and declared != "auto":
        return "\t" if declared in ("\\t", "tab") else declared
    counts = {s: header.count(s) for s in SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


def _parse_line(line: str, sep: str, quote: str) -> tuple[list[str] | None, str]:
    """Fields of one physical line: (fields, '') or (None, 'open') for an unclosed quote or (None, reason)."""
    if quote not in line:
        return line.split(sep), ""
    try:
        rows = list(csv.reader([line], delimiter=sep, quotechar=quote, strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc) or "newline inside string" in str(exc):
            return None, "open"
        return None, f"malformed quoting ({exc})"
    return (rows[0] if rows else []), ""


def _parse_record(text: str, sep: str, quote: str) -> tuple[list[str] | None, str]:
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar=quote, strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc) or "newline inside string" in str(exc):
            return None, "open"
        return None, f"malformed quoting ({exc})"
    if len(rows) != 1:
        return None, "open"
    return rows[0], ""


class _Lines:
    """A line iterator with push-back, so that a record's continuation lines can be re-read on their own."""

    def __init__(self, it: Iterator[tuple[int, str | None]]) -> None:
        self.it = it
        self.back: list[tuple[int, str | None]] = []

    def next(self) -> tuple[int, str | None] | None:
        if self.back:
            return self.back.pop()
        return next(self.it, None)

    def push(self, items: list[tuple[int, str | None]]) -> None:
        self.back.extend(reversed(items))


def read_delimited(path: Path, name: str, staged_path: Path, sep: str | None = "auto", quote: str = '"',
                   encoding: str = "auto", header_row: int = 1, strict: bool = False, limit: int | None = None
                   ) -> ReadResult:
    """Stage a delimited text file (CSV, TSV, ``;``-separated…), accounting for every physical record.

    A record normally is one line. A quoted field may span lines; a quote that is never closed (or that would
    swallow following records) makes only its own line unreadable, and reading resumes on the next line.
    Records with a different number of fields than the header are unreadable (extra empty trailing fields are
    tolerated). Blank lines are counted, not staged. The file is streamed: memory stays bounded.
    """
    decoder = LineDecoder(path, encoding)
    acc = Accounting(encoding=decoder.encoding)
    label = path.name
    bad: list[dict] = []
    lines = _Lines(decoder.lines())

    def reason_for(line_no: int) -> str:
        return dict(decoder.undecodable).get(line_no, "undecodable bytes")

    def unreadable(line_no: int, raw: str, reason: str) -> None:
        if strict:
            raise SourceError(label, row=line_no, expected="a readable record", got=reason)
        bad.append({"source": name, "file": label, ROW: line_no, "raw": (raw or "")[:500], "reason": reason})

    # Lines before the header row (report titles in some exports) count as header lines; blank lines are skipped.
    item = lines.next()
    while item is not None and (item[0] < header_row or (item[1] is not None and not item[1].strip())):
        if item[1] is not None and not item[1].strip():
            acc.blank_lines += 1
        else:
            acc.header_lines += 1
        item = lines.next()
    if item is None:
        raise SourceError(label, expected="a header line", got="no non-blank line")
    header_no, header_text = item
    if header_text is None:
        raise SourceError(label, row=header_no, expected=f"a header line in {decoder.encoding}",
                          got=reason_for(header_no))
    sep = detect_separator(header_text, sep)
    acc.separator = sep
    header, why = _parse_line(header_text, sep, quote)
    if header is None:
        raise SourceError(label, row=header_no, expected="a header line of column names", got=why)
    if len(header) == 1 and any(s in header_text for s in SEPARATORS if s != sep):
        found = next(s for s in SEPARATORS if s in header_text and s != sep)
        raise SourceError(label, row=header_no, expected=f"fields separated by {sep!r}",
                          got=f"a header separated by {found!r}")
    columns = _unique_headers(header)
    n = len(columns)
    acc.header_lines += 1
    acc.columns = columns
    stager = _Stager(staged_path, columns)
    while (item := lines.next()) is not None:
        if limit is not None and acc.records >= limit:  # a sample (the source wizard): stop early
            break
        line_no, text = item
        if text is None:
            acc.records += 1
            unreadable(line_no, "", reason_for(line_no))
            continue
        if not text.strip():
            acc.blank_lines += 1
            continue
        acc.records += 1
        fields, why = _parse_line(text, sep, quote)
        raw = text
        if why == "open":
            fields, raw, why = _continue_record(lines, line_no, text, sep, quote, n)
        if fields is None:
            unreadable(line_no, text, why)
            continue
        if len(fields) > n and not any(f.strip() for f in fields[n:]):
            fields = fields[:n]
        if len(fields) != n:
            unreadable(line_no, raw, f"expected {n} fields separated by {sep!r} as in the header, got {len(fields)}")
            continue
        stager.add(line_no, fields)
    stager.close()
    acc.staged = stager.count
    acc.unreadable = len(bad)
    acc.decoded_with_fallback = list(decoder.fallback_lines)
    acc.fallback_encoding = FALLBACK if decoder.fallback_lines else ""
    if acc.staged == 0 and acc.unreadable == 0:
        raise SourceError(label, expected="at least one data row", got="a header only")
    return ReadResult(name, label, staged_path, pd.DataFrame(bad) if bad else empty_unreadable(), acc)


def _continue_record(lines: _Lines, first_no: int, first: str, sep: str, quote: str, n: int
                     ) -> tuple[list[str] | None, str, str]:
    """A record whose quoted field runs over several lines: ``(fields, raw text, reason)``.

    Gives up when the quote is never closed, when it closes into a record with the wrong number of fields, or
    when the lines it swallowed look like complete records themselves; then only the first line is unreadable
    and the following lines are pushed back to be read on their own.
    """
    taken: list[tuple[int, str | None]] = []
    parts = [first]
    while len(taken) < MAX_RECORD_LINES:
        item = lines.next()
        if item is None or item[1] is None:
            if item is not None:
                taken.append(item)
            break
        taken.append(item)
        parts.append(item[1])
        fields, why = _parse_record("\n".join(parts), sep, quote)
        if why == "open":
            continue
        swallowed = sum(1 for t in parts[1:] if _looks_complete(t, sep, quote, n))
        if fields is None or len(fields) != n or swallowed >= 2:
            lines.push(taken)
            what = "malformed quoting" if fields is None else "an opening quote that is not closed where the " \
                "record should end"
            return None, first, f"{what} on line {first_no}; the following lines are read on their own"
        return fields, "\n".join(parts), ""
    lines.push(taken)
    return None, first, f"an opening quote on line {first_no} is never closed; the following lines are read on " \
        "their own"


def _looks_complete(text: str, sep: str, quote: str, n: int) -> bool:
    fields, why = _parse_line(text, sep, quote)
    return fields is not None and not why and len(fields) == n and n > 1


# ---------------------------------------------------------------------------
# JSON Lines and JSON
# ---------------------------------------------------------------------------


def _flatten(obj: dict, prefix: str = "") -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif v is None:
            out[key] = None
        elif isinstance(v, bool):
            out[key] = "true" if v else "false"
        elif isinstance(v, float):
            out[key] = str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
        elif isinstance(v, (list,)):
            out[key] = json.dumps(v, ensure_ascii=False)
        else:
            out[key] = str(v)
    return out


def _arrow_text_columns(payload: bytes, known: dict | None = None) -> dict[str, pa.Array] | None:
    """The JSON Lines in ``payload`` parsed by Arrow and flattened to text columns exactly as :func:`_flatten` would
    write them, or None when Arrow cannot give that exactly (a malformed or non-object line, a value whose type
    changes between lines, a list, an integer beyond 2**53 in a column of decimals, a non-finite number, a repeated
    key): the caller then reads those lines one by one. ``known`` (a dict the caller keeps between blocks) remembers
    the fields Arrow would read as dates, so later blocks are parsed once instead of twice."""
    import numpy as np
    import pyarrow.json as pj

    def parse(schema: pa.Schema | None) -> pa.Table:
        opts = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer") if schema else None
        return pj.read_json(io.BytesIO(payload), read_options=pj.ReadOptions(block_size=max(1 << 20, len(payload))),
                            parse_options=opts)

    def as_text(t: pa.DataType) -> pa.DataType:  # Arrow reads ISO dates as timestamps; the staged table is text
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, as_text(f.type)) for f in t])
        return pa.string() if pa.types.is_temporal(t) else t

    known = {} if known is None else known
    try:
        table = parse(known.get("schema"))
        text_schema = pa.schema([pa.field(f.name, as_text(f.type)) for f in table.schema])
        # the fields to read as text in later blocks too (pinning a number field instead would make a later block
        # whose values in it are text fail and be read line by line: exact, but slow)
        pinned = [t for t, f in zip(text_schema, table.schema) if t.type != f.type or t.name in known.get("names", ())]
        known["names"] = {f.name for f in pinned}
        known["schema"] = pa.schema(pinned) if pinned else None
        if not text_schema.equals(table.schema):
            table = parse(text_schema)
        while any(pa.types.is_struct(f.type) for f in table.schema):
            table = table.flatten()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    out: dict[str, pa.Array] = {}
    for name, col in zip(table.column_names, table.columns):
        col = col.combine_chunks()
        t = col.type
        if pa.types.is_string(t):
            out[name] = col
        elif pa.types.is_null(t):
            out[name] = pa.nulls(len(col), pa.string())
        elif pa.types.is_boolean(t) or pa.types.is_int64(t):
            out[name] = col.cast(pa.string())  # "true"/"false", and integers as Python writes them
        elif pa.types.is_float64(t):
            values = col.to_numpy(zero_copy_only=False)
            finite = values[~np.isnan(values)] if col.null_count else values
            if not np.isfinite(finite).all() or (np.abs(finite) > 2.0 ** 53).any():
                return None
            out[name] = pa.array([None if v is None else (str(int(v)) if v.is_integer() and abs(v) < 1e15 else
                                                           repr(v)) for v in col.to_pylist()], type=pa.string())
        else:
            return None
    return out


def read_jsonl(path: Path, name: str, staged_path: Path, encoding: str = "auto", strict: bool = False,
               limit: int | None = None) -> ReadResult:
    """Stage JSON Lines (one object per line, optionally compressed); bad lines are unreadable with their number.

    Nested objects become dotted column names (``context.ip``); lists are kept as JSON text. A UTF-8 file is parsed
    by Arrow a block of lines at a time; a block Arrow cannot read exactly (a broken line, a list, a value whose
    type changes) is read line by line in Python, so every line is staged or reported exactly as that reader would.
    """
    decoder = LineDecoder(path, encoding)
    acc = Accounting(encoding=decoder.encoding)
    label = path.name
    bad: list[dict] = []
    records: list[dict] = []
    rows: list[int] = []
    columns: dict[str, None] = {}
    # Each full chunk is spilled at once to a temporary Parquet part (its own columns, all text), so memory holds
    # one chunk however long the file is; the parts are conformed to the final columns at the end.
    parts: list[Path] = []

    def write_part(table: pa.Table) -> None:
        part = staged_path.with_name(f".{staged_path.stem}.part{len(parts)}.parquet")
        part.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, str(part))
        parts.append(part)

    def spill() -> None:
        cols = [c for c in columns if any(c in rec for rec in records)]
        write_part(pa.table({ROW: pa.array(rows, type=pa.int64()),
                             **{c: pa.array([rec.get(c) for rec in records], type=pa.string()) for c in cols}}))
        rows.clear()
        records.clear()

    undecodable = dict(decoder.undecodable)

    def one_line(line_no: int, text: str | None) -> None:
        if text is None:
            acc.records += 1
            reason = dict(decoder.undecodable).get(line_no, undecodable.get(line_no, "undecodable bytes"))
            if strict:
                raise SourceError(label, row=line_no, expected="a readable line", got=reason)
            bad.append({"source": name, "file": label, ROW: line_no, "raw": "", "reason": reason})
            return
        if not text.strip():
            acc.blank_lines += 1
            return
        acc.records += 1
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise ValueError(f"a JSON {type(obj).__name__}, not an object")
        except (ValueError, RecursionError) as exc:
            reason = f"line {line_no} is not a complete JSON object ({str(exc).split(':')[0]})"
            if strict:
                raise SourceError(label, row=line_no, expected="one JSON object per line", got=reason) from None
            bad.append({"source": name, "file": label, ROW: line_no, "raw": text[:500], "reason": reason})
            return
        flat = _flatten(obj)
        for k in flat:
            columns.setdefault(k, None)
        records.append(flat)
        rows.append(line_no)
        if len(records) >= CHUNK_RECORDS:
            spill()

    known_fields: dict = {}  # what Arrow learnt of the fields in earlier blocks

    def block(first_no: int, lines: list[bytes]) -> bool:
        """Stage a block of lines through Arrow; False (nothing staged) when it must be read line by line."""
        kept = [i for i, line in enumerate(lines) if line.strip()]
        payload = b"\n".join(lines[i] for i in kept) if len(kept) < len(lines) else b"\n".join(lines)
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            return False
        text = _arrow_text_columns(payload, known_fields) if kept else {}
        if text is None or (kept and len(next(iter(text.values()), [])) != len(kept)) or (kept and not text):
            return False
        if records:
            spill()  # lines read one by one before this block keep their place in the file's order
        for k in text:
            columns.setdefault(k, None)
        if kept:
            write_part(pa.table({ROW: pa.array([first_no + i for i in kept], type=pa.int64()),
                                 **{c: text[c] for c in columns if c in text}}))
        acc.records += len(kept)
        acc.blank_lines += len(lines) - len(kept)
        return True

    def lines_in_order(first_no: int, lines: list[bytes]) -> None:
        """A block through Arrow; if it cannot be, its halves, down to a few hundred lines read one by one, so a
        broken line costs Python only the lines around it."""
        if block(first_no, lines):
            return
        if len(lines) > 256:
            half = len(lines) // 2
            lines_in_order(first_no, lines[:half])
            lines_in_order(first_no + half, lines[half:])
            return
        for offset, raw in enumerate(lines):
            one_line(first_no + offset, decoder.decode(first_no + offset, raw))

    if limit is None and not decoder.wide and decoder.encoding in ("utf-8", "utf-8-sig"):
        for first_no, lines in _line_blocks(path, LINE_BLOCK_BYTES):
            lines_in_order(first_no, lines)
    else:
        for line_no, text in decoder.lines():
            if limit is not None and acc.records >= limit:
                break
            one_line(line_no, text)
    if records:
        spill()
    if not parts:
        if bad:
            raise SourceError(label, row=bad[0][ROW], expected="at least one readable JSON object per line",
                              got=f"no readable line ({bad[0]['reason']})")
        raise SourceError(label, expected="at least one JSON object per line", got="no data lines")
    stager = _Stager(staged_path, list(columns))
    try:
        for part in parts:
            stager.add_table(pq.read_table(str(part)))
    finally:
        stager.close()
        for part in parts:
            part.unlink(missing_ok=True)
    acc.staged, acc.unreadable, acc.columns = stager.count, len(bad), list(columns)
    acc.decoded_with_fallback = list(decoder.fallback_lines)
    acc.fallback_encoding = FALLBACK if decoder.fallback_lines else ""
    return ReadResult(name, label, staged_path, pd.DataFrame(bad) if bad else empty_unreadable(), acc)


def read_json(path: Path, name: str, staged_path: Path, records_path: str = "", encoding: str = "auto"
              ) -> ReadResult:
    """Stage a JSON document holding a list of objects (at the top level or under ``records_path``, dotted).

    ``_row`` is the position of the object in the list (1-based). Items that are not objects are unreadable.
    """
    decoder = LineDecoder(path, encoding)
    text = "\n".join(t or "" for _, t in decoder.lines())
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SourceError(path.name, expected="a JSON document (or name the file .jsonl for JSON Lines)",
                          got=str(exc).split(":")[0]) from None
    for part in [p for p in records_path.split(".") if p]:
        doc = doc.get(part) if isinstance(doc, dict) else None
    if isinstance(doc, dict):
        lists = [k for k, v in doc.items() if isinstance(v, list)]
        if len(lists) == 1:
            doc = doc[lists[0]]
    if not isinstance(doc, list):
        raise SourceError(path.name, expected="a list of records (set read.records_path to where it is)",
                          got=f"a JSON {type(doc).__name__}")
    acc = Accounting(encoding=decoder.encoding, records=len(doc))
    bad, recs, rows, columns = [], [], [], {}
    for i, item in enumerate(doc, start=1):
        if not isinstance(item, dict):
            bad.append({"source": name, "file": path.name, ROW: i, "raw": json.dumps(item)[:500],
                        "reason": f"record {i} is a JSON {type(item).__name__}, not an object"})
            continue
        flat = _flatten(item)
        for k in flat:
            columns.setdefault(k, None)
        recs.append(flat)
        rows.append(i)
    stager = _Stager(staged_path, list(columns))
    if recs:
        stager.add_frame(pd.DataFrame.from_records(recs, columns=list(columns)), rows)
    stager.close()
    acc.staged, acc.unreadable, acc.columns = stager.count, len(bad), list(columns)
    if not recs:
        raise SourceError(path.name, expected="at least one record", got="an empty list")
    return ReadResult(name, path.name, staged_path, pd.DataFrame(bad) if bad else empty_unreadable(), acc)


# ---------------------------------------------------------------------------
# Parquet, Excel, SQL
# ---------------------------------------------------------------------------


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as nullable text: timestamps in ISO form (keeping a time zone's offset), whole floats without
    '.0', booleans as true/false."""
    out = {}
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            txt = s.map(lambda v: None if pd.isna(v) else v.isoformat(sep=" "))
        elif pd.api.types.is_datetime64_any_dtype(s):
            txt = s.dt.strftime("%Y-%m-%d %H:%M:%S")
        elif pd.api.types.is_bool_dtype(s):
            txt = s.map({True: "true", False: "false"})
        elif pd.api.types.is_float_dtype(s):
            txt = s.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() and abs(v) < 1e15
                                                           else repr(float(v))))
        else:
            txt = s.map(_cell_text)
        out[str(col)] = txt.astype("string")
    return pd.DataFrame(out, index=df.index)


def _cell_text(v) -> str | None:
    import datetime as dt

    if v is None or (isinstance(v, float) and v != v):
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return str(v)


def read_parquet(path: Path, name: str, staged_path: Path) -> ReadResult:
    """Stage a Parquet file batch by batch; ``_row`` is the 1-based position. The row count comes from the
    file's metadata, and every row is staged."""
    check_file(path)
    try:
        pf = pq.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise SourceError(path.name, expected="a readable Parquet file", got=f"{type(exc).__name__}: "
                          f"{str(exc)[:160]}") from None
    total = pf.metadata.num_rows
    columns = [str(c) for c in pf.schema_arrow.names]
    stager = _Stager(staged_path, _unique_headers(columns))
    pos = 1
    try:
        for batch in pf.iter_batches(batch_size=CHUNK_RECORDS):
            frame = as_text(batch.to_pandas())
            frame.columns = stager.columns
            stager.add_frame(frame, range(pos, pos + len(frame)))
            pos += len(frame)
    except Exception as exc:
        raise SourceError(path.name, row=pos, expected="a readable Parquet file",
                          got=f"{type(exc).__name__}: {str(exc)[:160]}") from None
    stager.close()
    if total == 0:
        raise SourceError(path.name, expected="at least one row", got="an empty table")
    acc = Accounting(records=total, staged=stager.count, columns=stager.columns, encoding="parquet")
    return ReadResult(name, path.name, staged_path, empty_unreadable(), acc)


def read_excel(path: Path, name: str, staged_path: Path, sheet: str | int = 0, header_row: int = 1
               ) -> ReadResult:
    """Stage one sheet of an .xlsx workbook; ``_row`` is the spreadsheet row. Empty rows are counted as blank."""
    check_file(path)
    import openpyxl

    try:
        wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as exc:
        raise SourceError(path.name, expected="a readable .xlsx workbook", got=type(exc).__name__) from None
    try:
        if isinstance(sheet, int):
            if sheet >= len(wb.sheetnames):
                raise SourceError(path.name, expected=f"a sheet number {sheet + 1}", got=f"{len(wb.sheetnames)} "
                                  "sheet(s)")
            ws = wb[wb.sheetnames[sheet]]
        elif sheet in wb.sheetnames:
            ws = wb[sheet]
        else:
            raise SourceError(path.name, expected=f"a sheet named {sheet!r}",
                              got="sheets " + ", ".join(map(repr, wb.sheetnames)))
        acc = Accounting(encoding="xlsx")
        stager = None
        for r, values in enumerate(ws.iter_rows(values_only=True), start=1):
            texts = [_cell_text(v) for v in values]
            empty = all(t is None or not str(t).strip() for t in texts)
            if stager is None:
                if r < header_row or empty:
                    acc.header_lines += 1 if not empty else 0
                    acc.blank_lines += 1 if empty else 0
                    continue
                stager = _Stager(staged_path, _unique_headers([t or "" for t in texts]))
                acc.header_lines += 1
                width = len(texts)
                continue
            if empty:
                acc.blank_lines += 1
                continue
            acc.records += 1
            texts = (texts + [None] * width)[:width]
            stager.add(r, texts)
        if stager is None:
            raise SourceError(path.name, expected="a header row and data", got="an empty sheet")
        stager.close()
        acc.staged, acc.columns = stager.count, stager.columns
        if acc.staged == 0:
            raise SourceError(path.name, expected="at least one data row", got="a header only")
        return ReadResult(name, path.name, staged_path, empty_unreadable(), acc)
    finally:
        wb.close()


def read_sql(db_url: str, query: str, name: str, staged_path: Path) -> ReadResult:
    """Stage the result of ``query`` (SQLite or DuckDB file, or any SQLAlchemy URL).

    The row count is asked from the database separately (``SELECT COUNT(*)``), so a driver that drops rows is
    noticed. Error messages name the database by :func:`~helpers.core.secrets.db_label`, never by its URL.
    """
    import sqlite3

    url = resolve_db_url(db_url)
    shown = db_label(db_url)
    count_sql = f"SELECT COUNT(*) FROM ({query}) AS q"

    def fail(exc: Exception, what: str) -> SourceError:
        detail = redact_url(str(exc)).replace(url, shown)[:200]
        return SourceError(shown, expected=what, got=f"{type(exc).__name__}: {detail}")

    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):].split("?", 1)[0])
        check_file(path)
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise fail(exc, "a readable SQLite database") from None
        try:
            total = con.execute(count_sql).fetchone()[0]
            df = pd.read_sql_query(query, con)
        except Exception as exc:
            raise fail(exc, f"the query {query!r} to run") from None
        finally:
            con.close()
    elif url.startswith("duckdb:///"):
        import duckdb

        path = url[len("duckdb:///"):].split("?", 1)[0]
        check_file(Path(path))
        try:
            with duckdb.connect(path, read_only=True) as con:
                con.execute("SET enable_progress_bar = false")  # no progress widgets in the reports
                total = con.execute(count_sql).fetchone()[0]
                df = con.execute(query).df()
        except Exception as exc:
            raise fail(exc, f"the query {query!r} to run") from None
    else:
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(url)
            with engine.connect() as con:
                total = con.execute(sqlalchemy.text(count_sql)).scalar()
                df = pd.read_sql_query(sqlalchemy.text(query), con)
        except Exception as exc:  # never echo the URL itself: it may carry a password
            raise SourceError(shown, expected=f"a reachable database answering {query!r}",
                              got=type(exc).__name__) from None
    if df.empty:
        raise SourceError(shown, expected=f"rows from {query!r}", got="an empty result")
    stager = _Stager(staged_path, _unique_headers([str(c) for c in df.columns]))
    frame = as_text(df)
    frame.columns = stager.columns
    stager.add_frame(frame, range(1, len(frame) + 1))
    stager.close()
    acc = Accounting(records=int(total), staged=stager.count, columns=stager.columns, encoding="database")
    bad = empty_unreadable()
    if total > len(df):
        missing = int(total) - len(df)
        bad = pd.DataFrame([{"source": name, "file": shown, ROW: len(df) + 1, "raw": "",
                             "reason": f"{missing} row(s) counted by the database were not returned by the driver"}])
        acc.unreadable = missing
    return ReadResult(name, shown, staged_path, bad, acc)
