"""Aggregates of record-level data are protected when they are made.

The pandas entry points that turn records into tables — ``crosstab``, ``pivot_table``,
``value_counts``, ``describe`` and the groupby aggregations — are wrapped. Given record-level
input (see ``kernels.marks``) they return tables whose unsafe cells are already suppressed
(``output_filters.engine.suppress``) and marked ``protected``, so whatever is done with the table
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
from output_filters.engine.ledger import Ledger
from output_filters.engine.suppress import counts_note, protect_counts
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry as patching
from output_filters.policy import Policy
from output_filters.rules import Cells, contributions, judge

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
_ledger: Ledger | None = None
_originals: dict[tuple[Any, str], Callable] = {}
_policy = Policy()


def current_policy() -> Policy:
    """The policy the guards were installed with."""
    return _policy


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


def protected(result, note: str, codes: dict | None = None):
    return mark_protected(result, note, codes)


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


def protect_series(counts: pd.Series, dims: list[pd.Series] | None = None) -> tuple[pd.Series, int, int]:
    """Protect a Series of counts; with the records' ``dims``, jointly with linked tables shown before."""
    protection = protect_counts(counts, _policy, ledger=_ledger if dims else None, dims=dims)
    return protection.table, int(protection.primary.sum()), int(protection.secondary.sum())


def ledger() -> Ledger | None:
    """The session's ledger of count tables shown (None outside a secure kernel)."""
    return _ledger


def record_dims(*values) -> list[pd.Series] | None:
    """The records' dimension Series behind a table (None if they are not all Series of one index)."""
    dims: list[pd.Series] = []
    for value in values:
        dims.extend(value if isinstance(value, list | tuple) else [value])
    if not dims or not all(isinstance(d, pd.Series) for d in dims):
        return None
    if any(not d.index.equals(dims[0].index) for d in dims[1:]):
        return None
    return dims


def group_dims(gb: GroupBy, extra: pd.Series | None = None) -> list[pd.Series] | None:
    """The grouping keys of ``gb`` as Series of the records (plus ``extra``), if they can be had."""
    index = gb.obj.index
    dims = []
    for grouping in gb._grouper.groupings:
        vector = grouping.grouping_vector
        if len(vector) != len(index):
            return None
        dims.append(pd.Series(np.asarray(vector), index=index, name=grouping.name))
    return record_dims(*dims, *([extra] if extra is not None else []))


def _protect_columns(counts: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Each column of ``counts`` is its own count table over the same groups."""
    out, primary, secondary = counts.copy(), 0, 0
    for column in counts.columns:
        out[column], p, s = protect_series(counts[column])
        primary, secondary = primary + p, secondary + s
    return out, primary, secondary


def _key_count(gb: GroupBy) -> int:
    return len(gb._grouper.groupings)


def count_result(result, gb: GroupBy | None = None):
    """Protect a counts result (Series, or DataFrame of count columns; as_index=False too)."""
    if isinstance(result, pd.Series):
        table, p, s = protect_series(result)
    elif gb is not None and not gb.as_index:
        keys = list(result.columns[: _key_count(gb)])
        inner, p, s = _protect_columns(result.set_index(keys))
        table = inner.reset_index()
    else:
        table, p, s = _protect_columns(result)
    return protected(table, counts_note(p, s, _policy))


def _group_counts(original, gb: GroupBy, *args, **kwargs):
    result = original(gb, *args, **kwargs)
    if original.__name__ == "size" and isinstance(result, pd.Series):  # additive: a linked table
        table, p, s = protect_series(result, group_dims(gb))
        return protected(table, counts_note(p, s, _policy))
    return count_result(result, gb)


def _value_counts(original, obj, *args, **kwargs):
    normalize = kwargs.pop("normalize", False)
    counts = original(obj, *args, **kwargs)
    if isinstance(obj, GroupBy):
        dims = group_dims(obj, obj.obj if isinstance(obj.obj, pd.Series) else None)
    elif isinstance(obj, pd.DataFrame):
        subset = args[0] if args else kwargs.get("subset")
        dims = record_dims([obj[c] for c in (subset or obj.columns)])
    else:
        dims = record_dims(obj)
    table, p, s = protect_series(counts, dims if counts.index.nlevels == len(dims or []) else None)
    note = counts_note(p, s, _policy)
    if normalize:
        shares = original(obj, *args, normalize=True, **kwargs)
        if isinstance(counts.index, pd.MultiIndex) and isinstance(obj, GroupBy):  # shares within each group
            sizes = counts.groupby(level=list(range(counts.index.nlevels - 1))).transform("sum")
        else:
            sizes = pd.Series(float(counts.sum()), index=counts.index)
        table = judged(shares.mask(table.isna()), sizes, rate=True)
        mark = table.attrs["enclave"]
        return protected(table, "; ".join(n for n in (note, mark["note"]) if n), mark.get("codes"))
    return protected(table, note)


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


def judged(result, n, *, rate: bool = False, tops: list | None = None, totals=None):
    """``result`` (a statistic per cell, ``n`` records behind each) after every rule."""
    cells = Cells(result, _n_like(n, result), rate=rate, tops=tops or [], totals=totals)
    table, codes, note = judge(cells, _policy)
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


def _magnitude(gb: GroupBy, result) -> tuple[list, Any]:
    """Largest contributions and totals per group, aligned with ``result`` (zeros elsewhere)."""
    columns = [gb.obj.name] if isinstance(gb, SeriesGroupBy) else list(gb._obj_with_exclusions.columns)
    wanted = [c for c in columns if c in _policy.magnitude_columns]
    if not wanted or len(result.index) != gb.ngroups:
        return [], None
    ids = gb.ngroup().to_numpy()
    keep = max(2, _policy.dominance_n)
    tops = [pd.DataFrame(0.0, index=result.index, columns=columns) for _ in range(keep)]
    totals = pd.DataFrame(0.0, index=result.index, columns=columns)
    source = gb.obj if isinstance(gb, SeriesGroupBy) else gb._obj_with_exclusions
    for column in wanted:
        values = source if isinstance(source, pd.Series) else source[column]
        largest, total = contributions(values, ids, gb.ngroups, keep)
        for place, top in enumerate(largest):
            tops[place][column] = top
        totals[column] = total

    def aligned(frame: pd.DataFrame):
        return frame.iloc[:, 0] if isinstance(result, pd.Series) else frame.reindex(columns=result.columns)

    return [aligned(top) for top in tops], aligned(totals)


def _group_statistic(original, gb: GroupBy, *args, **kwargs):
    name = original.__name__
    if name == "sum" and _is_boolean(gb):
        return count_result(original(gb, *args, **kwargs), gb)  # yes/no values: a count of students
    if name in ("median", "quantile") and _policy.median == "fuzzy":
        q = 0.5 if name == "median" else (args[0] if args else kwargs.pop("q", 0.5))
        quantile = _originals[(GroupBy, "quantile")]
        result = fuzzy_quantile(lambda at: quantile(gb, at, **kwargs), q)
    else:
        result = original(gb, *args, **kwargs)
    counts = _originals[(GroupBy, "count")](gb)
    rate = name == "mean" and _is_boolean(gb)
    keys: list = []
    if not gb.as_index and isinstance(result, pd.DataFrame):
        keys = list(result.columns[: _key_count(gb)])
        result, counts = result.set_index(keys), counts.set_index(keys)
    tops, totals = _magnitude(gb, result) if name in ("sum", "mean") else ([], None)
    table = judged(result, counts, rate=rate, tops=tops, totals=totals)
    if keys:
        mark = table.attrs["enclave"]
        return mark_protected(table.reset_index(), mark["note"], mark.get("codes"))
    return table


def _is_boolean(gb: GroupBy) -> bool:
    obj = gb.obj if isinstance(gb, SeriesGroupBy) else gb._obj_with_exclusions
    dtypes = [obj.dtype] if isinstance(obj, pd.Series) else list(obj.dtypes)
    return bool(dtypes) and all(pd.api.types.is_bool_dtype(d) for d in dtypes)


def _refuse(reason: str):
    def handler(original, *args, **kwargs):
        raise DisclosureError(reason)

    return handler


# ---- agg ---------------------------------------------------------------------------------


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
            out[label], p, s = protect_series(frame[label])
            notes.append(counts_note(p, s, _policy))
        else:
            n = counts[source] if isinstance(counts, pd.DataFrame) else counts
            column = judged(frame[label], n)
            out[label] = column
            notes.append(column.attrs["enclave"]["note"])
    table = out if isinstance(result, pd.DataFrame) else out.iloc[:, 0]
    if keys:
        table = table.reset_index()
    return protected(table, "; ".join(n for n in notes if n))


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


# ---- installation -----------------------------------------------------------------------


def install(policy: Policy, linked: bool = True) -> None:
    """Wrap the aggregation entry points (idempotent); ``linked`` keeps a ledger of tables shown."""
    global _policy, _ledger
    _policy = policy
    _ledger = Ledger(policy) if linked else None
    if _originals:
        return
    for name in ("size", "count"):
        _guarded(GroupBy, name, _group_counts)
    for owner in (DataFrameGroupBy, SeriesGroupBy):
        _guarded(owner, "nunique", _group_counts)
        _guarded(owner, "value_counts", _value_counts)
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
    from output_filters.guards import tables

    for owner in (DataFrameGroupBy, SeriesGroupBy, pd.Series, pd.DataFrame):
        _guarded(owner, "describe", tables.describe)
    _guarded(pivot_module, "crosstab", tables.crosstab)
    _guarded(pivot_module, "pivot_table", tables.pivot_table)
    patching.replace(pd, "crosstab", pivot_module.crosstab)
    patching.replace(pd, "pivot_table", pivot_module.pivot_table)


def uninstall() -> None:
    """Restore pandas as it was, propagation wrappers included (for tests)."""
    patching.restore()
    _originals.clear()
