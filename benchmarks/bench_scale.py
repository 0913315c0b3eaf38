"""The full run against the number of customers: wall time, CPU seconds and peak memory per notebook.

Each size generates its own sample (``-p 01_collection.n_customers=N``) in a scratch directory
(``-p data_dir=…``), then runs the notebooks one at a time with ``python -m helpers.run --only NN``, each inside a
small wrapper process whose ``RUSAGE_CHILDREN`` is exactly that notebook's runner and kernel: its CPU seconds (user +
system) and the peak resident memory of its largest process (the kernel).

Targets (issue #16): 50,000 customers within 1.5 GB and 5 minutes; the default 5,000 within 60 CPU seconds for
the seven notebooks; 1,000,000 customers within 8 GB. Writes ``benchmarks/results/scale.json`` and ``scale.md``.

Run: ``python benchmarks/bench_scale.py [N ...]`` (default: 5000 50000). A size stops at its first failing
notebook; the table says which and why.
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
NOTEBOOKS = ["01", "02", "03", "04", "05", "06", "07"]

WRAPPER = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
use = resource.getrusage(resource.RUSAGE_CHILDREN)
tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
print(json.dumps({"rc": proc.returncode, "wall": time.perf_counter() - start, "cpu": use.ru_utime + use.ru_stime,
                  "peak_mib": use.ru_maxrss / 1024, "tail": tail}))
"""


def run_notebook(n: int, nb: str, scratch: Path) -> dict:
    cmd = [sys.executable, "-m", "helpers.run", "--only", nb, "-p", f"01_collection.n_customers={n}",
           "-p", f"data_dir={scratch / 'data'}", "--reports-dir", str(scratch / "reports")]
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    sizes = [int(a) for a in sys.argv[1:]] or [5_000, 50_000]
    rows = []
    for n in sizes:
        scratch = Path(tempfile.mkdtemp(prefix=f"ciw_scale_{n}_"))
        total_wall = total_cpu = peak = 0.0
        failed = ""
        for nb in NOTEBOOKS:
            r = run_notebook(n, nb, scratch)
            total_wall, total_cpu, peak = total_wall + r["wall"], total_cpu + r["cpu"], max(peak, r["peak_mib"])
            rows.append({"customers": n, "notebook": nb, "wall s": r["wall"], "CPU s": r["cpu"],
                         "peak memory MiB": r["peak_mib"], "result": "ok" if r["rc"] == 0 else "FAILED"})
            print(f"{n:,} {nb}: {r['wall']:.1f} s wall, {r['cpu']:.1f} CPU s, {r['peak_mib']:.0f} MiB, rc {r['rc']}",
                  flush=True)
            if r["rc"] != 0:
                failed = f"{nb}: " + " / ".join(r["tail"][-2:])[:200]
                break
        rows.append({"customers": n, "notebook": "all", "wall s": total_wall, "CPU s": total_cpu,
                     "peak memory MiB": peak, "result": "ok" if not failed else f"FAILED in {failed}"})
    notes = ["One notebook per process (runner + kernel); CPU = user + system seconds of that process tree; peak = "
             "largest resident set of one process in it.",
             "Targets: 5,000 customers <= 60 CPU s for the seven notebooks; 50,000 <= 1.5 GB (1,536 MiB) and "
             "<= 300 s; 1,000,000 <= 8 GB.",
             f"Measured {time.strftime('%Y-%m-%d')}; sizes {', '.join(f'{n:,}' for n in sizes)}."]
    write_results("scale", rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
