"""The tamper-evident audit log: every administrative action, in a hash chain.

Each event stores the SHA-256 of the previous event's hash and its own content, so changing
or deleting a past event breaks every hash after it; ``verify()`` finds the first break.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime

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
    select,
)

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
    Column("hash", String(64), nullable=False),
)
GENESIS = "0" * 64


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    actor: str
    event: str
    details: dict


def audit_url() -> str:
    return os.environ.get("ENCLAVE_AUDIT_URL") or f"sqlite:///{state_path('audit.db')}"


def _digest(previous: str, at: str, actor: str, event: str, details: str) -> str:
    return hashlib.sha256("\x1f".join((previous, at, actor, event, details)).encode()).hexdigest()


class AuditLog:
    def __init__(self, engine: Engine | None = None):
        self.engine = engine or create_engine(audit_url())
        metadata.create_all(self.engine)

    def record(self, actor: str, event: str, **details) -> None:
        """Append an event (in one transaction with reading the previous hash)."""
        text = json.dumps(details, sort_keys=True, default=str)
        at = datetime.now(UTC)
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # Take the write lock before reading the last hash: otherwise two writers
                # read the same previous hash and fork the chain (verify() then reports a break).
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            previous = conn.execute(select(events.c.hash).order_by(events.c.id.desc()).limit(1)).scalar()
            digest = _digest(previous or GENESIS, at.isoformat(), actor, event, text)
            conn.execute(insert(events).values(at=at, actor=actor, event=event, details=text, hash=digest))

    def events(self) -> list[Event]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(events).order_by(events.c.id)).all()
        return [Event(r.id, r.at, r.actor, r.event, json.loads(r.details)) for r in rows]

    def verify(self) -> int | None:
        """The id of the first event whose hash does not match, or None if the chain holds."""
        previous = GENESIS
        with self.engine.connect() as conn:
            for row in conn.execute(select(events).order_by(events.c.id)):
                at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
                if _digest(previous, at.isoformat(), row.actor, row.event, row.details) != row.hash:
                    return row.id
                previous = row.hash
        return None
