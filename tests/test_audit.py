"""Tests for the audit log: events in order, and a hash chain that shows any edit or deletion."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone

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
    """A change made behind the log's back, by someone who can drop its triggers."""
    with log.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_delete")
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
    ("delete-the-newest-event-with-the-kept-head", delete(events).where(events.c.id == 5), 5),
]


@pytest.mark.parametrize(("statement", "first_broken"), [pytest.param(*c[1:], id=c[0]) for c in TAMPERING])
def test_tampering_is_found_at_the_first_broken_event(five, statement, first_broken):
    kept = five.head()
    sql(five, statement)
    assert five.verify(kept) == first_broken


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


# ---- what verify says, record by record ------------------------------------------------------


def _rows(log: AuditLog) -> list:
    with log.engine.connect() as conn:
        return conn.execute(select(events).order_by(events.c.id)).all()


def _swap(log: AuditLog, first: int, second: int) -> None:
    """Exchange the whole content (hash and link too) of two records: a reordering."""
    rows = {r.id: r for r in _rows(log)}
    columns = ("at", "actor", "event", "details", "previous", "hash")
    sql(log, update(events).where(events.c.id == first).values(previous=None, hash="x" * 64))
    sql(log, update(events).where(events.c.id == second).values({c: getattr(rows[first], c) for c in columns}))
    sql(log, update(events).where(events.c.id == first).values({c: getattr(rows[second], c) for c in columns}))


def test_the_database_refuses_updates_and_deletes(five):
    from sqlalchemy.exc import DatabaseError

    for statement in (update(events).where(events.c.id == 2).values(actor="x"), delete(events)):
        with pytest.raises(DatabaseError, match="append-only"), five.engine.begin() as conn:
            conn.execute(statement)
    assert five.verify() is None and len(five.events()) == 5


def test_an_edited_record_is_named(five):
    sql(five, update(events).where(events.c.id == 3).values(details='{"user": "mallory"}'))
    [problem] = five.problems()
    assert (problem.record, problem.kind) == (3, "edited")
    assert "record 3 was edited" in problem.message


def test_an_edit_with_a_recomputed_hash_is_named(five):
    from hub.audit import _digest, _stamp

    row = _rows(five)[2]
    forged = _digest(row.previous, _stamp(row.at), row.actor, row.event, '{"user": "mallory"}')
    sql(five, update(events).where(events.c.id == 3).values(details='{"user": "mallory"}', hash=forged))
    [problem] = five.problems()
    assert (problem.record, problem.kind) == (3, "edited")
    assert "record 3 was replaced" in problem.message


def test_a_deleted_record_is_named(five):
    sql(five, delete(events).where(events.c.id == 3))
    [problem] = five.problems()
    assert problem.kind == "deleted" and "record(s) 3 before record 4" in problem.message


def test_reordered_records_are_named(five):
    _swap(five, 2, 3)
    found = five.problems()
    # The record now at 2 was written after 3; the one now at 3 after 1; 4 after the one now at 2.
    assert [(p.record, p.kind) for p in found] == [(2, "reordered"), (3, "reordered"), (4, "reordered")]
    assert "record 2 was moved: it was written after record 3" in found[0].message
    assert "written after record 1" in found[1].message
    assert five.verify() == 2


def test_a_truncated_tail_is_found_only_with_the_kept_head(five):
    kept = five.head()
    assert kept.id == 5
    sql(five, delete(events).where(events.c.id.in_([4, 5])))
    assert five.problems() == []  # a shorter chain holds by itself: hence the anchor
    [problem] = five.problems(kept)
    assert problem.kind == "truncated" and "records 5-5" not in problem.message
    assert "the kept head names record 5, the log ends at record 3" in problem.message


def test_a_replaced_head_is_found_with_the_kept_head(five):
    kept = five.head()
    sql(five, delete(events).where(events.c.id == 5))
    five.record("mallory", "user.add", user="x")  # ids are never reused: the new record is 6
    found = five.problems(kept)
    assert found and found[-1].record == 5


def test_the_head_parses_back_and_bad_anchors_name_the_fix(five, tmp_path):
    from hub.audit import Head
    from hub.exceptions import AuditError

    head = five.head()
    assert Head.parse(str(head)) == head
    (tmp_path / "head.txt").write_text(str(head) + "\n")
    assert Head.read(tmp_path / "head.txt") == head
    with pytest.raises(AuditError, match="enclave audit head"):
        Head.parse("not a head")
    with pytest.raises(AuditError, match="cannot read the anchor file"):
        Head.read(tmp_path / "missing.txt")


def test_filters_by_user_event_and_time(five):
    assert [e.id for e in five.events(user="alice")] == [2]
    assert [e.id for e in five.events(user="dave")] == [5]
    assert [e.id for e in five.events(event="user.add")] == [2, 3, 5]
    assert [e.id for e in five.events(event="user.")] == [2, 3, 5]
    later = five.events()[3].at
    assert [e.id for e in five.events(since=later)] == [4, 5]


@pytest.mark.parametrize("hours", [-5, 0, 2, 9], ids=["utc-5", "utc", "utc+2", "utc+9"])
def test_since_means_the_same_moment_in_any_time_zone(five, hours):
    """`--since 2026-03-01T16:30+02:00` is 14:30 UTC, whatever the database keeps times as."""
    later = five.events()[3].at.astimezone(timezone(timedelta(hours=hours)))
    assert [e.id for e in five.events(since=later)] == [4, 5]
    assert [e.id for e in five.events(since=later - timedelta(hours=1))] == [1, 2, 3, 4, 5]


def test_a_log_from_before_the_link_column_is_upgraded(tmp_path):
    """An older audit.db (no ``previous`` column): its records get their links and still verify."""
    import hashlib

    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE audit_events (id INTEGER PRIMARY KEY AUTOINCREMENT, at DATETIME NOT NULL, "
                "actor VARCHAR(100) NOT NULL, event VARCHAR(60) NOT NULL, details TEXT NOT NULL, "
                "hash VARCHAR(64) NOT NULL)"
            )
        )
        previous = "0" * 64
        for n in range(3):
            at = datetime(2026, 1, 1, 12, n, tzinfo=UTC)
            digest = hashlib.sha256("\x1f".join((previous, at.isoformat(), "admin", "demo.build", "{}")).encode())
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, actor, event, details, hash) "
                    "VALUES (:a, 'admin', 'demo.build', '{}', :h)"
                ),
                {"a": at.replace(tzinfo=None).isoformat(sep=" "), "h": digest.hexdigest()},
            )
            previous = digest.hexdigest()
    log = AuditLog(create_engine(url))
    assert log.verify() is None
    log.record("admin", "user.add", user="x")
    assert log.verify() is None and len(log.events()) == 4


# ---- concurrent writers on both databases ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared-audit.db'}"
    server = request.getfixturevalue("postgres_server")
    url = server.create_database(empty=True)
    request.addfinalizer(lambda: server.drop_database(url))
    return url


def _writer(url: str, actor: str, count: int) -> None:
    log = AuditLog(create_engine(url))
    for n in range(count):
        log.record(actor, "login.success", n=n)
    log.engine.dispose()


def test_parallel_writer_processes_keep_one_chain(shared_url):
    """Four processes appending at once: one chain, every record, no fork."""
    import multiprocessing

    AuditLog(create_engine(shared_url)).engine.dispose()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(shared_url, f"writer{i}", 25)) for i in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    log = AuditLog(create_engine(shared_url))
    recorded = log.events()
    assert len(recorded) == 100
    assert {e.actor for e in recorded} == {f"writer{i}" for i in range(4)}
    assert log.problems() == []
    links = [r.previous for r in _rows(log)]
    assert len(set(links)) == 100  # no two records share a predecessor


def test_a_writer_without_the_lock_cannot_fork_the_chain(shared_url):
    """Two inserts naming one predecessor: the database refuses the second (``previous`` is unique)."""
    from sqlalchemy.exc import IntegrityError

    log = AuditLog(create_engine(shared_url))
    log.record("admin", "demo.build")
    head = log.head()
    row = {"at": datetime.now(UTC), "actor": "a", "event": "x", "details": "{}", "previous": head.hash}
    with log.engine.begin() as conn:
        conn.execute(insert_row(), {**row, "hash": "1" * 64})
    with pytest.raises(IntegrityError), log.engine.begin() as conn:
        conn.execute(insert_row(), {**row, "hash": "2" * 64})


def insert_row():
    from sqlalchemy import insert

    return insert(events)


def test_tampering_is_named_on_postgresql_too(postgres_server):
    url = postgres_server.create_database(empty=True)
    try:
        log = AuditLog(create_engine(url))
        for n in range(4):
            log.record("admin", "user.add", n=n)
        kept = log.head()
        with log.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_change ON audit_events")
            conn.execute(update(events).where(events.c.id == 2).values(actor="mallory"))
            conn.execute(delete(events).where(events.c.id == 4))
        found = log.problems(kept)
        assert [(p.record, p.kind) for p in found] == [(2, "edited"), (4, "truncated")]
        log.engine.dispose()
    finally:
        postgres_server.drop_database(url)
