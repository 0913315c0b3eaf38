"""Shared fixtures: a small generated data set, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.sample import synthetic
from helpers.core.paths import PROJECT_ROOT, DataLayout

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

    from helpers.canonical import cleaning
    from helpers.canonical import collection
    from helpers.canonical import identity
    from helpers.sources.catalog import load_catalog

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


@pytest.fixture(scope="session")
def default_360(default_clean) -> dict:
    """The default sample's keyed tables and 360° table, built as step 02 builds them."""
    import pandas as pd

    from helpers.canonical import cleaning
    from helpers.canonical import customer360

    kept = {n: r.kept for n, r in default_clean["result"].sources.items()}
    orders, lines, returns = cleaning.build_transactions(kept["orders"], kept["order_lines"], kept["returns"],
                                                         kept["fx_rates"], kept["products"])
    tables, c360 = customer360.assemble(kept, orders, lines, returns, default_clean["resolved"],
                                        pd.Timestamp("2026-09-30 23:59:59"))
    return {"tables": tables, "c360": c360}


@pytest.fixture(scope="session")
def default_segments(default_clean, default_360) -> dict:
    """Step 03 with its default parameters on the default sample."""
    import pandas as pd

    from helpers.analysis import segmentation as S
    from helpers.analysis import truth

    c360, orders = default_360["c360"], default_360["tables"]["orders"]
    as_of = pd.Timestamp("2026-09-30")
    scored = S.rfm_scores(S.rfm_table(orders, as_of, pd.Index(c360["customer_key"])))
    thresholds = S.derive_thresholds(S.inter_purchase_days(orders, until=as_of))
    stages = S.lifecycle_stages(orders, c360[["customer_key", "signup_date"]], as_of, thresholds)
    fit = S.fit_personas(c360)
    personas = S.persona_names(S.trait_z_scores(fit.features, fit.labels))
    clusters = pd.concat([pd.Series(fit.labels, index=fit.features.index), fit.nearest])
    segments = S.segment_table(c360, scored, stages, clusters, personas, fit.features.index)
    recovery = truth.cluster_recovery(default_clean["layout"].truth, default_clean["resolved"],
                                      pd.Series(fit.labels, index=fit.features.index))
    return {"c360": c360, "segments": segments, "k": fit.k, "stability": fit.stability, "recovery": recovery}


# Credentials the ci_run exports to the kernels; no report, executed notebook or output file may contain them.
SMTP_SENDER = "alerts@workbench.invalid"
SECRET_SENTINELS = {"CIW_SMTP_USER": "sentinel-user-5d1e", "CIW_SMTP_PASSWORD": "Sentinel-Pass-7f3a9c"}


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory):
    """Every notebook on the tiny `ci` parameter set, with SMTP credentials in the environment (dry-run alerts).

    Returns ``(exit code, root folder holding data/ and reports/, runner log)``.
    """
    import io

    from helpers.run import run

    root = tmp_path_factory.mktemp("ci_run")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIW_SMTP_HOST", "127.0.0.1")
        mp.setenv("CIW_SMTP_SENDER", SMTP_SENDER)  # shows in the .eml files that the kernel read these settings
        for name, value in SECRET_SENTINELS.items():  # the secret_sentinels fixture hands them to the tests
            mp.setenv(name, value)
        code = run("ci", overrides=[f"data_dir={root / 'data'}"], reports_dir=root / "reports", out=out)
    return code, root, out.getvalue()


@pytest.fixture(scope="session")
def secret_sentinels() -> dict[str, str]:
    """The credential values ci_run put in the environment."""
    return dict(SECRET_SENTINELS)
