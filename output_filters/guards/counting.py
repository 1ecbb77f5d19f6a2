"""Count tables of record-level data, decided by the ledger and laid out as pandas made them.

Every count a guard publishes — a crosstab, a ``value_counts``, a groupby ``size``, the count
row of ``describe``, a sum of yes/no values, the numerators and denominators behind a rate —
goes through ``count_table``: the records behind it go to the session's ledger
(``output_filters.engine.ledger``), which decides each cell together with every count table
shown before over the same records, and the answer is laid out like the table pandas
computed (its labels, its order, its margins if asked for). Records that cannot be told apart
(a frame whose labels were replaced) are protected as a table alone.

``Counts.lookup`` gives any cell of the decided table, margins included (``MARGIN`` for an
axis summed over); shares and rates are computed from it (``output_filters.guards.shares``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kernels.marks import mark_protected
from output_filters.engine.linear_system import ALL
from output_filters.engine.record_set import MARGIN
from output_filters.engine.secondary import protect, suppression_note
from output_filters.exceptions import DisclosureError
from output_filters.guards.records import counted
from output_filters.rules import small_count
from output_filters.session import FilterSession


@dataclass(frozen=True)
class Counts:
    """A published count table and its suppressions; ``lookup`` reads any of its cells."""

    table: pd.DataFrame | pd.Series
    primary: pd.DataFrame | pd.Series
    secondary: pd.DataFrame | pd.Series
    lookup: Callable[[tuple], float]  # labels per axis (MARGIN: summed) -> value, NaN if suppressed
    linked: tuple[str, ...] = ()

    def note(self, session: FilterSession) -> str:
        primary = int(np.asarray(self.primary).sum())
        secondary = int(np.asarray(self.secondary).sum())
        text = suppression_note(primary, secondary, session.policy)
        if secondary and self.linked:
            text += f" and the tables of {', '.join(self.linked)}"
        return text

    def marked(self, session: FilterSession, extra: str = "", codes: dict | None = None):
        """The table marked protected, with its note (and ``extra``)."""
        return mark_protected(self.table, "; ".join(n for n in (self.note(session), extra) if n), codes)


def count_table(
    session: FilterSession,
    counts: pd.DataFrame | pd.Series,
    dims: list[pd.Series] | None,
    *,
    sources: tuple = (),
    margins: bool = False,
    margins_name: str = "All",
    dropna: bool = True,
) -> Counts:
    """Protect ``counts`` (as pandas computed it from ``dims``, in axis order)."""
    found = counted(dims, sources, dropna) if dims else None
    if found is None:
        lookup, primary_of, linked = _alone(counts, session), None, ()
    else:
        try:
            publication = session.ledger.publish(found.universe, found.labels, found.dims)
        except DisclosureError as error:
            error.source = error.source or found.universe.removeprefix("table:")
            raise
        lookup, primary_of, linked = publication.value, publication.is_primary, publication.linked
    if primary_of is None:

        def primary_of(key: tuple) -> bool:
            return bool(small_count(_true_value(counts, key), session.policy))

    if not session.policy.show_zeros:  # zero cells are hidden too (README: show_zeros)
        shown = lookup

        def lookup(key: tuple) -> float:
            value = shown(key)
            return float("nan") if value == 0 else value

    if isinstance(counts, pd.Series):
        keys = [_flat(label) for label in counts.index]
        table = pd.Series([lookup(k) for k in keys], index=counts.index, name=counts.name, dtype="float64")
        first = pd.Series([primary_of(k) for k in keys], index=counts.index, dtype=bool)
    else:
        rows = _with_margin(counts.index, margins, margins_name)
        cols = _with_margin(counts.columns, margins, margins_name)
        row_keys = [_key(r, counts.index.nlevels, margins and i == len(rows) - 1) for i, r in enumerate(rows)]
        col_keys = [_key(c, counts.columns.nlevels, margins and j == len(cols) - 1) for j, c in enumerate(cols)]
        table = pd.DataFrame(
            [[lookup((*r, *c)) for c in col_keys] for r in row_keys], index=rows, columns=cols, dtype="float64"
        )
        first = pd.DataFrame(
            [[primary_of((*r, *c)) for c in col_keys] for r in row_keys], index=rows, columns=cols, dtype=bool
        )
    hidden = table.isna()
    first = first & hidden
    published = table.round().astype("Int64").mask(hidden)
    result = Counts(published, first.astype(bool), (hidden & ~first).astype(bool), lookup, linked)
    primary = int(np.asarray(result.primary).sum())
    secondary = int(np.asarray(hidden).sum()) - primary
    session.record("counts", int(np.size(hidden)), primary, secondary, 0, result.note(session))
    return result


def count_of(session: FilterSession, records: pd.Series | pd.DataFrame) -> float:
    """The number of ``records`` (a subset of a record set) as the ledger decides it: NaN if it
    must be suppressed (small, or it would give a small cell away by difference)."""
    found = counted([], (records,))
    n = float(len(records.index))
    if found is None:
        return float("nan") if small_count(n, session.policy) else n
    return session.ledger.publish(found.universe, found.labels, []).value(())


def _flat(label) -> tuple:
    return label if isinstance(label, tuple) else (label,)


def _key(label, levels: int, margin: bool) -> tuple:
    return (MARGIN,) * levels if margin else _flat(label)


def _with_margin(index: pd.Index, margins: bool, margins_name: str) -> pd.Index:
    if not margins:
        return index
    if isinstance(index, pd.MultiIndex):
        label = (margins_name,) + ("",) * (index.nlevels - 1)
        return index.append(pd.MultiIndex.from_tuples([label], names=index.names))
    return index.append(pd.Index([margins_name], name=index.name))


def _as_series(counts: pd.DataFrame | pd.Series) -> pd.Series:
    """The counts as one Series over every dimension (a DataFrame's columns stacked)."""
    if isinstance(counts, pd.Series):
        series = counts.copy()
    else:
        series = counts.stack(list(range(counts.columns.nlevels)), future_stack=True)
    levels = series.index.nlevels
    series.index = series.index.set_names([f"level_{i}" for i in range(levels)]) if levels > 1 else series.index
    return series.astype("float64").fillna(0.0)


def _alone(counts: pd.DataFrame | pd.Series, session: FilterSession) -> Callable[[tuple], float]:
    """A lookup into the table protected by itself (its records could not be told apart)."""
    series = _as_series(counts)
    if isinstance(series.index, pd.MultiIndex):
        series = series.groupby(level=list(range(series.index.nlevels))).sum()  # no duplicate labels
    full = protect(series, session.policy).table
    values = {(_flat(label)): (np.nan if pd.isna(value) else float(value)) for label, value in full.items()}

    def lookup(key: tuple) -> float:
        return values.get(tuple(ALL if k is MARGIN else k for k in key), 0.0)

    return lookup


def _true_value(counts: pd.DataFrame | pd.Series, key: tuple) -> float:
    series = _as_series(counts)
    mask = np.ones(len(series), dtype=bool)
    for level, label in enumerate(key):
        if label is not MARGIN:
            values = series.index.get_level_values(level) if series.index.nlevels > 1 else series.index
            mask &= np.asarray(values == label)
    return float(series[mask].sum())
