"""Run the workbench notebooks with papermill and render stakeholder HTML.

Usage::

    python -m helpers.run                       # default parameter set, every notebook
    python -m helpers.run --params ci           # tiny set used by the tests
    python -m helpers.run -p n_customers=2000 -p 03_segmentation.k_max=6
    python -m helpers.run --only 01 --only 02   # a subset, by number
    python -m helpers.run --list                # notebooks and their parameters
    python -m helpers.run --only 07 --pdf       # also print the executive summary to reports/summary.pdf

Writes ``reports/executed/*.ipynb``, ``reports/html/*.html`` and ``reports/index.html``.
Exits 1 when a notebook fails (naming it and the failing cell) and keeps the reports
that finished; exits 2 for invalid parameters, before anything runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from helpers.core.errors import ParameterError
from helpers.core.paths import NOTEBOOKS_DIR, PARAMS_DIR, REPORTS_DIR, resolve


def discover_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Numbered notebooks (``NN_topic.ipynb``) in number order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if not p.name.endswith(".executed.ipynb"))


def declared_parameters(nb_path: Path) -> dict[str, dict]:
    import papermill

    return papermill.inspect_notebook(str(nb_path))


def _fail_location(exc: Exception, executed: Path) -> str:
    """Name the failing cell: its number among code cells and its first line."""
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
        # Count as in the committed notebook: papermill's injected-parameters cell is not there.
        code = [c for c in nb.cells if c.cell_type == "code"
                and "injected-parameters" not in c.metadata.get("tags", [])]
        for i, cell in enumerate(code, start=1):
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                return f"code cell {i} ({first[:70]!r})"
    except Exception:  # the executed file may not exist if the kernel never started
        pass
    return "an unknown cell"


def _with_earlier_reports(runs: list[dict], all_notebooks: list[Path], reports_dir: Path) -> list[dict]:
    """With --only, keep the index entries of notebooks not run this time whose reports still exist."""
    previous = {}
    run_file = reports_dir / "run.json"
    if run_file.exists():
        previous = {r["name"]: r for r in json.loads(run_file.read_text(encoding="utf-8")).get("runs", [])}
    this_run = {r["name"]: r for r in runs}
    out = []
    for nb in all_notebooks:
        if nb.stem in this_run:
            out.append(this_run[nb.stem])
        elif nb.stem in previous and previous[nb.stem].get("html") and (reports_dir / previous[nb.stem]["html"]).exists():
            out.append(previous[nb.stem])
        else:
            out.append({"name": nb.stem, "title": nb.stem, "params": {}, "status": "skipped", "seconds": 0.0,
                        "html": None})
    return out


def run(param_set: str = "default", overrides: list[str] | None = None, only: list[str] | None = None,
        reports_dir: str | Path | None = None, notebooks_dir: Path = NOTEBOOKS_DIR, params_dir: Path = PARAMS_DIR,
        out=sys.stdout, pdf: bool = False) -> int:
    """Run the notebooks; return the process exit code (0 ok, 1 a notebook failed, 2 bad parameters)."""
    import papermill

    from helpers import params as P
    from helpers.reporting import pages as R
    from helpers.reporting.index import build_index
    from helpers.reporting import widget_assets


    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    notebooks = all_notebooks = discover_notebooks(notebooks_dir)
    if not notebooks:
        say(f"No numbered notebooks found in {notebooks_dir}")
        return 2
    try:
        pset = P.load_param_set(param_set, params_dir)
        for text in overrides or []:
            nb, key, value = P.parse_override(text)
            if nb:
                pset["notebooks"].setdefault(nb, {})[key] = value
            else:
                pset["common"][key] = value
        declared = {p.stem: declared_parameters(p) for p in notebooks}
        resolved = P.resolve_all(pset, declared)
        if only:
            wanted = {o.zfill(2) for o in only}
            unknown = wanted - {p.stem[:2] for p in notebooks}
            if unknown:
                raise ParameterError(f"--only {', '.join(sorted(unknown))}: no such notebook number "
                                     f"(have {', '.join(p.stem[:2] for p in notebooks)})")
            notebooks = [p for p in notebooks if p.stem[:2] in wanted]
    except ParameterError as exc:
        say(f"Parameter error: {exc}")
        return 2
    reports_dir = resolve(reports_dir or pset.get("reports_dir") or REPORTS_DIR)

    executed_dir, html_dir = reports_dir / "executed", reports_dir / "html"
    executed_dir.mkdir(parents=True, exist_ok=True)
    html_dir.mkdir(parents=True, exist_ok=True)
    if widget_assets.copy_to(reports_dir) is None:
        say(f"Warning: the widget renderer is not installed ({widget_assets.assets_dir()}), so explorers will be "
            "blank in the HTML. Run `make install` or `python -m helpers.reporting.widget_assets fetch` once.")
    data_dir = resolve(pset["common"].get("data_dir", "data"))
    # One notebook showing identities makes the whole run internal: every page of it carries the banner.
    pii_mode = "allow" if any(v.get("pii") == "allow" for v in resolved.values()) else "mask"
    if pii_mode == "allow":
        say("NOTE: pii=allow: these reports show names and e-mails and are marked INTERNAL on every page.")
    stamp_base = {"git_commit": R.git_commit(), "packages": R.package_versions(), "param_set": param_set,
                  "pii_banner": R.PII_BANNER if pii_mode == "allow" else ""}
    runs, failed = [], False
    nav = [{"href": f"{p.stem}.html", "title": p.stem[:2]} for p in notebooks]
    say(f"Running {len(notebooks)} notebook(s) with parameter set '{param_set}' -> {reports_dir}")
    for i, nb in enumerate(notebooks, start=1):
        name = nb.stem
        title = R.notebook_title(nb)
        values = resolved[name]
        entry = {"name": name, "title": title, "params": values, "status": "skipped", "seconds": 0.0, "html": None}
        runs.append(entry)
        if failed:
            continue
        say(f"[{i}/{len(notebooks)}] {name}: {title} ...")
        executed = executed_dir / nb.name
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(str(nb), str(executed), parameters=values, kernel_name="python3",
                                       cwd=str(notebooks_dir), progress_bar=False, log_output=False,
                                       report_mode=False)
        except papermill.PapermillExecutionError as exc:
            if exc.ename == "StepSkipped":
                seconds = time.perf_counter() - t0
                entry.update(status="skipped", reason=str(exc.evalue), seconds=seconds)
                stamp = {**stamp_base, "params": values, "run_seconds": f"{seconds:.1f}",
                         "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                         "data_fingerprint": R.data_fingerprint(data_dir / "raw"), "nav": nav}
                R.export_html(executed, html_dir / f"{name}.html", stamp)
                entry["html"] = f"html/{name}.html"
                say(f"    skipped: {exc.evalue}")
                continue
            entry.update(status="failed", seconds=time.perf_counter() - t0)
            say(f"    FAILED in {_fail_location(exc, executed)}: {exc.ename}: {exc.evalue}")
            say(f"    the executed notebook with the traceback is {executed}")
            failed = True
            continue
        except Exception as exc:  # kernel died, notebook unreadable...
            entry.update(status="failed", seconds=time.perf_counter() - t0)
            say(f"    FAILED: {type(exc).__name__}: {exc}")
            failed = True
            continue
        seconds = time.perf_counter() - t0
        stamp = {**stamp_base, "params": values, "run_seconds": f"{seconds:.1f}",
                 "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "data_fingerprint": R.data_fingerprint(data_dir / "raw"), "nav": nav}
        page = R.export_html(executed, html_dir / f"{name}.html", stamp)
        if page.stat().st_size > R.HTML_BUDGET_BYTES:
            say(f"    warning: {page.name} is {page.stat().st_size / 1e6:.1f} MB, over the "
                f"{R.HTML_BUDGET_BYTES / 1e6:.1f} MB budget for a report")
        entry.update(status="ok", seconds=seconds, html=f"html/{name}.html")
        say(f"    ok in {seconds:.1f} s -> {html_dir / (name + '.html')}")
    n_ok = sum(r["status"] == "ok" for r in runs)
    runs = _with_earlier_reports(runs, all_notebooks, reports_dir)
    metrics = R.read_metrics(data_dir / "processed")
    index = build_index(reports_dir, runs, metrics, param_set, pii_mode)
    (reports_dir / "run.json").write_text(json.dumps({"param_set": param_set, "runs": runs}, indent=2, default=str)
                                          + "\n", encoding="utf-8")
    say(f"Index: {index}")
    if failed:
        say("Run FAILED: see the notebook named above; reports that finished are kept.")
        return 1
    if pdf:
        summary = R.summary_run(runs)
        if summary is None:
            say("PDF: no executive summary report to print (run notebook 07).")
            return 1
        try:
            say(f"PDF: {R.export_pdf(reports_dir / summary['html'], reports_dir / 'summary.pdf')}")
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            say(f"PDF export FAILED: {exc}")
            return 1
    say(f"Done: {n_ok} report(s).")
    return 0


def _list(out=sys.stdout) -> int:
    for nb in discover_notebooks():
        print(nb.stem, file=out)
        for name, d in declared_parameters(nb).items():
            print(f"    {name}: {d.get('inferred_type_name')} = {d.get('default')}", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default=os.environ.get("CIW_PARAMS", "default"),
                        help="named parameter set in notebooks/params/ (default: default) or a YAML path")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter for every notebook, or NN_name.KEY=VALUE for one")
    parser.add_argument("--only", action="append", metavar="NN", help="run only notebook number NN (repeatable)")
    parser.add_argument("--reports-dir", default=None,
                        help="where to write the reports (default: the parameter set's reports_dir, else reports/)")
    parser.add_argument("--list", action="store_true", help="list notebooks and their parameters, then exit")
    parser.add_argument("--pdf", action="store_true",
                        help="also print the executive summary to reports/summary.pdf with headless Chromium")
    args = parser.parse_args(argv)
    if args.list:
        return _list()
    return run(args.params, args.param, args.only, args.reports_dir, pdf=args.pdf)


if __name__ == "__main__":
    sys.exit(main())
