"""Plots of record-level data: histograms with no small bins, nothing that draws records.

A plot of record-level data shows the records themselves (scatter, line, bar of values) or
single students' values (box-plot whiskers and outliers, density tails). Only histograms are
allowed, and only when every non-empty bin holds at least threshold records; otherwise the
figure is refused with the reason. Plots of protected aggregates are drawn as they are (their
suppressed cells are missing). This covers ``DataFrame.plot``/``Series.plot`` of any kind,
``hist``, ``boxplot`` and matplotlib's own ``Axes`` methods given pandas data; matplotlib is
patched when it is first imported, so kernels that never plot do not pay for it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from functools import wraps

import numpy as np
import pandas as pd
import pandas.plotting._core as plotting

from kernels.marks import is_record_level
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry as patching
from output_filters.policy import Policy

AXES_METHODS = (
    "hist",
    "scatter",
    "plot",
    "bar",
    "barh",
    "boxplot",
    "violinplot",
    "pie",
    "hexbin",
    "hist2d",
    "stem",
    "step",
    "fill_between",
    "errorbar",
    "stackplot",
    "eventplot",
    "imshow",
    "pcolormesh",
)
DRAWS_RECORDS = (
    "a plot of record-level data would draw individual students; plot an aggregate instead "
    "(e.g. df.groupby('year').size().plot.bar()) or a histogram with wide bins"
)

_originals: dict[tuple[object, str], Callable] = {}
_policy = Policy()


def check_histogram(values: pd.Series | pd.DataFrame, bins=10, range_=None) -> None:
    """Refuse a histogram of record-level values with a bin of 0 < n < threshold records."""
    columns = values.select_dtypes("number") if isinstance(values, pd.DataFrame) else values.to_frame()
    for name, column in columns.items():
        data = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=float)
        if not len(data):
            continue
        counts, _edges = np.histogram(data, bins=bins, range=range_)
        small = int(((counts > 0) & (counts < _policy.threshold)).sum())
        if small:
            raise DisclosureError(
                f"the histogram of {name} has {small} bin{'s' if small != 1 else ''} of fewer than "
                f"{_policy.threshold} records; use fewer, wider bins (bins=...) or plot an aggregate"
            )


def _records_in(args: tuple, kwargs: dict):
    for value in (*args, *kwargs.values()):
        if is_record_level(value):
            return value
    return None


def _plot_accessor(original):
    @wraps(original)
    def __call__(self, *args, **kwargs):
        data = self._parent
        if is_record_level(data):
            _x, _y, kind, _rest = self._get_call_args("matplotlib", data, args, dict(kwargs))
            if kind != "hist":
                raise DisclosureError(DRAWS_RECORDS)
            check_histogram(data, kwargs.get("bins", 10))
        return original(self, *args, **kwargs)

    return __call__


def _pandas_hist(original):
    @wraps(original)
    def hist(data, *args, **kwargs):
        if is_record_level(data):
            check_histogram(data, kwargs.get("bins", 10))
        return original(data, *args, **kwargs)

    return hist


def _refuse_records(original):
    @wraps(original)
    def wrapper(data, *args, **kwargs):
        if is_record_level(data):
            raise DisclosureError(DRAWS_RECORDS)
        return original(data, *args, **kwargs)

    return wrapper


def _axes_method(name: str, original):
    @wraps(original)
    def wrapper(self, *args, **kwargs):
        records = _records_in(args, kwargs)
        if records is not None:
            if name != "hist":
                raise DisclosureError(DRAWS_RECORDS)
            check_histogram(records, kwargs.get("bins", 10), kwargs.get("range"))
        return original(self, *args, **kwargs)

    return wrapper


def _patch(owner, name: str, make) -> None:
    original = getattr(owner, name)
    _originals[(owner, name)] = original
    patching.replace(owner, name, make(original))


def _patch_matplotlib() -> None:
    from matplotlib.axes import Axes

    if (Axes, "hist") in _originals:
        return
    for name in AXES_METHODS:
        if hasattr(Axes, name):
            _patch(Axes, name, lambda original, name=name: _axes_method(name, original))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches matplotlib's Axes as soon as ``matplotlib.axes`` has been imported."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "matplotlib.axes":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module):
            execute(module)
            _patch_matplotlib()

        loader.exec_module = exec_module
        return spec


def install(policy: Policy) -> None:
    """Guard pandas plotting now, and matplotlib when it is imported (idempotent)."""
    global _policy
    _policy = policy
    if (plotting.PlotAccessor, "__call__") in _originals:
        return
    _patch(plotting.PlotAccessor, "__call__", _plot_accessor)
    for cls in (pd.Series, pd.DataFrame):
        _patch(cls, "hist", _pandas_hist)
    _patch(pd.DataFrame, "boxplot", _refuse_records)
    if "matplotlib.axes" in sys.modules:
        _patch_matplotlib()
    else:
        sys.meta_path.insert(0, _AfterImport())
