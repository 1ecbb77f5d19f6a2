"""Statistics of record-level data (means, medians, sums of magnitudes...) through the rules.

``judged`` applies every statistics rule (``output_filters.rules``) to a computed table, given
the number of records behind each cell (and, for magnitude columns, the largest
contributions); ``fuzzy_quantile`` computes the policy's fuzzy quantiles; ``magnitude``
collects the largest contributions per group. Counts are not statistics: they go through
``output_filters.guards.counting``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.core.groupby.generic import SeriesGroupBy
from pandas.core.groupby.groupby import GroupBy

from kernels.marks import mark_protected
from output_filters.rules import Cells, contributions, judge
from output_filters.session import FilterSession


def aligned_counts(n, result):
    """Counts aligned with ``result`` (quantile adds an index level)."""
    if isinstance(result, pd.DataFrame) and isinstance(n, pd.DataFrame):
        if not result.index.equals(n.index) and result.index.nlevels > n.index.nlevels:
            n = n.reindex(result.index.droplevel(-1)).set_axis(result.index)
        return n.reindex(columns=result.columns)
    if isinstance(n, pd.Series | pd.DataFrame) and not result.index.equals(n.index):
        if result.index.nlevels > n.index.nlevels:
            return n.reindex(result.index.droplevel(-1)).set_axis(result.index)
    return n


def judged(session: FilterSession, result, n, *, rate=False, tops: list | None = None, totals=None):
    """``result`` (a statistic per cell, ``n`` records behind each) after every rule, marked protected."""
    cells = Cells(result, aligned_counts(n, result), rate=rate, tops=tops or [], totals=totals)
    table, codes, note = judge(cells, session.policy)
    session.record_judged("rates" if rate else "statistics", result, table, codes, note)
    return mark_protected(table, note, codes)


def fuzzy_quantile(quantile: Callable, q) -> Any:
    """The mean of the quantiles 0.05 either side of ``q`` (no single student's value).

    ``quantile(q)`` computes exact quantiles; the result has the shape of ``quantile(q)``.
    """
    exact = quantile(q)
    low = quantile(np.clip(np.asarray(q) - 0.05, 0, 1).tolist())
    high = quantile(np.clip(np.asarray(q) + 0.05, 0, 1).tolist())
    values = (np.asarray(low, dtype=float) + np.asarray(high, dtype=float)) / 2
    if isinstance(exact, pd.DataFrame):
        return pd.DataFrame(values, index=exact.index, columns=exact.columns)
    if isinstance(exact, pd.Series):
        return pd.Series(values, index=exact.index, name=exact.name)
    return float(values)


def magnitude(session: FilterSession, gb: GroupBy, result) -> tuple[list, Any]:
    """Largest contributions and totals per group of magnitude columns, aligned with ``result``."""
    policy = session.policy
    columns = [gb.obj.name] if isinstance(gb, SeriesGroupBy) else list(gb._obj_with_exclusions.columns)
    wanted = [c for c in columns if c in policy.magnitude_columns]
    if not wanted or len(result.index) != gb.ngroups:
        return [], None
    ids = gb.ngroup().to_numpy()
    keep = max(2, policy.dominance_n)
    tops = [pd.DataFrame(0.0, index=result.index, columns=columns) for _ in range(keep)]
    totals = pd.DataFrame(0.0, index=result.index, columns=columns)
    source = gb.obj if isinstance(gb, SeriesGroupBy) else gb._obj_with_exclusions
    for column in wanted:
        values = source if isinstance(source, pd.Series) else source[column]
        largest, total = contributions(values, ids, gb.ngroups, keep)
        for place, top in enumerate(largest):
            tops[place][column] = top
        totals[column] = total

    def shaped(frame: pd.DataFrame):
        return frame.iloc[:, 0] if isinstance(result, pd.Series) else frame.reindex(columns=result.columns)

    return [shaped(top) for top in tops], shaped(totals)


def nth_largest(place: int) -> Callable[[pd.Series], float]:
    """An aggregation giving each group's ``place``-th largest absolute contribution (0 if none)."""

    def largest(series: pd.Series) -> float:
        ordered = series.dropna().abs().nlargest(place + 1)
        return float(ordered.iloc[place]) if len(ordered) > place else 0.0

    return largest


def absolute_sum(series: pd.Series) -> float:
    return float(series.dropna().abs().sum())
