"""The 360° customer table: one row per resolved customer, from whatever channels the data has.

Every column is described in ``data/DATA_DICTIONARY.md`` (a test keeps the two in sync). Money is in the data
set's reporting currency (``dataset.json``). A channel the data does not have leaves its columns empty (counts
are 0, rates are missing); nothing is invented. The table is built by set-based SQL that both engines run.
"""

from __future__ import annotations

import pandas as pd

from helpers.canonical.engine import Engine
from helpers.canonical.identity import pseudonymise

MOBILE_DEVICES = ("mobile_web", "mobile", "tablet", "ios", "android", "smartphone")
APP_DEVICES = ("app", "ios_app", "android_app", "mobile_app")
COUNT_COLUMNS = ["orders", "cancelled_orders", "units", "returned_units", "sessions", "page_views", "product_views",
                 "add_to_cart", "emails_received", "emails_opened", "emails_clicked", "email_conversions", "reviews",
                 "surveys", "tickets", "n_accounts"]
MONEY_COLUMNS = ["gross_revenue", "refunds", "net_revenue", "avg_order_value"]


def _mode(engine: Engine, table: str, value: str, where: str = "TRUE") -> str:
    """SQL of ``customer_key, value`` with each customer's most frequent non-empty value (ties: smallest value)."""
    d = engine.dialect
    return f"""SELECT customer_key, v AS {d.q(value)} FROM (
        SELECT customer_key, v, row_number() OVER (PARTITION BY customer_key ORDER BY n DESC, v) AS rk FROM (
            SELECT customer_key, {d.q(value)} AS v, count(*) AS n FROM {d.q(table)}
            WHERE customer_key IS NOT NULL AND {d.q(value)} IS NOT NULL AND {where} GROUP BY 1, 2) AS c) AS r
        WHERE rk = 1"""


def sessions_sql(engine: Engine) -> str:
    """One row per web/app session: its customer, device, start and event counts.

    A session is ``session_id`` when the events carry one, else one visitor's (``anonymous_id``) events on one
    day.
    """
    d = engine.dialect
    cols = set(engine.columns("keyed__events"))
    session = ("session_id" if "session_id" in cols else
               f"concat(COALESCE(anonymous_id, customer_id, 'anonymous'), '/', CAST(CAST(ts AS DATE) AS "
               f"{d.sql_type('text')}))")
    device = "device" if "device" in cols else d.null_of("category")

    def n(kind: str) -> str:
        # BIGINT on every engine (DuckDB's sum of integers is a 128-bit integer, Spark's a 64-bit one)
        return f"CAST(sum(CASE WHEN event_type = {d.lit(kind)} THEN 1 ELSE 0 END) AS BIGINT) AS {kind}"

    return f"""SELECT {session} AS session_id, max(customer_key) AS customer_key,
                      min({device}) AS device, min(ts) AS start, count(*) AS events,
                      {n('page_view')}, {n('product_view')}, {n('add_to_cart')}, {n('checkout')}
               FROM {d.q('keyed__events')} GROUP BY 1"""


def build(engine: Engine, as_of: pd.Timestamp) -> pd.DataFrame:
    """Create ``customer_360`` in the engine and return it (one row per ``customer_key``)."""
    d = engine.dialect
    has = engine.exists
    pop = []
    if has("keyed__customers"):
        pop.append("SELECT DISTINCT customer_key FROM keyed__customers WHERE customer_key IS NOT NULL")
    if has("keyed__orders"):
        pop.append("SELECT DISTINCT customer_key FROM keyed__orders WHERE customer_key IS NOT NULL")
    if has("keyed__refunds"):  # customers whose only transactions in the window are credit notes
        pop.append("SELECT DISTINCT customer_key FROM keyed__refunds WHERE customer_key IS NOT NULL")
    engine.create("c360_keys", " UNION ".join(pop))
    ts = d.lit(f"{as_of:%Y-%m-%d %H:%M:%S}")
    joins, selects = [], ["k.customer_key"]

    # demographic
    if has("keyed__customers"):
        c = set(engine.columns("keyed__customers"))
        first = lambda col: (f"{d.arg_max(d.q(col), f'CASE WHEN {d.q(col)} IS NOT NULL THEN -_row END')}"  # noqa: E731
                             if col in c else d.null_of("text"))
        consent = "bool_and(marketing_consent)" if "marketing_consent" in c else "CAST(NULL AS BOOLEAN)"
        signup = "min(signup_date)" if "signup_date" in c else d.null_of("datetime")
        engine.create("c360_demo", f"""
            SELECT customer_key, count(DISTINCT customer_id) AS n_accounts, {signup} AS signup_date,
                   {first('age_band')} AS age_band, {first('country')} AS country, {first('region')} AS region,
                   {first('city')} AS city, {first('gender')} AS gender,
                   {first('acquisition_channel')} AS acquisition_channel, {consent} AS marketing_consent
            FROM keyed__customers WHERE customer_key IS NOT NULL GROUP BY customer_key""")
        joins.append("LEFT JOIN c360_demo dm ON dm.customer_key = k.customer_key")
        selects += ["COALESCE(dm.n_accounts, 0) AS n_accounts", "dm.age_band", "dm.country", "dm.region", "dm.city",
                    "dm.gender", "dm.acquisition_channel", "dm.marketing_consent"]
        signup_expr = "dm.signup_date"
    else:
        selects += ["0 AS n_accounts"] + [f"{d.null_of('category')} AS {c}" for c in
                                          ("age_band", "country", "region", "city", "gender", "acquisition_channel")]
        selects.append("CAST(NULL AS BOOLEAN) AS marketing_consent")
        signup_expr = "NULL"

    # transactional
    if has("keyed__orders"):
        engine.create("c360_orders", f"""
            SELECT customer_key,
                   sum(CASE WHEN NOT (is_cancelled OR is_reversal) THEN 1 ELSE 0 END) AS orders,
                   sum(CASE WHEN is_cancelled THEN 1 ELSE 0 END) AS cancelled_orders,
                   min(CASE WHEN NOT (is_cancelled OR is_reversal) THEN order_date END) AS first_order,
                   max(CASE WHEN NOT (is_cancelled OR is_reversal) THEN order_date END) AS last_order,
                   {d.exact_sum('CASE WHEN NOT (is_cancelled OR is_reversal) THEN gross ELSE 0 END')} AS gross_revenue,
                   {d.exact_sum('CASE WHEN NOT (is_cancelled OR is_reversal) THEN refund ELSE 0 END')} AS linked_refunds,
                   {d.exact_sum('net')} AS orders_net,
                   sum(CASE WHEN NOT (is_cancelled OR is_reversal) THEN units ELSE 0 END) AS units,
                   sum(CASE WHEN NOT (is_cancelled OR is_reversal) THEN returned_units ELSE 0 END) AS returned_units,
                   {d.exact_avg('CASE WHEN NOT (is_cancelled OR is_reversal) THEN discount_share END')} AS discount_share
            FROM keyed__orders WHERE customer_key IS NOT NULL GROUP BY customer_key""")
        engine.create("c360_unlinked", f"""
            SELECT r.customer_key, {d.exact_sum('CASE WHEN NOT r.is_outlier THEN r.refund_amount ELSE 0 END')} AS unlinked,
                   sum(COALESCE(r.quantity, 0)) AS unlinked_units
            FROM keyed__refunds r WHERE r.customer_key IS NOT NULL AND (r.order_id IS NULL OR NOT EXISTS
                 (SELECT 1 FROM keyed__orders o WHERE o.order_id = r.order_id)) GROUP BY r.customer_key""")
        engine.create("c360_pay", _mode(engine, "keyed__orders", "payment_method", "NOT (is_cancelled OR is_reversal)"))
        engine.create("c360_chan", _mode(engine, "keyed__orders", "channel", "NOT (is_cancelled OR is_reversal)"))
        engine.create("c360_lines", """SELECT l.*, o.customer_key FROM tx_lines l JOIN keyed__orders o
                                       ON o.order_id = l.order_id WHERE NOT (o.is_cancelled OR o.is_reversal) AND NOT l.is_reversal""")
        engine.create("c360_cat", _mode(engine, "c360_lines", "category"))
        joins += ["LEFT JOIN c360_orders od ON od.customer_key = k.customer_key",
                  "LEFT JOIN c360_unlinked ul ON ul.customer_key = k.customer_key",
                  "LEFT JOIN c360_pay pm ON pm.customer_key = k.customer_key",
                  "LEFT JOIN c360_chan ch ON ch.customer_key = k.customer_key",
                  "LEFT JOIN c360_cat ct ON ct.customer_key = k.customer_key"]
        selects += [
            "COALESCE(od.orders, 0) AS orders", "COALESCE(od.cancelled_orders, 0) AS cancelled_orders",
            "od.first_order", "od.last_order", f"{d.round_money('COALESCE(od.gross_revenue, 0)')} AS gross_revenue",
            f"{d.round_money('COALESCE(od.linked_refunds, 0) + COALESCE(ul.unlinked, 0)')} AS refunds",
            f"{d.round_money('COALESCE(od.orders_net, 0) - COALESCE(ul.unlinked, 0)')} AS net_revenue",
            "COALESCE(od.units, 0) AS units",
            "COALESCE(od.returned_units, 0) + COALESCE(ul.unlinked_units, 0) AS returned_units",
            "od.discount_share", "pm.payment_method AS preferred_payment", "ch.channel AS preferred_channel",
            "ct.category AS preferred_category"]
    # behavioural
    if has("keyed__events") and {"event_type", "ts"} <= set(engine.columns("keyed__events")):
        engine.create("web_sessions", sessions_sql(engine))
        dev = "lower(COALESCE(device, ''))"
        share = lambda devs: (f"avg(CASE WHEN {dev} IN ({', '.join(d.lit(x) for x in devs)}) "  # noqa: E731
                              "THEN 1 ELSE 0 END)")
        engine.create("c360_web", f"""
            SELECT customer_key, count(*) AS sessions, sum(page_view) AS page_views, sum(product_view) AS product_views,
                   sum(add_to_cart) AS add_to_cart, max(start) AS last_visit,
                   CASE WHEN count(device) > 0 THEN {share(APP_DEVICES)} END AS share_app,
                   CASE WHEN count(device) > 0 THEN {share(MOBILE_DEVICES)} END AS share_mobile,
                   CASE WHEN count(device) > 0 THEN {share(('desktop', 'web', 'pc'))} END AS share_desktop
            FROM web_sessions WHERE customer_key IS NOT NULL GROUP BY customer_key""")
        joins.append("LEFT JOIN c360_web wb ON wb.customer_key = k.customer_key")
        selects += ["COALESCE(wb.sessions, 0) AS sessions", "COALESCE(wb.page_views, 0) AS page_views",
                    "COALESCE(wb.product_views, 0) AS product_views", "COALESCE(wb.add_to_cart, 0) AS add_to_cart",
                    "wb.last_visit", "wb.share_app", "wb.share_mobile", "wb.share_desktop"]
    # engagement
    if has("keyed__sends"):
        sc = set(engine.columns("keyed__sends"))
        cnt = lambda col: f"count({col})" if col in sc else "NULL"  # noqa: E731
        conv = "sum(CASE WHEN converted THEN 1 ELSE 0 END)" if "converted" in sc else "NULL"
        engine.create("c360_mail", f"""
            SELECT customer_key, count(*) AS emails_received, {cnt('opened_at')} AS emails_opened,
                   {cnt('clicked_at')} AS emails_clicked, {conv} AS email_conversions
            FROM keyed__sends WHERE customer_key IS NOT NULL GROUP BY customer_key""")
        joins.append("LEFT JOIN c360_mail ml ON ml.customer_key = k.customer_key")
        selects += ["COALESCE(ml.emails_received, 0) AS emails_received", "COALESCE(ml.emails_opened, 0) AS "
                    "emails_opened", "COALESCE(ml.emails_clicked, 0) AS emails_clicked",
                    "COALESCE(ml.email_conversions, 0) AS email_conversions",
                    "CAST(ml.emails_opened AS DOUBLE) / ml.emails_received AS open_rate",
                    "CAST(ml.emails_clicked AS DOUBLE) / ml.emails_received AS click_rate"]
    # psychographic
    if has("keyed__feedback"):
        fc = set(engine.columns("keyed__feedback"))
        chan = "COALESCE(channel, '')" if "channel" in fc else "''"
        stars = "stars" if "stars" in fc else "CAST(NULL AS DOUBLE)"
        nps = "nps" if "nps" in fc else "CAST(NULL AS DOUBLE)"
        res = "resolution_hours" if "resolution_hours" in fc else "CAST(NULL AS DOUBLE)"
        engine.create("c360_voice", f"""
            SELECT customer_key,
                   sum(CASE WHEN {stars} IS NOT NULL OR {chan} = 'review' THEN 1 ELSE 0 END) AS reviews,
                   avg({stars}) AS avg_rating,
                   sum(CASE WHEN {nps} IS NOT NULL THEN 1 ELSE 0 END) AS surveys,
                   {d.arg_max(nps, f'CASE WHEN {nps} IS NOT NULL THEN created_at END')} AS latest_nps,
                   sum(CASE WHEN {chan} = 'ticket' THEN 1 ELSE 0 END) AS tickets,
                   {d.exact_avg(f"CASE WHEN {chan} = 'ticket' THEN {res} END")} AS avg_resolution_hours
            FROM keyed__feedback WHERE customer_key IS NOT NULL GROUP BY customer_key""")
        joins.append("LEFT JOIN c360_voice vc ON vc.customer_key = k.customer_key")
        selects += ["COALESCE(vc.reviews, 0) AS reviews", "vc.avg_rating", "COALESCE(vc.surveys, 0) AS surveys",
                    "vc.latest_nps", "COALESCE(vc.tickets, 0) AS tickets", "vc.avg_resolution_hours"]
    first_seen = "od.first_order" if has("keyed__orders") else "NULL"
    selects.append(f"COALESCE({signup_expr}, {first_seen}) AS signup_date")
    engine.create("customer_360_sql", f"SELECT {', '.join(selects)} FROM c360_keys k {' '.join(joins)}")
    c360 = engine.frame("SELECT * FROM customer_360_sql ORDER BY customer_key")
    return finish(c360, as_of)


def finish(c360: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Fill the columns of channels the data lacks, derive ratios and ages, add the pseudonymous id."""
    out = c360.copy()
    for col in COUNT_COLUMNS:
        if col not in out:
            out[col] = 0
        out[col] = pd.to_numeric(out[col]).fillna(0).astype("int64")
    for col in ["gross_revenue", "refunds", "net_revenue"]:
        if col not in out:
            out[col] = 0.0
        out[col] = out[col].astype(float).fillna(0.0).round(2)
    for col in TEXT_COLUMNS:  # text even when empty: an engine may hand over an all-missing column untyped
        out[col] = out[col].astype("str")
    for col in ["first_order", "last_order", "last_visit", "signup_date"]:
        if col not in out:
            out[col] = pd.NaT
        out[col] = pd.to_datetime(out[col])
    for col in ["discount_share", "share_app", "share_mobile", "share_desktop", "open_rate", "click_rate",
                "avg_rating", "avg_resolution_hours", "latest_nps", "preferred_payment", "preferred_channel",
                "preferred_category"]:
        if col not in out:
            out[col] = pd.NA
    out["avg_order_value"] = (out["gross_revenue"] / out["orders"].where(out["orders"] > 0)).round(2)
    out["return_rate"] = out["returned_units"] / out["units"].where(out["units"] > 0)
    out["days_since_last_order"] = (as_of - out["last_order"]).dt.days.astype("Int64")
    out["tenure_days"] = (as_of - out["signup_date"]).dt.days.astype("Int64")
    out["latest_nps"] = pd.to_numeric(out["latest_nps"]).round().astype("Int64")
    out["marketing_consent"] = out["marketing_consent"].astype("boolean")
    out.insert(1, "customer_pseudo_id", pseudonymise(out["customer_key"]))
    return out[COLUMNS].sort_values("customer_key", kind="stable").reset_index(drop=True)


TEXT_COLUMNS = ["age_band", "country", "region", "city", "gender", "acquisition_channel"]
COLUMNS = ["customer_key", "customer_pseudo_id", "n_accounts", "signup_date", "age_band", "country", "region", "city",
           "gender", "acquisition_channel", "marketing_consent", "orders", "cancelled_orders", "first_order",
           "last_order", "gross_revenue", "refunds", "net_revenue", "avg_order_value", "units", "returned_units",
           "return_rate", "discount_share", "preferred_payment", "preferred_channel", "preferred_category",
           "sessions", "page_views", "product_views", "add_to_cart", "last_visit", "share_app", "share_mobile",
           "share_desktop", "emails_received", "emails_opened", "emails_clicked", "email_conversions", "open_rate",
           "click_rate", "reviews", "avg_rating", "surveys", "latest_nps", "tickets", "avg_resolution_hours",
           "days_since_last_order", "tenure_days"]


def coverage(c360: pd.DataFrame, channels: dict[str, bool]) -> pd.Series:
    """Share of customers with any data in each channel the data set has (``channels``: name -> present)."""
    checks = {"customer profile": c360["n_accounts"] > 0, "orders": c360["orders"] > 0,
              "web/app sessions": c360["sessions"] > 0, "e-mail": c360["emails_received"] > 0,
              "reviews": c360["reviews"] > 0, "NPS surveys": c360["surveys"] > 0,
              "support tickets": c360["tickets"] > 0}
    return pd.Series({k: float(v.mean()) for k, v in checks.items() if channels.get(k, False)})


def plot_coverage(cov: pd.Series):
    """Horizontal bars: share of customers with any data in each channel."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, percent

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(cov) + 1.4))
    s = cov.sort_values()
    ax.barh(s.index, s.to_numpy(), color=PALETTE[0])
    for y, v in enumerate(s.to_numpy()):
        ax.text(v + 0.01, y, f"{v:.0%}", va="center", fontsize=11)
    ax.set_xlim(0, 1.15)
    percent(ax, "x")
    label(ax, "What we know about each customer", "Share of customers with data in the channel (%)", "")
    return fig


def coverage_caption(cov: pd.Series, n_customers: int) -> str:
    if cov.empty:
        return f"{n_customers:,} customers; the data has no channel besides transactions."
    s = cov.sort_values(ascending=False)
    if len(s) == 1:
        return f"All {n_customers:,} customers come from {s.index[0]}; the data has no other channel."
    return (f"Of {n_customers:,} customers, {s.iloc[0]:.0%} have {s.index[0]} and {s.iloc[-1]:.0%} have "
            f"{s.index[-1]}; figures that rest on the thinner channels describe fewer customers.")


def identity_caption(n_records: int, n_customers: int, n_multi: int) -> str:
    merged = (f"; {n_multi:,} customers had two or more accounts that are now one" if n_multi else
              "; no two accounts belonged to the same person")
    return f"{n_records:,} account and visitor records resolve to {n_customers:,} customers{merged}."
