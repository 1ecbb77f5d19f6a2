"""Connections to the warehouse database (SQLite by default, PostgreSQL when configured)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from warehouse.schema import metadata
from warehouse.settings import warehouse_url


def connect(url: str | None = None, *, readonly: bool = False) -> Engine:
    """An engine for the warehouse at ``url`` (default: ``settings.warehouse_url()``).

    ``readonly`` opens SQLite files in read-only mode, as the research kernels do, so a
    bug in reading code cannot change the warehouse.
    """
    parsed = make_url(url or warehouse_url())
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        if readonly:
            parsed = parsed.set(database=f"file:{parsed.database}?mode=ro", query={"uri": "true"})
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def create_schema(engine: Engine) -> None:
    """Create any missing warehouse tables."""
    metadata.create_all(engine)
