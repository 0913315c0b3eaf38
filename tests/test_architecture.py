"""The package layout follows the data's layers, and imports only run downwards.

core (0) → sources, sample (1) → canonical (2) → analysis (3) → reporting (4) → run, params (5).
A module may import from its own layer or a lower one, never a higher one, and there are no import cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "helpers"
LAYERS = {"core": 0, "sources": 1, "sample": 1, "canonical": 2, "analysis": 3, "reporting": 4, "run": 5, "params": 5}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``helpers...`` module a file imports, at top level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("helpers")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers") and node.level == 0:
            if node.module == "helpers":
                out |= {f"helpers.{a.name}" for a in node.names}
            else:
                out.add(node.module)
                # "from helpers.analysis import segmentation" imports the submodule
                out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}


def test_every_module_belongs_to_a_layer():
    modules = [_module_name(p) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE]
    unplaced = [m for m in modules if m != "helpers" and _layer(m) is None]
    assert not unplaced, f"modules outside the layered layout: {unplaced}"


def test_imports_only_run_downwards():
    upward = []
    for module, deps in _graph().items():
        own = _layer(module)
        for dep in deps:
            if own is not None and _layer(dep) is not None and _layer(dep) > own:
                upward.append(f"{module} (layer {own}) imports {dep} (layer {_layer(dep)})")
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_layer_check_can_fail(tmp_path):
    """The checker sees an upward import when there is one (so a passing run means something)."""
    bad = tmp_path / "mod.py"
    bad.write_text("def f():\n    from helpers.reporting import pages\n", encoding="utf-8")
    assert "helpers.reporting.pages" in _imports(bad)
    assert _layer("helpers.reporting.pages") > _layer("helpers.core.paths")
