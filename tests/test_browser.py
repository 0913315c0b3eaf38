"""The reports as a stakeholder sees them: opened in a real, offline Chromium.

Playwright drives the system's Chromium (Debian: ``apt-get install chromium``); Playwright's own browser
download is never used. Each page must load without console errors and without any request leaving the
machine, show every figure, and render every widget, which must respond to a selection. Screenshots go to
``<reports>/screenshots/``.

By default the pages are those of the tiny ``ci`` run; ``CIW_BROWSER_REPORTS=reports`` checks the reports of
``make reports`` instead (``make test-browser``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.reporting.pages import chromium_sandbox_args, find_chromium
from helpers.run import discover_notebooks

CHROMIUM = find_chromium() or "/usr/bin/chromium"
PAGES = ["index"] + [nb.stem for nb in discover_notebooks()]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extras install it
    sync_playwright = None

pytestmark = [
    pytest.mark.notebooks,
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed: run `make install`"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"Chromium not found at {CHROMIUM}: install it (Debian/Ubuntu: `sudo apt-get install "
                              "chromium`) or set CIW_CHROMIUM to its path to run the browser tests"),
]


@pytest.fixture(scope="module")
def reports_dir(request) -> Path:
    chosen = os.environ.get("CIW_BROWSER_REPORTS")
    if chosen:
        return Path(chosen).resolve()
    code, root, log = request.getfixturevalue("ci_run")
    assert code == 0, log
    return root / "reports"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_sandbox_args())
        yield b
        b.close()


def _path(reports_dir: Path, name: str) -> Path:
    return reports_dir / "index.html" if name == "index" else reports_dir / "html" / f"{name}.html"


def _open(browser, url: str):
    """Open ``url`` with every request outside the machine blocked and recorded, and console errors collected."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = {"errors": [], "remote": []}

    def route(r):
        if r.request.url.startswith(LOCAL_SCHEMES):
            r.continue_()
        else:
            problems["remote"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: problems["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems["errors"].append(str(e)))
    page.on("requestfailed", lambda r: problems["errors"].append(f"failed to load {r.url}")
            if r.url.startswith("file:") else None)
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page, problems


def _visible_panel_text(explorer) -> str:
    return " ".join(explorer.locator(".widget-html:visible").all_inner_texts())


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_offline_with_figures_and_working_widgets(browser, reports_dir, name):
    path = _path(reports_dir, name)
    if not path.exists():
        pytest.fail(f"{path} was not generated")
    page, problems = _open(browser, path.as_uri())
    try:
        n_views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        if n_views:
            # the renderer replaces each view script with the widget; wait until all are drawn
            page.wait_for_function("n => document.querySelectorAll('.jupyter-widgets.widget-container, "
                                   ".jupyter-widgets.widget-inline-hbox').length >= n", arg=n_views, timeout=20000)
        images = page.evaluate("Array.from(document.images).map(i => [i.currentSrc.slice(0, 40), i.complete, "
                               "i.naturalWidth])")
        broken = [src for src, complete, width in images if not complete or width == 0]
        assert not broken, f"{name}: figures that did not load: {broken}"
        charts = page.locator('svg[role="img"]').count()  # the summary's sparklines are inline SVG
        if name not in ("index",):
            assert images or charts, f"{name}: a report without a single figure"

        for explorer in page.locator(".wb-explorer").all():
            explorer.scroll_into_view_if_needed()
            assert explorer.is_visible()
            before = _visible_panel_text(explorer)
            assert before.strip(), f"{name}: an explorer shows an empty panel"
            select = explorer.locator("select")
            if select.count():
                select.first.select_option(index=1)
            else:  # sliders: move the first one step with the keyboard, as a user would
                explorer.locator(".noUi-handle").first.focus()
                page.keyboard.press("ArrowRight")
            page.wait_for_timeout(200)
            after = _visible_panel_text(explorer)
            assert after.strip() and after != before, f"{name}: the explorer did not respond to the selection"
        shots = reports_dir / "screenshots"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert not problems["errors"], f"{name}: console errors {problems['errors']}"
        assert not problems["remote"], f"{name}: requests leaving the machine {problems['remote']}"
    finally:
        page.close()


def test_explorers_exist_where_the_reports_promise_them(browser, reports_dir):
    """Guard against the widget test passing vacuously: 03 and 04 each carry an explorer."""
    for name, control in [("03_segmentation", "select"), ("04_clv", ".noUi-handle")]:
        page, _ = _open(browser, _path(reports_dir, name).as_uri())
        try:
            page.wait_for_selector(f".wb-explorer {control}", timeout=20000)
        finally:
            page.close()


def test_index_links_every_report_and_the_summary(browser, reports_dir):
    page, _ = _open(browser, _path(reports_dir, "index").as_uri())
    try:
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        for name in PAGES[1:]:
            assert f"html/{name}.html" in hrefs, name
        assert page.get_by_text("Read the executive summary").is_visible()
        broken = [h for h in set(hrefs) if not h.startswith(("http", "#")) and not (reports_dir / h.split("#")[0]).exists()]
        assert not broken
        # every "Details" link lands on its section: the fragment is an id of the target page
        from urllib.parse import unquote

        for h in {h for h in hrefs if "#" in h and not h.startswith("http")}:
            target, fragment = h.split("#", 1)
            text = (reports_dir / target).read_text(encoding="utf-8")
            assert f'id="{fragment}"' in text or f'id="{unquote(fragment)}"' in text, f"no section {h}"
    finally:
        page.close()


def test_executive_summary_prints_to_pdf(reports_dir, tmp_path):
    import re

    from helpers.reporting.pages import export_pdf

    pdf = export_pdf(_path(reports_dir, "07_summary"), tmp_path / "summary.pdf", chromium=CHROMIUM).read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 1 <= pages <= 2, f"the executive summary prints on {pages} A4 pages; it must fit on two"
    boxes = {tuple(round(float(v)) for v in m) for m in re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)", pdf)}
    assert boxes == {(595, 842)}, f"not A4: {boxes}"


def test_explorers_fall_back_to_their_default_view_without_the_widget_renderer(browser, reports_dir, tmp_path):
    """A page sent alone (no reports/assets) still shows each explorer's prepared default panel and says why;
    with the renderer, only the live widget shows."""
    import shutil

    page, _ = _open(browser, _path(reports_dir, "04_clv").as_uri())
    try:
        page.wait_for_selector(".wb-explorer", timeout=20000)
        assert not any(f.is_visible() for f in page.locator(".wb-widget-fallback").all())
    finally:
        page.close()
    alone = tmp_path / "alone"
    (alone / "html").mkdir(parents=True)
    shutil.copy(_path(reports_dir, "04_clv"), alone / "html" / "04_clv.html")
    page = browser.new_page()
    try:
        page.goto((alone / "html" / "04_clv.html").as_uri())
        page.wait_for_timeout(1500)
        fallbacks = page.locator(".wb-widget-fallback").all()
        assert fallbacks and all(f.is_visible() for f in fallbacks)
        assert "default view" in fallbacks[0].inner_text() and page.locator(".wb-explorer").count() == 0
    finally:
        page.close()
