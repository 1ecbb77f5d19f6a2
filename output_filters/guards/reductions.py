"""Whole-column reductions of record-level data, called from user code.

``s.mean()``, ``s.sum()``, ``df.count()``, ``df[mask].shape[0]``, ``len(df[mask])`` and their
kin return numbers that are safe to show: small counts and statistics of small groups come
back suppressed (``output_filters.kernel.scalars``); per-column results of a DataFrame come back as a
protected Series; minimum, maximum and their positions are single students' values and raise
``DisclosureError``. Row-wise reductions (``axis=1``) stay record-level. Calls from pandas'
own code are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import numpy as np
import pandas as pd

from kernels.marks import is_record_level, mark_protected, mark_record_level
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry as patching
from output_filters.guards.aggregates import EXTREME_REASON, fuzzy_quantile
from output_filters.kernel import scalars
from output_filters.kernel.callers import from_user_code
from output_filters.policy import Policy
from output_filters.rules import Cells, judge

COUNTS = ("count", "nunique")
STATISTICS = ("mean", "median", "std", "var", "sem", "skew", "kurt", "prod", "quantile", "sum")
EXTREMES = ("min", "max", "idxmin", "idxmax")

_originals: dict[tuple[type, str], Callable] = {}
_policy = Policy()


def _reduction(cls: type, name: str) -> None:
    original = getattr(cls, name)
    _originals[(cls, name)] = original

    @wraps(original)
    def wrapper(self, *args, **kwargs):
        if not is_record_level(self) or not from_user_code():
            return original(self, *args, **kwargs)
        if name in EXTREMES:
            raise DisclosureError(EXTREME_REASON)
        if name in ("median", "quantile") and _policy.median == "fuzzy" and cls is pd.Series:
            q = 0.5 if name == "median" else (args[0] if args else kwargs.pop("q", 0.5))
            quantile = _originals[(cls, "quantile")]
            result = fuzzy_quantile(lambda at: quantile(self, at), q)
        else:
            result = original(self, *args, **kwargs)
        counts = _originals[(cls, "count")](self)
        if isinstance(self, pd.Series):
            return _series_result(self, name, result, counts)
        axis = kwargs.get("axis", args[0] if args and name != "quantile" else 0)
        return _frame_result(self, name, result, counts, axis)

    patching.replace(cls, name, wrapper)


def _is_bool(values: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(values.dtype)


def _magnitude(values: pd.Series, name: str) -> tuple[list, float | None]:
    """The largest contributions and the total of a magnitude column (else nothing)."""
    if name not in ("sum", "mean") or values.name not in _policy.magnitude_columns:
        return [], None
    numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    ordered = -np.sort(-numbers)
    keep = max(2, _policy.dominance_n)
    return [float(ordered[i]) if len(ordered) > i else 0.0 for i in range(keep)], float(numbers.sum())


def _series_result(series: pd.Series, name: str, result, n: int):
    if isinstance(result, pd.Series):  # quantile([...]), mode()
        if n < _policy.threshold:
            result = result.astype(float).mask(result.notna())
        return mark_protected(result, _note(int(result.isna().sum()), "values") if n < _policy.threshold else "")
    if name in COUNTS:
        return scalars.count(result)
    if name == "sum" and _is_bool(series):  # a count of students, in a group
        return scalars.statistic(scalars.count(result), n)
    if n < _policy.threshold:
        return scalars.statistic(result, n)
    tops, total = _magnitude(series, name)
    one = pd.Series([float(result)])
    cells = Cells(
        one,
        pd.Series([n]),
        rate=name == "mean" and _is_bool(series),
        tops=[pd.Series([t]) for t in tops],
        totals=None if total is None else pd.Series([total]),
    )
    table, codes, note = judge(cells, _policy)
    if pd.notna(table.iloc[0]):
        return result
    return scalars.Coded(codes[0], note) if codes else scalars.Suppressed(note)


def _frame_result(frame: pd.DataFrame, name: str, result, counts: pd.Series, axis):
    if not isinstance(result, pd.Series | pd.DataFrame):
        return result
    if axis in (1, "columns"):  # one value per record
        return mark_record_level(result, "a row-wise reduction")
    labels = result.index if isinstance(result, pd.Series) else result.columns
    booleans = pd.Series([_is_bool(frame[c]) for c in labels], index=labels)
    if name in COUNTS:
        hide = (result > 0) & (result < _policy.threshold)
        table = result.astype("Int64").mask(hide)
        return mark_protected(table, _note(int(hide.sum()), "counts"))
    n = counts.reindex(labels).fillna(0)
    if name == "sum" and isinstance(result, pd.Series) and booleans.any():  # yes/no sums are counts
        small = booleans & (result > 0) & (result < _policy.threshold)
        result = result.mask(small)
        n = n.where(~small, 0)
    if not isinstance(result, pd.Series):  # quantile([...]): rows are quantiles
        hide = n < _policy.threshold
        return mark_protected(result.mask(hide, axis=1), _note(int(hide.sum()), "values"))
    parts = [_magnitude(frame[c], name) for c in labels]
    keep = max(2, _policy.dominance_n)
    tops = [pd.Series([p[0][i] if p[0] else 0.0 for p in parts], index=labels) for i in range(keep)]
    totals = pd.Series([p[1] or 0.0 for p in parts], index=labels)
    cells = Cells(result, n, rate=(booleans & (name == "mean")), tops=tops, totals=totals)
    table, codes, note = judge(cells, _policy)
    return mark_protected(table, note, codes)


def _note(hidden: int, what: str) -> str:
    return f"{hidden} {what} suppressed: fewer than {_policy.threshold} records" if hidden else ""


def _length(cls: type) -> None:
    original = cls.__len__
    _originals[(cls, "__len__")] = original

    @wraps(original)
    def __len__(self) -> int:
        n = original(self)
        if 0 < n < _policy.threshold and from_user_code() and is_record_level(self):
            scalars.remember_length(n)
        return n

    patching.replace(cls, "__len__", __len__)


def _shape(cls: type) -> None:
    original = cls.shape
    _originals[(cls, "shape")] = original

    def shape(self) -> tuple:
        value = original.fget(self)
        if 0 < value[0] < _policy.threshold and from_user_code() and is_record_level(self):
            return (scalars.count(value[0]), *value[1:])
        return value

    patching.replace(cls, "shape", property(shape, doc=original.__doc__))


def install(policy: Policy) -> None:
    """Wrap the reductions, ``len`` and ``shape`` of DataFrame and Series (idempotent)."""
    global _policy
    _policy = policy
    scalars.configure(policy)
    if _originals:
        return
    for cls in (pd.Series, pd.DataFrame):
        for name in (*COUNTS, *STATISTICS, *EXTREMES, "mode"):
            if name == "mode" and cls is pd.DataFrame:
                continue
            _reduction(cls, name)
        _length(cls)
        _shape(cls)


def uninstall() -> None:
    patching.restore({cls for cls, _name in _originals})
    _originals.clear()
