"""Typing and checking values by role and locale: wrong numbers are quarantined, never silently accepted."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from helpers.canonical import collection as C
from helpers.canonical.engine import DuckDBEngine
from helpers.core.errors import SourceError
from helpers.sources.catalog import load_catalog


def conform(tmp_path, csv: str, columns: str, locale: str = "{}", rules: str = "{}", entity: str = "order_lines",
            dataset: str = "{name: Test, currency: EUR, timezone: UTC}", window=("2020-01-01", "2026-12-31"),
            strict: bool = False):
    """Collect one CSV source; return (typed rows by line, violations by (line, role) -> (rule, reason))."""
    (tmp_path / "src.csv").write_text(csv, encoding="utf-8")
    cat_path = tmp_path / "cat.yaml"
    cat_path.write_text(textwrap.dedent(f"""
        dataset: {dataset}
        sources:
          src:
            file: src.csv
            entity: {entity}
            locale: {locale}
            rules: {rules}
            columns: {columns}
    """))
    if entity not in ("orders", "order_lines"):  # a catalogue needs transactions
        (tmp_path / "tx.csv").write_text("o,c,d,a\n1,x,2025-01-01,1\n")
        with open(cat_path, "a") as fh:
            fh.write("  tx: {file: tx.csv, entity: orders, columns: {order_id: o, customer_id: c, order_date: d, "
                     "amount: a}}\n")
    cat = load_catalog(cat_path)
    with DuckDBEngine() as eng:
        col = C.collect(cat, tmp_path, "", tmp_path / "staged", eng, *window, strict=strict)
    typed = pd.read_parquet(col.sources["src"].typed_path).set_index("_row")
    v = col.violations
    return typed, {(int(r["_row"]), r["role"]): (r["rule"], r["reason"]) for _, r in v.iterrows()}


LINE_COLS = "{order_id: id, customer_id: cust, order_date: day, quantity: q, unit_price: price}"


def test_comma_decimals_are_read_and_dot_decimals_in_them_are_quarantined(tmp_path):
    csv = ("id;cust;day;q;price\n1;a;2025-01-01;1;83,16\n2;a;2025-01-01;1;1.234,56\n3;a;2025-01-01;1;83.16\n"
           "4;a;2025-01-01;1;€ 12,50\n5;a;2025-01-01;1;7\n")
    typed, bad = conform(tmp_path, csv, LINE_COLS, "{decimal: ',', thousands: '.'}")
    assert typed.loc[2, "unit_price"] == 83.16 and typed.loc[3, "unit_price"] == 1234.56
    assert typed.loc[5, "unit_price"] == 12.5 and typed.loc[6, "unit_price"] == 7
    rule, reason = bad[(4, "unit_price")]
    assert rule == "decimal_style" and pd.isna(typed.loc[4, "unit_price"])
    assert "expected a number with ',' as the decimal mark" in reason and "written with '.'" in reason


def test_a_value_far_above_its_column_with_only_a_thousands_separator_is_suspect(tmp_path):
    rows = "".join(f"{i};a;2025-01-01;1;{40 + i},50\n" for i in range(1, 20))
    typed, bad = conform(tmp_path, "id;cust;day;q;price\n" + rows + "99;a;2025-01-01;1;8.316\n", LINE_COLS,
                         "{decimal: ',', thousands: '.'}")
    assert bad[(21, "unit_price")][0] == "decimal_style" and pd.isna(typed.loc[21, "unit_price"])
    assert len(bad) == 1


@pytest.mark.parametrize("value", ["inf", "Infinity", "-inf", "NaN", "1e400", "12abc"])
def test_only_finite_numbers_are_accepted(tmp_path, value):
    typed, bad = conform(tmp_path, f"id,cust,day,q,price\n1,a,2025-01-01,1,{value}\n", LINE_COLS)
    assert bad[(2, "unit_price")][0] == "type" and "finite number" in bad[(2, "unit_price")][1]
    assert pd.isna(typed.loc[2, "unit_price"])


def test_dates_outside_the_window_are_rejected_on_the_entity_date(tmp_path):
    csv = "id,cust,day,q,price\n1,a,1899-12-31,1,1\n2,a,2031-01-01,1,1\n3,a,2025-05-05,1,1\n"
    typed, bad = conform(tmp_path, csv, LINE_COLS)
    assert bad[(2, "order_date")][0] == "before_window" and "on or after 2020-01-01" in bad[(2, "order_date")][1]
    assert bad[(3, "order_date")][0] == "future_date" and typed.loc[4, "order_date"] == pd.Timestamp("2025-05-05")


def test_time_zones_are_converted_to_the_data_set_zone(tmp_path):
    csv = ("id,cust,day,q,price\n1,a,2026-07-01 12:00:00,1,1\n2,a,2026-07-01T12:00:00+02:00,1,1\n"
           "3,a,2026-01-15T09:30:00Z,1,1\n")
    typed, bad = conform(tmp_path, csv, LINE_COLS, "{timezone: Europe/Berlin}",
                         dataset="{name: T, currency: EUR, timezone: UTC}")
    assert not bad
    assert typed["order_date"].tolist() == [pd.Timestamp("2026-07-01 10:00"), pd.Timestamp("2026-07-01 10:00"),
                                            pd.Timestamp("2026-01-15 09:30")]


def test_date_order_decides_ambiguous_dates_and_a_wrong_order_is_a_clear_error(tmp_path):
    csv = "id,cust,day,q,price\n" + "".join(f"{i},a,{i:02d}/02/2025,1,1\n" for i in range(1, 13))
    typed, _ = conform(tmp_path, csv, LINE_COLS, "{date_order: DMY}")
    assert typed.loc[2, "order_date"] == pd.Timestamp("2025-02-01")
    later = "id,cust,day,q,price\n" + "".join(f"{i},a,{i + 12:02d}/02/2025,1,1\n" for i in range(1, 13))
    with pytest.raises(SourceError, match=r"src.csv, column 'day', row 2: .* the mapping or locale is probably wrong: "
                                          r"check locale.date_order"):
        conform(tmp_path, later, LINE_COLS, "{date_order: MDY}")


def test_ids_exported_as_floats_lose_their_zeros_and_values_map_to_canonical_spellings(tmp_path):
    csv = "oid,cust,day,status,amount\nA1,17850.0,2025-01-01,storniert,5\nA2,17850,2025-01-02,OK,5\n"
    cols = ("{order_id: oid, customer_id: cust, order_date: day, amount: amount, status: {column: status, values: "
            "{cancelled: [storniert, canceled], completed: [ok]}}}")
    typed, bad = conform(tmp_path, csv, cols, entity="orders")
    assert typed["customer_id"].tolist() == ["17850", "17850"]
    assert typed["status"].tolist() == ["cancelled", "completed"] and not bad


def test_booleans_in_several_languages(tmp_path):
    csv = "id,consent\n1,ja\n2,Nein\n3,oui\n4,0\n5,maybe\n"
    typed, bad = conform(tmp_path, csv, "{customer_id: id, marketing_consent: consent}", entity="customers")
    assert typed["marketing_consent"].tolist()[:4] == [True, False, True, False]
    assert bad[(6, "marketing_consent")][0] == "type"


def test_strict_mode_names_file_column_and_line(tmp_path):
    with pytest.raises(SourceError, match=r"src.csv, column 'price', row 3: expected a finite number, got 'x'"):
        conform(tmp_path, "id,cust,day,q,price\n1,a,2025-01-01,1,1\n2,a,2025-01-01,1,x\n", LINE_COLS, strict=True)


def test_an_empty_window_is_taken_from_the_transactions(tmp_path):
    (tmp_path / "src.csv").write_text("id,cust,day,q,price\n1,a,1899-01-01,1,1\n2,a,2011-02-03,1,1\n"
                                      "3,a,2011-06-30,1,1\n")
    (tmp_path / "cat.yaml").write_text(f"sources:\n  src: {{file: src.csv, entity: order_lines, columns: {LINE_COLS}}}\n")
    with DuckDBEngine() as eng:
        col = C.collect(load_catalog(tmp_path / "cat.yaml"), tmp_path, "", tmp_path / "st", eng)
    assert col.window == ("2011-02-03", "2011-06-30")  # 1899 is not a plausible first date
    assert col.violations.set_index("_row").loc[2, "rule"] == "before_window"
