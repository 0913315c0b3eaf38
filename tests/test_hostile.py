"""Bad and hostile input: nothing lost, nothing executed, nothing leaked. One test per failure class, each
asserting the exact outcome: the error text (file, column, line), the quarantine row with its reason, or the
inert output."""

from __future__ import annotations

import email
import io
import os
import re
import textwrap

import numpy as np
import pandas as pd
import pytest

from helpers.core.errors import ParameterError, SourceError
from helpers.core.paths import DataLayout

LINES_CATALOG = """
    dataset: {name: Shop, currency: EUR, timezone: UTC}
    sources:
      lines:
        file: lines.csv
        entity: order_lines
        locale: LOCALE
        columns: {order_id: oid, customer_id: cid, order_date: day, quantity: q, unit_price: p, product_name: name}
"""


def run_lines(tmp_path, pipeline, csv: str | bytes, locale: str = "{}", window=("2025-01-01", "2025-12-31")):
    layout = DataLayout(tmp_path / "data")
    layout.raw.mkdir(parents=True)
    (layout.raw / "lines.csv").write_bytes(csv if isinstance(csv, bytes) else csv.encode("utf-8"))
    cat = tmp_path / "catalog.yaml"
    cat.write_text(textwrap.dedent(LINES_CATALOG.replace("LOCALE", locale)))
    return pipeline(layout, cat, window)


def good_rows(n: int, start: int = 1, price: str = "10") -> str:
    return "".join(f"O{i},C{i % 7},2025-03-{1 + i % 27:02d},1,{price},item {i}\n" for i in range(start, start + n))


HEADER = "oid,cid,day,q,p,name\n"


# ---------------------------------------------------------------------------------------------------------------
# Rows lost while the balance said "balanced"
# ---------------------------------------------------------------------------------------------------------------

def test_a_stray_quote_loses_nothing_and_the_balance_counts_the_file(tmp_path, pipeline):
    rows = good_rows(80).splitlines(keepends=True)
    rows[30] = rows[30].replace(",item", ',"item')  # an unclosed quote in a title
    col, built = run_lines(tmp_path, pipeline, HEADER + "".join(rows))
    b = built.balance.iloc[0]
    assert (b["records_in"], b["kept"], b["unreadable"], b["balanced"]) == (80, 79, 1, True)
    q = built.quarantine.set_index("_row")
    assert q.loc[32, "rule"] == "unreadable" and "line 32" in q.loc[32, "reason"]


def test_quarantine_rows_are_editor_lines_after_multiline_fields_and_blank_lines(tmp_path, pipeline):
    text = HEADER + 'O1,C1,2025-03-01,1,10,"two\nlines"\n\n' + good_rows(25, 2) + "\nO99,C1,2025-03-01,x,10,bad\n"
    col, built = run_lines(tmp_path, pipeline, text)
    # Line 1 header, 2–3 the two-line record, 4 blank, 5–29 good rows, 30 blank, 31 the bad one.
    q = built.quarantine.set_index("_row")
    assert list(q.index) == [31] and q.loc[31, "column"] == "q" and q.loc[31, "rule"] == "type"
    assert built.balance.iloc[0]["blank_lines"] == 2 and built.balance["balanced"].all()


def test_mixed_utf8_and_cp1252_keeps_the_euro_sign_and_reports_the_line(tmp_path, pipeline):
    text = (HEADER + "O1,C1,2025-03-01,1,10,Grüße\n").encode() + "O2,C1,2025-03-01,1,10,Preis €\n".encode("cp1252")
    col, built = run_lines(tmp_path, pipeline, text)
    acc = col.sources["lines"].read.accounting
    assert acc.decoded_with_fallback == [3] and acc.encoding == "utf-8"
    lines = pd.read_parquet(col.sources["lines"].typed_path).set_index("_row")
    assert lines.loc[3, "product_name"] == "Preis €" and lines.loc[2, "product_name"] == "Grüße"


# ---------------------------------------------------------------------------------------------------------------
# Wrong numbers accepted
# ---------------------------------------------------------------------------------------------------------------

def test_a_dot_decimal_in_a_comma_file_is_quarantined_not_multiplied(tmp_path, pipeline):
    rows = HEADER.replace(",", ";") + "".join(f"O{i};C1;2025-03-01;1;{20 + i},50;x\n" for i in range(1, 21))
    rows += "O99;C1;2025-03-01;1;83.16;x\n"
    col, built = run_lines(tmp_path, pipeline, rows, "{decimal: ',', thousands: '.'}")
    q = built.quarantine.set_index("_row")
    assert q.loc[22, "rule"] == "decimal_style" and "','" in q.loc[22, "reason"]
    assert built.money["net_revenue"] == pytest.approx(sum(20.5 + i for i in range(1, 21)))


@pytest.mark.parametrize("value", ["inf", "Infinity", "-Infinity", "NaN"])
def test_infinite_prices_never_reach_revenue(tmp_path, pipeline, value):
    col, built = run_lines(tmp_path, pipeline, HEADER + good_rows(5) + f"O99,C1,2025-03-01,1,{value},x\n")
    assert np.isfinite(built.money["net_revenue"]) and built.money["net_revenue"] == 50.0
    q = built.quarantine.set_index("_row")
    assert q.loc[7, "rule"] == "type" and "finite number" in q.loc[7, "reason"]


def test_time_zone_aware_parquet_keeps_its_offset(tmp_path, pipeline):
    layout = DataLayout(tmp_path / "data")
    layout.raw.mkdir(parents=True)
    ts = pd.to_datetime(["2025-07-01 00:30", "2025-07-01 12:00"]).tz_localize("Europe/Berlin")
    pd.DataFrame({"oid": ["O1", "O2"], "cid": ["C1", "C2"], "day": ts, "amount": [10.0, 20.0]}).to_parquet(
        layout.raw / "orders.parquet")
    cat = tmp_path / "c.yaml"
    cat.write_text("dataset: {timezone: UTC}\nsources:\n  o: {file: orders.parquet, entity: orders, columns: "
                   "{order_id: oid, customer_id: cid, order_date: day, amount: amount}}\n")
    col, built = pipeline(layout, cat, ("2025-01-01", "2025-12-31"))
    typed = pd.read_parquet(col.sources["o"].typed_path)
    assert typed["order_date"].tolist() == [pd.Timestamp("2025-06-30 22:30"), pd.Timestamp("2025-07-01 10:00")]


def test_dates_before_the_window_are_quarantined(tmp_path, pipeline):
    col, built = run_lines(tmp_path, pipeline, HEADER + good_rows(3) + "O9,C1,1899-12-31,1,10,x\n")
    q = built.quarantine.set_index("_row")
    assert q.loc[5, "rule"] == "before_window" and "on or after 2025-01-01" in q.loc[5, "reason"]


def test_a_huge_line_is_excluded_from_revenue_and_counted(tmp_path, pipeline):
    col, built = run_lines(tmp_path, pipeline, HEADER + good_rows(40) + "O99,C1,2025-03-01,1,1e12,x\n")
    m = built.money
    assert m["outlier_lines"] == 1 and m["outlier_value"] == 1e12 and m["net_revenue"] == 400.0


# ---------------------------------------------------------------------------------------------------------------
# Conflicting duplicates merged silently
# ---------------------------------------------------------------------------------------------------------------

def test_a_later_cancellation_and_a_consent_withdrawal_win(tmp_path, pipeline):
    layout = DataLayout(tmp_path / "data")
    layout.raw.mkdir(parents=True)
    (layout.raw / "crm.csv").write_text("id,consent\nC1,yes\nC2,yes\nC1,no\n")
    (layout.raw / "orders.csv").write_text("oid,cid,day,status,amount\nO1,C1,2025-03-01,completed,10\n"
                                           "O2,C2,2025-03-01,completed,5\nO1,C1,2025-03-01,cancelled,10\n")
    cat = tmp_path / "c.yaml"
    cat.write_text(textwrap.dedent("""
        sources:
          crm: {file: crm.csv, entity: customers, columns: {customer_id: id, marketing_consent: consent}}
          o: {file: orders.csv, entity: orders, columns: {order_id: oid, customer_id: cid, order_date: day,
              status: status, amount: amount}}
    """))
    col, built = pipeline(layout, cat, ("2025-01-01", "2025-12-31"))
    assert built.money["net_revenue"] == 5.0
    c = built.c360.set_index("customer_key")
    assert not c.at["C1", "marketing_consent"] and c.at["C2", "marketing_consent"]
    assert set(built.conflicts["fields"]) == {"status", "marketing_consent"}


# ---------------------------------------------------------------------------------------------------------------
# Customer text executed
# ---------------------------------------------------------------------------------------------------------------

HOSTILE = ["<script>alert(1)</script>", '<img src=x onerror="alert(2)">', "[x](javascript:alert(3))",
           "=cmd|' /C calc'!A0", "+1+2", "@SUM(A1)", "-2+3", "\tTAB", "**bold** `code` <b>"]


def _inert_html(text: str) -> bool:
    return not re.search(r"<script>alert|<img src=x onerror|href=\"javascript:|<b>", text)


def test_every_html_output_path_escapes_customer_text():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.analysis import segmentation as S
    from helpers.core import plotting, widgets
    from helpers.core.safety import inline_markup, md_escape
    from helpers.reporting import pages as R

    df = pd.DataFrame({"arm": HOSTILE, "value": range(len(HOSTILE))})
    outputs = [R.table_html(df, caption=HOSTILE[1]), R.callout_html(" ".join(HOSTILE), R.Callout.ALARM),
               R.kpi_cards([{"label": h, "value": h, "sentence": h, "href": "x.html"} for h in HOSTILE]),
               inline_markup(" ".join(HOSTILE)), md_escape(" ".join(HOSTILE))]
    fig, ax = plt.subplots()
    ax.set_title(HOSTILE[0])
    outputs.append(plotting.figure_html(fig, HOSTILE[1]))
    outputs.append(widgets.choice_explorer("x", {h: f"<p>{md_escape(h)}</p>" for h in HOSTILE[:2]}).children[1]
                   .children[0].value)
    prof = pd.Series({"customers": 5, "customer_share": 0.5, "value_share": 0.5, "avg_net_revenue": 1.0,
                      "age_bands": HOSTILE[0], "countries": HOSTILE[1], "acquisition": "x", "order_channels": "y",
                      "share_app": 0.1, "sessions_per_month": 1.0, "categories": HOSTILE[0], "avg_orders": 2.0,
                      "avg_order_value": 3.0, "discount_share": 0.1, "return_rate": 0.1, "avg_rating": 4.0,
                      "nps": 10.0, "open_rate": 0.2})
    import mistune  # the Markdown renderer nbconvert uses for the reports

    outputs.append(mistune.html(S.persona_card(HOSTILE[1], prof, prof, HOSTILE[0], "EUR")))
    for out in outputs:
        assert _inert_html(out), out[:300]
    with pytest.raises(ValueError):
        R.callout_html("x", "warning")  # an unknown kind is an error, never a calmer box


def test_csv_exports_neutralise_formulas(tmp_path):
    from helpers.core.safety import write_csv_safe

    write_csv_safe(pd.DataFrame({"excerpt": HOSTILE, "n": range(len(HOSTILE)), "score": -1.5}), tmp_path / "q.csv")
    back = pd.read_csv(tmp_path / "q.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    for cell in back["excerpt"]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert back["excerpt"].iloc[3] == "'=cmd|' /C calc'!A0" and back["score"].iloc[0] == "-1.5"  # numbers stay


def test_alert_emails_are_plain_text(tmp_path):
    from helpers.reporting import alerts

    queue = pd.DataFrame({"team": ["cx"], "priority": [1.0], "compound": [-0.9], "nps": [np.nan], "clv": [10.0],
                          "customer_pseudo_id": ["cust_1"], "channel": ["review"], "id": ["r1"],
                          "excerpt": [HOSTILE[0]]})
    msgs = alerts.build_messages(queue, {"teams": {}, "default": "cx@example.invalid"}, "wb@example.invalid")
    alerts.deliver(msgs, None, tmp_path)
    parsed = email.message_from_bytes(next(tmp_path.glob("*.eml")).read_bytes())
    assert parsed.get_content_type() == "text/plain" and not parsed.is_multipart()


@pytest.mark.notebooks
def test_hostile_text_in_reviews_products_and_arm_names_renders_inert(tmp_path):
    """End to end: reviews, product names and an A/B arm carrying markup, through all seven reports."""
    from helpers.run import run

    src = tmp_path / "export"
    src.mkdir()
    rng = np.random.default_rng(1)
    orders = [f"O{i},C{i % 60},2025-{1 + i % 11:02d}-{1 + i % 27:02d},{rng.integers(10, 90)}" for i in range(400)]
    (src / "orders.csv").write_text("oid,cid,day,amount\n" + "\n".join(orders) + "\n")
    reviews = [f"R{i},C{i % 60},2025-{1 + i % 11:02d}-10,{1 + i % 5},{HOSTILE[i % len(HOSTILE)]} "
               f"{'great product' if i % 2 else 'terrible delivery'}" for i in range(120)]
    (src / "reviews.csv").write_text("rid,cid,day,stars,text\n" + "\n".join(reviews) + "\n")
    arms = np.where(rng.random(3000) < 0.5, "control", '<img src=x onerror="alert(9)">')
    pd.DataFrame({"user": range(3000), "arm": arms, "converted": (rng.random(3000) < 0.1).astype(int)}).to_csv(
        src / "ab.csv", index=False)
    (tmp_path / "c.yaml").write_text(textwrap.dedent("""
        sources:
          orders: {file: orders.csv, entity: orders, columns: {order_id: oid, customer_id: cid, order_date: day,
                   amount: amount}}
          reviews: {file: reviews.csv, entity: feedback, constants: {channel: review}, columns: {feedback_id: rid,
                    customer_id: cid, created_at: day, stars: stars, text: text}}
    """))
    out = io.StringIO()
    code = run("base", overrides=[f"data_dir={tmp_path / 'data'}", "01_collection.sample_data=false",
                                  f"01_collection.source_dir={src}", f"01_collection.catalog={tmp_path / 'c.yaml'}",
                                  f"06_ab_test.table_file={src / 'ab.csv'}", "06_ab_test.unit_col=user",
                                  "06_ab_test.variant_col=arm", "06_ab_test.control=control",
                                  "06_ab_test.metric=converted", "06_ab_test.segment_col="],
               reports_dir=tmp_path / "reports", out=out)
    assert code == 0, out.getvalue()
    pages = list((tmp_path / "reports").rglob("*.html"))
    assert len(pages) == 8
    for page in pages:
        assert _inert_html(page.read_text(encoding="utf-8")), page.name
    queue = pd.read_csv(tmp_path / "data" / "processed" / "followups" / "followup_queue.csv", dtype=str,
                        encoding="utf-8-sig", keep_default_na=False)
    assert not queue["excerpt"].str.match(r"^[=+\-@\t]").any()


# ---------------------------------------------------------------------------------------------------------------
# Secrets leaking
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["duckdb:///crm.duckdb?password=Hunter2x", "postgresql://u:Hunter2x@h/db",
                                 "mssql://h/db?Token=Hunter2x", "Driver={x};Server=h;PWD=Hunter2x;"])
def test_a_secret_in_a_parameter_is_refused_before_anything_runs(tmp_path, url):
    from helpers.run import run

    out = io.StringIO()
    code = run("ci", overrides=[f"01_collection.db_url={url}"], reports_dir=tmp_path / "r", out=out)
    assert code == 2 and "Hunter2x" not in out.getvalue() and "env:VARIABLE_NAME" in out.getvalue()
    assert not (tmp_path / "r").exists()


@pytest.mark.notebooks
def test_a_url_behind_env_never_reaches_any_output(tmp_path, monkeypatch):
    from helpers.run import run

    secret, token = "Sentinel-Pw-4e1d", "Sentinel-Tok-93a0"
    monkeypatch.setenv("CIW_TEST_DB_URL", f"postgresql://ana:{secret}@127.0.0.1:9/crm?sslmode=require&token={token}")
    out = io.StringIO()
    code = run("ci", overrides=[f"data_dir={tmp_path / 'data'}", "01_collection.db_url=env:CIW_TEST_DB_URL"],
               only=["01"], reports_dir=tmp_path / "reports", out=out)
    assert code == 1
    texts = [out.getvalue()] + [p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*")
                                if p.is_file() and p.suffix in (".ipynb", ".html", ".json", ".csv")]
    for text in texts:
        assert secret not in text and token not in text and "ana:" not in text
    assert "postgresql database crm on 127.0.0.1" in out.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# Raw crashes instead of clear errors
# ---------------------------------------------------------------------------------------------------------------

def test_broken_files_are_source_errors_naming_the_file(tmp_path, pipeline):
    layout = DataLayout(tmp_path / "data")
    layout.raw.mkdir(parents=True)
    (layout.raw / "lines.csv").write_bytes(b"not gzip at all")
    cat = tmp_path / "c.yaml"
    cat.write_text(textwrap.dedent(LINES_CATALOG.replace("LOCALE", "{}")).replace("lines.csv", "lines.csv.gz"))
    (layout.raw / "lines.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SourceError, match=r"lines.csv.gz: expected gzip-compressed data"):
        pipeline(layout, cat)
    (layout.raw / "lines.csv.gz").unlink()
    (layout.raw / "lines.csv.gz").mkdir()
    with pytest.raises(SourceError, match="lines.csv.gz: expected a file, got a directory"):
        pipeline(layout, cat)
    (layout.raw / "lines.csv.gz").rmdir()
    os.mkfifo(layout.raw / "lines.csv.gz")
    with pytest.raises(SourceError, match="named pipe"):
        pipeline(layout, cat)


@pytest.mark.parametrize("override, message", [
    ("window_end=2024-01-01", "the analysis window runs backwards"),
    ("alpha=5", "must lie in (0, 0.5]"),
    ("window_end=01/09/2026", "expects an ISO date YYYY-MM-DD"),
    ("window_end=2026-13-45", "is not a calendar date"),
    ("k_min=-1", "must be at least 2"),
    ("identity_matching=fuzzy", "expected 'probabilistic'"),
    ("match_threshold=0.2", "is a match probability in [0.5, 1)"),
    ("engine=sparc", "expected 'duckdb' (embedded, one machine) or 'spark'"),
])
def test_parameters_are_checked_for_meaning(tmp_path, override, message):
    from helpers.run import run

    out = io.StringIO()
    assert run("default", overrides=[override], reports_dir=tmp_path / "r", out=out) == 2
    assert message in out.getvalue()


def test_ab_tables_with_numeric_arms_work_and_non_binary_metrics_are_refused(tmp_path):
    from helpers.analysis import experiments as E

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"u": range(2000), "arm": rng.integers(0, 2, 2000), "y": (rng.random(2000) < 0.2).astype(int),
                       "level": rng.integers(0, 3, 2000)})
    df.to_csv(tmp_path / "ab.csv", sep=";", index=False, encoding="cp1252")
    setup = E.prepare("table", None, "", tmp_path / "ab.csv", "arm", "0", "y", "", "", {}, "", "", unit="u")
    comp = E.compare_arms(setup.units, setup.variant, setup.control, setup.metric)
    assert setup.control == "0" and comp["arm"].tolist() == ["1"]
    with pytest.raises(E.ExperimentError, match=r"ab.csv, column 'level': a conversion metric must be 0 or 1"):
        E.prepare("table", None, "", tmp_path / "ab.csv", "arm", "0", "level", "", "", {}, "", "", unit="u")


def test_labelled_files_are_sniffed_and_one_class_is_refused(tmp_path):
    from helpers.analysis import sentiment as S

    rows = [("Sehr gut, schöne Ware", "positive"), ("Schlecht verpackt", "negative")] * 10
    pd.DataFrame(rows, columns=["Text", "Label"]).to_csv(tmp_path / "l.csv", sep=";", index=False, encoding="cp1252")
    got = S.labelled_data(tmp_path / "l.csv", pd.DataFrame())
    assert got["text"].iloc[0] == "Sehr gut, schöne Ware" and set(got["label"]) == {"positive", "negative"}
    pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}).to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(SourceError, match=r"one.csv, column 'label': expected at least two different labels"):
        S.labelled_data(tmp_path / "one.csv", pd.DataFrame())


def test_strict_mode_stops_at_the_first_unreadable_json_line(tmp_path):
    from helpers.sources import readers

    (tmp_path / "e.jsonl").write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(SourceError, match=r"e.jsonl, row 2: expected one JSON object per line"):
        readers.read_jsonl(tmp_path / "e.jsonl", "e", tmp_path / "e.parquet", strict=True)


# ---------------------------------------------------------------------------------------------------------------
# Misleading messages
# ---------------------------------------------------------------------------------------------------------------

def test_utf16_and_a_byte_order_mark_are_read_not_misreported(tmp_path, pipeline):
    text = HEADER + good_rows(4)
    for name, data in [("u16", text.encode("utf-16")), ("bom", b"\xef\xbb\xbf" + text.encode())]:
        col, built = run_lines(tmp_path / name, pipeline, data)
        assert built.balance.iloc[0]["kept"] == 4 and built.quarantine.empty, name
