"""Write a benchmark's rows as JSON and as a Markdown table under ``benchmarks/results/``."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, rows: list[dict], notes: list[str] | None = None) -> Path:
    """Save ``rows`` (one dict per measured case, same keys) to ``results/<name>.json`` and ``<name>.md``."""
    RESULTS.mkdir(exist_ok=True)
    meta = {"benchmark": name, "when": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(),
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs"}
    (RESULTS / f"{name}.json").write_text(json.dumps({**meta, "rows": rows, "notes": notes or []}, indent=2),
                                          encoding="utf-8")
    keys = list(rows[0]) if rows else []
    lines = [f"# {name} ({meta['when']}, Python {meta['python']}, {meta['machine']})", "",
             "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k in keys) + " |" for r in rows]
    lines += [""] + [f"- {n}" for n in notes or []]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(path.read_text(encoding="utf-8"))
    return path


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)
