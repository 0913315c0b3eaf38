"""Errors that tell the user which file, column and row is wrong and what was expected."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class SourceError(WorkbenchError, ValueError):
    """A data source cannot be used as it is.

    The message always starts with the file (or table) name, then the column and
    row when known, then what was expected and what was found.

    >>> str(SourceError("orders.csv", "order_date", 17, "a date", "'31.02.2025'"))
    "orders.csv, column 'order_date', row 17: expected a date, got '31.02.2025'"
    """

    def __init__(self, file: str, column: str | None = None, row: int | None = None,
                 expected: str = "", got: str = "", key: str | None = None) -> None:
        self.file, self.column, self.row, self.expected, self.got = file, column, row, expected, got
        where = [file]
        if key is not None:  # a setting in a configuration file, e.g. sources.orders.locale.decimal
            where.append(f"at {key}")
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        msg = ", ".join(where) + ": "
        msg += f"expected {expected}" if expected else ""
        if got:
            msg += f", got {got}" if expected else got
        super().__init__(msg)


class ParameterError(WorkbenchError, ValueError):
    """A notebook or runner parameter is unknown, of the wrong type, or unsafe."""


class StepSkipped(WorkbenchError):
    """A step has nothing to analyse in this data set (no review texts, no experiments…).

    Raised by :func:`helpers.reporting.pages.skip_step` after it has said why; the runner marks the step as
    skipped with that reason and carries on.
    """
