"""No personal data and no secrets in stakeholder reports; the analyst-only `pii: allow` mode is marked."""

from __future__ import annotations

import io
import json
import re

import nbformat
import pandas as pd
import pytest

from helpers.reporting import privacy as P
from helpers.core.model import EMAIL_RE
from helpers.run import run
from helpers.sample.synthetic import FIRST_NAMES, LAST_NAMES, phone_variant


# ---------------------------------------------------------------------------
# The scanner itself: it must find what the generator produces and stay quiet on ordinary report content
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", range(5))
def test_scanner_finds_every_phone_format_the_generator_writes(kind):
    text = f"call {phone_variant('+491511234567', '49', kind)} today"
    assert [k for k, _ in P.find_pii(text)] == ["phone"], text


def test_scanner_finds_addresses_names_and_ips():
    found = P.find_pii("Lena van den Berg, chloe.krause@web.de, 10.20.30.40; Weber, Jonas")
    assert sorted(found) == [("e-mail", "chloe.krause@web.de"), ("ip", "10.20.30.40"),
                             ("name", "Lena van den Berg"), ("name", "Weber, Jonas")]
    assert P.find_pii(f"{FIRST_NAMES[-1]} {LAST_NAMES[-1]}") == [("name", f"{FIRST_NAMES[-1]} {LAST_NAMES[-1]}")]


@pytest.mark.parametrize("text", [
    "2026-09-30 23:59:59", "EUR 3,098,355.60", "+5.2 pp", "p = 0.00155", "z = -3.164", "cust_97edf7e2807b",
    "pandas 2.2.3 · numpy 1.26.4", "C100001", "rows 442,814", "1 000 000 customers", "+15.0%",
    "workbench@localhost", "Premium loyalists", "Anna", "Müller", "#0173ab", "ratio 0.75:0.25",
])
def test_scanner_ignores_dates_amounts_ids_and_versions(text):
    assert P.find_pii(text) == []


def test_scanner_recognises_every_identity_in_the_generated_data(small_data):
    import gzip
    import sqlite3

    with sqlite3.connect(small_data.raw / "crm.sqlite") as con:
        crm = pd.read_sql("select first_name, last_name, email, phone from customers", con)
    for row in crm.itertuples():
        line = f"{row.first_name} {row.last_name} | {row.email} | {row.phone}"
        kinds = sorted(k for k, _ in P.find_pii(line))
        # the raw data is dirty on purpose: "n/a" and malformed addresses are no e-mail
        has_email = isinstance(row.email, str) and bool(EMAIL_RE.match(row.email.strip()))
        assert kinds == sorted(["name"] + ["e-mail"] * has_email + ["phone"] * isinstance(row.phone, str)), line
    with gzip.open(small_data.raw / "web_events.jsonl.gz", "rt", encoding="utf-8") as fh:
        ips = {json.loads(line)["ip"] for _, line in zip(range(3000), fh)} - {None}
    assert len(ips) > 100 and all(P.find_pii(f"from {ip}.") == [("ip", ip)] for ip in ips)


def test_scanner_skips_base64_but_reads_notebook_strings(tmp_path):
    import base64

    blob = base64.b64encode(b"+4915112345678" * 40).decode()
    assert P.find_pii(f'<img src="data:image/png;base64,{blob}">') == []
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=["ok\n", "Anna Gruber\n"])]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    assert P.scan_file(path) == [("name", "Anna Gruber")]


# ---------------------------------------------------------------------------
# The reports of a full run
# ---------------------------------------------------------------------------

pytestmark_notebooks = pytest.mark.notebooks


@pytestmark_notebooks
def test_every_report_and_executed_notebook_is_free_of_personal_data(ci_run):
    code, root, log = ci_run
    assert code == 0, log
    reports = root / "reports"
    pages = list(reports.rglob("*.html"))
    executed = list(reports.rglob("*.ipynb"))
    assert len(pages) >= 8 and len(executed) >= 7, "every step plus the summary and the index are scanned"
    assert P.scan_reports(reports) == {}


@pytestmark_notebooks
def test_secrets_from_the_environment_never_reach_a_report_or_output(ci_run, secret_sentinels):
    _, root, log = ci_run
    everything = [p for p in root.rglob("*") if p.is_file() and p.suffix in
                  (".html", ".ipynb", ".json", ".csv", ".eml", ".txt", ".yaml")]
    emails = [p for p in everything if p.suffix == ".eml"]
    assert emails, "the dry-run alerts were written"
    # the kernel did read the SMTP settings from the environment (else this test would prove nothing)
    assert all("From: alerts@workbench.invalid" in p.read_text(encoding="utf-8") for p in emails)
    for path in everything:
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in secret_sentinels.values():
            assert secret not in text, f"{secret} leaked into {path}"
    assert not any(s in log for s in secret_sentinels.values())


@pytestmark_notebooks
def test_database_password_stays_out_of_the_failed_notebook_and_the_log(tmp_path, monkeypatch):
    secret = "Sentinel-DB-9b2e4"
    monkeypatch.setenv("CIW_TEST_CRM_URL", f"postgresql://analyst:{secret}@127.0.0.1:9/crm")
    out = io.StringIO()
    code = run("ci", overrides=[f"data_dir={tmp_path / 'data'}", "01_collection.db_url=env:CIW_TEST_CRM_URL"],
               only=["01"], reports_dir=tmp_path / "reports", out=out)
    assert code == 1, out.getvalue()  # no database listens there: the notebook fails, naming the database safely
    executed = (tmp_path / "reports" / "executed" / "01_collection.ipynb").read_text(encoding="utf-8")
    assert "postgresql database crm on 127.0.0.1" in executed + out.getvalue()
    assert "analyst" not in executed + out.getvalue()
    for text in [executed, out.getvalue()] + [p.read_text(encoding="utf-8") for p in (tmp_path / "reports").rglob(
            "*.html")]:
        assert secret not in text


@pytestmark_notebooks
def test_runner_refuses_a_password_given_as_a_parameter(tmp_path):
    out = io.StringIO()
    code = run("ci", overrides=["01_collection.db_url=postgresql://ana:Pw123@db.internal/crm"],
               reports_dir=tmp_path / "reports", out=out)
    assert code == 2 and "URL or connection string with a password" in out.getvalue()
    assert "Pw123" not in out.getvalue()
    assert not (tmp_path / "reports" / "executed").exists() or not any((tmp_path / "reports" / "executed").iterdir())


@pytestmark_notebooks
def test_pii_allow_shows_identities_and_marks_every_page_internal(ci_run):
    _, root, _ = ci_run
    reports = root / "reports_internal"
    out = io.StringIO()
    code = run("ci", overrides=[f"data_dir={root / 'data'}", "pii=allow"], only=["04", "05", "07"],
               reports_dir=reports, out=out)
    assert code == 0, out.getvalue()
    assert "pii=allow" in out.getvalue()
    found = P.scan_reports(reports)
    assert {k for k, _ in found["html/04_clv.html"]} >= {"e-mail", "name"}
    assert {k for k, _ in found["html/05_sentiment.html"]} >= {"e-mail", "name"}
    for page in list((reports / "html").glob("*.html")) + [reports / "index.html"]:
        assert "INTERNAL — contains personal data" in page.read_text(encoding="utf-8"), page.name
    # The names shown belong to the pseudonymous ids next to them.
    contacts = P.contact_details(root / "data" / "processed")
    rows = [r for r in re.findall(r"<tr>.*?</tr>", (reports / "html" / "05_sentiment.html").read_text(
        encoding="utf-8"), re.S) if "@" in r and "cust_" in r]
    assert rows
    for r in rows:
        pseudo = re.search(r"cust_[0-9a-f]{12}", r).group(0)
        assert contacts.at[pseudo, "name"] in r and contacts.at[pseudo, "email"] in r


def test_reveal_refuses_unknown_modes_and_leaves_masked_tables_alone(tmp_path):
    table = pd.DataFrame({"customer_pseudo_id": ["cust_1"], "clv": [1.0]})
    assert P.reveal(table, "customer_pseudo_id", "mask", tmp_path) is table
    with pytest.raises(ValueError, match="must be one of mask, allow"):
        P.reveal(table, "customer_pseudo_id", "yes", tmp_path)


@pytestmark_notebooks
def test_metrics_files_carry_no_personal_data(ci_run):
    _, root, _ = ci_run
    for f in (root / "data" / "processed" / "metrics").glob("*.json"):
        assert P.find_pii(json.dumps(json.loads(f.read_text()), ensure_ascii=False)) == [], f.name
