"""The canonical customer data model: the entities every analysis reads, and the roles of their columns.

A company's exports come in any shape: a flat log of invoice lines, a marketplace's multi-table dump, a CRM
with e-mail, web and survey data. Each source in the catalogue (``config/sources.yaml`` or your own) declares
which **entity** it feeds and which of its columns plays which **role**. Loading maps every source onto these
entities, so that cleaning, segmentation, CLV, sentiment and A/B analysis read one fixed set of tables whatever
the company's systems call their columns.

Only one entity is indispensable: transactions, as ``orders`` or ``order_lines``, with a customer, a date and an
amount (or a quantity and a unit price). Every other entity is optional, and each analysis runs on what exists.

Role types:

``id``        an identifier, kept as text; ``17850.0`` (an id exported as a float) becomes ``17850``
``text``      free text (names, descriptions, reviews)
``category``  a short label; ``lower: true`` compares it case-insensitively
``number``    a finite number, read with the source's decimal mark and thousands separator
``integer``   a whole number
``money``     a finite amount in the row's currency (or the source's declared currency)
``boolean``   yes/no in English, German, French or Dutch, or 1/0
``datetime``  a point in time, converted to the data set's time zone
``date``      a calendar day
``email``     an e-mail address (personal data)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"  # what the email role type accepts
EMAIL_RE = re.compile(f"^{EMAIL_PATTERN}$")
ROLE_TYPES = ("id", "text", "category", "number", "integer", "money", "boolean", "datetime", "date", "email")
FEEDS = ("demographic", "behavioural", "transactional", "psychographic")


@dataclass(frozen=True)
class Role:
    """What one canonical column holds."""

    name: str
    type: str
    description: str
    required: bool = False
    pii: bool = False
    min: float | None = None
    max: float | None = None
    lower: bool = False
    upper: bool = False
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Entity:
    """One canonical table: its roles, key, the date that places a row in time, and what it references."""

    name: str
    description: str
    roles: dict[str, Role]
    key: tuple[str, ...] = ()
    date_role: str | None = None
    feeds: tuple[str, ...] = ()
    references: dict[str, str] = field(default_factory=dict)  # role -> "entity.role"
    extra_columns: bool = False  # unmapped source columns pass through (e.g. A/B metrics)

    @property
    def required_roles(self) -> list[str]:
        return [r.name for r in self.roles.values() if r.required]

    @property
    def pii_roles(self) -> list[str]:
        return [r.name for r in self.roles.values() if r.pii]


def _roles(*roles: Role) -> dict[str, Role]:
    return {r.name: r for r in roles}


def _id(name: str, description: str, required: bool = False, pii: bool = False) -> Role:
    return Role(name, "id", description, required=required, pii=pii)


CUSTOMER_ID = _id("customer_id", "the customer's account id in this source (a CRM id; in marketplace exports "
                                 "often one id per order, see person_id)")
PERSON_ID = _id("person_id", "the id of the person behind the account, when the source has one that differs "
                             "from customer_id (Olist's customer_unique_id); it decides who is the same customer")
EMAIL = Role("email", "email", "e-mail address, used to link records of one person across channels", pii=True)
CURRENCY = Role("currency", "category", "ISO currency code of the amounts in this row (else the source's "
                                        "declared currency)", upper=True)
STATUS = Role("status", "category", "order status; 'cancelled' orders earn nothing (map your values to "
                                    "completed / cancelled / pending / returned)", lower=True)
UPDATED_AT = Role("updated_at", "datetime", "when the record was last changed; decides which of two "
                                            "conflicting copies of a record is the latest")

ENTITIES: dict[str, Entity] = {e.name: e for e in [
    Entity("customers", "customer accounts from a CRM, shop or marketplace", _roles(
        _id("customer_id", CUSTOMER_ID.description, required=True), PERSON_ID,
        Role("first_name", "text", "first name", pii=True), Role("last_name", "text", "last name", pii=True),
        Role("full_name", "text", "full name when first and last names are not separate", pii=True),
        EMAIL, Role("phone", "text", "phone number in any national or international format", pii=True),
        Role("postcode", "text", "postal code", pii=True), Role("address", "text", "street address", pii=True),
        Role("city", "text", "city"), Role("region", "text", "region or state"),
        Role("country", "category", "country (ISO code or name)", upper=True),
        Role("birth_date", "date", "date of birth", pii=True), Role("age_band", "category", "age band"),
        Role("gender", "category", "gender", lower=True),
        Role("signup_date", "datetime", "when the account was created"),
        Role("acquisition_channel", "category", "how the customer was acquired", lower=True),
        Role("marketing_consent", "boolean", "consent to marketing e-mails; a withdrawal always wins"),
        UPDATED_AT,
    ), key=("customer_id",), date_role="signup_date", feeds=("demographic",)),

    Entity("orders", "one row per order (order headers)", _roles(
        _id("order_id", "order or invoice number", required=True),
        _id("customer_id", "the customer who placed the order; empty for guest checkouts", required=True),
        PERSON_ID, EMAIL,
        Role("order_date", "datetime", "when the order was placed", required=True), STATUS, CURRENCY,
        Role("channel", "category", "sales channel (web, app, store, marketplace…)", lower=True),
        Role("payment_method", "category", "payment method", lower=True),
        Role("country", "category", "shipping or billing country", upper=True),
        Role("amount", "money", "order total, when there are no order lines to add up"),
        UPDATED_AT,
    ), key=("order_id",), date_role="order_date", feeds=("transactional",),
        references={"customer_id": "customers.customer_id"}),

    Entity("order_lines", "one row per product in an order; a flat invoice-line log is this entity on its own",
           _roles(
               _id("order_id", "order or invoice number; without one, every row is an order of its own"),
               Role("line_no", "integer", "position of the line in its order", min=0),
               _id("customer_id", "the customer, when lines carry it (flat invoice logs)"), PERSON_ID, EMAIL,
               Role("order_date", "datetime", "when the order was placed (needed when there is no orders entity)"),
               _id("product_id", "product or stock code"), Role("product_name", "text", "product description"),
               Role("category", "category", "product category"),
               Role("quantity", "number", "units bought; negative on reversal lines"),
               Role("unit_price", "money", "price per unit", min=0),
               Role("discount_pct", "number", "discount in percent of the line value", min=0, max=100),
               Role("amount", "money", "line value; when absent, quantity × unit price × (1 − discount)"),
               CURRENCY, STATUS,
               Role("channel", "category", "sales channel", lower=True),
               Role("payment_method", "category", "payment method", lower=True),
               Role("country", "category", "shipping or billing country", upper=True),
           ), key=("order_id", "line_no"), date_role="order_date", feeds=("transactional",),
           references={"order_id": "orders.order_id"}),

    Entity("returns", "returns, refunds and credit notes", _roles(
        _id("return_id", "return or credit-note number", required=True),
        _id("order_id", "the order the refund belongs to"), _id("customer_id", "the customer refunded"),
        _id("product_id", "product returned"), Role("quantity", "number", "units returned"),
        Role("refund_amount", "money", "amount refunded (positive)", required=True, min=0), CURRENCY,
        Role("return_date", "datetime", "when the refund was booked", required=True),
        Role("reason", "text", "return reason"),
    ), key=("return_id",), date_role="return_date", feeds=("transactional",),
        references={"order_id": "orders.order_id"}),

    Entity("products", "the product catalogue", _roles(
        _id("product_id", "product or stock code", required=True), Role("product_name", "text", "name"),
        Role("category", "category", "category"), Role("brand", "text", "brand"),
        Role("list_price", "money", "list price", min=0),
    ), key=("product_id",), feeds=("transactional",)),

    Entity("fx_rates", "exchange rates to the data set's reporting currency", _roles(
        Role("month", "date", "first day of the month the rate applies to", required=True),
        Role("currency", "category", "currency converted from", required=True, upper=True),
        Role("rate", "number", "units of the reporting currency per unit of `currency`", required=True, min=0),
    ), key=("month", "currency"), feeds=("transactional",)),

    Entity("events", "web and app analytics events", _roles(
        _id("event_id", "event id"), Role("ts", "datetime", "event time", required=True),
        _id("session_id", "session id; without one, a visitor's events on one day form a session"),
        _id("anonymous_id", "cookie or device id"),
        Role("event_type", "category", "event name (page_view, product_view, add_to_cart, checkout, login, "
                                       "email_capture…)", required=True, lower=True),
        Role("device", "category", "device (app, mobile_web, desktop…)", lower=True),
        Role("page", "text", "page or screen"), _id("customer_id", "the logged-in customer, if any"), EMAIL,
        Role("ip", "text", "IP address", pii=True),
    ), key=("event_id",), date_role="ts", feeds=("behavioural",)),

    Entity("campaigns", "marketing campaigns and the experiments run in them", _roles(
        _id("campaign_id", "campaign id", required=True), Role("name", "text", "campaign name"),
        Role("type", "category", "newsletter, promotion, ab_test…", lower=True),
        Role("sent_at", "datetime", "send date"), _id("experiment", "experiment name, for A/B tests"),
        Role("intended_split", "text", "intended share per arm, e.g. 'a:0.5,b:0.5'"),
        Role("control_variant", "text", "the control arm"),
        Role("primary_metric", "category", "opened, clicked or converted", lower=True),
    ), key=("campaign_id",), date_role="sent_at", feeds=("behavioural",)),

    Entity("sends", "e-mail sends with opens, clicks and conversions", _roles(
        _id("send_id", "send id"), _id("campaign_id", "campaign", required=True),
        _id("customer_id", "recipient's customer id"), EMAIL, Role("variant", "text", "A/B arm, if any"),
        Role("sent_at", "datetime", "send time", required=True), Role("opened_at", "datetime", "first open"),
        Role("clicked_at", "datetime", "first click"), Role("converted", "boolean", "attributed conversion"),
        Role("revenue", "money", "attributed revenue", min=0),
    ), key=("send_id",), date_role="sent_at", feeds=("behavioural",),
        references={"campaign_id": "campaigns.campaign_id"}),

    Entity("feedback", "reviews, survey answers and support tickets: texts with their channel, rating and date",
           _roles(
               _id("feedback_id", "review, response or ticket id", required=True),
               Role("channel", "category", "review, survey, ticket… (often a constant per source)", lower=True),
               Role("created_at", "datetime", "when it was written", required=True),
               _id("customer_id", "the customer"), PERSON_ID, EMAIL,
               _id("order_id", "the order it is about; links the text to a customer when nothing else does"),
               _id("product_id", "the product it is about"),
               Role("stars", "number", "star rating (1–5)", min=1, max=5),
               Role("nps", "integer", "likelihood to recommend (0–10)", min=0, max=10),
               Role("csat", "number", "satisfaction score (1–5)", min=1, max=5),
               Role("title", "text", "title or subject"), Role("text", "text", "the text itself"),
               Role("language", "category", "language code, if the source states it", lower=True),
               Role("topic", "category", "topic or ticket category", lower=True),
               Role("status", "category", "ticket status (open, pending, solved…)", lower=True),
               Role("resolution_hours", "number", "hours to resolve a ticket", min=0),
               Role("support_channel", "category", "e-mail, chat, phone…", lower=True),
           ), key=("feedback_id",), date_role="created_at", feeds=("psychographic",)),

    Entity("assignments", "experiment assignments with outcomes: one row per unit and experiment", _roles(
        _id("experiment", "experiment name"), _id("unit_id", "randomisation unit (user, account…)", required=True),
        Role("variant", "text", "arm the unit was assigned to", required=True),
        Role("assigned_at", "datetime", "when the unit was assigned"),
        _id("customer_id", "the customer, if the unit is one"),
    ), key=("experiment", "unit_id"), date_role="assigned_at", feeds=("behavioural",), extra_columns=True),
]}

TRANSACTION_ENTITIES = ("orders", "order_lines")


def entity(name: str) -> Entity:
    """The entity called ``name``; a clear error (with the known names) otherwise.

    >>> entity("orders").key
    ('order_id',)
    """
    if name not in ENTITIES:
        from helpers.core.text import did_you_mean

        raise KeyError(f"unknown entity {name!r}{did_you_mean(name, ENTITIES)}; entities: {', '.join(ENTITIES)}")
    return ENTITIES[name]


def model_table() -> list[dict]:
    """One row per entity and role, for the README and the data dictionary."""
    rows = []
    for e in ENTITIES.values():
        for r in e.roles.values():
            rows.append({"entity": e.name, "role": r.name, "type": r.type, "required": r.required, "pii": r.pii,
                         "meaning": r.description})
    return rows
