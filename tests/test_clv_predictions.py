"""Predictions for a date (no purchase by then, P(alive) of a quiet customer) against forward simulation with
known parameters, and Gamma-Gamma's independence check on planted data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import clv_models as M
from helpers.analysis.clv import BetaGeoFitter


def _simulate_forward(n: int, T: float, t: float, seed: int, pareto: bool):
    """Histories up to T and whether each customer buys in (T, T + t], from BG/NBD or Pareto/NBD processes."""
    rng = np.random.default_rng(seed)
    if pareto:
        r, alpha, s, beta = 0.7, 30.0, 0.8, 200.0
        lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
        death = rng.exponential(1 / mu)
    else:
        r, alpha, a, b = 0.8, 40.0, 0.6, 3.0
        lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    x, tx, future = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
    for i in range(n):
        now = 0.0
        while True:
            now += rng.exponential(1 / lam[i])
            if now >= T + t or (pareto and now >= death[i]):
                break
            if now < T:
                x[i], tx[i] = x[i] + 1, now
            else:
                future[i] = True
                break
            if not pareto and rng.random() < p[i]:
                break
    params = {"r": r, "alpha": alpha, "s": s, "beta": beta} if pareto else {"r": r, "alpha": alpha, "a": a, "b": b}
    return x, tx, future, params


@pytest.mark.parametrize("pareto", [False, True], ids=["BG/NBD", "Pareto/NBD"])
def test_p_no_purchase_matches_forward_simulation(pareto):
    T, t = 365.0, 90.0
    x, tx, future, params = _simulate_forward(20_000, T, t, seed=3, pareto=pareto)
    model = M.ParetoNBDFitter() if pareto else BetaGeoFitter()
    model.params_ = params
    pred = M.p_no_purchase(model, t, x, tx, np.full(len(x), T), draws=2000)
    assert pred.mean() == pytest.approx(1 - future.mean(), abs=0.01)
    for k in (0, 1, 2):  # and within groups of customers with the same number of purchases
        sel = x == k
        assert pred[sel].mean() == pytest.approx(1 - future[sel].mean(), abs=0.02), k


def test_a_quiet_customer_s_p_alive_only_falls():
    m = BetaGeoFitter()
    m.params_ = {"r": 0.8, "alpha": 40.0, "a": 0.6, "b": 3.0}
    now = M.p_alive_if_quiet(m, 0, [3], [200], [365])[0]
    later = M.p_alive_if_quiet(m, 180, [3], [200], [365])[0]
    assert later < now == pytest.approx(m.p_alive([3], [200], [365])[0])


def test_spend_independence_flags_planted_dependence():
    rng = np.random.default_rng(0)
    f = rng.integers(1, 20, 2000).astype(float)
    independent = pd.DataFrame({"frequency": f, "monetary_value": rng.gamma(4, 10, 2000)})
    dependent = pd.DataFrame({"frequency": f, "monetary_value": 10 + 5 * f + rng.gamma(2, 3, 2000)})
    ok, bad = M.spend_independence(independent), M.spend_independence(dependent)
    assert ok["holds"] and abs(ok["pearson"]) < 0.1 and "holds" in ok["sentence"]
    assert not bad["holds"] and bad["pearson"] > 0.5 and "higher" in bad["sentence"]


def test_p_alive_history_steps_up_at_each_order_and_decays_between():
    from helpers.analysis.clv import BetaGeoFitter, simulate_bgnbd
    from helpers.analysis.clv_models import p_alive_history

    data = simulate_bgnbd(20_000, 1.2, 50.0, 0.7, 4.0, seed=9)
    bg = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
    orders = np.array([0.0, 20.0, 45.0, 60.0])
    hist = p_alive_history(bg, orders, until=300.0)
    # at each grid point it equals the model's P(alive) for the history up to then (by hand for one point)
    row = hist.loc[(hist["time"] - 150.0).abs().idxmin()]
    assert row["p_alive"] == pytest.approx(float(bg.p_alive([3], [60.0], [row["time"]])[0]), rel=1e-12)
    before_first_repeat = hist[hist["time"] < 20.0]
    assert np.allclose(before_first_repeat["p_alive"], 1.0)  # BG/NBD: no dropout before a repeat purchase
    quiet = hist[hist["time"] >= 60.0]
    assert np.all(np.diff(quiet["p_alive"]) <= 1e-12) and quiet["p_alive"].iloc[-1] < 0.5
    # an order lifts P(alive) (BG/NBD customers may leave right after an order, so not to 1)
    series = hist.set_index("time")["p_alive"]
    just_before = series[series.index < 60.0].iloc[-1]
    assert series.loc[60.0] > just_before + 0.05


def test_frequency_recency_matrix_orders_customers_as_the_model_does():
    from helpers.analysis.clv_models import frequency_recency_matrix

    pareto = M.ParetoNBDFitter()
    pareto.params_ = {"r": 0.7, "alpha": 30.0, "s": 0.8, "beta": 200.0}
    T = 300.0
    expected = frequency_recency_matrix(pareto, T, t=90.0, max_frequency=10)
    alive = frequency_recency_matrix(pareto, T, None, max_frequency=10)
    assert expected.shape == (11, 41) and expected.index.name == "frequency"
    # the cell equals the model's own prediction
    assert expected.loc[4].iloc[20] == pytest.approx(
        float(pareto.conditional_expected_purchases(90.0, [4], [expected.columns[20]], [T])[0]), rel=1e-12)
    # more recent -> likelier alive; for a recent buyer more orders -> more expected orders
    assert np.all(np.diff(alive.loc[5].to_numpy()) >= -1e-12)
    assert np.all(np.diff(expected.iloc[:, -1].to_numpy()) > 0)


def test_cohort_matrices_by_hand():
    """Two January customers and one February customer, observed to the end of March."""
    from types import SimpleNamespace

    from helpers.analysis import clv_analysis as CA

    tx = pd.DataFrame({"customer": ["a", "a", "a", "b", "c", "c"],
                       "date": pd.to_datetime(["2025-01-05", "2025-01-20", "2025-03-02", "2025-01-31", "2025-02-10",
                                               "2025-03-15"]),
                       "value": [10.0, 5.0, 20.0, 8.0, 30.0, 12.0]})
    retention, value = CA.cohort_matrices(SimpleNamespace(transactions=tx, observation_end=pd.Timestamp("2025-03-31")))
    assert list(retention.index) == ["2025-01", "2025-02"]
    # January: both buy in month 0, nobody in month 1, a in month 2
    assert retention.loc["2025-01"].tolist() == [1.0, 0.0, 0.5]
    assert value.loc["2025-01"].tolist() == [(10 + 5 + 8) / 2, (10 + 5 + 8) / 2, (10 + 5 + 8 + 20) / 2]
    # February: c buys in months 0 and 1; month 2 (April) lies after the end, so it stays empty
    assert retention.loc["2025-02", 0] == 1.0 and retention.loc["2025-02", 1] == 1.0
    assert np.isnan(retention.loc["2025-02", 2]) and np.isnan(value.loc["2025-02", 2])
    assert value.loc["2025-02", 1] == 42.0
