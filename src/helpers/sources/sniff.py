"""The source wizard: sniff a file and propose a catalogue entry for it.

``python -m helpers.sources suggest FILE [--name NAME] [--entity ENTITY] [--write CATALOG.yaml]``

It detects the format, the encoding, the field separator, the decimal style and the date formats, guesses the
canonical entity and the role of each column (from header names in English, German, French, Dutch, Portuguese and
Spanish, and from what the values look like), and prints a catalogue entry to review. Nothing is guessed
silently: every guess it is unsure of is listed under ``# check:`` comments in the proposal.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from helpers.core.model import EMAIL_RE, ENTITIES
from helpers.sources import readers
from helpers.sources.catalog import COMPRESSIONS, infer_format, normalise_header

SAMPLE_RECORDS = 5000

# Header names (normalised: lower case, no spaces, underscores, hyphens or dots) per role.
SYNONYMS: dict[str, list[str]] = {
    "person_id": ["customeruniqueid", "personid", "uniquecustomerid", "customeruuid", "householdid"],
    "customer_id": ["customerid", "custid", "customer", "clientid", "client", "customerno", "customernumber",
                    "kundennummer", "kundenid", "kunde", "kdnr", "klantnummer", "klantid", "idclient", "numeroclient",
                    "cliente", "idcliente", "accountid", "userid", "memberid", "customerref", "customerreference"],
    "order_id": ["orderid", "orderno", "ordernumber", "invoiceno", "invoice", "invoiceid", "invoicenumber",
                 "bestellnummer", "bestellung", "auftragsnummer", "rechnungsnummer", "commande", "numerocommande",
                 "ordernummer", "bestelnummer", "pedido", "idpedido", "transactionid", "receiptid", "belegnummer"],
    "line_no": ["lineno", "line", "linenumber", "orderitemid", "position", "pos", "itemno", "positionsnummer"],
    "order_date": ["orderdate", "invoicedate", "date", "datum", "bestelldatum", "rechnungsdatum", "purchasedate",
                   "orderpurchasetimestamp", "transactiondate", "orderedat", "datecommande", "besteldatum",
                   "datapedido", "fecha", "belegdatum"],
    "quantity": ["quantity", "qty", "menge", "anzahl", "stueck", "stuck", "quantite", "aantal", "quantidade",
                 "cantidad", "units"],
    "unit_price": ["unitprice", "price", "preis", "einzelpreis", "stueckpreis", "prix", "prixunitaire", "prijs",
                   "preco", "precio", "itemprice", "saleprice"],
    "amount": ["amount", "total", "sum", "summe", "betrag", "gesamtbetrag", "revenue", "sales", "ordertotal",
               "montant", "totaal", "bedrag", "valor", "valortotal", "importe", "grandtotal", "netamount",
               "paymentvalue", "linetotal"],
    "discount_pct": ["discountpct", "discount", "discountpercent", "rabatt", "remise", "korting", "desconto"],
    "product_id": ["stockcode", "sku", "productid", "articleid", "artikel", "artikelnummer", "itemid", "ean",
                   "productcode", "artnr", "produktid"],
    "product_name": ["description", "productname", "name", "bezeichnung", "artikelname", "libelle", "omschrijving",
                     "itemname", "title"],
    "category": ["category", "kategorie", "categorie", "productcategoryname", "productcategory", "warengruppe",
                 "categoria"],
    "country": ["country", "land", "pays", "pais", "shippingcountry", "countrycode", "customerstate"],
    "currency": ["currency", "waehrung", "wahrung", "devise", "valuta", "moeda", "moneda", "currencycode"],
    "status": ["status", "orderstatus", "state", "bestellstatus"],
    "email": ["email", "emailaddress", "mail", "requesteremail", "recipient", "empfaenger", "courriel"],
    "phone": ["phone", "telephone", "telefon", "tel", "mobile", "handy", "telefoon"],
    "first_name": ["firstname", "givenname", "vorname", "prenom", "voornaam"],
    "last_name": ["lastname", "surname", "familyname", "nachname", "nom", "achternaam"],
    "postcode": ["postcode", "zip", "zipcode", "plz", "postleitzahl", "codepostal", "postalcode",
                 "customerzipcodeprefix"],
    "city": ["city", "stadt", "ort", "ville", "plaats", "cidade", "customercity"],
    "region": ["region", "bundesland", "province", "provincie", "estado", "customerstate"],
    "signup_date": ["signupdate", "registrationdate", "createdat", "registriertam", "anmeldedatum", "datecreated"],
    "marketing_consent": ["marketingconsent", "consent", "optin", "newsletter", "einwilligung", "emailoptin"],
    "gender": ["gender", "sex", "geschlecht", "genre"],
    "birth_date": ["birthdate", "dateofbirth", "dob", "geburtsdatum"],
    "age_band": ["ageband", "agegroup", "altersgruppe"],
    "acquisition_channel": ["acquisitionchannel", "source", "channelacquisition", "utmsource"],
    "feedback_id": ["reviewid", "responseid", "ticketid", "feedbackid", "surveyid", "commentid"],
    "created_at": ["createdat", "reviewcreationdate", "submittedat", "reviewdate", "commentdate", "timestamp"],
    "stars": ["stars", "rating", "reviewscore", "score", "sterne", "bewertung", "note", "estrelas", "rate"],
    "nps": ["nps", "npsscore", "likelihoodtorecommend", "recommend", "weiterempfehlung"],
    "csat": ["csat", "satisfaction", "zufriedenheit"],
    "title": ["title", "subject", "reviewcommenttitle", "betreff", "titre", "headline"],
    "text": ["text", "review", "comment", "comments", "kommentar", "message", "reviewcommentmessage", "body",
             "feedback", "commentaire", "opmerking", "comentario", "description"],
    "language": ["language", "lang", "sprache", "langue"],
    "event_id": ["eventid", "hitid", "messageid"],
    "ts": ["ts", "timestamp", "eventtime", "eventtimestamp", "time", "datetime"],
    "session_id": ["sessionid", "visitid", "sessionkey"],
    "anonymous_id": ["anonymousid", "cookieid", "clientid", "deviceid", "visitorid"],
    "event_type": ["eventtype", "event", "eventname", "action", "hittype"],
    "device": ["device", "devicecategory", "platform"],
    "page": ["page", "url", "pagepath", "screen"],
    "ip": ["ip", "ipaddress", "clientip"],
    "campaign_id": ["campaignid", "campaign", "kampagne", "campagne", "mailingid"],
    "send_id": ["sendid", "deliveryid"],
    "variant": ["variant", "variante", "arm", "group", "testgroup", "version", "bucket"],
    "sent_at": ["sentat", "senddate", "sent", "gesendet", "verschickt"],
    "opened_at": ["openedat", "openat", "opened", "geoeffnet", "ouvert"],
    "clicked_at": ["clickedat", "clickat", "clicked", "geklickt"],
    "converted": ["converted", "conversion", "purchased"],
    "revenue": ["revenue", "conversionvalue", "umsatz"],
    "refund_amount": ["refundamount", "refund", "erstattung", "gutschrift", "remboursement"],
    "return_id": ["returnid", "retourennummer", "returnno", "rmaid", "creditnoteid"],
    "return_date": ["returndate", "retourendatum", "refunddate"],
    "reason": ["reason", "grund", "returnreason", "motif"],
    "resolution_hours": ["resolutionhours", "timetoresolve", "resolutiontime"],
    "topic": ["topic", "category", "thema"],
    "support_channel": ["channel", "kanal", "canal"],
    "experiment": ["experiment", "experimentname", "testname", "test"],
    "unit_id": ["unitid", "userid", "playerid"],
    "assigned_at": ["assignedat", "exposedat", "firstexposure"],
    "month": ["month", "monat", "mois"],
    "rate": ["rate", "kurs", "exchangerate", "eurperunit", "fxrate"],
    "list_price": ["listprice", "listenpreis", "rrp", "msrp"],
    "brand": ["brand", "marke", "marque", "merk"],
    "channel": ["channel", "saleschannel", "vertriebskanal"],
    "payment_method": ["paymentmethod", "payment", "zahlungsart", "paymenttype"],
}
# Which roles make a table look like which entity (weights of evidence).
ENTITY_SIGNS: dict[str, dict[str, float]] = {
    "order_lines": {"quantity": 2, "unit_price": 2, "product_id": 1.5, "line_no": 1, "order_id": 0.5},
    "orders": {"order_id": 1.5, "amount": 1.5, "order_date": 1, "status": 0.5, "customer_id": 0.5},
    "customers": {"first_name": 2, "last_name": 2, "email": 1, "phone": 1.5, "postcode": 1, "signup_date": 1.5,
                  "person_id": 1.5, "marketing_consent": 1.5, "birth_date": 1, "city": 0.5},
    "feedback": {"stars": 2, "nps": 2, "text": 1.5, "title": 0.5, "feedback_id": 1.5, "csat": 2},
    "events": {"event_type": 2, "session_id": 2, "anonymous_id": 1.5, "ts": 1, "page": 1},
    "sends": {"campaign_id": 1.5, "variant": 1, "opened_at": 2, "clicked_at": 2, "sent_at": 1},
    "campaigns": {"campaign_id": 1.5, "experiment": 1, "sent_at": 0.5},
    "returns": {"refund_amount": 2.5, "return_id": 2, "return_date": 2, "reason": 1},
    "products": {"product_id": 1, "product_name": 1, "category": 1, "list_price": 2, "brand": 1.5},
    "fx_rates": {"rate": 2, "month": 2, "currency": 1},
    "assignments": {"unit_id": 1.5, "variant": 1.5, "experiment": 1.5, "assigned_at": 1},
}
DATE_CANDIDATES = {
    "ISO": ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ",
            "%Y-%m-%d %H:%M:%S.%f"],
    "YMD": ["%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y-%m"],
    "DMY": ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
            "%d-%m-%Y %H:%M:%S", "%d-%m-%Y", "%d.%m.%y"],
    "MDY": ["%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y"],
}


@dataclass
class Suggestion:
    """What the wizard found in one file."""

    file: str
    format: str
    entity: str
    columns: dict[str, object]
    locale: dict[str, str] = field(default_factory=dict)
    read: dict[str, object] = field(default_factory=dict)
    rules: dict[str, object] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    records_sampled: int = 0

    def entry(self) -> dict:
        out: dict = {"file": self.file, "entity": self.entity}
        if self.read:
            out["read"] = self.read
        if self.locale:
            out["locale"] = self.locale
        out["columns"] = self.columns
        if self.rules:
            out["rules"] = self.rules
        return out

    def to_yaml(self, name: str) -> str:
        body = yaml.safe_dump({"sources": {name: self.entry()}}, sort_keys=False, allow_unicode=True, width=100)
        head = [f"# Proposed by `python -m helpers.sources suggest` from {self.records_sampled:,} records of "
                f"{self.file}.", "# Review every mapping; unmapped columns are ignored by the workbench."]
        head += [f"# check: {c}" for c in self.checks]
        if self.unmapped:
            head.append("# unmapped columns: " + ", ".join(self.unmapped))
        return "\n".join(head) + "\n" + body


def _sample_frame(path: Path, fmt: str, sep: str | None, tmp: Path) -> tuple[pd.DataFrame, readers.Accounting]:
    staged = tmp / "sniff.parquet"
    if fmt == "csv":
        res = readers.read_delimited(path, "sniff", staged, sep=sep or "auto", limit=SAMPLE_RECORDS)
    elif fmt == "jsonl":
        res = readers.read_jsonl(path, "sniff", staged, limit=SAMPLE_RECORDS)
    elif fmt == "json":
        res = readers.read_json(path, "sniff", staged)
    elif fmt == "parquet":
        res = readers.read_parquet(path, "sniff", staged)
    elif fmt == "excel":
        res = readers.read_excel(path, "sniff", staged)
    else:
        raise ValueError(f"cannot sniff format {fmt!r}")
    frame = pd.read_parquet(staged).head(SAMPLE_RECORDS).drop(columns=readers.ROW)
    frame = frame.apply(lambda s: s.str.strip().replace("", None) if s.dtype == object or
                        pd.api.types.is_string_dtype(s) else s)
    return frame, res.accounting


def number_style(values: pd.Series) -> tuple[str, str] | None:
    """``(decimal, thousands)`` of a column of number-looking text, or None when it does not look numeric.

    >>> number_style(pd.Series(["1.234,56", "7,5", "12"]))
    (',', '.')
    >>> number_style(pd.Series(["1,234.56", "7.5"]))
    ('.', ',')
    >>> number_style(pd.Series(["12", "7"])) is None
    True
    """
    v = values.dropna().astype(str).str.strip().str.replace(r"[€$£\s\u00a0]", "", regex=True)
    v = v[v != ""]
    if v.empty or not v.str.fullmatch(r"[+-]?[\d.,]+([eE][+-]?\d+)?").mean() > 0.95:
        return None
    comma_dec = v.str.fullmatch(r"[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+").mean()
    dot_dec = v.str.fullmatch(r"[+-]?(\d{1,3}(,\d{3})+|\d+)\.\d+").mean()
    if comma_dec == 0 and dot_dec == 0:
        return None  # whole numbers only: the style does not matter
    if comma_dec > dot_dec:
        return ",", "." if v.str.contains(r"\d\.\d{3}", regex=True).any() else ""
    return ".", "," if v.str.contains(r"\d,\d{3}", regex=True).any() else ""


def date_format(values: pd.Series) -> tuple[list[str], str | None, bool]:
    """Formats matching (nearly) every non-empty value, the date order they imply, and whether DMY and MDY both
    fit (ambiguous)."""
    v = values.dropna().astype(str).str.strip()
    v = v[v != ""].head(1000)
    if v.empty or not v.str.contains(r"\d", regex=True).all() or not v.str.contains(r"[-/.]|\d{8}", regex=True).all():
        return [], None, False
    fits: dict[str, list[str]] = {}
    for order, fmts in DATE_CANDIDATES.items():
        for f in fmts:
            ok = pd.to_datetime(v, format=f, errors="coerce").notna().mean()
            if ok >= 0.95:
                fits.setdefault(order, []).append(f)
    if not fits:
        return [], None, False
    ambiguous = "DMY" in fits and "MDY" in fits
    order = next(o for o in ("ISO", "YMD", "DMY", "MDY") if o in fits)
    return fits[order][:2], ("YMD" if order == "ISO" else order), ambiguous


def guess_role(header: str, values: pd.Series, taken: set[str]) -> str | None:
    """The role a column most likely plays, from its name, then from its values."""
    import unicodedata

    raw = normalise_header(header)
    umlauts = raw.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    plain = "".join(c for c in unicodedata.normalize("NFKD", raw) if not unicodedata.combining(c))
    keys = [raw, umlauts, plain]
    for role, names in SYNONYMS.items():
        if role not in taken and any(k in names for k in keys):
            return role
    key = plain
    for role, names in SYNONYMS.items():  # names that contain a synonym: "Customer ID (CRM)", "order_total_eur"
        if role not in taken and any(len(n) >= 5 and n in key for n in names):
            return role
    v = values.dropna().astype(str).str.strip()
    v = v[v != ""].head(500)
    if len(v) and v.map(lambda s: bool(EMAIL_RE.match(s))).mean() > 0.9 and "email" not in taken:
        return "email"
    return None


def choose_entity(roles: set[str]) -> str:
    """The entity whose tell-tale roles the columns match best."""
    scores = {e: sum(w for r, w in signs.items() if r in roles) for e, signs in ENTITY_SIGNS.items()}
    return max(scores, key=lambda e: (scores[e], e == "order_lines"))


def suggest(path: str | Path, entity: str | None = None) -> Suggestion:
    """Sniff ``path`` and propose a catalogue entry (see the module docstring)."""
    import tempfile

    path = Path(path)
    fmt = infer_format(path.name) or "csv"
    with tempfile.TemporaryDirectory() as tmp:
        frame, acc = _sample_frame(path, fmt, None, Path(tmp))
    s = Suggestion(file=path.name, format=fmt, entity="", columns={}, records_sampled=len(frame))
    if fmt == "csv":
        s.read["sep"] = acc.separator
        if acc.encoding not in ("utf-8", "utf-8-sig"):
            s.locale["encoding"] = acc.encoding
        if acc.decoded_with_fallback:
            s.checks.append(f"{len(acc.decoded_with_fallback)} line(s) are not in {acc.encoding}; they will be read as "
                            f"{acc.fallback_encoding} and reported")
    roles: dict[str, str] = {}
    for col in frame.columns:
        role = guess_role(col, frame[col], set(roles))
        if role:
            roles[role] = col
    s.entity = entity or choose_entity(set(roles))
    model = ENTITIES[s.entity]
    # Roles that the entity does not have are dropped (e.g. "name" on a feedback table).
    roles = {r: c for r, c in roles.items() if r in model.roles or model.extra_columns}
    if s.entity == "feedback" and "created_at" not in roles:
        for alt in ("order_date", "ts", "signup_date"):
            if alt in roles:
                roles["created_at"] = roles.pop(alt)
                break
    styles = Counter()
    for role, col in roles.items():
        kind = model.roles[role].type if role in model.roles else "text"
        spec: dict | str = col
        if kind in ("number", "integer", "money"):
            st = number_style(frame[col])
            if st:
                styles[st] += 1
        if kind in ("datetime", "date"):
            formats, order, ambiguous = date_format(frame[col])
            if formats:
                spec = {"column": col, "formats": formats}
                if order:
                    s.locale.setdefault("date_order", order)
                if ambiguous:
                    s.checks.append(f"{col}: every day is at most 12, so the dates read both as day/month and "
                                    f"month/day; {formats[0]} was chosen, confirm it")
            else:
                s.checks.append(f"{col}: no date format fits its values; add `formats:` for it")
        s.columns[role] = spec
    if styles:
        (decimal, thousands), _ = styles.most_common(1)[0]
        if decimal != ".":
            s.locale["decimal"] = decimal
        if thousands:
            s.locale["thousands"] = thousands
    for role in model.required_roles:
        if role not in s.columns:
            s.checks.append(f"required role {role!r} of {s.entity} is not mapped: name the column that holds it")
    if s.entity == "order_lines":
        if "order_date" not in s.columns or "customer_id" not in s.columns:
            s.checks.append("without an orders source, order lines need customer_id and order_date")
        oid = roles.get("order_id")
        qty = roles.get("quantity")
        if oid and qty:
            starts_c = frame[oid].astype(str).str.upper().str.startswith("C")
            negative = pd.to_numeric(frame[qty], errors="coerce") < 0
            if starts_c.any() and (negative[starts_c]).mean() > 0.8:
                s.rules["reversal"] = {"column": oid, "starts_with": "C"}
                s.checks.append(f"{oid} values starting with C carry negative quantities: proposed as credit notes "
                                "(rules.reversal)")
    cid = roles.get("customer_id")
    if cid and frame[cid].dropna().astype(str).str.fullmatch(r"\d+\.0+").mean() > 0.9:
        s.checks.append(f"{cid} holds whole numbers written as floats (17850.0); they are read as 17850")
    if "person_id" in roles and "customer_id" in roles:
        s.checks.append(f"{roles['person_id']} is mapped as the person key: it decides who is the same customer")
    if fmt == "csv" and s.locale.get("decimal") == "," and s.read.get("sep") == ",":
        s.checks.append("decimal commas in a comma-separated file: check the separator")
    s.unmapped = [c for c in frame.columns if c not in roles.values()]
    return s


def suggest_catalog(paths: list[Path], currency: str = "EUR", name: str = "Your data") -> str:
    """A whole catalogue (dataset and one source per file) as YAML text."""
    parts = [f"dataset:\n  name: {name}\n  currency: {currency}  # check: the currency of the amounts\n"
             "  timezone: UTC  # check: the zone reports use\nsources:"]
    for p in paths:
        s = suggest(p)
        stem = Path(p.name)
        while stem.suffix.lower() in COMPRESSIONS + (".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet", ".xlsx"):
            stem = stem.with_suffix("")
        text = s.to_yaml(re.sub(r"\W+", "_", stem.name).strip("_").lower() or "source")
        parts.append("\n".join("  " + ln if ln and not ln.startswith(("#", "sources:")) else ln
                               for ln in text.splitlines() if ln != "sources:"))
    return "\n".join(parts) + "\n"
