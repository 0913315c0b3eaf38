"""Run the workbench notebooks with papermill and render stakeholder HTML.

Usage::

    python -m helpers.run                       # default parameter set, every notebook
    python -m helpers.run --params ci           # tiny set used by the tests
    python -m helpers.run -p n_customers=2000 -p 03_segmentation.k_max=6
    python -m helpers.run --only 01 --only 02   # a subset, by number
    python -m helpers.run --list                # notebooks and their parameters
    python -m helpers.run --only 07 --pdf       # also print the executive summary to reports/summary.pdf

Writes ``reports/executed/*.ipynb``, ``reports/html/*.html`` and ``reports/index.html``.
Exits 1 when a notebook fails (naming it and the failing cell) and keeps the reports that finished; exits 2 for
invalid parameters, before anything runs. A step with nothing to analyse in the data is marked *skipped* and the
run goes on. Secrets (database URLs given through ``env:``, SMTP credentials) are scrubbed from every output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from helpers.core.errors import ParameterError
from helpers.core.threads import kernel_thread_env
from helpers.core.paths import NOTEBOOKS_DIR, PARAMS_DIR, REPORTS_DIR, resolve

TEXT_OUTPUTS = {".json", ".csv", ".eml", ".html", ".ipynb", ".md", ".txt", ".log", ".yaml"}


def discover_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Numbered notebooks (``NN_topic.ipynb``) in number order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if not p.name.endswith(".executed.ipynb"))


def declared_parameters(nb_path: Path) -> dict[str, dict]:
    import papermill

    return papermill.inspect_notebook(str(nb_path))


def report_name(stem: str, values: dict) -> str:
    """The report's file name: the notebook's, with the data set's name when it analyses another data set, so an
    alternative run (CDNOW in 04, a table file in 06) never replaces the main job's report.

    >>> report_name("04_clv", {"dataset": "cdnow"}), report_name("04_clv", {"dataset": "orders"})
    ('04_clv_cdnow', '04_clv')
    """
    if values.get("dataset") not in (None, "", "orders"):
        return f"{stem}_{values['dataset']}"
    if values.get("table_file"):
        return f"{stem}_table"
    return stem


def quiet_kernel_manager():
    """A kernel manager that encrypts the kernel's local channels (CurveZMQ), which is safer and keeps ipykernel
    from printing its 'running over TCP without encryption' warning on every start."""
    from jupyter_client.manager import KernelManager
    from traitlets import default

    class EncryptedKernelManager(KernelManager):
        @default("transport_encryption")
        def _default_encryption(self) -> str:
            import zmq

            return "required" if zmq.has("curve") else "disabled"

    return EncryptedKernelManager


def kernel_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children (the kernels papermill started and
    reaped); 0 where the platform has no ``resource`` module."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


@contextmanager
def environment(values: dict[str, str]):
    """Set environment variables for the duration of the block (for the processes started in it), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def kernel_peak_mib() -> float:
    """The largest resident set of any finished child so far, in MiB (Linux reports KiB); 0 without
    ``resource``. It only grows: a notebook whose figure exceeds the previous one's set the new peak."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def fail_location(executed: Path) -> str:
    """The visible cell that failed: its number among the notebook's code cells, the section it is in, and its
    first line."""
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # the executed file may not exist if the kernel never started
        return "an unknown cell (the kernel did not start)"
    heading, number = "", 0
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
                    break
            continue
        if cell.cell_type != "code" or "injected-parameters" in tags:
            continue
        number += 1
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            first = next((ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("%")), "")
            kind = "the hidden setup cell" if "remove-cell" in tags else f"code cell {number}"
            section = f" in section '{heading}'" if heading else ""
            return f"{kind}{section} ({first[:70]!r})"
    return "an unknown cell"


def _previous_runs(reports_dir: Path) -> dict[str, dict]:
    run_file = reports_dir / "run.json"
    if not run_file.exists():
        return {}
    try:
        return {r["name"]: r for r in json.loads(run_file.read_text(encoding="utf-8")).get("runs", [])}
    except (ValueError, KeyError):
        return {}


def _with_earlier_reports(runs: list[dict], all_notebooks: list[Path], reports_dir: Path, rerun: set[str]
                          ) -> list[dict]:
    """With --only, keep the entries of notebooks not run this time whose reports still exist. A kept report of a
    step *after* one that was re-run is marked stale: it was built from the earlier step's previous outputs."""
    previous = _previous_runs(reports_dir)
    this_run = {r["name"]: r for r in runs}
    first_rerun = min((n[:2] for n in rerun), default=None)
    out = []
    for nb in all_notebooks:
        if nb.stem in this_run:
            out.append(this_run[nb.stem])
        elif nb.stem in previous and previous[nb.stem].get("html") and (
                reports_dir / previous[nb.stem]["html"]).exists():
            entry = dict(previous[nb.stem])
            if first_rerun is not None and nb.stem[:2] > first_rerun and entry.get("status") in ("ok", "stale"):
                entry["status"] = "stale"
                entry["stale_because"] = (f"step {first_rerun} was re-run after this report was made; rerun "
                                          f"--only {nb.stem[:2]} (or the whole job) to refresh it")
            out.append(entry)
        else:
            out.append({"name": nb.stem, "title": nb.stem, "params": {}, "status": "not run", "seconds": 0.0,
                        "html": None})
    return out


def scrub_outputs(folders: list[Path], secrets: list[str]) -> int:
    """Replace every secret in every text output under ``folders``; returns the number of files changed."""
    from helpers.core.secrets import scrub_file

    if not secrets:
        return 0
    changed = 0
    for folder in folders:
        if folder.exists():
            for p in folder.rglob("*"):
                if p.is_file() and p.suffix.lower() in TEXT_OUTPUTS:
                    changed += scrub_file(p, secrets)
    return changed


def run(param_set: str = "default", overrides: list[str] | None = None, only: list[str] | None = None,
        reports_dir: str | Path | None = None, notebooks_dir: Path = NOTEBOOKS_DIR, params_dir: Path = PARAMS_DIR,
        out=sys.stdout, pdf: bool = False) -> int:
    """Run the notebooks; return the process exit code (0 ok, 1 a notebook failed, 2 bad parameters)."""
    import papermill

    from helpers import params as P
    from helpers.core.secrets import scrub, scrub_file, secret_values
    from helpers.reporting import pages as R
    from helpers.reporting import widget_assets
    from helpers.reporting.index import build_index

    secrets: list[str] = []

    def say(msg: str) -> None:
        print(scrub(msg, secrets) if secrets else msg, file=out, flush=True)

    notebooks = all_notebooks = discover_notebooks(notebooks_dir)
    if not notebooks:
        say(f"No numbered notebooks found in {notebooks_dir}")
        return 2
    try:
        pset = P.load_param_set(param_set, params_dir)
        parsed = [P.parse_override(text) for text in overrides or []]
        declared = {p.stem: declared_parameters(p) for p in notebooks}
        resolved = P.resolve_all(pset, declared, parsed)
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
    secrets = secret_values({f"{nb}.{k}": v for nb, vals in resolved.items() for k, v in vals.items()})
    reports_dir = resolve(reports_dir or pset.get("reports_dir") or REPORTS_DIR)
    executed_dir, html_dir = reports_dir / "executed", reports_dir / "html"
    executed_dir.mkdir(parents=True, exist_ok=True)
    html_dir.mkdir(parents=True, exist_ok=True)
    if widget_assets.copy_to(reports_dir) is None:
        say(f"Warning: the widget renderer is not installed ({widget_assets.assets_dir()}), so explorers show their "
            "prepared default view only. Run `make install` or `python -m helpers.reporting.widget_assets fetch` "
            "once.")
    data_dir = resolve(next((v["data_dir"] for v in resolved.values() if "data_dir" in v), "data"))
    # One notebook showing identities makes the whole run internal: every page of it carries the banner.
    pii_mode = "allow" if any(v.get("pii") == "allow" for v in resolved.values()) else "mask"
    if pii_mode == "allow":
        say("NOTE: pii=allow: these reports show names and e-mails and are marked INTERNAL on every page.")
    stamp_base = {"git_commit": R.git_commit(), "packages": R.package_versions(), "param_set": param_set,
                  "pii_banner": R.PII_BANNER if pii_mode == "allow" else ""}
    titles = {p.stem: R.notebook_title(p) for p in all_notebooks}
    names = {p.stem: report_name(p.stem, resolved[p.stem]) for p in all_notebooks}
    nav = [{"href": f"{names[p.stem]}.html", "title": R.short_title(titles[p.stem]), "number": p.stem[:2]}
           for p in all_notebooks]
    kernel_manager = quiet_kernel_manager()
    runs, failed = [], False
    say(f"Running {len(notebooks)} notebook(s) with parameter set '{param_set}' -> {reports_dir}")
    for i, nb in enumerate(notebooks, start=1):
        stem, name, title = nb.stem, names[nb.stem], titles[nb.stem]
        values = resolved[stem]
        entry = {"name": name, "notebook": stem, "title": title, "params": values, "status": "not run",
                 "seconds": 0.0, "html": None}
        runs.append(entry)
        if failed:
            continue
        say(f"[{i}/{len(notebooks)}] {name}: {title} ...")
        executed = executed_dir / f"{name}.ipynb"
        t0, cpu0 = time.perf_counter(), kernel_cpu_seconds()
        status, reason = "ok", ""
        try:
            with environment(kernel_thread_env(data_dir)):  # the kernel inherits it
                papermill.execute_notebook(str(nb), str(executed), parameters=values, kernel_name="python3",
                                           cwd=str(notebooks_dir), progress_bar=False, log_output=False,
                                           report_mode=False, kernel_manager_class=kernel_manager)
        except papermill.PapermillExecutionError as exc:
            scrub_file(executed, secrets)
            if exc.ename != "StepSkipped":
                R.clear_kpis(name, data_dir / "processed")  # no page may show this step's figures of an earlier run
                entry.update(status="failed", seconds=time.perf_counter() - t0)
                say(f"    FAILED in {fail_location(executed)}: {exc.ename}: {exc.evalue}")
                say(f"    the executed notebook with the traceback is {executed}")
                failed = True
                continue
            status, reason = "skipped", str(exc.evalue)
        except Exception as exc:  # kernel died, notebook unreadable...
            R.clear_kpis(name, data_dir / "processed")
            entry.update(status="failed", seconds=time.perf_counter() - t0)
            say(f"    FAILED: {type(exc).__name__}: {exc}")
            failed = True
            continue
        scrub_file(executed, secrets)
        seconds = time.perf_counter() - t0
        entry["kernel_cpu_seconds"] = kernel_cpu_seconds() - cpu0
        entry["peak_mib_so_far"] = kernel_peak_mib()
        stamp = {**stamp_base, "params": values, "run_seconds": f"{seconds:.1f}", "title": title,
                 "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "data_fingerprint": R.data_fingerprint(data_dir / "raw"), "nav": nav, "current": f"{name}.html"}
        page = R.export_html(executed, html_dir / f"{name}.html", stamp)
        scrub_file(page, secrets)
        if page.stat().st_size > R.HTML_BUDGET_BYTES:
            say(f"    warning: {page.name} is {page.stat().st_size / 1e6:.1f} MB, over the "
                f"{R.HTML_BUDGET_BYTES / 1e6:.1f} MB budget for a report")
        entry.update(status=status, seconds=seconds, html=f"html/{name}.html", reason=reason)
        say(f"    skipped: {reason}" if status == "skipped" else f"    ok in {seconds:.1f} s -> {page}")
    n_ok = sum(r["status"] == "ok" for r in runs)
    rerun = {r["notebook"] for r in runs if r["status"] in ("ok", "skipped")}
    runs = _with_earlier_reports(runs, all_notebooks, reports_dir, rerun)
    for entry in runs:
        if entry.get("status") == "stale" and entry.get("html"):
            R.mark_stale(reports_dir / entry["html"], entry["stale_because"])
    metrics = R.read_metrics(data_dir / "processed")
    index = build_index(reports_dir, runs, metrics, param_set, pii_mode, values=R.kpi_values(data_dir / "processed"),
                        currency=R.dataset_currency(data_dir / "processed"))
    (reports_dir / "run.json").write_text(json.dumps({"param_set": param_set, "runs": runs}, indent=2, default=str)
                                          + "\n", encoding="utf-8")
    scrub_outputs([reports_dir, data_dir / "processed"], secrets)
    say(f"Index: {index}")
    stale = [r["name"] for r in runs if r.get("status") == "stale"]
    if stale:
        say(f"Stale (built from earlier outputs of a step that was re-run): {', '.join(stale)}")
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


def list_parameters(out=sys.stdout) -> int:
    """Every notebook's parameters with their type, default and what they do."""
    from helpers.params import declared_type

    for nb in discover_notebooks():
        print(nb.stem, file=out)
        for name, d in declared_parameters(nb).items():
            print(f"    {name} ({declared_type(d)}, default {d.get('default')}): {d.get('help', '').strip()}",
                  file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default=os.environ.get("CIW_PARAMS", "default"),
                        help="named parameter set in notebooks/params/ (default: default) or a YAML path")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter for every notebook that declares it, or NN_name.KEY=VALUE for "
                             "one; always wins over the parameter set")
    parser.add_argument("--only", action="append", metavar="NN", help="run only notebook number NN (repeatable)")
    parser.add_argument("--reports-dir", default=None,
                        help="where to write the reports (default: the parameter set's reports_dir, else reports/)")
    parser.add_argument("--list", action="store_true", help="list notebooks and their parameters, then exit")
    parser.add_argument("--pdf", action="store_true",
                        help="also print the executive summary to reports/summary.pdf with headless Chromium")
    args = parser.parse_args(argv)
    if args.list:
        return list_parameters()
    return run(args.params, args.param, args.only, args.reports_dir, pdf=args.pdf)


if __name__ == "__main__":
    sys.exit(main())
