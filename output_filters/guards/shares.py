"""Shares, percentages and rates, computed from a decided count table.

A share is its count divided by a total of the same table: with the total shown it gives the
count back, so it is shown only where the count and its denominator are both shown (a
suppressed cell's share is suppressed, and so is every share of a line whose total is), and
the denominators are published cells of the table in the ledger. A rate of a yes/no column is
the yes-count over the group. Then the rules: a rate of a group under the policy's
``rate_band_below`` outside the band is coded (``<5%``), never a small group's: that one's
denominator is a small count, suppressed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kernels.marks import mark_protected
from output_filters.engine.record_set import MARGIN
from output_filters.guards.counting import Counts
from output_filters.rules import Cells, judge
from output_filters.session import FilterSession


def _flat(label) -> tuple:
    return label if isinstance(label, tuple) else (label,)


def _ratio(numerator: float, denominator: float) -> float:
    if np.isnan(numerator) or np.isnan(denominator) or denominator == 0:
        return float("nan")
    return numerator / denominator


def _coded(session: FilterSession, values, n, counts: Counts):
    """``values`` (shares) through the rules with their denominators ``n``; marked protected."""
    table, codes, note = judge(Cells(values, n, rate=True), session.policy)
    session.record_judged("rates", values, table, codes, note)
    return mark_protected(table, "; ".join(x for x in (counts.note(session), note) if x), codes)


def within(session: FilterSession, counts: Counts, layout: pd.Series, groups: int):
    """Shares of each value within its group (``groups`` leading index levels; 0: of the whole)."""
    values, n = [], []
    for label in layout.index:
        key = _flat(label)
        total = counts.lookup((*key[:groups], *([MARGIN] * (len(key) - groups))))
        values.append(_ratio(counts.lookup(key), total))
        n.append(0.0 if np.isnan(total) else total)
    index = layout.index
    return _coded(session, pd.Series(values, index=index, name="proportion"), pd.Series(n, index=index), counts)


def normalized(session: FilterSession, counts: Counts, layout: pd.DataFrame, normalize, margins_name: str):
    """A crosstab's shares (``normalize`` = "index", "columns" or True), laid out as ``layout``."""

    def key(label, levels: int) -> tuple:
        flat = _flat(label)
        if flat and flat[0] == margins_name and all(x in (margins_name, "") for x in flat):
            return (MARGIN,) * levels
        return flat

    rows = [key(r, layout.index.nlevels) for r in layout.index]
    cols = [key(c, layout.columns.nlevels) for c in layout.columns]
    every_row, every_col = (MARGIN,) * layout.index.nlevels, (MARGIN,) * layout.columns.nlevels
    values = np.full(layout.shape, np.nan)
    n = np.zeros(layout.shape)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if normalize == "index":
                total = counts.lookup((*r, *every_col))
            elif normalize == "columns":
                total = counts.lookup((*every_row, *c))
            else:
                total = counts.lookup((*every_row, *every_col))
            values[i, j] = _ratio(counts.lookup((*r, *c)), total)
            n[i, j] = 0.0 if np.isnan(total) else total
    frame = pd.DataFrame(values, index=layout.index, columns=layout.columns)
    return _coded(session, frame, pd.DataFrame(n, index=layout.index, columns=layout.columns), counts)


def flag_column(session: FilterSession, counts: Counts, layout: pd.Series, name: str):
    """A yes/no column's ``sum`` (its yes-count) or ``mean`` (yes ÷ all) per group of ``layout``.

    ``counts`` is the table groups × the column (True/False). Returns (values, note, codes).
    """
    values, n = [], []
    for label in layout.index:
        key = _flat(label)
        yes = counts.lookup((*key, True))
        total = counts.lookup((*key, MARGIN))
        values.append(yes if name == "sum" else _ratio(yes, total))
        n.append(0.0 if np.isnan(total) else total)
    series = pd.Series(values, index=layout.index, name=layout.name)
    if name == "sum":
        return series.round().astype("Int64").mask(series.isna()), counts.note(session), None
    table, codes, note = judge(Cells(series, pd.Series(n, index=layout.index), rate=True), session.policy)
    session.record_judged("rates", series, table, codes, note)
    return table, "; ".join(x for x in (counts.note(session), note) if x), codes


def flag_scalar(session: FilterSession, counts: Counts, name: str) -> tuple[float, float]:
    """The whole column's yes-count (``sum``) or rate (``mean``) and its records, from ``counts``
    (a table by the column alone)."""
    yes = counts.lookup((True,))
    total = counts.lookup((MARGIN,))
    return (yes if name == "sum" else _ratio(yes, total)), total
