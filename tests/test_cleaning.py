"""Cleaning: quarantine with reasons, duplicates by a stated rule, references, money, and the row balance."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from helpers.core.paths import DataLayout

CATALOG = """
    dataset: {name: Shop, currency: EUR, timezone: UTC}
    sources:
      customers:
        file: customers.csv
        entity: customers
        columns: {customer_id: id, email: email, marketing_consent: consent, updated_at: updated}
        rules: {duplicates: DUP_CUSTOMERS}
      orders:
        file: orders.csv
        entity: orders
        columns: {order_id: oid, customer_id: cid, order_date: day, currency: cur,
                  status: {column: status, allowed: [completed, cancelled]}}
        rules: {missing_customer: GUESTS}
      lines:
        file: lines.csv
        entity: order_lines
        columns: {order_id: oid, line_no: n, product_id: sku, category: cat, quantity: q, unit_price: p}
      fx:
        file: fx.csv
        entity: fx_rates
        columns: {month: {column: m, formats: ["%Y-%m"]}, currency: cur, rate: r}
"""
FILES = {
    "customers.csv": "id,email,consent,updated\nC1,a@x.de,yes,2025-01-01\nC2,b@x.de,yes,2025-01-01\n",
    "orders.csv": "oid,cid,day,status,cur\nO1,C1,2025-03-01,completed,EUR\nO2,C2,2025-03-02,completed,EUR\n",
    "lines.csv": "oid,n,sku,cat,q,p\nO1,1,s1,a,2,10\nO2,1,s2,a,1,5\n",
    "fx.csv": "m,cur,r\n2025-03,CHF,1.05\n",
}


def run(tmp_path, pipeline, dup_customers: str = "latest", guests: str = "guest", **files):
    layout = DataLayout(tmp_path / "data")
    layout.raw.mkdir(parents=True)
    for name, text in {**FILES, **files}.items():
        (layout.raw / name).write_text(text)
    cat = tmp_path / "catalog.yaml"
    cat.write_text(textwrap.dedent(CATALOG.replace("DUP_CUSTOMERS", dup_customers).replace("GUESTS", guests)))
    col, built = pipeline(layout, cat, ("2025-01-01", "2025-12-31"))
    tables = {p.stem: pd.read_parquet(p) for p in (layout.processed / "clean").glob("*.parquet")}
    return built, tables


def quarantined(built, source: str) -> dict[int, tuple[str, str]]:
    q = built.quarantine[built.quarantine["source"] == source]
    return {int(r["_row"]): (r["rule"], r["reason"]) for _, r in q.iterrows()}


def test_good_input_keeps_everything_and_balances(tmp_path, pipeline):
    built, tables = run(tmp_path, pipeline)
    b = built.balance.set_index("source")
    assert b["balanced"].all() and (b["kept"] == b["records_in"]).all()
    assert built.money["net_revenue"] == 25.0 and len(built.c360) == 2


def test_quarantine_cascades_from_an_order_to_its_lines_and_references_are_named(tmp_path, pipeline):
    orders = FILES["orders.csv"] + "O3,C9,2025-03-03,completed,EUR\nO4,C1,2025-03-04,lost,EUR\n"
    lines = FILES["lines.csv"] + "O3,1,s3,a,1,1\nO4,1,s4,a,1,1\nO9,1,s9,a,1,1\n"
    built, tables = run(tmp_path, pipeline, **{"orders.csv": orders, "lines.csv": lines})
    q = quarantined(built, "orders")
    assert q[4] == ("reference", "expected an existing customers.customer_id; 'C9' does not exist")
    assert 5 not in q and built.fixes.set_index("_row").loc[5, "rule"] == "allowed"  # optional: value dropped
    ql = quarantined(built, "lines")
    assert ql[4][1] == "expected an existing orders.order_id; 'O3' was quarantined"
    assert ql[6][1] == "expected an existing orders.order_id; 'O9' does not exist"
    assert built.balance["balanced"].all()


def test_a_later_cancelled_copy_of_an_order_wins_and_earns_nothing(tmp_path, pipeline):
    """A repeated order with status cancelled used to be dropped while its revenue still counted."""
    orders = FILES["orders.csv"] + "O1,C1,2025-03-01,cancelled,EUR\n"
    built, tables = run(tmp_path, pipeline, **{"orders.csv": orders})
    o = tables["orders"].set_index("order_id")
    assert o.at["O1", "status"] == "cancelled" and o.at["O1", "net"] == 0
    assert built.money["net_revenue"] == 5.0
    assert built.conflicts.iloc[0]["fields"] == "status"
    b = built.balance.set_index("source").loc["orders"]
    assert (b["records_in"], b["kept"], b["key_duplicates"]) == (3, 2, 1)


def test_a_withdrawal_of_consent_always_wins(tmp_path, pipeline):
    for i, rows in enumerate(["C1,a@x.de,no,2025-06-01\n", "C1,a@x.de,no,2024-06-01\n"]):  # later, even earlier
        built, tables = run(tmp_path / str(i), pipeline, **{"customers.csv": FILES["customers.csv"] + rows})
        c = built.c360.set_index("customer_key")
        assert not c.at["C1", "marketing_consent"] and c.at["C2", "marketing_consent"]


def test_conflicting_duplicates_can_be_quarantined_as_a_group(tmp_path, pipeline):
    customers = FILES["customers.csv"] + "C1,other@x.de,yes,2025-06-01\nC2,b@x.de,yes,2025-01-01\n"
    built, _ = run(tmp_path, pipeline, dup_customers="quarantine", **{"customers.csv": customers})
    q = quarantined(built, "customers")
    assert set(q) == {2, 4} and q[2][0] == "conflicting_duplicate" and "disagree on email" in q[2][1]
    b = built.balance.set_index("source").loc["customers"]
    assert (b["kept"], b["exact_duplicates"], b["quarantined"]) == (1, 1, 2) and b["balanced"]


def test_transactions_without_a_customer_follow_the_stated_rule(tmp_path, pipeline):
    orders = FILES["orders.csv"] + "O3,,2025-03-05,completed,EUR\n"
    lines = FILES["lines.csv"] + "O3,1,s3,a,1,7\n"
    kept, _ = run(tmp_path / "g", pipeline, **{"orders.csv": orders, "lines.csv": lines})
    assert kept.money["guest_orders"] == 1 and kept.money["net_revenue"] == 32.0 and len(kept.c360) == 2
    dropped, _ = run(tmp_path / "q", pipeline, guests="quarantine", **{"orders.csv": orders, "lines.csv": lines})
    assert quarantined(dropped, "orders")[4][0] == "missing_customer"
    assert dropped.money["net_revenue"] == 25.0 and dropped.balance["balanced"].all()


def test_foreign_currency_is_converted_and_a_missing_rate_quarantines_the_line(tmp_path, pipeline):
    orders = FILES["orders.csv"] + "O3,C1,2025-03-05,completed,CHF\nO4,C1,2025-04-05,completed,CHF\n"
    lines = FILES["lines.csv"] + "O3,1,s3,a,1,100\nO4,1,s4,a,1,100\n"
    built, tables = run(tmp_path, pipeline, **{"orders.csv": orders, "lines.csv": lines})
    assert tables["order_lines"].set_index("order_id").at["O3", "amount"] == 105.0
    q = quarantined(built, "lines")
    assert q[5] == ("fx_rate", "expected an exchange rate from CHF to EUR for 2025-04")
    assert built.balance["balanced"].all()


def test_outliers_are_excluded_from_money_and_counted(tmp_path, pipeline):
    lines = "oid,n,sku,cat,q,p\n" + "".join(f"O1,{i},s{i},a,1,{10 + i % 7}\n" for i in range(1, 40)) + \
        "O2,1,s1,a,1,1000000000000\n"
    built, _ = run(tmp_path, pipeline, **{"lines.csv": lines})
    expected = sum(10 + i % 7 for i in range(1, 40))
    assert built.money["outlier_lines"] == 1 and built.money["outlier_value"] == 1e12
    assert built.money["net_revenue"] == expected  # the 1e12 line does not count


def test_row_balance_holds_on_the_default_data_and_every_planted_problem_is_quarantined(default_clean):
    built = default_clean["built"]
    b = built.balance.set_index("source")
    assert b["balanced"].all(), b
    assert b.loc["web_events", "unreadable"] == 3 and b.loc["orders", "exact_duplicates"] > 0
    q = built.quarantine
    rules = set(zip(q["source"], q["rule"]))
    assert {("orders", "reference"), ("orders", "type"), ("orders", "future_date"), ("orders", "allowed"),
            ("order_lines", "range"), ("order_lines", "reference"), ("web_events", "unreadable")} <= rules
    recount = sum(pd.read_parquet(p).shape[0] for p in (default_clean["layout"].staged / "raw").glob("*.parquet"))
    assert int(b["records_in"].sum()) == recount + int(b["unreadable"].sum())
