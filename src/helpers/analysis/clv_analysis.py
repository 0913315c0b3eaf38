"""CLV analysis around the models in :mod:`helpers.clv`: data preparation, validation, predictions, cohorts.

Time is measured in days for the workbench's data and in weeks for CDNOW (as in the paper); every function
takes the unit from its input.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analysis.clv import (BetaGeoFitter, GammaGammaFitter, NBDFitter, dropout_sentence,  # noqa: F401
                                  dropout_test, rfm_summary)
from helpers.core.fmt import fmt_money
from helpers.canonical.transactions import purchases
from helpers.core.threads import by_size

#: Fader, Hardie & Lee (2005), Table 1 and text: BG/NBD on the CDNOW 1/10 sample, 39-week calibration period.
CDNOW_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}
CDNOW_CALIBRATION_END = pd.Timestamp("1997-09-30")
CDNOW_OBSERVATION_END = pd.Timestamp("1998-06-30")


@dataclass
class CLVData:
    """A transaction log (``customer``, ``date``, ``value``) with its calibration/holdout split."""

    name: str
    transactions: pd.DataFrame
    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp
    unit: str  # "D" or "W"
    workbench: bool = False  # the workbench's own cleaned orders (customer keys, personas available)
    currency: str = ""

    @property
    def unit_name(self) -> str:
        return "days" if self.unit == "D" else "weeks"

    @property
    def unit_days(self) -> float:
        return 1.0 if self.unit == "D" else 7.0


def load_cdnow(path: str | Path) -> CLVData:
    """The CDNOW 1/10 sample (Fader & Hardie): customer id, date, number of CDs, dollar value."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: the CDNOW sample is missing; it ships in data/raw/cdnow/")
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=["master_id", "id", "date", "cds", "dollars"],
                      dtype={"date": str, "id": str})
    tx = pd.DataFrame({"customer": raw["id"], "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
                       "value": raw["dollars"].astype(float)})
    return CLVData("CDNOW sample", tx, CDNOW_CALIBRATION_END, CDNOW_OBSERVATION_END, "W", currency="USD")


def from_orders(orders: pd.DataFrame, window_end: pd.Timestamp, holdout_days: int, name: str = "workbench orders",
                currency: str = "") -> CLVData:
    """The workbench's purchases (net of refunds, in the reporting currency) as a transaction log, split
    ``holdout_days`` before the end of the window."""
    done = purchases(orders)
    tx = pd.DataFrame({"customer": done["customer_key"].astype(str), "date": done["order_date"],
                       "value": done["net"].astype(float)})
    end = pd.Timestamp(window_end).normalize()
    return CLVData(name, tx.reset_index(drop=True), end - pd.Timedelta(days=holdout_days), end, "D", True, currency)


def calibration_holdout(data: CLVData) -> pd.DataFrame:
    """Calibration summary (``frequency``, ``recency``, ``T``, ``monetary_value``) of customers whose first
    purchase falls in the calibration period, plus their holdout purchases (distinct purchase days),
    holdout value and the holdout duration."""
    tx = data.transactions
    cal = rfm_summary(tx, "customer", "date", "value", data.calibration_end, unit=data.unit)
    later = tx[(tx["date"].dt.normalize() > data.calibration_end.normalize())
               & (tx["date"].dt.normalize() <= data.observation_end.normalize())]
    later = later[later["customer"].isin(cal.index)]
    days = later.assign(day=later["date"].dt.normalize()).groupby(["customer", "day"])["value"].sum().reset_index()
    g = days.groupby("customer")
    cal["frequency_holdout"] = g.size().reindex(cal.index).fillna(0).astype(int)
    cal["value_holdout"] = g["value"].sum().reindex(cal.index).fillna(0.0)
    cal["duration_holdout"] = (data.observation_end.normalize() - data.calibration_end.normalize()).days / \
        data.unit_days
    return cal


def fit_models(summary: pd.DataFrame, dropout: bool | None = None, model_name: str | None = None
               ) -> tuple[BetaGeoFitter, GammaGammaFitter]:
    """The purchase model and Gamma-Gamma on repeat customers' mean spend. The purchase model is ``model_name``
    (one of :data:`clv_models.CONTINUOUS_MODELS`) when given; otherwise BG/NBD, or the no-dropout NBD when
    ``dropout`` is False (or None and :func:`~helpers.analysis.clv.dropout_test` finds no dropout)."""
    from helpers.analysis.clv_models import CONTINUOUS_MODELS, _model_class

    x, tx, T = summary["frequency"], summary["recency"], summary["T"]
    if model_name is None:
        bg = BetaGeoFitter().fit(x, tx, T)
        if dropout is None:
            dropout = dropout_test(summary, bg)["identified"]
        model = bg if dropout else NBDFitter().fit(x, tx, T)
        model.label_ = "BG/NBD" if dropout else "NBD (no dropout)"
    else:
        model = _model_class(CONTINUOUS_MODELS[model_name])().fit(x, tx, T)
        model.label_ = model_name
    gg = GammaGammaFitter().fit(summary["frequency"], summary["monetary_value"].clip(lower=0))
    return model, gg


def select_model(ch: pd.DataFrame, dropout_identified: bool) -> tuple[str, str, pd.DataFrame]:
    """Compare BG/NBD, MBG/NBD, Pareto/NBD and the no-dropout NBD on the calibration period, each checked on the
    holdout, and choose one by the rule of :func:`clv_models.choose_model`: (name, sentence, comparison)."""
    from helpers.analysis.clv_models import choose_model, compare_models

    table = compare_models(ch, ch["frequency_holdout"], float(ch["duration_holdout"].iloc[0]))
    name, sentence = choose_model(table, dropout_identified)
    return name, sentence, table


def comparison_display(table: pd.DataFrame, chosen: str) -> pd.DataFrame:
    """The model comparison as the report shows it."""
    out = table.copy()
    out.insert(0, "used", np.where(out["model"] == chosen, "✓", ""))
    cols = {"log_likelihood": "log-likelihood", "bic": "BIC", "holdout_total_error_pct": "holdout total error (%)",
            "holdout_mae": "holdout error per customer"}
    return out.rename(columns=cols)[["used", "model", "parameters", *cols.values(), "note"]]


def parameter_table(bg: BetaGeoFitter, gg: GammaGammaFitter, published: dict | None = None) -> pd.DataFrame:
    """Fitted parameters with standard errors (and published values when given)."""
    name = getattr(bg, "label_", "NBD (no dropout)" if isinstance(bg, NBDFitter) else "BG/NBD")
    rows = [{"model": name, "parameter": k, "estimate": v, "std_error": bg.standard_errors_[k]}
            for k, v in bg.params_.items()]
    rows.append({"model": name, "parameter": "log-likelihood", "estimate": bg.log_likelihood_,
                 "std_error": np.nan})
    rows += [{"model": "Gamma-Gamma", "parameter": {"v": "γ"}.get(k, k), "estimate": v,
              "std_error": gg.standard_errors_[k]} for k, v in gg.params_.items()]
    rows.append({"model": "Gamma-Gamma", "parameter": "log-likelihood", "estimate": gg.log_likelihood_,
                 "std_error": np.nan})
    out = pd.DataFrame(rows)
    if published:
        key = {"log-likelihood": "log_likelihood"}
        out["published"] = [published.get(key.get(p, p)) if m == "BG/NBD" else np.nan
                            for m, p in zip(out["model"], out["parameter"])]
    out["parameter"] = out["parameter"].replace({"alpha": "α"})
    return out


def holdout_by_frequency(ch: pd.DataFrame, bg: BetaGeoFitter, cap: int = 7) -> pd.DataFrame:
    """Mean actual vs predicted holdout purchases by calibration frequency (the paper's Figure 4)."""
    out = holdout_by_frequency_models(ch, {"predicted": bg}, cap)
    return out[["calibration_repeats", "customers", "actual", "predicted"]]


def holdout_by_frequency_models(ch: pd.DataFrame, models: dict, cap: int = 7) -> pd.DataFrame:
    """Mean holdout purchases by calibration frequency: actual, and one column per fitted model (``models``: name →
    fitted model), so each candidate is judged where it errs, not only in total."""
    duration = ch["duration_holdout"].iloc[0]
    t = pd.DataFrame({"bucket": ch["frequency"].clip(upper=cap).astype(int).to_numpy(),
                      "actual": ch["frequency_holdout"].to_numpy()})
    for name, model in models.items():
        t[name] = np.asarray(model.conditional_expected_purchases(duration, ch["frequency"], ch["recency"], ch["T"]))
    g = t.groupby("bucket")
    out = g[["actual", *models]].mean()
    out.insert(0, "customers", g.size())
    out.insert(0, "calibration_repeats", [f"{b}+" if b == cap else str(b) for b in out.index])
    return out.reset_index(drop=True)


def holdout_by_frequency_display(table: pd.DataFrame) -> pd.DataFrame:
    """The per-model table as a reader reads it, with each model's customer-weighted mean absolute error per
    group as the last row."""
    models = [c for c in table.columns if c not in ("calibration_repeats", "customers", "actual")]
    w = table["customers"] / table["customers"].sum()
    error = {m: float((w * (table[m] - table["actual"]).abs()).sum()) for m in models}
    out = table.copy()
    out.loc[len(out)] = {"calibration_repeats": "weighted mean |error|", "customers": table["customers"].sum(),
                         "actual": np.nan, **error}
    return out.rename(columns={"calibration_repeats": "repeat purchases (calibration)",
                               "actual": "actual (holdout mean)"})


def p_alive_story(res: "CLVResult", future_days: int = 180) -> tuple[pd.DataFrame, str, pd.Timestamp] | None:
    """P(alive) history of one pseudonymised customer, from the first purchase to ``future_days`` after the
    window: the most valuable repeat customer (three orders or more) whose P(alive) is now between 20% and 60%
    (in doubt: the case a retention team acts on), else the most valuable repeat customer. Returns (history with
    dates, pseudonymous id, first purchase date), or None without dropout."""
    from helpers.analysis.clv_models import p_alive_history

    if not res.identified:
        return None
    f = res.frame.dropna(subset=["p_alive"])
    f = f[res.full["frequency"].reindex(f.index) >= 2]
    if f.empty:
        return None
    in_doubt = f[f["p_alive"].between(0.2, 0.6)]
    key = (in_doubt if len(in_doubt) else f)["historical_value"].idxmax()
    tx = res.data.transactions
    days = tx.loc[tx["customer"] == key, "date"].dt.normalize().drop_duplicates().sort_values()
    first = days.iloc[0]
    unit = res.data.unit_days
    times = (days - first).dt.days.to_numpy() / unit
    until = ((res.data.observation_end.normalize() - first).days + future_days) / unit
    hist = p_alive_history(res.model, times, until)
    hist["date"] = first + pd.to_timedelta(hist["time"] * unit, unit="D")
    hist.attrs["purchases"] = days.tolist()
    return hist, str(res.frame.loc[key, "customer_id"]), first


def plot_p_alive_history(hist: pd.DataFrame, customer: str, today: pd.Timestamp):
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label

    fig, ax = plt.subplots(figsize=(8, 3.6))
    past = hist["date"] <= today
    ax.plot(hist.loc[past, "date"], hist.loc[past, "p_alive"], color=PALETTE[0], label="P(alive), known history")
    ax.plot(hist.loc[~past, "date"], hist.loc[~past, "p_alive"], color=PALETTE[0], ls="--",
            label="if no further order")
    for i, day in enumerate(hist.attrs.get("purchases", [])):
        ax.axvline(day, color=PALETTE[1], lw=0.8, alpha=0.8, label="order" if i == 0 else None)
    ax.axvline(today, color="0.3", lw=1, ls=":", label="end of data")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.legend(loc="lower left", fontsize=9)
    label(ax, f"P(alive) over time for customer {customer}", "Date", "P(alive) (%)")
    return fig


def p_alive_history_caption(hist: pd.DataFrame, today: pd.Timestamp) -> str:
    now = float(hist.loc[hist["date"] <= today, "p_alive"].iloc[-1])
    later = float(hist["p_alive"].iloc[-1])
    return (f"Each order lifts this customer's P(alive) back up and every quiet week lowers it; today it is "
            f"{now:.0%}, and without another order it would be {later:.0%} by {hist['date'].iloc[-1]:%d %b %Y}.")


def plot_frequency_recency(matrix: pd.DataFrame, title: str, cbar: str, unit_name: str, percent: bool):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import SEQUENTIAL, label

    fig, ax = plt.subplots(figsize=(8, 4.2))
    im = ax.imshow(matrix.to_numpy(), origin="lower", aspect="auto", cmap=SEQUENTIAL,
                   extent=[matrix.columns[0], matrix.columns[-1], -0.5, matrix.index[-1] + 0.5])
    bar = fig.colorbar(im, ax=ax)
    bar.set_label(cbar)
    if percent:
        bar.formatter = plt.FuncFormatter(lambda v, _: f"{v:.0%}")
        bar.update_ticks()
    label(ax, title, f"Recency: time from first to last purchase ({unit_name})", "Repeat purchases (frequency)")
    return fig


def frequency_recency_matrices(res: "CLVResult", forecast_days: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Expected purchases in the forecast window and (with dropout) P(alive) over the frequency/recency grid of a
    customer observed for the longest T in the data."""
    from helpers.analysis.clv_models import frequency_recency_matrix

    T = float(res.full["T"].max())
    expected = frequency_recency_matrix(res.model, T, forecast_days / res.data.unit_days)
    alive = frequency_recency_matrix(res.model, T, None, max_frequency=expected.index[-1]) if res.identified else None
    return expected, alive


def frequency_recency_caption(expected: pd.DataFrame, alive: pd.DataFrame | None) -> str:
    top = expected.iloc[-1, -1]
    text = (f"Customers who bought often and recently (top right) are expected to buy most — up to {top:.1f} orders "
            "in the forecast window")
    if alive is not None:
        text += ("; frequent buyers who then went quiet (top left) are the ones the model thinks most likely gone, "
                 f"with P(alive) down to {alive.iloc[-1, 0]:.0%}")
    return text + "."


def cumulative_tracking(data: CLVData, ch: pd.DataFrame, bg: BetaGeoFitter, points: int = 80) -> pd.DataFrame:
    """Cumulative repeat transactions of the calibration cohort over calendar time: actual vs model."""
    tx = data.transactions[data.transactions["customer"].isin(ch.index)]
    days = tx.assign(day=tx["date"].dt.normalize())[["customer", "day"]].drop_duplicates()
    first = days.groupby("customer")["day"].min()
    repeat_days = days[days["day"] > days["customer"].map(first)]
    start = first.min()
    grid = pd.date_range(start, data.observation_end.normalize(), periods=points)
    actual = np.searchsorted(np.sort(repeat_days["day"].to_numpy()), grid.to_numpy(), side="right")
    first_units = ((first - start).dt.days / data.unit_days).to_numpy()
    predicted = []
    for g in grid:
        t = np.clip((g - start).days / data.unit_days - first_units, 0, None)
        predicted.append(float(np.sum(bg.expected_purchases_since_first(t))))
    return pd.DataFrame({"date": grid, "actual": actual.astype(float), "predicted": predicted})


def tracking_errors(track: pd.DataFrame, calibration_end: pd.Timestamp) -> dict[str, float]:
    """Relative error (%) of the predicted cumulative repeat transactions at the end of calibration and holdout."""
    cal = track[track["date"] <= calibration_end].iloc[-1]
    end = track.iloc[-1]
    hold_actual = end["actual"] - cal["actual"]
    hold_pred = end["predicted"] - cal["predicted"]
    return {"calibration_pct": 100 * (cal["predicted"] / cal["actual"] - 1),
            "holdout_pct": 100 * (hold_pred / hold_actual - 1) if hold_actual else float("nan")}


def normalized_gini(actual, predicted) -> float:
    """Gini of ``actual`` ordered by ``predicted``, divided by the Gini of the perfect order (1 = perfect ranking,
    0 = random).

    >>> normalized_gini([0, 0, 1, 5], [0.1, 0.2, 0.3, 0.9])
    1.0
    """
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)

    def gini(order_by):
        order = np.lexsort((np.arange(len(actual)), -order_by))
        cum = np.cumsum(actual[order]) / actual.sum()
        return float(np.sum(cum - np.arange(1, len(actual) + 1) / len(actual)) / len(actual))

    return gini(predicted) / gini(actual)


def decile_table(actual, predicted) -> pd.DataFrame:
    """Customers in deciles of ``predicted`` (10 = highest): share of the actual total and mean actual vs predicted."""
    df = pd.DataFrame({"actual": np.asarray(actual, dtype=float), "predicted": np.asarray(predicted, dtype=float)})
    df["decile"] = 10 - pd.qcut(df["predicted"].rank(method="first", ascending=False), 10, labels=False)
    out = df.groupby("decile").agg(customers=("actual", "size"), mean_predicted=("predicted", "mean"),
                                   mean_actual=("actual", "mean"), total_actual=("actual", "sum")).reset_index()
    out["share_of_actual"] = out["total_actual"] / out["total_actual"].sum()
    return out.drop(columns="total_actual")


def predict_customers(summary: pd.DataFrame, bg: BetaGeoFitter, gg: GammaGammaFitter, as_of: pd.Timestamp,
                      unit_days: float, forecast_days: int, horizon_days: int, annual_discount_rate: float,
                      profit_margin: float, step_days: int = 30) -> pd.DataFrame:
    """Per customer: expected purchases in the next ``forecast_days``, P(alive), expected next order date,
    expected spend per order and discounted CLV over ``horizon_days``.

    CLV = margin × expected spend per order × Σ_k (expected purchases in step k) / (1 + rate)^(k·step/365),
    with monthly steps, so purchases later in the horizon count less.
    """
    x, tx, T = summary["frequency"], summary["recency"], summary["T"]
    out = pd.DataFrame(index=summary.index)
    out["p_alive"] = bg.p_alive(x, tx, T)
    out["expected_purchases"] = bg.conditional_expected_purchases(forecast_days / unit_days, x, tx, T)
    wait = bg.median_time_to_next_purchase(x, tx, T) * unit_days
    out["next_order_date"] = (pd.Timestamp(as_of).normalize() + pd.to_timedelta(np.round(wait), unit="D"))
    out["expected_spend_per_order"] = gg.conditional_expected_average_profit(x, summary["monetary_value"])
    steps, per_step = _purchases_per_step(bg, summary, unit_days, horizon_days, step_days)
    out["expected_purchases_horizon"] = per_step.sum(axis=1)
    out["clv"] = profit_margin * out["expected_spend_per_order"].to_numpy() * (per_step @ _discount(steps,
                                                                                                    annual_discount_rate))
    return out


def _purchases_per_step(bg: BetaGeoFitter, summary: pd.DataFrame, unit_days: float, horizon_days: int,
                        step_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Step ends in days (the last one cut at the horizon) and expected purchases in each step, per customer."""
    x, tx, T = summary["frequency"], summary["recency"], summary["T"]
    steps = np.arange(step_days, horizon_days + step_days, step_days)
    steps[-1] = min(steps[-1], horizon_days)
    cum = np.column_stack([bg.conditional_expected_purchases(s / unit_days, x, tx, T) for s in steps])
    return steps, np.diff(np.column_stack([np.zeros(len(x)), cum]), axis=1)


def _discount(steps: np.ndarray, annual_rate: float) -> np.ndarray:
    return (1 + annual_rate) ** (-(steps / 365.0))


def clv_scenarios(summary: pd.DataFrame, bg: BetaGeoFitter, gg: GammaGammaFitter, unit_days: float,
                  horizons_days: list[int], annual_rates: list[float], step_days: int = 30) -> pd.DataFrame:
    """Revenue CLV (margin 1) per customer for every horizon × annual discount rate, computed as in
    :func:`predict_customers`. Columns are a MultiIndex ``(horizon_days, annual_rate)``."""
    spend = np.asarray(gg.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"]))
    cols = {}
    for h in horizons_days:
        steps, per_step = _purchases_per_step(bg, summary, unit_days, h, step_days)
        for r in annual_rates:
            cols[(h, r)] = spend * (per_step @ _discount(steps, r))
    out = pd.DataFrame(cols, index=summary.index)
    out.columns.names = ["horizon_days", "annual_rate"]
    return out


def what_if_explorer(scenarios: pd.DataFrame, groups: pd.Series | None, margins: list[float], currency: str,
                     start: tuple[int, float, float] | None = None):
    """Sliders for horizon, discount rate and margin showing the customer base's value and, when ``groups`` (e.g.
    personas per customer) is given, its split by group. Every answer is precomputed (see helpers.widgets).
    ``start`` = (horizon days, rate, margin) the sliders open at: the report's own assumptions."""
    from helpers.core.widgets import what_if

    horizons = sorted(scenarios.columns.get_level_values(0).unique())
    rates = sorted(scenarios.columns.get_level_values(1).unique())
    labels = {"h": {f"{h // 30} months" if h % 365 else f"{h // 365} year{'s' if h > 365 else ''}": h
                    for h in horizons},
              "r": {f"{r:.0%}": r for r in rates}, "m": {f"{m:.0%}": m for m in margins}}

    def render(choice: tuple[str, str, str]) -> str:
        h, r, m = labels["h"][choice[0]], labels["r"][choice[1]], labels["m"][choice[2]]
        value = scenarios[(h, r)] * m
        text = (f"<p>Over the next <strong>{choice[0]}</strong>, discounting at <strong>{choice[1]}</strong> a year "
                f"and counting <strong>{choice[2]}</strong> of revenue as profit, today's customers are worth "
                f"<strong>{html.escape(fmt_money(value.sum(), currency))}</strong> "
                f"({html.escape(fmt_money(value.mean(), currency))} per customer).</p>")
        if groups is None:
            return text
        by = value.groupby(groups.reindex(value.index)).agg(["size", "sum", "mean"]).sort_values("sum",
                                                                                                   ascending=False)
        rows = "".join(f"<tr><td>{html.escape(str(g))}</td><td>{int(n):,}</td>"
                       f"<td>{html.escape(fmt_money(total, currency))}</td>"
                       f"<td>{html.escape(fmt_money(mean, currency))}</td><td>{total / value.sum():.0%}</td></tr>"
                       for g, (n, total, mean) in by.iterrows())
        return (text + f'<table class="wb-table"><tr><th>{html.escape(str(groups.name or "group"))}</th>'
                f"<th>customers</th><th>value</th><th>per customer</th><th>share</th></tr>{rows}</table>")

    opening = None
    if start:
        inverse = [{v: k for k, v in labels[c].items()} for c in ("h", "r", "m")]
        opening = [inv.get(v) for inv, v in zip(inverse, start)]
    return what_if([("Horizon", list(labels["h"])), ("Discount rate", list(labels["r"])),
                    ("Profit margin", list(labels["m"]))], render, kind="slider", start=opening)


def cohort_matrices(data: CLVData, max_periods: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly acquisition cohorts: share of the cohort buying in each month since the first purchase, and
    cumulative value per cohort customer."""
    from helpers.canonical import summaries as SQ

    counts = SQ.run_summary(data.transactions, ["customer", "date", "value"], lambda d, source: SQ.cohort_sql(
        d, source, "customer", "date", "value", max_periods))
    active = counts.pivot(index="cohort", columns="period", values="active").fillna(0)
    spent = counts.pivot(index="cohort", columns="period", values="value").fillna(0.0)
    if active.empty:
        return active, spent
    size = active[0]  # everyone buys in their cohort's own month
    retention = active.div(size, axis=0)
    value = spent.cumsum(axis=1).div(size, axis=0)
    # Cells a cohort cannot have reached yet stay empty.
    end = pd.Timestamp(data.observation_end)
    too_late = (retention.index.to_numpy()[:, None] + retention.columns.to_numpy()[None, :]) > end.year * 12 + \
        end.month - 1
    retention, value = retention.mask(too_late), value.mask(too_late)
    labels = [f"{c // 12:04d}-{c % 12 + 1:02d}" for c in retention.index]
    retention.index = value.index = pd.Index(labels, name="cohort")
    return retention, value


def churn_comparison(flags: pd.DataFrame) -> pd.DataFrame:
    """Pairwise agreement (share of customers classified alike) and Cohen's kappa between churn definitions."""
    from sklearn.metrics import cohen_kappa_score

    rows = []
    cols = list(flags.columns)
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            rows.append({"definition A": a, "definition B": b, "agreement": float((flags[a] == flags[b]).mean()),
                         "kappa": float(cohen_kappa_score(flags[a], flags[b])),
                         "A only": int((flags[a] & ~flags[b]).sum()), "B only": int((~flags[a] & flags[b]).sum())})
    return pd.DataFrame(rows)


def churn_sentence(flags: pd.DataFrame, table: pd.DataFrame) -> str:
    shares = flags.mean()
    worst = table.sort_values("agreement").iloc[0]
    return (f"The definitions call {', '.join(f'{v:.0%} ({k})' for k, v in shares.items())} of buyers churned. "
            f"They disagree most between '{worst['definition A']}' and '{worst['definition B']}' "
            f"({worst['agreement']:.0%} agreement): {worst['A only']:,} customers are churned only by the first and "
            f"{worst['B only']:,} only by the second. P(alive) adapts to each customer's own buying rhythm — a "
            "frequent buyer silent for two months is likely gone, an occasional one is not — which a fixed "
            "inactivity threshold cannot do.")


def recovered_vs_true(full: pd.DataFrame, planted: pd.Series, truth_segments: dict) -> pd.DataFrame:
    """BG/NBD fitted separately to each planted segment's customers (``full``: the whole-period summary), next to
    the generator's parameters."""
    rows = []
    seg = planted.reindex(full.index)
    for name, spec in truth_segments.items():
        part = full[seg == name]
        if (part["frequency"] > 0).sum() < 20:
            continue
        m = BetaGeoFitter().fit(part["frequency"], part["recency"], part["T"])
        for p in BetaGeoFitter.names:
            est, se, true = m.params_[p], m.standard_errors_[p], float(spec[p])
            rows.append({"segment": name, "customers": len(part), "parameter": p, "true": true, "estimate": est,
                         "std_error": se, "z": (est - true) / se if se > 0 else np.nan,
                         "relative_error": est / true - 1})
        e, t = m.params_, {k: float(spec[k]) for k in BetaGeoFitter.names}
        for label, f in [("mean rate r/α", lambda q: q["r"] / q["alpha"]),
                         ("mean dropout a/(a+b)", lambda q: q["a"] / (q["a"] + q["b"]))]:
            rows.append({"segment": name, "customers": len(part), "parameter": label, "true": f(t),
                         "estimate": f(e), "std_error": np.nan, "z": np.nan, "relative_error": f(e) / f(t) - 1})
    return pd.DataFrame(rows)


def recovery_sentence(table: pd.DataFrame) -> str:
    """Plain-language summary of :func:`recovered_vs_true`."""
    derived = table[table["parameter"].str.startswith("mean")]
    rate = derived[derived["parameter"].str.contains("rate")]["relative_error"].abs().max()
    drop = derived[derived["parameter"].str.contains("dropout")]["relative_error"].abs().max()
    return (f"Per planted segment, the mean purchase rate is recovered within {rate:.0%} and the mean dropout "
            f"probability within {drop:.0%}. a and b individually are only weakly identified from two years of "
            "history (the likelihood has a long ridge along which their ratio is fixed), so their separate "
            "estimates and Hessian standard errors can be far off; compare the means, which drive the predictions.")


# ---------------------------------------------------------------------------
# Charts and captions
# ---------------------------------------------------------------------------


def plot_holdout_by_frequency(table: pd.DataFrame, unit_name: str, holdout: float):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(table))
    ax.plot(x, table["actual"], marker="o", color=PALETTE[0], label="actual")
    ax.plot(x, table["predicted"], marker="s", ls="--", color=PALETTE[1], label="BG/NBD prediction")
    ax.set_xticks(x, table["calibration_repeats"])
    ax.legend()
    label(ax, f"Holdout purchases by calibration behaviour ({holdout:.0f} {unit_name} holdout)",
          "Repeat purchases in the calibration period", "Mean purchases in the holdout period")
    return fig


def holdout_caption(table: pd.DataFrame) -> str:
    err = (table["predicted"] - table["actual"]).abs() / table["actual"].replace(0, np.nan)
    w = table["customers"] / table["customers"].sum()
    return (f"Predicted and actual holdout purchases follow each other across calibration frequencies: the "
            f"customer-weighted mean absolute error is {float((err * w).sum() / w[err.notna()].sum()):.0%} "
            f"of the actual per group.")


def plot_tracking(track: pd.DataFrame, calibration_end: pd.Timestamp, errors: dict):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, thousands

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(track["date"], track["actual"], color=PALETTE[0], lw=2, label="actual")
    ax.plot(track["date"], track["predicted"], color=PALETTE[1], lw=2, ls="--", label="BG/NBD")
    ax.axvline(calibration_end, color="grey", ls=":")
    ax.text(calibration_end, ax.get_ylim()[1] * 0.05, " end of calibration", fontsize=10)
    thousands(ax)
    ax.legend(loc="upper left")
    label(ax, f"Cumulative repeat transactions (error: calibration {errors['calibration_pct']:+.1f}%, holdout "
              f"{errors['holdout_pct']:+.1f}%)", "Date", "Repeat transactions (cumulative)")
    return fig


def tracking_caption(errors: dict) -> str:
    return (f"The model tracks the cohort's repeat purchases over time; at the end of calibration it is off by "
            f"{errors['calibration_pct']:+.1f}%, and over the holdout period it predicts "
            f"{errors['holdout_pct']:+.1f}% of what actually happened.")


def plot_deciles(table: pd.DataFrame, what: str):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, percent

    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(table["decile"].astype(str), table["share_of_actual"], color=PALETTE[0])
    ax.axhline(0.1, color="grey", ls="--")
    ax.text(0, 0.105, " random ranking", fontsize=10)
    percent(ax)
    label(ax, f"Share of actual {what} by decile of predicted value", "Decile of predicted value (10 = top)",
          f"Share of all actual {what} (%)")
    return fig


def decile_caption(table: pd.DataFrame, gini: float, what: str) -> str:
    top = table.set_index("decile")["share_of_actual"]
    return (f"The 10% of customers the model ranks highest brought {top.get(10, 0):.0%} of the actual {what} "
            f"in the holdout period, the bottom half {top.reindex(range(1, 6)).sum():.0%}; normalised Gini "
            f"{gini:.2f} (1 = perfect ranking, 0 = random).")


def plot_cohorts(matrix: pd.DataFrame, title: str, fmt: str, cbar: str):
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(10, 0.32 * len(matrix) + 2))
    sns.heatmap(matrix, annot=True, fmt=fmt, cmap="Blues", ax=ax, cbar_kws={"label": cbar},
                annot_kws={"fontsize": 8})
    ax.set_title(title)
    ax.set_xlabel("Months since first purchase")
    ax.set_ylabel("Cohort (month of first purchase)")
    return fig


def plot_clv_by(table: pd.DataFrame, by: str, currency: str = ""):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label

    t = table.sort_values("mean_clv")
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(t) + 1.6))
    ax.barh(t[by].astype(str), t["mean_clv"], color=PALETTE[0], label="predicted CLV")
    ax.scatter(t["mean_historical"], t[by].astype(str), color=PALETTE[1], zorder=3, label="historical value")
    ax.legend(loc="lower right")
    label(ax, f"Customer value by {by.replace('_', ' ')}", f"{currency} per customer".strip(), "")
    return fig


def clv_by(pred: pd.DataFrame, by: str, draws: np.ndarray | None = None) -> pd.DataFrame:
    """Customers, mean and total predicted CLV, mean historical value and P(alive) per group in column ``by``;
    with the bootstrap ``draws`` (draws × customers, rows of ``pred``), the 90% interval of each group's total."""
    g = pred.dropna(subset=[by]).groupby(by)
    out = pd.DataFrame({"customers": g.size(), "mean_clv": g["clv"].mean(), "total_clv": g["clv"].sum(),
                        "mean_historical": g["historical_value"].mean(), "mean_p_alive": g["p_alive"].mean()})
    out["clv_share"] = out["total_clv"] / out["total_clv"].sum()
    if draws is not None:
        bands = {k: total_interval(draws, (pred[by] == k).to_numpy()) for k in out.index}
        out["total_low"] = [bands[k][0] for k in out.index]
        out["total_high"] = [bands[k][1] for k in out.index]
    return out.sort_values("mean_clv", ascending=False).reset_index()


DATASETS = ("orders", "cdnow")


def load_data(dataset: str, processed_dir: Path, window_end: str, holdout_days: int, cdnow_file: Path,
              name: str = "workbench orders", currency: str = "") -> CLVData:
    """The transaction log to model: ``"orders"`` (the workbench's cleaned orders, whatever the data set) or
    ``"cdnow"`` (the CDNOW sample, to compare with the published estimates)."""
    if dataset == "cdnow":
        return load_cdnow(cdnow_file)
    if dataset == "orders":
        from helpers.core.tables import load_table

        orders = load_table(Path(processed_dir) / "clean" / "orders.parquet", "02_cleaning")
        return from_orders(orders, pd.Timestamp(window_end), holdout_days, name, currency)
    raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")


def clv_uncertainty(summary: pd.DataFrame, model, gg: GammaGammaFitter, as_of: pd.Timestamp, unit_days: float,
                    forecast_days: int, horizon_days: int, annual_discount_rate: float, profit_margin: float,
                    n_draws: int = 100, level: float = 0.90, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Parametric bootstrap of every prediction: ``n_draws`` parameter sets of the purchase model and of
    Gamma-Gamma from their fits' covariance (:func:`clv_models.parameter_draws`), each giving every customer's
    CLV, expected purchases, P(alive) and expected next order date. Returns per-customer ``level`` intervals and
    the draws of CLV (draws × customers) for totals over any group."""
    from helpers.analysis.clv_models import parameter_draws, with_params

    draws_m = parameter_draws(model, n_draws, seed)
    draws_g = parameter_draws(gg, n_draws, seed + 1)
    clv = np.empty((n_draws, len(summary)))
    purchases = np.empty_like(clv)
    alive = np.empty_like(clv)
    wait = np.empty_like(clv)
    start = pd.Timestamp(as_of).normalize()
    for i in range(n_draws):
        m, g = with_params(model, draws_m[i]), with_params(gg, draws_g[i])
        p = predict_customers(summary, m, g, as_of, unit_days, forecast_days, horizon_days, annual_discount_rate,
                              profit_margin)
        clv[i], purchases[i], alive[i] = p["clv"], p["expected_purchases"], p["p_alive"]
        wait[i] = (p["next_order_date"] - start).dt.days.to_numpy()
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    out = pd.DataFrame(index=summary.index)
    for name, values in (("clv", clv), ("expected_purchases", purchases), ("p_alive", alive)):
        out[f"{name}_low"] = np.quantile(values, lo, axis=0)
        out[f"{name}_high"] = np.quantile(values, hi, axis=0)
    # the expected next order date's interval, from the same draws (whole days after the window)
    for name, q in (("next_order_date_low", lo), ("next_order_date_high", hi)):
        out[name] = start + pd.to_timedelta(np.round(np.quantile(wait, q, axis=0)), unit="D")
    return out, clv


def total_interval(clv_draws: np.ndarray, mask: np.ndarray | None = None, level: float = 0.90) -> tuple[float, float]:
    """The ``level`` interval of the total predicted CLV of the customers in ``mask`` (all by default)."""
    totals = clv_draws[:, mask].sum(axis=1) if mask is not None else clv_draws.sum(axis=1)
    return float(np.quantile(totals, (1 - level) / 2)), float(np.quantile(totals, 1 - (1 - level) / 2))


def customer_frame(pred: pd.DataFrame, data: CLVData, processed_dir: Path) -> pd.DataFrame:
    """Predictions with historical value and, for the workbench's data, the pseudonymous id and the segments
    from step 03 (when it has run). Customer ids of other data sets are shown as they are."""
    out = pred.copy()
    out["historical_value"] = data.transactions.groupby("customer")["value"].sum().reindex(out.index)
    out["customer_id"] = out.index.astype(str)
    c360 = Path(processed_dir) / "customer_360.parquet"
    if data.workbench and c360.exists():
        ids = pd.read_parquet(c360, columns=["customer_key", "customer_pseudo_id"]).set_index("customer_key")
        out["customer_id"] = ids["customer_pseudo_id"].reindex(out.index).to_numpy()
        seg_path = Path(processed_dir) / "segments.parquet"
        if seg_path.exists():
            seg = pd.read_parquet(seg_path).set_index("customer_key")
            for col in ["persona", "rfm_segment", "lifecycle_stage"]:
                out[col] = seg[col].reindex(out.index).to_numpy()
    return out


def top_customers(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` customers with the highest predicted CLV, by pseudonymous id only."""
    cols = ["customer_id", "clv", "historical_value", "p_alive", "expected_purchases", "next_order_date"]
    cols += [c for c in ["next_order_date_low", "next_order_date_high"] if c in frame]
    cols += [c for c in ["p_buy_within_30d"] if c in frame]
    cols += [c for c in ["persona"] if c in frame]
    return frame.sort_values("clv", ascending=False).head(n)[cols].reset_index(drop=True)


def top_display(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The top-customers table as a reader reads it: plain headers, money in the reporting currency, chances in %."""
    out = table.copy()
    for col in ("clv", "historical_value"):
        if col in out:
            out[col] = out[col].map(lambda v: fmt_money(v, currency))
    for col in ("p_alive", "p_buy_within_30d"):
        if col in out:
            out[col] = out[col].map(lambda v: "–" if pd.isna(v) else f"{v:.0%}")
    if "expected_purchases" in out:
        out["expected_purchases"] = out["expected_purchases"].map(lambda v: f"{v:.1f}")
    if "next_order_date_low" in out:
        out["next_order_date"] = [f"{d:%Y-%m-%d} ({lo:%d %b} – {hi:%d %b})" for d, lo, hi in
                                  zip(out["next_order_date"], out.pop("next_order_date_low"),
                                      out.pop("next_order_date_high"))]
    return out.rename(columns={"customer_id": "customer", "clv": "predicted CLV", "historical_value": "value to date",
                               "p_alive": "P(alive)", "expected_purchases": "orders expected (forecast window)",
                               "next_order_date": "expected next order (90% interval)",
                               "p_buy_within_30d": "chance of an order within 30 days"})


def churn_flags(frame: pd.DataFrame, full_summary: pd.DataFrame, churn_days: int | None, unit_days: float
                ) -> pd.DataFrame | None:
    """Churned yes/no per repeat-capable buyer under three definitions; ``None`` without step 03's segments."""
    if "rfm_segment" not in frame or churn_days is None:
        return None
    silent_days = (full_summary["T"] - full_summary["recency"]) * unit_days
    return pd.DataFrame({
        f"no order for > {churn_days} days": silent_days.reindex(frame.index) > churn_days,
        "RFM Lost/Hibernating": frame["rfm_segment"].isin(["Lost", "Hibernating"]),
        "P(alive) < 0.5": frame["p_alive"] < 0.5,
    })


def plot_clv_distribution(frame: pd.DataFrame, currency: str):
    import matplotlib.pyplot as plt

    from helpers.core.plotting import PALETTE, label, percent

    v = np.sort(frame["clv"].to_numpy())[::-1]
    share = np.cumsum(v) / v.sum()
    pop = np.arange(1, len(v) + 1) / len(v)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(pop, share, color=PALETTE[0], lw=2)
    ax.plot([0, 1], [0, 1], color="grey", ls="--")
    percent(ax, "x")
    percent(ax)
    label(ax, "How concentrated is future value?", "Customers, ranked by predicted CLV (%)",
          f"Share of total predicted CLV ({currency}) (%)")
    return fig


def clv_distribution(clv: pd.Series) -> dict[str, float]:
    """Total, mean, median, 90th/99th percentile of predicted CLV and the share the top 20% of customers hold.

    >>> clv_distribution(pd.Series([0.0, 0, 0, 0, 10]))["top20_share"]
    1.0
    """
    v = np.sort(clv.to_numpy(dtype=float))[::-1]
    return {"total": float(v.sum()), "mean": float(v.mean()), "median": float(np.median(v)),
            "p90": float(np.quantile(v, 0.9)), "p99": float(np.quantile(v, 0.99)),
            "top20_share": float(v[: max(1, len(v) // 5)].sum() / v.sum()) if v.sum() else 0.0}


def concentration_caption(frame: pd.DataFrame, horizon_days: int) -> str:
    top = clv_distribution(frame["clv"])["top20_share"]
    return (f"The top 20% of customers hold {top:.0%} of the value expected over the next {horizon_days} days; "
            "retention effort pays most there.")




# ---------------------------------------------------------------------------
# The whole step, for notebook 04
# ---------------------------------------------------------------------------

MIN_REPEAT_CUSTOMERS = 20  # fewer repeat buyers in the calibration period: no model is worth fitting


@dataclass
class CLVResult:
    """Everything report 04 shows, computed once by :func:`analyse`."""

    data: CLVData
    ch: pd.DataFrame  # calibration summary with holdout actuals
    dropout: dict  # dropout_test on the whole period
    model_cal: object
    gg_cal: GammaGammaFitter
    full: pd.DataFrame  # whole-period summary
    model: object
    gg: GammaGammaFitter
    frame: pd.DataFrame  # per-customer predictions (+ ids, segments)
    by_freq: pd.DataFrame
    track: pd.DataFrame
    errors: dict
    gini: float
    deciles: pd.DataFrame
    comparison: pd.DataFrame | None = None  # the candidate models on the calibration period
    choice: str = ""  # why the model used was chosen
    clv_draws: np.ndarray | None = None  # parametric-bootstrap draws × customers of CLV
    spend: dict | None = None  # Gamma-Gamma's independence check (clv_models.spend_independence)
    by_freq_models: pd.DataFrame | None = None  # holdout by calibration frequency, one column per candidate

    def clv_interval(self, mask=None) -> tuple[float, float]:
        """90% interval of the total predicted CLV (of the customers in ``mask``)."""
        if self.clv_draws is None:
            return float("nan"), float("nan")
        return total_interval(self.clv_draws, None if mask is None else np.asarray(mask, dtype=bool))

    @property
    def identified(self) -> bool:
        return bool(self.dropout["identified"])


def too_few_repeaters(data: CLVData) -> str:
    """Why the data cannot support a CLV model, or "" when it can."""
    ch = rfm_summary(data.transactions, "customer", "date", "value", data.calibration_end, unit=data.unit)
    repeaters = int((ch["frequency"] > 0).sum())
    if repeaters < MIN_REPEAT_CUSTOMERS:
        return (f"only {repeaters} customer(s) bought more than once before {data.calibration_end:%d %b %Y}; a "
                f"repeat-purchase model needs at least {MIN_REPEAT_CUSTOMERS}, so predicted CLV is not computed. "
                "Historical value per customer is in report 03.")
    return ""


@by_size(lambda data, *args, **kwargs: len(data.transactions))
def analyse(data: CLVData, processed_dir: Path, forecast_days: int, horizon_days: int, annual_discount_rate: float,
            profit_margin: float) -> CLVResult:
    """Fit on the calibration period and check against the holdout; test for dropout; refit on everything and
    predict every customer's purchases, P(alive), next order date and discounted CLV."""
    ch = calibration_holdout(data)
    full = rfm_summary(data.transactions, "customer", "date", "value", data.observation_end, unit=data.unit)
    dropout = dropout_test(full)
    chosen, why, comparison = select_model(ch, dropout["identified"])
    model_cal, gg_cal = fit_models(ch, dropout["identified"], chosen)
    model, gg = fit_models(full, dropout["identified"], chosen)
    by_freq = holdout_by_frequency(ch, model_cal)
    by_freq_models = holdout_by_frequency_models(ch, comparison.attrs.get("fitted", {}))
    track = cumulative_tracking(data, ch, model_cal)
    errors = tracking_errors(track, data.calibration_end)
    duration = ch["duration_holdout"].iloc[0]
    predicted_value = model_cal.conditional_expected_purchases(duration, ch["frequency"], ch["recency"], ch["T"]) * \
        gg_cal.conditional_expected_average_profit(ch["frequency"], ch["monetary_value"])
    gini = normalized_gini(ch["value_holdout"], predicted_value) if ch["value_holdout"].sum() > 0 else float("nan")
    deciles = decile_table(ch["value_holdout"], predicted_value)
    pred = predict_customers(full, model, gg, data.observation_end, data.unit_days, forecast_days, horizon_days,
                             annual_discount_rate, profit_margin)
    bands, clv_draws = clv_uncertainty(full, model, gg, data.observation_end, data.unit_days, forecast_days,
                                       horizon_days, annual_discount_rate, profit_margin)
    pred = pred.join(bands)
    from helpers.analysis.clv_models import p_no_purchase, spend_independence

    # the chance of a next order within 30 days: who needs no reminder, and who does
    pred["p_buy_within_30d"] = 1.0 - p_no_purchase(model, 30.0 / data.unit_days, full["frequency"], full["recency"],
                                                   full["T"], draws=1000)
    spend = spend_independence(full)
    if not dropout["identified"]:
        # not identified: a column of ones would read as "everyone is still a customer"
        pred[["p_alive", "p_alive_low", "p_alive_high"]] = np.nan
    frame = customer_frame(pred, data, processed_dir)
    return CLVResult(data, ch, dropout, model_cal, gg_cal, full, model, gg, frame, by_freq, track, errors, gini,
                     deciles, comparison, why, clv_draws, spend, by_freq_models)


def conclusion(res: CLVResult, horizon_days: int) -> list[str]:
    """Two to four sentences answering the page's question, with the money figures."""
    from helpers.core.fmt import fmt_money

    cur = res.data.currency
    f = res.frame
    d = clv_distribution(f["clv"])
    lo, hi = res.clv_interval()
    band = f" (90% interval {fmt_money(lo, cur)} to {fmt_money(hi, cur)})" if np.isfinite(lo) else ""
    out = [f"The {len(f):,} buyers modelled are expected to bring **{fmt_money(d['total'], cur)}**{band} over the "
           f"next {horizon_days} days (predicted value of today's customers); the top 20% hold "
           f"{d['top20_share']:.0%} of it and the median buyer is worth {fmt_money(d['median'], cur)}."]
    risk = at_risk_mask(res)
    if risk.any():
        out.append(f"**{fmt_money(f.loc[risk, 'clv'].sum(), cur)}** of it is predicted value at risk: it sits with "
                   f"{int(risk.sum()):,} buyers who are at risk or churned (report 03)"
                   + (" or probably gone (P(alive) below 50%)" if res.identified else "") + ".")
    if res.identified:
        likely = int((f["p_alive"] >= 0.5).sum())
        out.append(f"{likely:,} buyers ({likely / len(f):.0%}) are probably still active (P(alive) ≥ 50%).")
    else:
        out.append("The data show no sign of customers leaving for good, so the forecast assumes they stay and only "
                   "buy at different rates; P(alive) is not reported (see 'How we know').")
    quality = "well" if res.gini >= 0.6 else "moderately" if res.gini >= 0.4 else "poorly"
    if not np.isnan(res.gini):
        out.append(f"Checked on the last {(res.data.observation_end - res.data.calibration_end).days} days, held "
                   f"out of the fit, the model ranked customers {quality} (Gini {res.gini:.2f}; 1 = perfect) and "
                   f"missed total repeat purchases by {res.errors['holdout_pct']:+.0f}%.")
    return out


def step_metrics(res: CLVResult, horizon_days: int, dataset: str, recovery: pd.DataFrame | None) -> dict:
    f = res.frame
    m = {"dataset": dataset, "currency": res.data.currency, "model": getattr(res.model, "label_", ""),
         "model_choice": res.choice, "clv_total_interval": list(res.clv_interval()),
         "spend_independence": {k: v for k, v in (res.spend or {}).items() if k != "sentence"},
         "dropout_identified": res.identified, "dropout_test": {k: v for k, v in res.dropout.items()
                                                                if k not in ("bgnbd", "nbd")},
         "calibration_parameters": dict(res.model_cal.params_), "gamma_gamma_calibration": dict(res.gg_cal.params_),
         "log_likelihood_calibration": res.model_cal.log_likelihood_, "tracking_error_pct": res.errors,
         "gini_holdout": res.gini, "clv_total": float(f["clv"].sum()), "clv_distribution": clv_distribution(f["clv"]),
         "historical_total": float(f["historical_value"].sum()), "customers_modelled": len(f),
         "likely_active": int((f["p_alive"] >= 0.5).sum()) if res.identified else None,
         "horizon_days": horizon_days,
         "recovery_max_rel_error_means": float(recovery.loc[recovery["parameter"].str.startswith("mean"),
                                                            "relative_error"].abs().max())
         if recovery is not None else None}
    return m


def value_kpis(res: CLVResult, horizon_days: int, forecast_days: int) -> list[dict]:
    """Figures of report 04 that are not registry KPIs (those are shown with :func:`pages.show_kpi_cards`)."""
    f, cur = res.frame, res.data.currency
    return [{"label": "historical value to date", "value": fmt_money(f["historical_value"].sum(), cur)},
            {"label": f"orders expected in {forecast_days} days", "value": int(round(f["expected_purchases"].sum()))}]


def clv_by_display(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    by = table.columns[0]
    return pd.DataFrame({by: table[by], "customers": table["customers"],
                         "predicted CLV per customer": table["mean_clv"].map(lambda v: fmt_money(v, currency)),
                         "predicted CLV in total": table["total_clv"].map(lambda v: fmt_money(v, currency)),
                         **({"90% interval of the total": [f"{fmt_money(lo, currency)} – {fmt_money(hi, currency)}"
                                                          for lo, hi in zip(table["total_low"], table["total_high"])]}
                            if "total_low" in table else {}),
                         "share of predicted CLV": table["clv_share"].map(lambda v: f"{v:.0%}"),
                         "historical value per customer": table["mean_historical"].map(lambda v: fmt_money(v, currency))})


def clv_by_caption(table: pd.DataFrame, currency: str, horizon_days: int) -> str:
    top = table.iloc[0]
    by = table.columns[0]
    return (f"{top[by]} are worth the most per customer ({fmt_money(top['mean_clv'], currency)} expected over "
            f"{horizon_days} days) and hold {top['clv_share']:.0%} of all predicted value.")


def retention_caption(retention: pd.DataFrame) -> str:
    if retention.shape[1] < 2 or retention.empty:
        return "Too few months of history to show how cohorts return."
    m1 = retention.iloc[:, 1].dropna()
    return (f"Each row is the customers who first bought in that month; on average {m1.mean():.0%} of a cohort buys "
            "again in the month after its first purchase, and later columns show how many keep coming back.")


def churn_days_from_step03(processed_dir: Path) -> int | None:
    """The churn threshold report 03 used (None when it has not run)."""
    import json

    path = Path(processed_dir) / "metrics" / "03_segmentation.json"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("metrics", {}).get("thresholds", {}).get("churn_days")


def save_outputs(res: CLVResult, processed_dir: Path, dataset: str) -> None:
    """``clv.parquet`` (the workbench's customers) or ``clv_<dataset>.parquet`` (another data set)."""
    from helpers.core.tables import save_table

    out = res.frame.drop(columns=["customer_id"]).reset_index(names="customer")
    save_table(out, Path(processed_dir) / ("clv.parquet" if dataset == "orders" else f"clv_{dataset}.parquet"))


RISK_STAGES = ("at risk", "churned")


def at_risk_mask(res: CLVResult) -> pd.Series:
    """Customers whose predicted value is at risk: lifecycle stage at risk or churned (report 03), or, when the
    data show customers leaving, P(alive) below 50%."""
    f = res.frame
    mask = f["lifecycle_stage"].isin(RISK_STAGES) if "lifecycle_stage" in f else pd.Series(False, index=f.index)
    if res.identified:
        mask = mask | (f["p_alive"] < 0.5)
    return mask.fillna(False)


def kpi_values(res: CLVResult) -> dict:
    """The registry KPIs report 04 owns (see :mod:`helpers.core.kpis`)."""
    f = res.frame
    return {"predicted_clv": float(f["clv"].sum()), "revenue_at_risk": float(f.loc[at_risk_mask(res), "clv"].sum()),
            "probably_active": int((f["p_alive"] >= 0.5).sum()) if res.identified else None}
