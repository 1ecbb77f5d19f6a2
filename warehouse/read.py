"""Read coded warehouse tables as pandas frames, typed the same way everywhere.

Rows come without their batch ids; institution names are never part of a data table. The
extracts of approved uses are written from these frames, so a column has the same dtype in
the warehouse, in an extract, and in a researcher's kernel.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Column, Engine, Table, select

from warehouse.exceptions import UnknownTable
from warehouse.schema import DATA_TABLES

HIDDEN = {"batch_id"}


def table_names() -> list[str]:
    """The data tables, in the order of the data flow (K-12, college, university)."""
    return list(DATA_TABLES)


def table_columns(name: str) -> list[str]:
    return [c.name for c in _table(name).columns if c.name not in HIDDEN]


def pandas_dtype(column: Column) -> str:
    """The dtype of a warehouse column in pandas (nullable ones keep their missing values)."""
    kind = column.type.python_type
    if kind is bool:
        return "boolean" if column.nullable else "bool"
    if kind is int:
        return "Int64" if column.nullable else "int64"
    if kind is float:
        return "float64"
    return "str"


def typed(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """``frame`` (columns of ``table``, values as the database returned them) with its dtypes."""
    for name in frame.columns:
        frame[name] = frame[name].astype(pandas_dtype(table.c[name]))
    return frame


def check_columns(name: str, columns: list[str] | None) -> list[str]:
    """``columns`` (default: all) after checking they are columns of table ``name``."""
    available = table_columns(name)
    wanted = list(columns) if columns is not None else available
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise UnknownTable(
            f"{name} has no column(s) {', '.join(map(repr, unknown))}; its columns are: {', '.join(available)}"
        )
    return wanted


def read_table(engine: Engine, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """All current rows of table ``name`` (optionally only ``columns``), typed."""
    table = _table(name)
    wanted = check_columns(name, columns)
    with engine.connect() as conn:
        result = conn.execute(select(*(table.c[c] for c in wanted)))
        frame = pd.DataFrame(result.all(), columns=wanted)
    return typed(frame, table)


def _table(name: str) -> Table:
    try:
        return DATA_TABLES[name]
    except KeyError:
        raise UnknownTable(f"no table {name!r}; tables: {', '.join(DATA_TABLES)}") from None
