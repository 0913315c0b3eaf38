"""Calendar periods shared by every report: which months are complete."""

from __future__ import annotations

import pandas as pd


def partial_month(window_end: str | pd.Timestamp) -> pd.Timestamp | None:
    """The first day of the window's last month when the window ends before that month does, else None.

    >>> partial_month("2011-12-09"), partial_month("2026-09-30")
    (Timestamp('2011-12-01 00:00:00'), None)
    """
    end = pd.Timestamp(window_end).normalize()
    month_end = (end + pd.offsets.MonthEnd(0)).normalize()
    return end.replace(day=1) if end != month_end else None


def complete_months(monthly: pd.DataFrame | pd.Series, window_end: str | pd.Timestamp):
    """``monthly`` (indexed by month start) without a partial last month, so trends compare like with like."""
    cut = partial_month(window_end)
    return monthly[monthly.index < cut] if cut is not None else monthly
