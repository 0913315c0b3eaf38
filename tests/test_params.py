"""Parameter sets and their validation before anything runs."""

from __future__ import annotations

import pytest

from helpers import params as P
from helpers.core.errors import ParameterError
from helpers.run import declared_parameters, discover_notebooks

DECLARED = {
    "01_a": {"data_dir": {"inferred_type_name": "str", "default": "'data'"},
             "n_customers": {"inferred_type_name": "int", "default": "5000"},
             "alpha": {"inferred_type_name": "float", "default": "0.05"},
             "strict": {"inferred_type_name": "bool", "default": "False"}},
    "02_b": {"data_dir": {"inferred_type_name": "str", "default": "'data'"},
             "pii": {"inferred_type_name": "str", "default": "'mask'"}},
}


def test_common_values_go_to_notebooks_that_declare_them():
    out = P.resolve_all({"common": {"data_dir": "x"}, "notebooks": {"01_a": {"n_customers": 10, "alpha": 1}}},
                        DECLARED)
    assert out == {"01_a": {"data_dir": "x", "n_customers": 10, "alpha": 1}, "02_b": {"data_dir": "x"}}


@pytest.mark.parametrize("pset, message", [
    ({"common": {"n_customer": 3}}, "common: unknown parameter 'n_customer'"),
    ({"notebooks": {"02_b": {"n_customers": 3}}}, "02_b: unknown parameter 'n_customers'"),
    ({"notebooks": {"09_x": {}}}, "notebook '09_x', which does not exist"),
    ({"notebooks": {"01_a": {"n_customers": "many"}}}, "'n_customers' expects int .* got str 'many'"),
    ({"notebooks": {"01_a": {"n_customers": 2.5}}}, "expects int"),
    ({"notebooks": {"01_a": {"strict": "yes"}}}, "'strict' expects bool"),
    ({"common": {"db_password": "x"}}, "looks like a secret"),
    ({"common": {"data_dir": "postgresql://ana:pw@db/crm"}}, "URL with a password"),
    ({"common": {"smtp_token": "abc"}}, "looks like a secret"),
    ({"notebooks": {"02_b": {"pii": "show"}}}, "'pii' must be one of mask, allow, got 'show'"),
])
def test_bad_parameters_are_refused_with_a_clear_message(pset, message):
    with pytest.raises(ParameterError, match=message):
        P.resolve_all({"common": {}, "notebooks": {}, **pset}, DECLARED)


def test_param_sets_extend_and_override(tmp_path):
    (tmp_path / "base.yaml").write_text("common: {data_dir: data}\nnotebooks: {01_a: {n_customers: 5, alpha: 0.1}}\n")
    (tmp_path / "small.yaml").write_text("extends: base\nnotebooks: {01_a: {n_customers: 2}}\n")
    s = P.load_param_set("small", tmp_path)
    assert s == {"common": {"data_dir": "data"}, "notebooks": {"01_a": {"n_customers": 2, "alpha": 0.1}}}
    with pytest.raises(ParameterError, match="known sets: base, small"):
        P.load_param_set("nope", tmp_path)
    (tmp_path / "typo.yaml").write_text("comon: {}\n")
    with pytest.raises(ParameterError, match="unknown top-level key"):
        P.load_param_set("typo", tmp_path)


def test_override_syntax():
    assert P.parse_override("window_end=2026-01-31") == (None, "window_end", __import__("datetime").date(2026, 1, 31))
    assert P.parse_override("01_a.seed=3") == ("01_a", "seed", 3)
    with pytest.raises(ParameterError, match="key=value"):
        P.parse_override("seed")


def test_shipped_parameter_sets_validate_against_the_notebooks():
    declared = {p.stem: declared_parameters(p) for p in discover_notebooks()}
    for name in ["default", "ci"]:
        resolved = P.resolve_all(P.load_param_set(name), declared)
        assert set(resolved) == set(declared)
