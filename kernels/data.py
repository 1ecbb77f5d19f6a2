"""The researcher's door to the data: ``from kernels import data``.

``data.tables()`` lists the tables you may read, ``data.columns(name)`` their columns, and
``data.load(name, columns=None)`` returns the rows as a pandas DataFrame. Frames are
record-level: the output filter never shows them, only aggregates of them (counts, rates,
means) with small cells suppressed. Institutions appear only by their secret codes; students
only by their pseudonymous keys.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
from sqlalchemy import Engine

from kernels.marks import mark_record_level
from warehouse.db import connect
from warehouse.read import read_table, table_columns, table_names


@cache
def _engine() -> Engine:
    return connect(readonly=True)


def tables() -> list[str]:
    """Names of the tables you may load."""
    return table_names()


def columns(name: str) -> list[str]:
    """Columns of table ``name``, without loading it."""
    return table_columns(name)


def load(name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Records of table ``name`` (only ``columns`` if given), marked record-level."""
    frame = read_table(_engine(), name, columns)
    return mark_record_level(frame, name)
