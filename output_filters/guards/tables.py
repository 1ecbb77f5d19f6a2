"""Tables of record-level data: ``crosstab``, ``pivot_table`` and ``value_counts`` (``describe``:
``output_filters.guards.describe``).

Counts are count tables decided by the ledger (``output_filters.guards.counting``), shares and
rates come from them (``output_filters.guards.shares``), other statistics go through the rules,
min and max are withheld. Several values or functions at once (lists, dicts) are taken apart
into single (value, function) tables that go through the same paths, then laid out as pandas
lays them out.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pandas.core.reshape.pivot as pivot_module
from pandas.core.groupby.generic import DataFrameGroupBy, SeriesGroupBy

from kernels.marks import is_record_level, mark_of, mark_protected
from output_filters.engine.record_set import MARGIN
from output_filters.exceptions import DisclosureError
from output_filters.guards import describe, registry, shares
from output_filters.guards.counting import count_table
from output_filters.guards.functions import CUSTOM_REASON, EXTREME_REASON, as_flag, is_flag, kind_of, name_of
from output_filters.guards.records import involves_records, record_dims
from output_filters.guards.statistics import absolute_sum, judged, nth_largest
from output_filters.session import FilterSession


def _list(keys) -> list:
    if keys is None:
        return []
    return list(keys) if isinstance(keys, list | tuple) else [keys]


def _check(func) -> None:
    kind = kind_of(func)
    if kind == "extreme":
        raise DisclosureError(EXTREME_REASON, rule="extremes")
    if kind == "custom":
        raise DisclosureError(CUSTOM_REASON, rule="custom functions")


def _fuzzy_median(series: pd.Series) -> float:
    return (series.quantile(0.45) + series.quantile(0.55)) / 2


def _flag_counts(dims: list[pd.Series]) -> pd.Series:
    frame = pd.DataFrame({i: d.to_numpy() for i, d in enumerate(dims)}, index=dims[0].index)
    counts = frame.groupby(list(range(len(dims)))).size()
    counts.index = counts.index.set_names([d.name for d in dims]) if counts.index.nlevels > 1 else counts.index
    return counts


def _rate_layout(session, layout: pd.DataFrame, counts, name: str, margins_name: str):
    """Each cell of a crosstab/pivot of a yes/no column: its yes-count or rate, from ``counts``."""

    def key(label, levels: int) -> tuple:
        flat = label if isinstance(label, tuple) else (label,)
        if flat and flat[0] == margins_name and all(x in (margins_name, "") for x in flat):
            return (MARGIN,) * levels
        return flat

    values = np.full(layout.shape, np.nan)
    n = np.zeros(layout.shape)
    for i, r in enumerate(layout.index):
        for j, c in enumerate(layout.columns):
            cell = (*key(r, layout.index.nlevels), *key(c, layout.columns.nlevels))
            yes, total = counts.lookup((*cell, True)), counts.lookup((*cell, MARGIN))
            values[i, j] = yes if name == "sum" else (yes / total if total and not np.isnan(total) else np.nan)
            n[i, j] = 0.0 if np.isnan(total) else total
    frame = pd.DataFrame(values, index=layout.index, columns=layout.columns)
    if name == "sum":
        return counts_marked(session, frame.round().astype("Int64").mask(frame.isna()), counts)
    denominators = pd.DataFrame(n, index=layout.index, columns=layout.columns)
    return judged_with(session, frame, denominators, counts)


def counts_marked(session, table, counts):
    return mark_protected(table, counts.note(session))


def judged_with(session, frame, n, counts):
    table = judged(session, frame, n, rate=True)
    mark = mark_of(table) or {}
    note = "; ".join(x for x in (counts.note(session), mark.get("note", "")) if x)
    return mark_protected(table, note, mark.get("codes"))


# ---- crosstab -------------------------------------------------------------------------------


def crosstab(
    session: FilterSession,
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
    if values is not None and isinstance(aggfunc, list | tuple):
        for func in aggfunc:
            _check(func)
        pieces, notes = [], []
        for func in aggfunc:
            with registry.released():
                piece = pd.crosstab(
                    index,
                    columns,
                    values=values,
                    aggfunc=func,
                    margins=margins,
                    margins_name=margins_name,
                    normalize=normalize,
                    **names,
                )
            pieces.append(piece)
            notes.append((mark_of(piece) or {}).get("note", ""))
        table = pd.concat(pieces, axis=1, keys=[_label(f) for f in aggfunc])
        return mark_protected(table, "; ".join(dict.fromkeys(n for n in notes if n)))
    rows, cols = _list(index), _list(columns)
    if values is None or kind_of(aggfunc) == "count":
        present = pd.Series(True, index=rows[0].index) if values is None else pd.Series(values).notna()
        counts = (
            original(index, columns, **names)
            if values is None
            else original(index, columns, values=values, aggfunc="count", **names).fillna(0)
        )
        dims = record_dims(rows, cols)
        dims = [d[present.to_numpy()] for d in dims] if dims and values is not None else dims
        table = count_table(
            session,
            counts,
            dims,
            sources=(*rows, *cols),
            margins=margins or bool(normalize),
            margins_name=margins_name,
            dropna=dropna,
        )
        if not normalize:
            return (
                table.marked(session)
                if margins
                else mark_protected(table.table.loc[counts.index, counts.columns], table.note(session))
            )
        layout = original(index, columns, margins=margins, margins_name=margins_name, normalize=normalize, **names)
        return shares.normalized(session, table, layout, normalize, margins_name)
    _check(aggfunc)
    name = name_of(aggfunc)
    both = dict(values=values, margins=margins, margins_name=margins_name, **names)
    values_series = values if isinstance(values, pd.Series) else pd.Series(values, index=rows[0].index)
    if name in ("mean", "sum") and is_flag(values_series):
        present = values_series.notna()
        dims = record_dims(rows, cols)
        layout = original(index, columns, aggfunc=aggfunc, **both)
        if dims is not None:
            flag = as_flag(values_series[present]).rename(values_series.name)
            flag_dims = [d[present.to_numpy()] for d in dims] + [flag]
            counts = count_table(session, _flag_counts(flag_dims), flag_dims, sources=(*rows, *cols))
            return _rate_layout(session, layout, counts, name, margins_name)
    function = _fuzzy_median if name == "median" and session.policy.median == "fuzzy" else aggfunc
    result = original(index, columns, aggfunc=function, **both)
    tops, totals = [], None
    if name in ("sum", "mean") and getattr(values, "name", None) in session.policy.magnitude_columns:
        places = range(max(2, session.policy.dominance_n))
        tops = [original(index, columns, aggfunc=nth_largest(p), **both) for p in places]
        totals = original(index, columns, aggfunc=absolute_sum, **both)
    return judged(session, result, original(index, columns, aggfunc="count", **both), tops=tops, totals=totals)


def _label(func) -> str:
    return func if isinstance(func, str) else getattr(func, "__name__", str(func))


# ---- pivot_table ----------------------------------------------------------------------------


def pivot_table(session: FilterSession, original, data, values=None, index=None, columns=None, aggfunc="mean", **kw):
    funcs = _funcs(values, aggfunc)
    for _value, func in funcs:
        _check(func)
    single_value = values is None or isinstance(values, str) or not isinstance(values, list | tuple)
    if len(funcs) == 1 and (single_value or len(_list(values)) == 1) and not isinstance(aggfunc, dict | list):
        value, func = funcs[0]
        table = _single_pivot(session, original, data, value, index, columns, func, **kw)
        if not single_value and columns is not None and isinstance(table, pd.DataFrame):  # values=["x"]
            mark = mark_of(table) or {}
            table = mark_protected(pd.concat({value: table}, axis=1), mark.get("note", ""), mark.get("codes"))
        return table
    layout = original(data, values=values, index=index, columns=columns, aggfunc=aggfunc, **kw)
    pieces = {}
    for value, func in funcs:
        with registry.released():
            pieces[(value, _label(func))] = pd.pivot_table(
                data, values=value, index=index, columns=columns, aggfunc=func, **kw
            )
    out = layout.astype(object).copy()
    n_columns = len(_list(columns))
    notes = []
    for label in layout.columns:
        flat = label if isinstance(label, tuple) else (label,)
        lead, tail = flat[: len(flat) - n_columns], flat[len(flat) - n_columns :]
        piece = _matching(pieces, lead)
        column = (
            piece
            if isinstance(piece, pd.Series)
            else (piece[tail if len(tail) > 1 else tail[0]] if tail else piece.iloc[:, 0])
        )
        out[label] = column.reindex(layout.index)
    for piece in pieces.values():
        notes.append((mark_of(piece) or {}).get("note", ""))
    return mark_protected(out.infer_objects(), "; ".join(dict.fromkeys(n for n in notes if n)))


def _funcs(values, aggfunc) -> list[tuple]:
    """(value column, function) pairs of a pivot_table call."""
    if isinstance(aggfunc, dict):
        out = []
        for value, fs in aggfunc.items():
            out.extend((value, f) for f in (fs if isinstance(fs, list | tuple) else [fs]))
        return out
    funcs = list(aggfunc) if isinstance(aggfunc, list | tuple) else [aggfunc]
    names = _list(values) or [None]
    return [(v, f) for f in funcs for v in names]


def _matching(pieces: dict, lead: tuple):
    """The piece a layout column belongs to, by the value and function names in its label."""
    values = {v for v, _ in pieces}
    funcs = {f for _, f in pieces}
    for (value, func), piece in pieces.items():
        if (len(values) == 1 or value in lead) and (len(funcs) == 1 or func in lead):
            return piece
    raise DisclosureError(f"pivot_table: cannot tell which value and function make column {lead!r}")


def _single_pivot(session, original, data, value, index, columns, func, **kw):
    name = name_of(func)
    margins = kw.pop("margins", False)
    margins_name = kw.pop("margins_name", "All")
    dropna = kw.get("dropna", True)
    where = dict(values=value, index=index, columns=columns)
    keys = [*_list(index), *_list(columns)]
    try:
        dims = record_dims(*(data[k] for k in keys)) if keys else None
    except (KeyError, TypeError, ValueError):  # keys that are not columns (Groupers, arrays): not followed
        dims = None
    if kind_of(func) == "count":
        counts = original(data, aggfunc=func, **where, **kw)
        squeeze = isinstance(counts, pd.DataFrame) and value is not None and isinstance(counts.columns, pd.MultiIndex)
        if squeeze:
            counts = counts.droplevel(0, axis=1)
        if name == "count" and value is not None and dims is not None:
            present = data[value].notna().to_numpy()
            dims = [d[present] for d in dims]
        if isinstance(counts, pd.DataFrame) and columns is None:
            counts = counts.iloc[:, 0]
        table = count_table(
            session,
            counts.fillna(0),
            dims,
            sources=(data,),
            margins=margins and isinstance(counts, pd.DataFrame),
            margins_name=margins_name,
            dropna=dropna,
        )
        return table.marked(session)
    full = dict(where, margins=margins, margins_name=margins_name, **kw)
    if name in ("mean", "sum") and value is not None and is_flag(data[value]) and dims is not None:
        present = data[value].notna().to_numpy()
        flag = as_flag(data[value][present]).rename(value)
        flag_dims = [d[present] for d in dims] + [flag]
        counts = count_table(session, _flag_counts(flag_dims), flag_dims, sources=(data,))
        layout = original(data, aggfunc=func, **full)
        if isinstance(layout, pd.Series):
            layout = layout.to_frame()
        return _rate_layout(session, layout, counts, name, margins_name)
    function = _fuzzy_median if name == "median" and session.policy.median == "fuzzy" else func
    result = original(data, aggfunc=function, **full)
    n = original(data, aggfunc="count", **full)
    tops, totals = [], None
    if name in ("sum", "mean") and value in session.policy.magnitude_columns:
        tops = [original(data, aggfunc=nth_largest(p), **full) for p in range(max(2, session.policy.dominance_n))]
        totals = original(data, aggfunc=absolute_sum, **full)
    return judged(session, result, n, tops=tops, totals=totals)


# ---- value_counts and describe ----------------------------------------------------------------


def value_counts(session: FilterSession, original, obj, *args, **kwargs):
    normalize = kwargs.pop("normalize", False)
    if isinstance(obj, pd.DataFrame):
        subset = args[0] if args else kwargs.get("subset")
        dims = record_dims([obj[c] for c in (subset or obj.columns)])
    elif kwargs.get("bins") is not None:
        dims = [pd.cut(obj, kwargs["bins"], include_lowest=True).rename(obj.name)]
    else:
        dims = [obj]
    counts = original(obj, *args, **kwargs)
    table = count_table(session, counts, dims, sources=(obj,), dropna=kwargs.get("dropna", True))
    if not normalize:
        return table.marked(session)
    return shares.within(session, table, counts, 0).rename(
        "proportion" if not isinstance(obj, pd.DataFrame) else "proportion"
    )


def install(session: FilterSession) -> None:
    """Wrap crosstab, pivot_table, value_counts and describe (idempotent)."""

    def on_records(*args, **kwargs) -> bool:
        return involves_records(*args, **kwargs)

    registry.guard(pivot_module, "crosstab", partial(crosstab, session), when=on_records, outermost=True)
    registry.guard(pivot_module, "pivot_table", partial(pivot_table, session), when=on_records, outermost=True)
    registry.replace(pd, "crosstab", pivot_module.crosstab)
    registry.replace(pd, "pivot_table", pivot_module.pivot_table)
    for owner in (pd.Series, pd.DataFrame):
        registry.guard(owner, "value_counts", partial(value_counts, session), when=on_records, outermost=True)
    for owner in (DataFrameGroupBy, SeriesGroupBy, pd.Series, pd.DataFrame):
        registry.guard(owner, "describe", partial(describe.describe, session), when=on_records, outermost=True)
    # DataFrame.pivot_table calls the module function: guarded through it.
    _ = is_record_level
