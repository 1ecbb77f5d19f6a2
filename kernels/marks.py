"""How a pandas object says where it came from, so the output filter can judge it.

The mark rides in ``obj.attrs["enclave"]``, which pandas carries through row-preserving
operations (boolean indexing, column selection, sorting, ``head``):

- ``record``: record-level data from ``kernels.data`` or derived row by row from it;
- ``protected``: an aggregate whose unsafe cells were suppressed when it was made.

Aggregations that drop attrs (``size``, ``value_counts``, ``crosstab``) are wrapped by the
output filter, which decides the mark where the aggregate is made.
"""

from __future__ import annotations

from typing import Any

KEY = "enclave"
RECORD = "record"
PROTECTED = "protected"


def _set(obj: Any, mark: dict) -> Any:
    obj.attrs[KEY] = mark
    return obj


def mark_record_level(obj: Any, source: str) -> Any:
    """Mark ``obj`` as record-level data read from table ``source``."""
    return _set(obj, {"level": RECORD, "source": source})


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
