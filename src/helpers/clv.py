"""Customer lifetime value models: BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma, on numpy/scipy.

Both log-likelihoods are computed in log space (``gammaln``, ``logaddexp``), so that
extreme customers never produce NaN or inf. Parameters are fitted by maximum
likelihood on the log scale (they must be positive), with standard errors from the
numerical Hessian and convergence diagnostics. The classes follow scikit-learn's
shape: parameters in ``__init__``, ``fit`` returns ``self``, fitted values end in ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

from helpers.errors import WorkbenchError


class TooFewRepeatCustomersError(WorkbenchError, ValueError):
    """The data hold too few repeat customers to identify the model's parameters."""


def rfm_summary(transactions: pd.DataFrame, customer_col: str, date_col: str, value_col: str | None,
                end: pd.Timestamp, unit: str = "D") -> pd.DataFrame:
    """Per-customer frequency, recency, T and mean repeat value, from a transaction log.

    Several transactions of a customer on the same day count as one (their values summed),
    as in the BTYD literature. ``frequency`` counts repeat purchase days, ``recency`` is the
    time from first to last purchase and ``T`` from first purchase to ``end``, in days
    (``unit='D'``) or weeks (``'W'``). ``monetary_value`` is the mean value of the repeat
    transactions (0 for customers without one). Transactions after ``end`` are ignored.
    """
    if unit not in ("D", "W"):
        raise ValueError(f"unit must be 'D' (days) or 'W' (weeks), got {unit!r}")
    t = transactions[transactions[date_col] <= end]
    day = t[date_col].dt.normalize()
    daily = t.assign(_day=day).groupby([customer_col, "_day"], sort=True)
    daily = (daily[value_col].sum() if value_col else daily.size()).rename("value").reset_index()
    g = daily.groupby(customer_col)
    first, last = g["_day"].min(), g["_day"].max()
    scale = 7.0 if unit == "W" else 1.0
    out = pd.DataFrame({
        "frequency": g.size() - 1,
        "recency": (last - first).dt.days / scale,
        "T": (end.normalize() - first).dt.days / scale,
    })
    first_value = daily.sort_values("_day").groupby(customer_col)["value"].first()
    total = g["value"].sum()
    out["monetary_value"] = np.where(out["frequency"] > 0,
                                     (total - first_value) / out["frequency"].replace(0, np.nan), 0.0)
    return out


@dataclass
class FitDiagnostics:
    converged: bool
    message: str
    iterations: int
    gradient_norm: float


def _hessian(f, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x`` with a step ``eps[i]`` per coordinate."""
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * eps[i], np.eye(n)[j] * eps[j]
            v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * eps[i] * eps[j])
            h[i, j] = h[j, i] = v
    return h


def _fit(neg_ll, x0: np.ndarray, names: list[str]) -> tuple[dict, dict, float, FitDiagnostics]:
    """Minimise ``neg_ll`` over log-parameters; return params, standard errors, LL and diagnostics."""
    res = minimize(neg_ll, x0, method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    theta = np.exp(res.x)
    # Standard errors on the natural scale: invert the Hessian of -LL in the parameters themselves.
    hess = _hessian(lambda p: neg_ll(np.log(np.clip(p, 1e-12, None))), theta, eps=1e-5 * np.maximum(theta, 1e-3))
    try:
        cov = np.linalg.inv(hess)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        se = np.full(len(theta), np.nan)
    grad = getattr(res, "jac", np.zeros_like(res.x))
    diag = FitDiagnostics(bool(res.success), str(res.message), int(res.nit), float(np.linalg.norm(grad)))
    return dict(zip(names, theta)), dict(zip(names, se)), float(-res.fun), diag


class BetaGeoFitter:
    """BG/NBD model of repeat purchasing and dropout.

    >>> x = np.array([0, 2, 5]); tx = np.array([0., 10., 30.]); T = np.array([40., 40., 40.])
    >>> bool(BetaGeoFitter().fit(x, tx, T).params_["r"] > 0)
    True
    """

    names = ["r", "alpha", "a", "b"]

    def __init__(self, min_repeat_customers: int = 2) -> None:
        self.min_repeat_customers = min_repeat_customers

    @staticmethod
    def log_likelihood_individual(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                          -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    def fit(self, frequency, recency, T, weights=None) -> "BetaGeoFitter":
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        if np.any(x < 0) or np.any(t_x > T + 1e-9) or np.any(t_x < 0):
            raise ValueError("expected frequency >= 0 and 0 <= recency <= T for every customer")
        n_repeat = int(w[x > 0].sum())
        if n_repeat < self.min_repeat_customers:
            raise TooFewRepeatCustomersError(
                f"BG/NBD needs at least {self.min_repeat_customers} customers with a repeat purchase; got {n_repeat}")

        def neg_ll(log_p):
            return -float(np.sum(w * self.log_likelihood_individual(np.exp(log_p), x, t_x, T)))

        x0 = np.log([1.0, max(T.mean(), 1e-3), 1.0, 1.0])
        self.params_, self.standard_errors_, self.log_likelihood_, self.diagnostics_ = _fit(neg_ll, x0, self.names)
        return self

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchases in the next ``t`` time units for customers with history (x, t_x, T)."""
        from scipy.special import hyp2f1

        r, alpha, a, b = (self.params_[n] for n in self.names)
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        z = t / (alpha + T + t)
        term = (a + b + x - 1) / (a - 1) * (1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t)))
                                            * hyp2f1(r + x, b + x, a + b + x - 1, z))
        return term * self.p_alive(x, t_x, T)

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """Probability that each customer is still active at T."""
        r, alpha, a, b = (self.params_[n] for n in self.names)
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        with np.errstate(divide="ignore"):
            log_ratio = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                         + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
        return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)


class GammaGammaFitter:
    """Gamma-Gamma model of the mean transaction value of repeat customers."""

    names = ["p", "q", "v"]

    def __init__(self, min_repeat_customers: int = 2) -> None:
        self.min_repeat_customers = min_repeat_customers

    @staticmethod
    def log_likelihood_individual(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        p, q, v = params
        return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + (p * x - 1) * np.log(m)
                + p * x * np.log(x) - (p * x + q) * np.log(v + m * x))

    def fit(self, frequency, monetary_value) -> "GammaGammaFitter":
        x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        keep = (x > 0) & (m > 0)
        if keep.sum() < self.min_repeat_customers:
            raise TooFewRepeatCustomersError(
                f"Gamma-Gamma needs at least {self.min_repeat_customers} repeat customers with a positive spend; "
                f"got {int(keep.sum())}")
        x, m = x[keep], m[keep]
        self.n_customers_ = int(keep.sum())

        def neg_ll(log_p):
            return -float(np.sum(self.log_likelihood_individual(np.exp(log_p), x, m)))

        self.params_, self.standard_errors_, self.log_likelihood_, self.diagnostics_ = _fit(
            neg_ll, np.log([1.0, 1.0, max(m.mean(), 1e-3)]), self.names)
        return self

    def conditional_expected_average_profit(self, frequency, monetary_value) -> np.ndarray:
        """Expected mean transaction value per customer (population mean for customers without repeats)."""
        p, q, v = (self.params_[n] for n in self.names)
        x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        weight = (q - 1) / (p * x + q - 1)
        return weight * (v * p / (q - 1)) + (1 - weight) * m
