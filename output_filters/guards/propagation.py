"""Record-level data stays marked when frames are combined, reshaped or rebuilt.

pandas keeps ``attrs`` through row-preserving operations on one frame, but drops them when
frames are merged, joined or concatenated (unless every input has identical attrs), in
``pivot``, ``melt``, ``unstack``, ``dot``, ``get_dummies``, ``cut``/``qcut``, groupby
``transform``/``filter``, window operations (``rolling``, ``expanding``, ``ewm``), and when a
new frame or Series is built from one (``pd.DataFrame(df)``). These entry points are wrapped:
if any input is record-level, so is the result. Failing closed is the point: a merged frame
of records is still records.

The mark also says which record set the rows belong to (``kernels.marks``), so tables over a
subset are linked to tables over the whole: a merge keeps the left frame's record ids when it
keeps at most one row per left row (an inner or left join on a unique right key); anything
else starts a record set of its own.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
import pandas.core.reshape.concat as concat_module
import pandas.core.reshape.merge as merge_module
import pandas.core.reshape.tile as tile_module
from pandas.core.groupby.generic import DataFrameGroupBy, SeriesGroupBy
from pandas.core.window import ewm, expanding, rolling

from kernels.marks import mark_of, mark_record_level
from output_filters.guards import registry
from output_filters.guards.callers import from_user_code
from output_filters.guards.records import involves_records
from output_filters.session import FilterSession

MODULE_FUNCTIONS = (
    (merge_module, "merge_ordered"),
    (merge_module, "merge_asof"),
    (tile_module, "cut"),
    (tile_module, "qcut"),
)
WINDOWS = (
    rolling.Window,
    rolling.Rolling,
    rolling.RollingGroupBy,
    expanding.Expanding,
    expanding.ExpandingGroupBy,
    ewm.ExponentialMovingWindow,
    ewm.ExponentialMovingWindowGroupBy,
)
WINDOW_METHODS = (
    "mean",
    "sum",
    "std",
    "var",
    "min",
    "max",
    "median",
    "count",
    "quantile",
    "apply",
    "aggregate",
    "agg",
    "corr",
    "cov",
    "skew",
    "kurt",
    "sem",
    "rank",
)
_ROW_ID = "__enclave_row__"


def _record_marks(args: tuple, kwargs: dict) -> list[dict]:
    marks = []
    for value in (*args, *kwargs.values()):
        for item in value if isinstance(value, list | tuple) else [value]:
            if hasattr(item, "obj") and not isinstance(item, pd.Series | pd.DataFrame):
                item = item.obj
            if hasattr(item, "_selected_obj") and not isinstance(item, pd.Series | pd.DataFrame):
                item = item._selected_obj
            mark = mark_of(item)
            if mark and mark.get("level") == "record":
                marks.append(mark)
    return marks


def _sources(marks: list[dict]) -> str:
    return "+".join(dict.fromkeys(str(m.get("source")) for m in marks if m.get("source")))


def _marked_like(result, marks: list[dict], same_rows: bool):
    """Mark ``result`` record-level: of the inputs' record set if it keeps their rows' ids."""
    if not isinstance(result, pd.Series | pd.DataFrame) or not marks:
        return result
    universes = {m.get("universe") for m in marks}
    first = marks[0]
    if same_rows and len(universes) == 1 and result.index.is_unique:
        return mark_record_level(result, _sources(marks), first.get("universe"))
    return mark_record_level(result, _sources(marks))


def still_records(original, *args, **kwargs):
    """Any result of record-level input is record-level (a record set of its own)."""
    return _marked_like(original(*args, **kwargs), _record_marks(args, kwargs), same_rows=False)


def same_rows(original, *args, **kwargs):
    """A result with one row per input record, under the same ids (a transform, a window)."""
    return _marked_like(original(*args, **kwargs), _record_marks(args, kwargs), same_rows=True)


def concat(original, objs, *args, **kwargs):
    """Rows of one record set stay in it if no id repeats (subsets put back together)."""
    items = list(objs.values()) if isinstance(objs, dict) else list(objs)
    result = original(items if not isinstance(objs, dict) else objs, *args, **kwargs)
    axis = kwargs.get("axis", 0)
    return _marked_like(result, _record_marks((items,), {}), same_rows=not kwargs.get("ignore_index", False) or axis)


def merge(original, left, right, *args, **kwargs):
    """A merge keeps the left frame's record ids when each left row appears at most once."""
    marks = _record_marks((left, right), {})
    left_mark = mark_of(left) or {}
    keyed = not (kwargs.get("left_index") or kwargs.get("right_index")) and kwargs.get("how", "inner") in (
        "inner",
        "left",
    )
    if not (keyed and left_mark.get("level") == "record" and isinstance(left, pd.DataFrame)):
        return _marked_like(original(left, right, *args, **kwargs), marks, same_rows=False)
    carried = left.assign(**{_ROW_ID: left.index})
    result = original(carried, right, *args, **kwargs)
    ids = result.pop(_ROW_ID)
    if ids.is_unique:
        result.index = pd.Index(ids.to_numpy(), name=left.index.name)
        return mark_record_level(result, _sources(marks), left_mark.get("universe"))
    return _marked_like(result, marks, same_rows=False)


def join(original, self, other, *args, **kwargs):
    """A join on the index keeps the left frame's rows (and ids) for a left or inner join."""
    result = original(self, other, *args, **kwargs)
    how = kwargs.get("how", args[1] if len(args) > 1 else "left")
    marks = _record_marks((self, other), {})
    left_mark = mark_of(self) or {}
    if left_mark.get("level") == "record" and how in ("left", "inner") and result.index.is_unique:
        return mark_record_level(result, _sources(marks), left_mark.get("universe"))
    return _marked_like(result, marks, same_rows=False)


def dot(policy, original, self, other, *args, **kwargs):
    """A dot product of two columns of records is a sum over them: a statistic of its records."""
    from output_filters.guards import scalars

    result = original(self, other, *args, **kwargs)
    if isinstance(result, pd.Series | pd.DataFrame):
        return _marked_like(result, _record_marks((self, other), {}), same_rows=False)
    return scalars.statistic(result, len(self.index), policy)


def _built(original, self, data=None, *args, **kwargs):
    """``pd.DataFrame(df)``, ``pd.Series(s)``: a new object of records is records."""
    original(self, data, *args, **kwargs)
    if data is not None and from_user_code(3):
        marks = _record_marks((data,), {})
        if not marks and isinstance(data, dict):
            marks = _record_marks(tuple(data.values()), {})
        if not marks and _is_record_array(data):
            marks = [{"level": "record", "source": "an array of record-level values"}]
        if marks:
            _marked_like(self, marks, same_rows=isinstance(data, pd.Series | pd.DataFrame))


def _is_record_array(data) -> bool:
    from output_filters.guards.conversions import RecordArray

    return isinstance(data, RecordArray)


def _window(original, self, *args, **kwargs):
    result = original(self, *args, **kwargs)
    mark = mark_of(getattr(self, "obj", None)) or {}
    if mark.get("level") == "record" and isinstance(result, pd.Series | pd.DataFrame):
        mark_record_level(result, mark.get("source", ""), mark.get("universe"))
    return result


def install(session: FilterSession) -> None:
    """Wrap the combining and reshaping entry points (idempotent)."""
    registry.guard(merge_module, "merge", merge, when=involves_records, outermost=True)
    registry.replace(pd, "merge", merge_module.merge)
    registry.guard(concat_module, "concat", concat, when=involves_records, outermost=True)
    registry.replace(pd, "concat", concat_module.concat)
    for module, name in MODULE_FUNCTIONS:
        registry.guard(module, name, still_records, when=involves_records, outermost=True)
        registry.replace(pd, name, getattr(module, name))
    import pandas.core.reshape.encoding as encoding_module

    registry.guard(encoding_module, "get_dummies", same_rows, when=involves_records, outermost=True)
    registry.replace(pd, "get_dummies", encoding_module.get_dummies)
    registry.guard(pd.DataFrame, "join", join, when=involves_records, outermost=True)
    for name in ("pivot", "melt", "unstack", "dot", "explode", "stack"):
        registry.guard(pd.DataFrame, name, still_records, when=involves_records, outermost=True)
    registry.guard(pd.Series, "unstack", still_records, when=involves_records, outermost=True)
    registry.guard(pd.Series, "dot", partial(dot, session.policy), when=involves_records, outermost=True)
    for owner in (DataFrameGroupBy, SeriesGroupBy):
        for name in ("transform", "filter"):
            registry.guard(owner, name, same_rows, when=involves_records, outermost=True)
    for cls in WINDOWS:
        for name in WINDOW_METHODS:
            if name in dir(cls):
                registry.guard(cls, name, _window)
    for cls in (pd.DataFrame, pd.Series):
        registry.guard(cls, "__init__", _built)
