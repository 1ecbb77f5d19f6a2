"""Tests for `enclave audit show|head|verify` and for a demo rebuild keeping the audit log."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import delete, update

from hub.audit import AuditLog, events
from hub.cli import enclave


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(enclave, list(args), input=input)


@pytest.fixture
def log(isolated_state) -> AuditLog:
    """An audit log in the test's var/ with four events."""
    log = AuditLog()
    log.record("admin", "user.add", user="alice", role="researcher")
    log.record("alice", "login.failure", source="127.0.0.1", reason="wrong password")
    log.record("alice", "login.success", source="127.0.0.1", pending="")
    log.record("admin", "use.grant", use="pathways", user="bob")
    return log


def tamper(log: AuditLog, statement) -> None:
    with log.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_delete")
        conn.execute(statement)


def test_show_lists_every_event_with_its_details(log):
    result = run("audit", "show")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 4
    assert "user.add" in lines[0] and '"user": "alice"' in lines[0]
    assert "login.failure" in lines[1] and "wrong password" in lines[1]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--user", "alice"], ["user.add", "login.failure", "login.success"]),
        (["--user", "bob"], ["use.grant"]),
        (["--event", "login."], ["login.failure", "login.success"]),
        (["--event", "login.success"], ["login.success"]),
        (["--user", "alice", "--event", "login.failure"], ["login.failure"]),
        (["--since", "2999-01-01"], []),
    ],
    ids=["user-alice", "user-bob", "event-family", "event", "user-and-event", "since-future"],
)
def test_show_filters(log, options, expected):
    result = run("audit", "show", *options)
    assert result.exit_code == 0, result.output
    shown = [line.split()[4] for line in result.output.splitlines() if line[:6].strip().isdigit()]
    assert shown == expected
    if not expected:
        assert "No audit events match" in result.output


def test_show_refuses_a_bad_time_naming_the_format(log):
    result = run("audit", "show", "--since", "last tuesday")
    assert result.exit_code == 1 and "2026-03-01" in result.output


def test_verify_says_the_chain_holds_and_reaches_the_head(log, tmp_path):
    head = run("audit", "head", "--out", str(tmp_path / "head.txt"))
    assert head.exit_code == 0 and head.output.startswith("4 ")
    result = run("audit", "verify", "--head-file", str(tmp_path / "head.txt"))
    assert result.exit_code == 0, result.output
    assert "The chain holds: 4 records, and reaches the kept head 4" in result.output


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        (update(events).where(events.c.id == 2).values(details='{"reason": "ok"}'), "record 2 was edited"),
        (delete(events).where(events.c.id == 3), "record(s) 3 before record 4 were deleted"),
        (delete(events).where(events.c.id == 4), "records 4-4 were deleted"),
    ],
    ids=["edited", "deleted", "truncated"],
)
def test_verify_names_the_broken_record_and_fails(log, statement, named):
    kept = run("audit", "head").output.strip()
    tamper(log, statement)
    result = run("audit", "verify", "--head", kept)
    assert result.exit_code == 1
    assert named in result.output and "BROKEN" in result.output
    assert "restore the log from a backup" in result.output


def test_verify_refuses_a_malformed_head(log):
    result = run("audit", "verify", "--head", "four")
    assert result.exit_code == 1 and "enclave audit head" in result.output


def test_head_of_an_empty_log_says_so(isolated_state):
    result = run("audit", "head")
    assert result.exit_code == 1 and "empty" in result.output


def test_a_demo_rebuild_keeps_the_audit_log_and_records_itself(demo_copy):
    before = AuditLog().events()
    assert before, "the demo build is audited"
    stale = demo_copy / "release" / "released" / "1" / "old.csv"  # the old demo's release 1
    stale.parent.mkdir(parents=True)
    stale.write_text("college,students\n")
    result = run("demo", "build", "--students", "100", "--seed", "1", "--rebuild")
    assert result.exit_code == 0, result.output
    assert not (demo_copy / "release").exists()  # its records went with accounts.db
    after = AuditLog().events()
    assert after[: len(before)] == before
    assert [e.event for e in after[len(before) :]][:2] == ["demo.rebuild", "demo.build"]
    assert AuditLog().verify() is None


def test_archiving_the_audit_log_asks_first_and_is_recorded(demo_copy):
    before = AuditLog().head()
    refused = run("demo", "build", "--students", "100", "--seed", "1", "--rebuild", "--archive-audit", input="n\n")
    assert refused.exit_code == 1 and AuditLog().head() == before
    result = run("demo", "build", "--students", "100", "--seed", "1", "--rebuild", "--archive-audit", "--yes")
    assert result.exit_code == 0, result.output
    [archive] = list((demo_copy / "audit-archive").iterdir())
    first = AuditLog().events()[0]
    assert (first.event, first.details["archive"], first.details["head"]) == (
        "audit.archive",
        str(archive),
        str(before),
    )
    kept = run("audit", "verify", "--log", str(archive), "--head", str(before))
    assert kept.exit_code == 0, kept.output


def test_archive_audit_needs_rebuild(demo_copy):
    result = run("demo", "build", "--archive-audit")
    assert result.exit_code == 1 and "--rebuild" in result.output


def test_the_doctor_reports_the_audit_chain(log):
    from hub.doctor import check_audit

    assert check_audit()[0].level == "OK" and "4 records" in check_audit()[0].what
    tamper(log, update(events).where(events.c.id == 2).values(actor="x"))
    [check] = check_audit()
    assert check.level == "FAIL" and "record 2 was edited" in check.what
