"""Bring your own data: three real-world export shapes, generated here, each run through all seven notebooks by
the runner via the documented path (a catalogue, a parameter set, ``python -m helpers.run``)."""

from __future__ import annotations

import io
import json
import re
import textwrap

import numpy as np
import pandas as pd
import pytest

from helpers.run import run

pytestmark = pytest.mark.notebooks


def write_project(root, catalog: str, files: dict[str, str | bytes], window: tuple[str, str] | None = None,
                  extra: dict | None = None):
    """A data folder with the files, a catalogue and a parameter set; returns the parameter set's path."""
    src = root / "export"
    src.mkdir(parents=True)
    for name, content in files.items():
        (src / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    (root / "catalog.yaml").write_text(textwrap.dedent(catalog))
    common = {"data_dir": str(root / "data")}
    if window:
        common.update(window_start=window[0], window_end=window[1])
    params = {"description": "test", "extends": "base", "reports_dir": str(root / "reports"), "common": common,
              "notebooks": {"01_collection": {"sample_data": False, "source_dir": str(src),
                                              "catalog": str(root / "catalog.yaml")}, **(extra or {})}}
    path = root / "params.yaml"
    import yaml

    path.write_text(yaml.safe_dump(params))
    return path


def run_all(params_path) -> tuple[int, str]:
    out = io.StringIO()
    code = run(str(params_path), out=out)
    return code, out.getvalue()


def html(root, step: str) -> str:
    return (root / "reports" / "html" / f"{step}.html").read_text(encoding="utf-8")


def metrics(root, step: str) -> dict:
    return json.loads((root / "data" / "processed" / "metrics" / f"{step}.json").read_text())["metrics"]


# ---------------------------------------------------------------------------------------------------------------
# 1. A flat invoice-line log (the shape of the UCI Online Retail export)
# ---------------------------------------------------------------------------------------------------------------

INVOICE_CATALOG = """
    dataset: {name: Gift shop, currency: GBP, timezone: Europe/London}
    sources:
      invoices:
        file: invoices.csv.gz
        entity: order_lines
        locale: {decimal: ".", encoding: utf-8}
        columns: {order_id: InvoiceNo, product_id: StockCode, product_name: Description, quantity: Quantity,
                  order_date: InvoiceDate, unit_price: {column: UnitPrice, min: 0}, customer_id: CustomerID,
                  country: Country}
        rules: {reversal: {column: InvoiceNo, starts_with: C}}
"""


def invoice_log(seed: int = 3) -> pd.DataFrame:
    """Invoice lines: float customer ids, C… cancellations, guest lines, an exact duplicate, a bad-debt line."""
    rng = np.random.default_rng(seed)
    rows, inv = [], 536000
    customers = [f"{17000 + i}.0" for i in range(80)]
    for day in pd.date_range("2011-01-03", "2011-10-28", freq="D"):
        for _ in range(rng.poisson(3)):
            inv += 1
            who = rng.choice(customers[: 20 + int(rng.integers(0, 60))]) if rng.random() > 0.15 else ""
            for line in range(int(rng.integers(1, 4))):
                q, p = int(rng.integers(1, 13)), float(rng.choice([0.85, 1.25, 2.1, 3.75, 4.95]))
                t = day + pd.Timedelta(hours=int(rng.integers(8, 18)), minutes=int(rng.integers(0, 60)))
                rows.append([str(inv), f"2{line}{inv % 97:02d}", f"ITEM {line}", q, f"{t:%Y-%m-%d %H:%M:%S}", p, who,
                             "United Kingdom"])
                if who and rng.random() < 0.04:  # a later credit note for part of the line
                    rows.append([f"C{inv}", rows[-1][1], rows[-1][2], -1, f"{t + pd.Timedelta(days=3):%Y-%m-%d %H:%M:%S}",
                                 p, who, "United Kingdom"])
    df = pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                                     "CustomerID", "Country"])
    df = pd.concat([df, df.iloc[[5]]], ignore_index=True)  # one line exported twice
    bad_debt = pd.DataFrame([["A999999", "B", "Adjust bad debt", 1, "2011-08-12 14:51:00", -1200.5, "", "United Kingdom"]],
                            columns=df.columns)
    return pd.concat([df, bad_debt], ignore_index=True)


def test_flat_invoice_log_runs_end_to_end(tmp_path):
    import gzip

    df = invoice_log()
    data = gzip.compress(df.to_csv(index=False).encode("utf-8"))
    params = write_project(tmp_path, INVOICE_CATALOG, {"invoices.csv.gz": data})
    code, log = run_all(params)
    assert code == 0, log
    for step in ["01_collection", "02_cleaning", "03_segmentation", "04_clv", "05_sentiment", "06_ab_test",
                 "07_summary"]:
        assert (tmp_path / "reports" / "html" / f"{step}.html").exists(), step
    # Every physical line is accounted for, guests included (kept as guest orders by the stated rule).
    m2 = metrics(tmp_path, "02_cleaning")
    assert m2["records_in"] == len(df) and m2["balanced"] and m2["quarantined"] == 1
    guests = df.loc[(df["CustomerID"] == "") & ~df["InvoiceNo"].str.startswith("C") & (df["UnitPrice"] >= 0),
                    "InvoiceNo"].nunique()  # the bad-debt line's negative price quarantines it
    assert m2["duplicates_merged"] == 1 and m2["guest_orders"] == guests
    # Revenue net of cancellations, computed independently: every line once, the negative bad-debt price excluded.
    independent = df.drop_duplicates()
    independent = independent[independent["UnitPrice"] >= 0]
    assert m2["net_revenue"] == pytest.approx((independent["Quantity"] * independent["UnitPrice"]).sum(), abs=0.01)
    assert m2["customers"] == df.loc[df["CustomerID"] != "", "CustomerID"].nunique()
    assert m2["outlier_lines"] == 0
    page = html(tmp_path, "02_cleaning")
    assert "GBP" in page and "EUR" not in page
    for step in ["01_collection", "02_cleaning", "03_segmentation", "04_clv"]:  # no generator wording on real data
        body = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html(tmp_path, step).split(
            '<footer class="wb-footer">')[0]).lower()
        assert not re.search(r"\bsample\b", body) and not re.search(r"\beur\b", body), step
    assert "dropout" in html(tmp_path, "04_clv").lower()  # 04 says whether customers are seen leaving
    assert "No review, survey or ticket data" in html(tmp_path, "05_sentiment")
    assert "No experiment data" in html(tmp_path, "06_ab_test")
    summary = html(tmp_path, "07_summary")
    assert "Step 05 was skipped: No review, survey or ticket data" in summary


# ---------------------------------------------------------------------------------------------------------------
# 2. A marketplace export: a customer id per order, the person behind it, items and reviews in Portuguese
# ---------------------------------------------------------------------------------------------------------------

MARKET_CATALOG = """
    dataset: {name: Marketplace, currency: BRL, timezone: America/Sao_Paulo}
    sources:
      customers:
        file: olist_customers_dataset.csv
        entity: customers
        columns: {customer_id: customer_id, person_id: customer_unique_id, postcode: customer_zip_code_prefix,
                  city: customer_city, region: customer_state}
      orders:
        file: olist_orders_dataset.csv
        entity: orders
        columns:
          order_id: order_id
          customer_id: customer_id
          order_date: order_purchase_timestamp
          status: {column: order_status, values: {cancelled: [canceled, unavailable], completed: [delivered, shipped]}}
      items:
        file: olist_order_items_dataset.csv
        entity: order_lines
        columns: {order_id: order_id, line_no: order_item_id, product_id: product_id, unit_price: price}
      reviews:
        file: olist_order_reviews_dataset.csv
        entity: feedback
        constants: {channel: review}
        columns: {feedback_id: review_id, order_id: order_id, stars: review_score, title: review_comment_title,
                  text: review_comment_message, created_at: review_creation_date}
"""

PT_POS = ["Produto ótimo, chegou antes do prazo", "Recomendo, tudo perfeito", "Muito bom, entrega rápida"]
PT_NEG = ["Produto não chegou", "Péssimo, veio quebrado", "Demorou muito e não recomendo"]


def marketplace(seed: int = 5) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    persons = [f"u{i:04d}" for i in range(150)]
    customers, orders, items, reviews = [], [], [], []
    n = 0
    for p in persons:
        for k in range(int(rng.choice([1, 1, 1, 2, 3, 4]))):
            n += 1
            cid, oid = f"c{n:05d}", f"o{n:05d}"  # a new customer id for every order
            customers.append([cid, p, f"{rng.integers(10000, 99999)}", "sao paulo", "SP"])
            day = pd.Timestamp("2017-01-01") + pd.Timedelta(days=int(rng.integers(0, 600)), hours=int(rng.integers(0, 24)))
            status = "canceled" if rng.random() < 0.03 else "delivered"
            orders.append([oid, cid, status, f"{day:%Y-%m-%d %H:%M:%S}"])
            for j in range(int(rng.integers(1, 3))):
                items.append([oid, j + 1, f"p{rng.integers(0, 40)}", round(float(rng.uniform(20, 200)), 2)])
            if rng.random() < 0.7:
                good = rng.random() < 0.7
                stars = int(rng.choice([4, 5])) if good else int(rng.choice([1, 2]))
                text = str(rng.choice(PT_POS if good else PT_NEG)) if rng.random() < 0.8 else ""
                reviews.append([f"r{n:05d}", oid, stars, "", text, f"{day + pd.Timedelta(days=9):%Y-%m-%d %H:%M:%S}"])
    frames = {
        "olist_customers_dataset.csv": pd.DataFrame(customers, columns=["customer_id", "customer_unique_id",
                                                                        "customer_zip_code_prefix", "customer_city",
                                                                        "customer_state"]),
        "olist_orders_dataset.csv": pd.DataFrame(orders, columns=["order_id", "customer_id", "order_status",
                                                                  "order_purchase_timestamp"]),
        "olist_order_items_dataset.csv": pd.DataFrame(items, columns=["order_id", "order_item_id", "product_id",
                                                                      "price"]),
        "olist_order_reviews_dataset.csv": pd.DataFrame(reviews, columns=["review_id", "order_id", "review_score",
                                                                          "review_comment_title",
                                                                          "review_comment_message",
                                                                          "review_creation_date"]),
    }
    return {k: v.to_csv(index=False) for k, v in frames.items()}


def test_marketplace_export_uses_the_person_key(tmp_path):
    files = marketplace()
    params = write_project(tmp_path, MARKET_CATALOG, files)
    code, log = run_all(params)
    assert code == 0, log
    cust = pd.read_csv(io.StringIO(files["olist_customers_dataset.csv"]))
    m2 = metrics(tmp_path, "02_cleaning")
    assert m2["customers"] == cust["customer_unique_id"].nunique()  # people, not per-order ids
    c360 = pd.read_parquet(tmp_path / "data" / "processed" / "customer_360.parquet")
    assert (c360["orders"] >= 2).sum() > 20  # repeat buyers exist only because the person key joins their orders
    assert "BRL" in html(tmp_path, "02_cleaning")
    assert metrics(tmp_path, "05_sentiment")["texts"] > 0


# ---------------------------------------------------------------------------------------------------------------
# 3. A shop with orders and e-mail sends only
# ---------------------------------------------------------------------------------------------------------------

SHOP_CATALOG = """
    dataset: {name: Newsletter shop, currency: EUR, timezone: Europe/Berlin}
    sources:
      orders:
        file: bestellungen.csv
        entity: orders
        read: {sep: ";"}
        locale: {decimal: ",", thousands: ".", date_order: DMY, encoding: auto}
        columns: {order_id: Bestellnummer, customer_id: Kundennummer, email: E-Mail, order_date: Bestelldatum,
                  amount: Summe}
      mailings:
        file: mailings.csv
        entity: sends
        columns: {send_id: id, campaign_id: kampagne, email: empfaenger, variant: variante, sent_at: gesendet,
                  opened_at: geoeffnet, clicked_at: geklickt}
"""


def shop(seed: int = 9) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    orders, sends = [], []
    for i in range(200):
        email = f"kunde{i}@beispiel.de"
        for k in range(int(rng.integers(1, 5))):
            d = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 360)))
            amount = f"{rng.uniform(10, 400):.2f}".replace(".", ",")
            orders.append([f"B{len(orders) + 1}", f"K{i}", email, f"{d:%d.%m.%Y}", amount])
        for camp, day in [("fruehling", "2025-04-01"), ("sommer", "2025-07-01")]:
            variant = "A" if rng.random() < 0.5 else "B"
            opened = rng.random() < (0.3 if variant == "A" else 0.4)
            sends.append([f"{camp}-{i}", camp, email.upper(), variant, f"{day} 08:00:00",
                          f"{day} 09:00:00" if opened else "", f"{day} 09:05:00" if opened and rng.random() < 0.3 else ""])
    o = pd.DataFrame(orders, columns=["Bestellnummer", "Kundennummer", "E-Mail", "Bestelldatum", "Summe"])
    s = pd.DataFrame(sends, columns=["id", "kampagne", "empfaenger", "variante", "gesendet", "geoeffnet", "geklickt"])
    return {"bestellungen.csv": o.to_csv(index=False, sep=";").encode("cp1252"),
            "mailings.csv": s.to_csv(index=False).encode("utf-8")}


def test_shop_with_orders_and_email_sends_only(tmp_path):
    params = write_project(tmp_path, SHOP_CATALOG, shop())
    code, log = run_all(params)
    assert code == 0, log
    m2 = metrics(tmp_path, "02_cleaning")
    assert m2["customers"] == 200 and m2["balanced"]
    c360 = pd.read_parquet(tmp_path / "data" / "processed" / "customer_360.parquet")
    assert (c360["emails_received"] == 2).all()  # sends found their customers through the e-mail address
    m6 = metrics(tmp_path, "06_ab_test")
    assert m6["experiment"] in ("sommer", "fruehling") and m6["units"] == 200  # tests read from the sends
    assert "No review, survey or ticket data" in html(tmp_path, "05_sentiment")
