"""Named parameter sets (YAML) and their validation against each notebook's ``parameters`` cell."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from helpers.core.errors import ParameterError
from helpers.core.paths import PARAMS_DIR
from helpers.reporting.privacy import PII_MODES

# Parameter names and values that look like credentials are refused: secrets come from the environment.
SECRET_NAME = re.compile(r"(pass(word)?|secret|token|api[_-]?key|credential|private[_-]?key)", re.I)
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)
TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}


def load_param_set(name_or_path: str, params_dir: Path = PARAMS_DIR) -> dict:
    """Load a named parameter set (``default``, ``ci``…) or a YAML path, following ``extends``.

    Returns ``{"common": {...}, "notebooks": {"01_collection": {...}}}``.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = params_dir / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in params_dir.glob("*.yaml"))) or "none"
        raise ParameterError(f"parameter set {name_or_path!r} not found at {path}; known sets: {known}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(raw) - {"extends", "common", "notebooks", "description", "reports_dir"}
    if unknown:
        raise ParameterError(f"{path.name}: unknown top-level key(s) {sorted(unknown)}; expected common, notebooks, "
                             "extends, description, reports_dir")
    base = {"common": {}, "notebooks": {}}
    if raw.get("extends"):
        base = load_param_set(raw["extends"], params_dir)
    merged = {"common": {**base["common"], **(raw.get("common") or {})}, "notebooks": dict(base["notebooks"])}
    if raw.get("reports_dir") or base.get("reports_dir"):
        merged["reports_dir"] = raw.get("reports_dir") or base.get("reports_dir")
    for nb, values in (raw.get("notebooks") or {}).items():
        merged["notebooks"][nb] = {**merged["notebooks"].get(nb, {}), **(values or {})}
    return merged


def parse_override(text: str) -> tuple[str | None, str, object]:
    """Parse ``-p key=value`` or ``-p 01_collection.key=value``; the value is read as YAML.

    >>> parse_override("n_customers=300")
    (None, 'n_customers', 300)
    >>> parse_override("03_segmentation.k_max=6")
    ('03_segmentation', 'k_max', 6)
    """
    if "=" not in text:
        raise ParameterError(f"override {text!r} must look like key=value")
    key, value = text.split("=", 1)
    notebook = None
    if "." in key:
        notebook, key = key.split(".", 1)
    return notebook, key.strip(), yaml.safe_load(value) if value.strip() else ""


def check_not_secret(name: str, value: object, where: str) -> None:
    """Refuse parameters that carry credentials; they belong in environment variables."""
    if SECRET_NAME.search(name):
        raise ParameterError(f"{where}: parameter {name!r} looks like a secret; put it in an environment variable "
                             "(e.g. db_url: env:CIW_DB_URL) so that it never lands in a report")
    if isinstance(value, str) and URL_WITH_PASSWORD.search(value.strip()):
        raise ParameterError(f"{where}: parameter {name!r} holds a URL with a password; set it in an environment "
                             f"variable and pass {name}: env:VARIABLE_NAME instead")


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


def validate_for_notebook(notebook: str, declared: dict[str, dict], given: dict, strict_names: bool) -> dict:
    """Check ``given`` against a notebook's declared parameters; return the ones it takes.

    ``declared`` is papermill's ``inspect_notebook`` result. With ``strict_names`` every
    given name must be declared (notebook-specific sections); otherwise undeclared
    names are skipped (shared ``common`` values).
    """
    out = {}
    for name, value in given.items():
        check_not_secret(name, value, notebook)
        if name not in declared:
            if strict_names:
                raise ParameterError(f"{notebook}: unknown parameter {name!r}; it declares "
                                     f"{', '.join(sorted(declared)) or 'no parameters'}")
            continue
        if name == "pii" and value not in PII_MODES:
            raise ParameterError(f"{notebook}: parameter 'pii' must be one of {', '.join(PII_MODES)}, got {value!r}")
        expected = declared_type(declared[name])
        if not _type_ok(expected, value):
            raise ParameterError(f"{notebook}: parameter {name!r} expects {expected} (default "
                                 f"{declared[name].get('default')}), got {type(value).__name__} {value!r}")
        out[name] = value
    return out


def resolve_all(param_set: dict, declared_by_nb: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Validate a whole parameter set against every notebook before anything runs.

    Raises :class:`ParameterError` for a name no notebook declares, a section naming an
    unknown notebook, a wrong type, or a value that looks like a secret.
    """
    common = param_set.get("common", {})
    all_declared = {n for d in declared_by_nb.values() for n in d}
    for name, value in common.items():
        check_not_secret(name, value, "common")
        if name not in all_declared:
            raise ParameterError(f"common: unknown parameter {name!r}; no notebook declares it "
                                 f"(known: {', '.join(sorted(all_declared))})")
    for nb in param_set.get("notebooks", {}):
        if nb not in declared_by_nb:
            raise ParameterError(f"parameters given for notebook {nb!r}, which does not exist "
                                 f"(notebooks: {', '.join(declared_by_nb)})")
    resolved = {}
    for nb, declared in declared_by_nb.items():
        values = validate_for_notebook(nb, declared, common, strict_names=False)
        values.update(validate_for_notebook(nb, declared, param_set.get("notebooks", {}).get(nb, {}),
                                            strict_names=True))
        resolved[nb] = values
    return resolved
