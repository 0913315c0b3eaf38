"""Shared fixtures: a small generated data set, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import synthetic
from helpers.paths import PROJECT_ROOT, DataLayout

SMALL_N = 400


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> DataLayout:
    """Sample data for 400 customers in a temporary data folder."""
    root = tmp_path_factory.mktemp("data")
    layout = DataLayout(root)
    synthetic.generate(layout.raw, layout.truth, n_customers=SMALL_N, seed=7)
    return layout


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT
