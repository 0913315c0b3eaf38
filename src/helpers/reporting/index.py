"""The report index (``reports/index.html``): the executive headline and the table of every report."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

from helpers.core.paths import TEMPLATES_DIR
from helpers.reporting.pages import PII_BANNER, git_commit, summary_run
from helpers.reporting.summary import INDEX_HEADLINE, headline_html, missing_steps

def build_index(reports_dir: str | Path, runs: list[dict], metrics: dict[str, dict], param_set: str,
                pii_mode: str = "mask", values: dict | None = None, currency: str = "") -> Path:
    """Write ``reports/index.html``: the headline registry KPIs (``values``, as the steps recorded them) and a
    table of the reports.

    Each ``runs`` entry has ``name``, ``title``, ``status`` ('ok', 'failed', 'skipped'), ``seconds``,
    ``html`` (relative link) and ``params``.
    """
    reports_dir = Path(reports_dir)
    css = (TEMPLATES_DIR / "workbench" / "workbench.css").read_text(encoding="utf-8")
    values = values or {}
    gaps = "".join(f"<li>{html.escape(s)}</li>" for s in missing_steps(metrics))
    gaps = f'<ul class="wb-gaps">{gaps}</ul>' if gaps else ""
    summary = summary_run(runs)
    landing = (f'<p class="wb-landing"><a href="{html.escape(summary["html"])}">Read the executive summary '
               "&rarr;</a></p>") if summary else ""
    rows = []
    for r in runs:
        link = f'<a href="{html.escape(r["html"])}">{html.escape(r["title"])}</a>' if r.get("html") else \
            html.escape(r["title"])
        params = ", ".join(f"{html.escape(str(k))}={html.escape(str(v))}" for k, v in r.get("params", {}).items())
        # Plain text with a coloured class: emoji glyphs are missing from many office machines' fonts.
        status = {"ok": '<span class="wb-ok">ok</span>', "failed": '<span class="wb-failed">failed</span>',
                  "skipped": '<span class="wb-skipped">no data: skipped</span>',
                  "not run": '<span class="wb-skipped">not run</span>',
                  "stale": '<span class="wb-failed">stale</span>'}.get(r["status"], html.escape(r["status"]))
        rows.append(f"<tr><td>{html.escape(r['name'])}</td><td>{link}</td><td>{status}</td>"
                    f"<td>{r.get('seconds', 0):.1f} s</td><td><code>{params}</code></td></tr>")
    banner = f'<div class="wb-banner-pii">{html.escape(PII_BANNER)}</div>' if pii_mode == "allow" else ""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer Intelligence Workbench — reports</title><style>{css}</style></head>
<body class="wb-index">{banner}<div class="wb-page">
<h1>Customer Intelligence Workbench</h1>
<p>Reports generated {generated} with parameter set <code>{html.escape(param_set)}</code>,
commit <code>{html.escape(git_commit())}</code>. Click a KPI or a report to read the analysis behind it.</p>
{landing}
{headline_html(values, currency, INDEX_HEADLINE, "html/") if values else "<p>No headline figures yet: no report has finished.</p>"}
{gaps}
<h2>Reports</h2>
<table class="wb-table"><tr><th>Step</th><th>Report</th><th>Status</th><th>Run time</th><th>Parameters</th></tr>
{''.join(rows)}</table>
</div></body></html>
"""
    path = reports_dir / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
