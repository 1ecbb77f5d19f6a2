"""Check a chunk of an uploaded file against the year's data elements, and type its values.

Every value is read as text; each rule is applied to a whole column at once. A problem names
the data row (1-based, header excluded), the column, the value and the broken rule. Values of
identifier columns are never echoed back: errors say only that the identifier is malformed.
A text element that holds something shaped like a social security number is refused, and
not echoed either: identifiers may arrive only in identifier columns, which are never stored.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from warehouse.elements import Column, TableElements, term_year
from warehouse.exceptions import Problem

TERM = re.compile(r"\d{4}(FA|WI|SP|SU)")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_TEXT = 200  # characters in a free-text value
BOOLEANS = {"Y": True, "N": False}
SSN = r"(?:^|\D)\d{3}[- ]?\d{2}[- ]?\d{4}(?:\D|$)"
_SSN = re.compile(SSN)
SSN_RULE = "looks like a social security number; identifiers belong only in identifier columns"


def validate_chunk(
    chunk: pd.DataFrame, table: TableElements, year: str, first_row: int
) -> tuple[pd.DataFrame, list[Problem]]:
    """Validate a chunk of text columns; return (typed columns, problems in row order).

    ``first_row`` is the 1-based number of the chunk's first data row in the file.
    """
    problems: list[Problem] = []
    typed: dict[str, pd.Series] = {}
    rows = np.arange(first_row, first_row + len(chunk))
    for column in table.columns:
        text = chunk[column.name].str.strip()
        blank = text.eq("")
        value, bad = _parse(column, text, blank, year)
        if column.required:
            _report(problems, column, text, rows, blank.to_numpy(), _required_rule(column))
        for rule, mask in bad:
            _report(problems, column, text, rows, (mask & ~blank).to_numpy(), rule)
        typed[column.name] = value
    problems.sort(key=lambda p: p.row)
    return pd.DataFrame(typed, index=chunk.index), problems


def _required_rule(column: Column) -> str:
    what = f" ({column.help})" if column.help else ""
    return f"required{what}, but blank"


def _report(problems, column: Column, text, rows, mask, rule: str) -> None:
    if not mask.any():
        return
    values = text.to_numpy()[mask]
    for row, value in zip(rows[mask], values, strict=True):
        hidden = value and (column.identifier or _SSN.search(value))
        shown = "(identifier hidden)" if hidden else _clip(value)
        problems.append(Problem(int(row), column.name, shown, rule))


def _clip(value: str) -> str:
    return value if len(value) <= 60 else f"{value[:57]}... ({len(value):,} characters)"


def _parse(
    column: Column, text: pd.Series, blank: pd.Series, year: str
) -> tuple[pd.Series, list[tuple[str, pd.Series]]]:
    """The typed column (missing where blank or invalid) and (rule, bad mask) pairs."""
    kind = column.type
    bad: list[tuple[str, pd.Series]] = []
    if kind in ("integer", "number"):
        number = pd.to_numeric(text.where(~blank), errors="coerce").astype(float)
        finite = pd.Series(np.isfinite(number.to_numpy()), index=text.index)
        bad.append(("not a number", ~finite))
        if kind == "integer":
            bad.append(("not a whole number", finite & (number % 1 != 0)))
        if column.min is not None:
            bad.append((f"below the minimum {column.min}", number < column.min))
        if column.max is not None:
            bad.append((f"above the maximum {column.max}", number > column.max))
        value = number.where(finite)
        return (value.round().astype("Int64") if kind == "integer" else value), bad
    if kind == "boolean":
        bad.append(("must be Y or N", ~text.isin(BOOLEANS)))
        return text.map(BOOLEANS).astype("boolean"), bad
    if kind == "code":
        codes = column.codes or ()
        shown = ", ".join(codes) if len(codes) <= 12 else ", ".join(codes[:12]) + ", ..."
        bad.append((f"not an agreed code (allowed: {shown})", ~text.isin(codes)))
        return text.where(~blank), bad
    if kind == "term":
        malformed = ~text.str.fullmatch(TERM.pattern)
        bad.append(("not a term such as 2024FA, 2025WI, 2025SP or 2025SU", malformed))
        if column.in_year:
            years = text.where(~malformed & ~blank, "").map(lambda t: term_year(t) if t else year)
            bad.append((f"term outside the upload year {year}", years.ne(year)))
        return text.where(~blank), bad
    if kind == "date":
        parsed = pd.to_datetime(text.where(~blank), format="%Y-%m-%d", errors="coerce")
        malformed = ~text.str.fullmatch(DATE.pattern) | parsed.isna()
        bad.append(("not a date written YYYY-MM-DD", malformed))
        return text.where(~blank), bad
    # string
    if column.pattern:
        bad.append((f"does not match the pattern {column.pattern}", ~text.str.fullmatch(column.pattern)))
    bad.append((f"longer than {MAX_TEXT} characters", text.str.len() > MAX_TEXT))
    if column.identifier is None:
        bad.append((SSN_RULE, text.str.contains(SSN, regex=True)))
    return text.where(~blank), bad
