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
from functools import partial

import numpy as np
import pandas as pd
import pandas.plotting._core as plotting
from pandas.core.groupby.generic import DataFrameGroupBy, SeriesGroupBy

from kernels.marks import is_record_level
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry
from output_filters.policy import Policy
from output_filters.rules import Cells, HistogramBins
from output_filters.session import FilterSession

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


def check_histogram(policy: Policy, values: pd.Series | pd.DataFrame, bins=10, range_=None) -> None:
    """Refuse a histogram of record-level values with a bin the small-count rule would hide."""
    columns = values.select_dtypes("number") if isinstance(values, pd.DataFrame) else values.to_frame()
    for name, column in columns.items():
        data = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=float)
        if not len(data):
            continue
        counts, _edges = np.histogram(data, bins=bins, range=range_)
        verdict = HistogramBins().decide(Cells(pd.Series(counts), pd.Series(counts)), policy)
        if verdict.hidden.any():
            raise DisclosureError(f"the histogram of {name} has {verdict.note}", rule="histogram bins")


def _records_in(args: tuple, kwargs: dict):
    for value in (*args, *kwargs.values()):
        if is_record_level(value):
            return value
    return None


def _plot(policy: Policy, original, self, *args, **kwargs):
    data = self._parent
    if is_record_level(data):
        _x, _y, kind, _rest = self._get_call_args("matplotlib", data, args, dict(kwargs))
        if kind != "hist":
            raise DisclosureError(DRAWS_RECORDS, rule="record-level data")
        check_histogram(policy, data, kwargs.get("bins", 10))
    return original(self, *args, **kwargs)


def _hist(policy: Policy, original, data, *args, **kwargs):
    if is_record_level(data) or (hasattr(data, "obj") and is_record_level(data.obj)):
        source = data.obj if hasattr(data, "obj") and not isinstance(data, pd.Series | pd.DataFrame) else data
        groups = data if source is not data else None
        if groups is None:
            check_histogram(policy, data, kwargs.get("bins", 10))
        else:  # one histogram per group
            for _key, part in groups:
                check_histogram(policy, part, kwargs.get("bins", 10))
    return original(data, *args, **kwargs)


def _refuse_records(original, data, *args, **kwargs):
    if is_record_level(data) or (hasattr(data, "obj") and is_record_level(data.obj)):
        raise DisclosureError(DRAWS_RECORDS, rule="record-level data")
    return original(data, *args, **kwargs)


def _axes(policy: Policy, name: str, original, self, *args, **kwargs):
    records = _records_in(args, kwargs)
    if records is not None:
        if name != "hist":
            raise DisclosureError(DRAWS_RECORDS, rule="record-level data")
        check_histogram(policy, records, kwargs.get("bins", 10), kwargs.get("range"))
    return original(self, *args, **kwargs)


def _patch_matplotlib(policy: Policy) -> None:
    from matplotlib.axes import Axes

    for name in AXES_METHODS:
        if hasattr(Axes, name):
            registry.guard(Axes, name, partial(_axes, policy, name))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches matplotlib's Axes as soon as ``matplotlib.axes`` has been imported."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def find_spec(self, fullname, path, target=None):
        if fullname != "matplotlib.axes":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        execute = loader.exec_module
        policy = self.policy

        def exec_module(module):
            execute(module)
            _patch_matplotlib(policy)

        loader.exec_module = exec_module
        return spec


def install(session: FilterSession) -> None:
    """Guard pandas plotting now, and matplotlib when it is imported (idempotent)."""
    policy = session.policy
    if registry.is_installed(plotting.PlotAccessor, "__call__"):
        return
    registry.guard(plotting.PlotAccessor, "__call__", partial(_plot, policy))
    for cls in (pd.Series, pd.DataFrame, DataFrameGroupBy, SeriesGroupBy):
        registry.guard(cls, "hist", partial(_hist, policy))
    for cls in (pd.DataFrame, DataFrameGroupBy):
        registry.guard(cls, "boxplot", _refuse_records)
    if "matplotlib.axes" in sys.modules:
        _patch_matplotlib(policy)
    else:
        sys.meta_path.insert(0, _AfterImport(policy))
