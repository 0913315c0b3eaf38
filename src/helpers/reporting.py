"""Stakeholder-facing output: KPI cards, bounded tables, metrics files, HTML export and the index page."""

from __future__ import annotations

import hashlib
import html
import json
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import nbformat
import pandas as pd

from helpers.paths import PROJECT_ROOT, TEMPLATES_DIR

REMOVE_TAG = "remove-cell"  # setup cells carry this tag; the HTML leaves them out entirely
# Widgets driven by Python callbacks need a kernel and would be dead in the HTML: cells with this tag are
# left out of it. Explorers built with helpers.widgets precompute their answers and stay in.
INTERACTIVE_TAG = "interactive"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# A report must open quickly and survive an e-mail attachment limit; the runner warns and the tests fail above it.
HTML_BUDGET_BYTES = 1_500_000
MAX_TABLE_ROWS = 40  # show_table caps tables; no report dumps a full table
PII_BANNER = "INTERNAL — contains personal data (pii: allow). Do not share outside the analytics team."
REPORT_PACKAGES = ["ci-workbench", "pandas", "numpy", "scipy", "scikit-learn", "statsmodels", "seaborn", "matplotlib",
                   "nltk", "vaderSentiment", "papermill", "nbconvert", "ipywidgets", "duckdb", "pyarrow"]


# ---------------------------------------------------------------------------
# In-notebook display helpers
# ---------------------------------------------------------------------------


def fmt_number(value: float, unit: str = "") -> str:
    """Format a KPI value compactly: 12,345 · 1.2 M · 3.4% (unit '%' expects a share 0–1).

    >>> fmt_number(1234567, "EUR"), fmt_number(0.1234, "%"), fmt_number(42)
    ('EUR 1.23 M', '12.3%', '42')
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if unit == "%":
        return f"{value * 100:.1f}%"
    v = float(value)
    if abs(v) >= 1e6:
        s = f"{v / 1e6:.2f} M"
    elif abs(v) >= 1e4:
        s = f"{v:,.0f}"
    elif v.is_integer():
        s = f"{int(v):,}"
    else:
        s = f"{v:,.2f}"
    return f"{unit} {s}" if unit else s


def kpi_cards(kpis: list[dict]) -> str:
    """HTML for a row of KPI cards; each dict has ``label``, ``value`` and optionally ``unit``, ``href`` (the
    report behind it) and ``sentence`` (one line of interpretation, shown under the figure)."""
    cards = []
    for k in kpis:
        value = html.escape(fmt_number(k["value"], k.get("unit", "")) if not isinstance(k["value"], str)
                            else k["value"])
        body = f'<div class="v">{value}</div><div class="l">{html.escape(k["label"])}</div>'
        if k.get("href"):
            body = f'<a href="{html.escape(k["href"])}">{body}</a>'
        if k.get("sentence"):
            more = f' <a href="{html.escape(k["href"])}">Details&nbsp;&rarr;</a>' if k.get("href") else ""
            body += f'<div class="n">{html.escape(k["sentence"])}{more}</div>'
        cards.append(f'<div class="wb-kpi{" wb-kpi-wide" if k.get("sentence") else ""}">{body}</div>')
    return '<div class="wb-kpis">' + "".join(cards) + "</div>"


def show_kpis(kpis: list[dict]) -> None:
    """Display KPI cards in a notebook."""
    from IPython.display import HTML, display

    display(HTML(kpi_cards(kpis)))


def show_table(df: pd.DataFrame, max_rows: int = 15, caption: str = "", float_format: str = "{:,.2f}") -> None:
    """Display at most ``max_rows`` rows of ``df``, saying how many were left out. Never dumps full tables."""
    from IPython.display import HTML, display

    shown = df.head(max_rows)
    styler = shown.style.hide(axis="index").format(
        {c: float_format for c in shown.columns if pd.api.types.is_float_dtype(shown[c])}, na_rep="–")
    out = styler.to_html()
    note = ""
    if len(df) > max_rows:
        note = f'<p class="chart-caption">Showing {max_rows} of {len(df):,} rows.</p>'
    if caption:
        note = f'<p class="chart-caption">{html.escape(caption)}</p>' + note
    display(HTML(out + note))


def callout(text: str, kind: str = "info") -> None:
    """Display a highlighted plain-language conclusion (``kind`` 'info' or 'warn'); text may hold Markdown."""
    from IPython.display import Markdown, display

    cls = "wb-warn" if kind == "warn" else "wb-callout"
    display(Markdown(f'<div class="{cls}">\n\n{text}\n\n</div>'))


# ---------------------------------------------------------------------------
# Metrics: each notebook writes a small JSON the index and summary read
# ---------------------------------------------------------------------------


def write_metrics(step: str, metrics: dict, processed_dir: str | Path) -> Path:
    """Write ``<processed_dir>/metrics/<step>.json`` with free-form ``metrics``; :mod:`helpers.summary` builds the
    headline of the summary and the index from them."""
    path = Path(processed_dir) / "metrics" / f"{step}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"step": step, "metrics": metrics}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")
    return path


def _jsonable(v):
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (pd.Timestamp, datetime)):
        return v.isoformat()
    return str(v)


def read_metrics(processed_dir: str | Path) -> dict[str, dict]:
    """All metrics files in ``processed_dir/metrics`` keyed by step."""
    folder = Path(processed_dir) / "metrics"
    if not folder.exists():
        return {}
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


# ---------------------------------------------------------------------------
# Reproducibility
# ---------------------------------------------------------------------------


def package_versions(names: list[str] | None = None) -> dict[str, str]:
    out = {}
    for n in names or REPORT_PACKAGES:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit(root: Path = PROJECT_ROOT) -> str:
    """Short commit hash, with '+dirty' when the work tree has uncommitted changes; 'unknown' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_fingerprint(folder: str | Path) -> str:
    """SHA-256 over the names and bytes of every file in ``folder`` (recursively), first 16 hex digits."""
    folder = Path(folder)
    h = hashlib.sha256()
    if not folder.exists():
        return "no-data"
    for p in sorted(x for x in folder.rglob("*") if x.is_file()):
        h.update(str(p.relative_to(folder)).encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------
# HTML export
# ---------------------------------------------------------------------------


def prepare_for_stakeholders(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop setup cells (tag ``remove-cell``), kernel-only widgets (tag ``interactive``), the parameters cells and
    stderr noise (warnings, progress); keep the saved widget state only when a widget is still displayed."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {REMOVE_TAG, INTERACTIVE_TAG, "injected-parameters", "parameters"}:
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        cells.append(cell)
    nb.cells = cells
    shows_widgets = any(WIDGET_VIEW in o.get("data", {}) for c in cells if c.cell_type == "code"
                        for o in c.get("outputs", []))
    if not shows_widgets:  # a page without widgets needs neither their state nor the renderer scripts
        nb.metadata.pop("widgets", None)
    return nb


def export_html(executed: str | Path, html_path: str | Path, stamp: dict | None = None,
                widget_assets_url: str = "../assets/widgets") -> Path:
    """Render an executed notebook to a code-free, offline HTML report with the reproducibility footer.

    Widgets load require.js and the html-manager from ``widget_assets_url`` (relative to the page), where
    the runner copies the files ``helpers.widget_assets`` fetched at install time: never from a CDN.
    """
    from nbconvert import HTMLExporter

    nb = prepare_for_stakeholders(nbformat.read(str(executed), as_version=4))
    exporter = HTMLExporter(template_name="workbench", extra_template_basedirs=[str(TEMPLATES_DIR)])
    exporter.require_js_url = f"{widget_assets_url}/require.js"
    exporter.widget_renderer_url = f"{widget_assets_url}/embed-amd.js"
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    resources = {"workbench": stamp or {}, "metadata": {"name": Path(executed).stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$CIW_CHROMIUM``, ``chromium`` on the PATH or Debian's /usr/bin/chromium."""
    import os
    import shutil

    for candidate in [os.environ.get("CIW_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"]:
        if candidate and Path(candidate).exists():
            return candidate
    return None


def chromium_sandbox_args() -> list[str]:
    """``--no-sandbox`` when running as root, where Chromium refuses to start with its sandbox."""
    import os

    return ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def export_pdf(html_path: str | Path, pdf_path: str | Path, chromium: str | None = None, timeout: int = 120) -> Path:
    """Print an HTML report to PDF with headless Chromium (widgets get a few seconds to render first)."""
    chromium = chromium or find_chromium()
    if not chromium:
        raise FileNotFoundError("PDF export needs Chromium (Debian/Ubuntu: apt-get install chromium) or CIW_CHROMIUM")
    pdf_path = Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    args = [chromium, *chromium_sandbox_args(), "--headless", "--disable-gpu", "--no-pdf-header-footer",
            "--virtual-time-budget=8000", f"--print-to-pdf={pdf_path}", Path(html_path).resolve().as_uri()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not pdf_path.exists():
        raise RuntimeError(f"Chromium could not print {html_path}: {done.stderr.strip()[-400:]}")
    return pdf_path


def notebook_title(nb_path: str | Path) -> str:
    """The first markdown heading of a notebook, or its file name."""
    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return Path(nb_path).stem


def summary_run(runs: list[dict]) -> dict | None:
    """The run entry of the executive summary notebook (``NN_summary``) when it produced a report."""
    return next((r for r in runs if r["name"].endswith("_summary") and r.get("html")), None)


def build_index(reports_dir: str | Path, runs: list[dict], metrics: dict[str, dict], param_set: str,
                pii_mode: str = "mask") -> Path:
    """Write ``reports/index.html``: headline KPIs from every step's metrics and a table of the reports.

    Each ``runs`` entry has ``name``, ``title``, ``status`` ('ok', 'failed', 'skipped'), ``seconds``,
    ``html`` (relative link) and ``params``.
    """
    from helpers.summary import executive_kpis

    reports_dir = Path(reports_dir)
    css = (TEMPLATES_DIR / "workbench" / "workbench.css").read_text(encoding="utf-8")
    reports = {r["name"]: r["html"] for r in runs if r.get("html")}
    kpis = executive_kpis(metrics, link=lambda step: reports.get(step))
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
                  "skipped": '<span class="wb-skipped">not run</span>'}.get(r["status"], html.escape(r["status"]))
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
{kpi_cards(kpis) if any(k["value"] != "–" for k in kpis) else "<p>No headline figures yet: no report has finished.</p>"}
<h2>Reports</h2>
<table class="wb-table"><tr><th>Step</th><th>Report</th><th>Status</th><th>Run time</th><th>Parameters</th></tr>
{''.join(rows)}</table>
</div></body></html>
"""
    path = reports_dir / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
