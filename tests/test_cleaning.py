"""Cleaning: quarantine with reasons, duplicates, references, netting, currency, and the row balance."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from helpers.canonical import cleaning as CL
from helpers.sources.catalog import ColumnSpec, SourceSpec
from helpers.sources.dataio import load_source, read_csv
from helpers.core.errors import SourceError

AS_OF = pd.Timestamp("2026-09-30 23:59:59")


def _spec(name, file, columns, **kw):
    return SourceSpec(name=name, format=kw.pop("format", "csv"), file=file,
                      columns={k: ColumnSpec(k, **v) for k, v in columns.items()}, **kw)


SPECS = {
    "customers": _spec("customers", "customers.csv", {
        "customer_id": {"required": True}, "email": {"type": "email", "pii": True},
        "signup_date": {"type": "datetime", "formats": ["%Y-%m-%d"]}}, key=["customer_id"]),
    "orders": _spec("orders", "orders.csv", {
        "order_id": {"required": True}, "customer_id": {"required": True, "references": "customers.customer_id"},
        "order_date": {"type": "datetime", "required": True, "formats": ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M"]},
        "status": {"required": True, "lower": True, "allowed": ["completed", "cancelled"]},
        "currency": {"required": True, "allowed": ["EUR", "CHF"]}}, key=["order_id"]),
    "order_lines": _spec("order_lines", "order_lines.csv", {
        "order_id": {"required": True, "references": "orders.order_id"},
        "line_no": {"type": "integer", "required": True, "min": 1},
        "quantity": {"type": "integer", "required": True, "min": 1},
        "unit_price": {"type": "float", "required": True, "min": 0}}, key=["order_id", "line_no"]),
}
GOOD = {
    "customers": "customer_id,email,signup_date\nC1,a@b.de,2025-01-01\nC2,c@d.de,2025-02-01\n",
    "orders": "order_id,customer_id,order_date,status,currency\nO1,C1,2025-03-01 10:00:00,completed,EUR\n"
              "O2,C2,2025-03-02 11:00:00,cancelled,EUR\n",
    "order_lines": "order_id,line_no,quantity,unit_price\nO1,1,2,10.5\nO2,1,1,5\n",
}


def run_clean(tmp_path, **overrides):
    staged = {}
    for name, spec in SPECS.items():
        (tmp_path / spec.file).write_text(overrides.get(name, GOOD[name]))
        staged[name] = load_source(spec, tmp_path).frame
    return CL.clean_all(staged, SPECS, {n: s.file for n, s in SPECS.items()}, AS_OF)


def quarantined(result, source):
    q = result.sources[source].quarantine
    return {(int(r["_row"]), r["column"], r["rule"]) for _, r in q.iterrows()}


def test_good_input_keeps_everything_and_balances(tmp_path):
    r = run_clean(tmp_path)
    b = r.balance()
    assert b["balanced"].all() and (b["kept"] == b["rows_in"]).all()


ORDERS = "order_id,customer_id,order_date,status,currency\n"
LINES = "order_id,line_no,quantity,unit_price\n"

# Each case: the source to replace, its text, the expected (row, column, rule) quarantined, and a phrase of the reason.
BAD_CASES = [
    ("missing required value", "orders", ORDERS + ",C1,2025-03-01 10:00:00,completed,EUR\n",
     (2, "order_id", "required"), "the field is empty"),
    ("wrong type", "order_lines", LINES + "O1,1,two,10.5\n", (2, "quantity", "type"), "expected a whole number"),
    ("value not allowed", "orders", ORDERS + "O1,C1,2025-03-01 10:00:00,lost,EUR\n", (2, "status", "allowed"),
     "one of 'completed', 'cancelled'"),
    ("negative price", "order_lines", LINES + "O1,1,1,-3.5\n", (2, "unit_price", "range"), "at least 0"),
    ("zero quantity", "order_lines", LINES + "O1,1,0,3.5\n", (2, "quantity", "range"), "at least 1"),
    ("date in the future", "orders", ORDERS + "O1,C1,2031-03-01 10:00:00,completed,EUR\n",
     (2, "order_date", "future_date"), "on or before 2026-09-30"),
    ("impossible date", "orders", ORDERS + "O1,C1,31.02.2025 10:00,completed,EUR\n", (2, "order_date", "type"),
     "%d.%m.%Y %H:%M"),
    ("unknown customer", "orders",
     ORDERS + "O1,C1,2025-03-01 10:00:00,completed,EUR\nO3,C999,2025-03-01 10:00:00,completed,EUR\n",
     (3, "customer_id", "reference"), "'C999' does not exist"),
    ("line of a missing order", "order_lines", LINES + "O1,1,1,3\nO77,1,1,3\n", (3, "order_id", "reference"),
     "'O77' does not exist"),
    ("unknown currency", "orders", ORDERS + "O1,C1,2025-03-01 10:00:00,completed,USD\n", (2, "currency", "allowed"),
     "'EUR', 'CHF'"),
    ("fractional quantity", "order_lines", LINES + "O1,1,1.5,3\n", (2, "quantity", "type"), "whole number"),
    ("missing line number", "order_lines", LINES + "O1,,1,3\n", (2, "line_no", "required"), "empty"),
]


@pytest.mark.parametrize("case, source, text, expected, phrase", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_values_are_quarantined_with_their_reason(tmp_path, case, source, text, expected, phrase):
    r = run_clean(tmp_path, **{source: text})
    assert expected in quarantined(r, source)
    q = r.sources[source].quarantine
    reason = q.loc[q["_row"] == expected[0], "reason"].iloc[0]
    assert phrase in reason
    record = json.loads(q.loc[q["_row"] == expected[0], "record"].iloc[0])
    assert isinstance(record, dict) and len(record) == len(text.splitlines()[0].split(","))
    assert r.balance()["balanced"].all()


def test_quarantine_cascades_to_lines_of_a_quarantined_order(tmp_path):
    r = run_clean(tmp_path, orders="order_id,customer_id,order_date,status,currency\n"
                                   "O1,C1,2025-03-01 10:00:00,completed,EUR\nO2,C2,2031-01-01 00:00:00,completed,EUR\n")
    q = r.sources["order_lines"].quarantine
    assert q["reason"].str.contains("'O2' was quarantined").any()
    assert r.balance()["balanced"].all()


def test_invalid_optional_value_is_set_missing_not_rejected(tmp_path):
    r = run_clean(tmp_path, customers="customer_id,email,signup_date\nC1,n/a,2025-01-01\nC2,c@d.de,2025-02-01\n")
    assert len(r.sources["customers"].kept) == 2 and r.sources["customers"].quarantine.empty
    fixes = r.fixes
    assert list(fixes[["column", "rule", "action"]].iloc[0]) == ["email", "type", "set to missing"]
    assert pd.isna(r.sources["customers"].kept.set_index("customer_id").at["C1", "email"])


def test_exact_and_key_duplicates_are_merged_keeping_the_most_complete_row(tmp_path):
    r = run_clean(tmp_path, customers="customer_id,email,signup_date\nC1,,2025-01-01\nC1,,2025-01-01\n"
                                      "C1,a@b.de,2025-01-01\nC2,c@d.de,2025-02-01\n")
    res = r.sources["customers"]
    assert res.exact_duplicates == 1 and res.key_duplicates == 1
    assert res.kept.set_index("customer_id").at["C1", "email"] == "a@b.de"
    b = r.balance().set_index("source").loc["customers"]
    assert (b["rows_in"], b["kept"], b["duplicates_merged"]) == (4, 2, 2)


def test_stray_whitespace_and_case_are_accepted(tmp_path):
    r = run_clean(tmp_path, orders="order_id,customer_id,order_date,status,currency\n"
                                   " O1 ,C1,2025-03-01 10:00:00, Completed ,EUR\n")
    kept = r.sources["orders"].kept
    assert kept["order_id"].tolist() == ["O1"] and kept["status"].tolist() == ["completed"]


def test_unreadable_jsonl_lines_are_quarantined_and_counted(tmp_path):
    from helpers.sources.dataio import read_jsonl

    p = tmp_path / "ev.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"event_id": "e1"}\n{"event_id": "e2"\n{"event_id": "e3"}\n'))
    frame, bad = read_jsonl(p, "events")
    spec = _spec("events", "ev.jsonl.gz", {"event_id": {"required": True}}, format="jsonl", key=["event_id"])
    res = CL.clean_source(frame, spec, "ev.jsonl.gz", AS_OF, bad)
    assert res.rows_in == 3 and len(res.kept) == 2
    assert res.quarantine[["_row", "rule"]].values.tolist() == [[2, "unreadable"]]


def test_german_export_parses_and_nets_against_orders(tmp_path):
    (tmp_path / "returns.csv").write_bytes("return_id;order_id;quantity;refund_amount;currency;return_date\n"
                                           "R1;O1;1;1.234,50;CHF;03.04.2025\n".encode("latin-1"))
    frame = read_csv(tmp_path / "returns.csv", sep=";", encoding="auto")
    spec = _spec("returns", "returns.csv", {
        "return_id": {"required": True}, "order_id": {"required": True}, "quantity": {"type": "integer"},
        "refund_amount": {"type": "float"}, "currency": {}, "return_date": {"type": "datetime",
                                                                              "formats": ["%d.%m.%Y"]}},
        options={"sep": ";", "decimal": ",", "thousands": "."})
    ret = CL.clean_source(frame, spec, "returns.csv", AS_OF).kept
    assert ret["refund_amount"].tolist() == [1234.5]
    orders = pd.DataFrame({"order_id": ["O1", "O2"], "status": ["completed", "cancelled"], "currency": ["CHF", "EUR"],
                           "order_date": pd.to_datetime(["2025-03-30", "2025-03-30"])})
    lines = pd.DataFrame({"order_id": ["O1", "O2"], "line_no": [1, 1], "product_id": ["P", "P"],
                          "category": ["Home", "Home"], "quantity": [2, 1], "unit_price": [1000.0, 50.0],
                          "discount_pct": [10.0, 0.0]})
    fx = pd.DataFrame({"month": pd.to_datetime(["2025-03-01", "2025-04-01"]), "currency": "CHF",
                       "eur_per_unit": [1.05, 1.10]})
    products = pd.DataFrame({"product_id": ["P"], "category": ["Home"]})
    o, ln, r = CL.build_transactions(orders, lines, ret, fx, products)
    o = o.set_index("order_id")
    assert o.at["O1", "gross_eur"] == pytest.approx(2 * 1000 * 0.9 * 1.05)   # March rate for the order
    assert o.at["O1", "refund_eur"] == pytest.approx(1234.5 * 1.10)          # April rate for the refund
    assert o.at["O1", "net_eur"] == pytest.approx(1890 - 1357.95)
    assert o.at["O2", "net_eur"] == 0.0 and o.at["O2", "is_cancelled"]


def test_missing_fx_rate_is_a_clear_error():
    with pytest.raises(ValueError, match=r"fx_rates.csv: expected a rate for CHF in 2025-05"):
        CL.fx_to_eur(pd.Series([1.0]), pd.Series(["CHF"]), pd.Series(pd.to_datetime(["2025-05-03"])),
                     pd.DataFrame({"month": pd.to_datetime(["2025-04-01"]), "currency": ["CHF"],
                                   "eur_per_unit": [1.1]}))


def test_outliers_are_flagged_by_the_stated_rule():
    lines = pd.DataFrame({"category": ["Home"] * 30 + ["Home", "Home"],
                          "quantity": [1] * 30 + [25, 1],
                          "line_gross_eur": [50.0 + i for i in range(30)] + [60.0, 50_000.0]})
    flags = CL.flag_outliers(lines)
    assert flags.tolist() == [False] * 30 + [True, True]


def test_whole_file_faults_stop_before_anything_is_written(tmp_path):
    (tmp_path / "orders.csv").write_text("order_id,order_date\nO1,2025-01-01\n")
    with pytest.raises(SourceError) as e:
        load_source(SPECS["orders"], tmp_path)
    assert (e.value.file, e.value.column) == ("orders.csv", "customer_id")
    (tmp_path / "orders.csv").write_text("")
    with pytest.raises(SourceError, match="orders.csv: expected a header line"):
        load_source(SPECS["orders"], tmp_path)


def test_row_balance_holds_on_the_default_data(default_clean):
    b = default_clean["result"].balance()
    assert b["balanced"].all()
    # the planted dirt is found: exact duplicates, unreadable lines, unknown customer, bad dates
    q = default_clean["result"].quarantine
    assert {"unreadable", "reference", "type", "future_date", "allowed", "range"} <= set(q["rule"])
    assert b["exact_duplicates"].sum() > 50
