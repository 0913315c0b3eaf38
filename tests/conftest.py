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


@pytest.fixture(scope="session")
def default_clean(tmp_path_factory) -> dict:
    """The default sample (5,000 customers, seed 42) collected, cleaned and resolved with the package."""
    import pandas as pd

    from helpers import cleaning, collection, identity
    from helpers.catalog import load_catalog

    layout = DataLayout(tmp_path_factory.mktemp("default"))
    synthetic.generate(layout.raw, layout.truth)  # the defaults are the default data
    specs = load_catalog()
    as_of = pd.Timestamp("2026-09-30 23:59:59")
    col = collection.collect(specs, layout.raw, str(layout.raw / "crm.sqlite"), as_of)
    staged = {n: ld.frame for n, ld in col.loaded.items()}
    result = cleaning.clean_all(staged, specs, {n: ld.label for n, ld in col.loaded.items()}, as_of, col.unreadable)
    kept = {n: r.kept for n, r in result.sources.items()}
    links = identity.build_links(kept["customers"], kept["web_events"], kept["surveys"], kept["tickets"],
                                 kept["email_sends"])
    nodes = list("crm:" + kept["customers"]["customer_id"]) + list(
        "cookie:" + kept["web_events"]["anonymous_id"].drop_duplicates())
    return {"layout": layout, "result": result, "resolved": identity.resolve(links, nodes),
            "identity_truth": pd.read_parquet(layout.truth / "identity.parquet")}
