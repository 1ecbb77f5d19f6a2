"""The researcher's door to the data: ``from kernels import data``.

``data.tables()`` lists the tables you may read, ``data.columns(name)`` their columns, and
``data.load(name, columns=None)`` returns the rows as a pandas DataFrame; ``data.uses()``
names your approved uses and what each holds. Frames are record-level: the output filter
never shows them, only aggregates of them (counts, rates, means) with small cells
suppressed. Institutions appear only by their secret codes; students only by their
pseudonymous keys.

What you may read are the extracts of your approved uses (and your institution's own data),
never the warehouse itself. ``data.load("cc_courses")`` combines every use of yours that
holds ``cc_courses``: each institution's rows once, with the columns all those uses grant;
``data.load("USE/cc_courses")`` reads one use alone, with all the columns it grants (see
``warehouse.workspace`` for the rule).
"""

from __future__ import annotations

import pandas as pd

from kernels import events
from kernels.marks import mark_record_level, register_load
from warehouse.workspace import Workspace, current_user


def _workspace() -> Workspace:
    # Read afresh each call: a refresh, grant or withdrawal shows up without a restart.
    return Workspace(current_user())


def tables() -> list[str]:
    """Names of the tables you may load."""
    return _workspace().tables()


def uses() -> dict[str, list[str]]:
    """Your approved uses (and own-institution data), each with the tables it holds."""
    return {m.name: list(m.tables) for m in _workspace().uses}


def columns(name: str) -> list[str]:
    """Columns of table ``name`` (or ``use/table``), without loading it."""
    return _workspace().columns(name)


def load(name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Records of table ``name`` (only ``columns`` if given), marked record-level."""
    try:
        frame = _workspace().load(name, columns)
    except FileNotFoundError:  # an extract was replaced while it was read: read the new one
        frame = _workspace().load(name, columns)
    marked = mark_record_level(frame, name, universe=f"table:{name.rpartition('/')[2]}")
    register_load(marked)
    # For the audit log, through the user's server: what was read, never a value.
    events.record("data.load", table=name, columns=[str(c) for c in frame.columns], rows=len(frame))
    return marked
