"""Tables, charts and sentences of report 02 (cleaning, money, identity, 360° view)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.canonical.build import Built
from helpers.canonical.matching import Matching
from helpers.core.fmt import fmt_money
from helpers.core.text import plain_list
from helpers.sources.catalog import Catalog

ROW = "_row"
# What this page reads of the two largest clean tables (tens of millions of rows for a big shop): the columns its
# monthly revenue, buyers and e-mail engagement series need, not the whole tables.
ORDER_COLUMNS = ["order_id", "customer_key", "order_date", "is_cancelled", "is_reversal", "gross", "refund", "net"]
SEND_COLUMNS = ["sent_at", "opened_at", "clicked_at"]
BALANCE_COLUMNS = ["source", "file", "records_in", "kept", "duplicates_merged", "quarantined", "unreadable",
                   "balanced"]


def balance_kpis(built: Built) -> list[dict]:
    t = built.totals
    # records in, quarantined and duplicates merged are registry KPIs, shown beside these
    return [{"label": "kept", "value": t["kept"]}, {"label": "unreadable", "value": t["unreadable"]}]


def balance_caption(balance: pd.DataFrame) -> str:
    """One sentence on the balance: the totals, whether it holds everywhere, and the source that lost most."""
    tot = balance[["records_in", "kept", "quarantined", "duplicates_merged", "unreadable"]].sum()
    ok = "and it balances for every source" if balance["balanced"].all() else \
        "but the balance FAILS for " + ", ".join(balance.loc[~balance["balanced"], "source"])
    lost = balance.assign(lost=1 - balance["kept"] / balance["records_in"].where(balance["records_in"] > 0))
    worst = lost.sort_values("lost").iloc[-1]
    return (f"Of {tot['records_in']:,} records in the files, {tot['kept']:,} were kept, {tot['duplicates_merged']:,} "
            f"merged as duplicates, {tot['quarantined']:,} quarantined and {tot['unreadable']:,} could not be read, "
            f"{ok}; {worst['source']} lost the largest share ({100 * worst['lost']:.1f}%).")


def plot_balance(balance: pd.DataFrame):
    """Stacked horizontal bars: share of each source's records kept, merged, quarantined and unreadable."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label

    b = balance.set_index("source")
    parts = ["kept", "duplicates_merged", "quarantined", "unreadable"]
    shares = b[parts].div(b["records_in"].where(b["records_in"] > 0), axis=0).fillna(0) * 100
    low = max(0.0, float(np.floor(shares["kept"].min() / 5) * 5) - 5)
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(b) + 1.8))
    left = np.zeros(len(b))
    colours = {"kept": PALETTE[0], "duplicates_merged": PALETTE[5], "quarantined": PALETTE[1],
               "unreadable": PALETTE[3]}
    hatches = {"kept": "", "duplicates_merged": "..", "quarantined": "//", "unreadable": "xx"}
    for col in parts:
        ax.barh(shares.index, shares[col], left=left, color=colours[col], hatch=hatches[col], edgecolor="white",
                label=col.replace("_", " "))
        left += shares[col].to_numpy()
    ax.set_xlim(low, 100)
    ax.invert_yaxis()
    zoom = f" (zoomed to {low:.0f}–100%)" if low > 0 else ""
    label(ax, f"Where every record went{zoom}", "Share of the source's records (%)", "")
    # a fixed 0.6 inch under the axes, below the axis label, however tall the chart (one source or twenty)
    from matplotlib.transforms import ScaledTranslation

    under = ax.transAxes + ScaledTranslation(0, -0.6, fig.dpi_scale_trans)
    ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=under, fontsize=10)
    return fig


def quarantine_summary(quarantine: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Quarantined records per source and rule with one example; personal data and raw lines are not shown."""
    cols = ["source", "rule", "records", "example_line", "column", "example_value", "reason"]
    if quarantine.empty:
        return pd.DataFrame(columns=cols)
    q = quarantine.copy()
    pii = [bool(catalog.sources[s].columns) and any(
        c.column == col and catalog.sources[s].is_pii(r) for r, c in catalog.sources[s].columns.items())
        if s in catalog.sources else False for s, col in zip(q["source"], q["column"])]
    q.loc[pii, "value"] = "(personal data hidden)"
    q.loc[q["rule"] == "unreadable", "value"] = "(raw record, see the quarantine file)"
    out = q.groupby(["source", "rule"], sort=True).agg(
        records=(ROW, "size"), example_line=(ROW, "first"), column=("column", "first"),
        example_value=("value", "first"), reason=("reason", "first")).reset_index()
    return out.sort_values("records", ascending=False, kind="stable")[cols].reset_index(drop=True)


def fixes_sentence(fixes: pd.DataFrame, limit: int = 5) -> str:
    """Plain list of optional values set to missing instead of rejecting their record."""
    if fixes.empty:
        return "No optional value had to be set to missing."
    g = fixes.groupby(["source", "column", "rule"]).agg(n=(ROW, "size"), row=(ROW, "first"),
                                                        reason=("reason", "first")).reset_index()
    g = g.sort_values("n", ascending=False)
    parts = [f"{r.source}.{r.column}: {r.n:,} value(s), e.g. line {r.row} ({r.reason})" for r in g.head(limit)
             .itertuples()]
    more = f"; and {len(g) - limit} more kind(s)" if len(g) > limit else ""
    return (f"{len(fixes):,} optional value(s) were invalid and set to missing instead of rejecting the record: "
            + "; ".join(parts) + more + ".")


def conflicts_sentence(conflicts: pd.DataFrame) -> str:
    """One sentence on records that repeated a key, and how the catalogue's rule settled them."""
    if conflicts.empty:
        return "No record repeated the key of another with different values."
    g = conflicts.groupby(["entity", "rule"]).agg(groups=("key", "size"), copies=("copies", "sum")).reset_index()
    parts = [f"{r.groups:,} {r.entity} key(s) appeared {r.copies:,} times ({r.rule} rule)" for r in g.itertuples()]
    fields = conflicts.loc[conflicts["fields"] != "(none)", "fields"].str.split(", ").explode().value_counts()
    differ = f"; the copies disagreed most often on {plain_list(fields.index[:3])}" if len(fields) else ""
    return ("Conflicting duplicates: " + "; ".join(parts) + differ + ". With `latest`, every field takes its latest "
            "non-empty value; a withdrawal of marketing consent always wins.")


def money_kpis(money: dict, currency: str) -> list[dict]:
    # net revenue is a registry KPI, shown beside these
    return [{"label": "refunded", "value": fmt_money(money["refunds"], currency)},
            {"label": "cancelled orders", "value": money["cancelled_orders"]},
            {"label": "outlier lines excluded", "value": money["outlier_lines"]},
            {"label": "guest orders (no customer)", "value": money["guest_orders"]}]


def money_sentence(money: dict, currency: str, derived_orders: bool) -> str:
    """What happened to the money: refunds, cancellations, reversals, conversions, guests and outliers."""
    m = money
    parts = [f"Net revenue is **{fmt_money(m['net_revenue'], currency)}**: {fmt_money(m['gross_revenue'], currency)} "
             f"of completed orders, less {fmt_money(m['refunds'], currency)} refunded"]
    if m["cancelled_orders"]:
        parts.append(f"{m['cancelled_orders']:,} cancelled orders ({fmt_money(m['cancelled_value'], currency)}) "
                     "earn nothing")
    if m["reversal_lines"]:
        parts.append(f"{m['reversal_lines']:,} reversal lines (credit notes) count as refunds to their customers")
    if m["outlier_lines"]:
        parts.append(f"{m['outlier_lines']:,} outlier line(s) worth {fmt_money(m['outlier_value'], currency)} are "
                     "excluded from every money figure")
    if m["guest_orders"]:
        parts.append(f"{m['guest_orders']:,} orders without a customer ({fmt_money(m['guest_net_revenue'], currency)})"
                     " are kept as guest orders: in revenue, not in customer analyses")
    if m["converted_lines"]:
        parts.append(f"{m['converted_lines']:,} lines were converted to {currency} at monthly rates")
    text = "; ".join(parts) + "."
    if derived_orders:
        text += " The data has no order headers, so every distinct order number of the lines is one order."
    return text


def monthly_revenue(orders: pd.DataFrame, refunds: pd.DataFrame | None) -> pd.DataFrame:
    """Gross, refunded, cancelled and net revenue per month of order (refunds without an order by their date)."""
    o = orders.assign(month=orders["order_date"].dt.to_period("M").dt.to_timestamp())
    done = ~(o["is_cancelled"] | o["is_reversal"])
    o["gross_completed"] = np.where(done, o["gross"], 0.0)
    o["cancelled_value"] = np.where(o["is_cancelled"], o["gross"], 0.0)
    out = o.groupby("month")[["gross_completed", "cancelled_value", "refund", "net"]].sum()
    if refunds is not None and len(refunds):
        r = refunds[(~refunds["is_outlier"]) & (refunds["order_id"].isna() | ~refunds["order_id"].isin(o["order_id"]))]
        if len(r):
            loose = r.groupby(r["refund_date"].dt.to_period("M").dt.to_timestamp())["refund_amount"].sum()
            out = out.reindex(out.index.union(loose.index), fill_value=0.0)
            out["refund"] += loose.reindex(out.index, fill_value=0.0)
            out["net"] -= loose.reindex(out.index, fill_value=0.0)
    return out.sort_index()


def plot_netting(monthly: pd.DataFrame, currency: str):
    """Monthly net revenue with the refunds and cancellations netted out of it stacked on top."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, thousands

    fig, ax = plt.subplots(figsize=(10, 4.2))
    x = monthly.index
    ax.bar(x, monthly["net"], width=20, color=PALETTE[0], label="net revenue")
    ax.bar(x, monthly["refund"], width=20, bottom=monthly["net"].clip(lower=0), color=PALETTE[1], hatch="//",
           edgecolor="white", label="refunded")
    ax.bar(x, monthly["cancelled_value"], width=20, bottom=monthly["net"].clip(lower=0) + monthly["refund"],
           color=PALETTE[7], hatch="..", edgecolor="white", label="cancelled")
    label(ax, "Revenue per month after returns and cancellations", "Month of order", f"Revenue ({currency})")
    thousands(ax)
    ax.legend(loc="upper left")
    return fig


def netting_caption(monthly: pd.DataFrame, currency: str, window_end: str) -> str:
    from helpers.core.periods import partial_month

    if monthly.empty:
        return "No complete month of orders to show."
    best = monthly["net"].idxmax()
    refund_share = monthly["refund"].sum() / max(monthly["gross_completed"].sum(), 1e-9)
    cut = partial_month(window_end)
    partial = f" {cut:%b %Y} is not shown: the data stop on {pd.Timestamp(window_end):%d %b}." if cut is not None else ""
    return (f"Refunds took back {refund_share:.1%} of completed sales; the strongest month was {best:%b %Y} with "
            f"{fmt_money(monthly.at[best, 'net'], currency)} net.{partial}")


def identity_kpis(built: Built, sizes: pd.DataFrame) -> list[dict]:
    # customers is a registry KPI, shown beside these
    return [{"label": "customers with merged accounts", "value": int((sizes["crm"] > 1).sum())},
            {"label": "web/app visitors linked", "value": int(sizes["cookie"].sum())},
            {"label": "links found", "value": len(built.links)},
            {"label": "merges found only by probabilistic matching",
             "value": built.matching.new_merges if built.matching is not None and built.matching.ran else 0}]


def links_by_rule(links: pd.DataFrame) -> pd.DataFrame:
    if links.empty:
        return pd.DataFrame(columns=["rule", "links"])
    return links.groupby("rule").size().rename("links").reset_index().sort_values("links", ascending=False)


def channels_present(info: dict) -> dict[str, bool]:
    """Which customer channels the data set has, by the names :func:`customer360.coverage` uses."""
    e = info["entities"]
    src = info.get("sources", {})
    fb_roles = {r for s in src.values() if s["entity"] == "feedback" for r in s["roles"]}
    fb_channels = set()
    return {"customer profile": "customers" in e, "orders": "orders" in e or "order_lines" in e,
            "web/app sessions": "events" in e, "e-mail": "sends" in e,
            "reviews": "feedback" in e and ("stars" in fb_roles or "review" in fb_channels or "text" in fb_roles),
            "NPS surveys": "feedback" in e and "nps" in fb_roles,
            "support tickets": "feedback" in e and ("resolution_hours" in fb_roles or "support_channel" in fb_roles)}


def step_metrics(built: Built, sizes: pd.DataFrame) -> dict:
    t = built.totals
    return {**t, "balanced": bool(built.balance["balanced"].all()), "customers": len(built.c360),
            "buyers": int((built.c360["orders"] > 0).sum()), "merged_customers": int((sizes["crm"] > 1).sum()),
            "currency": built.info["currency"], **{k: v for k, v in built.money.items()}}


def kpi_values(built: Built, sends: pd.DataFrame | None) -> dict:
    """The registry KPIs report 02 owns (see :mod:`helpers.core.kpis`)."""
    t, c = built.totals, built.c360
    opened = None
    if sends is not None and len(sends) and "opened_at" in sends:
        opened = float(sends["opened_at"].notna().mean())
    return {"records_quarantined": int(t["quarantined"]), "duplicates_merged": int(t["duplicates_merged"]),
            "customers": len(c), "buyers": int((c["orders"] > 0).sum()), "repeat_buyers": int((c["orders"] > 1).sum()),
            "net_revenue": float(built.money["net_revenue"]), "email_open_rate": opened}


def kpi_series(orders: pd.DataFrame, refunds: pd.DataFrame | None, sends: pd.DataFrame | None,
               window_end: str) -> dict:
    """Monthly net revenue, buyers and e-mail engagement over the complete months of the window."""
    from helpers.core.periods import complete_months

    key = lambda m: f"{pd.Timestamp(m):%Y-%m-%d}"  # noqa: E731
    out: dict[str, dict] = {}
    monthly = complete_months(monthly_revenue(orders, refunds), window_end)
    out["net_revenue"] = {key(m): float(v) for m, v in monthly["net"].items()}
    done = orders[~(orders["is_cancelled"] | orders["is_reversal"])]
    buyers = done.groupby(done["order_date"].dt.to_period("M").dt.to_timestamp())["customer_key"].nunique()
    out["buyers"] = {key(m): int(v) for m, v in complete_months(buyers.to_frame(), window_end).iloc[:, 0].items()}
    if sends is not None and len(sends) and "sent_at" in sends:
        s = sends.assign(month=pd.to_datetime(sends["sent_at"]).dt.to_period("M").dt.to_timestamp())
        for col, name in (("opened_at", "email_open_rate"), ("clicked_at", "email_click_rate")):
            if col in s:
                g = s.groupby("month")[col].agg(lambda v: float(v.notna().mean())).to_frame("value")
                g["n"] = s.groupby("month").size()
                g = complete_months(g, window_end)
                out[name] = {key(m): {"value": float(r["value"]), "n": int(r["n"])} for m, r in g.iterrows()}
    return out


def conclusion(built: Built, currency: str) -> list[str]:
    """Two to four sentences answering the page's question (can the data be trusted, and what does it hold)."""
    t, m, c = built.totals, built.money, built.c360
    ok = built.balance["balanced"].all()
    out = [f"{'Every one' if ok else 'NOT every one'} of the **{t['records_in']:,} records in the files** is accounted "
           f"for: {t['kept']:,} kept, {t['duplicates_merged']:,} duplicates merged, {t['quarantined']:,} quarantined "
           f"with a reason and {t['unreadable']:,} unreadable."]
    buyers = int((c["orders"] > 0).sum())
    out.append(f"Identity resolution gives **{len(c):,} customers**, of whom {buyers:,} are buyers "
               f"({int((c['orders'] > 1).sum()):,} repeat buyers).")
    text = (f"Net revenue is **{fmt_money(m['net_revenue'], currency)}** after refunds, credit notes and "
            "cancellations")
    if m.get("outlier_lines"):
        text += (f"; {m['outlier_lines']:,} outlier lines ({fmt_money(m['outlier_value'], currency)}) are left out of "
                 "it and listed below")
    out.append(text + ".")
    return out


COLUMN_WORDS = {"email": "e-mail", "birth_date": "date of birth", "full_name": "full name", "first_name": "first name",
                "last_name": "last name"}


def matching_sentence(m: Matching | None, threshold: float) -> str:
    """One plain sentence on what probabilistic matching did (or why it did not run)."""
    if m is None:
        return ("Accounts were linked by the exact rules only (`identity_matching: exact`); set it to "
                "`probabilistic` to also link accounts by name, postcode, address and date of birth.")
    if not m.ran:
        return m.note
    cols = plain_list([COLUMN_WORDS.get(c, c.replace("_", " ")) for c in m.comparisons])
    return (f"Splink compared {m.accounts:,} accounts on {cols}: {m.scored_pairs:,} candidate pairs reached a match "
            f"probability of {threshold:g}, and {m.new_merges:,} of them joined accounts the exact rules had left "
            f"apart. Its agreement rates for true matches were learned from {m.trained_m_from}.")


def plot_match_weights(m: Matching):
    """Grouped horizontal bars: how many bits of evidence each column gave for a few scored pairs."""
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label
    from helpers.canonical.identity import pseudonymise

    ex = m.examples
    cols = [c for c in ex.columns if c.startswith("mw_") and not c.startswith("mw_tf_adj_")]
    names = ["prior"] + [COLUMN_WORDS.get(c[3:], c[3:].replace("_", " ")) for c in cols]
    prior = float(np.log2(m.prior / (1 - m.prior))) if m.prior else 0.0
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(names) * max(1, len(ex)) / 2 + 2))
    height = 0.8 / max(len(ex), 1)
    y = np.arange(len(names))
    for i, row in ex.reset_index(drop=True).iterrows():
        weights = [prior] + [float(row[c]) + float(row.get("mw_tf_adj_" + c[3:], 0.0) or 0.0) for c in cols]
        a = pseudonymise(pd.Series([row["unique_id_l"]])).iloc[0]
        b = pseudonymise(pd.Series([row["unique_id_r"]])).iloc[0]
        how = "joined by the exact rules too" if row["exact_rules_joined"] else "joined only by this model"
        ax.barh(y + i * height, weights, height=height, color=PALETTE[i % len(PALETTE)],
                hatch=["", "//", ".."][i % 3], edgecolor="white",
                label=f"{a} ↔ {b}: {row['match_weight']:+.1f} bits, p = {row['match_probability']:.4f} ({how})")
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_yticks(y + height * (len(ex) - 1) / 2, names)
    ax.invert_yaxis()
    label(ax, "What each column contributed to the match score of a few account pairs",
          "Match weight (bits of evidence; + for the same person, − against)", "")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=9, ncol=1)
    return fig


def match_weight_caption(m: Matching) -> str:
    ex = m.examples
    return (f"Each bar is one column's evidence for {len(ex)} pseudonymised account pairs; the prior is the "
            f"evidence before any column is compared (1 in {1 / m.prior:,.0f} random pairs is one person), and a pair "
            f"is linked when the bars add up to a match probability of at least {m.threshold:g}.")


def identity_truth_sentence(scores: dict | None) -> str:
    """The truth check of identity resolution on generated data (empty on real data)."""
    if not scores:
        return ""
    f = scores["final"]
    text = (f"**Truth check (generated data only):** against the generator's record of who is who, pairs of records "
            f"put together are right {f['precision']:.2%} of the time (precision) and {f['recall']:.2%} of the true "
            f"pairs are found (recall), over {f['true_pairs']:,.0f} true pairs.")
    if "exact_only" in scores:
        e = scores["exact_only"]
        text += (f" The exact rules alone reach precision {e['precision']:.2%} and recall {e['recall']:.2%}.")
    return text
