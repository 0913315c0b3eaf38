"""Customer lifetime value models: BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma, on numpy/scipy.

Both log-likelihoods are computed in log space (``gammaln``, ``logaddexp``), so that
extreme customers never produce NaN or inf. Parameters are fitted by maximum
likelihood on the log scale (they must be positive), with standard errors from the
numerical Hessian and convergence diagnostics. The classes follow scikit-learn's
shape: parameters in ``__init__``, ``fit`` returns ``self``, fitted values end in ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

from helpers.canonical.summaries import btyd_summary
from helpers.core.errors import WorkbenchError


class TooFewRepeatCustomersError(WorkbenchError, ValueError):
    """The data hold too few repeat customers to identify the model's parameters."""


def rfm_summary(transactions: pd.DataFrame | str | Path, customer_col: str, date_col: str, value_col: str | None,
                end: pd.Timestamp, unit: str = "D") -> pd.DataFrame:
    """Per-customer frequency, recency, T and mean repeat value, from a transaction log (a frame or Parquet).

    Several transactions of a customer on the same day count as one (their values summed),
    as in the BTYD literature. ``frequency`` counts repeat purchase days, ``recency`` is the
    time from first to last purchase and ``T`` from first purchase to ``end``, in days
    (``unit='D'``) or weeks (``'W'``). ``monetary_value`` is the mean value of the repeat
    transactions (0 for customers without one). Transactions after ``end`` are ignored.
    The aggregation runs in the engine (:func:`helpers.canonical.summaries.btyd_summary`).
    """
    return btyd_summary(transactions, customer_col, date_col, value_col, end, unit)


@dataclass
class FitDiagnostics:
    converged: bool
    message: str
    iterations: int
    gradient_norm: float
    covariance: np.ndarray | None = None  # of the parameters, natural scale (inverse Hessian of -LL)


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


def _hessian_from_gradient(grad, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Symmetrised central-difference Hessian from an analytic gradient ``grad`` (forward differences lose a few
    tenths of a percent in the standard errors of ill-conditioned fits)."""
    n = len(x)
    h = np.empty((n, n))
    for i in range(n):
        step = np.eye(n)[i] * eps[i]
        h[i] = (grad(x + step) - grad(x - step)) / (2 * eps[i])
    return (h + h.T) / 2


def _fit(neg_ll, x0: np.ndarray, names: list[str], jac=None, ftol: float = 1e-14
         ) -> tuple[dict, dict, float, FitDiagnostics]:
    """Minimise ``neg_ll`` over log-parameters; return params, standard errors, LL and diagnostics.

    ``jac``, when given, returns ``(neg_ll, gradient)`` in the log-parameters and is used for the search.
    ``ftol`` is the relative change of -LL at which the numerical-gradient search stops.
    """
    if jac is None:
        res = minimize(neg_ll, x0, method="L-BFGS-B", options={"maxiter": 2000, "ftol": ftol, "gtol": 1e-9})
    else:
        res = minimize(jac, x0, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7})
    theta = np.exp(res.x)
    # Standard errors on the natural scale: invert the Hessian of -LL in the parameters themselves (from
    # central differences of the analytic gradient when there is one: 2k evaluations instead of 4k²).
    eps = 1e-5 * np.maximum(theta, 1e-3)
    if jac is None:
        hess = _hessian(lambda p: neg_ll(np.log(np.clip(p, 1e-12, None))), theta, eps=eps)
    else:
        hess = _hessian_from_gradient(lambda p: jac(np.log(p))[1] / p, theta, eps)
    try:
        cov = np.linalg.inv(hess)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        cov, se = None, np.full(len(theta), np.nan)
    grad = getattr(res, "jac", np.zeros_like(res.x))
    diag = FitDiagnostics(bool(res.success), str(res.message), int(res.nit), float(np.linalg.norm(grad)), cov)
    return dict(zip(names, theta)), dict(zip(names, se)), float(-res.fun), diag


def _newton(f_grad_hess, x0: np.ndarray, max_iter: int = 20, tol: float = 1e-6, decrement_tol: float = 1e-4):
    """Newton's method in log-parameters with an analytic Hessian.

    Stops after a step smaller than ``tol``: convergence is quadratic, so the point reached is then within
    about tol² of the optimum. Also stops, without evaluating the objective again, when the next step's Newton
    decrement promises less than ``decrement_tol`` of log-likelihood: that step is then so deep in the quadratic
    region (a change of about sqrt(2 x 1e-4) = 1.4% of a standard error) that taking it blind is exact to its
    square, and one full pass over the data is saved.

    Returns ``(theta, standard errors, log-likelihood, diagnostics)``, or ``None`` when a step fails to
    improve the likelihood (the caller then falls back to the quasi-Newton search).
    """
    x = np.asarray(x0, dtype=float)
    f, g, H = f_grad_hess(x)
    n = len(x)
    converged = False
    for it in range(1, max_iter + 1):
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 1.0:
            return None
        decrement = -float(g @ step)  # g' H^-1 g: twice the log-likelihood the step gains on the quadratic model
        if 0 <= decrement / 2 < decrement_tol:
            # the gradient at x + step is zero to second order; H (at x) differs from its value there by O(step)
            x, f, g = x + step, f - decrement / 2, np.zeros_like(g)
            converged = True
            break
        f_new, g_new, H_new = f_grad_hess(x + step)
        if f_new > f + 1e-12 * abs(f):
            return None
        x, f, g, H = x + step, f_new, g_new, H_new
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    theta = np.exp(x)
    # -LL Hessian in natural parameters: d/dtheta = (1/theta) d/dlog(theta); the gradient term vanishes at
    # the optimum.
    H_nat = (H - np.diag(g)) / np.outer(theta, theta)
    try:
        cov = np.linalg.inv(H_nat)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        cov, se = None, np.full(n, np.nan)
    diag = FitDiagnostics(converged, "Newton steps with the analytic Hessian", it, float(np.linalg.norm(g)), cov)
    return theta, se, float(-f), diag


LARGE_FIT_ROWS = 200_000


def _coarse_to_fine(make_objective, x0: np.ndarray):
    """Fit a large data set in three passes of growing size, each started at the previous optimum.

    ``make_objective(slice)`` builds the objective (with ``neg_ll_and_grad`` and ``neg_ll_grad_hess``) on every
    k-th row. A quasi-Newton search on every 100th row finds the basin cheaply; Newton steps with the analytic
    Hessian on every 10th row and then on all rows converge quadratically, so the full data is read two or three
    times instead of the dozens of passes a quasi-Newton search on it would take. Returns what
    :func:`_newton` returns, or ``None`` when a Newton stage fails (the caller then falls back to a full
    quasi-Newton fit).
    """
    coarse = make_objective(slice(None, None, 100))
    x = minimize(coarse.neg_ll_and_grad, x0, jac=True, method="L-BFGS-B", options={"ftol": 1e-10}).x
    middle = _newton(make_objective(slice(None, None, 10)).neg_ll_grad_hess, x, tol=1e-3)
    if middle is not None:
        x = np.log(middle[0])
    return _newton(make_objective(slice(None)).neg_ll_grad_hess, x)


class _BGNBDObjective:
    """BG/NBD log-likelihood with its analytic gradient, organised for speed on millions of customers.

    Customers without a repeat purchase contribute ``-r log(alpha + T)`` only, so they are reduced to the
    distinct values of T with counts; terms in x alone are computed once per distinct frequency; logarithms
    of ``alpha + T`` and ``alpha + t_x`` are taken over distinct values (few with daily data) and gathered.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray, shift: int = 0) -> None:
        # shift=1 gives MBG/NBD: its Beta terms carry b + x + 1 where BG/NBD's carry b + x, and customers without
        # a repeat purchase may have left too, so they take the general per-customer path.
        self.shift = shift
        zero = x == 0
        if shift:
            # MBG/NBD: customers without a repeat purchase (t_x = 0) differ only in T, so they enter the
            # per-customer path once per distinct T, weighted by their count
            T0, w0 = _distinct(T[zero], w[zero])
            x, t_x, T, w = (np.r_[x[~zero], np.zeros(T0.size)], np.r_[t_x[~zero], np.zeros(T0.size)],
                            np.r_[T[~zero], T0], np.r_[w[~zero], w0])
            zero = np.zeros(x.shape, dtype=bool)
        self.T0, self.w0 = _distinct(T[zero], w[zero])
        rep = ~zero
        self.w = w[rep]
        self.ux, self.x_idx = _unique_inverse(x[rep])
        self.wx = np.bincount(self.x_idx, weights=self.w, minlength=self.ux.size)
        self.x = x[rep]
        self.uT, self.T_idx = _unique_inverse(T[rep])
        self.ut, self.t_idx = _unique_inverse(t_x[rep])
        self.n = float(w.sum())

    def neg_ll(self, log_p: np.ndarray) -> float:
        return self.neg_ll_and_grad(log_p)[0]

    def neg_ll_and_grad(self, log_p: np.ndarray) -> tuple[float, np.ndarray]:
        f, g, _ = self.neg_ll_grad_hess(log_p)
        return f, g

    def neg_ll_grad_hess(self, log_p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """-LL, its gradient and its Hessian in the log-parameters (analytic)."""
        from scipy.special import digamma, polygamma

        theta = np.exp(log_p)
        r, alpha, a, b = theta
        ux, wx, w = self.ux, self.wx, self.w
        uxb = ux + self.shift  # the frequency as it enters the Beta terms
        # x = 0: LL = r (log alpha - log(alpha + T))
        lT0 = np.log(alpha + self.T0)
        iT0 = 1 / (alpha + self.T0)
        ll = float(np.sum(self.w0 * r * (np.log(alpha) - lT0)))
        g = np.array([np.sum(self.w0 * (np.log(alpha) - lT0)), np.sum(self.w0 * r * (1 / alpha - iT0)), 0.0, 0.0])
        H = np.zeros((4, 4))
        H[0, 1] = np.sum(self.w0 * (1 / alpha - iT0))
        H[1, 1] = np.sum(self.w0 * r * (-1 / alpha**2 + iT0**2))
        # x > 0, terms in x only
        bx1 = b + uxb - 1
        per_x = (gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + uxb) - gammaln(b)
                 - gammaln(a + b + uxb) + np.log(a) - np.log(bx1))
        ll += float(np.sum(wx * per_x))
        tg1 = polygamma(1, a + b) - polygamma(1, a + b + uxb)
        g += [np.sum(wx * (digamma(r + ux) - digamma(r) + np.log(alpha))), np.sum(wx) * r / alpha,
              np.sum(wx * (digamma(a + b) - digamma(a + b + uxb) + 1 / a)),
              np.sum(wx * (digamma(a + b) + digamma(b + uxb) - digamma(b) - digamma(a + b + uxb) - 1 / bx1))]
        H[0, 0] += np.sum(wx * (polygamma(1, r + ux) - polygamma(1, r)))
        H[0, 1] += np.sum(wx) / alpha
        H[1, 1] += -np.sum(wx) * r / alpha**2
        H[2, 2] += np.sum(wx * (tg1 - 1 / a**2))
        H[2, 3] += np.sum(wx * tg1)
        H[3, 3] += np.sum(wx * (tg1 + polygamma(1, b + uxb) - polygamma(1, b) + 1 / bx1**2))
        # x > 0, per customer: -rx lt + softplus(d), d = rx (lt - lT) - log a + log(b + x - 1)
        lT = np.log(alpha + self.uT)[self.T_idx]
        lt = np.log(alpha + self.ut)[self.t_idx]
        iT = (1 / (alpha + self.uT))[self.T_idx]
        it = (1 / (alpha + self.ut))[self.t_idx]
        rx = r + self.x
        d_r = lt - lT
        d_alpha_unit = it - iT  # d_alpha = rx * d_alpha_unit
        d = rx * d_r + (np.log(bx1) - np.log(a))[self.x_idx]
        soft = np.logaddexp(0.0, d)
        sig = np.exp(d - soft)  # softplus'(d)
        s2 = w * sig * (1 - sig)  # softplus''(d), weighted
        ws = w * sig
        d_alpha = rx * d_alpha_unit
        ll += float(np.sum(w * (soft - rx * lt)))
        g += [np.sum(ws * d_r - w * lt), np.sum(ws * d_alpha - w * rx * it),
              -np.sum(ws) / a, np.sum(np.bincount(self.x_idx, weights=ws, minlength=ux.size) / bx1)]
        s2x = np.bincount(self.x_idx, weights=s2, minlength=ux.size)
        s2rx = np.bincount(self.x_idx, weights=s2 * d_r, minlength=ux.size)
        s2ax = np.bincount(self.x_idx, weights=s2 * d_alpha, minlength=ux.size)
        wsx = np.bincount(self.x_idx, weights=ws, minlength=ux.size)
        H[0, 0] += np.sum(s2 * d_r * d_r)
        H[0, 1] += np.sum(s2 * d_r * d_alpha + ws * d_alpha_unit - w * it)
        H[1, 1] += np.sum(s2 * d_alpha * d_alpha + ws * rx * (iT**2 - it**2) + w * rx * it**2)
        H[0, 2] += -np.sum(s2rx) / a
        H[1, 2] += -np.sum(s2ax) / a
        H[0, 3] += np.sum(s2rx / bx1)
        H[1, 3] += np.sum(s2ax / bx1)
        H[2, 2] += np.sum(s2x) / a**2 + np.sum(wsx) / a**2
        H[2, 3] += -np.sum(s2x / bx1) / a
        H[3, 3] += np.sum(s2x / bx1**2) - np.sum(wsx / bx1**2)
        H = np.triu(H) + np.triu(H, 1).T
        # to log-parameters: H_phi = diag(theta) H diag(theta) + diag(theta * g)
        H_phi = H * np.outer(theta, theta) + np.diag(theta * g)
        return -ll, -(theta * g), -H_phi


def _unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``, in linear time when the values are whole numbers from 0 to a
    few million (purchase counts, days): no sort of a million-row array."""
    values = np.asarray(values)
    if values.size and values.min() >= 0 and values.max() < 5_000_000:
        as_int = values.astype(np.int64)
        if np.array_equal(as_int, values):
            present = np.bincount(as_int) > 0
            return np.flatnonzero(present).astype(values.dtype), (np.cumsum(present) - 1)[as_int]
    return np.unique(values, return_inverse=True)


def _distinct(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values with summed weights."""
    u, idx = _unique_inverse(values)
    return u, np.bincount(idx, weights=weights, minlength=u.size)


def lomax_median(r: float, alpha: float, frequency, T) -> np.ndarray:
    """Median wait from T to the next purchase of a customer who is still active, in every model whose purchases
    are Poisson with a Gamma(r, alpha) rate: given the history the rate is Gamma(r + x, alpha + T), so the wait is
    Lomax-distributed and P(no purchase within s) = ((alpha + T) / (alpha + T + s))^(r + x)."""
    x, T = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
    return (alpha + T) * (np.power(2.0, 1.0 / (r + x)) - 1.0)


def _fit_bgnbd_family(model, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray, shift: int):
    """Fit BG/NBD (``shift=0``) or MBG/NBD (``shift=1``) with the analytic gradient; sets the fitted attributes.

    On large data, see :func:`_coarse_to_fine`.
    """
    x0 = np.log([1.0, max(float(np.average(T, weights=w)), 1e-3), 1.0, 1.0])
    model.n_customers_ = int(w.sum())
    if len(x) > LARGE_FIT_ROWS:
        fitted = _coarse_to_fine(lambda sub: _BGNBDObjective(x[sub], t_x[sub], T[sub], w[sub], shift), x0)
        if fitted is not None:
            theta, se, model.log_likelihood_, model.diagnostics_ = fitted
            model.params_, model.standard_errors_ = dict(zip(model.names, theta)), dict(zip(model.names, se))
            return model
    objective = _BGNBDObjective(x, t_x, T, w, shift)
    model.params_, model.standard_errors_, model.log_likelihood_, model.diagnostics_ = _fit(
        objective.neg_ll, x0, model.names, jac=objective.neg_ll_and_grad)
    return model


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
        return _fit_bgnbd_family(self, x, t_x, T, w, shift=0)

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchases in the next ``t`` time units for customers with history (x, t_x, T)."""
        from scipy.special import hyp2f1

        r, alpha, a, b = (self.params_[n] for n in self.names)
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        z = t / (alpha + T + t)
        term = (a + b + x - 1) / (a - 1) * (1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t)))
                                            * hyp2f1(r + x, b + x, a + b + x - 1, z))
        return term * self.p_alive(x, t_x, T)

    def expected_purchases_since_first(self, t) -> np.ndarray:
        """E[X(t)]: expected repeat purchases of a new customer within ``t`` time units of the first purchase."""
        from scipy.special import hyp2f1

        r, alpha, a, b = (self.params_[n] for n in self.names)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - np.exp(r * np.log(alpha / (alpha + t))) * hyp2f1(r, b, a + b - 1, z))

    def median_time_to_next_purchase(self, frequency, recency, T) -> np.ndarray:
        """Median time from T to the next purchase of a customer who is still active.

        Given activity, the purchase rate's posterior is Gamma(r + x, alpha + T), so the waiting time is
        Lomax-distributed: P(no purchase within s) = ((alpha + T) / (alpha + T + s))^(r + x).
        """
        return lomax_median(self.params_["r"], self.params_["alpha"], frequency, T)

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """Probability that each customer is still active at T."""
        r, alpha, a, b = (self.params_[n] for n in self.names)
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        with np.errstate(divide="ignore"):
            log_ratio = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                         + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
        return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)


class NBDFitter:
    """The NBD model of repeat purchasing *without* dropout (Ehrenberg): every customer stays, and purchase rates
    vary as Gamma(r, alpha). It is BG/NBD's limit as the dropout probability goes to 0, so comparing the two
    tells whether the data show customers leaving at all (:func:`dropout_test`). Same interface as
    :class:`BetaGeoFitter`; P(alive) is 1 for everyone by assumption.

    >>> m = NBDFitter().fit(np.array([0, 2, 5]), np.array([0., 10., 30.]), np.array([40., 40., 40.]))
    >>> round(float(m.params_["r"] / m.params_["alpha"] * 40), 3)  # mean repeat purchases in 40 days = mean of x
    2.333
    """

    names = ["r", "alpha"]

    def __init__(self, min_repeat_customers: int = 2) -> None:
        self.min_repeat_customers = min_repeat_customers

    @staticmethod
    def log_likelihood_individual(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Per-customer log-likelihood of the purchase times, on the same scale as BG/NBD's."""
        r, alpha = params
        return gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)

    def fit(self, frequency, recency, T, weights=None) -> "NBDFitter":
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        if int(w[x > 0].sum()) < self.min_repeat_customers:
            raise TooFewRepeatCustomersError(f"NBD needs at least {self.min_repeat_customers} customers with a repeat "
                                             "purchase")
        from scipy.special import digamma

        def neg_ll_and_grad(log_p):
            r, alpha = np.exp(log_p)
            ll = np.sum(w * self.log_likelihood_individual((r, alpha), x, t_x, T))
            d_r = np.sum(w * (digamma(r + x) - digamma(r) + np.log(alpha) - np.log(alpha + T)))
            d_a = np.sum(w * (r / alpha - (r + x) / (alpha + T)))
            return -float(ll), -np.array([d_r * r, d_a * alpha])

        x0 = np.log([1.0, max(float(np.average(T, weights=w)), 1e-3)])
        self.params_, self.standard_errors_, self.log_likelihood_, self.diagnostics_ = _fit(
            lambda lp: neg_ll_and_grad(lp)[0], x0, self.names, jac=neg_ll_and_grad)
        self.n_customers_ = int(w.sum())
        return self

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        r, alpha = self.params_["r"], self.params_["alpha"]
        x, T = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
        return (r + x) / (alpha + T) * t

    def expected_purchases_since_first(self, t) -> np.ndarray:
        return self.params_["r"] / self.params_["alpha"] * np.asarray(t, dtype=float)

    def median_time_to_next_purchase(self, frequency, recency, T) -> np.ndarray:
        return lomax_median(self.params_["r"], self.params_["alpha"], frequency, T)

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        return np.ones(len(np.atleast_1d(frequency)))


def dropout_test(summary: pd.DataFrame, bg: "BetaGeoFitter | None" = None, alpha: float = 0.05) -> dict:
    """Does the data show customers dropping out? A likelihood-ratio test of BG/NBD against the no-dropout NBD.

    The NBD is BG/NBD with dropout switched off, so twice the log-likelihood gain is compared with a chi-square
    with two degrees of freedom (the extra parameters a and b; conservative, as the null sits on the boundary).
    Dropout counts as **identified** when the gain is significant at ``alpha`` and the fitted mean dropout
    probability per purchase, a / (a + b), is not negligible (≥ 0.1%).
    """
    from scipy.stats import chi2

    x, tx, T = summary["frequency"], summary["recency"], summary["T"]
    bg = bg or BetaGeoFitter().fit(x, tx, T)
    nbd = NBDFitter().fit(x, tx, T)
    lr = max(0.0, 2 * (bg.log_likelihood_ - nbd.log_likelihood_))
    p = float(chi2.sf(lr, 2))
    a, b = bg.params_["a"], bg.params_["b"]
    mean_dropout = a / (a + b)
    identified = bool(p < alpha and mean_dropout >= 1e-3)
    share_likely_gone = float(np.mean(bg.p_alive(x, tx, T) < 0.5))
    return {"ll_bgnbd": float(bg.log_likelihood_), "ll_nbd": float(nbd.log_likelihood_), "lr": float(lr),
            "df": 2, "p_value": p, "mean_dropout": float(mean_dropout), "identified": identified,
            "share_p_alive_below_half": share_likely_gone, "bgnbd": bg, "nbd": nbd}


def dropout_sentence(test: dict) -> str:
    """What the test found, and what P(alive) means then, in plain words."""
    if test["identified"]:
        return (f"The data show customers leaving: allowing for dropout (BG/NBD) fits clearly better than assuming "
                f"everyone stays (likelihood-ratio {test['lr']:,.1f}, p = {test['p_value']:.2g}); after each "
                f"purchase a customer leaves with probability {test['mean_dropout']:.1%} on average. P(alive) is the "
                "chance a customer has not silently left.")
    return (f"The data do **not** show customers leaving: allowing for dropout adds nothing "
            f"(likelihood-ratio {test['lr']:,.1f}, p = {test['p_value']:.2g}; fitted dropout per purchase "
            f"{test['mean_dropout']:.2%}). Every customer's P(alive) would be about 1, which says nothing about who "
            "has left, so P(alive) is not reported and forecasts use the NBD model, which assumes customers stay and "
            "only buy at different rates. Churn must be judged from recency instead (report 03).")


class _GammaGammaObjective:
    """Gamma-Gamma log-likelihood with its analytic gradient in the log-parameters.

    Terms in the data alone (``log m``, ``x log x``) are computed once; digamma and log-gamma terms depend on x
    only, so they are evaluated over the distinct frequencies (a few dozen) and gathered. The one per-customer
    logarithm left per evaluation is ``log(v + m x)``.
    """

    def __init__(self, x: np.ndarray, m: np.ndarray) -> None:
        self.ux, self.x_idx = _unique_inverse(x)
        self.wx = np.bincount(self.x_idx, minlength=self.ux.size).astype(float)
        self.x, self.mx = x, m * x
        self.log_m = np.log(m)
        self.sum_log_m = float(self.log_m.sum())
        # sum of (x log m + x log x) per customer: constant in the parameters except through p
        self.sum_x_log_mx = float(np.sum(x * (self.log_m + np.log(x))))
        self.n = float(x.size)

    def neg_ll(self, log_p: np.ndarray) -> float:
        return self.neg_ll_and_grad(log_p)[0]

    def neg_ll_and_grad(self, log_p: np.ndarray) -> tuple[float, np.ndarray]:
        f, g, _ = self.neg_ll_grad_hess(log_p, hessian=False)
        return f, g

    def neg_ll_grad_hess(self, log_p: np.ndarray, hessian: bool = True):
        """-LL, its gradient and (when asked) its Hessian in the log-parameters."""
        from scipy.special import digamma, polygamma

        p, q, v = np.exp(log_p)
        ux, wx = self.ux, self.wx
        pxq, px = p * ux + q, p * ux
        log_vmx = np.log(v + self.mx)
        inv_vmx = 1.0 / (v + self.mx)
        sum_log_vmx = float(log_vmx.sum())
        sum_x_log_vmx = float(np.dot(self.x, log_vmx))
        ll = (float(np.dot(wx, gammaln(pxq) - gammaln(px))) - self.n * gammaln(q) + self.n * q * np.log(v)
              + p * self.sum_x_log_mx - self.sum_log_m - p * sum_x_log_vmx - q * sum_log_vmx)
        d_p = float(np.dot(wx, ux * (digamma(pxq) - digamma(px)))) + self.sum_x_log_mx - sum_x_log_vmx
        d_q = float(np.dot(wx, digamma(pxq))) - self.n * digamma(q) + self.n * np.log(v) - sum_log_vmx
        # sum over customers of (p x + q) / (v + m x)
        d_v = self.n * q / v - p * float(np.dot(self.x, inv_vmx)) - q * float(inv_vmx.sum())
        if not np.isfinite(ll):
            return 1e300, np.zeros(3), None
        theta, g = np.array([p, q, v]), np.array([d_p, d_q, d_v])
        if not hessian:
            return -ll, -theta * g, None
        t1_pxq, t1_px = polygamma(1, pxq), polygamma(1, px)
        sum_x_inv2 = float(np.dot(self.x, inv_vmx**2))
        sum_inv2 = float(np.dot(inv_vmx, inv_vmx))
        H = np.empty((3, 3))
        H[0, 0] = float(np.dot(wx, ux**2 * (t1_pxq - t1_px)))
        H[0, 1] = H[1, 0] = float(np.dot(wx, ux * t1_pxq))
        H[0, 2] = H[2, 0] = -float(np.dot(self.x, inv_vmx))
        H[1, 1] = float(np.dot(wx, t1_pxq)) - self.n * polygamma(1, q)
        H[1, 2] = H[2, 1] = self.n / v - float(inv_vmx.sum())
        H[2, 2] = -self.n * q / v**2 + p * sum_x_inv2 + q * sum_inv2
        # to log-parameters: H_phi = diag(theta) H diag(theta) + diag(theta * g)
        H_phi = H * np.outer(theta, theta) + np.diag(theta * g)
        return -ll, -theta * g, -H_phi


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
        x0 = np.log([1.0, 1.0, max(m.mean(), 1e-3)])
        if len(x) > LARGE_FIT_ROWS:
            # large data: coarse-to-fine Newton with the analytic Hessian, as BetaGeoFitter does
            fitted = _coarse_to_fine(lambda sub: _GammaGammaObjective(x[sub], m[sub]), x0)
            if fitted is not None:
                theta, se, self.log_likelihood_, self.diagnostics_ = fitted
                self.params_, self.standard_errors_ = dict(zip(self.names, theta)), dict(zip(self.names, se))
                return self
        objective = _GammaGammaObjective(x, m)
        self.params_, self.standard_errors_, self.log_likelihood_, self.diagnostics_ = _fit(
            objective.neg_ll, x0, self.names, jac=objective.neg_ll_and_grad)
        return self

    def conditional_expected_average_profit(self, frequency, monetary_value) -> np.ndarray:
        """Expected mean transaction value per customer (population mean for customers without repeats)."""
        p, q, v = (self.params_[n] for n in self.names)
        x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        weight = (q - 1) / (p * x + q - 1)
        return weight * (v * p / (q - 1)) + (1 - weight) * m


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, max_T: int = 730, seed: int = 0
                   ) -> pd.DataFrame:
    """Simulate ``n`` customers from a BG/NBD process observed for a random whole number of days ``T``.

    Each customer has a purchase rate ``lambda ~ Gamma(r, rate=alpha)`` and a dropout probability
    ``p ~ Beta(a, b)``; after every repeat purchase they drop out with probability ``p``. Recency is rounded
    down to whole days, as transaction dates are. Returns ``frequency``, ``recency`` and ``T``.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.integers(1, max_T + 1, n).astype(float)
    t = np.zeros(n)
    x = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t_next = t[idx] + rng.exponential(1.0 / lam[idx])
        inside = t_next < T[idx]
        alive[idx[~inside]] = False
        idx, t_next = idx[inside], t_next[inside]
        x[idx] += 1
        t[idx] = t_next
        alive[idx[rng.random(idx.size) < p[idx]]] = False
    return pd.DataFrame({"frequency": x, "recency": np.floor(t), "T": T})
