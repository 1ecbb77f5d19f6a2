"""``describe()`` of record-level data: counts as count tables, statistics through the rules.

The count row is decided by the ledger (per group a count table; of a whole column, the count
of its records that have a value); means and spreads of fewer than threshold records are
suppressed; min and max are withheld; percentiles are fuzzy when the policy says so; of a
category column, the most frequent value is shown only when its count is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.core.groupby.generic import DataFrameGroupBy, SeriesGroupBy
from pandas.core.groupby.groupby import GroupBy

from kernels.marks import mark_protected
from output_filters.guards.counting import count_of, count_table
from output_filters.guards.records import group_dims
from output_filters.guards.statistics import fuzzy_quantile
from output_filters.rules import small
from output_filters.session import FilterSession


def describe(session: FilterSession, original, obj, *args, **kwargs):
    """describe(): counts protected, statistics of small groups suppressed, min/max withheld,
    percentiles fuzzy when the policy says so."""
    result = original(obj, *args, **kwargs)
    notes = ["min and max withheld: they are single students' values"]
    if session.policy.median == "fuzzy":
        result = _fuzzy_percentiles(result, obj)
        notes.append("percentiles are means of the percentiles 5 points either side")
    frame = result.to_frame() if isinstance(result, pd.Series) else result
    wide = frame if isinstance(obj, GroupBy) else frame.T  # rows: groups (or the whole); columns: (column, stat)
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
            elif stat == "count":
                out[label], note = _described_counts(session, obj, column, block[stat])
                notes.append(note)
            elif stat in ("unique",):
                out[label] = block[stat]
            elif stat == "freq":
                counts = count_table(session, block[stat].astype(float), None)
                out[label] = counts.table
                notes.append(counts.note(session))
            elif stat == "top":
                freq = block["freq"].astype(float)
                out[label] = block[stat].mask(small(freq, session.policy))
            elif size is not None:
                out[label] = block[stat].mask(small(size, session.policy))
    if flat:
        out = out.droplevel(0, axis=1)
    table = out if isinstance(obj, GroupBy) else out.T
    if isinstance(result, pd.Series):
        table = table.iloc[:, 0].rename(result.name)
    return mark_protected(table.infer_objects(), "; ".join(dict.fromkeys(n for n in notes if n)))


def _described_counts(session: FilterSession, obj, column, counts: pd.Series) -> tuple[pd.Series, str]:
    """describe()'s count row: the records with a value, per group (a count table) or per column."""
    if isinstance(obj, GroupBy):
        source = obj.obj if isinstance(obj, SeriesGroupBy) or column is None else obj._obj_with_exclusions[column]
        dims = group_dims(obj)
        present = source.notna().to_numpy()
        dims = [d[present] for d in dims] if dims else None
        table = count_table(session, counts.astype(float), dims, sources=(obj.obj,), dropna=obj.dropna)
        return table.table, table.note(session)
    values, hidden = [], 0
    for row in counts.index:  # a row per described column (the Series itself for a Series)
        source = obj if isinstance(obj, pd.Series) else obj[row]
        shown = count_of(session, source[source.notna().to_numpy()])
        values.append(shown)
        hidden += int(np.isnan(shown))
    note = f"{hidden} count{'s' if hidden != 1 else ''} suppressed" if hidden else ""
    return pd.Series(values, index=counts.index, dtype=float), note


def scalar_count(session: FilterSession, records: pd.Series | pd.DataFrame, value) -> object:
    """The number of ``records`` (a subset of a record set), decided by the ledger: an int, or
    the mark's stand-in (``output_filters.guards.scalars``) if it must be suppressed."""
    from output_filters.guards import scalars

    if np.isnan(count_of(session, records)):
        return scalars.hidden_count(int(value), session.policy)
    return int(value)


def _fuzzy_percentiles(result, obj):
    """Replace describe()'s exact percentiles (rows or columns named like "50%")."""
    labels = result.index if not isinstance(obj, GroupBy) else result.columns
    stats = labels.get_level_values(-1) if isinstance(labels, pd.MultiIndex) else labels
    percents = sorted({label for label in stats if isinstance(label, str) and label.endswith("%")})
    if not percents:
        return result
    qs = [float(label[:-1]) / 100 for label in percents]
    if isinstance(obj, pd.DataFrame):
        numeric = obj.select_dtypes("number")
    elif isinstance(obj, DataFrameGroupBy):
        numeric = obj[list(obj._obj_with_exclusions.select_dtypes("number").columns)]
    else:
        numeric = obj
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
