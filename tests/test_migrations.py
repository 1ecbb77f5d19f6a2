"""Tests for the warehouse migrations (alembic), on SQLite and PostgreSQL: an empty database
upgrades to exactly the schema of warehouse/schema.py; a database the walking skeleton made
without migrations is recognised and upgraded with its rows; every migration goes down and up
again; HEAD names the newest revision."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text

import tests.postgres as postgres
from warehouse.db import FIRST, HEAD, MIGRATIONS, connect, create_schema, schema_revision, upgrade_to
from warehouse.institutions import add_institution, list_institutions
from warehouse.schema import batches, metadata


def differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def revision(engine) -> str | None:
    with engine.connect() as conn:
        return schema_revision(conn)


def test_head_is_the_newest_revision_and_the_history_is_one_line():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert script.get_heads() == [HEAD]
    chain = [r.revision for r in script.walk_revisions()]
    assert chain[-1] == FIRST and chain[0] == HEAD
    assert len(chain) == len(set(chain)) == len(list(MIGRATIONS.glob("versions/0*.py")))


def test_an_empty_database_upgrades_to_the_schema_module(empty_warehouse_url):
    engine = connect()
    assert revision(engine) is None and inspect(engine).get_table_names() == []

    create_schema(engine)

    assert revision(engine) == HEAD
    assert differences(engine) == []
    assert set(inspect(engine).get_table_names()) == set(metadata.tables) | {"alembic_version"}
    engine.dispose()


def test_create_schema_again_changes_nothing(warehouse_url):
    engine = connect()
    member = add_institution(engine, "Valle Verde Unified", "k12")
    create_schema(engine)
    create_schema(engine)
    assert revision(engine) == HEAD
    assert [m.code for m in list_institutions(engine)] == [member.code]
    engine.dispose()


def test_a_database_made_before_migrations_is_stamped_and_upgraded_with_its_rows(empty_warehouse_url):
    engine = connect()
    upgrade_to(engine, FIRST)
    member = add_institution(engine, "Sierra Alta College", "cc")
    with engine.begin() as conn:  # what metadata.create_all left: the tables, no version
        conn.execute(text("DROP TABLE alembic_version"))
    assert revision(engine) is None
    assert "withdrawn_at" not in {c["name"] for c in inspect(engine).get_columns("batches")}

    create_schema(engine)

    assert revision(engine) == HEAD
    assert differences(engine) == []
    assert [m.code for m in list_institutions(engine)] == [member.code]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(batches)) == 0
    engine.dispose()


def test_every_migration_goes_down_and_up_again(empty_warehouse_url):
    engine = connect()
    create_schema(engine)
    upgrade_to(engine, FIRST)
    assert revision(engine) == FIRST
    assert "uses" not in inspect(engine).get_table_names()
    upgrade_to(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    create_schema(engine)
    assert revision(engine) == HEAD and differences(engine) == []
    engine.dispose()


def test_without_server_binaries_the_fixture_says_how_to_install_them(monkeypatch):
    monkeypatch.delenv("ENCLAVE_PG_BIN", raising=False)
    monkeypatch.setattr(postgres.glob, "glob", lambda _pattern: [])
    monkeypatch.setattr(postgres.shutil, "which", lambda _name: None)
    with pytest.raises(postgres.PostgresUnavailable, match="apt-get install postgresql"):
        postgres.server_binaries()
