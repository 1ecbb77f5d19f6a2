"""Alembic environment: run the migrations on the connection ``create_schema`` passes in.

Run by the ``alembic`` command instead (``alembic -c warehouse/migrations/alembic.ini ...``),
it connects to ``settings.warehouse_url()``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from warehouse.schema import metadata
from warehouse.settings import warehouse_url


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(warehouse_url())
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
