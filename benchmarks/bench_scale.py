"""The full run against the number of customers: time, CPU seconds and peak memory, per notebook and in total.

Each size is one ``python -m helpers.run -p 01_collection.n_customers=N -p data_dir=<scratch>`` (the run an analyst
makes, sample generation included), inside a small wrapper process whose ``RUSAGE_CHILDREN`` covers the runner and
every kernel: total CPU seconds (user + system) and the peak resident memory of the largest process. Per notebook,
the runner's ``run.json`` gives the wall time and the kernel's CPU seconds.

Targets (issue #16): the default 5,000 customers within 60 CPU seconds for the seven notebooks; 50,000 within
1.5 GB and 5 minutes; 1,000,000 within 8 GB. Writes ``benchmarks/results/scale.json`` and ``scale.md``.

Run: ``python benchmarks/bench_scale.py [N ...]`` (default: 5000 50000). ``--reuse DIR`` (one size) runs again in
the scratch folder of an earlier run of that size, whose generated sample the run then reuses: the figures exclude
the generation, and the rows say so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "benchmarks" / "results" / "scale.json"

WRAPPER = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
use = resource.getrusage(resource.RUSAGE_CHILDREN)
tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
print(json.dumps({"rc": proc.returncode, "wall": time.perf_counter() - start, "cpu": use.ru_utime + use.ru_stime,
                  "peak_mib": use.ru_maxrss / 1024, "tail": tail}))
"""


def run_size(n: int, scratch: Path) -> tuple[dict, list[dict]]:
    cmd = [sys.executable, "-m", "helpers.run", "-p", f"01_collection.n_customers={n}",
           "-p", f"data_dir={scratch / 'data'}", "--reports-dir", str(scratch / "reports")]
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, cwd=ROOT, check=True)
    total = json.loads(out.stdout.strip().splitlines()[-1])
    run_json = scratch / "reports" / "run.json"
    runs = json.loads(run_json.read_text())["runs"] if run_json.exists() else []
    return total, runs


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[5_000, 50_000])
    parser.add_argument("--reuse", type=Path, help="scratch folder of an earlier run of the one size given")
    args = parser.parse_args()
    sizes = args.sizes
    if args.reuse and len(sizes) != 1:
        parser.error("--reuse needs exactly one size")
    rows = []
    today = time.strftime("%Y-%m-%d")
    for n in sizes:
        scratch = args.reuse or Path(tempfile.mkdtemp(prefix=f"ciw_scale_{n}_"))
        total, runs = run_size(n, scratch)
        reused = " (sample reused: generation not included)" if args.reuse else ""
        for r in runs:
            rows.append({"customers": n, "measured": today, "notebook": r["notebook"], "wall s": r.get("seconds"),
                         "CPU s": r.get("kernel_cpu_seconds"),
                         "peak memory MiB": r.get("peak_mib_so_far"), "result": r["status"] + reused})
        failed = [r["notebook"] for r in runs if r["status"] == "failed"]
        rows.append({"customers": n, "measured": today, "notebook": "whole run (runner + kernels)", "wall s": total["wall"],
                     "CPU s": total["cpu"], "peak memory MiB": total["peak_mib"],
                     "result": ("ok" + reused) if total["rc"] == 0 else f"FAILED in {', '.join(failed) or '?'}: "
                     + " / ".join(total["tail"][-2:])[:200]})
        print(f"{n:,}: {total['wall']:.0f} s wall, {total['cpu']:.0f} CPU s, {total['peak_mib']:.0f} MiB, "
              f"rc {total['rc']}", flush=True)
    notes = ["Per notebook: wall seconds, the kernel's CPU seconds and the largest kernel so far (resident set; "
             "where it grows, that notebook set the new peak) from the runner's run.json. Whole run: CPU of the "
             "runner and all kernels (HTML export included), peak = largest resident set of one process.",
             "Targets: 5,000 customers <= 60 CPU s for the seven notebooks; 50,000 <= 1.5 GB (1,536 MiB) and "
             "<= 300 s; 1,000,000 <= 8 GB.",
             f"This run measured {', '.join(f'{n:,}' for n in sizes)} customers; other sizes are kept from "
             "earlier runs (column measured)."]
    # Sizes not measured in this run keep their last measurement (each row says when it was taken).
    previous = RESULTS_FILE.exists() and json.loads(RESULTS_FILE.read_text()).get("rows", [])
    kept = [r for r in previous or [] if r["customers"] not in sizes]
    rows = sorted(kept + rows, key=lambda r: r["customers"])
    write_results("scale", rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
