"""The environment files and the README's two commands stay in sync."""

from __future__ import annotations

import re
import tomllib

import yaml

# pip name -> conda-forge name, where they differ
CONDA_NAMES = {"duckdb": "python-duckdb", "matplotlib": "matplotlib-base", "vadersentiment": "vadersentiment"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", req.strip())
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject(project_root):
    py = tomllib.loads((project_root / "pyproject.toml").read_text())
    pip_reqs = dict(_split(r) for r in py["project"]["dependencies"] + py["project"]["optional-dependencies"]["dev"])
    env = yaml.safe_load((project_root / "environment.yml").read_text())
    conda = {}
    pip_section = None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section = dep["pip"]
            continue
        name, spec = _split(dep)
        if name not in ("python", "pip"):
            conda[name] = spec
    expected = {CONDA_NAMES.get(n, n): spec for n, spec in pip_reqs.items()}
    assert conda == expected, "environment.yml and pyproject.toml list different dependencies or versions"
    assert pip_section == ["-e ."]


def test_readme_gives_exactly_two_setup_commands_and_ci_runs_the_test_one(project_root):
    readme = (project_root / "README.md").read_text()
    block = re.search(r"## Set-up.*?```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [ln for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert commands == ["make reports", "make test"]
    ci = (project_root / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_matplotlib_is_pinned_below_3_13(project_root):
    py = tomllib.loads((project_root / "pyproject.toml").read_text())
    assert any(d.startswith("matplotlib") and "<3.13" in d for d in py["project"]["dependencies"])
