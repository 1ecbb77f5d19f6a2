"""Which records a table counts: its dimensions as Series over the records, and their record set.

A count table made from record-level data has, behind each of its axes, a Series with one
value per record counted (``df.institution``, ``mine.gender``, a groupby key). Their index
labels are the records' ids in their record set (``kernels.marks``): a subset of a loaded
frame (a mask, ``query``, ``isin``, ``loc`` with a mask, ``groupby().filter``, a merge that
keeps the left rows) keeps its rows' labels, so the ledger can tell which records two tables
share. A dimension that is a column of the loaded frame is taken with its values on every
record of the frame, so a subset's mask can be seen as the function of columns it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.core.groupby.groupby import GroupBy

from kernels.marks import is_record_level, loaded_frames, mark_of

RECORD_IDS_FROM = 1 << 62  # loaded records' ids are at least this (warehouse.extracts.record_ids)


def involves_records(*args, **kwargs) -> bool:
    """Whether any argument (or list item, or a GroupBy's object) is record-level data."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, GroupBy):
            value = value.obj
        if is_record_level(value):
            return True
        if isinstance(value, list | tuple) and any(is_record_level(v) for v in value):
            return True
    return False


def record_dims(*values) -> list[pd.Series] | None:
    """The records' dimension Series behind a table (None unless all are Series on one index)."""
    dims: list[pd.Series] = []
    for value in values:
        dims.extend(value if isinstance(value, list | tuple) else [value])
    if not dims or not all(isinstance(d, pd.Series) for d in dims):
        return None
    if any(not d.index.equals(dims[0].index) for d in dims[1:]):
        return None
    return dims


def group_dims(gb: GroupBy, extra: pd.Series | None = None) -> list[pd.Series] | None:
    """The grouping keys of ``gb`` as Series over its records (plus ``extra``), if they can be had."""
    index = gb.obj.index
    dims = []
    for grouping in gb._grouper.groupings:
        vector = grouping.grouping_vector
        if len(vector) != len(index):
            return None
        values = vector if isinstance(vector, pd.Series) else np.asarray(vector)
        name = grouping.name if grouping.name is not None else getattr(vector, "name", None)
        dims.append(pd.Series(np.asarray(values), index=index, name=name))
    return record_dims(*dims, *([extra] if extra is not None else []))


@dataclass(frozen=True)
class Counted:
    """What the ledger needs of a count table: its record set, the records, their values."""

    universe: str
    labels: np.ndarray  # ids of the records counted
    dims: list[tuple[str | None, np.ndarray, np.ndarray]]  # (name, record ids, values) per axis


def counted(dims: list[pd.Series], sources: tuple = (), dropna: bool = True) -> Counted | None:
    """The records behind a table of ``dims``, or None if they cannot be told apart.

    ``sources`` are the record-level objects the table was made from (their mark names the
    record set). Records with a missing value in any dimension are not counted (pandas'
    ``dropna``) unless ``dropna`` is False.
    """
    mark = next((m for m in (mark_of(x) for x in (*dims, *sources)) if m and m.get("level") == "record"), None)
    if mark is None or not (dims or sources):
        return None
    index = dims[0].index if dims else sources[0].index
    if not index.is_unique or not pd.api.types.is_integer_dtype(index.dtype):
        return None
    labels = index.to_numpy(dtype=np.int64)
    if str(mark.get("universe", "")).startswith("table:") and len(labels) and labels.min() < RECORD_IDS_FROM:
        return None  # the rows were relabelled (reset_index, set_index): not the records' ids
    keep = np.ones(len(index), dtype=bool)
    if dropna:
        for dim in dims:
            keep &= dim.notna().to_numpy()
    out = []
    frames = loaded_frames(mark["universe"])
    for dim in dims:
        out.append(_full_dimension(dim, labels, frames))
    return Counted(mark["universe"], labels[keep], out)


def _full_dimension(dim: pd.Series, labels: np.ndarray, frames: list[pd.DataFrame]):
    """(name, ids, values): a column of a loaded frame on all its records if ``dim`` is that column."""
    name = dim.name if dim.name is None or isinstance(dim.name, str) else str(dim.name)
    for frame in frames:
        if name is None or name not in frame.columns:
            continue
        column = frame[name]
        if dim.index.equals(frame.index):
            if column.equals(dim):
                return name, frame.index.to_numpy(dtype=np.int64), column
            continue
        positions = frame.index.get_indexer(dim.index)
        if (positions < 0).any():
            continue
        if column.iloc[positions].reset_index(drop=True).equals(dim.reset_index(drop=True)):
            return name, frame.index.to_numpy(dtype=np.int64), column
    return name, labels, dim
