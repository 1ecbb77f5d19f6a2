"""Count tables in the shapes pandas gives them, protected by the exact engine.

``protect_counts`` takes a table of counts as the kernel's aggregations make it — a DataFrame
(crosstab, pivot_table; axes may be MultiIndexes) or a Series (value_counts, groupby size;
1-D or with a MultiIndex) — and returns it published: cells with 0 < n < threshold
suppressed (primary), and the fewest further cells so that no primary can be narrowed by an
attacker who knows every total (``output_filters.engine.secondary``). The engine always assumes all
margins are known; ``margins=True`` also shows pandas' own margins (one ``All`` row and
column), which is safe because the attacker was assumed to see them anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from output_filters.engine.secondary import Suppression, protect, suppression_note
from output_filters.policy import Policy


@dataclass(frozen=True)
class Protection:
    """A published table and what was suppressed in it (masks align with ``table``)."""

    table: pd.DataFrame | pd.Series
    primary: pd.DataFrame | pd.Series
    secondary: pd.DataFrame | pd.Series

    def note(self, policy: Policy) -> str:
        """A one-line reason, e.g. "3 cells suppressed: fewer than 10 records; 2 more ..."."""
        return counts_note(int(np.asarray(self.primary).sum()), int(np.asarray(self.secondary).sum()), policy)


def counts_note(primary: int, secondary: int, policy: Policy) -> str:
    return suppression_note(primary, secondary, policy)


def protect_counts(
    counts: pd.DataFrame | pd.Series,
    policy: Policy,
    *,
    margins: bool = False,
    margins_name: str = "All",
) -> Protection:
    """Suppress a table of counts by itself; see the module docstring. Suppressed cells are ``pd.NA``.

    (In a kernel, count tables go through the session's ledger instead, protected together with
    every table shown before: ``output_filters.guards.counting``.)
    """
    if isinstance(counts, pd.Series):
        parts = _full(protect(counts, policy, margins_name=margins_name), policy)
        return Protection(*(_reindexed(part, counts.index) for part in parts))
    if counts.index.nlevels == 1 and counts.columns.nlevels == 1:
        parts = _full(protect(counts, policy, margins_name=margins_name), policy)
        rows = [*counts.index, margins_name] if margins else list(counts.index)
        cols = [*counts.columns, margins_name] if margins else list(counts.columns)
        return Protection(*(part.loc[rows, cols] for part in parts))
    return _protect_nested(counts, policy, margins, margins_name)


def _full(result: Suppression, policy: Policy) -> tuple:
    """The engine's table with every margin and its masks.

    With ``show_zeros`` off, zero cells are hidden too (as suppressed, without a protection
    requirement: hiding them only leaves an attacker less to work with).
    """
    table, primary, secondary = result.table, result.primary, result.secondary
    if not policy.show_zeros:
        zeros = (table == 0).fillna(False).astype(bool)
        table, secondary = table.mask(zeros), secondary | zeros
    return table, primary, secondary


def _reindexed(series: pd.Series, index: pd.Index) -> pd.Series:
    out = series.reindex(index)
    return out.astype(series.dtype) if series.dtype == bool else out


def _protect_nested(counts: pd.DataFrame, policy: Policy, margins: bool, margins_name: str) -> Protection:
    """A DataFrame with MultiIndex axes: protected as the N-D table it is, shown as pandas shows it."""
    row_levels, col_levels = counts.index.nlevels, counts.columns.nlevels
    names = [f"level_{i}" for i in range(row_levels + col_levels)]
    flat = counts.copy()
    flat.index = flat.index.set_names(names[:row_levels])
    flat.columns = flat.columns.set_names(names[row_levels:])
    series = flat.stack(list(range(col_levels)), future_stack=True)
    full_table, full_primary, full_secondary = _full(protect(series, policy, margins_name=margins_name), policy)
    total_rows = (margins_name,) * row_levels
    total_cols = (margins_name,) * col_levels

    def shaped(full: pd.Series) -> pd.DataFrame:
        def cell(row, col):
            row = row if isinstance(row, tuple) else (row,)
            col = col if isinstance(col, tuple) else (col,)
            return full.get(row + col, pd.NA)

        rows = list(counts.index) + ([total_rows] if margins else [])
        cols = list(counts.columns) + ([total_cols] if margins else [])
        frame = pd.DataFrame([[cell(r, c) for c in cols] for r in rows])
        frame.index = _with_total(counts.index, margins, margins_name)
        frame.columns = _with_total(counts.columns, margins, margins_name)
        return frame

    table = shaped(full_table).astype("Int64")
    primary = shaped(full_primary).fillna(False).astype(bool)
    secondary = shaped(full_secondary).fillna(False).astype(bool)
    return Protection(table, primary, secondary)


def _with_total(index: pd.Index, margins: bool, margins_name: str) -> pd.Index:
    if not margins:
        return index
    if isinstance(index, pd.MultiIndex):
        label = (margins_name,) + ("",) * (index.nlevels - 1)
        return index.append(pd.MultiIndex.from_tuples([label], names=index.names))
    return index.append(pd.Index([margins_name], name=index.name))
