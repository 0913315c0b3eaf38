"""The data source catalogue: which files and tables a company has, how to read them, and how their columns map
onto the canonical model (:mod:`helpers.canonical.model`).

A catalogue is YAML::

    dataset:
      name: Online Retail (UCI)        # shown in the reports
      currency: GBP                    # reporting currency; every amount is shown in it
      timezone: Europe/London          # every timestamp is converted to this zone
    sources:
      invoices:
        file: online_retail.csv.gz     # relative to the source folder, or absolute
        entity: order_lines            # the canonical table it feeds
        locale: {decimal: ".", date_order: YMD, timezone: Europe/London, currency: GBP}
        columns:                       # role: source column (or a mapping with options)
          order_id: InvoiceNo
          order_date: {column: InvoiceDate, formats: ["%Y-%m-%d %H:%M:%S"]}
          customer_id: CustomerID
          quantity: Quantity
          unit_price: UnitPrice
        rules:
          reversal: {column: InvoiceNo, starts_with: C}   # credit notes: their value is refunded

Any subset of entities is valid; the minimum is one transactions source (``orders`` or ``order_lines``) with a
customer, a date and an amount (or quantity and unit price). Column names are matched case-, space-, underscore-
and hyphen-insensitively; a declared column that is absent from the file is an error only when its role is
required. ``python -m helpers.sources suggest FILE`` proposes an entry for a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from helpers.core.model import ENTITIES, TRANSACTION_ENTITIES, Entity, Role
from helpers.core.errors import SourceError
from helpers.core.paths import CONFIG_DIR
from helpers.core.text import did_you_mean

FORMATS = ("csv", "jsonl", "json", "parquet", "excel", "sql")
EXTENSION_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                     ".json": "json", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel", ".xlsm": "excel"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip")
DATE_ORDERS = ("YMD", "DMY", "MDY")
DUPLICATE_RULES = ("latest", "first", "quarantine")
MISSING_CUSTOMER_RULES = ("guest", "quarantine")
SOURCE_KEYS = {"description", "file", "query", "table", "format", "entity", "feeds", "read", "locale", "columns",
               "constants", "rules"}
READ_KEYS = {"sep", "quote", "sheet", "header_row", "records_path"}
LOCALE_KEYS = {"decimal", "thousands", "date_order", "timezone", "encoding", "currency"}
COLUMN_KEYS = {"column", "formats", "allowed", "min", "max", "lower", "values", "pii", "required"}
RULE_KEYS = {"reversal", "missing_customer", "duplicates", "references", "outliers", "decimal_check", "window"}
DATASET_KEYS = {"name", "currency", "timezone", "description"}
_SQL_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def normalise_header(name: str) -> str:
    """The form in which column names are compared: lower case, without spaces, underscores, hyphens and dots.

    >>> normalise_header(" Customer ID"), normalise_header("customer_id"), normalise_header("Discount_Pct")
    ('customerid', 'customerid', 'discountpct')
    """
    return re.sub(r"[\s_.\-]+", "", str(name).strip().lstrip("\ufeff")).lower()


@dataclass(frozen=True)
class ColumnMap:
    """How one canonical role is read from a source: the source column and optional reading rules."""

    role: str
    column: str | None = None
    formats: tuple[str, ...] | None = None
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    lower: bool | None = None
    values: dict[str, tuple[str, ...]] | None = None  # canonical value -> source spellings
    pii: bool | None = None
    required: bool | None = None
    constant: str | None = None  # from `constants:`: the same value on every row


@dataclass(frozen=True)
class Locale:
    """How a source writes numbers, dates and text."""

    decimal: str = "."
    thousands: str = ""
    date_order: str = "YMD"
    timezone: str | None = None  # zone of naive timestamps; None: already in the data set's zone
    encoding: str = "auto"
    currency: str | None = None  # currency of amounts when no currency column is mapped


@dataclass(frozen=True)
class Rules:
    """Per-source cleaning rules, with their defaults stated."""

    reversal: dict | None = None  # {column|role, starts_with|equals}: rows that reverse an earlier sale
    missing_customer: str = "guest"  # transactions without a customer: kept as guest orders, or quarantined
    duplicates: str = "latest"  # same key, different values: latest non-empty value per field wins
    references: str = "check"  # references into other entities are enforced
    outlier_z: float = 5.0  # money lines more than z robust SDs (log scale) from the typical line are outliers
    outlier_max_quantity: float | None = None  # and lines above this quantity
    decimal_check: bool = True  # a value 100× the column's typical size written in the other decimal style
    window: bool = True  # the entity's date must lie in the analysis window


@dataclass(frozen=True)
class SourceSpec:
    """One source: where it is, how to read it, which entity it feeds and how its columns map to roles."""

    name: str
    entity: str
    format: str
    columns: dict[str, ColumnMap]
    description: str = ""
    file: str | None = None
    query: str | None = None
    read: dict = field(default_factory=dict)
    locale: Locale = field(default_factory=Locale)
    rules: Rules = field(default_factory=Rules)
    feeds: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The name users know the source by: its file name, or the query's table."""
        if self.file:
            return Path(self.file).name
        return f"{self.name} (database)"

    @property
    def model(self) -> Entity:
        return ENTITIES[self.entity]

    def role(self, name: str) -> Role:
        return self.model.roles[name]

    def is_required(self, role: str) -> bool:
        cmap = self.columns.get(role)
        if cmap is not None and cmap.required is not None:
            return cmap.required
        return self.model.roles[role].required if role in self.model.roles else False

    def is_pii(self, role: str) -> bool:
        cmap = self.columns.get(role)
        if cmap is not None and cmap.pii is not None:
            return cmap.pii
        return self.model.roles[role].pii if role in self.model.roles else False

    @property
    def pii_columns(self) -> set[str]:
        """Source column names that hold personal data (never shown in stakeholder reports)."""
        return {c.column for r, c in self.columns.items() if c.column and self.is_pii(r)}


@dataclass(frozen=True)
class Dataset:
    """What the reports call the data and how they show money and time."""

    name: str = "Your data"
    currency: str = "EUR"
    timezone: str = "UTC"
    description: str = ""


@dataclass(frozen=True)
class Catalog:
    """A whole catalogue: the data set and its sources."""

    dataset: Dataset
    sources: dict[str, SourceSpec]
    path: str = ""

    def by_entity(self, entity: str) -> list[SourceSpec]:
        return [s for s in self.sources.values() if s.entity == entity]

    @property
    def entities(self) -> list[str]:
        """Entities with at least one source, in model order."""
        present = {s.entity for s in self.sources.values()}
        return [e for e in ENTITIES if e in present]


def _err(path: Path, where: str, expected: str, got: object = None) -> SourceError:
    return SourceError(path.name, key=where, expected=expected, got="" if got is None else repr(got))


def _check_keys(path: Path, where: str, given: dict, allowed: set[str]) -> None:
    for k in given:
        if k not in allowed:
            raise SourceError(path.name, key=where, expected=f"one of the keys {', '.join(sorted(allowed))}",
                              got=f"unknown key {k!r}{did_you_mean(k, allowed)}")


def _column_map(path: Path, src: str, role: str, value: object, entity: Entity) -> ColumnMap:
    where = f"sources.{src}.columns.{role}"
    if role not in entity.roles and not entity.extra_columns:
        raise SourceError(path.name, key=where, expected=f"a role of entity {entity.name!r} "
                          f"({', '.join(entity.roles)})", got=f"unknown role {role!r}{did_you_mean(role, entity.roles)}")
    if isinstance(value, str):
        return ColumnMap(role, column=value)
    if not isinstance(value, dict):
        raise _err(path, where, "a source column name, or a mapping with 'column'", value)
    _check_keys(path, where, value, COLUMN_KEYS)
    if not value.get("column"):
        raise _err(path, where, "'column': the name of the source column")
    formats = value.get("formats")
    if formats is not None and (not isinstance(formats, list) or not all(isinstance(f, str) for f in formats)):
        raise _err(path, f"{where}.formats", "a list of strptime formats such as ['%d.%m.%Y']", formats)
    values = value.get("values")
    if values is not None:
        if not isinstance(values, dict):
            raise _err(path, f"{where}.values", "a mapping of canonical value to a list of source spellings", values)
        values = {str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v])) for k, v in values.items()}
    allowed = value.get("allowed")
    for bound in ("min", "max"):
        if value.get(bound) is not None and not isinstance(value[bound], (int, float)):
            raise _err(path, f"{where}.{bound}", "a number", value[bound])
    return ColumnMap(role, column=str(value["column"]), formats=tuple(formats) if formats else None,
                     allowed=tuple(str(a) for a in allowed) if allowed is not None else None,
                     min=value.get("min"), max=value.get("max"), lower=value.get("lower"), values=values,
                     pii=value.get("pii"), required=value.get("required"))


def _locale(path: Path, src: str, raw: dict) -> Locale:
    where = f"sources.{src}.locale"
    _check_keys(path, where, raw, LOCALE_KEYS)
    loc = Locale(**{k: (str(v) if v is not None else None) for k, v in raw.items()})
    if loc.decimal not in (".", ","):
        raise _err(path, f"{where}.decimal", "'.' or ','", loc.decimal)
    if loc.thousands not in ("", ",", ".", " ", "'", "\u00a0"):
        raise _err(path, f"{where}.thousands", "'', ',', '.', ' ' or \"'\"", loc.thousands)
    if loc.thousands and loc.thousands == loc.decimal:
        raise _err(path, f"{where}.thousands", "a thousands separator different from the decimal mark",
                   loc.thousands)
    if loc.date_order.upper() not in DATE_ORDERS:
        raise _err(path, f"{where}.date_order", f"one of {', '.join(DATE_ORDERS)}", loc.date_order)
    if loc.timezone:
        _check_timezone(path, f"{where}.timezone", loc.timezone)
    if loc.currency and not re.fullmatch(r"[A-Z]{3}", loc.currency):
        raise _err(path, f"{where}.currency", "a three-letter ISO currency code such as EUR or GBP", loc.currency)
    return Locale(loc.decimal, loc.thousands, loc.date_order.upper(), loc.timezone, loc.encoding, loc.currency)


def _check_timezone(path: Path, where: str, tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _err(path, where, "an IANA time zone such as Europe/Berlin or UTC", tz) from exc


def _rules(path: Path, src: str, raw: dict, entity: Entity) -> Rules:
    where = f"sources.{src}.rules"
    _check_keys(path, where, raw, RULE_KEYS)
    kw: dict = {}
    if "reversal" in raw:
        rev = raw["reversal"]
        if not isinstance(rev, dict) or not (rev.get("column") or rev.get("role")) or not (
                "starts_with" in rev or "equals" in rev):
            raise _err(path, f"{where}.reversal", "{column: <source column> (or role: <role>), starts_with: <text>"
                       " or equals: [<values>]}", rev)
        kw["reversal"] = dict(rev)
    for key, allowed in (("missing_customer", MISSING_CUSTOMER_RULES), ("duplicates", DUPLICATE_RULES),
                         ("references", ("check", "ignore"))):
        if key in raw:
            if raw[key] not in allowed:
                raise _err(path, f"{where}.{key}", f"one of {', '.join(allowed)}", raw[key])
            kw[key] = raw[key]
    if "outliers" in raw:
        o = raw["outliers"] or {}
        if not isinstance(o, dict) or set(o) - {"z", "max_quantity"}:
            raise _err(path, f"{where}.outliers", "{z: <robust z on the log scale>, max_quantity: <units>}", o)
        if "z" in o:
            if not isinstance(o["z"], (int, float)) or o["z"] <= 0:
                raise _err(path, f"{where}.outliers.z", "a positive number", o["z"])
            kw["outlier_z"] = float(o["z"])
        if o.get("max_quantity") is not None:
            kw["outlier_max_quantity"] = float(o["max_quantity"])
    for key in ("decimal_check", "window"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise _err(path, f"{where}.{key}", "true or false", raw[key])
            kw[key] = raw[key]
    return Rules(**kw)


def infer_format(file: str) -> str | None:
    """The format a file name suggests (compression suffixes are looked through).

    >>> infer_format("events.jsonl.gz"), infer_format("Orders.XLSX"), infer_format("x.bin")
    ('jsonl', 'excel', None)
    """
    p = Path(file.lower())
    if p.suffix in COMPRESSIONS:
        p = p.with_suffix("")
    return EXTENSION_FORMATS.get(p.suffix)


def parse_source(path: Path, name: str, entry: dict) -> SourceSpec:
    """Check and type one ``sources:`` entry."""
    if not isinstance(entry, dict):
        raise _err(path, f"sources.{name}", "a mapping with file/query, entity and columns", entry)
    _check_keys(path, f"sources.{name}", entry, SOURCE_KEYS)
    ent_name = entry.get("entity")
    if ent_name not in ENTITIES:
        raise _err(path, f"sources.{name}.entity", f"one of {', '.join(ENTITIES)}"
                   + (did_you_mean(str(ent_name), ENTITIES) if ent_name else ""), ent_name)
    ent = ENTITIES[ent_name]
    fmt = entry.get("format") or ("sql" if entry.get("query") or entry.get("table") else
                                   infer_format(str(entry.get("file", ""))))
    if fmt not in FORMATS:
        raise _err(path, f"sources.{name}.format", f"one of {', '.join(FORMATS)} (or a file name whose extension "
                   "tells it)", entry.get("format") or entry.get("file"))
    if fmt != "sql" and not entry.get("file"):
        raise _err(path, f"sources.{name}.file", "a file name for a file source")
    query = entry.get("query")
    if fmt == "sql" and not query:
        table = entry.get("table") or name
        if not _SQL_IDENT.match(str(table)):
            raise _err(path, f"sources.{name}.table", "a plain table name (letters, digits, _ and .)", table)
        query = f"SELECT * FROM {table}"
    read = dict(entry.get("read") or {})
    _check_keys(path, f"sources.{name}.read", read, READ_KEYS)
    columns_raw = entry.get("columns") or {}
    if not isinstance(columns_raw, dict) or not columns_raw:
        raise _err(path, f"sources.{name}.columns", "a mapping of canonical role to source column, e.g. "
                   "{customer_id: CustomerID}", columns_raw)
    columns = {role: _column_map(path, name, role, v, ent) for role, v in columns_raw.items()}
    for role, value in (entry.get("constants") or {}).items():
        if role not in ent.roles:
            raise _err(path, f"sources.{name}.constants.{role}", f"a role of entity {ent.name}"
                       + did_you_mean(role, ent.roles), role)
        columns[role] = ColumnMap(role, constant=str(value))
    seen: dict[str, str] = {}
    for role, c in columns.items():
        if c.column:
            key = normalise_header(c.column)
            if key in seen and ent.roles.get(role) and ent.roles.get(seen[key]):
                pass  # one column may feed two roles (e.g. InvoiceNo as order id and reversal marker)
            seen.setdefault(key, role)
    missing = [r for r in ent.required_roles if r not in columns]
    if missing:
        raise _err(path, f"sources.{name}.columns", f"a mapping for the required role(s) {', '.join(missing)} of "
                   f"entity {ent.name}", f"roles {', '.join(columns)}")
    feeds = tuple(entry.get("feeds") or ent.feeds)
    return SourceSpec(name=name, entity=ent_name, format=fmt, columns=columns,
                      description=str(entry.get("description", "")), file=entry.get("file"), query=query, read=read,
                      locale=_locale(path, name, dict(entry.get("locale") or {})),
                      rules=_rules(path, name, dict(entry.get("rules") or {}), ent), feeds=feeds)


def check_minimum(cat: Catalog, path: Path) -> None:
    """A catalogue needs transactions: an orders or order-lines source with a customer, a date and an amount."""
    tx = [s for s in cat.sources.values() if s.entity in TRANSACTION_ENTITIES]
    if not tx:
        raise _err(path, "sources", "at least one transactions source (entity orders or order_lines) with a "
                   "customer, a date and an amount", f"entities {', '.join(cat.entities) or 'none'}")
    has_orders = bool(cat.by_entity("orders"))
    for s in cat.by_entity("order_lines"):
        if not has_orders:
            for role in ("customer_id", "order_date"):
                if role not in s.columns:
                    raise _err(path, f"sources.{s.name}.columns", f"a '{role}' mapping: without an orders source, "
                               "order lines must carry the customer and the date", f"roles {', '.join(s.columns)}")
            # Without order headers, a line's date is its order's date: a line without one cannot be placed in time.
            if s.columns["order_date"].required is None:
                s.columns["order_date"] = replace(s.columns["order_date"], required=True)
        if "amount" not in s.columns and "unit_price" not in s.columns:
            raise _err(path, f"sources.{s.name}.columns", "an 'amount' mapping, or a 'unit_price' (with 'quantity', "
                       "else one unit per line)", f"roles {', '.join(s.columns)}")
        _require_value_roles(s, ["amount"] if "amount" in s.columns else ["unit_price", "quantity"])
    if has_orders and not cat.by_entity("order_lines"):
        for s in cat.by_entity("orders"):
            if "amount" not in s.columns:
                raise _err(path, f"sources.{s.name}.columns", "an 'amount' mapping: without order lines, the order "
                           "total is the only source of revenue", f"roles {', '.join(s.columns)}")
            _require_value_roles(s, ["amount"])


def _require_value_roles(s: SourceSpec, roles: list[str]) -> None:
    """The roles a transaction's value is computed from are required: a record whose value cannot be read is
    quarantined with its reason rather than kept without money (unless the catalogue says otherwise)."""
    for role in roles:
        if role in s.columns and s.columns[role].required is None and s.columns[role].constant is None:
            s.columns[role] = replace(s.columns[role], required=True)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and check a catalogue (default ``config/sources.yaml``, the sample's).

    >>> cat = load_catalog()
    >>> cat.dataset.currency, sorted(cat.entities)[:3]
    ('EUR', ['campaigns', 'customers', 'events'])
    """
    path = Path(path) if path else CONFIG_DIR / "sources.yaml"
    if not path.exists():
        raise SourceError(path.name, expected="an existing catalogue file", got=f"nothing at {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SourceError(path.name, row=(mark.line + 1) if mark else None, expected="valid YAML",
                          got=str(getattr(exc, "problem", exc))) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), dict) or not raw["sources"]:
        raise SourceError(path.name, expected="a top-level 'sources:' mapping with at least one source")
    _check_keys(path, "(top level)", raw, {"dataset", "sources"})
    ds_raw = dict(raw.get("dataset") or {})
    _check_keys(path, "dataset", ds_raw, DATASET_KEYS)
    ds = Dataset(**{k: str(v) for k, v in ds_raw.items()})
    if not re.fullmatch(r"[A-Z]{3}", ds.currency):
        raise _err(path, "dataset.currency", "a three-letter ISO currency code such as EUR or GBP", ds.currency)
    _check_timezone(path, "dataset.timezone", ds.timezone)
    sources = {str(n): parse_source(path, str(n), e) for n, e in raw["sources"].items()}
    cat = Catalog(ds, sources, str(path))
    check_minimum(cat, path)
    return cat
