"""Static checks of the committed notebooks: structure, kernel, no outputs, no network, thin cells."""

from __future__ import annotations

import re

import nbformat
import pytest

from helpers.run import discover_notebooks

NOTEBOOKS = discover_notebooks()


def test_there_are_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS][0] == "01"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "starts with a title"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "committed notebooks carry no outputs"
    # The parameters cell holds literals only.
    for line in params[0].source.splitlines():
        code = line.split("#")[0].strip()
        if code:
            assert re.match(r"^[a-z_][a-z0-9_]* = (\"[^\"]*\"|'[^']*'|-?[\d.]+|True|False|None|\[.*\]|\{.*\})$", code), line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin_and_offline(path):
    nb = nbformat.read(str(path), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "nltk.download" not in code and "urlopen" not in code and "requests." not in code
    assert not re.search(r"^\s*(def|class) ", code, re.M), "logic belongs in src/helpers, not in notebooks"
    for cell in nb.cells:
        if cell.cell_type == "code":
            # the parameters cell only declares (one line each, with its comment); every other cell stays short
            limit = 40 if "parameters" in cell.metadata.get("tags", []) else 25
            assert len(cell.source.splitlines()) <= limit, f"cell too long for a thin notebook: {cell.source[:60]!r}"


def test_no_network_calls_in_the_package(project_root):
    # widget_assets.fetch downloads the widget renderer once, at install time (make install); it is the only
    # network code, and nothing that runs with the reports may call it.
    files = [p for p in (project_root / "src" / "helpers").rglob("*.py") if p.name != "widget_assets.py"]
    src = "\n".join(p.read_text() for p in files)
    for pattern in ["nltk.download(", "urlopen(", "requests.get(", "hf_hub", "from_pretrained(", "urllib.request"]:
        assert pattern not in src, pattern
    assert "widget_assets.fetch" not in src and "import fetch" not in src
    installer = (project_root / "src" / "helpers" / "reporting" / "widget_assets.py").read_text()
    assert installer.count("urlopen(") == 1 and "def fetch(" in installer


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_parses_every_parameter(path):
    """papermill silently drops parameters it cannot parse (e.g. a comment containing '='); none may be lost."""
    import papermill

    nb = nbformat.read(str(path), as_version=4)
    source = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = re.findall(r"^([a-z_][a-z0-9_]*) = ", source, re.M)
    parsed = papermill.inspect_notebook(str(path))
    assert list(parsed) == names
    assert all(p["help"] for p in parsed.values()), "every parameter carries a comment saying what it does"
