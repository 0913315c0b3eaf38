"""Step 02, second part: valued transactions in the reporting currency, with returns, cancellations and outliers.

Rules, stated once (the report and the README quote them):

* **Line value** = the mapped ``amount``, else quantity × unit price × (1 − discount / 100), converted to the
  data set's currency with the monthly rate in ``fx_rates`` (a line whose rate is missing is quarantined).
* **Orders** come from the orders source when there is one; otherwise every distinct order id of the order
  lines is an order (a line without an order id is an order of its own).
* **Reversals** (credit notes, ``C…`` invoices, any line with a negative value) are not purchases: their value
  becomes a refund to the customer, booked on their date.
* **Cancelled orders** (status ``cancelled``) earn nothing.
* **Net revenue** of an order = its lines' value − the refunds booked against it (never below zero); refunds
  that name no known order (most reversals) are netted at the customer.
* **Outliers**: a line whose value is more than ``z`` robust standard deviations (median and MAD of the log
  of the absolute value, per category when there is one) from the typical line, or whose quantity exceeds the
  source's ``max_quantity``, is flagged and **excluded from every money figure**; the report shows how many
  and how much. A reversal of an outlier is an outlier too, so both sides of a mistaken line drop out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from helpers.canonical.engine import Engine
from helpers.sources.catalog import Catalog

ROW = "_row"
MIN_GROUP = 20  # lines a category needs to be judged against itself
MIN_LOG_SCALE = 0.5  # robust scale floor on the log scale, for data where most lines are identical
OUTLIER_RULE = ("a line is an outlier when its value is more than z robust standard deviations (median and MAD "
                "of log |value|, per product category) from the typical line, or its quantity exceeds the source's "
                "max_quantity; outliers are flagged and excluded from every money figure")


@dataclass
class Transactions:
    """What the transaction step produced (tables live in the engine)."""

    problems: list[pd.DataFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    derived_orders: bool = False


def _cols(engine: Engine, table: str) -> set[str]:
    return set(engine.columns(table)) if engine.exists(table) else set()


def _pick(d, alias: str, cols: set[str], role: str, kind: str = "text") -> str:
    return f"{alias}.{d.q(role)}" if role in cols else d.null_of(kind)


def _currency_expr(d, catalog: Catalog, alias_cols: list[tuple[str, set[str]]], source_col: str,
                   extra: list[str] | None = None) -> str:
    """Row currency: the row's own, else the order's, else the source's declared currency, else the data set's."""
    parts = [f"{a}.{d.q('currency')}" for a, cols in alias_cols if "currency" in cols] + list(extra or [])
    declared = [(s.name, s.locale.currency) for s in catalog.sources.values() if s.locale.currency]
    if declared:
        cases = " ".join(f"WHEN {d.lit(n)} THEN {d.lit(c)}" for n, c in declared)
        parts.append(f"CASE {source_col} {cases} END")
    parts.append(d.lit(catalog.dataset.currency))
    return f"COALESCE({', '.join(parts)})"


def build(engine: Engine, catalog: Catalog) -> Transactions:
    """Create ``tx_lines``, ``tx_refunds`` and ``tx_orders`` in the engine from the clean entity tables."""
    d = engine.dialect
    out = Transactions()
    has_orders, has_lines = engine.exists("clean__orders"), engine.exists("clean__order_lines")
    oc, lc = _cols(engine, "clean__orders"), _cols(engine, "clean__order_lines")
    cur = catalog.dataset.currency
    # --- lines: one valued row per order line (or per order when there are no lines) -------------------------
    if has_lines:
        join = f"LEFT JOIN {d.q('clean__orders')} o ON o.{d.q('order_id')} = l.{d.q('order_id')}" if has_orders \
            else ""
        def both(role: str, kind: str = "text") -> str:
            parts = [f"l.{d.q(role)}"] if role in lc else []
            parts += [f"o.{d.q(role)}"] if has_orders and role in oc else []
            return f"COALESCE({', '.join(parts)})" if parts else d.null_of(kind)
        amount = (f"l.{d.q('amount')}" if "amount" in lc else d.null_of("money"))
        qty = f"l.{d.q('quantity')}" if "quantity" in lc else "1.0"  # without a quantity, a line is one unit
        discount = f" * (1 - COALESCE(l.{d.q('discount_pct')}, 0) / 100.0)" if "discount_pct" in lc else ""
        computed = f"{qty} * l.{d.q('unit_price')}{discount}" if "unit_price" in lc else d.null_of("money")
        order_id = (f"COALESCE(l.{d.q('order_id')}, concat(l._source, ':', CAST(l.{ROW} AS {d.sql_type('text')})))"
                    if "order_id" in lc else f"concat(l._source, ':', CAST(l.{ROW} AS {d.sql_type('text')}))")
        reversal = "l._reversal" + (" OR COALESCE(o._reversal, FALSE)" if has_orders else "")
        sel = f"""
            SELECT l._source, l.{ROW}, {order_id} AS order_id,
                   {_pick(d, 'l', lc, 'line_no', 'integer')} AS line_no,
                   {both('customer_id')} AS customer_id, {both('person_id')} AS person_id,
                   {both('email')} AS email, {both('order_date', 'datetime')} AS order_date,
                   {_pick(d, 'l', lc, 'product_id')} AS product_id, {_pick(d, 'l', lc, 'product_name')} AS product_name,
                   {_pick(d, 'l', lc, 'category')} AS category,
                   {f"l.{d.q('quantity')}" if "quantity" in lc else "1.0"} AS quantity,
                   {_pick(d, 'l', lc, 'unit_price', 'money')} AS unit_price,
                   COALESCE({_pick(d, 'l', lc, 'discount_pct', 'number')}, 0) AS discount_pct,
                   COALESCE({amount}, {computed}) AS amount_source,
                   {_currency_expr(d, catalog, [('l', lc)] + ([('o', oc)] if has_orders else []), 'l._source')}
                       AS currency,
                   {both('status')} AS status, {both('channel')} AS channel, {both('payment_method')} AS payment_method,
                   {both('country')} AS country, ({reversal}) AS reversal_rule
            FROM {d.q('clean__order_lines')} l {join}"""
    else:
        sel = f"""
            SELECT o._source, o.{ROW}, o.{d.q('order_id')} AS order_id, CAST(1 AS DOUBLE) AS line_no,
                   {_pick(d, 'o', oc, 'customer_id')} AS customer_id, {_pick(d, 'o', oc, 'person_id')} AS person_id,
                   {_pick(d, 'o', oc, 'email')} AS email, o.{d.q('order_date')} AS order_date,
                   {d.null_of('id')} AS product_id, {d.null_of('text')} AS product_name, {d.null_of('text')} AS category,
                   {d.null_of('number')} AS quantity, {d.null_of('money')} AS unit_price, 0.0 AS discount_pct,
                   {_pick(d, 'o', oc, 'amount', 'money')} AS amount_source,
                   {_currency_expr(d, catalog, [('o', oc)], 'o._source')} AS currency,
                   {_pick(d, 'o', oc, 'status')} AS status, {_pick(d, 'o', oc, 'channel')} AS channel,
                   {_pick(d, 'o', oc, 'payment_method')} AS payment_method, {_pick(d, 'o', oc, 'country')} AS country,
                   o._reversal AS reversal_rule
            FROM {d.q('clean__orders')} o"""
    engine.create("tx_lines_raw", sel)
    if engine.exists("clean__products") and "category" in _cols(engine, "clean__products"):
        cols = [c for c in engine.columns("tx_lines_raw") if c != "category"]
        engine.create("tx_lines_cat", f"SELECT {', '.join('l.' + d.q(c) for c in cols)}, "
                                      f"COALESCE(l.category, p.{d.q('category')}) AS category FROM "
                                      f"{d.q('tx_lines_raw')} l LEFT JOIN {d.q('clean__products')} p "
                                      f"ON p.{d.q('product_id')} = l.product_id")
        engine.create("tx_lines_raw", f"SELECT * FROM {d.q('tx_lines_cat')}")
    _convert_currency(engine, catalog, out, "tx_lines_raw", "tx_lines_fx", "amount_source", "order_date",
                      "amount", "order_lines" if has_lines else "orders")
    _flag_outliers(engine, catalog, "tx_lines_fx", "tx_lines")
    # --- refunds: returns and reversal lines ------------------------------------------------------------------
    parts = []
    if engine.exists("clean__returns"):
        rc = _cols(engine, "clean__returns")
        order_cur = [f"(SELECT max(o2.{d.q('currency')}) FROM {d.q('clean__orders')} o2 WHERE "
                     f"o2.{d.q('order_id')} = r.{d.q('order_id')})"] if has_orders and "currency" in oc and \
            "order_id" in rc else []
        cur_expr = _currency_expr(d, catalog, [("r", rc)], "r._source", extra=order_cur)
        engine.create("tx_returns_raw", f"""
            SELECT r._source, r.{ROW}, r.{d.q('return_id')} AS refund_id, {_pick(d, 'r', rc, 'order_id')} AS order_id,
                   {_pick(d, 'r', rc, 'customer_id')} AS customer_id, {_pick(d, 'r', rc, 'product_id')} AS product_id,
                   {_pick(d, 'r', rc, 'quantity', 'number')} AS quantity, r.{d.q('refund_amount')} AS amount_source,
                   {cur_expr} AS currency, r.{d.q('return_date')} AS refund_date,
                   {_pick(d, 'r', rc, 'reason')} AS reason
            FROM {d.q('clean__returns')} r""")
        _convert_currency(engine, catalog, out, "tx_returns_raw", "tx_returns", "amount_source", "refund_date",
                          "refund_amount", "returns")
        parts.append(f"""SELECT _source, {ROW}, 'return' AS kind, refund_id, order_id, customer_id,
                         {d.null_of('id')} AS person_id, {d.null_of('email')} AS email, product_id, quantity,
                         refund_amount, refund_date, reason, FALSE AS is_outlier FROM {d.q('tx_returns')}""")
    parts.append(f"""SELECT {d.null_of('text')} AS _source, {ROW}, 'reversal' AS kind,
                     concat(order_id, '/', CAST({ROW} AS {d.sql_type('text')})) AS refund_id,
                     {d.null_of('id')} AS order_id, customer_id, person_id, email, product_id, -quantity AS quantity,
                     -amount AS refund_amount, order_date AS refund_date, 'reversal' AS reason, is_outlier
                     FROM {d.q('tx_lines')} WHERE is_reversal""")
    engine.create("tx_refunds", " UNION ALL ".join(parts))
    # --- orders -------------------------------------------------------------------------------------------------
    line_orders = f"""
        SELECT order_id,
               {d.exact_sum('CASE WHEN NOT is_outlier THEN amount ELSE 0 END')} AS gross,
               {d.exact_sum('CASE WHEN is_outlier THEN amount ELSE 0 END')} AS outlier_amount,
               count(*) AS n_lines, sum(COALESCE(quantity, 0)) AS units,
               {d.exact_avg('CASE WHEN discount_pct > 0 THEN 1.0 ELSE 0.0 END')} AS discount_share,
               bool_or(is_outlier) AS has_outlier,
               min(customer_id) AS customer_id, min(person_id) AS person_id, min(email) AS email,
               min(order_date) AS order_date, max(status) AS status, min(currency) AS currency,
               min(channel) AS channel, min(payment_method) AS payment_method, min(country) AS country
        FROM {d.q('tx_lines')} WHERE NOT is_reversal GROUP BY order_id"""
    engine.create("tx_line_orders", line_orders)
    linked = f"""SELECT order_id, {d.exact_sum('CASE WHEN NOT is_outlier THEN refund_amount ELSE 0 END')} AS refund,
                        sum(COALESCE(quantity, 0)) AS returned_units
                 FROM {d.q('tx_refunds')} WHERE order_id IS NOT NULL GROUP BY order_id"""
    if has_orders and has_lines:
        header = f"""
            SELECT o._source, o.{ROW}, o.{d.q('order_id')} AS order_id,
                   COALESCE({_pick(d, 'o', oc, 'customer_id')}, lo.customer_id) AS customer_id,
                   COALESCE({_pick(d, 'o', oc, 'person_id')}, lo.person_id) AS person_id,
                   COALESCE({_pick(d, 'o', oc, 'email')}, lo.email) AS email,
                   o.{d.q('order_date')} AS order_date, COALESCE({_pick(d, 'o', oc, 'status')}, lo.status) AS status,
                   COALESCE(lo.currency, {_pick(d, 'o', oc, 'currency')}) AS currency,
                   COALESCE({_pick(d, 'o', oc, 'channel')}, lo.channel) AS channel,
                   COALESCE({_pick(d, 'o', oc, 'payment_method')}, lo.payment_method) AS payment_method,
                   COALESCE({_pick(d, 'o', oc, 'country')}, lo.country) AS country,
                   COALESCE(lo.gross, 0) AS gross, COALESCE(lo.outlier_amount, 0) AS outlier_amount,
                   COALESCE(lo.n_lines, 0) AS n_lines, COALESCE(lo.units, 0) AS units,
                   COALESCE(lo.discount_share, 0) AS discount_share, COALESCE(lo.has_outlier, FALSE) AS has_outlier,
                   o._reversal AS is_reversal
            FROM {d.q('clean__orders')} o LEFT JOIN {d.q('tx_line_orders')} lo ON lo.order_id = o.{d.q('order_id')}"""
    else:
        out.derived_orders = has_lines and not has_orders
        src = (f"{d.null_of('text')} AS _source, CAST(NULL AS BIGINT) AS {ROW}" if has_lines else
               f"(SELECT min(_source) FROM {d.q('tx_lines')} t WHERE t.order_id = lo.order_id) AS _source, "
               f"(SELECT min({ROW}) FROM {d.q('tx_lines')} t WHERE t.order_id = lo.order_id) AS {ROW}")
        header = f"""SELECT {src}, lo.order_id, customer_id, person_id, email, order_date, status, currency,
                     channel, payment_method, country, gross, outlier_amount, n_lines, units, discount_share,
                     has_outlier, FALSE AS is_reversal FROM {d.q('tx_line_orders')} lo"""
    engine.create("tx_orders", f"""
        SELECT h.*, COALESCE(h.status, '') = 'cancelled' AS is_cancelled,
               COALESCE(r.refund, 0) AS refund, COALESCE(r.returned_units, 0) AS returned_units,
               CASE WHEN COALESCE(h.status, '') = 'cancelled' OR h.is_reversal THEN 0.0
                    ELSE greatest(h.gross - COALESCE(r.refund, 0), 0.0) END AS net
        FROM ({header}) h LEFT JOIN ({linked}) r ON r.order_id = h.order_id""")
    return out


def _convert_currency(engine: Engine, catalog: Catalog, out: Transactions, src: str, dst: str, amount: str,
                      date: str, result: str, entity: str) -> None:
    """``dst`` = ``src`` with ``result`` in the reporting currency; rows without a rate are quarantined."""
    d = engine.dialect
    cur = catalog.dataset.currency
    has_fx = engine.exists("clean__fx_rates")
    rate = (f"CASE WHEN t.currency = {d.lit(cur)} THEN 1.0 ELSE f.{d.q('rate')} END" if has_fx else
            f"CASE WHEN t.currency = {d.lit(cur)} THEN 1.0 END")
    join = (f"LEFT JOIN {d.q('clean__fx_rates')} f ON f.{d.q('currency')} = t.currency AND "
            f"f.{d.q('month')} = {d.month_start('t.' + date)}") if has_fx else ""
    engine.create(f"{dst}_all", f"SELECT t.*, {d.round_money(f't.{amount} * ({rate})')} AS {result}, ({rate}) AS fx_rate "
                                f"FROM {d.q(src)} t {join}")
    missing = engine.frame(f"SELECT _source AS source, {ROW}, currency, {date} AS d FROM {d.q(dst + '_all')} "
                           f"WHERE fx_rate IS NULL AND {amount} IS NOT NULL AND _source IS NOT NULL")
    if len(missing):
        months = pd.to_datetime(missing["d"]).dt.strftime("%Y-%m")
        missing["column"] = "currency"
        missing["value"] = missing["currency"]
        missing["rule"] = "fx_rate"
        missing["reason"] = [f"expected an exchange rate from {c} to {cur} for {m}" + ("" if has_fx else
                             " (there is no fx_rates source)") for c, m in zip(missing["currency"], months)]
        out.problems.append(missing[["source", ROW, "column", "value", "rule", "reason"]])
        out.notes.append(f"{len(missing):,} {entity} row(s) in a currency without an exchange rate were quarantined")
    engine.create(dst, f"SELECT * FROM {d.q(dst + '_all')} WHERE NOT (fx_rate IS NULL AND {amount} IS NOT NULL)")


def _flag_outliers(engine: Engine, catalog: Catalog, src: str, dst: str) -> None:
    """Robust z of log |value| per category (or overall), plus each source's quantity cap."""
    d = engine.dialect
    zs = {s.name: s.rules.outlier_z for s in catalog.sources.values()}
    caps = {s.name: s.rules.outlier_max_quantity for s in catalog.sources.values()
            if s.rules.outlier_max_quantity is not None}
    z_case = "CASE t._source " + " ".join(f"WHEN {d.lit(n)} THEN {z}" for n, z in zs.items()) + " ELSE 5.0 END"
    cap_case = ("CASE t._source " + " ".join(f"WHEN {d.lit(n)} THEN {c}" for n, c in caps.items()) + " END") \
        if caps else "NULL"
    # Categories with fewer than MIN_GROUP lines are judged against all lines: a MAD of three values means little.
    engine.create(f"{dst}_cnt", f"SELECT COALESCE(category, '(none)') AS c, count(*) AS n FROM {d.q(src)} "
                                "GROUP BY 1")
    grp = (f"CASE WHEN (SELECT n FROM {d.q(dst + '_cnt')} k WHERE k.c = COALESCE(category, '(none)')) >= "
           f"{MIN_GROUP} THEN COALESCE(category, '(none)') ELSE '(all)' END")
    engine.create(f"{dst}_log", f"SELECT *, CASE WHEN amount <> 0 THEN ln(abs(amount)) END AS _lv, {grp} AS _grp "
                                f"FROM {d.q(src)}")
    engine.create(f"{dst}_med", f"SELECT _grp, {d.median('_lv')} AS _med FROM {d.q(dst + '_log')} "
                                f"WHERE _lv IS NOT NULL GROUP BY _grp")
    engine.create(f"{dst}_mad", f"SELECT l._grp, {d.median('abs(l._lv - m._med)')} AS _mad, "
                                f"{d.exact_avg('abs(l._lv - m._med)')} AS _meanad FROM "
                                f"{d.q(dst + '_log')} l JOIN {d.q(dst + '_med')} m ON m._grp = l._grp "
                                f"WHERE l._lv IS NOT NULL GROUP BY l._grp")
    # Robust scale: 1.4826 × MAD; when most lines have the same value (MAD 0), 1.2533 × the mean absolute
    # deviation; when every line is alike, a floor of MIN_LOG_SCALE (a line e^(z·floor) times the typical one
    # still stands out).
    scale = (f"greatest(COALESCE(NULLIF(1.4826 * a._mad, 0), NULLIF(1.2533 * a._meanad, 0), {MIN_LOG_SCALE}), "
             f"{MIN_LOG_SCALE / 10})")
    z = f"CASE WHEN t._lv IS NOT NULL THEN abs(t._lv - m._med) / {scale} END"
    cols = [c for c in engine.columns(f"{dst}_log") if c not in ("_lv", "_grp")]
    engine.create(dst, f"""
        SELECT {', '.join('t.' + d.q(c) for c in cols)}, (t.reversal_rule OR COALESCE(t.amount, 0) < 0) AS is_reversal,
               COALESCE(t.discount_pct, 0) > 0 AS is_discounted,
               COALESCE({z} > {z_case}, FALSE) OR COALESCE(abs(t.quantity) > {cap_case}, FALSE) AS is_outlier
        FROM {d.q(dst + '_log')} t LEFT JOIN {d.q(dst + '_med')} m ON m._grp = t._grp
             LEFT JOIN {d.q(dst + '_mad')} a ON a._grp = t._grp""")


def money_summary(engine: Engine) -> dict:
    """The money figures of the transaction step, in the reporting currency."""
    d = engine.dialect
    guest = "customer_id IS NULL AND person_id IS NULL AND email IS NULL"
    o = engine.frame(f"""SELECT count(*) AS orders, sum(CASE WHEN is_cancelled THEN 1 ELSE 0 END) AS cancelled,
                         {d.exact_sum('CASE WHEN is_cancelled THEN 0 ELSE gross END')} AS gross,
                         {d.exact_sum('CASE WHEN is_cancelled THEN gross ELSE 0 END')} AS cancelled_value,
                         {d.exact_sum('net')} AS net_orders,
                         {d.exact_sum(f'CASE WHEN {guest} THEN net ELSE 0 END')} AS guest_net,
                         sum(CASE WHEN {guest} THEN 1 ELSE 0 END) AS guest_orders
                         FROM {d.q('tx_orders')}""").iloc[0]
    r = engine.frame(f"""SELECT {d.exact_sum('CASE WHEN NOT is_outlier THEN refund_amount ELSE 0 END')} AS refunds,
                         {d.exact_sum(f"CASE WHEN NOT is_outlier AND (order_id IS NULL OR order_id NOT IN (SELECT order_id FROM {d.q('tx_orders')})) THEN refund_amount ELSE 0 END")} AS unlinked,
                         sum(CASE WHEN kind = 'reversal' THEN 1 ELSE 0 END) AS reversal_lines
                         FROM {d.q('tx_refunds')}""").iloc[0]
    lines = engine.frame(f"""SELECT count(*) AS lines, sum(CASE WHEN is_outlier THEN 1 ELSE 0 END) AS outliers,
                             {d.exact_sum('CASE WHEN is_outlier AND NOT is_reversal THEN amount ELSE 0 END')} AS outlier_value,
                             sum(CASE WHEN currency <> {d.lit('__')} AND fx_rate <> 1.0 THEN 1 ELSE 0 END) AS converted
                             FROM {d.q('tx_lines')}""").iloc[0]
    f = lambda v: 0.0 if v is None or pd.isna(v) else float(v)  # noqa: E731
    unlinked = f(r["unlinked"])
    return {"orders": int(f(o["orders"])), "cancelled_orders": int(f(o["cancelled"])),
            "gross_revenue": f(o["gross"]), "cancelled_value": f(o["cancelled_value"]),
            "refunds": f(r["refunds"]), "refunds_unlinked": unlinked,
            "net_revenue": round(f(o["net_orders"]) - unlinked, 2),
            "guest_orders": int(f(o["guest_orders"])), "guest_net_revenue": f(o["guest_net"]),
            "reversal_lines": int(f(r["reversal_lines"])), "lines": int(f(lines["lines"])),
            "outlier_lines": int(f(lines["outliers"])), "outlier_value": f(lines["outlier_value"]),
            "converted_lines": int(f(lines["converted"]))}


def purchases(orders: pd.DataFrame) -> pd.DataFrame:
    """The orders that count as purchases of a known customer: not cancelled, not a reversal, with a key.

    The one definition of "a purchase" every analysis uses (RFM, lifecycle, CLV, cohorts, experiments).
    """
    keep = ~orders["is_cancelled"].astype(bool)
    if "is_reversal" in orders:
        keep &= ~orders["is_reversal"].astype(bool)
    return orders[keep].dropna(subset=["customer_key"])


RULES_TEXT = ("**Line value** = the mapped amount, else quantity × unit price × (1 − discount), converted to the "
              "reporting currency at the month's rate (a line without a rate is quarantined). **Reversals** (credit "
              "notes, negative lines) are refunds to the customer, not purchases. **Cancelled** orders earn nothing. "
              "**Net revenue** of an order = its value − the refunds booked against it, never below zero; refunds "
              "that name no known order are netted at the customer. **Outliers**: " + OUTLIER_RULE + ".")
