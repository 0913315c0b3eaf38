"""The data source catalogue (``config/sources.yaml``) as typed objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from helpers.errors import SourceError
from helpers.paths import CONFIG_DIR

COLUMN_TYPES = {"string", "integer", "float", "boolean", "datetime", "email"}
FORMATS = {"csv", "jsonl", "parquet", "excel", "sql"}
DATA_TYPES = ("demographic", "behavioural", "transactional", "psychographic")


@dataclass(frozen=True)
class ColumnSpec:
    """What one column must hold."""

    name: str
    type: str = "string"
    required: bool = False
    allowed: list[str] | None = None
    lower: bool = False
    formats: list[str] | None = None
    min: float | None = None
    max: float | None = None
    pii: bool = False
    references: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """How to read one source and what it must contain."""

    name: str
    format: str
    columns: dict[str, ColumnSpec]
    description: str = ""
    file: str | None = None
    query: str | None = None
    options: dict = field(default_factory=dict)
    feeds: list[str] = field(default_factory=list)
    date_column: str | None = None
    key: list[str] = field(default_factory=list)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.required]

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.pii]

    @property
    def label(self) -> str:
        """The name users know the source by: its file, or its query."""
        return self.file or f"{self.name} (database)"


def load_catalog(path: str | Path | None = None) -> dict[str, SourceSpec]:
    """Read and check the source catalogue.

    >>> sorted(load_catalog())[:3]
    ['campaigns', 'customers', 'email_sends']
    """
    path = Path(path) if path else CONFIG_DIR / "sources.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or "sources" not in raw:
        raise SourceError(path.name, expected="a top-level 'sources:' mapping")
    out: dict[str, SourceSpec] = {}
    for name, entry in raw["sources"].items():
        fmt = entry.get("format")
        if fmt not in FORMATS:
            raise SourceError(path.name, f"sources.{name}.format", expected=f"one of {sorted(FORMATS)}",
                              got=repr(fmt))
        if fmt != "sql" and not entry.get("file"):
            raise SourceError(path.name, f"sources.{name}.file", expected="a file name for a file source")
        for feed in entry.get("feeds", []):
            if feed not in DATA_TYPES:
                raise SourceError(path.name, f"sources.{name}.feeds", expected=f"one of {DATA_TYPES}", got=feed)
        cols = {}
        for cname, cdef in (entry.get("columns") or {}).items():
            cdef = dict(cdef or {})
            if cdef.get("type", "string") not in COLUMN_TYPES:
                raise SourceError(path.name, f"sources.{name}.columns.{cname}.type",
                                  expected=f"one of {sorted(COLUMN_TYPES)}", got=repr(cdef.get("type")))
            if "allowed" in cdef:
                cdef["allowed"] = [str(a) for a in cdef["allowed"]]
            cols[cname] = ColumnSpec(name=cname, **cdef)
        out[name] = SourceSpec(
            name=name, format=fmt, columns=cols, description=entry.get("description", ""), file=entry.get("file"),
            query=entry.get("query"), options=dict(entry.get("options") or {}), feeds=list(entry.get("feeds", [])),
            date_column=entry.get("date_column"), key=list(entry.get("key", [])),
        )
    return out
