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
    out = P.resolve_all({"common": {"data_dir": "x"}, "notebooks": {"01_a": {"n_customers": 100, "alpha": 0.1}}},
                        DECLARED)
    assert out == {"01_a": {"data_dir": "x", "n_customers": 100, "alpha": 0.1}, "02_b": {"data_dir": "x"}}


@pytest.mark.parametrize("pset, message", [
    ({"common": {"n_customer": 3}}, "common: unknown parameter 'n_customer'"),
    ({"notebooks": {"02_b": {"n_customers": 3}}}, "02_b: unknown parameter 'n_customers'"),
    ({"notebooks": {"09_x": {}}}, "notebook '09_x', which does not exist"),
    ({"notebooks": {"01_a": {"n_customers": "many"}}}, "'n_customers' expects int .* got str 'many'"),
    ({"notebooks": {"01_a": {"n_customers": 2.5}}}, "expects int"),
    ({"notebooks": {"01_a": {"strict": "yes"}}}, "'strict' expects bool"),
    ({"common": {"db_password": "x"}}, "looks like a secret"),
    ({"common": {"data_dir": "postgresql://ana:pw@db/crm"}}, "URL or connection string with a password"),
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
    assert P.parse_override("window_end=2026-01-31") == (None, "window_end", "2026-01-31")  # ISO text, not a date
    assert P.parse_override("01_a.seed=3") == ("01_a", "seed", 3)
    with pytest.raises(ParameterError, match="key=value"):
        P.parse_override("seed")


def test_shipped_parameter_sets_validate_against_the_notebooks():
    declared = {p.stem: declared_parameters(p) for p in discover_notebooks()}
    for name in ["default", "ci"]:
        resolved = P.resolve_all(P.load_param_set(name), declared)
        assert set(resolved) == set(declared)


def test_the_command_line_wins_over_every_level_and_bare_names_reach_every_notebook():
    """-p n_customers=2000 used to be overridden by the set's 01 section; -p seed=7 missed notebook 01."""
    pset = {"common": {"data_dir": "x"}, "notebooks": {"01_a": {"n_customers": 5000, "alpha": 0.2}}}
    out = P.resolve_all(pset, DECLARED, [P.parse_override("n_customers=2000"), P.parse_override("data_dir=y"),
                                         P.parse_override("01_a.alpha=0.01")])
    assert out["01_a"] == {"data_dir": "y", "n_customers": 2000, "alpha": 0.01} and out["02_b"] == {"data_dir": "y"}
    with pytest.raises(ParameterError, match="unknown parameter 'n_customer': no notebook declares it; did you mean "
                                             "'n_customers'"):
        P.resolve_all(pset, DECLARED, [P.parse_override("n_customer=5")])
    with pytest.raises(ParameterError, match="no notebook '03_c'"):
        P.resolve_all(pset, DECLARED, [P.parse_override("03_c.seed=1")])


DATES = {"01_a": {"window_start": {"inferred_type_name": "str", "default": '""'},
                  "window_end": {"inferred_type_name": "str", "default": '""'}}}


@pytest.mark.parametrize("override, outcome", [
    ("window_end=2026-06-30", "2026-06-30"),  # YAML makes it a date; it is accepted as ISO text
    ("window_end=30/09/2026", "expects an ISO date"),
    ("window_end=01/09/2026", "expects an ISO date"),  # 1 September or 9 January: refused, never guessed
    ("window_end=2026-13-45", "not a calendar date"),
    ("window_end=2019-01-01", "runs backwards"),
])
def test_dates_are_iso_and_ambiguous_forms_are_refused(override, outcome):
    pset = {"common": {"window_start": "2020-01-01"}, "notebooks": {}}
    if outcome[0].isdigit():
        assert P.resolve_all(pset, DATES, [P.parse_override(override)])["01_a"]["window_end"] == outcome
    else:
        with pytest.raises(ParameterError, match=outcome):
            P.resolve_all(pset, DATES, [P.parse_override(override)])


def test_yaml_errors_and_extends_loops_are_clean_parameter_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text("common:\n  data_dir: [x\n")
    with pytest.raises(ParameterError, match=r"bad.yaml line 3, column 1: not valid YAML"):
        P.load_param_set("bad", tmp_path)
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(ParameterError, match="goes round in a circle"):
        P.load_param_set("a", tmp_path)
