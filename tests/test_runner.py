"""The runner end to end on the tiny `ci` parameter set, and the HTML it produces."""

from __future__ import annotations

import io
import json
import os
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers.run import run

pytestmark = pytest.mark.notebooks


def test_runner_succeeds_and_shows_progress(ci_run):
    code, root, log = ci_run
    assert code == 0, log
    assert re.search(r"\[1/\d+\] 01_collection", log) and "ok in" in log
    assert (root / "reports" / "executed" / "01_collection.ipynb").exists()
    assert (root / "reports" / "index.html").exists()
    assert (root / "data" / "processed" / "staged" / "raw" / "orders.parquet").exists()
    assert (root / "data" / "processed" / "staged" / "typed" / "orders.parquet").exists()
    metrics = json.loads((root / "data" / "processed" / "metrics" / "01_collection.json").read_text())
    assert metrics["metrics"]["records_in"] > 1000


def test_html_reports_have_no_code_and_no_remote_assets(ci_run):
    _, root, _ = ci_run
    pages = list((root / "reports" / "html").glob("*.html")) + [root / "reports" / "index.html"]
    assert len(pages) >= 2
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'class="[^"]*(jp-InputArea-editor|jp-CodeMirrorEditor)', text), page.name
        assert "hl-ipython3" not in text, page.name
        assert not re.search(r"<script[^>]+src=[\"']https?:", text), page.name
        assert not re.search(r"<link[^>]+href=[\"']https?:", text), page.name
        assert "@import url(http" not in text and "fonts.googleapis" not in text
        assert not re.search(r"https?://(unpkg|cdn|cdnjs)\.", text), f"{page.name} loads code from a CDN"
        assert "%autoreload" not in text and "import pandas" not in text


def test_html_has_charts_captions_and_stamp(ci_run):
    _, root, _ = ci_run
    text = (root / "reports" / "html" / "01_collection.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="data:image/png;base64', text)
    captions = re.findall(r'class="chart-caption"', text)
    assert len(images) >= 3 and len(captions) >= len(images)
    assert "Reproducibility stamp" in text and "data fingerprint" in text and "pandas" in text
    index = (root / "reports" / "index.html").read_text(encoding="utf-8")
    assert "html/01_collection.html" in index and "html/07_summary.html" in index
    assert 'data-kpi-label="customers">customers<' in index and "Read the executive summary" in index


def test_every_page_keeps_to_the_size_budget_and_shows_no_full_table(ci_run):
    from helpers.reporting.pages import HTML_BUDGET_BYTES, MAX_TABLE_ROWS

    _, root, _ = ci_run
    pages = list((root / "reports" / "html").glob("*.html")) + [root / "reports" / "index.html"]
    assert len(pages) == 8
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert page.stat().st_size <= HTML_BUDGET_BYTES, f"{page.name}: {page.stat().st_size:,} bytes"
        assert not re.search(r'<img[^>]+src="data:image/(?!png)', text), f"{page.name}: figures are PNG"
        assert not re.search(r'class="[^"]*jp-RenderedSVG', text), f"{page.name}: figures are PNG"
        for table in re.findall(r"<table.*?</table>", text, re.S):
            assert table.count("<tr") <= MAX_TABLE_ROWS + 1, f"{page.name}: a table with {table.count('<tr')} rows"


def _write_nb(path, cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def test_failure_exits_non_zero_names_the_cell_and_keeps_finished_reports(tmp_path):
    nbs = tmp_path / "notebooks"
    (nbs / "params").mkdir(parents=True)
    params = new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    _write_nb(nbs / "01_ok.ipynb", [new_markdown_cell("# Fine"), params, new_code_cell("print(x)")])
    params2 = new_code_cell("x = 1")
    params2.metadata["tags"] = ["parameters"]
    _write_nb(nbs / "02_bad.ipynb", [new_markdown_cell("# Broken"), params2, new_code_cell("y = 2"),
                                     new_code_cell("raise ValueError('orders.csv, column x, row 3: boom')")])
    _write_nb(nbs / "03_after.ipynb", [new_markdown_cell("# After"), params])
    (nbs / "params" / "t.yaml").write_text("common: {x: 2}\n")
    out = io.StringIO()
    code = run("t", reports_dir=tmp_path / "reports", notebooks_dir=nbs, params_dir=nbs / "params", out=out)
    log = out.getvalue()
    assert code == 1
    assert "02_bad" in log and "FAILED in code cell 3" in log and "ValueError" in log
    assert (tmp_path / "reports" / "html" / "01_ok.html").exists()
    assert not (tmp_path / "reports" / "html" / "03_after.html").exists()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "failed" in index and "not run" in index


def test_bad_parameters_stop_before_anything_runs(tmp_path):
    out = io.StringIO()
    code = run("ci", overrides=["n_customer=3"], reports_dir=tmp_path / "reports", out=out)
    assert code == 2 and "unknown parameter 'n_customer'" in out.getvalue()
    assert not (tmp_path / "reports" / "executed").exists()
    code = run("ci", overrides=["01_collection.n_customers=lots"], reports_dir=tmp_path / "r2", out=out)
    assert code == 2 and "expects int" in out.getvalue()


def _hashes(folder):
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.parquet"))}


def test_cleaning_outputs_balance_and_rerun_byte_identical(ci_run):
    import pandas as pd

    code, root, _ = ci_run
    processed = root / "data" / "processed"
    balance = pd.read_parquet(processed / "row_balance.parquet")
    assert balance["balanced"].all()
    assert (balance["records_in"] == balance["kept"] + balance["quarantined"] + balance["duplicates_merged"]
            + balance["unreadable"]).all()
    c360 = pd.read_parquet(processed / "customer_360.parquet")
    assert c360["customer_key"].is_unique and len(c360) == 400
    before = _hashes(processed)
    out = io.StringIO()
    assert run("ci", overrides=[f"data_dir={root / 'data'}"], only=["01", "02"], reports_dir=root / "reports2",
               out=out) == 0, out.getvalue()
    after = _hashes(processed)
    assert before == after and len(before) > 20


def test_report_02_shows_the_balance_and_no_personal_data(ci_run):
    _, root, _ = ci_run
    text = (root / "reports" / "html" / "02_cleaning.html").read_text(encoding="utf-8")
    assert "records in the file = kept + duplicates merged + quarantined + unreadable" in text
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text), "no e-mail address in the stakeholder report"
    import duckdb

    with duckdb.connect(str(root / "data" / "processed" / "workbench.duckdb"), read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM customer_360").fetchone()[0] == 400


def test_data_dictionary_documents_every_360_column(ci_run, project_root):
    import pandas as pd

    _, root, _ = ci_run
    cols = pd.read_parquet(root / "data" / "processed" / "customer_360.parquet").columns
    doc = (project_root / "data" / "DATA_DICTIONARY.md").read_text()
    missing = [c for c in cols if f"`{c}`" not in doc]
    assert not missing, f"undocumented columns: {missing}"


def test_segmentation_outputs_and_audiences(ci_run):
    import pandas as pd

    _, root, _ = ci_run
    processed = root / "data" / "processed"
    seg = pd.read_parquet(processed / "segments.parquet")
    assert len(seg) == 400 and seg["customer_key"].is_unique and seg["rfm_segment"].notna().all()
    files = sorted((processed / "audiences").glob("*.csv"))
    assert files, "one audience file per persona"
    for f in files:
        df = pd.read_csv(f, dtype=str)
        assert df["customer_pseudo_id"].isin(seg.loc[seg["marketing_consent"], "customer_pseudo_id"]).all()
    text = (root / "reports" / "html" / "03_segmentation.html").read_text(encoding="utf-8")
    assert "Persona quality card" in text and "Truth check" in text and "How we know" in text
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text)
    # the persona explorer is in the page, with its saved state, drawn by the local renderer
    assert 'type="application/vnd.jupyter.widget-view+json"' in text
    assert 'type="application/vnd.jupyter.widget-state+json"' in text
    assert "'../assets/widgets/embed-amd.js'" in text and 'src="../assets/widgets/require.js"' in text
    assert (root / "reports" / "assets" / "widgets" / "embed-amd.js").exists()


def test_clv_report_on_cdnow_shows_the_published_estimates(ci_run):
    _, root, _ = ci_run
    out = io.StringIO()
    code = run("ci", overrides=[f"data_dir={root / 'data'}", "04_clv.dataset=cdnow"], only=["04"],
               reports_dir=root / "reports_cdnow", out=out)
    assert code == 0, out.getvalue()
    text = (root / "reports_cdnow" / "html" / "04_clv_cdnow.html").read_text(encoding="utf-8")
    for published, ours in [("0.2430", "0.2426"), ("4.4140", "4.4136"), ("0.7930", "0.7929"), ("2.4260", "2.4259"),
                            ("-9,582.4000", "-9,582.4292")]:
        assert published in text and ours in text
    assert (root / "data" / "processed" / "clv_cdnow.parquet").exists()
    # the alternative data set never replaces the main job's CLV figures
    metrics = root / "data" / "processed" / "metrics"
    assert json.loads((metrics / "04_clv.json").read_text())["metrics"]["dataset"] == "orders"
    assert json.loads((metrics / "04_clv_cdnow.json").read_text())["metrics"]["dataset"] == "cdnow"


def test_clv_outputs_on_the_sample(ci_run):
    import pandas as pd

    _, root, _ = ci_run
    clv = pd.read_parquet(root / "data" / "processed" / "clv.parquet")
    assert clv["customer"].is_unique and (clv["clv"] >= 0).all()
    assert clv["p_alive"].between(0, 1).all() or clv["p_alive"].isna().all()  # missing when dropout is not identified
    # every prediction carries its interval, the expected next order date included
    for col in ("clv", "expected_purchases", "next_order_date"):
        assert (clv[f"{col}_low"] <= clv[col]).all() and (clv[col] <= clv[f"{col}_high"]).all(), col
    text = (root / "reports" / "html" / "04_clv.html").read_text(encoding="utf-8")
    assert "Truth check" in text and "How we know" in text and "held out of the fit" in text
    for part in ("Customers who bought often and recently", "weighted mean |error|",
                 "expected next order (90% interval)"):
        assert part in text, part
    # the P(alive) history and map when the data show dropout; otherwise a sentence says why they are missing
    assert ("Each order lifts this customer's P(alive)" in text) or ("P(alive) maps are not shown" in text)
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text)


def test_ab_report_on_the_sample_campaigns(ci_run):
    _, root, _ = ci_run
    text = (root / "reports" / "html" / "06_ab_test.html").read_text(encoding="utf-8")
    for heading in ["The answer", "Health checks: can the data be trusted?", "Goal and guardrail metrics",
                    "How we know", "Units per arm to detect", "A/A check"]:
        assert heading in text
    # the health checks, a ratio metric, a quantile metric and the variance-reduction comparison are shown
    for cell in ["sample ratio by persona", "pre-exposure bias", "units in more than one arm", "revenue per click",
                 "<td>ratio</td>", "<td>p50</td>", "regression adjustment on", "post-stratification by"]:
        assert cell in text, cell
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text)
    metrics = json.loads((root / "data" / "processed" / "metrics" / "06_ab_test.json").read_text())
    assert metrics["metrics"]["decision"] in {"ship", "roll back", "keep running", "no decision"}


def test_ab_report_on_any_table(ci_run, tmp_path):
    """source=table: a Cookie-Cats-shaped file with a planted 2-point drop and a sample-ratio mismatch."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 20_000
    version = np.where(rng.random(n) < 0.53, "gate_40", "gate_30")  # 53/47: a sample-ratio mismatch
    retained = rng.random(n) < np.where(version == "gate_30", 0.20, 0.18)
    pd.DataFrame({"userid": np.arange(n), "version": version, "sum_gamerounds": rng.poisson(50, n),
                  "retention_7": retained}).to_csv(tmp_path / "game.csv", index=False)
    _, root, _ = ci_run
    overrides = [f"data_dir={root / 'data'}", "06_ab_test.source=table", f"06_ab_test.table_file={tmp_path / 'game.csv'}",
                 "06_ab_test.experiment=", "06_ab_test.unit_col=userid", "06_ab_test.variant_col=version", "06_ab_test.control=gate_30",
                 "06_ab_test.metric=retention_7", "06_ab_test.revenue_metric=sum_gamerounds", "06_ab_test.covariate=",
                 "06_ab_test.ratio_denominator=",
                 "06_ab_test.segment_col="]
    out = io.StringIO()
    assert run("ci", overrides=overrides, only=["06"], reports_dir=tmp_path / "reports", out=out) == 0, out.getvalue()
    text = (tmp_path / "reports" / "html" / "06_ab_test_table.html").read_text(encoding="utf-8")
    # the planted drop is there, but a broken split blocks every decision
    assert "Sample-ratio mismatch" in text and "No decision: the health checks failed" in text and 'role="alert"' in text
    assert "wins on" not in text and "roll it out" not in text
    m = json.loads((root / "data" / "processed" / "metrics" / "06_ab_test_table.json").read_text())["metrics"]
    assert m["decision"] == "no decision" and m["blocked_by"].startswith("sample-ratio mismatch")
    assert m["comparisons"][0]["diff"] < 0 and m["comparisons"][0]["p_value"] < 0.001
    metrics = root / "data" / "processed" / "metrics"
    assert "send_time" in json.loads((metrics / "06_ab_test.json").read_text())["metrics"]["experiment"]


def test_sentiment_report_queue_and_dry_run_alerts(ci_run):
    import pandas as pd

    _, root, _ = ci_run
    text = (root / "reports" / "html" / "05_sentiment.html").read_text(encoding="utf-8")
    for heading in ["How customers feel", "Sentiment validation", "What drives satisfaction?",
                    "Closing the loop", "How we know"]:
        assert heading in text
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text), "no e-mail address (customer or team) in the report"
    followups = root / "data" / "processed" / "followups"
    queue = pd.read_csv(followups / "followup_queue.csv")
    assert len(queue) > 0 and "customer_key" not in queue.columns
    assert queue["priority"].is_monotonic_decreasing
    assert list((followups / "outbox").glob("*.eml")), "dry run writes the alert e-mails as files"


def test_reports_after_a_rerun_step_are_marked_stale(ci_run, tmp_path):
    """After --only 03, the kept reports of 04–07 were built from 03's previous outputs: the index and their pages
    say so, instead of mixing old and new figures silently."""
    import shutil

    _, root, _ = ci_run
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("reports2", "reports_cdnow"))
    out = io.StringIO()
    assert run("ci", overrides=[f"data_dir={copy / 'data'}"], only=["03"], reports_dir=copy / "reports",
               out=out) == 0, out.getvalue()
    runs = {r["name"]: r for r in json.loads((copy / "reports" / "run.json").read_text())["runs"]}
    assert runs["03_segmentation"]["status"] == "ok" and runs["02_cleaning"]["status"] == "ok"
    assert {runs[n]["status"] for n in ["04_clv", "05_sentiment", "06_ab_test", "07_summary"]} == {"stale"}
    page = (copy / "reports" / "html" / "04_clv.html").read_text(encoding="utf-8")
    assert 'class="wb-banner-stale"' in page and "step 03 was re-run" in page
    assert "stale" in (copy / "reports" / "index.html").read_text(encoding="utf-8")
    assert "Stale (built from earlier outputs" in out.getvalue()


def _shown_kpis(pages: dict[str, str]) -> tuple[dict, dict]:
    values, labels = {}, {}
    for name, text in pages.items():
        for kpi_id, value in re.findall(r'data-kpi="([a-z_]+)">([^<]*)<', text):
            values.setdefault(kpi_id, {}).setdefault(value, set()).add(name)
        for kpi_id, label in re.findall(r'data-kpi-label="([a-z_]+)">([^<]*)<', text):
            labels.setdefault(kpi_id, {}).setdefault(label, set()).add(name)
    return values, labels


def test_every_kpi_shown_on_several_pages_has_one_value_and_one_label(ci_run):
    """The metric registry in practice: render every report, collect every KPI card, and require one value and
    the registry's label per KPI across the index, the step pages and the summary."""
    from helpers.core.fmt import fmt_money
    from helpers.core.kpis import KPIS

    _, root, _ = ci_run
    reports = root / "reports"
    pages = {p.stem: p.read_text(encoding="utf-8") for p in (reports / "html").glob("*.html")}
    pages["index"] = (reports / "index.html").read_text(encoding="utf-8")
    values, labels = _shown_kpis(pages)
    for kpi_id, shown in values.items():
        assert len(shown) == 1, f"{kpi_id} shows different values on different pages: {shown}"
        assert set(labels[kpi_id]) == {KPIS[kpi_id].label}, f"{kpi_id} is labelled {set(labels[kpi_id])}"
    on_several = [k for k, shown in values.items() if len(next(iter(shown.values()))) > 1]
    assert len(on_several) >= 8, on_several  # the check is only worth something if figures repeat
    # and the one value is the owning step's own figure, formatted once
    recorded = json.loads((root / "data" / "processed" / "kpis" / "02_cleaning.json").read_text())["kpis"]
    assert set(values["net_revenue"]) == {fmt_money(recorded["net_revenue"], "EUR")}
    assert set(values["customers"]) == {f"{recorded['customers']:,}"}
    assert {"index", "07_summary", "02_cleaning", "03_segmentation"} <= set(values["customers"][f"{recorded['customers']:,}"])


def test_a_broken_split_never_reads_ship_on_06_07_or_the_index(ci_run, tmp_path):
    """Break the split of every campaign test (70% of one arm's sends lost): 06, 07 and the index must block
    the decision and say why."""
    import shutil

    import numpy as np
    import pandas as pd

    _, root, _ = ci_run
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("reports2", "reports_cdnow"))
    clean = copy / "data" / "processed" / "clean"
    sends, campaigns = pd.read_parquet(clean / "sends.parquet"), pd.read_parquet(clean / "campaigns.parquet")
    rng = np.random.default_rng(0)
    drop = pd.Series(False, index=sends.index)
    for _, group in campaigns.dropna(subset=["experiment"]).groupby("experiment"):
        in_test = sends["campaign_id"].isin(group["campaign_id"])
        arm = sorted(sends.loc[in_test, "variant"].dropna().unique())[-1]
        drop |= in_test & (sends["variant"] == arm) & (rng.random(len(sends)) < 0.7)
    sends[~drop].to_parquet(clean / "sends.parquet", index=False)
    out = io.StringIO()
    assert run("ci", overrides=[f"data_dir={copy / 'data'}"], only=["06", "07"], reports_dir=copy / "reports",
               out=out) == 0, out.getvalue()
    metrics = json.loads((copy / "data" / "processed" / "metrics" / "06_ab_test.json").read_text())["metrics"]
    assert metrics["srm_mismatch"] and metrics["decision"] == "no decision"
    assert {e["decision"] for e in metrics["all_experiments"]} == {"no decision"}
    pages = {"06": (copy / "reports" / "html" / "06_ab_test.html").read_text(encoding="utf-8"),
             "07": (copy / "reports" / "html" / "07_summary.html").read_text(encoding="utf-8"),
             "index": (copy / "reports" / "index.html").read_text(encoding="utf-8")}
    for name, text in pages.items():
        assert not re.search(r">\s*ship\s*<", text), f"a 'ship' verdict on {name}"
        assert "Roll out" not in text and "roll it out" not in text and "wins on" not in text, name
    assert 'class="wb-alarm" role="alert"' in pages["06"] and "health checks failed" in pages["06"]
    assert "sample-ratio mismatch" in pages["07"] and "Fix the health checks of" in pages["07"] or \
        "no decision" in pages["07"]
    n = len(metrics["all_experiments"])
    assert f'data-kpi="experiments_to_ship">0 of {n}<' in pages["index"]


def test_kernels_of_small_data_get_single_threaded_numerics(tmp_path, monkeypatch):
    """Below the engine's small-input size the runner starts kernels with BLAS/OpenMP on one thread; above it, or
    where the user set a variable, it leaves the environment alone."""
    from helpers.core.threads import kernel_thread_env
    from helpers.run import environment

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    staged = tmp_path / "processed" / "staged" / "raw"
    staged.mkdir(parents=True)
    (staged / "t.parquet").write_bytes(b"x" * 5000)
    assert kernel_thread_env(tmp_path) == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert kernel_thread_env(tmp_path, small_bytes=4000) == {}  # large data: every core
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert "OMP_NUM_THREADS" not in kernel_thread_env(tmp_path)
    with environment({"OPENBLAS_NUM_THREADS": "1"}):
        assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert "OPENBLAS_NUM_THREADS" not in os.environ
