"""Named parameter sets (YAML) and their validation against each notebook's ``parameters`` cell.

Precedence, lowest to highest: a set's ``extends`` parent, its ``common`` values, its per-notebook sections, and
finally ``-p`` on the command line, which always wins. ``-p name=value`` without a notebook prefix goes to every
notebook that declares ``name``; ``-p 03_segmentation.k_max=6`` to one notebook only.

Every value is checked before anything runs: its name (unknown names get a suggestion), its type, its meaning
(dates are ISO ``YYYY-MM-DD``, the window runs forwards, ``alpha`` lies in (0, 0.5], counts are not negative) and
that it carries no secret (a password, a token, a key in a URL or a connection string).
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import yaml

from helpers.core.errors import ParameterError
from helpers.core.paths import PARAMS_DIR
from helpers.core.secrets import SECRET_NAME, url_has_secret
from helpers.core.text import did_you_mean
from helpers.reporting.privacy import PII_MODES

TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
CONNECTION_SECRET = re.compile(r"(?i)(^|[;&?\s])(pwd|password|passwd|token|secret|api[_-]?key|sas|sig|"
                               r"accountkey|sharedaccesskey)\s*=\s*[^;&\s]+")
DATE_PARAMS = {"window_start", "window_end", "analysis_date"}
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
COUNT_PARAMS = {"n_customers": 50, "k_min": 2, "k_max": 2, "n_bootstrap": 1, "top_n": 1, "n_topics": 1,
                "holdout_days": 1, "forecast_days": 1, "horizon_days": 1, "transition_days": 1, "min_orders": 1,
                "n_examples": 0, "top_terms_n": 1, "n_clusters": 0, "new_days": 0, "at_risk_days": 0,
                "churn_days": 0, "seed": 0}
TOP_LEVEL = {"extends", "common", "notebooks", "description", "reports_dir"}


def load_param_set(name_or_path: str, params_dir: Path = PARAMS_DIR, _seen: tuple = ()) -> dict:
    """Load a named parameter set (``default``, ``ci``…) or a YAML path, following ``extends``.

    Returns ``{"common": {...}, "notebooks": {"01_collection": {...}}, "reports_dir": ...}``. A missing set, a
    YAML error or an unknown key raises :class:`ParameterError` (the runner exits 2).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = params_dir / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise ParameterError(f"parameter set {name_or_path!r} not found at {path}{did_you_mean(name_or_path, known)}"
                             f"; known sets: {', '.join(known) or 'none'}")
    if path.resolve() in _seen:
        raise ParameterError(f"{path.name}: 'extends' goes round in a circle")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParameterError(f"{path.name}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ParameterError(f"{path.name}: expected a mapping with common/notebooks, got {type(raw).__name__}")
    unknown = set(raw) - TOP_LEVEL
    if unknown:
        name = sorted(unknown)[0]
        raise ParameterError(f"{path.name}: unknown top-level key {name!r}{did_you_mean(name, TOP_LEVEL)}; "
                             f"expected {', '.join(sorted(TOP_LEVEL))}")
    base = {"common": {}, "notebooks": {}}
    if raw.get("extends"):
        base = load_param_set(raw["extends"], params_dir, _seen + (path.resolve(),))
    merged = {"common": {**base["common"], **(raw.get("common") or {})}, "notebooks": dict(base["notebooks"])}
    for nb, values in (raw.get("notebooks") or {}).items():
        merged["notebooks"][nb] = {**merged["notebooks"].get(nb, {}), **(values or {})}
    if raw.get("reports_dir") or base.get("reports_dir"):
        merged["reports_dir"] = raw.get("reports_dir") or base.get("reports_dir")
    return merged


def parse_override(text: str) -> tuple[str | None, str, object]:
    """Parse ``-p key=value`` or ``-p 01_collection.key=value``; the value is read as YAML.

    >>> parse_override("n_customers=300")
    (None, 'n_customers', 300)
    >>> parse_override("03_segmentation.k_max=6")
    ('03_segmentation', 'k_max', 6)
    >>> parse_override("window_end=2026-06-30")
    (None, 'window_end', '2026-06-30')
    """
    if "=" not in text:
        raise ParameterError(f"override {text!r} must look like key=value")
    key, value = text.split("=", 1)
    notebook = None
    if "." in key:
        notebook, key = key.split(".", 1)
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except Exception:  # not YAML (or an impossible date such as 2026-13-45): take the text, checked later
        parsed = value.strip()
    if isinstance(parsed, (dt.date, dt.datetime)):  # YAML reads 2026-06-30 as a date; parameters hold text
        parsed = value.strip()
    return notebook, key.strip(), parsed


def check_not_secret(name: str, value: object, where: str) -> None:
    """Refuse parameters that carry credentials; they belong in environment variables."""
    if SECRET_NAME.search(name):
        raise ParameterError(f"{where}: parameter {name!r} looks like a secret; put it in an environment variable "
                             "(e.g. db_url: env:CIW_DB_URL) so that it never lands in a report")
    if isinstance(value, str) and (url_has_secret(value) or CONNECTION_SECRET.search(value)):
        raise ParameterError(f"{where}: parameter {name!r} holds a URL or connection string with a password, token "
                             f"or key; set it in an environment variable and pass {name}: env:VARIABLE_NAME instead")
    if isinstance(value, (list, dict)):
        for item in (value.values() if isinstance(value, dict) else value):
            check_not_secret(name, item, where)


def _type_ok(expected: str, value: object) -> bool:
    if expected in ("None", "NoneType", "") or value is None:
        return True
    if expected == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    py = TYPE_NAMES.get(expected)
    return py is None or isinstance(value, py)


def declared_type(decl: dict) -> str:
    """The type a parameter expects: papermill's annotation-based name, else the type of its literal default.

    >>> declared_type({"inferred_type_name": "None", "default": "5000"})
    'int'
    """
    name = decl.get("inferred_type_name") or "None"
    if name not in ("None", ""):
        return name
    try:
        value = ast.literal_eval(str(decl.get("default")))
    except (ValueError, SyntaxError):
        return "None"
    return "None" if value is None else type(value).__name__


def check_meaning(name: str, value: object, where: str) -> object:
    """Check what a value means, not only its type; return it normalised (dates as ISO text).

    >>> check_meaning("window_end", "2026-06-30", "x")
    '2026-06-30'
    """
    if name in DATE_PARAMS or name.endswith("_date"):
        if isinstance(value, (dt.date, dt.datetime)):
            value = value.strftime("%Y-%m-%d")
        if value in ("", None):
            return value
        if not isinstance(value, str) or not ISO_DATE.match(value.strip()):
            raise ParameterError(f"{where}: parameter {name!r} expects an ISO date YYYY-MM-DD (day/month orders such "
                                 f"as 01/09/2026 are ambiguous and refused), got {value!r}")
        try:
            dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ParameterError(f"{where}: parameter {name!r} is not a calendar date: {value!r}") from None
        return value.strip()
    if name == "engine" and value not in ("duckdb", "spark"):
        raise ParameterError(f"{where}: parameter 'engine' = {value!r}: expected 'duckdb' (embedded, one machine) "
                             "or 'spark' (PySpark; the cluster URL comes from CIW_SPARK_MASTER), see the README, "
                             "Scale-out")
    if name == "identity_matching" and value not in ("exact", "probabilistic"):
        raise ParameterError(f"{where}: parameter 'identity_matching' = {value!r}: expected 'probabilistic' (exact rules "
                             "plus Splink) or 'exact' (exact rules only)")
    if name == "match_threshold" and isinstance(value, (int, float)) and not 0.5 <= value < 1:
        raise ParameterError(f"{where}: parameter 'match_threshold' is a match probability in [0.5, 1), got {value!r}")
    if name == "alpha" and isinstance(value, (int, float)) and not 0 < value <= 0.5:
        raise ParameterError(f"{where}: parameter 'alpha' is a significance level and must lie in (0, 0.5], "
                             f"got {value!r}")
    if name in COUNT_PARAMS and isinstance(value, (int, float)) and value < COUNT_PARAMS[name]:
        raise ParameterError(f"{where}: parameter {name!r} must be at least {COUNT_PARAMS[name]}, got {value!r}")
    if name in ("annual_discount_rate",) and isinstance(value, (int, float)) and not 0 <= value < 1:
        raise ParameterError(f"{where}: parameter {name!r} is a yearly rate and must lie in [0, 1), got {value!r}")
    if name == "profit_margin" and isinstance(value, (int, float)) and not 0 < value <= 1:
        raise ParameterError(f"{where}: parameter 'profit_margin' is a share of revenue in (0, 1], got {value!r}")
    if name == "negative_threshold" and isinstance(value, (int, float)) and not -1 <= value <= 1:
        raise ParameterError(f"{where}: parameter 'negative_threshold' is a sentiment score in [-1, 1], got {value!r}")
    if name == "pii" and value not in PII_MODES:
        raise ParameterError(f"{where}: parameter 'pii' must be one of {', '.join(PII_MODES)}, got {value!r}")
    return value


def validate_for_notebook(notebook: str, declared: dict[str, dict], given: dict, strict_names: bool) -> dict:
    """Check ``given`` against a notebook's declared parameters; return the ones it takes.

    ``declared`` is papermill's ``inspect_notebook`` result. With ``strict_names`` every given name must be
    declared (notebook-specific sections); otherwise undeclared names are skipped (shared ``common`` values).
    """
    out = {}
    for name, value in given.items():
        check_not_secret(name, value, notebook)
        if name not in declared:
            if strict_names:
                raise ParameterError(f"{notebook}: unknown parameter {name!r}{did_you_mean(name, declared)}; it "
                                     f"declares {', '.join(sorted(declared)) or 'no parameters'}")
            continue
        expected = declared_type(declared[name])
        if expected == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # -p control=0: YAML reads a number, the parameter holds text
        if isinstance(value, (dt.date, dt.datetime)):
            value = value.strftime("%Y-%m-%d")  # a YAML date in a parameter set
        if not _type_ok(expected, value):
            raise ParameterError(f"{notebook}: parameter {name!r} expects {expected} (default "
                                 f"{declared[name].get('default')}), got {type(value).__name__} {value!r}")
        out[name] = check_meaning(name, value, notebook)
    return out


def resolve_all(param_set: dict, declared_by_nb: dict[str, dict[str, dict]],
                overrides: list[tuple[str | None, str, object]] | None = None) -> dict[str, dict]:
    """Validate a whole parameter set and the command-line overrides against every notebook, before anything runs.

    Raises :class:`ParameterError` for a name no notebook declares (with a suggestion), a section naming an
    unknown notebook, a wrong type, a value that means nothing (an impossible date, a backwards window, alpha
    outside (0, 0.5]) or a value that looks like a secret.
    """
    common = param_set.get("common", {})
    all_declared = sorted({n for d in declared_by_nb.values() for n in d})
    for name, value in common.items():
        check_not_secret(name, value, "common")
        if name not in all_declared:
            raise ParameterError(f"common: unknown parameter {name!r}: no notebook declares it"
                                 f"{did_you_mean(name, all_declared)} (python -m helpers.run --list shows them all)")
    for nb in param_set.get("notebooks", {}):
        if nb not in declared_by_nb:
            raise ParameterError(f"parameters given for notebook {nb!r}, which does not exist"
                                 f"{did_you_mean(nb, declared_by_nb)} (notebooks: {', '.join(declared_by_nb)})")
    resolved = {}
    for nb, declared in declared_by_nb.items():
        values = validate_for_notebook(nb, declared, common, strict_names=False)
        values.update(validate_for_notebook(nb, declared, param_set.get("notebooks", {}).get(nb, {}),
                                            strict_names=True))
        resolved[nb] = values
    for nb, name, value in overrides or []:  # the command line always wins
        where = f"-p {nb + '.' if nb else ''}{name}"
        if nb is not None:
            if nb not in declared_by_nb:
                raise ParameterError(f"{where}: no notebook {nb!r}{did_you_mean(nb, declared_by_nb)}")
            resolved[nb].update(validate_for_notebook(nb, declared_by_nb[nb], {name: value}, strict_names=True))
            continue
        takers = [n for n, d in declared_by_nb.items() if name in d]
        if not takers:
            check_not_secret(name, value, where)
            raise ParameterError(f"{where}: unknown parameter {name!r}: no notebook declares it"
                                 f"{did_you_mean(name, all_declared)} (python -m helpers.run --list shows them all)")
        for n in takers:
            resolved[n].update(validate_for_notebook(n, declared_by_nb[n], {name: value}, strict_names=True))
    for nb, values in resolved.items():
        start, end = values.get("window_start"), values.get("window_end")
        if start and end and start >= end:
            raise ParameterError(f"{nb}: the analysis window runs backwards (window_start {start} is not before "
                                 f"window_end {end})")
    return resolved
