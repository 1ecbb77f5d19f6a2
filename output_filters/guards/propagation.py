"""Record-level data stays marked when frames are combined or reshaped.

pandas keeps ``attrs`` through row-preserving operations on one frame, but drops them when
frames are merged, joined or concatenated (unless every input has identical attrs), and in
``pivot`` and groupby ``transform``/``filter``. These entry points are wrapped: if any input
is record-level, so is the result. Failing closed is the point: a merged frame of records is
still records.
"""

from __future__ import annotations

import pandas as pd
import pandas.core.reshape.concat as concat_module
import pandas.core.reshape.merge as merge_module
from pandas.core.groupby.generic import DataFrameGroupBy, SeriesGroupBy

from kernels.marks import mark_of, mark_record_level
from output_filters.guards import registry as patching
from output_filters.guards.aggregates import _guarded, _originals

MODULE_FUNCTIONS = (
    (merge_module, "merge"),
    (merge_module, "merge_ordered"),
    (merge_module, "merge_asof"),
    (concat_module, "concat"),
)


def _sources(args: tuple, kwargs: dict) -> str:
    names: list[str] = []
    for value in (*args, *kwargs.values()):
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if hasattr(item, "obj") and not isinstance(item, pd.Series | pd.DataFrame):
                item = item.obj
            mark = mark_of(item)
            if mark and mark.get("level") == "record" and mark.get("source") not in names:
                names.append(mark.get("source"))
    return "+".join(str(n) for n in names)


def _still_records(original, *args, **kwargs):
    result = original(*args, **kwargs)
    if isinstance(result, pd.DataFrame | pd.Series):
        mark_record_level(result, _sources(args, kwargs))
    return result


def install() -> None:
    """Wrap the combining and reshaping entry points (after ``aggregates.install``)."""
    if (pd.DataFrame, "join") in _originals:
        return
    for module, name in MODULE_FUNCTIONS:
        _guarded(module, name, _still_records)
        patching.replace(pd, name, getattr(module, name))
    for name in ("join", "pivot", "melt"):
        _guarded(pd.DataFrame, name, _still_records)
    for owner in (DataFrameGroupBy, SeriesGroupBy):
        for name in ("transform", "filter"):
            _guarded(owner, name, _still_records)
