"""The source wizard proposes catalogue entries that work, on files shaped like real exports."""

from __future__ import annotations

import gzip
import io
import json
from contextlib import redirect_stdout

import pandas as pd
import pytest

from helpers.canonical import collection as C
from helpers.canonical.engine import DuckDBEngine
from helpers.sources.__main__ import main
from helpers.sources.catalog import load_catalog
from helpers.sources.sniff import suggest


def invoice_export(path):
    rows = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    for i in range(60):
        rows.append(f"{536365 + i},85123A,WHITE HANGING HEART,{i % 7 + 1},2010-12-0{i % 9 + 1} 08:26:00,2.55,"
                    f"{17850 + i % 5}.0,United Kingdom")
    rows.append("C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527.0,United Kingdom")
    rows.append("C536383,35004C,SET OF 3,-1,2010-12-01 09:49:00,4.65,15311.0,United Kingdom")
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))


def german_orders(path):
    rows = ["Bestellnummer;Kundennummer;Bestelldatum;Summe;Währung"]
    for i in range(40):
        rows.append(f"B{i};K{i % 9};{(i % 27) + 1:02d}.0{i % 9 + 1}.2025;{1000 + i * 37},{i % 90:02d};EUR")
    path.write_bytes(("\n".join(rows) + "\n").encode("cp1252"))


def marketplace_reviews(path):
    df = pd.DataFrame({"review_id": [f"r{i}" for i in range(30)], "order_id": [f"o{i}" for i in range(30)],
                       "review_score": [1 + i % 5 for i in range(30)],
                       "review_comment_title": ["", "Ótimo"] * 15,
                       "review_comment_message": ["Produto não chegou", "Recomendo muito"] * 15,
                       "review_creation_date": [f"2018-01-{i % 28 + 1:02d} 00:00:00" for i in range(30)]})
    df.to_csv(path, index=False)


def events_jsonl(path):
    with open(path, "w") as fh:
        for i in range(50):
            fh.write(json.dumps({"event_id": f"e{i}", "ts": f"2026-01-01T10:{i:02d}:00Z", "session_id": f"s{i // 5}",
                                 "anonymous_id": f"a{i // 10}", "event_type": "page_view", "page": "/"}) + "\n")


def test_invoice_log(tmp_path):
    p = tmp_path / "online_retail.csv.gz"
    invoice_export(p)
    s = suggest(p)
    assert s.entity == "order_lines" and s.read["sep"] == ","
    assert s.columns["order_id"] == "InvoiceNo" and s.columns["customer_id"] == "CustomerID"
    assert s.columns["unit_price"] == "UnitPrice" and s.columns["quantity"] == "Quantity"
    assert s.columns["order_date"] == {"column": "InvoiceDate", "formats": ["%Y-%m-%d %H:%M:%S"]}
    assert s.rules["reversal"] == {"column": "InvoiceNo", "starts_with": "C"}
    assert any("17850.0" in c for c in s.checks)


def test_german_export_with_comma_decimals_and_day_first_dates(tmp_path):
    p = tmp_path / "bestellungen.csv"
    german_orders(p)
    s = suggest(p)
    assert s.entity == "orders" and s.read["sep"] == ";"
    assert s.locale == {"encoding": "cp1252", "date_order": "DMY", "decimal": ","}
    assert s.columns["amount"] == "Summe" and s.columns["currency"] == "Währung"
    assert s.columns["order_date"]["formats"][0] == "%d.%m.%Y"


def test_marketplace_reviews_and_events(tmp_path):
    r = tmp_path / "olist_order_reviews_dataset.csv"
    marketplace_reviews(r)
    s = suggest(r)
    assert s.entity == "feedback" and s.columns["stars"] == "review_score"
    assert s.columns["text"] == "review_comment_message" and s.columns["title"] == "review_comment_title"
    assert s.columns["feedback_id"] == "review_id" and s.columns["created_at"]["column"] == "review_creation_date"
    e = tmp_path / "events.jsonl"
    events_jsonl(e)
    assert suggest(e).entity == "events"


def test_the_printed_proposal_is_a_catalogue_that_loads_and_collects(tmp_path):
    invoice_export(tmp_path / "online_retail.csv.gz")
    german_orders(tmp_path / "bestellungen.csv")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["suggest", str(tmp_path / "online_retail.csv.gz"), "--currency", "GBP"]) == 0
    cat_path = tmp_path / "catalog.yaml"
    cat_path.write_text(out.getvalue())
    cat = load_catalog(cat_path)
    assert cat.dataset.currency == "GBP" and cat.entities == ["order_lines"]
    with DuckDBEngine() as eng:
        col = C.collect(cat, tmp_path, "", tmp_path / "staged", eng)
    assert col.violations.empty and col.accounting()["records"].sum() == 62
    assert main(["suggest", str(tmp_path / "bestellungen.csv"), "--write", str(cat_path)]) == 2  # no overwrite


def test_unreadable_input_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty.csv").write_bytes(b"")
    assert main(["suggest", str(tmp_path / "empty.csv")]) == 2
    assert "empty.csv: expected a header line and data" in capsys.readouterr().err


@pytest.mark.parametrize("values, style", [(["12,50", "3,99"], (",", "")), (["1.234,00", "5,10"], (",", ".")),
                                           (["1,234.00", "5.10"], (".", ","))])
def test_number_styles(values, style):
    from helpers.sources.sniff import number_style

    assert number_style(pd.Series(values)) == style
