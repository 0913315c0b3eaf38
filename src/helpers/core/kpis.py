"""The metric registry: every KPI a report shows, defined once.

Each KPI has one label, one population, one period, one unit and one formula, and one step that computes it.
Steps record values under the KPI's id (``metrics/<step>.json`` → ``kpis``); every page, the index and the
executive summary display them through the registry, so a figure shown on two pages is the same figure with the
same name. Different populations get different names: *customers* (everyone the data knows), *buyers* (at least
one completed order), *repeat buyers* (two or more), *active customers* (a lifecycle stage).
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers.core.fmt import fmt_money, fmt_pct


@dataclass(frozen=True)
class KPI:
    """One key figure."""

    id: str
    label: str  # what every page calls it
    unit: str  # count | money | share | score | text
    population: str  # who or what is counted
    period: str  # when
    formula: str  # how, in words
    step: str  # the report that computes it (and that "Details" links to)
    anchor: str = ""  # the heading of the section of that report that explains it

    @property
    def href(self) -> str:
        """Link to the report section that explains the figure."""
        return f"{self.step}.html#{heading_id(self.anchor)}" if self.anchor else f"{self.step}.html"

    def format(self, value, currency: str = "") -> str:
        """The value as every page shows it."""
        if value is None or (isinstance(value, float) and value != value):
            return "–"
        if self.unit == "money":
            return fmt_money(value, currency)
        if self.unit == "share":
            return fmt_pct(value)
        if self.unit == "count":
            return f"{int(round(value)):,}"
        if self.unit == "score":
            return f"{value:+.0f}"
        return str(value)

    @property
    def definition(self) -> str:
        return f"{self.population}; {self.period}. {self.formula}"


def heading_id(heading: str) -> str:
    """The id nbconvert gives a Markdown heading in the HTML reports (spaces become hyphens, non-ASCII is
    percent-encoded), so a link can land on the section.

    >>> heading_id("The 360° customer table"), heading_id("What was set aside, and why")
    ('The-360%C2%B0-customer-table', 'What-was-set-aside,-and-why')
    """
    from urllib.parse import quote

    return quote(heading.strip().replace(" ", "-"), safe=":,/-'()?!;=&+$@*")


KPIS: dict[str, KPI] = {k.id: k for k in [
    KPI("records_in", "records in the files", "count", "every physical record of every source", "as delivered",
        "counted in the files themselves: lines of text files, rows of tables", "01_collection", "Inventory"),
    KPI("records_quarantined", "records quarantined", "count", "records set aside with a reason",
        "as delivered", "required value invalid, broken reference, missing exchange rate, conflicting duplicate",
        "02_cleaning", "What was set aside, and why"),
    KPI("duplicates_merged", "duplicates merged", "count", "records that repeat another (exact copies and "
        "repeated keys)", "as delivered", "merged by the source's duplicates rule", "02_cleaning",
        "Every record accounted for"),
    KPI("customers", "customers", "count", "every resolved customer: accounts and anyone who bought",
        "as of the end of the window", "one per customer key after identity resolution", "02_cleaning",
        "The 360° customer table"),
    KPI("buyers", "buyers", "count", "customers with at least one completed order", "in the analysis window",
        "cancelled orders and credit notes do not count", "02_cleaning", "The 360° customer table"),
    KPI("repeat_buyers", "repeat buyers", "count", "customers with two or more completed orders",
        "in the analysis window", "cancelled orders and credit notes do not count", "02_cleaning",
        "The 360° customer table"),
    KPI("net_revenue", "net revenue", "money", "all completed orders, guests included", "in the analysis window",
        "order value − refunds and credit notes; cancelled orders and outlier lines excluded", "02_cleaning",
        "Money: returns, cancellations, credit notes, currency and outliers"),
    KPI("active_customers", "active customers", "count", "customers in the lifecycle stages new, trial, active or "
        "reactivated", "at the end of the window", "no order for longer than the churn threshold = not active",
        "03_segmentation", "Lifecycle: how many customers are active, slipping or gone"),
    KPI("at_risk_customers", "customers at risk", "count", "customers in the lifecycle stage 'at risk'",
        "at the end of the window", "last order longer ago than the at-risk threshold", "03_segmentation",
        "Lifecycle: how many customers are active, slipping or gone"),
    KPI("churned_customers", "churned customers", "count", "customers in the lifecycle stage 'churned'",
        "at the end of the window", "last order longer ago than the churn threshold", "03_segmentation",
        "Lifecycle: how many customers are active, slipping or gone"),
    KPI("predicted_clv", "predicted value of today's customers", "money", "every buyer", "over the CLV horizon "
        "after the window", "expected purchases × expected spend per order × margin, discounted", "04_clv",
        "Predicted value of today's customers"),
    KPI("revenue_at_risk", "predicted value at risk", "money", "customers at risk or churned (and, when dropout "
        "is identified, those with P(alive) below 50%)", "over the CLV horizon", "their predicted CLV",
        "04_clv", "Predicted value of today's customers"),
    KPI("probably_active", "buyers probably still active", "count", "buyers with P(alive) ≥ 50%",
        "at the end of the window", "only when the data show customers leaving", "04_clv",
        "Predicted value of today's customers"),
    KPI("nps", "NPS", "score", "every survey answer", "in the analysis window", "% promoters (9–10) − % detractors "
        "(0–6), from −100 to +100", "05_sentiment", "How customers feel"),
    KPI("csat", "CSAT", "share", "every star rating", "in the analysis window", "share of 4- and 5-star ratings",
        "05_sentiment", "How customers feel"),
    KPI("negative_share", "negative feedback", "share", "every scored text", "in the analysis window",
        "share of texts whose sentiment is negative", "05_sentiment", "How customers feel"),
    KPI("open_followups", "open follow-ups", "count", "negative or detractor items of the last 30 days not yet "
        "solved", "at the end of the window", "", "05_sentiment", "Closing the loop: who needs a follow-up?"),
    KPI("email_open_rate", "e-mail open rate", "share", "every e-mail sent", "in the analysis window",
        "opened / sent", "02_cleaning", "The 360° customer table"),
    KPI("experiments_to_ship", "experiments ready to ship", "text", "every experiment analysed",
        "at the end of the window", "significant, powered for the lift seen, the split intact and the always-valid "
        "interval clear of zero", "06_ab_test", "The answer"),
]}


def kpi(kpi_id: str) -> KPI:
    """The KPI called ``kpi_id``.

    >>> kpi("customers").label
    'customers'
    """
    if kpi_id not in KPIS:
        from helpers.core.text import did_you_mean

        raise KeyError(f"no KPI {kpi_id!r} in the registry{did_you_mean(kpi_id, KPIS)}")
    return KPIS[kpi_id]
