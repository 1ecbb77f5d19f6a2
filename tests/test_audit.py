"""Tests for the audit log: events in order, and a hash chain that shows any edit or deletion."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, delete, select, update

from hub.audit import AuditLog, events


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture
def log(url) -> AuditLog:
    return AuditLog(create_engine(url))


@pytest.fixture
def five(log) -> AuditLog:
    """A log of five events, ids 1-5."""
    log.record("admin", "demo.build", students=3000, seed=7)
    log.record("admin", "user.add", user="alice", role="researcher", institution="ABC234")
    log.record("carol", "user.add", user="bob", role="admin", institution=None)
    log.record("admin", "report.run", template="pathways", parameters={"year": "2024-25"})
    log.record("dave", "user.add", user="erin", role="reviewer", institution="DEF567")
    return log


def sql(log: AuditLog, statement) -> None:
    with log.engine.begin() as conn:
        conn.execute(statement)


def test_events_are_recorded_in_order_with_actor_event_and_details(five):
    recorded = five.events()
    assert [e.id for e in recorded] == [1, 2, 3, 4, 5]
    assert [(e.actor, e.event) for e in recorded] == [
        ("admin", "demo.build"),
        ("admin", "user.add"),
        ("carol", "user.add"),
        ("admin", "report.run"),
        ("dave", "user.add"),
    ]
    assert recorded[0].details == {"students": 3000, "seed": 7}
    assert recorded[1].details == {"user": "alice", "role": "researcher", "institution": "ABC234"}
    assert recorded[2].details["institution"] is None
    assert recorded[3].details == {"template": "pathways", "parameters": {"year": "2024-25"}}
    times = [e.at for e in recorded]
    assert times == sorted(times)
    assert datetime.now(UTC).replace(tzinfo=None) - times[0].replace(tzinfo=None) < timedelta(minutes=1)


def test_details_that_json_cannot_encode_are_kept_as_text(log, tmp_path):
    log.record("admin", "report.run", html=tmp_path / "report.html")
    assert log.events()[0].details == {"html": str(tmp_path / "report.html")}
    assert log.verify() is None


def test_events_persist_across_instances(five, url):
    again = AuditLog(create_engine(url))
    assert again.events() == five.events()
    assert again.verify() is None


def test_an_empty_log_verifies(log):
    assert log.events() == []
    assert log.verify() is None


def test_an_intact_chain_verifies(five):
    assert five.verify() is None


def test_every_hash_is_a_distinct_sha256(five):
    with five.engine.connect() as conn:
        hashes = list(conn.scalars(select(events.c.hash).order_by(events.c.id)))
    assert len(set(hashes)) == 5
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)


def test_recording_after_verification_keeps_the_chain(five):
    assert five.verify() is None
    five.record("admin", "user.add", user="frank", role="author", institution="ABC234")
    assert five.verify() is None
    assert five.events()[-1].id == 6


TAMPERING = [
    # id, the change made directly in SQL, the first event whose hash no longer matches
    ("edit-details-of-event-3", update(events).where(events.c.id == 3).values(details='{"user": "mallory"}'), 3),
    (
        "edit-details-reformatted-json",
        update(events)
        .where(events.c.id == 2)
        .values(details=json.dumps({"user": "alice", "role": "researcher", "institution": "ABC234"})),
        2,
    ),
    ("edit-actor-of-event-4", update(events).where(events.c.id == 4).values(actor="someone-else"), 4),
    ("edit-event-name-of-event-1", update(events).where(events.c.id == 1).values(event="demo.rebuild"), 1),
    ("edit-time-of-event-5", update(events).where(events.c.id == 5).values(at=datetime(2020, 1, 1, tzinfo=UTC)), 5),
    ("delete-event-3", delete(events).where(events.c.id == 3), 4),
    ("delete-events-2-and-3", delete(events).where(events.c.id.in_([2, 3])), 4),
    ("delete-first-event", delete(events).where(events.c.id == 1), 2),
]


@pytest.mark.parametrize(("statement", "first_broken"), [pytest.param(*c[1:], id=c[0]) for c in TAMPERING])
def test_tampering_is_found_at_the_first_broken_event(five, statement, first_broken):
    sql(five, statement)
    assert five.verify() == first_broken


def test_a_rewritten_hash_breaks_the_next_event(five):
    """Editing an event and recomputing its hash by hand still breaks the event after it."""
    with five.engine.connect() as conn:
        second_hash = conn.scalar(select(events.c.hash).where(events.c.id == 2))
    sql(five, update(events).where(events.c.id == 3).values(hash=second_hash))
    assert five.verify() == 3


def test_recording_after_tampering_does_not_heal_the_chain(five):
    sql(five, update(events).where(events.c.id == 2).values(details="{}"))
    five.record("admin", "user.add", user="grace", role="author", institution="ABC234")
    assert five.verify() == 2


def test_concurrent_writers_keep_one_chain(url):
    """Writers in several threads (separate engines, as separate processes would have)."""
    AuditLog(create_engine(url))
    failures = []

    def write(actor: str) -> None:
        try:
            log = AuditLog(create_engine(url))
            for n in range(20):
                log.record(actor, "user.add", n=n)
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=write, args=(f"admin{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    log = AuditLog(create_engine(url))
    assert len(log.events()) == 80
    assert log.verify() is None
