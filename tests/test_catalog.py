"""The catalogue: roles, locale and rules are checked on load, and column names match however they are written."""

from __future__ import annotations

import textwrap

import pytest

from helpers.canonical import conform
from helpers.core.errors import SourceError
from helpers.core.model import ENTITIES, entity
from helpers.sources.catalog import load_catalog, normalise_header


def write(tmp_path, text: str):
    p = tmp_path / "catalog.yaml"
    p.write_text(textwrap.dedent(text))
    return p


LINES = """
    dataset: {name: Shop, currency: GBP}
    sources:
      invoices:
        file: lines.csv
        entity: order_lines
        columns: {order_id: InvoiceNo, customer_id: CustomerID, order_date: InvoiceDate, quantity: Qty,
                  unit_price: Price}
"""


def test_the_sample_catalogue_is_one_mapping_among_others():
    cat = load_catalog()
    assert cat.dataset.currency == "EUR"
    assert set(cat.entities) == {"customers", "orders", "order_lines", "returns", "products", "fx_rates", "events",
                                 "campaigns", "sends", "feedback"}
    assert [s.name for s in cat.by_entity("feedback")] == ["reviews", "surveys", "tickets"]


def test_a_single_invoice_log_is_a_valid_catalogue(tmp_path):
    cat = load_catalog(write(tmp_path, LINES))
    assert cat.entities == ["order_lines"] and cat.dataset.currency == "GBP"
    assert cat.sources["invoices"].format == "csv"  # from the extension


@pytest.mark.parametrize("change, message", [
    ("entity: order_lines", "expected one of customers"),  # replaced below by a typo
    ("order_id: InvoiceNo", "unknown role 'order_idd'; did you mean 'order_id'"),
    ("quantity: Qty,\n                  unit_price: Price", "an 'amount' mapping, or a 'unit_price'"),
    ("customer_id: CustomerID, ", "a 'customer_id' mapping: without an orders source"),
])
def test_mapping_mistakes_are_named(tmp_path, change, message):
    broken = {
        "entity: order_lines": "entity: order_line",
        "order_id: InvoiceNo": "order_idd: InvoiceNo",
        "quantity: Qty,\n                  unit_price: Price": "quantity: Qty",
        "customer_id: CustomerID, ": "",
    }[change]
    with pytest.raises(SourceError, match=message):
        load_catalog(write(tmp_path, LINES.replace(change, broken)))


def test_a_catalogue_without_transactions_is_refused(tmp_path):
    text = """
        sources:
          crm: {file: c.csv, entity: customers, columns: {customer_id: id}}
    """
    with pytest.raises(SourceError, match="at least one transactions source"):
        load_catalog(write(tmp_path, text))


def test_locale_and_rules_are_validated(tmp_path):
    bad_tz = LINES + "        locale: {timezone: Mars/Olympus}\n"
    with pytest.raises(SourceError, match="an IANA time zone"):
        load_catalog(write(tmp_path, bad_tz))
    bad_rule = LINES + "        rules: {duplicates: newest}\n"
    with pytest.raises(SourceError, match="rules.duplicates: expected one of latest, first, quarantine"):
        load_catalog(write(tmp_path, bad_rule))
    with pytest.raises(SourceError, match=r"catalog.yaml, row 3: expected valid YAML"):
        load_catalog(write(tmp_path, "sources:\n  - [unclosed\n"))


def test_column_names_match_case_space_and_underscore_insensitively(tmp_path):
    assert normalise_header(" Customer ID") == normalise_header("customer_id") == normalise_header("CUSTOMER-ID")
    cat = load_catalog(write(tmp_path, LINES.replace("Price}", "Price, discount_pct: Discount_Pct}")))
    m = conform.resolve_mapping(cat.sources["invoices"], ["invoiceno", "Customer ID", "invoice date", "QTY",
                                                           "price", "discount_pct"])
    assert m.columns == {"order_id": "invoiceno", "customer_id": "Customer ID", "order_date": "invoice date",
                         "quantity": "QTY", "unit_price": "price", "discount_pct": "discount_pct"}


def test_absent_optional_column_is_noted_and_absent_required_one_is_an_error(tmp_path):
    cat = load_catalog(write(tmp_path, LINES.replace("Price}", "Price, category: Category}")))
    m = conform.resolve_mapping(cat.sources["invoices"], ["InvoiceNo", "CustomerID", "InvoiceDate", "Qty", "Price"])
    assert m.absent == ["category"]
    lines = load_catalog(write(tmp_path, LINES.replace("Price}", "Price, amount: {column: Total, required: true}}")))
    with pytest.raises(SourceError, match=r"lines.csv, column 'Total': expected a column 'Total' for the required "
                                          r"role 'amount'.* got columns InvoiceNo"):
        conform.resolve_mapping(lines.sources["invoices"], ["InvoiceNo", "CustomerID", "InvoiceDate", "Qty", "Price"])


def test_every_entity_names_its_roles_and_the_minimum_is_small():
    assert entity("orders").required_roles == ["order_id", "customer_id", "order_date"]
    assert entity("order_lines").required_roles == []  # what lines need depends on whether orders exist
    assert "person_id" in entity("customers").roles and "person_id" in entity("orders").roles
    with pytest.raises(KeyError, match="did you mean 'feedback'"):
        entity("feedbacks")
    assert len(ENTITIES) == 11
