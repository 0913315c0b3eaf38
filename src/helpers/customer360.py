"""The 360° customer table: one row per resolved customer, across every channel.

Column meanings are documented in ``data/DATA_DICTIONARY.md`` (a test keeps the two in sync).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.identity import node_keys, pseudonymise


def sessions_from_events(events: pd.DataFrame, cookie_keys: pd.Series) -> pd.DataFrame:
    """One row per web/app session with event counts and the resolved customer key."""
    ev = events
    counts = pd.crosstab(ev["session_id"], ev["event_type"])
    for col in ["page_view", "product_view", "add_to_cart", "checkout", "click"]:
        if col not in counts:
            counts[col] = 0
    first = ev.sort_values("ts", kind="stable").groupby("session_id").agg(
        anonymous_id=("anonymous_id", "first"), device=("device", "first"), start=("ts", "min"))
    s = first.join(counts[["page_view", "product_view", "add_to_cart", "checkout", "click"]]).reset_index()
    s["customer_key"] = s["anonymous_id"].map(cookie_keys).astype("string")
    return s.sort_values(["start", "session_id"], kind="stable").reset_index(drop=True)


def _mode(s: pd.Series):
    m = s.dropna()
    return m.value_counts().sort_index().idxmax() if len(m) else pd.NA


def build_customer_360(customers: pd.DataFrame, orders: pd.DataFrame, lines: pd.DataFrame, sessions: pd.DataFrame,
                       sends: pd.DataFrame, reviews: pd.DataFrame, surveys: pd.DataFrame, tickets: pd.DataFrame,
                       as_of: pd.Timestamp) -> pd.DataFrame:
    """Assemble one row per ``customer_key`` from cleaned, key-attached channel tables.

    Every input must already carry a ``customer_key`` column (see :mod:`helpers.identity`).
    """
    c = customers.dropna(subset=["customer_key"]).sort_values(["customer_key", "signup_date", "customer_id"],
                                                              kind="stable")
    g = c.groupby("customer_key")
    demo = pd.DataFrame({
        "n_accounts": g.size(),
        "signup_date": g["signup_date"].min(),
        "age_band": g["age_band"].agg(lambda s: s.dropna().iloc[0] if s.notna().any() else pd.NA),
        "country": g["country"].agg(lambda s: s.dropna().iloc[0] if s.notna().any() else pd.NA),
        "region": g["region"].agg(lambda s: s.dropna().iloc[0] if s.notna().any() else pd.NA),
        "acquisition_channel": g["acquisition_channel"].first(),
        # Consent must be explicit on every account that states it; unknown counts as no.
        "marketing_consent": g["marketing_consent"].agg(lambda s: bool(s.notna().any() and s.dropna().all())),
    })
    out = demo
    done = orders[~orders["is_cancelled"]]
    og = done.groupby("customer_key")
    trans = pd.DataFrame({
        "orders": og.size(), "first_order": og["order_date"].min(), "last_order": og["order_date"].max(),
        "gross_revenue_eur": og["gross_eur"].sum(), "refunds_eur": og["refund_eur"].sum(),
        "net_revenue_eur": og["net_eur"].sum(), "units": og["units"].sum(),
        "returned_units": og["returned_units"].sum(), "discount_share": og["discount_share"].mean(),
        "preferred_payment": og["payment_method"].agg(_mode),
        "preferred_channel": og["channel"].agg(_mode),
    })
    trans["cancelled_orders"] = orders[orders["is_cancelled"]].groupby("customer_key").size()
    trans["avg_order_value_eur"] = trans["gross_revenue_eur"] / trans["orders"]
    trans["return_rate"] = trans["returned_units"] / trans["units"].replace(0, np.nan)
    ln = lines.merge(orders[["order_id", "customer_key", "is_cancelled"]], on="order_id")
    ln = ln[~ln["is_cancelled"]]
    trans["preferred_category"] = ln.groupby("customer_key")["category"].agg(_mode)
    out = out.join(trans)
    sg = sessions.dropna(subset=["customer_key"]).groupby("customer_key")
    beh = pd.DataFrame({
        "sessions": sg.size(), "page_views": sg["page_view"].sum(), "product_views": sg["product_view"].sum(),
        "add_to_cart": sg["add_to_cart"].sum(), "last_visit": sg["start"].max(),
    })
    dev = pd.crosstab(sessions["customer_key"], sessions["device"], normalize="index")
    for d in ["app", "mobile_web", "desktop"]:
        beh[f"share_{d}"] = dev[d] if d in dev else 0.0
    out = out.join(beh)
    eg = sends.dropna(subset=["customer_key"]).groupby("customer_key")
    eng = pd.DataFrame({"emails_received": eg.size(), "emails_opened": eg["open_at"].count(),
                        "emails_clicked": eg["click_at"].count(), "email_conversions": eg["converted"].sum()})
    eng["open_rate"] = eng["emails_opened"] / eng["emails_received"]
    eng["click_rate"] = eng["emails_clicked"] / eng["emails_received"]
    out = out.join(eng)
    rg = reviews.dropna(subset=["customer_key"]).groupby("customer_key")
    sv = surveys.dropna(subset=["customer_key"]).sort_values("submitted_at", kind="stable")
    psy = pd.DataFrame({"reviews": rg.size(), "avg_rating": rg["stars"].mean()})
    psy = psy.join(pd.DataFrame({"surveys": sv.groupby("customer_key").size(),
                                 "latest_nps": sv.groupby("customer_key")["nps"].last()}), how="outer")
    tg = tickets.dropna(subset=["customer_key"]).groupby("customer_key")
    psy = psy.join(pd.DataFrame({"tickets": tg.size(), "avg_resolution_hours": tg["resolution_hours"].mean()}),
                   how="outer")
    out = out.join(psy)
    counts = ["orders", "cancelled_orders", "units", "returned_units", "sessions", "page_views", "product_views",
              "add_to_cart", "emails_received", "emails_opened", "emails_clicked", "email_conversions", "reviews",
              "surveys", "tickets"]
    out[counts] = out[counts].fillna(0).astype("int64")
    for col in ["gross_revenue_eur", "refunds_eur", "net_revenue_eur"]:
        out[col] = out[col].fillna(0.0).round(2)
    out["days_since_last_order"] = (as_of - out["last_order"]).dt.days.astype("Int64")
    out["tenure_days"] = (as_of - out["signup_date"]).dt.days.astype("Int64")
    out["latest_nps"] = out["latest_nps"].astype("Int64")
    out = out.reset_index().rename(columns={"index": "customer_key"})
    out.insert(1, "customer_pseudo_id", pseudonymise(out["customer_key"]))
    return out.sort_values("customer_key", kind="stable").reset_index(drop=True)


def attach_key(frame: pd.DataFrame, resolved: pd.DataFrame, node_type: str, id_column: str) -> pd.Series:
    """customer_key for each row of ``frame``, looked up through its ``id_column`` as a ``node_type`` node."""
    return frame[id_column].map(node_keys(resolved, node_type)).astype("string")


def assemble(kept: dict[str, pd.DataFrame], orders: pd.DataFrame, lines: pd.DataFrame, returns: pd.DataFrame,
             resolved: pd.DataFrame, as_of: pd.Timestamp) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Attach ``customer_key`` to every cleaned channel table and build the 360° table from them.

    ``kept`` holds the cleaned sources, ``orders``/``lines``/``returns`` the valued transactions from
    :func:`helpers.cleaning.build_transactions`, ``resolved`` the identity map. Returns
    ``(keyed tables by name, customer_360)``; the tables are what step 02 writes to ``processed/clean``.
    """
    customers = kept["customers"].assign(customer_key=attach_key(kept["customers"], resolved, "crm", "customer_id"))
    orders = orders.assign(customer_key=attach_key(orders, resolved, "crm", "customer_id"))
    by_crm = {name: kept[name].assign(customer_key=attach_key(kept[name], resolved, "crm", "customer_id"))
              for name in ["email_sends", "reviews"]}
    surveys = kept["surveys"].assign(customer_key=attach_key(kept["surveys"], resolved, "survey", "response_id"))
    tickets = kept["tickets"].assign(customer_key=attach_key(kept["tickets"], resolved, "ticket", "ticket_id"))
    sessions = sessions_from_events(kept["web_events"], node_keys(resolved, "cookie"))
    c360 = build_customer_360(customers, orders, lines, sessions, by_crm["email_sends"], by_crm["reviews"], surveys,
                              tickets, as_of)
    tables = {"customers": customers, "orders": orders, "order_lines": lines, "returns": returns, "products": kept["products"],
              "fx_rates": kept["fx_rates"], "campaigns": kept["campaigns"], **by_crm, "surveys": surveys,
              "tickets": tickets, "web_sessions": sessions}
    return tables, c360


def coverage(c360: pd.DataFrame) -> pd.Series:
    """Share of customers with any data in each channel."""
    return pd.Series({
        "CRM profile": 1.0, "orders": float((c360["orders"] > 0).mean()),
        "web/app sessions": float((c360["sessions"] > 0).mean()),
        "e-mail": float((c360["emails_received"] > 0).mean()), "reviews": float((c360["reviews"] > 0).mean()),
        "NPS surveys": float((c360["surveys"] > 0).mean()), "support tickets": float((c360["tickets"] > 0).mean()),
    })


def plot_coverage(cov: pd.Series):
    """Horizontal bars: share of customers with any data in each channel."""
    import matplotlib.pyplot as plt

    from helpers.plotting import label, percent

    fig, ax = plt.subplots(figsize=(8, 3.6))
    s = cov.sort_values()
    ax.barh(s.index, s.to_numpy())
    for y, v in enumerate(s.to_numpy()):
        ax.text(v + 0.01, y, f"{v:.0%}", va="center", fontsize=10)
    ax.set_xlim(0, 1.12)
    percent(ax, "x")
    label(ax, "What we know about each customer", "Share of customers with data in the channel (%)", "")
    return fig


def coverage_caption(cov: pd.Series, n_customers: int) -> str:
    rest = cov.drop("CRM profile").sort_values(ascending=False)
    return (f"All {n_customers:,} customers have a CRM profile; {rest.iloc[0]:.0%} also have {rest.index[0]}, "
            f"while only {rest.iloc[-1]:.0%} have {rest.index[-1]}, so psychographic signals cover a minority of "
            "customers and must be read with that in mind.")


def identity_caption(n_records: int, n_customers: int, n_multi: int) -> str:
    return (f"{n_records:,} CRM accounts and web/app cookies resolve to {n_customers:,} customers; "
            f"{n_multi:,} customers had two or more CRM accounts that are now one.")
