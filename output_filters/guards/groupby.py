"""Groupby aggregations of record-level data, protected when they are made.

Counts per group (``size``, ``count``, ``value_counts``, a sum of yes/no values) are count
tables decided by the ledger (``output_filters.guards.counting``); a mean of a yes/no column
is a rate, shown only where its count table shows both the yes-count and the group;
other statistics go through the rules (``output_filters.guards.statistics``); single
students' values (``min``, ``max``, ``first``, ``last``, ``nth``, ``ohlc``, ``idxmin``...) and
custom functions are refused. ``agg`` in every form (a name, a list, a dict, named
aggregations) is taken apart into single (column, function) pieces that go through the same
paths, and put back together in pandas' own layout.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
from pandas.core.groupby.generic import DataFrameGroupBy, SeriesGroupBy
from pandas.core.groupby.groupby import GroupBy

from kernels.marks import is_record_level, mark_of, mark_protected, mark_record_level
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry, shares
from output_filters.guards.counting import count_table
from output_filters.guards.functions import (
    CUSTOM_REASON,
    EXTREME_REASON,
    as_flag,
    is_flag,
    kind_of,
    name_of,
)
from output_filters.guards.records import group_dims
from output_filters.guards.statistics import fuzzy_quantile, judged, magnitude
from output_filters.session import FilterSession

STATISTICS = ("mean", "median", "sum", "std", "var", "sem", "quantile", "prod")
SERIES_STATISTICS = ("skew", "kurt")
EXTREMES = ("min", "max", "first", "last", "ohlc", "nth")
ROW_WISE = ("rank", "cumsum", "cumcount", "cummax", "cummin", "cumprod", "pct_change", "ffill", "bfill")


def _on_records(gb, *args, **kwargs) -> bool:
    return isinstance(gb, GroupBy) and is_record_level(gb.obj)


def _indexed(gb: GroupBy) -> GroupBy:
    """The same grouping with ``as_index=True`` (results are indexed by the groups)."""
    if gb.as_index:
        return gb
    twin = gb.obj.groupby(gb._grouper, as_index=True, sort=gb.sort, dropna=gb.dropna, observed=gb.observed)
    selection = getattr(gb, "_selection", None)
    return twin[selection] if selection is not None and isinstance(gb.obj, pd.DataFrame) else twin


def _keyed(gb: GroupBy, result):
    """Back to ``as_index=False`` layout if ``gb`` asked for it."""
    if gb.as_index or not isinstance(result, pd.Series | pd.DataFrame):
        return result
    mark = mark_of(result) or {}
    out = result.reset_index()
    return mark_protected(out, mark.get("note", ""), mark.get("codes"))


def _columns(gb: GroupBy) -> list:
    return [gb.obj.name] if isinstance(gb, SeriesGroupBy) else list(gb._obj_with_exclusions.columns)


def _column(gb: GroupBy, name) -> pd.Series:
    return gb.obj if isinstance(gb, SeriesGroupBy) else gb._obj_with_exclusions[name]


# ---- counts -------------------------------------------------------------------------------


def size(session: FilterSession, original, gb: GroupBy, *args, **kwargs):
    indexed = _indexed(gb)
    counts = registry.original(GroupBy, "size")(indexed)
    table = count_table(session, counts, group_dims(indexed), sources=(gb.obj,), dropna=gb.dropna)
    return _keyed(gb, table.marked(session))


def count(session: FilterSession, original, gb: GroupBy, *args, **kwargs):
    """Non-missing values per group: each column its own count table over the records that have one."""
    indexed = _indexed(gb)
    result = original(indexed, *args, **kwargs)
    return _keyed(gb, _per_column(session, indexed, result, _count_column))


def _count_column(session: FilterSession, gb: GroupBy, name, counts: pd.Series):
    values = _column(gb, name)
    present = values.notna()
    dims = group_dims(gb)
    dims = [d[present] for d in dims] if dims else None
    table = count_table(session, counts, dims, sources=(gb.obj,), dropna=gb.dropna)
    return table.table, table.note(session), None


def nunique(session: FilterSession, original, gb: GroupBy, *args, **kwargs):
    """Distinct values per group: of an identifier, a count of people (protected, alone); of an
    attribute, a number of categories, shown as it is."""
    indexed = _indexed(gb)
    result = original(indexed, *args, **kwargs)

    def column(session, gb, name, values):
        if name in session.policy.identifiers:
            table = count_table(session, values, None)
            return table.table, table.note(session), None
        return values, "", None

    return _keyed(gb, _per_column(session, indexed, result, column))


def value_counts(session: FilterSession, original, gb: GroupBy, subset=None, normalize=False, **kwargs):
    """Counts of each value within each group; shares within each group with ``normalize``."""
    if kwargs.get("bins") is not None:
        raise DisclosureError("value_counts with bins over groups: cut the values first (pd.cut), then count them")
    indexed = _indexed(gb)
    counts = (
        original(indexed, subset=subset, normalize=False, **kwargs)
        if isinstance(gb, DataFrameGroupBy)
        else original(indexed, normalize=False, **kwargs)
    )
    if isinstance(gb, SeriesGroupBy):
        extra = [gb.obj]
    else:
        names = subset if subset is not None else [c for c in gb._obj_with_exclusions.columns]
        extra = [gb._obj_with_exclusions[c] for c in names]
    dims = group_dims(indexed)
    dims = dims + extra if dims is not None else None
    table = count_table(session, counts, dims, sources=(gb.obj,), dropna=kwargs.get("dropna", True))
    if not normalize:
        return _keyed(gb, table.marked(session))
    groups = len(gb._grouper.groupings)
    result = shares.within(session, table, counts, groups)
    return _keyed(gb, result)


# ---- statistics ----------------------------------------------------------------------------


def statistic(session: FilterSession, original, gb: GroupBy, *args, **kwargs):
    """A statistic per group and column; yes/no columns give rates (mean) and counts (sum)."""
    name = original.__name__
    indexed = _indexed(gb)
    if name in ("median", "quantile") and session.policy.median == "fuzzy":
        q = 0.5 if name == "median" else (args[0] if args else kwargs.pop("q", 0.5))
        quantile = registry.original(GroupBy, "quantile")
        result = fuzzy_quantile(lambda at: quantile(indexed, at, **kwargs), q)
    else:
        result = original(indexed, *args, **kwargs)
    counts = registry.original(GroupBy, "count")(indexed)

    def column(session, gb, label, values):
        source = _column(gb, label)
        if name in ("mean", "sum") and is_flag(source) and values.index.equals(counts.index):
            return _flag_column(session, gb, source, name, values)
        n = counts[label] if isinstance(counts, pd.DataFrame) else counts
        tops, totals = magnitude(session, gb, values) if name in ("sum", "mean") else ([], None)
        table = judged(session, values, n, tops=tops, totals=totals)
        mark = mark_of(table) or {}
        return table, mark.get("note", ""), mark.get("codes")

    return _keyed(gb, _per_column(session, indexed, result, column))


def _flag_column(session: FilterSession, gb: GroupBy, source: pd.Series, name: str, values: pd.Series):
    """A yes/no column's sum (a count) or mean (a rate) per group, from its count table."""
    present = source.notna()
    dims = group_dims(gb)
    flag = as_flag(source[present]).rename(source.name)
    if dims is None:  # the groups cannot be followed to the records: the table by itself
        if name == "sum":
            table = count_table(session, values, None)
            return table.table, table.note(session), None
        n = registry.original(GroupBy, "count")(gb)
        rates = judged(session, values, n[source.name] if isinstance(n, pd.DataFrame) else n, rate=True)
        mark = mark_of(rates) or {}
        return rates, mark.get("note", ""), mark.get("codes")
    dims = [d[present] for d in dims] + [flag]
    frame = pd.DataFrame({i: d.to_numpy() for i, d in enumerate(dims)}, index=flag.index)
    counts = frame.groupby(list(range(len(dims))), dropna=gb.dropna).size()
    counts.index = counts.index.set_names([d.name for d in dims])
    table = count_table(session, counts, dims, sources=(gb.obj,), dropna=gb.dropna)
    return shares.flag_column(session, table, values, name)


def refused(reason: str):
    def handler(original, *args, **kwargs):
        raise DisclosureError(reason, rule="extremes" if reason is EXTREME_REASON else "custom functions")

    return handler


def unique(session: FilterSession, original, gb: SeriesGroupBy, *args, **kwargs):
    """Distinct values per group: categories of an attribute may be listed; values of a number
    or an identifier are single students' values."""
    values = gb.obj
    identifier = values.name in session.policy.identifiers
    if pd.api.types.is_numeric_dtype(values.dtype) and not is_flag(values) or identifier:
        raise DisclosureError(EXTREME_REASON, rule="extremes")
    result = original(gb, *args, **kwargs)
    return mark_protected(result, "")


def still_records(original, gb: GroupBy, *args, **kwargs):
    """Row-wise results (ranks, running sums, fills) are one value per record: still records."""
    result = original(gb, *args, **kwargs)
    if isinstance(result, pd.Series | pd.DataFrame):
        mark = mark_of(gb.obj) or {}
        mark_record_level(result, mark.get("source", ""), mark.get("universe"))
    return result


# ---- agg -----------------------------------------------------------------------------------


def aggregate(session: FilterSession, original, gb: GroupBy, func=None, *args, **kwargs):
    """``agg`` in any form, piece by piece through the paths above."""
    if isinstance(func, str) and not args and not kwargs:
        _check_kind(func)
        with registry.released():
            return getattr(gb, func)()
    pieces = _pieces(gb, func, kwargs)
    for _label, _column_name, f in pieces:
        _check_kind(f)
    layout = original(gb, func, *args, **kwargs)
    indexed = _indexed(gb)
    frame = layout if isinstance(layout, pd.DataFrame) else layout.to_frame()
    if not gb.as_index:
        keys = list(frame.columns[: len(gb._grouper.groupings)])
        frame = frame.set_index(keys)
    out = frame.astype(object).copy()
    notes, codes = [], {}
    for label, column_name, f in pieces:
        target = indexed if column_name is None else indexed[column_name]
        with registry.released():
            piece = getattr(target, name_of(f))()
        mark = mark_of(piece) or {}
        if isinstance(piece, pd.DataFrame):
            piece = piece.iloc[:, 0]
        out[label] = piece.reindex(out.index)
        notes.append(mark.get("note", ""))
        for cell, code in (mark.get("codes") or {}).items():
            codes[(cell, label)] = code
    out = out.infer_objects()
    table = out if isinstance(layout, pd.DataFrame) else out.iloc[:, 0].rename(layout.name)
    if not gb.as_index:
        table = table.reset_index()
    return mark_protected(table, _labelled(pieces, notes), codes)


def _labelled(pieces: list[tuple], notes: list[str]) -> str:
    """One note per distinct reason, naming the columns it is for ("sum, mean: 3 cells ...")."""
    by_note: dict[str, list[str]] = {}
    for (label, _column, _f), note in zip(pieces, notes, strict=True):
        if note:
            name = " ".join(map(str, label)) if isinstance(label, tuple) else str(label)
            by_note.setdefault(note, []).append(name)
    if len(by_note) == 1:
        return next(iter(by_note))
    return "; ".join(f"{', '.join(columns)}: {note}" for note, columns in by_note.items())


def _check_kind(func) -> None:
    kind = kind_of(func)
    if kind == "extreme":
        raise DisclosureError(EXTREME_REASON, rule="extremes")
    if kind == "custom":
        raise DisclosureError(CUSTOM_REASON, rule="custom functions")


def _pieces(gb: GroupBy, func, kwargs: dict) -> list[tuple]:
    """(output column label, source column or None, function) for every column ``agg`` makes."""
    series = isinstance(gb, SeriesGroupBy)
    if func is None:  # named aggregation: out=(column, func), or out=func for a SeriesGroupBy
        pieces = []
        for out, spec in kwargs.items():
            if series:
                pieces.append((out, None, spec))
            else:
                column, f = (spec.column, spec.aggfunc) if hasattr(spec, "aggfunc") else spec
                pieces.append((out, column, f))
        return pieces
    if isinstance(func, dict):
        lists = any(isinstance(f, list | tuple) for f in func.values())
        pieces = []
        for column, fs in func.items():
            for f in fs if isinstance(fs, list | tuple) else [fs]:
                pieces.append(((column, _label(f)) if lists else column, column, f))
        return pieces
    funcs = list(func) if isinstance(func, list | tuple) else [func]
    if series:
        return [(_label(f), None, f) for f in funcs]
    return [((column, _label(f)), column, f) for column in _columns(gb) for f in funcs]


def _label(func) -> str:
    return func if isinstance(func, str) else getattr(func, "__name__", str(func))


# ---- shared --------------------------------------------------------------------------------


def _per_column(session: FilterSession, gb: GroupBy, result, decide):
    """Apply ``decide(session, gb, column, values) -> (values, note, codes)`` to each result column."""
    if isinstance(result, pd.Series):
        name = gb.obj.name if isinstance(gb, SeriesGroupBy) else result.name
        table, note, codes = decide(session, gb, name, result)
        return mark_protected(table.rename(result.name), note, codes)
    out, notes, codes = result.copy(), [], {}
    for label in result.columns:
        source = label if label in _columns(gb) else (label[0] if isinstance(label, tuple) else label)
        table, note, column_codes = decide(session, gb, source, result[label])
        out[label] = table
        notes.append(note)
        for cell, code in (column_codes or {}).items():
            codes[(cell, label)] = code
    return mark_protected(out, "; ".join(dict.fromkeys(n for n in notes if n)), codes)


def install(session: FilterSession) -> None:
    """Wrap the groupby aggregations (idempotent)."""
    bound = {
        "size": partial(size, session),
        "count": partial(count, session),
    }
    for name, handler in bound.items():
        registry.guard(GroupBy, name, handler, when=_on_records, outermost=True)
    for name in STATISTICS:
        registry.guard(GroupBy, name, partial(statistic, session), when=_on_records, outermost=True)
    for name in EXTREMES:
        registry.guard(GroupBy, name, refused(EXTREME_REASON), when=_on_records, outermost=True)
    registry.guard(GroupBy, "apply", refused(CUSTOM_REASON), when=_on_records, outermost=True)
    for name in ROW_WISE:
        registry.guard(GroupBy, name, still_records, when=_on_records, outermost=True)
    for owner in (DataFrameGroupBy, SeriesGroupBy):
        registry.guard(owner, "nunique", partial(nunique, session), when=_on_records, outermost=True)
        registry.guard(owner, "value_counts", partial(value_counts, session), when=_on_records, outermost=True)
        for name in ("agg", "aggregate"):
            registry.guard(owner, name, partial(aggregate, session), when=_on_records, outermost=True)
        for name in SERIES_STATISTICS:
            registry.guard(owner, name, partial(statistic, session), when=_on_records, outermost=True)
        for name in ("idxmin", "idxmax"):
            registry.guard(owner, name, refused(EXTREME_REASON), when=_on_records, outermost=True)
        for name in ("corr", "cov"):
            registry.guard(owner, name, partial(pairwise, session), when=_on_records, outermost=True)
    registry.guard(SeriesGroupBy, "apply", refused(CUSTOM_REASON), when=_on_records, outermost=True)
    registry.guard(SeriesGroupBy, "unique", partial(unique, session), when=_on_records, outermost=True)
    registry.guard(DataFrameGroupBy, "corrwith", partial(pairwise, session), when=_on_records, outermost=True)


def pairwise(session: FilterSession, original, gb: GroupBy, *args, **kwargs):
    """Correlations and covariances per group: suppressed for groups of fewer than threshold records."""
    indexed = _indexed(gb)
    result = original(indexed, *args, **kwargs)
    sizes = registry.original(GroupBy, "size")(indexed)
    levels = len(gb._grouper.groupings)
    if isinstance(result.index, pd.MultiIndex) and result.index.nlevels > levels:
        n = sizes.reindex(result.index.droplevel(list(range(levels, result.index.nlevels)))).set_axis(result.index)
    else:
        n = sizes.reindex(result.index)
    if isinstance(result, pd.DataFrame):
        n = pd.DataFrame({c: n for c in result.columns}, index=result.index)
    return _keyed(gb, judged(session, result, n))
