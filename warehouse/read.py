"""Read coded warehouse tables as pandas frames (the research kernels' side).

Rows come without their batch ids; institution names are never part of a data table.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from warehouse.exceptions import UnknownTable
from warehouse.schema import DATA_TABLES

HIDDEN = {"batch_id"}


def table_names() -> list[str]:
    """The data tables, in the order of the data flow (K-12, college, university)."""
    return list(DATA_TABLES)


def table_columns(name: str) -> list[str]:
    return [c.name for c in _table(name).columns if c.name not in HIDDEN]


def read_table(engine: Engine, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """All current rows of table ``name`` (optionally only ``columns``), typed."""
    table = _table(name)
    available = table_columns(name)
    wanted = list(columns) if columns is not None else available
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise UnknownTable(
            f"{name} has no column(s) {', '.join(map(repr, unknown))}; its columns are: {', '.join(available)}"
        )
    query = select(*(table.c[c] for c in wanted))
    with engine.connect() as conn:
        result = conn.execute(query)
        frame = pd.DataFrame(result.all(), columns=wanted)
    for column in wanted:
        kind = table.c[column].type.python_type
        if kind is bool:
            frame[column] = frame[column].astype("boolean" if table.c[column].nullable else bool)
        elif kind is int:
            frame[column] = frame[column].astype("Int64" if table.c[column].nullable else "int64")
        elif kind is float:
            frame[column] = frame[column].astype(float)
        else:
            frame[column] = frame[column].astype("str")
    return frame


def _table(name: str):
    try:
        return DATA_TABLES[name]
    except KeyError:
        raise UnknownTable(f"no table {name!r}; tables: {', '.join(DATA_TABLES)}") from None
