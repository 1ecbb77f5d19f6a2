"""The tamper-evident audit log: every action that matters, append-only, in a hash chain.

Each record stores the hash of the record before it (``previous``) and its own hash, the
SHA-256 of ``previous`` and its content. Changing a record breaks its own hash; deleting or
moving one breaks the link of the record after it; ``verify()`` names each break. Deleting the
newest records leaves a shorter chain that still holds, so the head (``head()``: the last
record's number and hash) is kept outside, by the administrators (``enclave audit head``),
and ``verify(anchor)`` checks the log still reaches it.

Writers never fork the chain: each append reads the last hash and inserts under a lock
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory lock), and ``previous``
is unique, so even a writer outside this code cannot give two records one predecessor. The
database refuses UPDATE and DELETE on the table (triggers), so nothing in this code base can
edit or remove a record; someone with the database's owner rights can, and ``verify`` sees it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from hub.exceptions import AuditError
from warehouse.settings import state_path

metadata = MetaData()
events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("event", String(60), nullable=False),
    Column("details", Text, nullable=False),
    Column("previous", String(64), nullable=True, unique=True),
    Column("hash", String(64), nullable=False),
)
GENESIS = "0" * 64
LOCK_KEY = 0x656E636C  # PostgreSQL advisory lock of the chain ("encl")
APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events",
        "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    ],
}


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    actor: str
    event: str
    details: dict


@dataclass(frozen=True)
class Head:
    """The newest record: what the administrators keep outside the database."""

    id: int
    hash: str

    def __str__(self) -> str:
        return f"{self.id} {self.hash}"

    @classmethod
    def parse(cls, value: str, where: str = "the anchor") -> Head:
        parts = value.split()
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 64:
            raise AuditError(
                f"{where} must be the line `enclave audit head` prints: a record number and a 64-character "
                f"hash, e.g. '42 {'ab' * 32}' (found {value.strip()[:80]!r})"
            )
        return cls(int(parts[0]), parts[1].lower())

    @classmethod
    def read(cls, path: Path) -> Head:
        try:
            return cls.parse(path.read_text(encoding="utf-8"), str(path))
        except OSError as error:
            raise AuditError(f"cannot read the anchor file {path}: {error.strerror}") from None


@dataclass(frozen=True)
class Problem:
    """One break in the chain, naming the record."""

    record: int
    kind: str  # edited, deleted, reordered, truncated
    message: str


def audit_url() -> str:
    return os.environ.get("ENCLAVE_AUDIT_URL") or f"sqlite:///{state_path('audit.db')}"


def _digest(previous: str, at: str, actor: str, event: str, details: str) -> str:
    return hashlib.sha256("\x1f".join((previous, at, actor, event, details)).encode()).hexdigest()


def _stamp(moment: datetime) -> str:
    """The time as hashed: UTC, whatever zone the database hands back."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


class AuditLog:
    def __init__(self, engine: Engine | None = None):
        self.engine = engine or create_engine(audit_url())
        _prepare(self.engine)

    def record(self, actor: str, event: str, **details) -> Event:
        """Append an event (reading the previous hash and inserting under one lock)."""
        body = json.dumps(details, sort_keys=True, default=str)
        for attempt in range(50):
            try:
                return self._append(actor, event, body)
            except (IntegrityError, OperationalError) as error:
                # Another writer took the same predecessor (a writer without the lock) or held
                # SQLite's lock past its timeout: read the new head and try again.
                if attempt == 49:
                    raise AuditError(f"could not append {event!r} to the audit log: {error.orig}") from None
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _append(self, actor: str, event: str, body: str) -> Event:
        at = datetime.now(UTC)
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            previous = conn.execute(select(events.c.hash).order_by(events.c.id.desc()).limit(1)).scalar()
            previous = previous or GENESIS
            digest = _digest(previous, _stamp(at), actor, event, body)
            new_id = conn.execute(
                insert(events).values(at=at, actor=actor, event=event, details=body, previous=previous, hash=digest)
            ).inserted_primary_key[0]
        return Event(new_id, at, actor, event, json.loads(body))

    def events(
        self,
        *,
        user: str | None = None,
        since: datetime | None = None,
        event: str | None = None,
    ) -> list[Event]:
        """Events in order; ``user`` matches the actor or a ``user`` detail, ``event`` a name
        or a prefix ending in '.' (``login.`` is every login event); ``since`` without a zone
        is UTC."""
        query = select(events).order_by(events.c.id)
        if since is not None:
            # In UTC, as the times are written: SQLite compares the text and drops the zone.
            query = query.where(events.c.at >= _utc(since).astimezone(UTC))
        if event:
            query = query.where(events.c.event.startswith(event) if event.endswith(".") else events.c.event == event)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        found = [Event(r.id, _utc(r.at), r.actor, r.event, json.loads(r.details)) for r in rows]
        if user:
            found = [e for e in found if e.actor == user or e.details.get("user") == user]
        return found

    def head(self) -> Head | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(events.c.id, events.c.hash).order_by(events.c.id.desc()).limit(1)).first()
        return Head(row.id, row.hash) if row else None

    def problems(self, anchor: Head | None = None) -> list[Problem]:
        """Every break in the chain, in order; empty if it holds (and reaches ``anchor``)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(events).order_by(events.c.id)).all()
        position_of = {row.hash: index for index, row in enumerate(rows)}
        found: list[Problem] = []
        expected, expected_id = GENESIS, 1
        for index, row in enumerate(rows):
            own = _digest(row.previous or "", _stamp(row.at), row.actor, row.event, row.details)
            if own != row.hash:
                found.append(
                    Problem(row.id, "edited", f"record {row.id} was edited: its content no longer matches its hash")
                )
            elif row.previous != expected:
                if row.previous in position_of and position_of[row.previous] != index - 1:
                    after = rows[position_of[row.previous]].id
                    found.append(
                        Problem(row.id, "reordered", f"record {row.id} was moved: it was written after record {after}")
                    )
                elif row.id > expected_id:
                    missing = f"{expected_id}" if row.id == expected_id + 1 else f"{expected_id}-{row.id - 1}"
                    found.append(Problem(row.id, "deleted", f"record(s) {missing} before record {row.id} were deleted"))
                else:
                    found.append(
                        Problem(
                            row.id - 1,
                            "edited",
                            f"record {row.id - 1} was replaced (edited and its hash recomputed): record {row.id} "
                            "no longer follows it",
                        )
                    )
            expected, expected_id = row.hash, row.id + 1
        if anchor is not None:
            kept = next((row for row in rows if row.id == anchor.id), None)
            if kept is None:
                last = rows[-1].id if rows else 0
                found.append(
                    Problem(
                        anchor.id,
                        "truncated",
                        f"records {last + 1}-{anchor.id} were deleted: the kept head names record {anchor.id}, "
                        f"the log ends at record {last}",
                    )
                )
            elif kept.hash != anchor.hash:
                found.append(
                    Problem(
                        anchor.id, "edited", f"record {anchor.id} is not the one the kept head names (its hash differs)"
                    )
                )
        return found

    def verify(self, anchor: Head | None = None) -> int | None:
        """The record of the first break, or None if the chain holds."""
        found = self.problems(anchor)
        return found[0].record if found else None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _prepare(engine: Engine) -> None:
    """Create the table (or add ``previous`` to one from before it) and make it append-only."""
    metadata.create_all(engine)
    columns = {column["name"] for column in inspect(engine).get_columns("audit_events")}
    with engine.begin() as conn:
        if "previous" not in columns:
            # A log written before ``previous`` existed: each record's predecessor is the one
            # before it, which is what its hash was computed over.
            conn.execute(text("ALTER TABLE audit_events ADD COLUMN previous VARCHAR(64)"))
            last = GENESIS
            for row in conn.execute(select(events.c.id, events.c.hash).order_by(events.c.id)).all():
                conn.execute(text("UPDATE audit_events SET previous = :p WHERE id = :i"), {"p": last, "i": row.id})
                last = row.hash
            conn.execute(text("CREATE UNIQUE INDEX IF NOT EXISTS audit_events_previous ON audit_events (previous)"))
        for statement in APPEND_ONLY.get(engine.dialect.name, []):
            if engine.dialect.name == "postgresql":
                # One hub and one CLI may prepare at once: serialize the trigger's creation.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY + 1})
            conn.execute(text(statement))
