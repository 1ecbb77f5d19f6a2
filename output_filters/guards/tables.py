"""Tables of record-level data: ``crosstab``, ``pivot_table`` and ``describe``.

The handlers the aggregation guard (``output_filters.guards.aggregates``) calls when one of these
is given record-level data: counts go through primary and secondary suppression, statistics
through the rules (``output_filters.rules``), min and max are withheld.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.core.groupby.groupby import GroupBy

from output_filters.engine.suppress import counts_note, protect_counts
from output_filters.exceptions import DisclosureError
from output_filters.guards import aggregates
from output_filters.guards.aggregates import (
    CUSTOM_REASON,
    EXTREME_REASON,
    count_result,
    fuzzy_quantile,
    judged,
    kind_of,
    protect_series,
    protected,
)


def describe(original, obj, *args, **kwargs):
    """describe(): counts protected, statistics of small groups suppressed, min/max withheld,
    percentiles fuzzy when the policy says so."""
    result = original(obj, *args, **kwargs)
    notes = ["min and max withheld: they are single students' values"]
    if aggregates.current_policy().median == "fuzzy":
        result = _fuzzy_percentiles(result, obj)
        notes.append("percentiles are means of the percentiles 5 points either side")
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
                out[label], p, s = protect_series(block[stat].astype(float))
                if p or s:
                    notes.append(f"{stat}: {counts_note(p, s, aggregates.current_policy())}")
            elif stat == "top":
                out[label] = block[stat].mask(block["freq"].astype(float) < aggregates.current_policy().threshold)
            elif size is not None:
                out[label] = block[stat].mask(size < aggregates.current_policy().threshold)
    if flat:
        out = out.droplevel(0, axis=1)
    table = out if isinstance(obj, GroupBy) else out.T
    if isinstance(result, pd.Series):
        table = table.iloc[:, 0].rename(result.name)
    return protected(table.infer_objects(), "; ".join(notes))


def _fuzzy_percentiles(result, obj):
    """Replace describe()'s exact percentiles (rows or columns named like "50%")."""
    labels = result.index if not isinstance(obj, GroupBy) else result.columns
    stats = labels.get_level_values(-1) if isinstance(labels, pd.MultiIndex) else labels
    percents = sorted({label for label in stats if isinstance(label, str) and label.endswith("%")})
    if not percents:
        return result
    qs = [float(label[:-1]) / 100 for label in percents]
    numeric = obj.select_dtypes("number") if isinstance(obj, pd.DataFrame) else obj
    fuzzy = fuzzy_quantile(lambda at: numeric.quantile(at), qs)
    result = result.copy()
    for q, label in zip(qs, percents, strict=True):
        if isinstance(obj, GroupBy):
            part = fuzzy.xs(q, level=-1) if isinstance(fuzzy.index, pd.MultiIndex) else fuzzy
            if isinstance(result.columns, pd.MultiIndex):
                for column in dict.fromkeys(result.columns.get_level_values(0)):
                    result[(column, label)] = part[column] if isinstance(part, pd.DataFrame) else part
            else:
                result[label] = part
        elif isinstance(result, pd.Series):
            result[label] = fuzzy.loc[q] if isinstance(fuzzy, pd.Series) else fuzzy
        else:
            result.loc[label] = fuzzy.loc[q].reindex(result.columns)
    return result


def _is_bool(values) -> bool:
    return isinstance(values, pd.Series) and pd.api.types.is_bool_dtype(values.dtype)


def _fuzzy_median(series: pd.Series) -> float:
    return (series.quantile(0.45) + series.quantile(0.55)) / 2


def _nth_largest(place: int):
    def largest(series: pd.Series) -> float:
        ordered = series.dropna().nlargest(place + 1)
        return float(ordered.iloc[place]) if len(ordered) > place else 0.0

    return largest


def _statistic_parts(compute, values_name, values_bool: bool, aggfunc):
    """(aggfunc to compute with, rate?, tops, totals) for a statistic table made by ``compute``."""
    policy = aggregates.current_policy()
    name = aggfunc if isinstance(aggfunc, str) else aggregates.KNOWN_CALLABLES.get(aggfunc)
    if name == "median" and policy.median == "fuzzy":
        aggfunc = _fuzzy_median
    rate = name == "mean" and values_bool
    tops, totals = [], None
    if name in ("sum", "mean") and values_name in policy.magnitude_columns:
        tops = [compute(_nth_largest(place)) for place in range(max(2, policy.dominance_n))]
        totals = compute("sum")
    return aggfunc, rate, tops, totals


def crosstab(
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
        policy = aggregates.current_policy()
        protection = protect_counts(
            counts,
            policy,
            margins=margins or bool(normalize),
            margins_name=margins_name,
            ledger=aggregates.ledger(),
            dims=aggregates.record_dims(index, columns),
        )
        note = protection.note(policy)
        if not normalize:
            table = protection.table if margins else protection.table.loc[counts.index, counts.columns]
            return protected(table, note)
        shares = original(index, columns, margins=margins, margins_name=margins_name, normalize=normalize, **names)
        hidden = protection.table.isna().reindex(index=shares.index, columns=shares.columns, fill_value=False)
        denominators = _denominators(counts, normalize, shares)
        table = judged(shares.mask(hidden), denominators, rate=True)
        mark = table.attrs["enclave"]
        return protected(table, "; ".join(n for n in (note, mark["note"]) if n), mark.get("codes"))
    kind = kind_of(aggfunc)
    if kind != "statistic":
        raise DisclosureError(EXTREME_REASON if kind == "extreme" else CUSTOM_REASON)
    both = dict(values=values, margins=margins, margins_name=margins_name, **names)
    compute = lambda function: original(index, columns, aggfunc=function, **both)  # noqa: E731
    aggfunc, rate, tops, totals = _statistic_parts(compute, getattr(values, "name", None), _is_bool(values), aggfunc)
    result = original(index, columns, aggfunc=aggfunc, normalize=normalize, **both)
    return judged(result, compute("count"), rate=rate, tops=tops, totals=totals)


def pivot_table(original, data, values=None, index=None, columns=None, aggfunc="mean", **kwargs):
    if isinstance(aggfunc, list | dict):
        raise DisclosureError("pivot_table over record-level data takes one aggfunc at a time")
    kind = kind_of(aggfunc)
    if kind in ("custom", "extreme"):
        raise DisclosureError(EXTREME_REASON if kind == "extreme" else CUSTOM_REASON)
    where = dict(values=values, index=index, columns=columns)
    if kind == "statistic":
        compute = lambda function: original(data, aggfunc=function, **where, **kwargs)  # noqa: E731
        single = values if isinstance(values, str) else None
        is_bool = single is not None and pd.api.types.is_bool_dtype(data[single].dtype)
        aggfunc, rate, tops, totals = _statistic_parts(compute, single, is_bool, aggfunc)
        return judged(compute(aggfunc), compute("count"), rate=rate, tops=tops, totals=totals)
    margins = kwargs.pop("margins", False)
    margins_name = kwargs.pop("margins_name", "All")
    counts = original(data, aggfunc=aggfunc, **where, **kwargs)
    if isinstance(counts, pd.DataFrame) and not isinstance(counts.columns, pd.MultiIndex) and columns is not None:
        try:
            dims = aggregates.record_dims(*(data[name] for name in _names(index) + _names(columns)))
        except (KeyError, TypeError):  # keys that are not columns (Groupers, arrays): not linked
            dims = None
        protection = protect_counts(
            counts,
            aggregates.current_policy(),
            margins=margins,
            margins_name=margins_name,
            ledger=aggregates.ledger(),
            dims=dims,
        )
        return protected(protection.table, protection.note(aggregates.current_policy()))
    if margins:
        raise DisclosureError("pivot_table counts with margins: pivot one value column at a time")
    return count_result(counts)


def _denominators(counts: pd.DataFrame, normalize, shares: pd.DataFrame) -> pd.DataFrame:
    """The group size behind each share of a normalized crosstab (aligned with ``shares``)."""
    rows = counts.sum(axis=1)
    cols = counts.sum(axis=0)
    total = float(counts.to_numpy().sum())
    frame = pd.DataFrame(total, index=shares.index, columns=shares.columns)
    if normalize == "index":
        frame = frame.apply(lambda column: rows.reindex(shares.index).fillna(total))
    elif normalize == "columns":
        frame = frame.apply(lambda column: pd.Series(cols.get(column.name, total), index=shares.index))
    return frame


def _names(keys) -> list:
    if keys is None:
        return []
    return list(keys) if isinstance(keys, list | tuple) else [keys]
