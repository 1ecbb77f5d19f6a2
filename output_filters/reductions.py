"""Whole-column reductions of record-level data, called from user code.

``s.mean()``, ``s.sum()``, ``df.count()``, ``df[mask].shape[0]``, ``len(df[mask])`` and their
kin return numbers that are safe to show: small counts and statistics of small groups come
back suppressed (``output_filters.scalars``); per-column results of a DataFrame come back as a
protected Series; minimum, maximum and their positions are single students' values and raise
``DisclosureError``. Row-wise reductions (``axis=1``) stay record-level. Calls from pandas'
own code are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import pandas as pd

from kernels.marks import is_record_level, mark_protected, mark_record_level
from output_filters import patching, scalars
from output_filters.aggregates import EXTREME_REASON
from output_filters.callers import from_user_code
from output_filters.exceptions import DisclosureError
from output_filters.policy import Policy

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
        result = original(self, *args, **kwargs)
        counts = _originals[(cls, "count")](self)
        if isinstance(self, pd.Series):
            return _series_result(self, name, result, counts)
        axis = kwargs.get("axis", args[0] if args and name != "quantile" else 0)
        return _frame_result(self, name, result, counts, axis)

    patching.replace(cls, name, wrapper)


def _series_result(series: pd.Series, name: str, result, n: int):
    if isinstance(result, pd.Series):  # quantile([...]), mode()
        if n < _policy.threshold:
            result = result.astype(float).mask(result.notna())
        return mark_protected(result, _note(int(result.isna().sum()), "values") if n < _policy.threshold else "")
    if name in COUNTS:
        return scalars.count(result)
    if name == "sum" and pd.api.types.is_bool_dtype(series.dtype):  # a count of students, in a group
        return scalars.statistic(scalars.count(result), n)
    return scalars.statistic(result, n)


def _frame_result(frame: pd.DataFrame, name: str, result, counts: pd.Series, axis):
    if not isinstance(result, pd.Series | pd.DataFrame):
        return result
    if axis in (1, "columns"):  # one value per record
        return mark_record_level(result, "a row-wise reduction")
    labels = result.index if isinstance(result, pd.Series) else result.columns
    booleans = pd.Series([pd.api.types.is_bool_dtype(frame[c].dtype) for c in labels], index=labels)
    if name in COUNTS or name == "sum":
        small_count = (result > 0) & (result < _policy.threshold) if isinstance(result, pd.Series) else None
    if name in COUNTS:
        hide = small_count
    else:
        hide = counts.reindex(labels).fillna(0) < _policy.threshold
        if name == "sum":  # a sum of yes/no values is a count of students, in a group
            hide = hide | (booleans & small_count)
    table = result.mask(hide) if isinstance(result, pd.Series) else result.mask(hide, axis=1)
    if name in COUNTS:
        table = table.astype("Int64")
    return mark_protected(table, _note(int(hide.sum()), "counts" if name in COUNTS else "values"))


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
