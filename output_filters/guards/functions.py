"""What an aggregation function is, for the rules: a count, a statistic, an extreme, or custom.

Callables are trusted by identity, never by name: a user's own function may be called "mean".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

COUNTS = {"count", "size", "nunique"}
STATISTICS = {"mean", "median", "sum", "std", "var", "sem", "quantile", "prod", "skew", "kurt"}
EXTREMES = {"min", "max", "first", "last", "idxmin", "idxmax", "nth", "ohlc", "mode", "unique"}
KNOWN_CALLABLES: dict[Any, str] = {
    len: "size",
    np.size: "size",
    np.mean: "mean",
    np.nanmean: "mean",
    np.median: "median",
    np.nanmedian: "median",
    np.sum: "sum",
    np.nansum: "sum",
    sum: "sum",
    np.std: "std",
    np.var: "var",
    min: "min",
    max: "max",
    np.min: "min",
    np.max: "max",
    pd.Series.mean: "mean",
    pd.Series.sum: "sum",
    pd.Series.count: "count",
    pd.Series.nunique: "nunique",
}
EXTREME_REASON = (
    "the minimum, maximum, first and last values of record-level data are single students' "
    "values and are never shown; use quantiles (e.g. .quantile(0.1)) or describe() instead"
)
CUSTOM_REASON = (
    "the output filter cannot check a custom function applied to record-level data; use "
    "named aggregations such as 'mean', 'median', 'sum', 'count', 'size' or 'nunique'"
)


def name_of(func: Any) -> str | None:
    """The aggregation's name ("mean", "size", ...) if the filter knows it, else None."""
    if isinstance(func, str):
        return func
    try:
        return KNOWN_CALLABLES.get(func)
    except TypeError:  # unhashable: a user's callable object
        return None


def kind_of(func: Any) -> str:
    """'count', 'statistic', 'extreme' or 'custom' for an aggregation function."""
    name = name_of(func)
    if name in COUNTS:
        return "count"
    if name in STATISTICS:
        return "statistic"
    if name in EXTREMES:
        return "extreme"
    return "custom"


def is_flag(values: pd.Series) -> bool:
    """A yes/no column: booleans, or numbers that are only 0 and 1 (their mean is a rate)."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return True
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        present = pd.unique(values.dropna())
        return len(present) > 0 and set(np.asarray(present, dtype=float).tolist()) <= {0.0, 1.0}
    return False


def as_flag(values: pd.Series) -> pd.Series:
    """A yes/no column as booleans (missing values stay missing)."""
    return values.astype("boolean")
