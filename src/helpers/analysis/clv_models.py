"""More buy-till-you-die models with the interface of :class:`helpers.analysis.clv.BetaGeoFitter`.

:class:`ParetoNBDFitter` is the Pareto/NBD model (Schmittlein, Morrison & Colombo 1987) with the likelihood of
Fader, Hardie & Lee (2005), "A Note on Implementing the Pareto/NBD Model in MATLAB", computed in log space. The
Gauss hypergeometric functions of the likelihood are taken through Euler's transformation,
``2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z)``, which turns them into series with a first
parameter of 1 that converge fast and cannot overflow, even for customers with hundreds of purchases.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, hyp2f1

from helpers.analysis.clv import TooFewRepeatCustomersError, _fit, _fit_bgnbd_family, lomax_median


def _log_a0_term(r: float, alpha: float, s: float, beta: float, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """One of the two terms of A0 in Fader, Hardie & Lee (2005), eq. (2)–(3), in logs, at time ``t``."""
    a = r + s + x
    if alpha >= beta:
        # 2F1(a, s + 1; a + 1; z) = (1 - z)^(-s) 2F1(1, r + x; a + 1; z),  z = (alpha - beta) / (alpha + t)
        base, second, power = alpha, r + x, -s
    else:
        # 2F1(a, r + x; a + 1; z) = (1 - z)^(1 - r - x) 2F1(1, s + 1; a + 1; z),  z = (beta - alpha) / (beta + t)
        base, second, power = beta, s + 1.0, 1.0 - r - x
    z = abs(alpha - beta) / (base + t)
    return power * np.log1p(-z) + np.log(hyp2f1(1.0, second, a + 1.0, z)) - a * np.log(base + t)


def _log_a0(r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
            ) -> np.ndarray:
    """log of A0 in Fader, Hardie & Lee (2005), eq. (2)–(3), for every customer."""
    lo, hi = _log_a0_term(r, alpha, s, beta, x, t_x), _log_a0_term(r, alpha, s, beta, x, T)  # lo >= hi
    with np.errstate(divide="ignore"):
        return lo + np.log(-np.expm1(np.minimum(hi - lo, 0.0)))


def _continuous_inputs(model, frequency, recency, T, weights):
    """Arrays (x, t_x, T, w) after the checks every continuous-time model makes."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if np.any(x < 0) or np.any(t_x > T + 1e-9) or np.any(t_x < 0):
        raise ValueError("expected frequency >= 0 and 0 <= recency <= T for every customer")
    n_repeat = int(w[x > 0].sum())
    if n_repeat < model.min_repeat_customers:
        raise TooFewRepeatCustomersError(f"{model.label} needs at least {model.min_repeat_customers} customers with a "
                                         f"repeat purchase; got {n_repeat}")
    return x, t_x, T, w


def _group_rows(a: np.ndarray, b: np.ndarray, c: np.ndarray, w: np.ndarray):
    """Distinct (a, b, c) rows with summed weights, via one int64 key (much faster than ``np.unique(axis=0)``)."""
    codes, sizes, uniques = [], [], []
    for col in (a, b, c):
        u, inv = np.unique(col, return_inverse=True)
        codes.append(inv.ravel().astype(np.int64))
        sizes.append(u.size)
        uniques.append(u)
    key = (codes[0] * sizes[1] + codes[1]) * sizes[2] + codes[2]
    ukey, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w)
    ic = ukey % sizes[2]
    ib = (ukey // sizes[2]) % sizes[1]
    ia = ukey // (sizes[2] * sizes[1])
    return uniques[0][ia], uniques[1][ib], uniques[2][ic], counts


def _grouped_objective(model, a: np.ndarray, b: np.ndarray, c: np.ndarray, w: np.ndarray):
    """The negative log-likelihood in log-parameters over the distinct rows of (a, b, c)."""
    ua, ub, uc, counts = _group_rows(a, b, c, w)
    loglik = (model.grouped_loglik(ua, ub, uc) if hasattr(model, "grouped_loglik")
              else lambda theta: model.log_likelihood_individual(theta, ua, ub, uc))

    def neg_ll(log_p: np.ndarray) -> float:
        value = -float(np.dot(counts, loglik(np.exp(log_p))))
        return value if np.isfinite(value) else 1e300

    return neg_ll


def _fit_grouped(model, a: np.ndarray, b: np.ndarray, c: np.ndarray, w: np.ndarray, x0: np.ndarray):
    """Maximum likelihood for ``model`` where identical (a, b, c) rows share one likelihood term; sets
    ``params_``, ``standard_errors_``, ``log_likelihood_``, ``diagnostics_`` and ``n_customers_``.

    On large data the search starts from a fit on every 20th customer, so the passes over everyone are few.
    """
    from scipy.optimize import minimize

    ftol = 1e-14
    if len(a) > 200_000:
        sub = slice(None, None, 20)
        x0 = minimize(_grouped_objective(model, a[sub], b[sub], c[sub], w[sub]), x0, method="L-BFGS-B").x
        # -LL is in the millions here: a relative change of 1e-12 is a change of about 1e-6 in the likelihood
        ftol = 1e-12
    model.params_, model.standard_errors_, model.log_likelihood_, model.diagnostics_ = _fit(
        _grouped_objective(model, a, b, c, w), x0, model.names, ftol=ftol)
    model.n_customers_ = int(w.sum())
    return model


class ParetoNBDFitter:
    """Pareto/NBD: purchases at a Gamma(r, alpha)-distributed Poisson rate while alive; lifetimes exponential with
    a Gamma(s, beta)-distributed dropout rate.

    >>> x = np.array([0, 2, 5, 1]); tx = np.array([0., 10., 30., 5.]); T = np.array([40., 40., 40., 38.])
    >>> m = ParetoNBDFitter().fit(x, tx, T)
    >>> bool(0 < m.p_alive(x, tx, T).min() <= 1)
    True
    """

    names = ["r", "alpha", "s", "beta"]
    label = "Pareto/NBD"

    def __init__(self, min_repeat_customers: int = 2) -> None:
        self.min_repeat_customers = min_repeat_customers

    @staticmethod
    @np.errstate(divide="ignore", invalid="ignore")  # the optimiser may probe the boundary; it gets 1e300 there
    def log_likelihood_individual(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, s, beta = params
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        stays = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        leaves = np.log(s) - np.log(r + s + x) + _log_a0(r, alpha, s, beta, x, t_x, T)
        return head + np.logaddexp(stays, leaves)

    @staticmethod
    def grouped_loglik(x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
        """The log-likelihood as a function of the parameters for fixed rows, with the hypergeometric terms of
        A0 evaluated once per distinct (x, t) pair: they depend on the frequency and one time only, and the
        pairs (x, t_x) and (x, T) are far fewer than the (x, t_x, T) rows."""
        both_x, both_t = np.r_[x, x], np.r_[t_x, T]
        ux, ut, _, _ = _group_rows(both_x, both_t, np.zeros_like(both_x), np.ones_like(both_x))
        pair_key = np.searchsorted(ux * (ut.max() + 1.0) + ut, both_x * (ut.max() + 1.0) + both_t)
        lo_idx, hi_idx = pair_key[: x.size], pair_key[x.size:]

        @np.errstate(divide="ignore", invalid="ignore")
        def loglik(params: np.ndarray) -> np.ndarray:
            r, alpha, s, beta = params
            terms = _log_a0_term(r, alpha, s, beta, ux, ut)
            lo, hi = terms[lo_idx], terms[hi_idx]
            log_a0 = lo + np.log(-np.expm1(np.minimum(hi - lo, 0.0)))
            head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
            stays = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
            leaves = np.log(s) - np.log(r + s + x) + log_a0
            return head + np.logaddexp(stays, leaves)

        return loglik

    def fit(self, frequency, recency, T, weights=None) -> "ParetoNBDFitter":
        x, t_x, T, w = _continuous_inputs(self, frequency, recency, T, weights)
        scale = max(float(np.average(T, weights=w)), 1e-3)
        return _fit_grouped(self, x, t_x, T, w, np.log([0.5, scale / 4, 0.5, scale]))

    def _p(self):
        return (self.params_[n] for n in self.names)

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive at T | x, t_x, T) = 1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0)."""
        r, alpha, s, beta = self._p()
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        log_odds = (np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
                    + _log_a0(r, alpha, s, beta, x, t_x, T))
        return 1.0 / (1.0 + np.exp(log_odds))

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchases in the next ``t`` time units (Fader, Hardie & Lee 2005, eq. 11)."""
        r, alpha, s, beta = self._p()
        x, T = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
        if abs(s - 1.0) < 1e-9:
            horizon = np.log((beta + T + t) / (beta + T))
        else:
            horizon = (1.0 - np.power((beta + T) / (beta + T + t), s - 1.0)) / (s - 1.0)
        return (r + x) * (beta + T) / (alpha + T) * horizon * self.p_alive(frequency, recency, T)

    def median_time_to_next_purchase(self, frequency, recency, T) -> np.ndarray:
        """Median wait from T to the next purchase of a customer who is still alive (rate ~ Gamma(r + x, alpha + T)
        given the history, so the wait is Lomax-distributed)."""
        return lomax_median(self.params_["r"], self.params_["alpha"], frequency, T)

    def expected_purchases_since_first(self, t) -> np.ndarray:
        """E[X(t)] of a new customer: r beta / (alpha (s - 1)) (1 - (beta / (beta + t))^(s - 1))."""
        r, alpha, s, beta = self._p()
        t = np.asarray(t, dtype=float)
        if abs(s - 1.0) < 1e-9:
            return r * beta / alpha * np.log((beta + t) / beta)
        return r * beta / (alpha * (s - 1.0)) * (1.0 - np.power(beta / (beta + t), s - 1.0))


class BetaGeoBetaBinomFitter:
    """BG/BB: discrete-time purchasing (one opportunity per period: a week, a campaign, a yearly donation drive).
    While alive a customer transacts at each opportunity with probability p ~ Beta(alpha, beta) and dies before
    each one with probability theta ~ Beta(gamma, delta) (Fader, Hardie & Shang 2010).

    ``frequency`` = x transactions, ``recency`` = t_x (opportunity of the last one), ``n_periods`` = n opportunities.

    >>> m = BetaGeoBetaBinomFitter().fit([0, 1, 3, 6, 2], [0, 1, 5, 6, 2], [6, 6, 6, 6, 6], [30, 10, 8, 12, 5])
    >>> bool(0 < m.p_alive([3], [5], [6])[0] <= 1)
    True
    """

    names = ["alpha", "beta", "gamma", "delta"]

    def __init__(self, min_repeat_customers: int = 2) -> None:
        self.min_repeat_customers = min_repeat_customers

    @staticmethod
    def log_likelihood_individual(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, n: np.ndarray) -> np.ndarray:
        from scipy.special import betaln, logsumexp

        alpha, beta, gamma, delta = params
        x, t_x, n = (np.asarray(v, dtype=float) for v in (x, t_x, n))
        base_p, base_t = betaln(alpha, beta), betaln(gamma, delta)
        alive = betaln(alpha + x, beta + n - x) - base_p + betaln(gamma, delta + n) - base_t
        out = np.empty_like(x)
        for k in range(len(x)):
            i = np.arange(int(n[k] - t_x[k]))
            died = (betaln(alpha + x[k], beta + t_x[k] - x[k] + i) - base_p
                    + betaln(gamma + 1, delta + t_x[k] + i) - base_t)
            out[k] = logsumexp(np.r_[alive[k], died])
        return out

    def fit(self, frequency, recency, n_periods, weights=None) -> "BetaGeoBetaBinomFitter":
        x, t_x, n = (np.asarray(v, dtype=float) for v in (frequency, recency, n_periods))
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        if np.any(x < 0) or np.any(x > t_x) or np.any(t_x > n):
            raise ValueError("expected 0 <= frequency <= recency <= n_periods for every customer")
        if int(w[x > 0].sum()) < self.min_repeat_customers:
            raise TooFewRepeatCustomersError("BG/BB needs customers with at least one transaction")
        return _fit_grouped(self, x, t_x, n, w, np.zeros(4))

    def _p(self):
        return (self.params_[n] for n in self.names)

    def p_alive(self, frequency, recency, n_periods) -> np.ndarray:
        """P(alive at opportunity n + 1 | x, t_x, n)."""
        from scipy.special import betaln

        alpha, beta, gamma, delta = self._p()
        x, t_x, n = (np.asarray(v, dtype=float) for v in (frequency, recency, n_periods))
        ll = self.log_likelihood_individual(np.array([alpha, beta, gamma, delta]), x, t_x, n)
        alive = betaln(alpha + x, beta + n - x) - betaln(alpha, beta) + betaln(gamma, delta + n + 1) \
            - betaln(gamma, delta)
        return np.exp(alive - ll)

    def conditional_expected_purchases(self, future, frequency, recency, n_periods) -> np.ndarray:
        """Expected transactions in the next ``future`` opportunities (Fader, Hardie & Shang 2010, eq. 13)."""
        from scipy.special import betaln

        alpha, beta, gamma, delta = self._p()
        x, t_x, n = (np.asarray(v, dtype=float) for v in (frequency, recency, n_periods))
        ll = self.log_likelihood_individual(np.array([alpha, beta, gamma, delta]), x, t_x, n)
        lead = betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta)
        ratio = lambda k: np.exp(gammaln(1 + delta + k) - gammaln(gamma + delta + k))  # noqa: E731
        tail = delta / (gamma - 1) * np.exp(gammaln(gamma + delta) - gammaln(1 + delta)) * (
            ratio(n) - ratio(n + future))
        return np.exp(lead - ll) * tail

    def expected_purchases_since_first(self, n) -> np.ndarray:
        """E[X(n)]: expected transactions of a new customer in their first ``n`` opportunities."""
        alpha, beta, gamma, delta = self._p()
        n = np.asarray(n, dtype=float)
        return alpha / (alpha + beta) * delta / (gamma - 1) * (
            1 - np.exp(gammaln(gamma + delta) + gammaln(1 + delta + n) - gammaln(gamma + delta + n)
                       - gammaln(1 + delta)))


class ModifiedBetaGeoFitter:
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007): BG/NBD where a customer may also drop out right after the
    first purchase, so customers without a repeat purchase are not all alive (as in lifetimes'
    ``ModifiedBetaGeoFitter``).

    >>> x = np.array([0, 2, 5, 1]); tx = np.array([0., 10., 30., 5.]); T = np.array([40., 40., 40., 38.])
    >>> bool(ModifiedBetaGeoFitter().fit(x, tx, T).p_alive([0], [0], [40])[0] < 1)
    True
    """

    names = ["r", "alpha", "a", "b"]
    label = "MBG/NBD"

    def __init__(self, min_repeat_customers: int = 2) -> None:
        self.min_repeat_customers = min_repeat_customers

    @staticmethod
    def _log_odds_dead(params, x, t_x, T):
        r, alpha, a, b = params
        return np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))

    @classmethod
    @np.errstate(divide="ignore", invalid="ignore")  # the optimiser may probe the boundary; it gets 1e300 there
    def log_likelihood_individual(cls, params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
                                  ) -> np.ndarray:
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x + 1) - gammaln(b) - gammaln(a + b + x + 1)
        a3 = -(r + x) * np.log(alpha + T)
        return a1 + a2 + a3 + np.logaddexp(cls._log_odds_dead(params, x, t_x, T), 0.0)

    def fit(self, frequency, recency, T, weights=None) -> "ModifiedBetaGeoFitter":
        x, t_x, T, w = _continuous_inputs(self, frequency, recency, T, weights)
        return _fit_bgnbd_family(self, x, t_x, T, w, shift=1)  # BG/NBD's objective with the Beta terms shifted

    def _p(self):
        return np.array([self.params_[n] for n in self.names])

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        return 1.0 / (1.0 + np.exp(self._log_odds_dead(self._p(), x, t_x, T)))

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        r, alpha, a, b = self._p()
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        hyp = hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
        first = (a + b + x) / (a - 1) * (1 - hyp * np.power((alpha + T) / (alpha + t + T), r + x))
        return first * self.p_alive(x, t_x, T)

    def median_time_to_next_purchase(self, frequency, recency, T) -> np.ndarray:
        """Median wait from T to the next purchase of a customer who is still alive (see Pareto/NBD)."""
        return lomax_median(self.params_["r"], self.params_["alpha"], frequency, T)

    def expected_purchases_since_first(self, t) -> np.ndarray:
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        return b / (a - 1) * (1 - hyp2f1(r, b + 1, a + b, t / (alpha + t)) * np.power(alpha / (alpha + t), r))


# ---------------------------------------------------------------------------
# Model choice
# ---------------------------------------------------------------------------

CONTINUOUS_MODELS = {"BG/NBD": "helpers.analysis.clv:BetaGeoFitter", "MBG/NBD": ModifiedBetaGeoFitter,
                     "Pareto/NBD": ParetoNBDFitter, "NBD (no dropout)": "helpers.analysis.clv:NBDFitter"}


def _model_class(spec):
    if isinstance(spec, str):
        import importlib

        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)
    return spec


def compare_models(cal: "pd.DataFrame", holdout: "pd.Series | None" = None, duration: float | None = None,
                   models: dict | None = None) -> "pd.DataFrame":
    """Fit every candidate on the calibration summary (``frequency``, ``recency``, ``T``) and compare them:
    log-likelihood, BIC (k ln n − 2 LL), and, with the holdout purchases of each customer over ``duration``,
    the error of the total and the mean absolute error per customer. Sorted by BIC (best first)."""
    import pandas as pd

    rows, fitted = [], {}
    n = len(cal)
    for name, spec in (models or CONTINUOUS_MODELS).items():
        cls = _model_class(spec)
        try:
            m = cls().fit(cal["frequency"], cal["recency"], cal["T"])
        except Exception as exc:  # a model that cannot be fitted to this data is reported, not fatal
            rows.append({"model": name, "parameters": 0, "log_likelihood": np.nan, "bic": np.nan,
                         "note": f"not fitted: {exc}"})
            continue
        fitted[name] = m
        k = len(m.params_)
        row = {"model": name, "parameters": k, "log_likelihood": m.log_likelihood_,
               "bic": k * np.log(n) - 2 * m.log_likelihood_, "note": ""}
        with np.errstate(all="ignore"):
            pred = m.conditional_expected_purchases(duration or float(np.median(cal["T"])), cal["frequency"],
                                                    cal["recency"], cal["T"])
        if not np.all(np.isfinite(pred)):
            # parameters run off to the edge of their space (e.g. r and alpha to infinity when every customer buys
            # at the same rate): the likelihood may look good, but the model cannot predict, so it cannot be chosen
            edge = ", ".join(f"{k} {v:.3g}" for k, v in m.params_.items())
            row.update({"bic": np.nan, "note": f"degenerate fit ({edge}): its predictions are not finite"})
            rows.append(row)
            fitted.pop(name, None)
            continue
        if holdout is not None and duration:
            actual = np.asarray(holdout, dtype=float)
            row.update({"holdout_total_error_pct": 100 * (pred.sum() - actual.sum()) / max(actual.sum(), 1e-9),
                        "holdout_mae": float(np.mean(np.abs(pred - actual)))})
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("bic", na_position="last").reset_index(drop=True)
    table.attrs["fitted"] = fitted
    return table


def choose_model(table: "pd.DataFrame", dropout_identified: bool) -> tuple[str, str]:
    """The model to use and one plain sentence why: the lowest BIC among the models that fitted; when the
    likelihood-ratio test finds no dropout, the no-dropout NBD unless another model beats it on BIC by more than
    10 (strong evidence, Kass & Raftery 1995)."""
    ok = table.dropna(subset=["bic"])
    best = ok.iloc[0]
    if not dropout_identified and "NBD (no dropout)" in set(ok["model"]):
        nbd = ok.set_index("model").loc["NBD (no dropout)"]
        if best["model"] == "NBD (no dropout)" or nbd["bic"] - best["bic"] <= 10:
            return "NBD (no dropout)", ("The data show no sign of customers leaving (the likelihood-ratio test "
                                        "finds no dropout), so the no-dropout NBD model is used: every customer is "
                                        "assumed to stay and P(alive) is not reported.")
    # Within 2 BIC points the evidence is not worth mentioning (Kass & Raftery 1995): keep the most established
    # model among those that close.
    close = ok[ok["bic"] <= best["bic"] + 2]
    for preferred in PREFERENCE:
        if preferred in set(close["model"]):
            chosen = ok.set_index("model").loc[preferred]
            break
    others = ok[ok["model"] != chosen.name]
    runner = others.iloc[0] if len(others) else None
    if runner is None:
        return str(chosen.name), f"{chosen.name} is the only model that could be fitted to this data."
    gap = runner["bic"] - chosen["bic"]
    why = (f"{gap:.0f} BIC points ahead of {runner['model']}" if gap > 2 else
           f"within {abs(gap):.1f} BIC points of {runner['model']}, so the more established model is kept")
    return str(chosen.name), (f"{chosen.name} describes the calibration data best ({why}); it makes every "
                              "prediction on this page.")


PREFERENCE = ["BG/NBD", "Pareto/NBD", "MBG/NBD", "NBD (no dropout)"]


# ---------------------------------------------------------------------------
# Uncertainty per customer: parametric bootstrap from the parameters' covariance
# ---------------------------------------------------------------------------


def parameter_draws(model, n_draws: int = 200, seed: int = 0) -> np.ndarray:
    """``n_draws`` parameter vectors from the fit's sampling distribution: multivariate normal on the log scale
    (delta method from the inverse Hessian), so every draw stays positive. Rows follow ``model.names``."""
    names = list(model.names)
    theta = np.array([model.params_[n] for n in names], dtype=float)
    cov = getattr(model.diagnostics_, "covariance", None)
    if cov is None or not np.all(np.isfinite(cov)):
        cov = np.diag([model.standard_errors_[n] ** 2 for n in names])
    cov_log = np.asarray(cov) / np.outer(theta, theta)
    rng = np.random.default_rng(seed)
    return np.exp(rng.multivariate_normal(np.log(theta), cov_log, size=n_draws, method="eigh"))


def with_params(model, theta: np.ndarray):
    """A copy of ``model`` with the parameters ``theta`` (same order as ``model.names``)."""
    import copy

    out = copy.copy(model)
    out.params_ = dict(zip(model.names, map(float, theta)))
    return out


def prediction_intervals(model, frequency, recency, T, t: float, level: float = 0.90, n_draws: int = 200,
                         seed: int = 0) -> "pd.DataFrame":
    """Per-customer intervals (parameter uncertainty) for the expected purchases in the next ``t`` and P(alive):
    the ``level`` central range over parametric-bootstrap draws."""
    import pandas as pd

    draws = parameter_draws(model, n_draws, seed)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    purchases = np.empty((n_draws, len(x)))
    alive = np.empty((n_draws, len(x)))
    for i, theta in enumerate(draws):
        m = with_params(model, theta)
        purchases[i] = m.conditional_expected_purchases(t, x, t_x, T)
        alive[i] = m.p_alive(x, t_x, T)
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return pd.DataFrame({"expected_purchases_low": np.quantile(purchases, lo, axis=0),
                         "expected_purchases_high": np.quantile(purchases, hi, axis=0),
                         "p_alive_low": np.quantile(alive, lo, axis=0), "p_alive_high": np.quantile(alive, hi, axis=0)})


# ---------------------------------------------------------------------------
# Gamma-Gamma's assumption, checked before use
# ---------------------------------------------------------------------------

INDEPENDENCE_LIMIT = 0.3  # |correlation| above which spend and frequency are treated as related


def spend_independence(summary: "pd.DataFrame") -> dict:
    """Gamma-Gamma assumes a customer's average spend per order is independent of how often they buy. Among
    repeat customers: Pearson and Spearman correlation of frequency with mean spend, and a sentence on what it
    means (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value")."""
    from scipy import stats

    rep = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(rep) < 10:
        return {"n": len(rep), "pearson": float("nan"), "spearman": float("nan"), "p_value": float("nan"),
                "holds": None, "sentence": "Too few repeat customers to check whether spend depends on frequency."}
    pearson = stats.pearsonr(rep["frequency"], rep["monetary_value"])
    spearman = float(stats.spearmanr(rep["frequency"], rep["monetary_value"]).statistic)
    holds = abs(pearson.statistic) < INDEPENDENCE_LIMIT and abs(spearman) < INDEPENDENCE_LIMIT
    verdict = ("weak, so the spend model's assumption holds well enough" if holds else
               "too strong for the spend model's assumption: frequent buyers' spend per order is systematically "
               + ("higher" if pearson.statistic > 0 else "lower")
               + ", so their predicted value is biased; read CLV rankings with care")
    return {"n": len(rep), "pearson": float(pearson.statistic), "spearman": spearman,
            "p_value": float(pearson.pvalue), "holds": holds,
            "sentence": (f"Spend per order and purchase frequency correlate at r = {pearson.statistic:+.2f} "
                         f"(Spearman {spearman:+.2f}) among {len(rep):,} repeat customers: {verdict}.")}


# ---------------------------------------------------------------------------
# Predictions for a date: buy-again reminders and quiet customers
# ---------------------------------------------------------------------------


def p_no_purchase(model, t: float, frequency, recency, T, draws: int = 4000, seed: int = 0) -> np.ndarray:
    """P(no purchase in the next ``t`` | history): the chance a customer will *not* have bought again by then,
    the trigger of a replenishment reminder.

    = 1 − P(alive) + P(alive) · P(no purchase | alive). In BG/NBD, MBG/NBD and NBD a customer only drops out right
    after a purchase, so P(no purchase | alive) = E[e^(−λ t)] = ((α + T)/(α + T + t))^(r + x) exactly. In
    Pareto/NBD the customer may also die before buying; that expectation over the posteriors of λ and μ is taken
    by Monte Carlo (``draws`` per customer, seeded).
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    alive = model.p_alive(x, t_x, T)
    r, alpha = model.params_["r"], model.params_["alpha"]
    if isinstance(model, ParetoNBDFitter):
        s, beta = model.params_["s"], model.params_["beta"]
        rng = np.random.default_rng(seed)
        quiet = np.empty_like(x)
        for i in range(len(x)):
            lam = rng.gamma(r + x[i], 1.0 / (alpha + T[i]), draws)
            mu = rng.gamma(s, 1.0 / (beta + T[i]), draws)
            both = lam + mu
            quiet[i] = np.mean((mu + lam * np.exp(-both * t)) / both)
    else:
        quiet = np.power((alpha + T) / (alpha + T + t), r + x)
    return 1.0 - alive + alive * quiet


def p_alive_if_quiet(model, t: float, frequency, recency, T) -> np.ndarray:
    """P(still a customer at T + ``t`` | history and no purchase until then): how fast a quiet customer's
    P(alive) decays (the same formula with the observation period extended)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    return model.p_alive(x, t_x, T + t)


# ---------------------------------------------------------------------------
# Diagnostics the peers' users ask for
# ---------------------------------------------------------------------------

def p_alive_history(model, purchase_times, until: float, points: int = 200) -> "pd.DataFrame":
    """P(alive) of one customer along time, from the first purchase to ``until`` (may lie beyond today).

    ``purchase_times`` are the customer's distinct purchase times in the model's unit, counted from the first
    purchase (the first is 0). At every time tau the model sees the history up to tau: x = repeat purchases by
    tau, t_x = the last of them, T = tau. Returns ``time``, ``p_alive``, ``purchases_so_far``.
    """
    import pandas as pd

    times = np.sort(np.asarray(purchase_times, dtype=float))
    repeats = times[times > 0]
    grid = np.union1d(np.linspace(0.0, until, points), repeats)
    x = np.searchsorted(repeats, grid, side="right").astype(float)
    t_x = np.where(x > 0, repeats[np.maximum(x.astype(int) - 1, 0)] if repeats.size else 0.0, 0.0)
    alive = model.p_alive(x, t_x, np.maximum(grid, 1e-9))
    return pd.DataFrame({"time": grid, "p_alive": alive, "purchases_so_far": x})


def frequency_recency_matrix(model, T: float, t: float | None = None, max_frequency: int | None = None,
                             recency_steps: int = 40) -> "pd.DataFrame":
    """Expected purchases in the next ``t`` (or, with ``t=None``, P(alive)) of a customer observed for ``T``,
    for every repeat frequency 0..``max_frequency`` (rows) and recency from 0 to T (columns), as in lifetimes'
    frequency/recency plots: where on the grid do valuable and lapsed customers sit."""
    import pandas as pd

    if max_frequency is None:
        r = model.params_.get("r", 1.0)
        alpha = model.params_.get("alpha", 1.0)
        max_frequency = int(min(max(np.ceil(3 * r / alpha * T), 5), 60))  # about 3x the mean count over T
    freq = np.arange(max_frequency + 1, dtype=float)
    rec = np.linspace(0.0, T, recency_steps + 1)
    F, R = np.meshgrid(freq, rec, indexing="ij")
    R = np.where(F == 0, 0.0, R)  # without a repeat purchase recency is 0 by definition
    if t is None:
        values = model.p_alive(F.ravel(), R.ravel(), np.full(F.size, T))
    else:
        values = model.conditional_expected_purchases(t, F.ravel(), R.ravel(), np.full(F.size, T))
    out = pd.DataFrame(np.asarray(values).reshape(F.shape), index=freq.astype(int), columns=rec)
    out.index.name, out.columns.name = "frequency", "recency"
    return out
