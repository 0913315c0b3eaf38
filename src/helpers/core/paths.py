"""Project paths, computed once.

Every notebook and module takes its paths from here so that nothing builds paths
of its own. The project root is found by walking up from this file to the folder
holding ``pyproject.toml``; ``CIW_PROJECT_ROOT`` overrides it (used by tests that
build a throw-away project tree).
"""

from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    override = os.environ.get("CIW_PROJECT_ROOT")
    if override:
        return Path(override).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd().resolve()


PROJECT_ROOT: Path = _find_root()
DATA_DIR: Path = PROJECT_ROOT / "data"
RAW_DIR: Path = DATA_DIR / "raw"
PROCESSED_DIR: Path = DATA_DIR / "processed"
TRUTH_DIR: Path = DATA_DIR / "truth"
CONFIG_DIR: Path = PROJECT_ROOT / "config"
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
PARAMS_DIR: Path = NOTEBOOKS_DIR / "params"
REPORTS_DIR: Path = PROJECT_ROOT / "reports"
TEMPLATES_DIR: Path = Path(__file__).resolve().parent.parent / "templates"


def resolve(path: str | os.PathLike[str], base: Path = PROJECT_ROOT) -> Path:
    """Return ``path`` as an absolute path, relative paths taken from ``base``.

    >>> resolve("data/raw").name
    'raw'
    """
    p = Path(path)
    return p if p.is_absolute() else (base / p).resolve()


class DataLayout:
    """The raw / processed / truth folders under one data folder (tests point this at a temp dir)."""

    def __init__(self, data_dir: str | os.PathLike[str] = "data", source_dir: str | os.PathLike[str] = "") -> None:
        self.root = resolve(data_dir)
        self.raw = resolve(source_dir) if str(source_dir) else self.root / "raw"
        self.processed = self.root / "processed"
        self.staged = self.processed / "staged"
        self.truth = self.root / "truth"

    def __repr__(self) -> str:
        return f"DataLayout(root={self.root}, raw={self.raw})"
