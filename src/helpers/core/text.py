"""Small text helpers for messages: suggestions for typos, plain lists."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str], n: int = 3) -> str:
    """``"; did you mean 'x'?"`` for the closest known names, or ``""`` when nothing is close.

    >>> did_you_mean("n_customer", ["n_customers", "seed"])
    "; did you mean 'n_customers'?"
    >>> did_you_mean("zzz", ["n_customers"])
    ''
    """
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=n, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def plain_list(items: Iterable[str], conjunction: str = "and") -> str:
    """``a, b and c``.

    >>> plain_list(["reviews", "surveys", "tickets"])
    'reviews, surveys and tickets'
    """
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]
