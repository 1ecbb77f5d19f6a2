"""Suppression of count tables and statistics, on plain pandas objects.

Counts: a cell with 0 < n < threshold is suppressed (primary). The filter assumes the
table's totals are known (shown as margins, or derivable from another output such as the
number of rows), so every line of the table (a row, a column, or in general all cells that
differ in one dimension only, with their total) that holds exactly one suppressed cell gets a
second one — the smallest non-zero cell left in that line, totals included when they are
shown — until no line gives a suppressed cell back by subtraction (secondary suppression).
This is the classic hypercube heuristic; the optimal, audited version is the next step
(see the README's "Disclosure rules").

Statistics (mean, rate, median, ...): a value computed from fewer than threshold records is
suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from output_filters.policy import Policy


@dataclass(frozen=True)
class Protection:
    """A published table and what was suppressed in it (masks align with ``table``)."""

    table: pd.DataFrame | pd.Series
    primary: pd.DataFrame | pd.Series
    secondary: pd.DataFrame | pd.Series

    def note(self, policy: Policy) -> str:
        """A one-line reason, e.g. "3 cells suppressed: fewer than 10 records; 2 more ..."."""
        return counts_note(int(self.primary.to_numpy().sum()), int(self.secondary.to_numpy().sum()), policy)


def counts_note(primary: int, secondary: int, policy: Policy) -> str:
    if not primary and not secondary:
        return ""
    parts = [f"{primary} cell{'s' if primary != 1 else ''} suppressed: fewer than {policy.threshold} records"]
    if secondary:
        parts.append(f"{secondary} more to protect the totals")
    return "; ".join(parts)


def protect_counts(
    counts: pd.DataFrame | pd.Series,
    policy: Policy,
    *,
    margins: bool = False,
    margins_name: str = "All",
) -> Protection:
    """Suppress a table of counts (DataFrame: 2-D; Series: 1-D, or N-D with a MultiIndex).

    With ``margins`` the published DataFrame gets an ``All`` row and column of true totals,
    themselves subject to suppression. Suppressed cells are ``pd.NA`` in nullable integers.
    """
    if isinstance(counts, pd.DataFrame):
        dense = counts.fillna(0).to_numpy(dtype=float)
        shown_margins = margins
    elif isinstance(counts.index, pd.MultiIndex):
        dense, positions = _dense(counts)
        shown_margins = False
    else:
        dense = counts.fillna(0).to_numpy(dtype=float)
        shown_margins = False
    extended = _with_totals(dense)
    published = np.zeros(extended.shape, dtype=bool)
    published[tuple(slice(0, n) for n in dense.shape)] = True
    if shown_margins:
        published[:] = True
    primary = published & (extended > 0) & (extended < policy.threshold)
    suppressed = _complete(extended, primary, published)
    secondary = suppressed & ~primary

    if isinstance(counts, pd.DataFrame):
        rows, cols = dense.shape
        keep = (slice(None), slice(None)) if shown_margins else (slice(0, rows), slice(0, cols))
        index = _append(counts.index, margins_name) if shown_margins else counts.index
        columns = _append(counts.columns, margins_name) if shown_margins else counts.columns

        def frame(values: np.ndarray, dtype: str) -> pd.DataFrame:
            return pd.DataFrame(values[keep], index=index, columns=columns).astype(dtype)

        values = frame(extended, "Int64").mask(frame(suppressed, "bool"))
        return Protection(values, frame(primary, "bool"), frame(secondary, "bool"))
    if isinstance(counts.index, pd.MultiIndex):
        pick = tuple(positions)
    else:
        pick = (np.arange(len(counts)),)

    def series(values: np.ndarray, dtype: str) -> pd.Series:
        return pd.Series(values[pick], index=counts.index, name=counts.name).astype(dtype)

    values = series(extended, "Int64").mask(series(suppressed, "bool"))
    return Protection(values, series(primary, "bool"), series(secondary, "bool"))


def suppress_statistics(
    values: pd.DataFrame | pd.Series, n: pd.DataFrame | pd.Series, policy: Policy
) -> tuple[pd.DataFrame | pd.Series, int]:
    """``values`` with every cell computed from fewer than threshold records missing."""
    n = n.reindex_like(values) if isinstance(values, pd.DataFrame) else n.reindex(values.index)
    small = (n.fillna(0) < policy.threshold).to_numpy()
    had = np.asarray(pd.isna(values))
    table = values.mask(small)
    return table, int(np.sum(small & ~had))


def _dense(counts: pd.Series) -> tuple[np.ndarray, list[np.ndarray]]:
    index = counts.index.remove_unused_levels()
    codes = [np.asarray(c) for c in index.codes]
    if any((c < 0).any() for c in codes):  # missing labels: make them a level of their own
        codes = [np.where(c < 0, len(level), c) for c, level in zip(codes, index.levels, strict=True)]
    shape = tuple(int(c.max()) + 1 if len(c) else 0 for c in codes)
    dense = np.zeros(shape, dtype=float)
    np.add.at(dense, tuple(codes), counts.fillna(0).to_numpy(dtype=float))
    return dense, codes


def _with_totals(dense: np.ndarray) -> np.ndarray:
    """The array with one more slot on every axis holding the total along that axis."""
    extended = dense
    for axis in range(dense.ndim):
        extended = np.concatenate([extended, extended.sum(axis=axis, keepdims=True)], axis=axis)
    return extended


def _complete(values: np.ndarray, primary: np.ndarray, published: np.ndarray) -> np.ndarray:
    """Add suppressions until no line of the table has exactly one suppressed cell."""
    suppressed = primary.copy()
    candidate = published & (values > 0)
    changed = True
    while changed:
        changed = False
        for axis in range(values.ndim):
            length = values.shape[axis]
            s = np.moveaxis(suppressed, axis, -1).reshape(-1, length)
            v = np.moveaxis(values, axis, -1).reshape(-1, length)
            c = np.moveaxis(candidate, axis, -1).reshape(-1, length)
            cost = np.where(c & ~s, v, np.inf)
            fixable = (s.sum(axis=1) == 1) & np.isfinite(cost.min(axis=1))
            if not fixable.any():
                continue
            lines = np.nonzero(fixable)[0]
            s[lines, cost[lines].argmin(axis=1)] = True
            shape = np.moveaxis(suppressed, axis, -1).shape
            suppressed = np.moveaxis(s.reshape(shape), -1, axis)
            changed = True
    return suppressed


def _append(index: pd.Index, name: str) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        label = (name,) + ("",) * (index.nlevels - 1)
        return index.append(pd.MultiIndex.from_tuples([label], names=index.names))
    return index.append(pd.Index([name], name=index.name))
