"""Record-level data does not leave pandas as plain Python values from user code.

``to_dict``, ``to_records``, ``tolist``, iteration over rows or values, and picking single
values out (``s[5]``, ``df.loc[i, c]``, ``df.at[...]``, ``df.iat[...]``) of record-level data
raise ``DisclosureError`` when called from user code: the result would be one student's
values with no mark left to stop it being printed. Selections that stay frames or Series
keep their mark and are fine. ``.values``, ``.array`` and ``.to_numpy()`` give a
``RecordArray``: a NumPy array that computes as usual but does not print, convert to lists
or hand out single values, and whose sums and means are checked like pandas'. (``np.asarray``
always returns a plain array; what is done with one is the researcher's own accounting.)
Calls from pandas' own code are left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pandas.core import indexing

from kernels.marks import is_record_level
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry, scalars
from output_filters.guards.callers import from_user_code
from output_filters.guards.functions import EXTREME_REASON
from output_filters.guards.reductions import SMALL_LENGTH
from output_filters.policy import Policy
from output_filters.rules import small_count
from output_filters.session import FilterSession

REASON = (
    "record-level data cannot be turned into plain Python values (lists, dicts, single values, "
    "loops over rows): they would show individual students. Aggregate it first."
)
CONVERSIONS = {
    pd.DataFrame: ("to_dict", "to_records", "itertuples", "iterrows", "items"),
    pd.Series: ("to_dict", "tolist", "to_list", "items", "__iter__"),
}
INDEXERS = (indexing._LocIndexer, indexing._iLocIndexer, indexing._AtIndexer, indexing._iAtIndexer)

BLOCKED_ARRAY = "Blocked: an array of record-level values is never shown. Aggregate it first."


class RecordArray(np.ndarray):
    """A NumPy view of record-level values: computes as usual, never shows them.

    Its counts have no record labels left, so they follow the small-count rule alone; the
    policy is the one ``install`` was given.
    """

    policy: Policy | None = None

    def __repr__(self) -> str:
        return BLOCKED_ARRAY

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return BLOCKED_ARRAY

    def tolist(self):
        raise DisclosureError(REASON)

    def item(self, *args):
        raise DisclosureError(REASON)

    def __iter__(self):
        if from_user_code():
            raise DisclosureError(REASON)
        return super().__iter__()

    def __getitem__(self, key):
        result = super().__getitem__(key)
        if not isinstance(result, np.ndarray) and from_user_code():
            raise DisclosureError(REASON)
        return result

    def __len__(self) -> int:
        n = super().__len__()
        policy = RecordArray.policy
        if policy is not None and small_count(n, policy) and from_user_code():
            raise DisclosureError(SMALL_LENGTH.format(threshold=policy.threshold, mark=policy.mark), rule="small count")
        return n

    def sum(self, *args, **kwargs):
        value = super().sum(*args, **kwargs)
        if (isinstance(value, np.ndarray) and value.ndim) or self.dtype != bool or RecordArray.policy is None:
            return self._statistic(value)
        policy = RecordArray.policy
        return scalars.statistic(scalars.count(_scalar(value), policy), self.size, policy)

    def mean(self, *args, **kwargs):
        return self._statistic(super().mean(*args, **kwargs))

    def std(self, *args, **kwargs):
        return self._statistic(super().std(*args, **kwargs))

    def var(self, *args, **kwargs):
        return self._statistic(super().var(*args, **kwargs))

    def min(self, *args, **kwargs):
        raise DisclosureError(EXTREME_REASON)

    max = argmin = argmax = min

    def _statistic(self, value):
        if isinstance(value, np.ndarray) and value.ndim:
            return value  # reduced along one axis only: still one value per record
        if RecordArray.policy is None:
            return _scalar(value)
        return scalars.statistic(_scalar(value), self.size, RecordArray.policy)


def _scalar(value):
    """A NumPy scalar out of a 0-d array (reductions of subclasses return those)."""
    return value.view(np.ndarray)[()] if isinstance(value, np.ndarray) else value


def _record_array(value):
    if isinstance(value, np.ndarray):
        return value.view(RecordArray)
    if isinstance(value, pd.api.extensions.ExtensionArray):  # pandas' own arrays: strings, nullable ints
        return np.asarray(value, dtype=object).view(RecordArray)
    return value


def _records_from_user(self, *args, **kwargs) -> bool:
    return is_record_level(self) and from_user_code(3)


def _as_record_array(original, self, *args, **kwargs):
    """``.values``, ``.array`` and ``.to_numpy()`` of record-level data, from user code."""
    return _record_array(original(self, *args, **kwargs))


def _refuse(original, self, *args, **kwargs):
    raise DisclosureError(REASON, rule="record-level data")


def _single_values(owner: Callable):
    """Indexing that returns a scalar (not a frame or Series) is refused from user code."""

    def getitem(original, self, key):
        result = original(self, key)
        if not isinstance(result, pd.DataFrame | pd.Series) and from_user_code(3) and is_record_level(owner(self)):
            raise DisclosureError(REASON, rule="record-level data")
        return result

    return getitem


def install(session: FilterSession) -> None:
    """Wrap the conversions and indexers (idempotent)."""
    RecordArray.policy = session.policy
    for cls, names in CONVERSIONS.items():
        for name in names:
            registry.guard(cls, name, _refuse, when=_records_from_user)
    for cls in (pd.DataFrame, pd.Series):
        for name in ("values", "to_numpy", "array"):
            if name == "array" and cls is pd.DataFrame:
                continue
            registry.guard(cls, name, _as_record_array, when=_records_from_user)
    for indexer in INDEXERS:
        registry.guard(indexer, "__getitem__", _single_values(lambda accessor: accessor.obj))
    registry.guard(pd.Series, "__getitem__", _single_values(lambda series: series))
    registry.guard(pd.core.strings.accessor.StringMethods, "cat", _refuse_cat, when=_string_records)


def _string_records(accessor, *args, **kwargs) -> bool:
    return is_record_level(getattr(accessor, "_orig", None)) and from_user_code(3)


def _refuse_cat(original, accessor, *args, **kwargs):
    """``s.str.cat()`` joins every record's value into one string."""
    raise DisclosureError(REASON, rule="record-level data")
