"""Shared fixtures: a small generated data set, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers.sample import synthetic
from helpers.core.paths import PROJECT_ROOT, DataLayout

SMALL_N = 400


def spark_missing() -> str | None:
    """Why the Spark engine cannot run here (no PySpark, no Java), or None when it can."""
    import shutil
    import subprocess

    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install -e '.[dev]')"
    if shutil.which("java") is None:
        return "no Java runtime: install one (Debian: apt-get install default-jre-headless); .ci/run does"
    try:
        subprocess.run(["java", "-version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"java does not run: {e}"
    return None


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


SAMPLE_WINDOW = ("2024-10-01", "2026-09-30")
AS_OF = pd.Timestamp("2026-09-30 23:59:59")


def build(layout: DataLayout, catalog_path=None, window: tuple[str, str] = SAMPLE_WINDOW, db_url: str = "",
          source_dir=None, strict: bool = False, engine: str = "duckdb"):
    """Steps 01 and 02 of the package on ``layout`` with ``engine``: ``(collection, built)``."""
    from helpers.canonical import collection as C
    from helpers.canonical.build import build_canonical
    from helpers.canonical.engine import make_engine
    from helpers.sources.catalog import load_catalog

    cat = load_catalog(catalog_path)
    raw = source_dir or layout.raw
    with make_engine(engine) as eng:
        col = C.collect(cat, raw, db_url or str(layout.raw / "crm.sqlite"), layout.staged, eng, *window, strict=strict)
        as_of = pd.Timestamp(col.window[1]) + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
        inv = C.inventory(col, as_of)
        C.stage(col, layout.staged, inv, C.dataset_info(col, raw, db_url, False), layout.processed)
    with make_engine(engine) as eng:
        built = build_canonical(layout, eng, as_of)
    return col, built


@pytest.fixture(scope="session")
def default_clean(tmp_path_factory) -> dict:
    """The default sample (5,000 customers, seed 42) collected, cleaned and resolved with the package."""
    layout = DataLayout(tmp_path_factory.mktemp("default"))
    synthetic.generate(layout.raw, layout.truth)  # the defaults are the default data
    col, built = build(layout)
    return {"layout": layout, "collection": col, "built": built, "resolved": built.resolved,
            "identity_truth": pd.read_parquet(layout.truth / "identity.parquet")}


@pytest.fixture(scope="session")
def default_360(default_clean) -> dict:
    """The default sample's clean tables (as step 02 writes them) and 360° table."""
    clean = default_clean["layout"].processed / "clean"
    tables = {p.stem: pd.read_parquet(p) for p in clean.glob("*.parquet")}
    return {"tables": tables, "c360": default_clean["built"].c360}


@pytest.fixture(scope="session")
def default_segments(default_clean, default_360) -> dict:
    """Step 03 with its default parameters on the default sample."""
    from helpers.analysis import segmentation as S
    from helpers.analysis import truth

    c360, orders = default_360["c360"], default_360["tables"]["orders"]
    seg = S.segment_customers(c360, orders, pd.Timestamp("2026-09-30"))
    fit = seg.fit
    recovery = truth.cluster_recovery(default_clean["layout"].truth, default_clean["resolved"],
                                      pd.Series(fit.labels, index=fit.features.index))
    return {"c360": c360, "segments": seg.segments, "k": fit.k, "stability": fit.stability, "recovery": recovery,
            "seg": seg}


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


@pytest.fixture(scope="session")
def pipeline():
    """Steps 01 and 02 as a function: ``pipeline(layout, catalog_path, window, db_url, source_dir, strict)``."""
    return build


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    """The CDNOW sample (shipped in data/raw/cdnow) as the papers' calibration summary: weeks, to 1997-09-30."""
    from helpers.analysis.clv import rfm_summary

    raw = pd.read_csv(PROJECT_ROOT / "data" / "raw" / "cdnow" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "id", "date", "cds", "dollars"], dtype={"date": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return rfm_summary(raw, "id", "date", "dollars", pd.Timestamp("1997-09-30"), unit="W")
