"""Secondary suppression, re-checked on a table as a file shows it.

A table with suppressed cells and a total ("All" or "Total", as a row, a column or both) is
handed to the filter's own attacker (``output_filters.engine.secondary.attack``): for each
suppressed cell, the least and the most it can be given everything published in the table.
A missing margin is added as unknown (every cell of it suppressed), which gives the attacker
nothing it does not have. The protection rule is the filter's (``protection_level``): a small
cell v is safe when the attacker's interval reaches v − max(1, p·v) below and v + max(1, p·v)
above. The re-check does not know the hidden value, so a cell fails when no small value in
its interval would be safe: whatever it is, the totals give it back (or nearly). A cell the
attacker knows to be at least the threshold cannot be a small one and is not a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from output_filters.engine.problem import protection_level
from output_filters.engine.secondary import attack
from output_filters.policy import Policy

MARGINS = ("all", "total", "totals")
ALL = "All"


@dataclass(frozen=True)
class Exposed:
    row: str
    column: str  # "" for a one-column table
    width: float  # how far apart the attacker's least and most are (0: recomputed exactly)


class Unreadable(ValueError):
    """The table's totals do not add up (or repeat a label): the attacker cannot be run on it."""


def exposes(low: float, high: float, policy: Policy) -> bool:
    """True if no small value in [low, high] would keep its protection interval."""
    if low >= policy.threshold:
        return False
    top = min(high, policy.threshold - 1)
    for value in range(max(1, math.ceil(low - 1e-9)), math.floor(top + 1e-9) + 1):
        room = protection_level(value, policy.protection_interval)
        if low <= value - room + 1e-6 and high >= value + room - 1e-6:
            return False
    return True


def exposed_cells(labels: list[str], titles: list[str], cells: list[list[float]], policy: Policy) -> list[Exposed]:
    """The suppressed cells (NaN in ``cells``, rows by ``labels``, columns by ``titles``) that
    the table's own totals give back. Empty when the table has no suppressed cell or no total."""
    values = np.asarray(cells, dtype=float)
    if not np.isnan(values).any():
        return []
    row_margin = [i for i, label in enumerate(labels) if label.strip().lower() in MARGINS]
    column_margin = [j for j, title in enumerate(titles) if title.strip().lower() in MARGINS]
    if len(row_margin) > 1 or len(column_margin) > 1:
        raise Unreadable("it has more than one total row or column")
    rows = [ALL if i in row_margin else label for i, label in enumerate(labels)]
    columns = [ALL if j in column_margin else title for j, title in enumerate(titles)]
    if len(set(rows)) != len(rows) or len(set(columns)) != len(columns):
        raise Unreadable("a row or column label appears twice")
    padded_row = padded_column = False
    if len(columns) == 1:
        if not row_margin:
            return []
        published: pd.DataFrame | pd.Series = pd.Series(values[:, 0], index=pd.Index(rows, name="row"))
    else:
        if not row_margin and not column_margin:
            return []
        frame = pd.DataFrame(values, index=pd.Index(rows, name="row"), columns=pd.Index(columns, name="column"))
        if not row_margin:
            frame.loc[ALL] = np.nan
            padded_row = True
        if not column_margin:
            frame[ALL] = np.nan
            padded_column = True
        published = frame
    try:
        intervals = attack(published.astype("Float64").where(published.notna(), pd.NA), policy)
    except ValueError as error:  # InconsistentTable too: totals that are not the sums shown
        raise Unreadable(f"its totals do not add up to its cells ({error})") from None
    named_row = dict(zip(rows, labels, strict=True))
    named_column = dict(zip(columns, titles, strict=True))
    found = []
    for label, (low, high) in intervals.items():
        row, column = label if isinstance(label, tuple) else (label, "")
        if (padded_row and row == ALL) or (padded_column and column == ALL):
            continue
        if exposes(low, high, policy):
            found.append(Exposed(named_row[row], named_column.get(column, ""), float(high - low)))
    return found
