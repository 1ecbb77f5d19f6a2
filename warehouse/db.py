"""Connections to the warehouse database (SQLite by default, PostgreSQL when configured), and
its schema, which only the alembic migrations in ``warehouse/migrations`` change.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from warehouse.settings import warehouse_url

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0002"  # the newest revision; tests check it against the migrations folder
FIRST = "0001"  # the schema the walking skeleton made with metadata.create_all
# Any fixed number: PostgreSQL sessions that upgrade the schema take turns on this lock.
_PG_LOCK = 0x454E434C


def connect(url: str | None = None, *, readonly: bool = False) -> Engine:
    """An engine for the warehouse at ``url`` (default: ``settings.warehouse_url()``).

    ``readonly`` opens SQLite files in read-only mode, so a bug in reading code cannot
    change the warehouse.
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
    """Upgrade the warehouse to the newest migration (creating it if empty).

    A database made before migrations existed (tables, no ``alembic_version``) is first
    stamped as the first revision, which is exactly what it holds. Concurrent callers take
    turns: the upgrade runs in one transaction under a lock.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, and transactional DDL
        elif conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        current = schema_revision(conn)
        if current == HEAD:
            return
        config = _alembic_config(conn)
        from alembic import command

        if current is None and inspect(conn).has_table("batches"):
            command.stamp(config, FIRST)
        command.upgrade(config, "head")


def upgrade_to(engine: Engine, revision: str) -> None:
    """Upgrade or downgrade the warehouse to ``revision`` (for tests and repairs)."""
    from alembic import command

    with engine.begin() as conn:
        config = _alembic_config(conn)
        current = schema_revision(conn)
        if revision == "base" or (current is not None and revision < current):
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)


def schema_revision(conn: Connection) -> str | None:
    """The migration the database is at, or None if it has never been migrated."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _alembic_config(conn: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config
