"""Aggregates of record-level data are protected when they are made.

The pandas entry points that turn records into tables — ``crosstab``, ``pivot_table``,
``value_counts``, ``describe`` and the groupby aggregations — are wrapped. Given record-level
input (see ``kernels.marks``) they return tables whose unsafe cells are already suppressed
(``output_filters.suppress``) and marked ``protected``, so whatever is done with the table
next (``to_dict``, ``.loc``, an f-string) is safe too. Results that are one student's value
(min, max, first, last) or that the filter cannot check (custom functions) raise
``DisclosureError``. Anything else is passed through untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

import numpy as np
import pandas as pd
import pandas.core.reshape.pivot as pivot_module
from pandas.core.groupby.generic import DataFrameGroupBy, SeriesGroupBy
from pandas.core.groupby.groupby import GroupBy

from kernels.marks import is_record_level, mark_protected
from output_filters import patching
from output_filters.exceptions import DisclosureError
from output_filters.policy import Policy
from output_filters.suppress import counts_note, protect_counts, suppress_statistics

COUNTS = {"count", "size", "nunique"}
STATISTICS = {"mean", "median", "sum", "std", "var", "sem", "quantile", "prod"}
EXTREMES = {"min", "max", "first", "last", "idxmin", "idxmax"}
# Callables trusted by identity (never by name: a user function may be called "mean").
KNOWN_CALLABLES: dict[Any, str] = {
    len: "size",
    np.size: "size",
    np.mean: "mean",
    np.nanmean: "mean",
    np.median: "median",
    np.nanmedian: "median",
    np.sum: "sum",
    np.nansum: "sum",
    sum: "sum",
    np.std: "std",
    np.var: "var",
    min: "min",
    max: "max",
    np.min: "min",
    np.max: "max",
}
EXTREME_REASON = (
    "the minimum, maximum, first and last values of record-level data are single students' "
    "values and are never shown; use quantiles (e.g. .quantile(0.1)) or describe() instead"
)
CUSTOM_REASON = (
    "the output filter cannot check a custom function applied to record-level data; use "
    "named aggregations such as 'mean', 'median', 'sum', 'count', 'size' or 'nunique'"
)

_state = threading.local()
_originals: dict[tuple[Any, str], Callable] = {}
_policy = Policy()


def kind_of(func: Any) -> str:
    """'count', 'statistic', 'extreme' or 'custom' for an aggregation function."""
    name = func if isinstance(func, str) else KNOWN_CALLABLES.get(func)
    if name in COUNTS:
        return "count"
    if name in STATISTICS:
        return "statistic"
    if name in EXTREMES:
        return "extreme"
    return "custom"


def _protected(result, note: str):
    return mark_protected(result, note)


def _guarded(owner: Any, name: str, handler: Callable) -> None:
    """Replace ``owner.name`` by a wrapper calling ``handler(original, *args)`` on marked input."""
    original = getattr(owner, name)
    _originals[(owner, name)] = original

    @wraps(original)
    def wrapper(*args, **kwargs):
        if getattr(_state, "busy", False) or not _involves_records(args, kwargs):
            return original(*args, **kwargs)
        _state.busy = True  # pandas calls itself internally: check the outer call only
        try:
            return handler(original, *args, **kwargs)
        finally:
            _state.busy = False

    patching.replace(owner, name, wrapper)


def _involves_records(args: tuple, kwargs: dict) -> bool:
    for value in (*args, *kwargs.values()):
        if isinstance(value, GroupBy):
            value = value.obj
        if is_record_level(value):
            return True
        if isinstance(value, list | tuple) and any(is_record_level(v) for v in value):
            return True
    return False


# ---- counts ------------------------------------------------------------------------------


def _protect_series(counts: pd.Series) -> tuple[pd.Series, int, int]:
    protection = protect_counts(counts, _policy)
    return protection.table, int(protection.primary.sum()), int(protection.secondary.sum())


def _protect_columns(counts: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Each column of ``counts`` is its own count table over the same groups."""
    out, primary, secondary = counts.copy(), 0, 0
    for column in counts.columns:
        out[column], p, s = _protect_series(counts[column])
        primary, secondary = primary + p, secondary + s
    return out, primary, secondary


def _key_count(gb: GroupBy) -> int:
    return len(gb._grouper.groupings)


def _count_result(result, gb: GroupBy | None = None):
    """Protect a counts result (Series, or DataFrame of count columns; as_index=False too)."""
    if isinstance(result, pd.Series):
        table, p, s = _protect_series(result)
    elif gb is not None and not gb.as_index:
        keys = list(result.columns[: _key_count(gb)])
        inner, p, s = _protect_columns(result.set_index(keys))
        table = inner.reset_index()
    else:
        table, p, s = _protect_columns(result)
    return _protected(table, counts_note(p, s, _policy))


def _group_counts(original, gb: GroupBy, *args, **kwargs):
    return _count_result(original(gb, *args, **kwargs), gb)


def _value_counts(original, obj, *args, **kwargs):
    normalize = kwargs.pop("normalize", False)
    counts = original(obj, *args, **kwargs)
    table, p, s = _protect_series(counts)
    if normalize:
        shares = original(obj, *args, normalize=True, **kwargs)
        table = shares.mask(table.isna())
    return _protected(table, counts_note(p, s, _policy))


# ---- statistics -------------------------------------------------------------------------


def _n_like(n, result):
    """Counts aligned with ``result`` (quantile adds an index level; as_index=False adds keys)."""
    if isinstance(result, pd.DataFrame) and isinstance(n, pd.DataFrame):
        if not result.index.equals(n.index) and result.index.nlevels > n.index.nlevels:
            n = n.reindex(result.index.droplevel(-1)).set_axis(result.index)
        return n.reindex(columns=result.columns)
    if not result.index.equals(n.index) and result.index.nlevels > n.index.nlevels:
        return n.reindex(result.index.droplevel(-1)).set_axis(result.index)
    return n


def _statistic_result(result, n):
    table, suppressed = suppress_statistics(result, _n_like(n, result), _policy)
    note = ""
    if suppressed:
        note = (
            f"{suppressed} value{'s' if suppressed != 1 else ''} suppressed: computed from "
            f"fewer than {_policy.threshold} records"
        )
    return _protected(table, note)


def _group_statistic(original, gb: GroupBy, *args, **kwargs):
    name = original.__name__
    result = original(gb, *args, **kwargs)
    counts = _originals[(GroupBy, "count")](gb)
    if name == "sum" and _is_boolean(gb):
        return _count_result(result, gb)  # a sum of yes/no values is a count of students
    if not gb.as_index and isinstance(result, pd.DataFrame):
        keys = list(result.columns[: _key_count(gb)])
        inner = _statistic_result(result.set_index(keys), counts.set_index(keys))
        return _protected(inner.reset_index(), inner.attrs["enclave"]["note"])
    return _statistic_result(result, counts)


def _is_boolean(gb: GroupBy) -> bool:
    obj = gb.obj if isinstance(gb, SeriesGroupBy) else gb._obj_with_exclusions
    dtypes = [obj.dtype] if isinstance(obj, pd.Series) else list(obj.dtypes)
    return bool(dtypes) and all(pd.api.types.is_bool_dtype(d) for d in dtypes)


def _refuse(reason: str):
    def handler(original, *args, **kwargs):
        raise DisclosureError(reason)

    return handler


# ---- agg, describe, crosstab, pivot_table ---------------------------------------------


def _group_agg(original, gb: GroupBy, func=None, *args, **kwargs):
    if isinstance(func, str) and not args and not kwargs:
        kind = kind_of(func)
        if kind in ("custom", "extreme"):
            raise DisclosureError(EXTREME_REASON if kind == "extreme" else CUSTOM_REASON)
        _state.busy = False  # dispatch to the wrapped method, which checks its own result
        return getattr(gb, func)()
    funcs = _agg_functions(func, kwargs)
    kinds = {kind_of(f) for f in funcs}
    if "custom" in kinds or not funcs:
        raise DisclosureError(CUSTOM_REASON)
    if "extreme" in kinds:
        raise DisclosureError(EXTREME_REASON)
    result = original(gb, func, *args, **kwargs)
    counts = _originals[(GroupBy, "count")](gb)
    keys: list = []
    if not gb.as_index and isinstance(result, pd.DataFrame):
        keys = list(result.columns[: _key_count(gb)])
        result, counts = result.set_index(keys), counts.set_index(keys)
    frame = result if isinstance(result, pd.DataFrame) else result.to_frame()
    out, notes = frame.copy(), []
    for label in frame.columns:
        source, f = _agg_source(label, func, kwargs, gb)
        if kind_of(f) == "count":
            out[label], p, s = _protect_series(frame[label])
            notes.append(counts_note(p, s, _policy))
        else:
            n = counts[source] if isinstance(counts, pd.DataFrame) else counts
            column = _statistic_result(frame[label], n)
            out[label] = column
            notes.append(column.attrs["enclave"]["note"])
    table = out if isinstance(result, pd.DataFrame) else out.iloc[:, 0]
    if keys:
        table = table.reset_index()
    return _protected(table, "; ".join(n for n in notes if n))


def _agg_functions(func, kwargs: dict) -> list:
    if func is None:  # named aggregation: out=(column, func) or pd.NamedAgg
        return [spec[1] if isinstance(spec, tuple) else spec for spec in kwargs.values()]
    if isinstance(func, dict):
        values = []
        for f in func.values():
            values.extend(f if isinstance(f, list | tuple) else [f])
        return values
    if isinstance(func, list | tuple):
        return list(func)
    return [func]


def _agg_source(label, func, kwargs: dict, gb: GroupBy):
    """(source column, function) behind one output column of an agg result."""
    if func is None:
        spec = kwargs[label]
        return (spec[0], spec[1]) if isinstance(gb, DataFrameGroupBy) else (None, spec)
    if isinstance(label, tuple):
        return label[0], _by_name(label[1], func if not isinstance(func, dict) else func[label[0]])
    if isinstance(func, dict):
        return label, func[label]
    if isinstance(func, list | tuple):
        return None, _by_name(label, func)
    return label, func


def _by_name(label, funcs):
    funcs = funcs if isinstance(funcs, list | tuple) else [funcs]
    for f in funcs:
        if (f if isinstance(f, str) else getattr(f, "__name__", None)) == label:
            return f
    return "custom"


def _describe(original, obj, *args, **kwargs):
    """describe(): counts protected, statistics of small groups suppressed, min/max withheld."""
    result = original(obj, *args, **kwargs)
    notes = ["min and max withheld: they are single students' values"]
    frame = result.to_frame() if isinstance(result, pd.Series) else result
    # Make rows the groups (or the single whole) and columns (column, statistic) pairs.
    wide = frame if isinstance(obj, GroupBy) else frame.T
    flat = not isinstance(wide.columns, pd.MultiIndex)
    if flat:
        wide = wide.set_axis(pd.MultiIndex.from_product([[None], wide.columns]), axis=1)
    out = wide.astype(object)
    for column in dict.fromkeys(label[0] for label in wide.columns):
        block = wide[column]
        size = block["count"].astype(float) if "count" in block else None
        for stat in block.columns:
            label = (column, stat)
            if stat in ("min", "max"):
                out[label] = np.nan
            elif stat in ("count", "unique", "freq"):
                out[label], p, s = _protect_series(block[stat].astype(float))
                if p or s:
                    notes.append(f"{stat}: {counts_note(p, s, _policy)}")
            elif stat == "top":
                out[label] = block[stat].mask(block["freq"].astype(float) < _policy.threshold)
            elif size is not None:
                out[label] = block[stat].mask(size < _policy.threshold)
    if flat:
        out = out.droplevel(0, axis=1)
    table = out if isinstance(obj, GroupBy) else out.T
    if isinstance(result, pd.Series):
        table = table.iloc[:, 0].rename(result.name)
    return _protected(table.infer_objects(), "; ".join(notes))


def _crosstab(
    original,
    index,
    columns,
    values=None,
    rownames=None,
    colnames=None,
    aggfunc=None,
    margins=False,
    margins_name="All",
    dropna=True,
    normalize=False,
):
    names = dict(rownames=rownames, colnames=colnames, dropna=dropna)
    counts = original(index, columns, **names)
    if values is None or kind_of(aggfunc) == "count":
        protection = protect_counts(counts, _policy, margins=margins or bool(normalize), margins_name=margins_name)
        note = protection.note(_policy)
        if not normalize:
            table = protection.table if margins else protection.table.loc[counts.index, counts.columns]
            return _protected(table, note)
        shares = original(index, columns, margins=margins, margins_name=margins_name, normalize=normalize, **names)
        hidden = protection.table.isna().reindex(index=shares.index, columns=shares.columns, fill_value=False)
        return _protected(shares.mask(hidden), note)
    kind = kind_of(aggfunc)
    if kind != "statistic":
        raise DisclosureError(EXTREME_REASON if kind == "extreme" else CUSTOM_REASON)
    both = dict(values=values, margins=margins, margins_name=margins_name, **names)
    result = original(index, columns, aggfunc=aggfunc, normalize=normalize, **both)
    return _statistic_result(result, original(index, columns, aggfunc="count", **both))


def _pivot_table(original, data, values=None, index=None, columns=None, aggfunc="mean", **kwargs):
    if isinstance(aggfunc, list | dict):
        raise DisclosureError("pivot_table over record-level data takes one aggfunc at a time")
    kind = kind_of(aggfunc)
    if kind in ("custom", "extreme"):
        raise DisclosureError(EXTREME_REASON if kind == "extreme" else CUSTOM_REASON)
    where = dict(values=values, index=index, columns=columns)
    if kind == "statistic":
        result = original(data, aggfunc=aggfunc, **where, **kwargs)
        return _statistic_result(result, original(data, aggfunc="count", **where, **kwargs))
    margins = kwargs.pop("margins", False)
    margins_name = kwargs.pop("margins_name", "All")
    counts = original(data, aggfunc=aggfunc, **where, **kwargs)
    if isinstance(counts, pd.DataFrame) and not isinstance(counts.columns, pd.MultiIndex) and columns is not None:
        protection = protect_counts(counts, _policy, margins=margins, margins_name=margins_name)
        return _protected(protection.table, protection.note(_policy))
    if margins:
        raise DisclosureError("pivot_table counts with margins: pivot one value column at a time")
    return _count_result(counts)


# ---- installation -----------------------------------------------------------------------


def install(policy: Policy) -> None:
    """Wrap the aggregation entry points (idempotent)."""
    global _policy
    _policy = policy
    if _originals:
        return
    for name in ("size", "count"):
        _guarded(GroupBy, name, _group_counts)
    for owner in (DataFrameGroupBy, SeriesGroupBy):
        _guarded(owner, "nunique", _group_counts)
        _guarded(owner, "value_counts", _value_counts)
        _guarded(owner, "describe", _describe)
        _guarded(owner, "agg", _group_agg)
        _guarded(owner, "aggregate", _group_agg)
    for name in sorted(STATISTICS):
        _guarded(GroupBy, name, _group_statistic)
    for name in ("min", "max", "first", "last"):
        _guarded(GroupBy, name, _refuse(EXTREME_REASON))
    for owner in (DataFrameGroupBy, SeriesGroupBy):
        for name in ("idxmin", "idxmax"):
            _guarded(owner, name, _refuse(EXTREME_REASON))
    _guarded(GroupBy, "apply", _refuse(CUSTOM_REASON))
    for owner in (pd.Series, pd.DataFrame):
        _guarded(owner, "value_counts", _value_counts)
        _guarded(owner, "describe", _describe)
    _guarded(pivot_module, "crosstab", _crosstab)
    _guarded(pivot_module, "pivot_table", _pivot_table)
    patching.replace(pd, "crosstab", pivot_module.crosstab)
    patching.replace(pd, "pivot_table", pivot_module.pivot_table)


def uninstall() -> None:
    """Restore pandas as it was, propagation wrappers included (for tests)."""
    patching.restore()
    _originals.clear()
