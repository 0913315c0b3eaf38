"""Pareto/NBD, MBG/NBD and BG/BB against their published estimates, the per-customer formulas against direct
numerical computation, and model choice on planted data."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import clv_models as M



def test_pareto_nbd_reproduces_fader_hardie_lee_2005_matlab_note(cdnow_summary):
    m = M.ParetoNBDFitter().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    published = {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6650}
    for name, value in published.items():
        assert m.params_[name] == pytest.approx(value, rel=1e-3), name
    assert m.log_likelihood_ == pytest.approx(-9594.98, rel=1e-6)
    assert m.diagnostics_.converged and all(np.isfinite(list(m.standard_errors_.values())))


def test_mbg_nbd_matches_lifetimes_modified_beta_geo_fitter(cdnow_summary):
    """lifetimes 0.11.3's ModifiedBetaGeoFitter on the same CDNOW summary (run once, outside the test suite):
    r 0.524838, alpha 6.182988, a 0.891356, b 1.614000."""
    m = M.ModifiedBetaGeoFitter().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    for name, value in {"r": 0.524838, "alpha": 6.182988, "a": 0.891356, "b": 1.614000}.items():
        assert m.params_[name] == pytest.approx(value, rel=1e-3), name


def test_mbg_nbd_objective_is_its_likelihood_with_exact_derivatives(cdnow_summary):
    """MBG/NBD runs on BG/NBD's fast objective with the Beta terms shifted: same value as the textbook
    per-customer likelihood, and a gradient and Hessian equal to its finite differences."""
    from helpers.analysis.clv import _BGNBDObjective

    x, t_x, T = (cdnow_summary[c].to_numpy() for c in ["frequency", "recency", "T"])
    obj = _BGNBDObjective(x, t_x, T, np.ones_like(x), shift=1)
    theta = np.array([0.6, 7.0, 0.8, 1.9])
    p = np.log(theta)
    f, g, H = obj.neg_ll_grad_hess(p)
    assert f == pytest.approx(-M.ModifiedBetaGeoFitter.log_likelihood_individual(theta, x, t_x, T).sum(), rel=1e-12)
    eps = 1e-6
    num_g = np.array([(obj.neg_ll(p + np.eye(4)[i] * eps) - obj.neg_ll(p - np.eye(4)[i] * eps)) / (2 * eps)
                      for i in range(4)])
    num_H = np.array([(obj.neg_ll_and_grad(p + np.eye(4)[i] * eps)[1] - obj.neg_ll_and_grad(p - np.eye(4)[i] * eps)[1])
                      / (2 * eps) for i in range(4)])
    assert np.allclose(g, num_g, rtol=1e-6, atol=1e-4)
    assert np.allclose(H, num_H, rtol=1e-5, atol=1e-3)


def test_large_data_paths_agree_with_the_textbook_fit():
    """Above 200,000 customers MBG/NBD (Newton) and Pareto/NBD (subsample start, paired hypergeometric terms)
    take other routes; they must land on the optimum of the per-customer likelihood."""
    from scipy.optimize import minimize

    from helpers.analysis.clv import simulate_bgnbd

    d = simulate_bgnbd(210_000, 1.2, 60.0, 0.6, 4.0, max_T=400, seed=21)
    x, t_x, T = (d[c].to_numpy() for c in ["frequency", "recency", "T"])
    for cls in (M.ModifiedBetaGeoFitter, M.ParetoNBDFitter):
        m = cls().fit(x, t_x, T)
        theta = np.array(list(m.params_.values()))
        ll = cls.log_likelihood_individual(theta, x, t_x, T).sum()
        assert m.log_likelihood_ == pytest.approx(ll, rel=1e-9), cls.label
        grad = [(cls.log_likelihood_individual(theta * np.exp(np.eye(4)[i] * 1e-5), x, t_x, T).sum()
                 - cls.log_likelihood_individual(theta * np.exp(-np.eye(4)[i] * 1e-5), x, t_x, T).sum()) / 2e-5
                for i in range(4)]
        # at the maximum of the textbook likelihood: the curvature is about n per log-parameter, so a gradient
        # below 1e-5 n means the parameters sit within ~1e-5 (relative) of the optimum; 1% off gives ~1e-2 n
        assert np.max(np.abs(grad)) < 1e-5 * len(x), (cls.label, grad)


def test_bg_bb_reproduces_fader_hardie_shang_2010_donations():
    """The donations data (11,104 donors, 6 yearly opportunities) ships in the lifetimes wheel (MIT licence) and is
    copied to src/helpers/resources/donations_bgbb.csv."""
    with resources.files("helpers").joinpath("resources/donations_bgbb.csv").open() as fh:
        d = pd.read_csv(fh)
    assert d["weights"].sum() == 11_104
    m = M.BetaGeoBetaBinomFitter().fit(d["frequency"], d["recency"], d["periods"], d["weights"])
    for name, value in {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}.items():
        assert m.params_[name] == pytest.approx(value, rel=1e-3), name
    assert m.log_likelihood_ == pytest.approx(-33_225.6, abs=0.1)
    # the expected transactions of a new donor over the six years equal the observed average, as the model fits
    observed = float((d["frequency"] * d["weights"]).sum() / d["weights"].sum())
    assert float(m.expected_purchases_since_first(6)) == pytest.approx(observed, rel=0.02)


def test_pareto_nbd_predictions_against_direct_integration():
    """P(alive) and E[X(t)] of a new customer against direct numerical integration over the mixing
    distributions."""
    from scipy import integrate, stats

    m = M.ParetoNBDFitter()
    m.params_ = {"r": 0.8, "alpha": 6.0, "s": 0.9, "beta": 9.0}
    r, alpha, s, beta = 0.8, 6.0, 0.9, 9.0
    x, t_x, T = 3.0, 12.0, 30.0

    def joint(lam, mu, alive_only):
        # likelihood of (x, t_x, T) given lam, mu: alive at T, or died at tau in (t_x, T)
        base = lam ** x * np.exp(-(lam + mu) * T)
        if alive_only:
            return base
        return base + lam ** x * mu / (lam + mu) * (np.exp(-(lam + mu) * t_x) - np.exp(-(lam + mu) * T))

    def mix(alive_only):
        f = lambda lam, mu: (joint(lam, mu, alive_only) * stats.gamma.pdf(lam, r, scale=1 / alpha)  # noqa: E731
                             * stats.gamma.pdf(mu, s, scale=1 / beta))
        return integrate.dblquad(f, 0, 2, 0, 2, epsabs=1e-11, epsrel=1e-6)[0]

    assert m.p_alive([x], [t_x], [T])[0] == pytest.approx(mix(True) / mix(False), rel=1e-4)
    ll = M.ParetoNBDFitter.log_likelihood_individual(np.array([r, alpha, s, beta]), np.array([x]), np.array([t_x]),
                                                     np.array([T]))[0]
    assert np.exp(ll) == pytest.approx(mix(False), rel=1e-4)
    # E[X(t)] = E[lam * min(t, tau)] = E[lam / mu (1 - exp(-mu t))]
    t = 20.0
    ref = integrate.quad(lambda mu: r / alpha / mu * (1 - np.exp(-mu * t)) * stats.gamma.pdf(mu, s, scale=1 / beta),
                         0, np.inf)[0]
    assert float(m.expected_purchases_since_first(t)) == pytest.approx(ref, rel=1e-6)


def test_model_choice_finds_no_dropout_when_there_is_none():
    rng = np.random.default_rng(0)
    n, T = 3000, 52.0
    lam = rng.gamma(1.5, 1 / 8.0, n)  # purchase rates; nobody ever leaves
    arrivals = [np.sort(rng.uniform(0, T, rng.poisson(l_ * T))) for l_ in lam]
    cal = pd.DataFrame({"frequency": [len(a) for a in arrivals],
                        "recency": [a[-1] if len(a) else 0.0 for a in arrivals], "T": T})
    table = M.compare_models(cal)
    assert set(table["model"]) == {"BG/NBD", "MBG/NBD", "Pareto/NBD", "NBD (no dropout)"}
    name, sentence = M.choose_model(table, dropout_identified=False)
    assert name == "NBD (no dropout)" and "no sign of customers leaving" in sentence


def test_prediction_intervals_reach_their_nominal_coverage_on_simulated_customers():
    """Simulate 150 data sets from known BG/NBD parameters, fit each, and check how often the 90% parametric-
    bootstrap interval holds the true expected purchases and P(alive) of four customer histories."""
    from helpers.analysis.clv import BetaGeoFitter, simulate_bgnbd

    true = {"r": 0.8, "alpha": 40.0, "a": 0.6, "b": 3.0}
    profiles = np.array([[1, 30, 365], [2, 200, 365], [6, 300, 365], [3, 90, 365]], float)
    truth_model = BetaGeoFitter()
    truth_model.params_ = true
    truth = truth_model.conditional_expected_purchases(180, *profiles.T)
    alive = truth_model.p_alive(*profiles.T)
    hits, hits_alive = [], []
    for rep in range(150):
        s = simulate_bgnbd(1500, **true, max_T=540, seed=rep)
        m = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
        iv = M.prediction_intervals(m, *profiles.T, t=180, n_draws=200, seed=rep)
        hits.append((iv["expected_purchases_low"] <= truth) & (truth <= iv["expected_purchases_high"]))
        hits_alive.append((iv["p_alive_low"] <= alive) & (alive <= iv["p_alive_high"]))
    assert np.mean(hits) == pytest.approx(0.90, abs=0.03)
    assert np.mean(hits_alive) == pytest.approx(0.90, abs=0.03)


def test_a_degenerate_fit_is_reported_and_never_chosen():
    """Every customer buying at the same Poisson rate, nobody leaving: the gamma heterogeneity runs off to the edge
    (r, alpha to infinity) for some models, whose predictions overflow. They are flagged and not chosen, and the
    chosen model predicts finite numbers."""
    rng = np.random.default_rng(12)
    n = 3000
    T = rng.uniform(100, 400, n)
    x = rng.poisson(0.01 * T)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)
    cal = pd.DataFrame({"frequency": x.astype(float), "recency": np.floor(t_x), "T": np.floor(T)})
    table = M.compare_models(cal)
    chosen, _ = M.choose_model(table, dropout_identified=False)
    model = table.attrs["fitted"][chosen]
    assert np.isfinite(model.conditional_expected_purchases(90.0, cal["frequency"], cal["recency"], cal["T"])).all()
    flagged = table[table["note"].str.contains("degenerate", na=False)]
    assert len(flagged) >= 1 and flagged["bic"].isna().all() and chosen not in set(flagged["model"])
