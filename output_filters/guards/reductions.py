"""Whole-column reductions of record-level data, called from user code.

``s.mean()``, ``s.sum()``, ``df.count()``, ``df[mask].shape[0]`` and their kin return numbers
that are safe to show. A count is decided by the ledger like any count table (a count of a
subset is a table with no dimensions: ``(df.x == v).sum()`` counts the records where the
comparison holds), so two counts cannot be subtracted to give a small one away; a suppressed
count comes back as a number that prints as the mark. A mean of a yes/no column is a rate, from
its count table. Other statistics of fewer than threshold records come back suppressed;
minimum, maximum and their positions raise ``DisclosureError``. Row-wise reductions
(``axis=1``) stay record-level. ``len()`` of fewer than threshold records raises
``DisclosureError`` at the call: ``len`` must return a plain ``int``. Calls from pandas' own
code are left alone.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from kernels.marks import is_record_level, mark_of, mark_protected, mark_record_level
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry, scalars
from output_filters.guards.callers import from_user_code
from output_filters.guards.counting import count_of, count_table
from output_filters.guards.functions import EXTREME_REASON, as_flag, is_flag
from output_filters.guards.shares import flag_scalar
from output_filters.guards.statistics import fuzzy_quantile
from output_filters.rules import Cells, judge, small, small_count
from output_filters.session import FilterSession

COUNTS = ("count", "nunique")
STATISTICS = ("mean", "median", "std", "var", "sem", "skew", "kurt", "prod", "quantile", "sum")
EXTREMES = ("min", "max", "idxmin", "idxmax")
SMALL_LENGTH = (
    "len() of fewer than {threshold} records of record-level data would show a small count; "
    "use .shape[0] (it prints as {mark} when small) or a count table such as value_counts()"
)


def _from_user(self, *args, **kwargs) -> bool:
    return is_record_level(self) and from_user_code(3)


def reduction(session: FilterSession, original, self, *args, **kwargs):
    name = original.__name__
    if name in EXTREMES:
        raise DisclosureError(EXTREME_REASON, rule="extremes")
    if isinstance(self, pd.DataFrame):
        axis = kwargs.get("axis", args[0] if args and name != "quantile" else 0)
        if axis in (1, "columns"):  # one value per record
            result = original(self, *args, **kwargs)
            mark = mark_of(self) or {}
            return mark_record_level(result, "a row-wise reduction", mark.get("universe"))
        return _frame(session, original, self, name, *args, **kwargs)
    return _series(session, original, self, name, *args, **kwargs)


def _series(session: FilterSession, original, series: pd.Series, name: str, *args, **kwargs):
    policy = session.policy
    if name == "count":
        return _count(session, series[series.notna()], original(series, *args, **kwargs))
    if name == "nunique":
        result = original(series, *args, **kwargs)
        return scalars.count(result, policy) if series.name in policy.identifiers else result
    if name in ("sum", "mean") and is_flag(series):
        return _flag(session, series, name)
    if name in ("median", "quantile") and policy.median == "fuzzy":
        q = 0.5 if name == "median" else (args[0] if args else kwargs.pop("q", 0.5))
        quantile = registry.original(pd.Series, "quantile")
        result = fuzzy_quantile(lambda at: quantile(series, at), q)
    else:
        result = original(series, *args, **kwargs)
    n = int(registry.original(pd.Series, "count")(series))
    if isinstance(result, pd.Series):  # quantile([...]), mode()
        small_group = bool(small(n, policy))
        table = result.astype(float).mask(result.notna()) if small_group else result
        hidden = int(table.isna().sum())
        note = f"{hidden} values suppressed: fewer than {policy.threshold} records" if small_group else ""
        return mark_protected(table, note)
    if small(n, policy):
        return scalars.statistic(result, n, policy)
    tops, total = _magnitude(session, series, name)
    cells = Cells(
        pd.Series([float(result)]),
        pd.Series([n]),
        tops=[pd.Series([t]) for t in tops],
        totals=None if total is None else pd.Series([total]),
    )
    table, codes, note = judge(cells, policy)
    if pd.notna(table.iloc[0]):
        return result
    return scalars.Coded(codes[0], note) if codes else scalars.Suppressed(note, policy.mark)


def _count(session: FilterSession, records, value):
    if np.isnan(count_of(session, records)):
        return scalars.hidden_count(int(value), session.policy)
    return int(value)


def _flag(session: FilterSession, series: pd.Series, name: str):
    """A yes/no column's sum (a count) or mean (a rate), from its count table."""
    present = series[series.notna()]
    flag = as_flag(present).rename(series.name)
    counts = registry.original(pd.Series, "value_counts")(flag)
    table = count_table(session, counts, [flag], sources=(series,))
    value, total = flag_scalar(session, table, name)
    if np.isnan(value):
        if name == "sum":
            yes = int(registry.original(pd.Series, "sum")(flag))
            return scalars.statistic(scalars.hidden_count(yes, session.policy), len(flag), session.policy)
        return scalars.Suppressed(table.note(session) or "its count is suppressed", session.policy.mark)
    if name == "sum":
        return int(value)
    cells = Cells(pd.Series([value]), pd.Series([total]), rate=True)
    coded, codes, note = judge(cells, session.policy)
    if pd.notna(coded.iloc[0]):
        return value
    return scalars.Coded(codes[0], note) if codes else scalars.Suppressed(note, session.policy.mark)


def _magnitude(session: FilterSession, values: pd.Series, name: str) -> tuple[list, float | None]:
    """The largest absolute contributions and the absolute total of a magnitude column."""
    policy = session.policy
    if name not in ("sum", "mean") or values.name not in policy.magnitude_columns:
        return [], None
    numbers = np.abs(pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float))
    ordered = -np.sort(-numbers)
    keep = max(2, policy.dominance_n)
    return [float(ordered[i]) if len(ordered) > i else 0.0 for i in range(keep)], float(numbers.sum())


def _frame(session: FilterSession, original, frame: pd.DataFrame, name: str, *args, **kwargs):
    result = original(frame, *args, **kwargs)
    if not isinstance(result, pd.Series | pd.DataFrame):
        return result
    policy = session.policy
    if not isinstance(result, pd.Series):  # quantile([...]): rows are quantiles
        n = registry.original(pd.DataFrame, "count")(frame).reindex(result.columns).fillna(0)
        hide = pd.Series(small(n, policy), index=n.index)
        note = f"{int(hide.sum())} values suppressed: fewer than {policy.threshold} records" if hide.any() else ""
        return mark_protected(result.mask(hide, axis=1), note)
    values, notes, codes = result.astype(object).copy(), [], {}
    for label in result.index:
        column = frame[label]
        with registry.released():
            value = _series(session, registry.original(pd.Series, name), column, name, *args, **kwargs)
        if isinstance(value, scalars.Coded):
            codes[label] = value.code
            values[label] = np.nan
            notes.append(value.reason)
        elif isinstance(value, scalars.Suppressed | scalars.SmallCount) and not (
            isinstance(value, scalars.SmallCount) and name == "nunique" and label not in policy.identifiers
        ):
            values[label] = np.nan
            notes.append(value.reason if isinstance(value, scalars.Suppressed) else value.why)
        else:
            values[label] = value
    table = values.infer_objects()
    return mark_protected(table, "; ".join(dict.fromkeys(n for n in notes if n)), codes)


def length(session: FilterSession, original, self) -> int:
    n = original(self)
    if small_count(n, session.policy):
        raise DisclosureError(
            SMALL_LENGTH.format(threshold=session.policy.threshold, mark=session.policy.mark), rule="small count"
        )
    return n


def shape(session: FilterSession, fget, self) -> tuple:
    value = fget(self)
    if small_count(value[0], session.policy):
        return (scalars.count(value[0], session.policy), *value[1:])
    return value


def install(session: FilterSession) -> None:
    """Wrap the reductions, ``len`` and ``shape`` of DataFrame and Series (idempotent)."""
    for cls in (pd.Series, pd.DataFrame):
        for name in (*COUNTS, *STATISTICS, *EXTREMES, "mode"):
            if name == "mode" and cls is pd.DataFrame:
                continue
            registry.guard(cls, name, partial(reduction, session), when=_from_user)
        registry.guard(cls, "__len__", partial(length, session), when=_from_user)
        registry.guard(cls, "shape", partial(shape, session), when=_from_user)
