"""Stakeholder-facing output: KPI cards, bounded tables, metrics files, HTML export and the index page."""

from __future__ import annotations

import hashlib
import html
import json
import subprocess
from datetime import datetime, timezone
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # nbformat is needed by the runner's export only; importing it costs a kernel ~1.4 s
    import nbformat

from helpers.core.fmt import fmt_number  # noqa: F401  (re-exported for notebooks)
from helpers.core.safety import inline_markup
from helpers.core.paths import PROJECT_ROOT, TEMPLATES_DIR

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


# ---------------------------------------------------------------------------
# Registry KPIs: recorded once by the step that owns them, shown the same way everywhere
# ---------------------------------------------------------------------------


def record_kpis(step: str, values: dict, processed_dir: str | Path, series: dict | None = None) -> None:
    """Record the values of the registry KPIs that ``step`` owns (``processed/kpis/<step>.json``), with optional
    monthly ``series`` ({name: {"YYYY-MM-01": value or {"value", "n"}}}) for the trends of the summary.

    A KPI owned by another step is refused: each figure has exactly one source.
    """
    from helpers.core.kpis import kpi

    for kpi_id in values:
        owner = kpi(kpi_id).step
        if owner != step:
            raise ValueError(f"KPI {kpi_id!r} belongs to step {owner}, not {step}: record it there")
    path = Path(processed_dir) / "kpis" / f"{step}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"step": step, "kpis": values, "series": series or {}}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")


def dataset_currency(processed_dir: str | Path) -> str:
    """The reporting currency of the data set (from step 01's ``dataset.json``), "" before step 01 has run."""
    path = Path(processed_dir) / "dataset.json"
    return json.loads(path.read_text(encoding="utf-8")).get("currency", "") if path.exists() else ""


def clear_kpis(step: str, processed_dir: str | Path) -> None:
    """Forget what ``step`` recorded before (it is skipped or failed this time), so no page shows an old value."""
    (Path(processed_dir) / "kpis" / f"{step}.json").unlink(missing_ok=True)


def _kpi_files(processed_dir: str | Path) -> list[dict]:
    folder = Path(processed_dir) / "kpis"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))] if folder.exists() \
        else []


def kpi_values(processed_dir: str | Path) -> dict[str, object]:
    """Every recorded KPI value, by KPI id, each from the step that owns it."""
    from helpers.core.kpis import KPIS

    out: dict[str, object] = {}
    for rec in _kpi_files(processed_dir):
        for kpi_id, value in rec.get("kpis", {}).items():
            if kpi_id in KPIS and KPIS[kpi_id].step == rec.get("step"):
                out[kpi_id] = value
    return out


def kpi_series(processed_dir: str | Path) -> dict[str, dict]:
    """Every recorded monthly series, by name ("net_revenue", "nps", ...)."""
    out: dict[str, dict] = {}
    for rec in _kpi_files(processed_dir):
        out.update(rec.get("series", {}))
    return out


def registry_cards(ids: list[str], values: dict, currency: str = "", link_prefix: str = "",
                   notes: dict[str, str] | None = None, links: bool = True) -> str:
    """KPI cards for registry KPIs: the registry's label, its period, the value formatted by its unit, a tooltip
    with the definition, and a link to the section that explains it. Each card carries ``data-kpi`` so a test can
    check that a figure shown on two pages is one figure."""
    from helpers.core.kpis import kpi

    notes = notes or {}
    cards = []
    for kpi_id in ids:
        k = kpi(kpi_id)
        shown = k.format(values.get(kpi_id), currency)
        body = (f'<div class="v" data-kpi="{html.escape(k.id)}">{html.escape(shown)}</div>'
                f'<div class="l" data-kpi-label="{html.escape(k.id)}">{html.escape(k.label)}</div>'
                f'<div class="p">{html.escape(k.period)}</div>')
        if links:
            body = f'<a href="{html.escape(link_prefix + k.href)}">{body}</a>'
        if notes.get(kpi_id):
            body += f'<div class="n">{inline_markup(notes[kpi_id])}</div>'
        cards.append(f'<div class="wb-kpi" title="{html.escape(k.definition)}">{body}</div>')
    return '<div class="wb-kpis">' + "".join(cards) + "</div>"


def show_kpi_cards(ids: list[str], processed_dir: str | Path, currency: str = "", notes: dict[str, str] | None = None
                   ) -> None:
    """Display registry KPI cards in a step notebook, values read from what the owning steps recorded."""
    from IPython.display import HTML, display

    display(HTML(registry_cards(ids, kpi_values(processed_dir), currency, notes=notes)))


def show_html(markup: str) -> None:
    """Display HTML built by a helper (which escapes every value it puts in)."""
    from IPython.display import HTML, display

    display(HTML(markup))


def show_kpis(kpis: list[dict]) -> None:
    """Display KPI cards in a notebook."""
    from IPython.display import HTML, display

    display(HTML(kpi_cards(kpis)))


def _cell_html(value: object, float_format: str) -> str:
    """One table cell as inert HTML: text escaped, floats formatted, missing as a dash, no Python reprs."""
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return html.escape(float_format.format(value))
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (dict, list, tuple)):
        value = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else \
            ", ".join(map(str, value))
    return html.escape(str(value))


def table_html(df: pd.DataFrame, max_rows: int = 15, caption: str = "", float_format: str = "{:,.2f}") -> str:
    """HTML of at most ``max_rows`` rows of ``df``. Every cell and header is escaped (customer text never
    becomes markup), booleans read yes/no, dates carry no midnight times, missing values show a dash."""
    if df.empty:
        return f'<p class="chart-caption">{inline_markup(caption or "Table")}: nothing to show.</p>'
    shown = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    def td(v) -> str:
        # numbers right-aligned so their digits line up; text left
        numeric = isinstance(v, (int, float)) and not isinstance(v, bool) or hasattr(v, "dtype") and \
            getattr(v.dtype, "kind", "") in "iuf"
        return f'<td class="num">{_cell_html(v, float_format)}</td>' if numeric else f"<td>{_cell_html(v, float_format)}</td>"

    body = "".join("<tr>" + "".join(td(v) for v in row) + "</tr>" for row in shown.itertuples(index=False, name=None))
    out = f'<table class="wb-data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    note = ""
    if len(df) > max_rows:
        note = f'<p class="chart-caption">Showing {max_rows} of {len(df):,} rows.</p>'
    if caption:
        note = f'<p class="chart-caption">{inline_markup(caption)}</p>' + note
    return out + note


def show_table(df: pd.DataFrame, max_rows: int = 15, caption: str = "", float_format: str = "{:,.2f}") -> None:
    """Display at most ``max_rows`` rows of ``df``, saying how many were left out. Never dumps full tables."""
    from IPython.display import HTML, display

    display(HTML(table_html(df, min(max_rows, MAX_TABLE_ROWS), caption, float_format)))


class Callout(str, Enum):
    """The kinds of highlighted box. A kind is one of these or an error: a typo can never turn an alarm into a
    calm box."""

    INFO = "info"  # a plain conclusion
    NOTE = "note"  # context: a skipped section, an assumption
    WARN = "warn"  # read with care
    ALARM = "alarm"  # do not act on the result (broken split, failed check)


CALLOUT_CLASS = {Callout.INFO: "wb-callout", Callout.NOTE: "wb-note", Callout.WARN: "wb-warn",
                 Callout.ALARM: "wb-alarm"}
CALLOUT_LABEL = {Callout.WARN: "Caution", Callout.ALARM: "Do not act on this result"}


def callout_html(text: str, kind: Callout | str = Callout.INFO) -> str:
    """HTML of a callout; ``text`` is escaped (see :func:`inline_markup`)."""
    kind = Callout(kind)  # ValueError for an unknown kind
    label = CALLOUT_LABEL.get(kind)
    prefix = f'<strong class="wb-callout-label">{label}:</strong> ' if label else ""
    role = ' role="alert"' if kind is Callout.ALARM else ""
    return f'<div class="{CALLOUT_CLASS[kind]}"{role}><p>{prefix}{inline_markup(text)}</p></div>'


def callout(text: str, kind: Callout | str = Callout.INFO) -> None:
    """Display a highlighted plain-language conclusion of one of the :class:`Callout` kinds (nothing when ``text`` is
    empty, e.g. a truth check on real data)."""
    from IPython.display import HTML, display

    if not text:
        return

    display(HTML(callout_html(text, kind)))


def conclusion(sentences: list[str]) -> None:
    """The answer to the page's question, first on the page: two to four sentences with the money figures."""
    from IPython.display import HTML, display

    body = "".join(f"<li>{inline_markup(s)}</li>" for s in sentences if s)
    display(HTML(f'<div class="wb-conclusion"><ul>{body}</ul></div>'))


def skip_step(step: str, reason: str, processed_dir: str | Path) -> None:
    """End a step that has nothing to analyse in this data: say why, record it for the summary, and stop the
    notebook. The runner marks the step *skipped* and goes on with the next one."""
    from helpers.core.errors import StepSkipped

    write_metrics(step, {"skipped": reason}, processed_dir)
    clear_kpis(step, processed_dir)
    callout(reason, Callout.NOTE)
    raise StepSkipped(reason)


# ---------------------------------------------------------------------------
# Metrics: each notebook writes a small JSON the index and summary read
# ---------------------------------------------------------------------------


def write_metrics(step: str, metrics: dict, processed_dir: str | Path) -> None:
    """Write ``<processed_dir>/metrics/<step>.json`` with free-form ``metrics``; :mod:`helpers.summary` builds the
    headline of the summary and the index from them."""
    path = Path(processed_dir) / "metrics" / f"{step}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"step": step, "metrics": metrics}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")


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
    import nbformat

    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and any(o.get("output_type") == "error" and o.get("ename") == "StepSkipped"
                                            for o in cell.get("outputs", [])):
            # The step had nothing to analyse: keep its explanation, drop the traceback and the cells that
            # never ran.
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"]
            cells.append(cell)
            break
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
    import nbformat
    from nbconvert import HTMLExporter

    nb = prepare_for_stakeholders(nbformat.read(str(executed), as_version=4))
    if stamp and stamp.get("title"):  # the browser tab and bookmarks show the report's title, not a file stem
        nb.metadata["title"] = f"{stamp['title']} — Customer Intelligence Workbench"
    exporter = HTMLExporter(template_name="workbench", extra_template_basedirs=[str(TEMPLATES_DIR)])
    exporter.require_js_url = f"{widget_assets_url}/require.js"
    exporter.widget_renderer_url = f"{widget_assets_url}/embed-amd.js"
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    resources = {"workbench": stamp or {}, "metadata": {"name": Path(executed).stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = fold_appendix(body, nb)
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")
    return html_path


APPENDIX_TAG = "appendix"  # the first cell with this tag starts the collapsed "How we know" part of a report
APPENDIX_SUMMARY = "How we know: methods, model details and quality checks"


def fold_appendix(body: str, nb: nbformat.NotebookNode) -> str:
    """Put everything from the first cell tagged ``appendix`` to the end of the page into a collapsed
    ``<details>`` block, so that readers meet the conclusion and the evidence first."""
    first = next((c for c in nb.cells if APPENDIX_TAG in c.get("metadata", {}).get("tags", [])), None)
    if first is None or not first.get("id"):
        return body
    marker = f'id="cell-id={first["id"]}"'
    at = body.find(marker)
    start = body.rfind("<div", 0, at)
    end = body.rfind("</main>")
    if at < 0 or start < 0 or end < start:
        return body
    return (body[:start] + f'<details class="wb-appendix" id="how-we-know"><summary>{APPENDIX_SUMMARY}</summary>'
            + body[start:end] + "</details>" + body[end:])


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


def short_title(title: str) -> str:
    """The navigation label of a report: its title without the step number and the subtitle.

    >>> short_title("03 · Segmentation: RFM, lifecycle stages"), short_title("02 · Cleaning, identity resolution")
    ('Segmentation', 'Cleaning')
    """
    import re

    t = re.sub(r"^\d+\s*[·.:-]\s*", "", title)
    return re.split(r"[:,]", t, maxsplit=1)[0].strip()


STALE_CLASS = "wb-banner-stale"


def mark_stale(html_path: str | Path, reason: str) -> None:
    """Put a visible *stale* banner at the top of a kept report whose inputs were rebuilt since it was made."""
    import re

    path = Path(html_path)
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    text = re.sub(rf'<div class="{STALE_CLASS}"[^>]*>.*?</div>', "", text, flags=re.S)
    banner = (f'<div class="{STALE_CLASS}" role="alert"><strong>Stale:</strong> {html.escape(reason)}. Its figures '
              "may disagree with the reports that were re-run.</div>")
    text = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner, text, count=1)
    path.write_text(text, encoding="utf-8")


def notebook_title(nb_path: str | Path) -> str:
    """The first markdown heading of a notebook, or its file name."""
    import nbformat

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
