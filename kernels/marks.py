"""How a pandas object says where it came from, so the output filter can judge it.

The mark rides in ``obj.attrs["enclave"]``, which pandas carries through row-preserving
operations (boolean indexing, column selection, sorting, ``head``):

- ``record``: record-level data from ``kernels.data`` or derived row by row from it;
- ``protected``: an aggregate whose unsafe cells were suppressed when it was made.

Aggregations that drop attrs (``size``, ``value_counts``, ``crosstab``) are wrapped by the
output filter, which decides the mark where the aggregate is made.
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import pandas as pd

KEY = "enclave"
RECORD = "record"
PROTECTED = "protected"

# The frames records were loaded as, per record set: the full columns behind a subset's
# table (``output_filters`` links tables over subsets through them). Weak: a frame the
# researcher dropped is not kept alive.
_loaded: dict[str, list[weakref.ref]] = {}


def _set(obj: Any, mark: dict) -> Any:
    obj.attrs[KEY] = mark
    return obj


def mark_record_level(obj: Any, source: str, universe: str | None = None) -> Any:
    """Mark ``obj`` as record-level data read from table ``source``.

    ``universe`` names the record set its rows belong to (their index labels are the records'
    ids in it; ``kernels.data`` gives ``table:NAME``). Without one, ``obj`` starts a record set
    of its own, keyed by its rows.
    """
    if universe is None:
        index = getattr(obj, "index", None)
        digest = hashlib.sha1(pd.util.hash_pandas_object(index, index=False).to_numpy().tobytes()).hexdigest()[:16]
        universe = f"{source}#{digest}:{len(index)}" if index is not None else source
    return _set(obj, {"level": RECORD, "source": source, "universe": universe})


def register_load(frame: pd.DataFrame) -> None:
    """Remember ``frame`` as loaded records of its record set (weakly)."""
    universe = (mark_of(frame) or {}).get("universe")
    if universe is None:
        return
    refs = [ref for ref in _loaded.get(universe, []) if ref() is not None]
    refs.append(weakref.ref(frame))
    _loaded[universe] = refs[-8:]


def loaded_frames(universe: str) -> list[pd.DataFrame]:
    """The frames of a record set that are still alive, newest first."""
    return [frame for ref in reversed(_loaded.get(universe, [])) if (frame := ref()) is not None]


def mark_protected(obj: Any, note: str, codes: dict | None = None) -> Any:
    """Mark ``obj`` as a checked aggregate; ``note`` says what was suppressed and why.

    ``codes`` maps labels of suppressed cells to the text they show instead of the mark
    (a rate coded as "<5%", say).
    """
    mark = {"level": PROTECTED, "note": note}
    if codes:
        mark["codes"] = codes
    return _set(obj, mark)


def mark_of(obj: Any) -> dict | None:
    """The mark of a pandas object, or None for plain objects."""
    attrs = getattr(obj, "attrs", None)
    if not isinstance(attrs, dict):
        return None
    mark = attrs.get(KEY)
    return mark if isinstance(mark, dict) else None


def level_of(obj: Any) -> str | None:
    mark = mark_of(obj)
    return mark.get("level") if mark else None


def is_record_level(obj: Any) -> bool:
    return level_of(obj) == RECORD
