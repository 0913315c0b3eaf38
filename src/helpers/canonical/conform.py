"""Conforming a staged source to its canonical entity: map columns to roles, type every value, list every problem.

One function, :func:`conform_sql`, writes the SQL that does it for one source; both engines run that SQL.
For each mapped role it parses the source's text with the source's locale (decimal mark, thousands separator,
date order, time zone) and checks the role's rules in a fixed order, first failure wins:

``required``       the value is empty but the role is required
``type``           the text cannot be read as the role's type (a finite number, a date in the declared formats…)
``decimal_style``  a number written in the other decimal style than declared ('83.16' in a comma-decimal file),
                   or one 100× the column's typical size whose only separator is the thousands separator
``allowed``        not one of the allowed values
``range``          outside min/max
``before_window``  the entity's date lies before the analysis window
``future_date``    a date after the end of the analysis window

A failing value becomes missing in the typed table and is listed in the violations with its raw text, row and
reason. Whether the whole row is then quarantined (a required role) or only the value is dropped (an optional
role) is decided in cleaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from helpers.canonical.engine import Dialect
from helpers.core.errors import SourceError
from helpers.core.model import EMAIL_PATTERN, Role
from helpers.core.text import did_you_mean
from helpers.sources.catalog import Dataset, SourceSpec, normalise_header

ROW = "_row"
NULL_TOKENS = ("", "NULL", "null", "Null", "#N/A", "N/A", "n/a", "None")
TRUE_WORDS = ("1", "true", "t", "yes", "y", "ja", "j", "oui", "si", "sí", "x", "wahr", "vrai", "waar", "on")
FALSE_WORDS = ("0", "false", "f", "no", "n", "nein", "non", "falsch", "faux", "onwaar", "nee", "off")
RULES = ("required", "type", "decimal_style", "allowed", "range", "before_window", "future_date")
MAGNITUDE_FACTOR = 100

# Formats tried when a source declares only its date order. ISO 8601 (with T or space, optional seconds and
# fractions, optional offset) is always accepted first.
DATE_FORMATS = {
    "YMD": ["%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y.%m.%d %H:%M:%S", "%Y.%m.%d", "%Y%m%d"],
    "DMY": ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
            "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y", "%d.%m.%y", "%d/%m/%y"],
    "MDY": ["%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
            "%m-%d-%Y %H:%M:%S", "%m-%d-%Y", "%m/%d/%y"],
}
ISO_PATTERN = r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
OFFSET_PATTERN = ISO_PATTERN + r" ?(Z|[+-]\d{2}(:?\d{2})?)"


@dataclass
class Mapping:
    """A source's roles resolved against the columns its file actually has."""

    spec: SourceSpec
    label: str
    columns: dict[str, str]  # role -> staged column
    constants: dict[str, str] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # optional roles whose declared column is not in the file
    unmapped: list[str] = field(default_factory=list)  # file columns no role reads
    extra: dict[str, str] = field(default_factory=dict)  # pass-through columns (entities that keep them)
    reversal_column: str | None = None  # file column the reversal rule reads

    @property
    def roles(self) -> list[str]:
        return list(self.columns) + list(self.constants)


def resolve_mapping(spec: SourceSpec, file_columns: list[str], label: str | None = None) -> Mapping:
    """Match the catalogue's column names to the file's header (case-, space-, underscore- and hyphen-insensitive).

    A declared column that is missing is an error naming the file, the column and the columns that exist, but
    only when its role is required; otherwise the role is noted as absent.
    """
    label = label or spec.label
    exact = {c: c for c in file_columns}
    normal: dict[str, list[str]] = {}
    for c in file_columns:
        normal.setdefault(normalise_header(c), []).append(c)
    columns, constants, absent, extra = {}, {}, [], {}
    for role, cmap in spec.columns.items():
        if cmap.constant is not None:
            constants[role] = cmap.constant
            continue
        found = exact.get(cmap.column)
        if found is None:
            matches = normal.get(normalise_header(cmap.column), [])
            if len(matches) > 1:
                raise SourceError(label, cmap.column, expected=f"one column matching {cmap.column!r}",
                                  got="several: " + ", ".join(matches))
            found = matches[0] if matches else None
        if found is None:
            if spec.is_required(role):
                raise SourceError(label, cmap.column, expected=f"a column {cmap.column!r} for the required role "
                                  f"{role!r}{did_you_mean(cmap.column, file_columns)}",
                                  got="columns " + ", ".join(file_columns))
            absent.append(role)
            continue
        if role in spec.model.roles:
            columns[role] = found
        else:
            extra[role] = found
    reversal_column = None
    rev = spec.rules.reversal
    if rev and rev.get("column"):
        name = rev["column"]
        reversal_column = exact.get(name) or next(iter(normal.get(normalise_header(name), [])), None)
        if reversal_column is None:
            raise SourceError(label, name, expected=f"the column {name!r} that rules.reversal reads"
                              f"{did_you_mean(name, file_columns)}", got="columns " + ", ".join(file_columns))
    elif rev and rev.get("role") and rev["role"] not in columns and rev["role"] not in constants:
        raise SourceError(label, rev["role"], expected=f"a mapped role {rev['role']!r} for rules.reversal",
                          got="roles " + ", ".join(list(columns) + list(constants)))
    used = set(columns.values()) | set(extra.values())
    if spec.model.extra_columns:
        for c in file_columns:
            if c not in used and c not in extra.values():
                extra.setdefault(c, c)
        used = set(columns.values()) | set(extra.values())
    unmapped = [c for c in file_columns if c not in used]
    return Mapping(spec, label, columns, constants, absent, unmapped, extra, reversal_column)


def _text(d: Dialect, col: str) -> str:
    x = f"trim({d.q(col)})"
    return f"CASE WHEN {x} IN ({', '.join(d.lit(t) for t in NULL_TOKENS)}) THEN NULL ELSE {x} END"


def _rx(text: str) -> str:
    """Escape text for a regular expression that both RE2 (DuckDB) and Java (Spark) read the same way."""
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\-" else c for c in text)


def _number_patterns(decimal: str, thousands: str) -> tuple[str, str]:
    """Regular expressions of a valid number in the declared style and in the other style."""
    def pattern(dec: str, thou: str) -> str:
        d, t = _rx(dec), _rx(thou) if thou else ""
        grouped = rf"|\d{{1,3}}({t}\d{{3}})+" if thou else ""
        return rf"[+-]?((\d+{grouped})({d}\d*)?|{d}\d+)([eE][+-]?\d+)?"
    other_dec = "," if decimal == "." else "."
    other_thou = "." if other_dec == "," else ","
    return pattern(decimal, thousands), pattern(other_dec, other_thou)


def _strip_number(d: Dialect, txt: str, thousands: str) -> str:
    """Remove currency signs and codes and (unless they separate thousands) spaces."""
    pattern = r"[€$£¥₣]|\b(EUR|GBP|USD|CHF|SEK|DKK|NOK|PLN|CZK|BRL)\b"
    if thousands not in (" ", "\u00a0"):
        pattern += "|[\\s\u00a0]"
    return d.regex_replace(txt, pattern, "")


@dataclass
class RoleSQL:
    role: str
    column: str | None  # source column (None for constants)
    text: str  # SQL of the cleaned text
    value: str  # SQL of the typed value (over the text column alias)
    checks: list[tuple[str, str, str]]  # (rule, SQL condition over t/v aliases, reason)


def _expected_date(formats: list[str]) -> str:
    shown = ["ISO 8601 (YYYY-MM-DD[ HH:MM[:SS]])"] + formats[:4]
    return "a date in one of the formats " + ", ".join(shown) + (" …" if len(formats) > 4 else "")


def role_sql(d: Dialect, spec: SourceSpec, role: Role, column: str | None, constant: str | None,
             dataset: Dataset, window_start: str | None, as_of: str | None, t: str, v: str) -> RoleSQL:
    """The SQL of one role: its text, its typed value and its checks. ``t``/``v`` are the aliases of the text and
    value columns in the query that evaluates the checks."""
    cmap = spec.columns.get(role.name)
    loc = spec.locale
    text = d.lit(constant) if constant is not None else _text(d, column)
    checks: list[tuple[str, str, str]] = []
    kind = role.type
    lower = cmap.lower if cmap and cmap.lower is not None else role.lower
    if kind == "id":
        value = d.regex_replace(t, r"^(\d+)\.0+$", r"\1")
    elif kind == "text":
        value = t
    elif kind == "email":
        value = t
        checks.append(("type", f"NOT {d.full_match(t, EMAIL_PATTERN)}",
                       "expected an e-mail address (local part, @, domain)"))
    elif kind == "category":
        value = t
        if cmap and cmap.values:
            cases = " ".join(f"WHEN lower({t}) IN ({', '.join(d.lit(s.lower()) for s in spellings)}) "
                             f"THEN {d.lit(canonical)}" for canonical, spellings in cmap.values.items())
            value = f"CASE {cases} ELSE {t} END"
        if lower:
            value = f"lower({value})"
        elif role.upper:
            value = f"upper({value})"
    elif kind in ("number", "integer", "money"):
        declared, other = _number_patterns(loc.decimal, loc.thousands)
        s = _strip_number(d, t, loc.thousands)
        norm = s
        if loc.thousands:
            norm = f"replace({norm}, {d.lit(loc.thousands)}, '')"
        if loc.decimal != ".":
            norm = f"replace({norm}, {d.lit(loc.decimal)}, '.')"
        value = d.try_double(norm)
        other_name = "'.'" if loc.decimal == "," else "','"
        checks.append(("decimal_style", f"NOT {d.full_match(s, declared)} AND {d.full_match(s, other)}",
                       f"expected a number with {loc.decimal!r} as the decimal mark"
                       + (f" and {loc.thousands!r} between thousands" if loc.thousands else "")
                       + f"; this one is written with {other_name} as the decimal mark"))
        checks.append(("type", f"NOT {d.full_match(s, declared)} OR {v} IS NULL OR NOT {d.is_finite(v)}",
                       "expected a finite number" + (f" with {loc.decimal!r} as the decimal mark"
                                                     if loc.decimal != "." else "")))
        if kind == "integer":
            checks.append(("type", f"{v} <> floor({v})", "expected a whole number"))
    elif kind == "boolean":
        low = f"lower({t})"
        value = (f"CASE WHEN {low} IN ({', '.join(d.lit(w) for w in TRUE_WORDS)}) THEN TRUE "
                 f"WHEN {low} IN ({', '.join(d.lit(w) for w in FALSE_WORDS)}) THEN FALSE END")
        checks.append(("type", f"{v} IS NULL", "expected yes/no (true/false, 1/0, ja/nein, oui/non)"))
    elif kind in ("datetime", "date"):
        formats = list(cmap.formats) if cmap and cmap.formats else DATE_FORMATS[loc.date_order]
        naive_parts = [f"CASE WHEN {d.full_match(t, ISO_PATTERN)} THEN {d.try_timestamp(t)} END"]
        naive_parts += [d.try_timestamp(t, f) for f in formats if "%z" not in f and "%Z" not in f]
        naive = f"COALESCE({', '.join(naive_parts)})"
        if loc.timezone and loc.timezone != dataset.timezone:
            naive = d.convert_zone(naive, loc.timezone, dataset.timezone)
        aware = d.try_timestamp_with_offset(d.regex_replace(t, r" ?Z$", "+00:00"), dataset.timezone)
        value = f"CASE WHEN {d.full_match(t, OFFSET_PATTERN)} THEN {aware} ELSE {naive} END"
        if kind == "date":
            value = f"CAST({value} AS DATE)"
        checks.append(("type", f"{v} IS NULL", "expected " + _expected_date(formats)))
    else:  # pragma: no cover - the model only uses the types above
        raise ValueError(f"unknown role type {kind!r}")

    allowed = cmap.allowed if cmap and cmap.allowed is not None else role.allowed
    if allowed is not None:
        vals = [a.lower() if lower else a for a in allowed]
        checks.append(("allowed", f"{v} NOT IN ({', '.join(d.lit(a) for a in vals)})",
                       "expected one of " + ", ".join(repr(a) for a in vals)))
    lo = cmap.min if cmap and cmap.min is not None else role.min
    hi = cmap.max if cmap and cmap.max is not None else role.max
    if kind in ("number", "integer", "money") and (lo is not None or hi is not None):
        cond = " OR ".join(c for c in [f"{v} < {lo}" if lo is not None else "",
                                       f"{v} > {hi}" if hi is not None else ""] if c)
        rng = (f"between {lo:g} and {hi:g}" if lo is not None and hi is not None
               else f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
        checks.append(("range", cond, f"expected a value {rng}"))
    if kind in ("datetime", "date"):
        is_window_date = role.name == spec.model.date_role and spec.rules.window
        cast = "DATE" if kind == "date" else "TIMESTAMP"
        if is_window_date and window_start:
            checks.append(("before_window", f"{v} < CAST({d.lit(window_start)} AS {cast})",
                           f"expected a date on or after {window_start} (the start of the analysis window)"))
        if as_of:
            checks.append(("future_date", f"{v} > CAST({d.lit(as_of)} AS {cast})",
                           f"expected a date on or before {as_of[:10]} (the end of the analysis window)"))
    return RoleSQL(role.name, column, text, value, checks)


def conform_sql(d: Dialect, mapping: Mapping, dataset: Dataset, staged: str, window_start: str | None,
                as_of: str | None, source_order: int = 0) -> str:
    """SQL of the *checked* table of one source: ``_source``, ``_row``, ``_hash`` (of the whole raw record) and,
    per role, ``t__<role>`` (text), ``v__<role>`` (value) and ``f__<role>`` (the failed rule, or NULL)."""
    spec = mapping.spec
    roles = [r for r in spec.model.roles.values() if r.name in mapping.columns or r.name in mapping.constants]
    sqls = [role_sql(d, spec, r, mapping.columns.get(r.name), mapping.constants.get(r.name), dataset, window_start,
                     as_of, d.q(f"t__{r.name}"), d.q(f"v__{r.name}")) for r in roles]
    raw_cols = [c for c in mapping.columns.values()] + list(mapping.unmapped) + list(mapping.extra.values())
    all_cols = list(dict.fromkeys(raw_cols))
    record = "concat_ws(" + d.lit("\x1f") + ", " + ", ".join(
        f"coalesce({d.q(c)}, {d.lit(chr(0))})" for c in all_cols) + ")" if all_cols else d.lit("")
    texts = ", ".join(f"{s.text} AS {d.q('t__' + s.role)}" for s in sqls)
    extra = "".join(f", {_text(d, col)} AS {d.q('x__' + name)}" for name, col in mapping.extra.items())
    step1 = (f"SELECT {d.lit(spec.name)} AS _source, {source_order} AS _source_order, {ROW}, md5({record}) AS _hash, "
             f"{reversal_sql(d, mapping)} AS _reversal, {texts}{extra} FROM {staged}")
    values = ", ".join(f"{s.value} AS {d.q('v__' + s.role)}" for s in sqls)
    step2 = f"SELECT *, {values} FROM ({step1}) AS s1"
    fails = []
    for s in sqls:
        required = spec.is_required(s.role) and not _guest_customer(spec, s.role)
        t, v = d.q(f"t__{s.role}"), d.q(f"v__{s.role}")
        cases = [f"WHEN {t} IS NULL THEN {d.lit('required') if required else d.null_of('text')}"]
        for rule, cond, _ in s.checks:
            cases.append(f"WHEN {cond} THEN {d.lit(rule)}")
        if spec.rules.decimal_check and spec.model.roles[s.role].type in ("number", "money") and spec.locale.thousands:
            sep = spec.locale.thousands
            typical = f"(SELECT {d.median(f'abs({v})')} FROM ({step2}) AS m WHERE {v} <> 0)"
            cases.append(f"WHEN {d.full_match(t, r'.*' + _rx(sep) + r'.*')} AND NOT "
                         f"{d.full_match(t, r'.*' + _rx(spec.locale.decimal) + r'.*')} AND "
                         f"abs({v}) >= {MAGNITUDE_FACTOR} * {typical} THEN {d.lit('decimal_style')}")
        fails.append(f"CASE {' '.join(cases)} END AS {d.q('f__' + s.role)}")
    return f"SELECT *, {', '.join(fails)} FROM ({step2}) AS s2" if fails else f"SELECT * FROM ({step2}) AS s2"


def reversal_sql(d: Dialect, mapping: Mapping) -> str:
    """Whether a row reverses an earlier sale (a credit note), by the source's ``rules.reversal``."""
    rev = mapping.spec.rules.reversal
    if not rev:
        return "FALSE"
    if mapping.reversal_column:
        x = f"trim({d.q(mapping.reversal_column)})"
    else:
        role = rev["role"]
        x = d.lit(mapping.constants[role]) if role in mapping.constants else _text(d, mapping.columns[role])
    if "starts_with" in rev:
        prefixes = rev["starts_with"] if isinstance(rev["starts_with"], list) else [rev["starts_with"]]
        cond = " OR ".join(f"upper(substr({x}, 1, {len(str(pf))})) = {d.lit(str(pf).upper())}" for pf in prefixes)
    else:
        values = rev["equals"] if isinstance(rev["equals"], list) else [rev["equals"]]
        cond = f"lower({x}) IN ({', '.join(d.lit(str(v).lower()) for v in values)})"
    return f"coalesce({cond}, FALSE)"


def _guest_customer(spec: SourceSpec, role: str) -> bool:
    """A transaction without a customer is handled by the source's missing_customer rule, not as a violation."""
    return role == "customer_id" and spec.entity in ("orders", "order_lines")


def reasons(d: Dialect, mapping: Mapping, dataset: Dataset, window_start: str | None, as_of: str | None
            ) -> dict[str, dict[str, str]]:
    """The reason text of every rule of every role (for the violations table)."""
    spec = mapping.spec
    out = {}
    for r in spec.model.roles.values():
        if r.name not in mapping.columns and r.name not in mapping.constants:
            continue
        s = role_sql(d, spec, r, mapping.columns.get(r.name), mapping.constants.get(r.name), dataset, window_start,
                     as_of, "t", "v")
        rs = {"required": "expected a value; the field is empty"}
        for rule, _, reason in s.checks:
            rs.setdefault(rule, reason)
        rs.setdefault("decimal_style", f"expected a number in the source's style ({spec.locale.decimal!r} decimal "
                                       f"mark); this value is {MAGNITUDE_FACTOR}× the column's typical size and its "
                                       f"only separator is {spec.locale.thousands!r}, so it may be a misread decimal")
        out[r.name] = rs
    return out


def typed_sql(d: Dialect, mapping: Mapping, checked: str) -> str:
    """The typed canonical rows of one source: every role's value, NULL where its check failed."""
    spec = mapping.spec
    cols = ["_source", "_source_order", ROW, "_hash", "_reversal"]
    for r in spec.model.roles:
        if r in mapping.columns or r in mapping.constants:
            cols.append(f"CASE WHEN {d.q('f__' + r)} IS NULL THEN {d.q('v__' + r)} END AS {d.q(r)}")
    cols += [f"{d.q('x__' + name)} AS {d.q(name)}" for name in mapping.extra]
    return f"SELECT {', '.join(cols)} FROM {checked}"


def violations_sql(d: Dialect, mapping: Mapping, checked: str, reason_texts: dict[str, dict[str, str]]) -> str:
    """One row per failed value: source, file, _row, column, role, raw value, rule, reason and action (``reject``
    for a required role, which quarantines the row; ``set_missing`` for an optional one)."""
    spec = mapping.spec
    parts = []
    for role, column in list(mapping.columns.items()) + [(r, None) for r in mapping.constants]:
        required = spec.is_required(role) and not _guest_customer(spec, role)
        f = d.q(f"f__{role}")
        cases = " ".join(f"WHEN {d.lit(rule)} THEN {d.lit(text)}" for rule, text in reason_texts[role].items())
        parts.append(
            f"SELECT _source AS source, {d.lit(mapping.label)} AS file, {ROW}, {d.lit(column or '(constant)')} AS "
            f"{d.q('column')}, {d.lit(role)} AS role, {d.q('t__' + role)} AS value, {f} AS rule, "
            f"CASE {f} {cases} END AS reason, {d.lit('reject' if required else 'set_missing')} AS action "
            f"FROM {checked} WHERE {f} IS NOT NULL")
    if not parts:
        raise ValueError(f"source {spec.name} maps no role")
    return " UNION ALL ".join(parts)
