"""Credentials never reach an output: database URLs are resolved from the environment, shown redacted, and every
output file can be scrubbed of the secret values the run knows about.

A secret can hide in a URL in several places: the user-info (``user:password@host``), the query string
(``?password=…``, ``&sas=…``, ``&token=…``) or, when the URL comes from an environment variable through
``env:NAME``, anywhere in that variable's value. :func:`redact_url` removes the first two;
:func:`secret_values` collects the values that must be scrubbed from every output whatever their form.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

# Query-string keys that carry credentials (Azure SAS tokens use `sig`/`sas`; many drivers use `pwd`).
SECRET_QUERY_KEYS = re.compile(r"^(pass(word)?|pwd|passwd|token|access[_-]?token|auth[_-]?token|api[_-]?key|key|"
                               r"secret|client[_-]?secret|sas|sig|signature|credentials?|private[_-]?key)$", re.I)
SECRET_NAME = re.compile(r"(pass(word)?|passwd|pwd|secret|token|api[_-]?key|credential|private[_-]?key|sas)", re.I)
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV = ("CIW_SMTP_PASSWORD", "CIW_SMTP_USER", "CIW_DB_URL", "CIW_PSEUDONYM_KEY")
# Environment variables holding a URL that is harmless unless it carries credentials (a Spark master).
URL_ENV = ("CIW_SPARK_MASTER",)
MASK = "***"


def redact_url(url: str) -> str:
    """Hide the password in the user-info and the value of every credential key in the query string.

    >>> redact_url("postgresql://ana:s3cret@db.internal:5432/crm")
    'postgresql://ana:***@db.internal:5432/crm'
    >>> redact_url("duckdb:///crm.duckdb?password=hunter2&threads=4")
    'duckdb:///crm.duckdb?password=***&threads=4'
    >>> redact_url("mssql://h/db?Pwd=x;Token=y")
    'mssql://h/db?Pwd=***;Token=***'
    """
    if not isinstance(url, str) or "://" not in url:
        return url
    head, rest = url.split("://", 1)
    cut = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    netloc, tail = rest[:cut], rest[cut:]
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    fragment = ""
    if "#" in tail:
        tail, fragment = tail.split("#", 1)
        fragment = "#" + fragment
    if "?" in tail:
        path, query = tail.split("?", 1)
        pieces = re.split(r"([&;])", query)
        out = []
        for piece in pieces:
            if piece in ("&", ";") or "=" not in piece:
                out.append(piece)
                continue
            key = piece.split("=", 1)[0]
            out.append(f"{key}={MASK}" if SECRET_QUERY_KEYS.match(unquote(key).strip()) else piece)
        tail = path + "?" + "".join(out)
    return f"{head}://{netloc}{tail}{fragment}"


def url_has_secret(value: str) -> bool:
    """Whether a string is a URL carrying a password or a credential query parameter.

    >>> url_has_secret("postgresql://u:p@h/db"), url_has_secret("sqlite:///x.db"), url_has_secret("x://h/?sas=1")
    (True, False, True)
    """
    if not isinstance(value, str) or "://" not in value:
        return False
    return redact_url(value.strip()) != value.strip()


def resolve_db_url(db_url: str) -> str:
    """Turn the ``db_url`` parameter into a database URL.

    ``env:NAME`` reads the URL from environment variable ``NAME`` (so that passwords never appear in
    parameters); a bare path to ``.sqlite``/``.db``/``.duckdb`` becomes a URL.

    >>> resolve_db_url("/data/crm.sqlite")
    'sqlite:////data/crm.sqlite'
    """
    from helpers.core.errors import SourceError

    if db_url.startswith("env:"):
        var = db_url[4:].strip()
        value = os.environ.get(var)
        if not value:
            raise SourceError("db_url", expected=f"environment variable {var} to hold a database URL",
                              got="nothing")
        return value.strip()
    if "://" in db_url:
        return db_url
    from helpers.core.paths import resolve

    p = resolve(db_url)
    return f"duckdb:///{p}" if p.suffix == ".duckdb" else f"sqlite:///{p}"


def db_label(db_url: str) -> str:
    """A short, safe name for a database: the file name for SQLite/DuckDB, else engine, database and host.

    Never contains user names, passwords or query strings.

    >>> db_label("postgresql://ana:pw@db.internal:5432/crm?sslmode=require")
    'postgresql database crm on db.internal'
    """
    try:
        url = resolve_db_url(db_url)
    except Exception:
        return db_url if db_url.startswith("env:") else "database"
    if url.startswith(("sqlite:///", "duckdb:///")):
        return Path(urlsplit(url).path).name or "database file"
    try:
        parts = urlsplit(url)
        return f"{parts.scheme.split('+')[0]} database {parts.path.lstrip('/') or '?'} on {parts.hostname}"
    except ValueError:
        return "database"


def secret_values(params: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """Every string the run must never write: the values behind ``env:`` parameters, the known secret environment
    variables, and the passwords and credential query values inside those URLs.

    >>> secret_values({"db_url": "env:X"}, {"X": "postgresql://u:pw123456@h/db"})[:2]
    ['postgresql://u:pw123456@h/db', 'pw123456']
    >>> secret_values({}, {"CIW_SPARK_MASTER": "spark://ops:t0ps3cret@spark-master:7077"})
    ['spark://ops:t0ps3cret@spark-master:7077', 't0ps3cret']
    >>> secret_values({}, {"CIW_SPARK_MASTER": "local[*]"})
    []
    """
    env = os.environ if env is None else env
    found: list[str] = []

    def add(value: str | None) -> None:
        if value and len(value) >= 4 and value not in found:
            found.append(value)
            for part in _url_secrets(value):
                add(part)

    for value in (params or {}).values():
        if isinstance(value, str) and value.startswith("env:"):
            add(env.get(value[4:].strip()))
    for name in SECRET_ENV:
        add(env.get(name))
    for name in URL_ENV:
        if _url_secrets(env.get(name) or ""):
            add(env.get(name))
    return found


def _url_secrets(value: str) -> list[str]:
    if "://" not in value:
        return []
    try:
        parts = urlsplit(value)
    except ValueError:
        return []
    out = []
    if parts.password:
        out += [parts.password, unquote(parts.password)]
    for key, val in parse_qsl(parts.query.replace(";", "&"), keep_blank_values=False):
        if SECRET_QUERY_KEYS.match(key.strip()) and val:
            out.append(val)
    return out


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (and its URL-encoded and JSON-escaped forms) with ``***``.

    >>> scrub("connect to postgresql://u:pw1234@h failed", ["pw1234"])
    'connect to postgresql://u:***@h failed'
    """
    import json
    from urllib.parse import quote

    for s in sorted(set(secrets), key=len, reverse=True):
        for form in {s, quote(s, safe=""), json.dumps(s)[1:-1]}:
            if form:
                text = text.replace(form, MASK)
    return text


def scrub_file(path: str | Path, secrets: Iterable[str]) -> bool:
    """Scrub a text file in place; return whether anything was replaced. Binary files are left alone."""
    path = Path(path)
    secrets = [s for s in secrets if s]
    if not secrets:
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return False
    clean = scrub(text, secrets)
    if clean != text:
        path.write_text(clean, encoding="utf-8")
        return True
    return False
