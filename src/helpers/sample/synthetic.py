"""Seeded generator of the embedded default data: a fictional European online retailer.

It writes every raw source in the form a real company would hand it over:

=================  ======================================  ==========================
source             file                                    form
=================  ======================================  ==========================
CRM customers      ``crm.sqlite`` (table ``customers``)    SQLite database
orders             ``orders.csv``                          CSV, mostly ISO dates
order lines        ``order_lines.csv``                     CSV
returns            ``returns.csv``                         German warehouse export:
                                                           ``;``, Latin-1, ``1.234,56``
products           ``products.xlsx``                       Excel (merchandising)
FX rates           ``fx_rates.csv``                        CSV
web/app events     ``web_events.jsonl.gz``                 JSON Lines, gzipped
e-mail campaigns   ``campaigns.csv``                       CSV
e-mail sends       ``email_sends.parquet``                 Parquet (ESP warehouse)
reviews            ``reviews.csv``                         CSV, UTF-8 with emoji
NPS surveys        ``surveys.csv``                         CSV, US dates
support tickets    ``tickets.csv``                         CSV
=================  ======================================  ==========================

Repeat purchasing follows a BG/NBD buy-till-you-die process with parameters per
latent segment; segments also differ in basket, discounts, returns, browsing,
e-mail engagement and satisfaction, so that segmentation and CLV models have a
known truth to recover. The truth goes to ``data/truth/`` and is read only by
tests and by clearly labelled "truth check" cells.

Realistic dirt is planted on purpose: duplicate accounts with differently
formatted e-mails and phones, missing values, exact duplicate rows, malformed
rows, cancellations, returns, outliers and a foreign currency.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.sample.textgen import TOPICS, FeedbackWriter, GermanFeedbackWriter

# ----------------------------------------------------------------------------
# Latent segments
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentSpec:
    """Behaviour of one latent customer segment (all rates per day unless named)."""

    name: str
    share: float
    r: float  # BG/NBD purchase-rate heterogeneity: lambda ~ Gamma(r, rate=alpha), per day
    alpha: float
    a: float  # BG/NBD dropout: p ~ Beta(a, b)
    b: float
    price_tilt: float  # > 0 prefers expensive products
    lines_mean: float  # mean extra lines per order
    discount_affinity: float  # probability that a line carries a discount
    return_rate: float
    sessions_per_month: float
    app_share: float
    email_open_rate: float
    email_click_rate: float  # clicks per send
    satisfaction: float  # mean latent satisfaction (standard units)
    review_rate: float  # reviews per order
    channel_weights: dict[str, float] = field(default_factory=dict)
    category_weights: dict[str, float] = field(default_factory=dict)


CATEGORIES = ["Fashion", "Shoes", "Beauty", "Home", "Electronics", "Sports"]
ACQUISITION_CHANNELS = ["organic_search", "paid_search", "social", "affiliate", "referral", "email", "marketplace"]

SEGMENTS: dict[str, SegmentSpec] = {
    s.name: s
    for s in [
        SegmentSpec(
            "loyal_premium", 0.20, r=2.0, alpha=80.0, a=0.4, b=8.0, price_tilt=1.4, lines_mean=1.6,
            discount_affinity=0.05, return_rate=0.04, sessions_per_month=2.0, app_share=0.60,
            email_open_rate=0.55, email_click_rate=0.16, satisfaction=1.0, review_rate=0.10,
            channel_weights={"organic_search": 3, "referral": 3, "email": 2, "paid_search": 1},
            category_weights={"Fashion": 3, "Home": 3, "Electronics": 2, "Beauty": 2, "Shoes": 1, "Sports": 1},
        ),
        SegmentSpec(
            "deal_seeker", 0.30, r=1.5, alpha=110.0, a=0.6, b=5.0, price_tilt=-1.2, lines_mean=1.2,
            discount_affinity=0.85, return_rate=0.08, sessions_per_month=1.0, app_share=0.35,
            email_open_rate=0.42, email_click_rate=0.14, satisfaction=0.1, review_rate=0.06,
            channel_weights={"affiliate": 4, "paid_search": 2, "email": 2, "marketplace": 2},
            category_weights={"Fashion": 2, "Shoes": 2, "Home": 2, "Beauty": 2, "Sports": 1, "Electronics": 1},
        ),
        SegmentSpec(
            "impulse_browser", 0.20, r=1.2, alpha=120.0, a=0.7, b=4.0, price_tilt=-0.3, lines_mean=0.6,
            discount_affinity=0.25, return_rate=0.40, sessions_per_month=4.0, app_share=0.90,
            email_open_rate=0.15, email_click_rate=0.04, satisfaction=-0.5, review_rate=0.05,
            channel_weights={"social": 5, "paid_search": 1, "marketplace": 1},
            category_weights={"Fashion": 4, "Shoes": 3, "Beauty": 2, "Sports": 1, "Home": 0.5, "Electronics": 0.5},
        ),
        SegmentSpec(
            "occasional", 0.30, r=1.0, alpha=300.0, a=0.9, b=3.0, price_tilt=0.7, lines_mean=0.4,
            discount_affinity=0.05, return_rate=0.06, sessions_per_month=0.35, app_share=0.08,
            email_open_rate=0.10, email_click_rate=0.015, satisfaction=0.3, review_rate=0.03,
            channel_weights={"organic_search": 3, "paid_search": 2, "marketplace": 2, "referral": 1},
            category_weights={"Electronics": 3, "Home": 3, "Sports": 2, "Fashion": 1, "Shoes": 1, "Beauty": 1},
        ),
    ]
}

# ----------------------------------------------------------------------------
# Reference vocabularies
# ----------------------------------------------------------------------------

FIRST_NAMES = [
    "Anna", "Lena", "Sophie", "Marie", "Laura", "Julia", "Emma", "Mia", "Hannah", "Lea", "Clara", "Sarah", "Lisa",
    "Eva", "Nina", "Paula", "Jana", "Katharina", "Chloé", "Camille", "Manon", "Inès", "Sanne", "Fleur", "Femke",
    "Lukas", "Jonas", "Leon", "Felix", "Paul", "Maximilian", "Tim", "Jan", "David", "Simon", "Tobias", "Florian",
    "Niklas", "Moritz", "Thomas", "Stefan", "Michael", "Lucas", "Hugo", "Louis", "Jules", "Bram", "Daan", "Sem",
    "Jürgen", "Björn", "Sören", "Zoë", "Noah", "Elias", "Ben", "Finn", "Matteo", "Luca", "Sofia",
]
LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Koch",
    "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
    "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Martin", "Bernard", "Dubois", "Durand",
    "Lefèvre", "Moreau", "Laurent", "de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit",
    "Peeters", "Janssens", "Maes", "Huber", "Gruber", "Bauer", "Pichler", "Steiner", "Moser", "Keller", "Frei",
]
EMAIL_DOMAINS = ["gmail.com", "web.de", "gmx.de", "outlook.com", "yahoo.com", "icloud.com", "t-online.de",
                 "orange.fr", "ziggo.nl", "hotmail.com", "gmx.at", "bluewin.ch"]
EMAIL_DOMAIN_WEIGHTS = [0.24, 0.12, 0.12, 0.10, 0.05, 0.07, 0.06, 0.06, 0.05, 0.05, 0.04, 0.04]

# country -> (share, phone prefix, postcode digits, regions)
COUNTRIES: dict[str, tuple[float, str, int, list[str]]] = {
    "DE": (0.55, "49", 5, ["Bayern", "Berlin", "Nordrhein-Westfalen", "Hamburg", "Hessen", "Baden-Württemberg",
                           "Niedersachsen", "Sachsen"]),
    "AT": (0.12, "43", 4, ["Wien", "Steiermark", "Tirol", "Oberösterreich"]),
    "NL": (0.12, "31", 4, ["Noord-Holland", "Zuid-Holland", "Utrecht", "Noord-Brabant"]),
    "FR": (0.11, "33", 5, ["Île-de-France", "Auvergne-Rhône-Alpes", "Occitanie", "Grand Est"]),
    "CH": (0.10, "41", 4, ["Zürich", "Bern", "Genève", "Basel-Stadt"]),
}
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
PAYMENT_METHODS = ["card", "paypal", "klarna", "sepa_debit", "apple_pay", "invoice"]
RETURN_REASONS = ["Größe passt nicht", "Artikel beschädigt", "Gefällt nicht", "Falscher Artikel geliefert",
                  "Qualität unzureichend", "Zu spät geliefert"]
FX_EUR_PER_CHF = 1.04  # roughly, with a small monthly drift added below


# Bumped whenever the generator writes different data for the same settings, so older sample files are rebuilt
# instead of being reused silently (2: feedback also in German).
GENERATOR_VERSION = 2


@dataclass
class GenerationSummary:
    """What one call of :func:`generate` wrote."""

    raw_dir: str
    truth_dir: str
    seed: int
    n_customers: int
    start: str
    end: str
    row_counts: dict[str, int]


# ----------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------


def _ascii_local(name: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "ë": "e", "ï": "i",
                           "Î": "I", "ô": "o", "ç": "c", " ": ""})
    return name.translate(table).lower()


def email_variant(email: str, kind: str) -> str:
    """Return ``email`` written differently but belonging to the same mailbox.

    ``kind`` is one of ``upper`` (case and stray whitespace), ``plus`` (a ``+tag``
    on a provider that ignores it), ``dots`` (extra dots, ignored by Gmail) or
    ``same``.

    >>> email_variant("anna.meyer@gmail.com", "plus")
    'anna.meyer+shop@gmail.com'
    """
    local, domain = email.split("@")
    if kind == "upper":
        return f"  {local.title()}@{domain.upper()} "
    if kind == "plus" and domain in {"gmail.com", "outlook.com", "hotmail.com", "icloud.com"}:
        return f"{local}+shop@{domain}"
    if kind == "dots" and domain == "gmail.com":
        plain = local.replace(".", "")
        return ".".join(plain[i:i + 3] for i in range(0, len(plain), 3)) + "@googlemail.com"
    return email


def phone_variant(e164: str, country_code: str, kind: int) -> str:
    """Format an E.164 number the way people type it (national, spaced, 00-prefixed)."""
    national = e164[1 + len(country_code):]
    if kind == 0:
        return e164
    if kind == 1:
        return f"+{country_code} {national[:3]} {national[3:]}"
    if kind == 2:
        return f"0{national[:3]} {national[3:]}"
    if kind == 3:
        return f"00{country_code}-{national[:3]}-{national[3:]}"
    return f"(0{national[:3]}) {national[3:7]} {national[7:]}"


class _Choice:
    """``rng.choice(len(p), size, p=p)`` with the cumulative distribution worked out once: numpy's own method (one
    uniform draw per pick, looked up in the normalised cumulative sum), so the draws are the same, without
    numpy's checks of ``p`` on every call of a loop that runs once per order line."""

    def __init__(self, p) -> None:
        cdf = np.asarray(p, dtype=float).cumsum()
        cdf /= cdf[-1]
        self.cdf = cdf

    def __call__(self, rng: np.random.Generator, size: int | None = None):
        return self.cdf.searchsorted(rng.random(size), side="right")


_CHOICES: dict[tuple, tuple[np.ndarray, _Choice]] = {}


def _weighted_choice(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    key = tuple(weights.items())
    if key not in _CHOICES:
        keys = list(weights)
        w = np.array([weights[k] for k in keys], dtype=float)
        _CHOICES[key] = (np.array(keys, dtype=object), _Choice(w / w.sum()))
    keys, choice = _CHOICES[key]
    return keys[choice(rng, size)]


def _to_ts(start: pd.Timestamp, days: np.ndarray) -> pd.DatetimeIndex:
    # Whole seconds only: raw exports carry no sub-second precision.
    return pd.DatetimeIndex(start + pd.to_timedelta(np.round(np.asarray(days, dtype=float) * 86400), unit="s"))


# ----------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------


DEFAULT_START, DEFAULT_END = "2024-10-01", "2026-09-30"  # the sample's two years of history


# Customers are simulated in blocks of at most this many people, each block from its own seeded random stream, and
# written before the next block starts: memory stays that of one block whatever ``n_customers`` is (about 0.8 GB
# at 25,000), and a sample of up to one block is exactly what a single block gives.
GENERATOR_BLOCK = 25_000
MAX_CUSTOMERS = 2_000_000  # order ids O1000000.. stay clear of the planted bad ids O8888888 and O9000000..
UNKNOWN_CUSTOMER = "C999999"  # the planted order of a customer who does not exist; never given to an account


def generate(
    raw_dir: str | Path,
    truth_dir: str | Path,
    n_customers: int = 5000,
    seed: int = 42,
    start: str = DEFAULT_START,
    end: str = DEFAULT_END,
    block_size: int = GENERATOR_BLOCK,
) -> GenerationSummary:
    """Write the full set of raw sources and the truth files.

    Deterministic: the same arguments give byte-identical files. People are simulated and written in blocks of
    at most ``block_size`` (see :data:`GENERATOR_BLOCK`), so memory does not grow with ``n_customers``; ids,
    e-mail addresses and phone numbers stay unique across blocks, and every block carries its share of the
    planted dirt.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> generate(d / "raw", d / "truth", n_customers=200).row_counts["customers"] > 200
    True
    """
    if block_size < 50:
        raise ValueError(f"block_size must be at least 50 to populate every segment; got {block_size}")
    if not 50 <= n_customers <= MAX_CUSTOMERS:
        raise ValueError(f"n_customers must be at least 50 (to populate every segment) and at most "
                         f"{MAX_CUSTOMERS:,}; got {n_customers:,}")
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    t_start, t_end = pd.Timestamp(start), pd.Timestamp(end)
    horizon = float((t_end - t_start).days) + 1.0 - 1e-6  # last instant of the end day
    n_blocks = -(-n_customers // block_size)
    sizes = [n_customers // n_blocks + (b < n_customers % n_blocks) for b in range(n_blocks)]

    ids = _Counters()
    experiments = _ExperimentTruth()
    products = fx = None
    with _RawWriter(raw_dir, t_start) as raw, _TruthWriter(truth_dir, t_start) as truth:
        for b, size in enumerate(sizes):
            # Block 0 draws from the seed itself: a sample of one block is what the generator always wrote.
            rng = np.random.default_rng(seed if b == 0 else [seed, 7, b])
            persons = _make_persons(rng, size, horizon, ids)
            if products is None:
                products = _make_products(rng)
            purchases = _simulate_purchases(rng, persons, horizon)
            accounts = _make_accounts(rng, persons, horizon, ids)
            orders, lines = _make_orders(rng, persons, accounts, purchases, products, horizon, ids)
            returns = _make_returns(rng, persons, orders, lines, horizon, ids)
            if fx is None:
                fx = _make_fx(rng, t_start, t_end)
            events, cookies = _make_web_events(rng, persons, accounts, orders, horizon)
            events.first_id, ids.events = ids.events, ids.events + len(events)
            campaigns, sends, block_experiments = _make_email(rng, persons, accounts, orders, lines, horizon,
                                                              t_start, ids)
            experiments.add(block_experiments)
            writer = FeedbackWriter(rng)
            local = _local_writers(persons, seed, b)
            reviews = _make_reviews(rng, writer, persons, orders, lines, returns, horizon, local, ids)
            surveys = _make_surveys(rng, writer, persons, accounts, orders, horizon, local, ids)
            tickets = _make_tickets(rng, writer, persons, accounts, orders, returns, horizon, local, ids)
            crm = _crm_table(rng, persons, accounts, t_start)
            if b == 0:
                raw.write_reference(products, fx, campaigns)
            raw.write_block(b, rng, crm, orders, lines, returns, events, sends, reviews, surveys, tickets)
            truth.write_block(persons, accounts, purchases, cookies, reviews, surveys, tickets)
            del persons, purchases, accounts, orders, lines, returns, events, cookies, sends, reviews, surveys, \
                tickets, crm
        counts = raw.counts
    _write_truth_meta(truth_dir, experiments.result(), seed, n_customers, start, end)
    summary = GenerationSummary(str(raw_dir), str(truth_dir), seed, n_customers, start, end, counts)
    files = sorted(p.name for p in raw_dir.iterdir() if p.is_file())
    (truth_dir / "generation.json").write_text(json.dumps({**asdict(summary), "files": files,
                                                          "generator_version": GENERATOR_VERSION}, indent=2,
                                                          sort_keys=True) + "\n")
    return summary


@dataclass
class _Counters:
    """Running ids across blocks: every block continues where the previous one stopped."""

    persons: int = 0
    account: int = 100000  # the last customer number given out (C100001, ...)
    orders: int = 0
    returns: int = 0
    sends: int = 0
    reviews: int = 0
    surveys: int = 0
    tickets: int = 0
    events: int = 0
    email_keys: set = field(default_factory=set)  # normalised mailboxes in use, unique across all people


class _ExperimentTruth:
    """The experiments' truth over all blocks: true rates are means over the eligible people of every block."""

    def __init__(self) -> None:
        self.experiments: dict[str, dict] = {}

    def add(self, block: dict[str, dict]) -> None:
        for name, exp in block.items():
            if name not in self.experiments:
                self.experiments[name] = {**exp, "true_open_rate": {}, "true_click_rate": {}, "n_eligible": 0}
            total = self.experiments[name]
            n_old, n_new = total["n_eligible"], exp["n_eligible"]
            for rate in ("true_open_rate", "true_click_rate"):
                total[rate] = dict(exp[rate]) if n_old == 0 else {
                    a: (total[rate][a] * n_old + v * n_new) / (n_old + n_new) for a, v in exp[rate].items()}
            total["n_eligible"] = n_old + n_new

    def result(self) -> dict[str, dict]:
        return self.experiments


def ensure_sample(raw_dir: str | Path, truth_dir: str | Path, n_customers: int = 5000, seed: int = 42,
                  start: str = DEFAULT_START, end: str = DEFAULT_END) -> GenerationSummary:
    """Generate the sample data unless ``truth_dir/generation.json`` shows it exists with these settings."""
    stamp = Path(truth_dir) / "generation.json"
    if stamp.exists():
        old = json.loads(stamp.read_text())
        same = (old.get("n_customers"), old.get("seed"), old.get("start"), old.get("end"),
                old.get("generator_version")) == (n_customers, seed, start, end, GENERATOR_VERSION) \
            and Path(old.get("raw_dir", "")) == Path(raw_dir)
        if same and all((Path(raw_dir) / f).exists() for f in old.get("files", [])):
            return GenerationSummary(**{k: v for k, v in old.items() if k not in ("files", "generator_version")})
    return generate(raw_dir, truth_dir, n_customers, seed, start, end)


def _make_persons(rng: np.random.Generator, n: int, horizon: float, ids: _Counters | None = None) -> pd.DataFrame:
    ids = ids if ids is not None else _Counters()
    first_person = ids.persons
    ids.persons += n
    names = list(SEGMENTS)
    shares = np.array([SEGMENTS[s].share for s in names])
    seg = np.array(names, dtype=object)[rng.choice(len(names), size=n, p=shares / shares.sum())]
    first = np.array(FIRST_NAMES, dtype=object)[rng.integers(len(FIRST_NAMES), size=n)]
    last = np.array(LAST_NAMES, dtype=object)[rng.integers(len(LAST_NAMES), size=n)]
    domains = np.array(EMAIL_DOMAINS, dtype=object)[rng.choice(len(EMAIL_DOMAINS), size=n, p=EMAIL_DOMAIN_WEIGHTS)]
    # Unique mailboxes whose normalised forms never collide between people.
    emails, seen = [], ids.email_keys
    for i in range(n):
        base = f"{_ascii_local(first[i])}.{_ascii_local(last[i])}"
        candidate, k = base, 1
        while (candidate.replace(".", ""), domains[i]) in seen:
            k += 1
            candidate = f"{base}{k}"
        seen.add((candidate.replace(".", ""), domains[i]))
        emails.append(f"{candidate}@{domains[i]}")
    ckeys = list(COUNTRIES)
    cshare = np.array([COUNTRIES[c][0] for c in ckeys])
    country = np.array(ckeys, dtype=object)[rng.choice(len(ckeys), size=n, p=cshare / cshare.sum())]
    region, postcode, phone = [], [], []
    for i, c in enumerate(country):
        _, prefix, digits, regions = COUNTRIES[c]
        region.append(regions[int(rng.integers(len(regions)))])
        pc = str(int(rng.integers(10 ** (digits - 1), 10 ** digits)))
        if c == "NL":
            pc = f"{pc} {chr(65 + int(rng.integers(26)))}{chr(65 + int(rng.integers(26)))}"
        postcode.append(pc)
        phone.append(f"+{prefix}{int(rng.integers(150, 180))}{first_person + i:07d}")  # unique by construction
    age_weights = {
        "loyal_premium": [0.05, 0.2, 0.3, 0.25, 0.15, 0.05], "deal_seeker": [0.15, 0.35, 0.25, 0.15, 0.07, 0.03],
        "impulse_browser": [0.35, 0.4, 0.15, 0.07, 0.02, 0.01], "occasional": [0.05, 0.15, 0.2, 0.25, 0.2, 0.15],
    }
    age = np.empty(n, dtype=object)
    channel = np.empty(n, dtype=object)
    for s in names:
        m = seg == s
        age[m] = np.array(AGE_BANDS, dtype=object)[rng.choice(6, size=m.sum(), p=age_weights[s])]
        channel[m] = _weighted_choice(rng, SEGMENTS[s].channel_weights, int(m.sum()))
    consent_p = np.array([{"loyal_premium": 0.85, "deal_seeker": 0.8, "impulse_browser": 0.45,
                           "occasional": 0.35}[s] for s in seg])
    # Sign-ups grow over the window (a young, growing shop), the last 30 days excluded.
    signup = horizon * 0.05 + (horizon * 0.95 - 2) * np.sqrt(rng.random(n)) - horizon * 0.05 * rng.random(n)
    signup = np.clip(signup, 0, horizon - 2)  # people keep signing up until the end of the window
    return pd.DataFrame({
        "person_id": [f"P{first_person + i + 1:06d}" for i in range(n)], "segment": seg, "first_name": first, "last_name": last,
        "email": emails, "phone": phone, "country": country, "region": region, "postcode": postcode,
        "age_band": age, "acquisition_channel": channel, "consent": rng.random(n) < consent_p,
        "signup_day": signup, "satisfaction": np.array([SEGMENTS[s].satisfaction for s in seg])
        + rng.normal(0, 0.7, n),
    })


def _make_products(rng: np.random.Generator) -> pd.DataFrame:
    base_price = {"Fashion": 45, "Shoes": 80, "Beauty": 22, "Home": 55, "Electronics": 140, "Sports": 60}
    nouns = {
        "Fashion": ["Shirt", "Dress", "Jacket", "Sweater", "Jeans", "Scarf"],
        "Shoes": ["Sneaker", "Boot", "Sandal", "Loafer", "Running Shoe"],
        "Beauty": ["Face Cream", "Serum", "Shampoo", "Lipstick", "Perfume"],
        "Home": ["Cushion", "Lamp", "Vase", "Throw", "Mug Set", "Frame"],
        "Electronics": ["Headphones", "Speaker", "Charger", "Smartwatch", "E-Reader"],
        "Sports": ["Yoga Mat", "Water Bottle", "Backpack", "Running Tights", "Dumbbell Set"],
    }
    adjectives = ["Classic", "Urban", "Nordic", "Essential", "Premium", "Eco", "Soft", "Alpine", "Studio", "Coastal"]
    brands = ["Lumen", "Nordhaus", "Verde", "Kaleo", "Baltique", "Orsa", "Mistral", "Tilia"]
    rows = []
    pid = 1
    for cat in CATEGORIES:
        for _ in range(40):
            price = round(float(base_price[cat] * np.exp(rng.normal(0, 0.55))), 2)
            rows.append({
                "product_id": f"SKU-{pid:05d}", "category": cat,
                "product_name": f"{adjectives[int(rng.integers(len(adjectives)))]} "
                                f"{nouns[cat][int(rng.integers(len(nouns[cat])))]}",
                "brand": brands[int(rng.integers(len(brands)))], "list_price_eur": max(price, 3.99),
            })
            pid += 1
    return pd.DataFrame(rows)


def _simulate_purchases(rng: np.random.Generator, persons: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """BG/NBD: Poisson purchasing at rate lambda while alive; after each repeat purchase drop out with p."""
    n = len(persons)
    lam = np.empty(n)
    p = np.empty(n)
    for name, spec in SEGMENTS.items():
        m = (persons["segment"] == name).to_numpy()
        lam[m] = rng.gamma(spec.r, 1.0 / spec.alpha, size=m.sum())
        p[m] = rng.beta(spec.a, spec.b, size=m.sum())
    buys = rng.random(n) < 0.9  # some registrations never order
    first = persons["signup_day"].to_numpy() + rng.exponential(4.0, n)
    buys &= first < horizon
    persons["lambda"] = lam
    persons["p_dropout"] = p
    persons["is_buyer"] = buys
    persons["first_purchase_day"] = np.where(buys, first, np.nan)
    who = [np.flatnonzero(buys)]
    when = [first[buys]]
    t = first.copy()
    alive = buys.copy()
    death = np.full(n, np.inf)
    while alive.any():
        idx = np.flatnonzero(alive)
        t_next = t[idx] + rng.exponential(1.0 / lam[idx])
        inside = t_next < horizon
        alive[idx[~inside]] = False
        idx, t_next = idx[inside], t_next[inside]
        who.append(idx)
        when.append(t_next)
        t[idx] = t_next
        dies = rng.random(idx.size) < p[idx]
        death[idx[dies]] = t_next[dies]
        alive[idx[dies]] = False
    persons["death_day"] = death
    out = pd.DataFrame({"pidx": np.concatenate(who), "day": np.concatenate(when)})
    return out.sort_values(["pidx", "day"], kind="stable").reset_index(drop=True)


def _make_accounts(rng: np.random.Generator, persons: pd.DataFrame, horizon: float,
                   ids: _Counters | None = None) -> pd.DataFrame:
    """CRM accounts: one per person, plus a second account for ~4% of people (duplicate sign-up)."""
    n = len(persons)
    rows = []
    order = rng.permutation(n)
    dup = np.zeros(n, dtype=bool)
    dup[order[: max(2, int(0.04 * n))]] = True
    ids = ids if ids is not None else _Counters()
    cid = ids.account
    unknown = int(UNKNOWN_CUSTOMER[1:])
    for i in range(n):
        cid += int(rng.integers(1, 4))
        cid += cid == unknown
        rows.append((i, f"C{cid}", "primary", float(persons.at[i, "signup_day"])))
    for i in np.flatnonzero(dup):
        cid += int(rng.integers(1, 4))
        cid += cid == unknown
        s = float(persons.at[i, "signup_day"])
        rows.append((int(i), f"C{cid}", "duplicate", s + (horizon - s) * float(rng.uniform(0.1, 0.8))))
    ids.account = cid
    acc = pd.DataFrame(rows, columns=["pidx", "customer_id", "kind", "created_day"])
    # How the duplicate account identifies itself: e-mail variant, or a new e-mail but the same phone.
    acc["email_kind"] = "same"
    acc["phone_kind"] = 0
    d = acc["kind"] == "duplicate"
    acc.loc[d, "email_kind"] = rng.choice(["upper", "plus", "dots", "new"], size=d.sum(), p=[0.3, 0.25, 0.2, 0.25])
    acc.loc[d, "phone_kind"] = rng.integers(1, 5, size=d.sum())
    return acc


def _make_orders(rng, persons, accounts, purchases, products, horizon, ids: _Counters | None = None):
    ids = ids if ids is not None else _Counters()
    seg = persons["segment"].to_numpy()
    country = persons["country"].to_numpy()
    # plain dicts and arrays: the loop below runs once per order line, and pandas row access costs ~50 us a call
    prim = dict(accounts.loc[accounts["kind"] == "primary", ["pidx", "customer_id"]].itertuples(index=False))
    dups = {int(r.pidx): (float(r.created_day), r.customer_id)
            for r in accounts[accounts["kind"] == "duplicate"].itertuples(index=False)}
    prod_by_cat = {c: products[products["category"] == c].reset_index(drop=True) for c in CATEGORIES}
    ids_by_cat = {c: pool["product_id"].tolist() for c, pool in prod_by_cat.items()}
    price_by_cat = {c: pool["list_price_eur"].to_numpy() for c, pool in prod_by_cat.items()}
    choice_p: dict[tuple[float, str], _Choice] = {}  # product choice per price tilt and category
    payment = _Choice([0.32, 0.28, 0.15, 0.12, 0.08, 0.05])
    # Cancelled attempts are extra orders on top of the purchase process.
    n_cancel = int(0.03 * len(purchases))
    cancel = purchases.sample(n=n_cancel, random_state=int(rng.integers(1 << 30))).copy()
    cancel["day"] = cancel["day"] + rng.uniform(0.01, 0.2, n_cancel)
    cancel["cancelled"] = True
    allp = pd.concat([purchases.assign(cancelled=False), cancel]).sort_values(["day"], kind="stable")
    allp = allp[allp["day"] < horizon].reset_index(drop=True)
    order_rows, line_rows = [], []
    for k, (pidx, day, cancelled) in enumerate(allp[["pidx", "day", "cancelled"]].itertuples(index=False)):
        spec = SEGMENTS[seg[pidx]]
        cust = prim[pidx]
        if pidx in dups and day > dups[pidx][0] and rng.random() < 0.5:
            cust = dups[pidx][1]
        oid = f"O{1000000 + ids.orders + k}"
        ctry = country[pidx]
        order_rows.append({
            "order_id": oid, "customer_id": cust, "day": day,
            "channel": "app" if rng.random() < spec.app_share else ("marketplace" if rng.random() < 0.1 else "web"),
            "payment_method": PAYMENT_METHODS[int(payment(rng))],
            "currency": "CHF" if ctry == "CH" else "EUR", "status": "cancelled" if cancelled else "completed",
            "shipping_country": ctry, "pidx": pidx,
        })
        n_lines = 1 + int(rng.poisson(spec.lines_mean))
        cats = _weighted_choice(rng, spec.category_weights, n_lines)
        for j, cat in enumerate(cats):
            key = (spec.price_tilt, cat)
            if key not in choice_p:
                w = np.exp(spec.price_tilt * np.log(price_by_cat[cat]))
                choice_p[key] = _Choice(w / w.sum())
            pick = int(choice_p[key](rng))
            price = float(price_by_cat[cat][pick]) * (FX_EUR_PER_CHF ** -1 if ctry == "CH" else 1.0)
            discount = 0.0
            if rng.random() < spec.discount_affinity:
                discount = float(rng.choice([10, 15, 20, 25, 30]))
            line_rows.append({
                "order_id": oid, "line_no": j + 1, "product_id": ids_by_cat[cat][pick], "category": cat,
                "quantity": 1 + int(rng.random() < 0.15) + int(rng.random() < 0.03),
                "unit_price": round(price, 2), "discount_pct": discount,
            })
    ids.orders += len(order_rows)
    return pd.DataFrame(order_rows), pd.DataFrame(line_rows)


def _make_returns(rng, persons, orders, lines, horizon, ids: _Counters | None = None):
    ids = ids if ids is not None else _Counters()
    seg = persons["segment"].to_numpy()
    o = orders.set_index("order_id")
    done = lines[lines["order_id"].map(o["status"]) == "completed"]
    rr = np.array([SEGMENTS[s].return_rate for s in seg[done["order_id"].map(o["pidx"]).to_numpy()]])
    ret = done[rng.random(len(done)) < rr].copy()
    ret["return_day"] = ret["order_id"].map(o["day"]).to_numpy() + rng.uniform(3, 30, len(ret))
    ret = ret[ret["return_day"] < horizon].reset_index(drop=True)
    ret["return_id"] = [f"R{500000 + ids.returns + i}" for i in range(len(ret))]
    ids.returns += len(ret)
    ret["refund_amount"] = (ret["quantity"] * ret["unit_price"] * (1 - ret["discount_pct"] / 100)).round(2)
    ret["reason"] = np.array(RETURN_REASONS, dtype=object)[rng.integers(len(RETURN_REASONS), size=len(ret))]
    ret["currency"] = ret["order_id"].map(o["currency"]).to_numpy()
    return ret


def _make_fx(rng, t_start, t_end) -> pd.DataFrame:
    months = pd.date_range(t_start.to_period("M").to_timestamp(), t_end, freq="MS")
    drift = np.cumsum(rng.normal(0, 0.006, len(months)))
    return pd.DataFrame({"month": months.strftime("%Y-%m"), "currency": "CHF",
                         "eur_per_unit": np.round(FX_EUR_PER_CHF * np.exp(drift), 4)})


def _make_web_events(rng, persons, accounts, orders, horizon):
    """Sessions with events; every customer cookie is identified at least once (login or e-mail)."""
    n = len(persons)
    seg = persons["segment"].to_numpy()
    # One cookie per device a person uses: the app's install id, a phone browser, a desktop browser.
    # Cookie 3*i + d belongs to person i on device d; cookies that never see a session do not exist.
    devices = np.array(["app", "mobile_web", "desktop"])
    cookie_person = np.repeat(np.arange(n), devices.size)
    cookie_device = np.tile(devices, n)
    cookie_ids = np.array([f"a{int(x):012x}" for x in rng.integers(1 << 40, 1 << 47, cookie_person.size)])
    app = np.array([SEGMENTS[s].app_share for s in seg])

    def device_cookie(person: np.ndarray) -> np.ndarray:
        dev = np.where(rng.random(person.size) < app[person], 0, np.where(rng.random(person.size) < 0.5, 1, 2))
        return devices.size * person + dev

    # Browsing sessions, from sign-up until some weeks after the customer's last purchase.
    signup = persons["signup_day"].to_numpy()
    active_end = np.minimum(horizon, np.where(np.isfinite(persons["death_day"]), persons["death_day"] + 45, horizon))
    active_end = np.maximum(active_end, signup + 1)
    rate = np.array([SEGMENTS[s].sessions_per_month for s in seg])
    n_browse = rng.poisson(rate * (active_end - signup) / 30.4)
    b_person = np.repeat(np.arange(n), n_browse)
    b_day = signup[b_person] + rng.random(b_person.size) * (active_end - signup)[b_person]
    # Buying sessions: one per order, logged in as the ordering account.
    cust_to_pidx = accounts.set_index("customer_id")["pidx"]
    o_person = orders["customer_id"].map(cust_to_pidx).to_numpy()
    sess_person = np.concatenate([b_person, o_person])
    sess_day = np.concatenate([b_day, orders["day"].to_numpy() - rng.uniform(0.001, 0.02, len(orders))])
    sess_login = np.concatenate([np.where(rng.random(b_person.size) < 0.3, "", None),
                                 orders["customer_id"].to_numpy()]).astype(object)
    # A browsing session that logs in uses the person's primary account.
    prim = accounts[accounts["kind"] == "primary"].set_index("pidx")["customer_id"]
    browse_login = sess_login[: b_person.size] == ""
    sess_login[: b_person.size][browse_login] = prim.loc[b_person[browse_login]].to_numpy()
    sess_is_order = np.r_[np.zeros(b_person.size, bool), np.ones(len(orders), bool)]
    sess_cookie = device_cookie(sess_person)
    # Make sure every cookie in use is identified at least once, and every person has a session.
    seen_id = np.zeros(cookie_person.size, dtype=bool)
    seen_id[sess_cookie[pd.notna(sess_login)]] = True
    seen_any = np.zeros(cookie_person.size, dtype=bool)
    seen_any[sess_cookie] = True
    email_capture = np.zeros(sess_person.size, dtype=bool)
    # Cookies with sessions but no login get an e-mail capture in their first session;
    # people with no session at all get one newsletter-signup session.
    with_sess = np.flatnonzero(seen_any & ~seen_id)
    first_sess = pd.Series(np.arange(sess_person.size)).groupby(sess_cookie).min()
    email_capture[first_sess.loc[with_sess].to_numpy()] = True
    extra_cookie = device_cookie(np.setdiff1d(np.arange(n), sess_person))
    e_person = cookie_person[extra_cookie]
    e_day = signup[e_person] + rng.random(extra_cookie.size) * (active_end - signup)[e_person]
    sess_person = np.concatenate([sess_person, e_person])
    sess_day = np.concatenate([sess_day, e_day])
    sess_login = np.concatenate([sess_login, np.full(extra_cookie.size, None, dtype=object)])
    sess_is_order = np.concatenate([sess_is_order, np.zeros(extra_cookie.size, bool)])
    sess_cookie = np.concatenate([sess_cookie, extra_cookie])
    email_capture = np.concatenate([email_capture, np.ones(extra_cookie.size, bool)])
    # Anonymous visitors who never identify themselves.
    n_anon = int(0.5 * n)
    anon_cookies = np.array([f"a{int(x):012x}" for x in rng.integers(1 << 40, 1 << 47, n_anon)])
    anon_sessions = 1 + rng.poisson(0.6, n_anon)
    anon_cookie_idx = np.repeat(np.arange(n_anon), anon_sessions)
    all_cookie_ids = np.concatenate([cookie_ids, anon_cookies])
    all_cookie_device = np.concatenate([cookie_device, np.where(rng.random(n_anon) < 0.6, "mobile_web", "desktop")])
    sess_cookie_all = np.concatenate([sess_cookie, cookie_person.size + anon_cookie_idx])
    sess_day_all = np.concatenate([sess_day, rng.random(anon_cookie_idx.size) * horizon])
    sess_login = np.concatenate([sess_login, np.full(anon_cookie_idx.size, None, dtype=object)])
    sess_is_order = np.concatenate([sess_is_order, np.zeros(anon_cookie_idx.size, bool)])
    email_capture = np.concatenate([email_capture, np.zeros(anon_cookie_idx.size, bool)])
    sess_person_all = np.concatenate([sess_person, np.full(anon_cookie_idx.size, -1)])
    n_sess = sess_cookie_all.size
    sess_ids = np.array([f"s{int(x):014x}" for x in rng.integers(1 << 50, 1 << 55, n_sess)])
    ips = [f"{int(a)}.{int(b)}.{int(c)}.{int(d)}" for a, b, c, d in
           zip(rng.integers(11, 223, n_sess), rng.integers(0, 256, n_sess), rng.integers(0, 256, n_sess),
               rng.integers(1, 255, n_sess))]
    # Events within sessions.
    n_pv = 1 + rng.poisson(1.0, n_sess)
    n_prod = rng.poisson(np.where(sess_is_order, 2.0, 0.8))
    cart = sess_is_order | (rng.random(n_sess) < 0.12)
    click = rng.random(n_sess) < 0.25
    emails = persons["email"].to_numpy()
    rows_sess = np.repeat(np.arange(n_sess), n_pv)
    parts = [pd.DataFrame({"s": rows_sess, "event_type": "page_view", "k": 0})]
    parts.append(pd.DataFrame({"s": np.repeat(np.arange(n_sess), n_prod), "event_type": "product_view", "k": 1}))
    parts.append(pd.DataFrame({"s": np.flatnonzero(cart), "event_type": "add_to_cart", "k": 2}))
    parts.append(pd.DataFrame({"s": np.flatnonzero(click), "event_type": "click", "k": 1}))
    login_s = np.flatnonzero(pd.notna(sess_login))
    parts.append(pd.DataFrame({"s": login_s, "event_type": "login", "k": -1}))
    cap_s = np.flatnonzero(email_capture)
    parts.append(pd.DataFrame({"s": cap_s, "event_type": "email_capture", "k": -1}))
    parts.append(pd.DataFrame({"s": np.flatnonzero(sess_is_order), "event_type": "checkout", "k": 3}))
    ev = pd.concat(parts, ignore_index=True)
    ev["offset"] = np.where(ev["k"] < 0, 0.0, rng.uniform(0, 0.015, len(ev))) + (ev["k"].clip(lower=0) * 0.002)
    ev = ev.sort_values(["s", "offset"], kind="stable").reset_index(drop=True)
    s = ev["s"].to_numpy()
    day = sess_day_all[s] + ev["offset"].to_numpy()
    etype = ev["event_type"].to_numpy()
    del ev  # from here on, numbers per event; the text columns are made once, in the final order
    is_login, is_cap = etype == "login", etype == "email_capture"
    cap_person = sess_person_all[s[is_cap]]
    kinds = rng.choice(["same", "upper", "plus", "dots"], size=cap_person.size, p=[0.55, 0.2, 0.15, 0.1])
    email = np.full(s.size, None, dtype=object)
    email[is_cap] = [email_variant(emails[p], k) for p, k in zip(cap_person, kinds)]
    sku = rng.integers(1, 241, s.size)
    cats = np.array([c.lower() for c in CATEGORIES], dtype=object)
    cat = rng.integers(len(cats), size=s.size)
    # sessions that start just before the end stop at the end of the window; then order by time and session
    keep = np.flatnonzero(day < horizon)
    _, sess_rank = np.unique(sess_ids, return_inverse=True)
    order = keep[np.lexsort((sess_rank[s[keep]], day[keep]))]  # stable, as sort_values(["day", "session_id"])
    events = _Events(day=day[order], session=s[order], kind=etype[order], login=is_login[order],
                     email=email[order], sku=sku[order], cat=cat[order], sess_ids=sess_ids,
                     sess_cookie=sess_cookie_all, sess_login=sess_login, cookie_ids=all_cookie_ids,
                     cookie_device=all_cookie_device, ips=np.array(ips, dtype=object), cats=cats)
    cookies = pd.DataFrame({"anonymous_id": all_cookie_ids,
                            "pidx": np.concatenate([cookie_person, np.full(n_anon, -1)])})
    seen = np.zeros(all_cookie_ids.size, dtype=bool)
    seen[sess_cookie_all[events.session]] = True  # cookies with at least one event in the window
    cookies = cookies[seen].reset_index(drop=True)
    return events, cookies


@dataclass
class _Events:
    """The web events as numbers per event, in their final order; :meth:`frame` makes the text columns of a slice.

    The text of millions of events (ids, pages, addresses) would take gigabytes at 50,000 customers; the writer
    asks for one chunk at a time instead."""

    day: np.ndarray
    session: np.ndarray
    kind: np.ndarray
    login: np.ndarray
    email: np.ndarray
    sku: np.ndarray
    cat: np.ndarray
    sess_ids: np.ndarray
    sess_cookie: np.ndarray
    sess_login: np.ndarray
    cookie_ids: np.ndarray
    cookie_device: np.ndarray
    ips: np.ndarray
    cats: np.ndarray
    first_id: int = 0  # the number of this block's first event in the whole export

    def __len__(self) -> int:
        return int(self.day.size)

    def frame(self, lo: int, hi: int) -> pd.DataFrame:
        """Events ``lo`` to ``hi`` (exclusive) with every column of the export."""
        so, kind = self.session[lo:hi], self.kind[lo:hi]
        page = np.empty(so.size, dtype=object)
        viewed = kind == "product_view"
        page[viewed] = ["/p/SKU-%05d" % x for x in self.sku[lo:hi][viewed]]
        page[~viewed] = "/c/" + self.cats[self.cat[lo:hi][~viewed]]
        page[(kind == "add_to_cart") | (kind == "checkout")] = "/cart"
        page[(kind == "login") | (kind == "email_capture")] = "/account"
        cookie = self.sess_cookie[so]
        return pd.DataFrame({
            "event_id": [f"e{i:09d}" for i in range(self.first_id + lo, self.first_id + lo + so.size)], "day": self.day[lo:hi],
            "session_id": self.sess_ids[so], "anonymous_id": self.cookie_ids[cookie], "event_type": kind,
            "device": self.cookie_device[cookie], "page": page,
            "customer_id": np.where(self.login[lo:hi], self.sess_login[so], None), "email": self.email[lo:hi],
            "ip": self.ips[so]}, index=pd.RangeIndex(lo, lo + so.size))


def _make_email(rng, persons, accounts, orders, lines, horizon, t_start, ids: _Counters | None = None):
    """Regular campaigns every two weeks, plus a subject-line and a send-time A/B test."""
    seg = persons["segment"].to_numpy()
    prim = accounts[accounts["kind"] == "primary"].set_index("pidx")["customer_id"]
    consent = persons["consent"].to_numpy()
    signup = persons["signup_day"].to_numpy()
    death = persons["death_day"].to_numpy()
    lam = persons["lambda"].to_numpy()
    open_p = np.array([SEGMENTS[s].email_open_rate for s in seg])
    click_p = np.array([SEGMENTS[s].email_click_rate for s in seg])
    # Spend per order for each person, for attributed revenue.
    amount = (lines["quantity"] * lines["unit_price"] * (1 - lines["discount_pct"] / 100)).groupby(
        lines["order_id"]).sum()
    o = orders.assign(amount=orders["order_id"].map(amount))
    cust_to_pidx = accounts.set_index("customer_id")["pidx"]
    aov = o.groupby(o["customer_id"].map(cust_to_pidx))["amount"].mean().reindex(range(len(persons)))
    aov = aov.fillna(aov.median()).to_numpy()
    emails = persons["email"].to_numpy()
    experiments: dict[str, dict] = {}
    tests = {
        int(horizon * 0.62): ("subject_line_2026", {"control": 1.0, "personalised": 1.15}, "open", [0.5, 0.5],
                              "Subject line: generic vs first-name personalised"),
        int(horizon * 0.8): ("send_time_2026", {"morning_08": 1.0, "noon_12": 1.0, "evening_19": 1.25}, "click",
                             [1 / 3, 1 / 3, 1 / 3], "Send time: 08:00 vs 12:00 vs 19:00"),
    }
    campaigns, sends = [], []
    day = 10.0
    k = 0
    while day < horizon - 3:
        k += 1
        test = tests.get(int(day))
        for td in tests:
            if test is None and abs(td - day) < 7:
                day = float(td)
                test = tests[td]
        cid = f"CMP{k:03d}"
        eligible = np.flatnonzero(consent & (signup < day))
        alive = death[eligible] > day - 60
        if test is None:
            variants = np.full(eligible.size, "all", dtype=object)
            mult_open = mult_click = np.ones(eligible.size)
            name, kind = f"Newsletter {k}", "newsletter" if k % 3 else "promotion"
            experiment, split = None, None
        else:
            experiment, arms, metric, split, name = test
            kind = "ab_test"
            arm_names = list(arms)
            variants = np.array(arm_names, dtype=object)[rng.choice(len(arm_names), size=eligible.size, p=split)]
            mult = np.array([arms[v] for v in variants])
            mult_open = mult if metric == "open" else np.ones(eligible.size)
            mult_click = mult
            experiments[experiment] = {
                "campaign_id": cid, "metric": metric, "arms": arms, "intended_split": dict(zip(arm_names, split)),
                "control": arm_names[0], "description": name,
            }
        po = np.clip(open_p[eligible] * np.where(alive, 1.0, 0.5) * mult_open, 0, 0.95)
        opened = rng.random(eligible.size) < po
        pc = np.clip(click_p[eligible] / open_p[eligible] * mult_click / mult_open, 0, 0.95)
        clicked = opened & (rng.random(eligible.size) < pc)
        # Conversion depends on how often the person buys anyway (what CUPED exploits).
        pconv = np.clip(0.15 + 6.0 * lam[eligible], 0, 0.9) * alive
        converted = clicked & (rng.random(eligible.size) < pconv)
        revenue = np.where(converted, np.round(aov[eligible] * np.exp(rng.normal(0, 0.3, eligible.size)), 2), 0.0)
        if experiment:
            # Truth for this experiment: expected rates per arm over the eligible population.
            exp = experiments[experiment]
            base_open = np.clip(open_p[eligible] * np.where(alive, 1.0, 0.5), 0, 0.95)
            base_click = base_open * np.clip(click_p[eligible] / open_p[eligible], 0, 0.95)
            exp["true_open_rate"] = {a: float(np.mean(np.clip(base_open * (m if metric == "open" else 1), 0, .95)))
                                     for a, m in arms.items()}
            exp["true_click_rate"] = {a: float(np.mean(base_click * m)) for a, m in arms.items()}
            exp["n_eligible"] = int(eligible.size)
            exp["send_day"] = float(day)
        hour = 9.0
        if experiment and experiment.startswith("send_time"):
            hour_map = {"morning_08": 8.0, "noon_12": 12.0, "evening_19": 19.0}
            hours = np.array([hour_map[v] for v in variants])
        else:
            hours = np.full(eligible.size, hour)
        sent = np.floor(day) + hours / 24 + rng.uniform(0, 0.01, eligible.size)
        open_at = sent + rng.exponential(0.3, eligible.size)
        click_at = open_at + rng.exponential(0.01, eligible.size)
        campaigns.append({"campaign_id": cid, "name": name, "type": kind, "send_day": float(day),
                          "experiment": experiment or "", "intended_split": json.dumps(dict(zip(
                              list(test[1]), test[3]))) if test else ""})
        sends.append(pd.DataFrame({
            "campaign_id": cid, "pidx": eligible, "customer_id": prim.loc[eligible].to_numpy(),
            "email": emails[eligible], "variant": variants, "sent_day": sent,
            "open_day": np.where(opened, open_at, np.nan), "click_day": np.where(clicked, click_at, np.nan),
            "converted": converted, "revenue_eur": revenue,
        }))
        day += 14.0
    camp = pd.DataFrame(campaigns)
    s = pd.concat(sends, ignore_index=True)
    ids = ids if ids is not None else _Counters()
    s["send_id"] = [f"M{ids.sends + i:08d}" for i in range(len(s))]
    ids.sends += len(s)
    return camp, s, experiments


def _review_topics(rng, n: int, returned: bool) -> list[str]:
    pool = list(TOPICS)
    weights = np.array([3, 4, 2, 2, 1, 1, 1, 1], dtype=float)
    if returned:
        weights[list(TOPICS).index("returns")] += 3
        weights[list(TOPICS).index("fit")] += 2
    idx = rng.choice(len(pool), size=n, replace=False, p=weights / weights.sum())
    return [pool[i] for i in idx]


def _label_from_score(score: float, lo: float, hi: float) -> str:
    return "negative" if score < lo else ("positive" if score > hi else "neutral")


# Share of customers who write their feedback in German, by country (the rest write in English).
GERMAN_WRITERS = {"DE": 0.5, "AT": 0.5, "CH": 0.3}


def _local_writers(persons: pd.DataFrame, seed: int, block: int = 0) -> tuple[np.ndarray, GermanFeedbackWriter]:
    """Who writes in German, and the German writer. Both draw from their own generator, so the English texts and
    every other table stay exactly what they were without German feedback."""
    rng = np.random.default_rng([seed, 49] if block == 0 else [seed, 49, block])
    share = persons["country"].map(GERMAN_WRITERS).fillna(0.0).to_numpy()
    return rng.random(len(persons)) < share, GermanFeedbackWriter(rng)


def _write(writer, local, pidx: int, label: str, topics: list[str]):
    """The text a customer writes: the English writer always runs (its random draws keep the rest of the sample
    unchanged); a German-writing customer's text is then written in German instead."""
    fb = writer.write(label, topics)
    if local is not None and local[0][pidx]:
        fb = local[1].write(label, topics)
    return fb


def _title(writer, local, pidx: int, label: str) -> str:
    title = writer.title(label)
    return local[1].title(label) if local is not None and local[0][pidx] else title


def _make_reviews(rng, writer, persons, orders, lines, returns, horizon, local=None, ids: _Counters | None = None):
    ids = ids if ids is not None else _Counters()
    seg = persons["segment"].to_numpy()
    sat = persons["satisfaction"].to_numpy()
    done = orders[orders["status"] == "completed"]
    rate = np.array([SEGMENTS[s].review_rate for s in seg[done["pidx"].to_numpy()]])
    chosen = done[rng.random(len(done)) < rate]
    first_line = lines.drop_duplicates("order_id").set_index("order_id")
    returned_orders = set(returns["order_id"])
    rows = []
    for o in chosen.itertuples(index=False):
        returned = o.order_id in returned_orders
        latent = 3.4 + 0.9 * sat[o.pidx] - (1.2 if returned else 0.0) + rng.normal(0, 0.8)
        stars = int(np.clip(np.round(latent), 1, 5))
        label = _label_from_score(stars, 2.5, 3.5)
        fb = _write(writer, local, o.pidx, label, _review_topics(rng, 1 + int(rng.random() < 0.45), returned))
        day = o.day + rng.uniform(5, 25)
        if day >= horizon:
            continue
        rows.append({"review_id": f"RV{ids.reviews + len(rows) + 1:06d}", "customer_id": o.customer_id, "order_id": o.order_id,
                     "product_id": first_line.at[o.order_id, "product_id"], "day": day, "stars": stars,
                     "title": _title(writer, local, o.pidx, label), "text": fb.text, "label": label,
                     "topics": "|".join(fb.topics),
                     "pidx": o.pidx})
    ids.reviews += len(rows)
    return pd.DataFrame(rows)


def _make_surveys(rng, writer, persons, accounts, orders, horizon, local=None, ids: _Counters | None = None):
    ids = ids if ids is not None else _Counters()
    sat = persons["satisfaction"].to_numpy()
    emails = persons["email"].to_numpy()
    done = orders[orders["status"] == "completed"]
    chosen = done[rng.random(len(done)) < 0.12]
    rows = []
    for o in chosen.itertuples(index=False):
        day = o.day + rng.uniform(7, 14)
        if day >= horizon:
            continue
        nps = int(np.clip(np.round(7.6 + 1.5 * sat[o.pidx] + rng.normal(0, 1.0)), 0, 10))
        label = "positive" if nps >= 9 else ("neutral" if nps >= 7 else "negative")
        text, topics = "", ""
        if rng.random() < 0.6:
            fb = _write(writer, local, o.pidx, label, _review_topics(rng, 1 + int(rng.random() < 0.3), False))
            text, topics = fb.text, "|".join(fb.topics)
        kind = rng.choice(["same", "upper", "plus"], p=[0.8, 0.15, 0.05])
        rows.append({"response_id": f"NPS{ids.surveys + len(rows) + 1:06d}", "email": email_variant(emails[o.pidx], kind),
                     "day": day, "nps": nps, "comment": text, "label": label if text else "", "topics": topics,
                     "pidx": o.pidx})
    ids.surveys += len(rows)
    return pd.DataFrame(rows)


def _make_tickets(rng, writer, persons, accounts, orders, returns, horizon, local=None,
                  ids: _Counters | None = None):
    ids = ids if ids is not None else _Counters()
    emails = persons["email"].to_numpy()
    returned = set(returns["order_id"])
    done = orders[orders["status"] != "x"]
    p = np.where(done["order_id"].isin(returned), 0.18, 0.04)
    chosen = done[rng.random(len(done)) < p]
    topic_map = {"delivery": "delivery", "returns": "returns", "quality": "product", "website": "account",
                 "service": "other", "price": "billing"}
    subjects = {"delivery": ["Where is my order?", "Parcel not arrived", "Delivery delayed"],
                "returns": ["Refund status", "Return label", "Exchange request"],
                "product": ["Item damaged", "Product defect", "Quality issue"],
                "account": ["Cannot log in", "Password reset", "App problem"],
                "billing": ["Charged twice", "Invoice request", "Voucher not applied"],
                "other": ["Question", "Feedback", "Complaint"]}
    rows = []
    for o in chosen.itertuples(index=False):
        day = o.day + rng.uniform(1, 20)
        if day >= horizon:
            continue
        source_topic = ("returns" if o.order_id in returned and rng.random() < 0.6
                        else str(rng.choice(["delivery", "quality", "website", "service", "price"],
                                            p=[0.4, 0.2, 0.15, 0.1, 0.15])))
        topic = topic_map[source_topic]
        label = str(rng.choice(["negative", "neutral", "positive"], p=[0.6, 0.33, 0.07]))
        fb = _write(writer, local, o.pidx, label, [source_topic])
        channel = str(rng.choice(["email", "chat", "phone"], p=[0.5, 0.3, 0.2]))
        email = email_variant(emails[o.pidx], str(rng.choice(["same", "upper"], p=[0.85, 0.15])))
        rows.append({
            "ticket_id": f"T{ids.tickets + len(rows) + 1:06d}", "day": day,
            "requester_email": email if channel != "phone" else "",
            "customer_ref": o.customer_id if channel != "email" else "",
            "channel": channel, "topic": topic,
            "subject": subjects[topic][int(rng.integers(3))], "description": fb.text,
            "status": "open" if day > horizon - 5 and rng.random() < 0.7 else "solved",
            "resolution_hours": round(float(rng.lognormal(2.5 if channel == "email" else 1.2, 0.8)), 1),
            "label": label, "topics": "|".join(fb.topics), "pidx": o.pidx,
        })
    ids.tickets += len(rows)
    return pd.DataFrame(rows)


def _crm_table(rng, persons, accounts, t_start) -> pd.DataFrame:
    rows = []
    person_rows = persons.to_dict("records")  # plain dicts: pandas row access per account is the slow part
    for a in accounts.itertuples(index=False):
        p = person_rows[a.pidx]
        cc = COUNTRIES[p["country"]][1]
        email = p["email"]
        if a.kind == "duplicate":
            if a.email_kind == "new":
                local, dom = email.split("@")
                email = f"{local}.work@{'outlook.com' if dom != 'outlook.com' else 'gmx.de'}"
            else:
                email = email_variant(email, a.email_kind)
        elif rng.random() < 0.05:
            email = email_variant(email, "upper")
        phone = phone_variant(p["phone"], cc, int(a.phone_kind) if a.kind == "duplicate" else
                              int(rng.choice(5, p=[0.4, 0.25, 0.2, 0.1, 0.05])))
        if a.kind == "primary" and rng.random() < 0.12:
            phone = None
        rows.append({
            "customer_id": a.customer_id, "first_name": p["first_name"], "last_name": p["last_name"],
            "email": email, "phone": phone, "postcode": p["postcode"], "region": p["region"],
            "country": p["country"], "age_band": None if rng.random() < 0.06 else p["age_band"],
            "signup_date": (t_start + pd.Timedelta(days=float(a.created_day))).strftime("%Y-%m-%d"),
            "acquisition_channel": p["acquisition_channel"] if a.kind == "primary" else "organic_search",
            "marketing_consent": int(bool(p["consent"])),
        })
    crm = pd.DataFrame(rows)
    # Legacy-import dirt: exact duplicate rows, an invalid e-mail, a sign-up date in the future.
    dup_rows = crm.sample(n=min(6, len(crm)), random_state=int(rng.integers(1 << 30)))
    bad = crm.sample(n=3, random_state=int(rng.integers(1 << 30))).index
    crm.loc[bad[0], "email"] = "n/a"
    crm.loc[bad[1], "signup_date"] = "2031-01-01"
    crm.loc[bad[2], "marketing_consent"] = 7
    return pd.concat([crm, dup_rows]).sort_values("customer_id", kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------


def _fmt_ts(start: pd.Timestamp, days, fmt: str = "%Y-%m-%d %H:%M:%S") -> np.ndarray:
    return _to_ts(start, days).strftime(fmt).to_numpy(dtype=object)


EVENT_CHUNK = 200_000  # web events serialised per chunk


def _write_xlsx(frame: pd.DataFrame, path: Path, sheet: str, when: pd.Timestamp) -> None:
    """Write ``frame`` as an Excel workbook whose bytes depend on the data only: openpyxl stamps the save time
    into docProps/core.xml and every zip entry, so both are set to ``when`` (the data's start)."""
    import io
    import re
    import zipfile

    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False, sheet_name=sheet)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp.encode(), data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6]), data,
                         compress_type=zipfile.ZIP_DEFLATED)


class _ParquetAppender:
    """Parquet files written one block at a time (one row group per block), with the first block's schema."""

    def __init__(self) -> None:
        self._writers: dict[Path, object] = {}

    def append(self, path: Path, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = self._writers.get(path)
        if writer is None:
            writer = self._writers[path] = pq.ParquetWriter(path, table.schema)
        else:
            table = table.cast(writer.schema)
        writer.write_table(table)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class _RawWriter:
    """The raw sources, appended block by block: CSV files grow, the CRM database takes more rows, the event export
    stays one gzip stream and the e-mail sends one Parquet file."""

    def __init__(self, raw_dir: Path, t_start: pd.Timestamp) -> None:
        self.raw_dir, self.t_start = raw_dir, t_start
        self.counts: dict[str, int] = {}
        for name in ["orders.csv", "order_lines.csv", "returns.csv", "reviews.csv", "surveys.csv", "tickets.csv",
                     "crm.sqlite", "email_sends.parquet", "web_events.jsonl.gz"]:
            (raw_dir / name).unlink(missing_ok=True)  # rebuilt from scratch so that every file is deterministic
        self._db = sqlite3.connect(raw_dir / "crm.sqlite")
        self._db.execute("""CREATE TABLE customers (customer_id TEXT, first_name TEXT, last_name TEXT, email TEXT,
            phone TEXT, postcode TEXT, region TEXT, country TEXT, age_band TEXT, signup_date TEXT,
            acquisition_channel TEXT, marketing_consent INTEGER)""")
        # Gzipped as event exports usually are; mtime=0 keeps the file byte-identical across runs; level 1, the
        # fastest: the sample is written on every fresh run and read once (9.0 MB at 5,000 customers against 7.2 MB
        # at gzip's default level 6).
        self._events_file = open(raw_dir / "web_events.jsonl.gz", "wb")
        self._events = gzip.GzipFile(fileobj=self._events_file, mode="wb", mtime=0, compresslevel=1)
        self._parquet = _ParquetAppender()

    def __enter__(self) -> _RawWriter:
        return self

    def __exit__(self, *exc) -> None:
        self._db.commit()
        self._db.close()
        self._events.close()
        self._events_file.close()
        self._parquet.close()

    def _add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def _csv(self, frame: pd.DataFrame, name: str, **kwargs) -> None:
        path = self.raw_dir / name
        frame.to_csv(path, index=False, mode="a", header=not path.exists(), **kwargs)

    def write_reference(self, products: pd.DataFrame, fx: pd.DataFrame, campaigns: pd.DataFrame) -> None:
        """The tables every block shares: the catalogue, the exchange rates and the campaign calendar."""
        _write_xlsx(products, self.raw_dir / "products.xlsx", "catalogue", self.t_start)
        self.counts["products"] = len(products)
        fx.to_csv(self.raw_dir / "fx_rates.csv", index=False)
        self.counts["fx_rates"] = len(fx)
        c = campaigns.copy()
        c["sent_at"] = _fmt_ts(self.t_start, c["send_day"], "%Y-%m-%d")
        c[["campaign_id", "name", "type", "sent_at", "experiment", "intended_split"]].to_csv(
            self.raw_dir / "campaigns.csv", index=False)
        self.counts["campaigns"] = len(c)

    def write_block(self, block, rng, crm, orders, lines, returns, events, sends, reviews, surveys, tickets) -> None:
        """Append one block of people's records, with this block's share of the planted dirt."""
        t_start = self.t_start
        self._db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                             [tuple(None if pd.isna(v) else v for v in r) for r in crm.itertuples(index=False)])
        self._db.commit()
        self._add("customers", len(crm))

        # Orders: mostly ISO timestamps, some rows from a legacy shop system in other formats.
        o = orders.copy()
        o["order_date"] = _fmt_ts(t_start, o["day"])
        legacy = rng.random(len(o)) < 0.03
        o.loc[legacy, "order_date"] = _fmt_ts(t_start, o.loc[legacy, "day"], "%d.%m.%Y %H:%M")
        slash = (~legacy) & (rng.random(len(o)) < 0.02)
        o.loc[slash, "order_date"] = _fmt_ts(t_start, o.loc[slash, "day"], "%Y/%m/%d")
        o["status"] = np.where(rng.random(len(o)) < 0.05, o["status"].str.upper(), o["status"])
        o = o[["order_id", "customer_id", "order_date", "channel", "payment_method", "currency", "status",
               "shipping_country"]]
        # Malformed rows: unknown customer, unparseable date, date in the future, unknown status.
        bad = o.sample(n=4, random_state=int(rng.integers(1 << 30))).copy()
        bad["order_id"] = [f"O{9000000 + 4 * block + i}" for i in range(4)]
        bad.iloc[0, bad.columns.get_loc("customer_id")] = UNKNOWN_CUSTOMER
        bad.iloc[1, bad.columns.get_loc("order_date")] = "31.02.2025 10:00"
        bad.iloc[2, bad.columns.get_loc("order_date")] = "2031-05-01 12:00:00"
        bad.iloc[3, bad.columns.get_loc("status")] = "lost_in_space"
        dups = o.sample(frac=0.005, random_state=int(rng.integers(1 << 30)))
        o = pd.concat([o, bad, dups]).sort_values("order_id", kind="stable")
        self._csv(o, "orders.csv")
        self._add("orders", len(o))

        ln = lines.copy()
        bad_ids = list(bad["order_id"])
        # A line for every malformed order, plus malformed lines: negative price, zero quantity, an outlier,
        # and a line pointing to an order that does not exist.
        extra = ln.sample(n=8, random_state=int(rng.integers(1 << 30))).copy()
        extra["order_id"] = bad_ids + list(extra["order_id"].iloc[4:8])
        extra["line_no"] = [1, 1, 1, 1, 91, 92, 93, 94]
        extra.iloc[4, extra.columns.get_loc("unit_price")] = -19.99
        extra.iloc[5, extra.columns.get_loc("quantity")] = 0
        extra.iloc[6, extra.columns.get_loc("quantity")] = 250
        extra.iloc[7, extra.columns.get_loc("order_id")] = "O8888888"
        dups = ln.sample(frac=0.003, random_state=int(rng.integers(1 << 30)))
        ln = pd.concat([ln, extra, dups]).sort_values(["order_id", "line_no"], kind="stable")
        self._csv(ln, "order_lines.csv")
        self._add("order_lines", len(ln))

        # Returns: a German warehouse system export (semicolon, Latin-1, decimal comma, dd.mm.yyyy).
        r = returns.copy()
        r["return_date"] = _fmt_ts(t_start, r["return_day"], "%d.%m.%Y")
        r["refund_amount"] = r["refund_amount"].map(lambda v: f"{v:,.2f}".replace(",", "X").replace(".", ",")
                                                    .replace("X", "."))
        r = r[["return_id", "order_id", "product_id", "quantity", "refund_amount", "currency", "return_date",
               "reason"]]
        self._csv(r, "returns.csv", sep=";", encoding="latin-1")
        self._add("returns", len(r))

        # Web/app events as JSON Lines, with a few truncated lines as a broken export leaves them. Written in
        # chunks, so memory holds one chunk's JSON text, not the whole file's.
        columns = ["event_id", "ts", "session_id", "anonymous_id", "event_type", "device", "page", "customer_id",
                   "email", "ip"]
        truncated = {int(pos) for pos in rng.choice(len(events), size=3, replace=False)}
        n_lines = 0
        for lo in range(0, len(events), EVENT_CHUNK):
            chunk = events.frame(lo, lo + EVENT_CHUNK)
            chunk["ts"] = _fmt_ts(t_start, chunk["day"], "%Y-%m-%dT%H:%M:%SZ")
            json_lines = chunk[columns].to_json(orient="records", lines=True, force_ascii=False).splitlines()
            for pos in truncated:
                if n_lines <= pos < n_lines + len(json_lines):
                    json_lines[pos - n_lines] = json_lines[pos - n_lines][: len(json_lines[pos - n_lines]) // 2]
            self._events.write(("\n".join(json_lines) + "\n").encode("utf-8"))
            n_lines += len(json_lines)
        self._add("web_events", n_lines)

        s = sends.copy()
        for col in ["sent", "open", "click"]:
            d = s[f"{col}_day"]
            s[f"{col}_at"] = pd.Series(_to_ts(t_start, d.fillna(0)), index=s.index).where(d.notna())
        s = s[["send_id", "campaign_id", "customer_id", "email", "variant", "sent_at", "open_at", "click_at",
               "converted", "revenue_eur"]]
        self._parquet.append(self.raw_dir / "email_sends.parquet", s)
        self._add("email_sends", len(s))

        rv = reviews.copy()
        rv["created_at"] = _fmt_ts(t_start, rv["day"])
        self._csv(rv[["review_id", "customer_id", "order_id", "product_id", "created_at", "stars", "title", "text"]],
                  "reviews.csv")
        self._add("reviews", len(rv))
        sv = surveys.copy()
        sv["submitted_at"] = _fmt_ts(t_start, sv["day"], "%m/%d/%Y %I:%M:%S %p")
        self._csv(sv[["response_id", "submitted_at", "email", "nps", "comment"]], "surveys.csv")
        self._add("surveys", len(sv))
        tk = tickets.copy()
        tk["created_at"] = _fmt_ts(t_start, tk["day"])
        self._csv(tk[["ticket_id", "created_at", "requester_email", "customer_ref", "channel", "topic", "subject",
                      "description", "status", "resolution_hours"]], "tickets.csv")
        self._add("tickets", len(tk))


class _TruthWriter:
    """The truth files, appended block by block (read only by tests and labelled truth checks)."""

    def __init__(self, truth_dir: Path, t_start: pd.Timestamp) -> None:
        self.truth_dir, self.t_start = truth_dir, t_start
        for name in ["persons.parquet", "identity.parquet", "purchases.parquet", "text_labels.parquet"]:
            (truth_dir / name).unlink(missing_ok=True)
        self._parquet = _ParquetAppender()

    def __enter__(self) -> _TruthWriter:
        return self

    def __exit__(self, *exc) -> None:
        self._parquet.close()

    def write_block(self, persons, accounts, purchases, cookies, reviews, surveys, tickets) -> None:
        cols = ["person_id", "segment", "lambda", "p_dropout", "is_buyer", "first_purchase_day", "death_day",
                "satisfaction", "consent"]
        self._parquet.append(self.truth_dir / "persons.parquet", persons[cols])
        pid = persons["person_id"].to_numpy()
        ident = pd.concat([
            pd.DataFrame({"record_type": "crm", "record_key": accounts["customer_id"],
                          "person_id": pid[accounts["pidx"]]}),
            pd.DataFrame({"record_type": "cookie", "record_key": cookies["anonymous_id"],
                          "person_id": np.where(cookies["pidx"] >= 0, pid[cookies["pidx"].clip(lower=0)],
                                                "ANON-" + cookies["anonymous_id"])}),
        ], ignore_index=True)
        self._parquet.append(self.truth_dir / "identity.parquet", ident)
        self._parquet.append(self.truth_dir / "purchases.parquet",
                             purchases.assign(person_id=pid[purchases["pidx"]])[["person_id", "day"]])
        labels = pd.concat([
            pd.DataFrame({"source": "reviews", "id": reviews["review_id"], "label": reviews["label"],
                          "topics": reviews["topics"]}),
            pd.DataFrame({"source": "surveys", "id": surveys["response_id"], "label": surveys["label"],
                          "topics": surveys["topics"]}).query("label != ''"),
            pd.DataFrame({"source": "tickets", "id": tickets["ticket_id"], "label": tickets["label"],
                          "topics": tickets["topics"]}),
        ], ignore_index=True)
        self._parquet.append(self.truth_dir / "text_labels.parquet", labels)


def _write_truth_meta(truth_dir, experiments, seed, n_customers, start, end) -> None:
    meta = {
        "seed": seed, "n_customers": n_customers, "start": start, "end": end, "time_unit": "days",
        "segments": {name: {k: v for k, v in asdict(spec).items()} for name, spec in SEGMENTS.items()},
        "experiments": experiments,
    }
    (truth_dir / "truth.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=float) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.sample.synthetic``: write the sample data into data/raw and the truth into data/truth."""
    import argparse

    from helpers.core.paths import DataLayout

    parser = argparse.ArgumentParser(prog="python -m helpers.sample.synthetic", description=main.__doc__)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--n-customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", default="2024-10-01")
    parser.add_argument("--end", default="2026-09-30")
    a = parser.parse_args(argv)
    layout = DataLayout(a.data_dir)
    s = generate(layout.raw, layout.truth, a.n_customers, a.seed, a.start, a.end)
    for name, n in s.row_counts.items():
        print(f"{name:>12}: {n:,} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
