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
