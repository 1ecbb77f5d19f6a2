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
from functools import wraps

import numpy as np
import pandas as pd
from pandas.core import indexing

from kernels.marks import is_record_level
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry as patching
from output_filters.guards.aggregates import EXTREME_REASON
from output_filters.kernel import scalars
from output_filters.kernel.callers import from_user_code

REASON = (
    "record-level data cannot be turned into plain Python values (lists, dicts, single values, "
    "loops over rows): they would show individual students. Aggregate it first."
)
CONVERSIONS = {
    pd.DataFrame: ("to_dict", "to_records", "itertuples", "iterrows", "items"),
    pd.Series: ("to_dict", "tolist", "to_list", "items", "__iter__"),
}
INDEXERS = (indexing._LocIndexer, indexing._iLocIndexer, indexing._AtIndexer, indexing._iAtIndexer)

_originals: dict[tuple[type, str], Callable] = {}
BLOCKED_ARRAY = "Blocked: an array of record-level values is never shown. Aggregate it first."


class RecordArray(np.ndarray):
    """A NumPy view of record-level values: computes as usual, never shows them."""

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
        scalars.remember_length(n)
        return n

    def sum(self, *args, **kwargs):
        value = super().sum(*args, **kwargs)
        if (isinstance(value, np.ndarray) and value.ndim) or self.dtype != bool:
            return self._statistic(value)
        return scalars.statistic(scalars.count(_scalar(value)), self.size)

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
        return scalars.statistic(_scalar(value), self.size)


def _scalar(value):
    """A NumPy scalar out of a 0-d array (reductions of subclasses return those)."""
    return value.view(np.ndarray)[()] if isinstance(value, np.ndarray) else value


def _record_array(value):
    if isinstance(value, np.ndarray):
        return value.view(RecordArray)
    if isinstance(value, pd.api.extensions.ExtensionArray):  # pandas' own arrays: strings, nullable ints
        return np.asarray(value, dtype=object).view(RecordArray)
    return value


def _as_record_array(cls: type, name: str) -> None:
    """``.values``, ``.array`` and ``.to_numpy()`` of record-level data, from user code."""
    original = getattr(cls, name) if name != "values" else cls.__dict__.get("values", cls.values)
    _originals[(cls, name)] = original

    if isinstance(original, property):

        def fget(self):
            value = original.fget(self)
            if is_record_level(self) and from_user_code():
                return _record_array(value)
            return value

        patching.replace(cls, name, property(fget, doc=original.__doc__))
        return

    @wraps(original)
    def wrapper(self, *args, **kwargs):
        value = original(self, *args, **kwargs)
        if is_record_level(self) and from_user_code():
            return _record_array(value)
        return value

    patching.replace(cls, name, wrapper)


def _refuse_from_user_code(cls: type, name: str) -> None:
    original = getattr(cls, name)
    _originals[(cls, name)] = original

    @wraps(original)
    def wrapper(self, *args, **kwargs):
        if is_record_level(self) and from_user_code():
            raise DisclosureError(REASON)
        return original(self, *args, **kwargs)

    patching.replace(cls, name, wrapper)


def _no_single_values(cls: type, owner: Callable) -> None:
    """Indexing that returns a scalar (not a frame or Series) is refused from user code."""
    original = cls.__getitem__
    _originals[(cls, "__getitem__")] = original

    @wraps(original)
    def __getitem__(self, key):
        result = original(self, key)
        if not isinstance(result, pd.DataFrame | pd.Series) and from_user_code():
            if is_record_level(owner(self)):
                raise DisclosureError(REASON)
        return result

    patching.replace(cls, "__getitem__", __getitem__)


def install() -> None:
    """Wrap the conversions and indexers (idempotent)."""
    if _originals:
        return
    for cls, names in CONVERSIONS.items():
        for name in names:
            _refuse_from_user_code(cls, name)
    for cls in (pd.DataFrame, pd.Series):
        for name in ("values", "to_numpy", "array"):
            if name == "array" and cls is pd.DataFrame:
                continue
            _as_record_array(cls, name)
    for indexer in INDEXERS:
        _no_single_values(indexer, lambda accessor: accessor.obj)
    _no_single_values(pd.Series, lambda series: series)


def uninstall() -> None:
    patching.restore({cls for cls, _name in _originals})
    _originals.clear()
