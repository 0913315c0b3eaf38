"""Number formatting shared by every page: one money format, one percentage format."""

from __future__ import annotations

import pandas as pd

def fmt_number(value: float, unit: str = "") -> str:
    """Format a KPI value compactly: 12,345 · 1.2 M · 3.4% (unit '%' expects a share 0–1).

    >>> fmt_number(1234567, "EUR"), fmt_number(0.1234, "%"), fmt_number(42)
    ('EUR 1.23 M', '12.3%', '42')
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if unit == "%":
        return f"{value * 100:.1f}%"
    v = float(value)
    if abs(v) >= 1e6:
        s = f"{v / 1e6:.2f} M"
    elif abs(v) >= 1e4:
        s = f"{v:,.0f}"
    elif v.is_integer():
        s = f"{int(v):,}"
    else:
        s = f"{v:,.2f}"
    return f"{unit} {s}" if unit else s



def fmt_money(value: float, currency: str = "") -> str:
    """The one money format of every page: ``EUR 3.10 M``, ``EUR 12,346``, ``EUR 45.50``.

    >>> fmt_money(3_101_234, "GBP"), fmt_money(12345.6, "EUR"), fmt_money(45.5, "EUR"), fmt_money(None, "EUR")
    ('GBP 3.10 M', 'EUR 12,346', 'EUR 45.50', '–')
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    v = float(value)
    if abs(v) >= 1e6:
        s = f"{v / 1e6:,.2f} M"
    elif abs(v) >= 100:
        s = f"{v:,.0f}"
    else:
        s = f"{v:,.2f}"
    return f"{currency} {s}".strip()


def fmt_pct(share: float, decimals: int = 0) -> str:
    """A share (0–1) as a percentage.

    >>> fmt_pct(0.384), fmt_pct(0.0123, 1), fmt_pct(float("nan"))
    ('38%', '1.2%', '–')
    """
    if share is None or (isinstance(share, float) and pd.isna(share)):
        return "–"
    return f"{share * 100:.{decimals}f}%"
