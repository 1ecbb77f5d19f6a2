"""Tests for the release review (hub/release): the state machine's invariants, the re-check
with neutral labels, the whole request -> re-check -> approvals -> release flow, the
permissions (the requester never decides), and the `enclave release` commands."""

from __future__ import annotations

import hashlib
import json
from collections import deque

import pyotp
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import create_engine

from hub.accounts import AccountStore
from hub.audit import AuditLog
from hub.exceptions import ReleaseError
from hub.release.desk import ReleaseDesk
from hub.release.recheck import neutral_members, recheck
from hub.release.states import EVENTS, OWNERS, TRANSITIONS, Status
from warehouse.institutions import SEGMENTS

PASSWORD = "a long enough password 42"
MEMBERS = [("K7Q2ZP", "k12", "Riverside Unified"), ("C3M9XT", "cc", "Valley College"), ("U5RW8H", "univ", "State U")]
ROWS = "college,students\nC3M9XT,120\nU5RW8H,45\n"


@pytest.fixture
def accounts(isolated_state, monkeypatch) -> AccountStore:
    """A reviewer at each member, a second reviewer at the college, a researcher, an admin."""
    monkeypatch.setattr("hub.accounts._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    isolated_state.mkdir(parents=True, exist_ok=True)
    store = AccountStore(create_engine(f"sqlite:///{isolated_state / 'accounts.db'}"))
    for name, role, code in [
        ("rev-k12", "reviewer", "K7Q2ZP"),
        ("rev-cc", "reviewer", "C3M9XT"),
        ("rev-cc2", "reviewer", "C3M9XT"),
        ("rev-univ", "reviewer", "U5RW8H"),
        ("rita", "researcher", "C3M9XT"),
        ("ada", "admin", None),
    ]:
        store.add(name, role, code, PASSWORD)
    return store


@pytest.fixture
def desk(accounts) -> ReleaseDesk:
    members = neutral_members(MEMBERS, SEGMENTS)
    return ReleaseDesk(lambda: members, 10, engine=accounts.engine, accounts=accounts)


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "work" / "counts.csv"
    path.parent.mkdir()
    path.write_text(ROWS)
    return path


def approve_all(desk: ReleaseDesk, request_id: int, reviewers=("rev-k12", "rev-cc", "rev-univ")):
    request = None
    for reviewer in reviewers:
        request = desk.decide(request_id, reviewer, True, "fine")
    return request


# ---- the state machine's invariants ------------------------------------------------------------


def test_every_status_has_an_owner_an_audit_event_and_transitions():
    assert set(OWNERS) == set(EVENTS) == set(TRANSITIONS) == set(Status)
    assert len(set(EVENTS.values())) == len(EVENTS)
    for nexts in TRANSITIONS.values():
        assert nexts <= set(Status)


def test_every_status_is_reachable_from_submitted():
    seen, queue = {Status.SUBMITTED}, deque([Status.SUBMITTED])
    while queue:
        for target in TRANSITIONS[queue.popleft()]:
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert seen == set(Status)


def test_no_path_to_released_skips_approved():
    """Without the APPROVED status, RELEASED cannot be reached; and only APPROVED leads to it."""
    assert [s for s, nexts in TRANSITIONS.items() if Status.RELEASED in nexts] == [Status.APPROVED]
    seen, queue = {Status.SUBMITTED}, deque([Status.SUBMITTED])
    while queue:
        for target in TRANSITIONS[queue.popleft()] - {Status.APPROVED}:
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert Status.RELEASED not in seen


def test_the_edge_into_approved_needs_every_member(desk, table):
    request = desk.submit("rita", [table], "a brief for the county board")
    desk.decide(request.id, "rev-k12", True)
    partial = desk.get(request.id)
    with pytest.raises(ReleaseError, match="waiting for C3M9XT, U5RW8H"):
        desk._move(partial, Status.APPROVED, "system")
    assert desk.get(request.id).status == Status.IN_REVIEW


def test_moves_outside_the_map_are_refused(desk, table):
    request = desk.submit("rita", [table], "a brief")
    with pytest.raises(ReleaseError, match="cannot go from in_review to released"):
        desk._move(request, Status.RELEASED, "system")


# ---- the whole flow ------------------------------------------------------------------------------


def test_request_recheck_approvals_release(desk, table):
    request = desk.submit("rita", [table], "a brief for the county board")
    assert request.status == Status.IN_REVIEW and request.round == 1
    assert [f.sha256 for f in request.files] == [hashlib.sha256(table.read_bytes()).hexdigest()]
    outgoing = (desk.directory(request, "outgoing") / "counts.csv").read_text()
    assert "C3M9XT" not in outgoing and "community college A" in outgoing and "university A" in outgoing

    for reviewer in ("rev-k12", "rev-univ"):
        request = desk.decide(request.id, reviewer, True)
        assert request.status == Status.IN_REVIEW
    assert [m["code"] for m in request.pending_members()] == ["C3M9XT"]
    request = desk.decide(request.id, "rev-cc", True, "ok for the board")
    assert request.status == Status.RELEASED

    area = desk.release_area(request.id)
    assert (area / "counts.csv").read_text() == outgoing
    sums = (area / "SHA256SUMS").read_text().split()
    assert sums == [hashlib.sha256(outgoing.encode()).hexdigest(), "counts.csv"]
    assert desk.released_file(request.id, "counts.csv", "rita") == outgoing.encode()

    recorded = [(e.actor, e.event) for e in AuditLog().events() if e.event.startswith("release.")]
    assert recorded == [
        ("rita", "release.request"),
        ("system", "release.recheck.passed"),
        ("rev-k12", "release.decide"),
        ("rev-univ", "release.decide"),
        ("rev-cc", "release.decide"),
        ("system", "release.approve"),
        ("system", "release.release"),
        ("rita", "release.download"),
    ]
    assert [s for _, s, _, _ in desk.history(request.id)] == [
        "submitted",
        "in_review",
        "approved",
        "released",
    ]


def test_a_failed_recheck_returns_the_request_then_a_fixed_file_goes_to_review(desk, table, tmp_path):
    table.write_text("college,students\nC3M9XT,120\nU5RW8H,4\n")
    request = desk.submit("rita", [table], "a brief")
    assert request.status == Status.RETURNED
    [finding] = request.findings
    assert finding["refuses"] and "a count of 4 is below the threshold of 10" in finding["message"]
    assert "row 3" in finding["where"] and "students" in finding["where"]
    with pytest.raises(ReleaseError, match="not in review"):
        desk.decide(request.id, "rev-k12", True)

    fixed = tmp_path / "fixed" / "counts.csv"
    fixed.parent.mkdir()
    fixed.write_text("college,students\nC3M9XT,120\nU5RW8H,*\n")
    request = desk.resubmit(request.id, "rita", [fixed])
    assert (request.status, request.round, request.findings) == (Status.IN_REVIEW, 2, [])
    assert approve_all(desk, request.id).status == Status.RELEASED


def test_a_rejection_returns_the_request_with_the_comment(desk, table):
    request = desk.submit("rita", [table], "a brief")
    desk.decide(request.id, "rev-k12", True)
    with pytest.raises(ReleaseError, match="needs a comment"):
        desk.decide(request.id, "rev-cc", False, "  ")
    request = desk.decide(request.id, "rev-cc", False, "the college row identifies our program")
    assert request.status == Status.RETURNED
    assert "the college row identifies our program" in desk.history(request.id)[-1][3]
    request = desk.resubmit(request.id, "rita", [table])
    assert request.status == Status.IN_REVIEW and request.decisions == []  # a new round: everyone again


def test_withdrawal_is_the_requesters_and_final(desk, table):
    request = desk.submit("rita", [table], "a brief")
    with pytest.raises(ReleaseError, match="only they can resubmit or withdraw"):
        desk.withdraw(request.id, "rev-k12")
    assert desk.withdraw(request.id, "rita").status == Status.WITHDRAWN
    with pytest.raises(ReleaseError, match="nothing to decide"):
        desk.decide(request.id, "rev-k12", True)


# ---- permissions ---------------------------------------------------------------------------------


DECIDERS = [
    # who, why they cannot decide
    ("rita", "not a reviewer"),
    ("ada", "not a reviewer"),
    ("nobody", "not an active account"),
]


@pytest.mark.parametrize(("who", "why"), DECIDERS, ids=[d[0] for d in DECIDERS])
def test_only_reviewers_decide(desk, table, who, why):
    request = desk.submit("rita", [table], "a brief")
    assert not desk.can_decide(request, who)
    with pytest.raises(ReleaseError, match=why):
        desk.decide(request.id, who, True)


def test_the_requester_cannot_approve_their_own_request(desk, accounts, table):
    request = desk.submit("rita", [table], "a brief")
    accounts.set_role("rita", "reviewer", "C3M9XT")  # even once they become a reviewer
    assert not desk.can_decide(desk.get(request.id), "rita")
    with pytest.raises(ReleaseError, match="cannot decide on their own request"):
        desk.decide(request.id, "rita", True)


def test_reviewers_cannot_request(desk, table):
    with pytest.raises(ReleaseError, match="only researchers, report authors and admins request"):
        desk.submit("rev-cc", [table], "a brief")


def test_one_decision_per_institution_and_round(desk, table):
    request = desk.submit("rita", [table], "a brief")
    desk.decide(request.id, "rev-cc", True)
    with pytest.raises(ReleaseError, match="C3M9XT has already decided on round 1"):
        desk.decide(request.id, "rev-cc2", False, "no")


def test_only_the_requester_downloads_and_only_once_released(desk, table):
    request = desk.submit("rita", [table], "a brief")
    with pytest.raises(ReleaseError, match="nothing is released yet"):
        desk.released_file(request.id, "counts.csv", "rita")
    approve_all(desk, request.id)
    with pytest.raises(ReleaseError, match="only they download"):
        desk.released_file(request.id, "counts.csv", "rev-k12")
    (desk.release_area(request.id) / "counts.csv").write_text("changed after release")
    with pytest.raises(ReleaseError, match="does not match its checksum"):
        desk.released_file(request.id, "counts.csv", "rita")


def test_a_file_changed_after_its_review_is_not_released(desk, table):
    request = desk.submit("rita", [table], "a brief")
    (desk.directory(request, "outgoing") / "counts.csv").write_text("something else")
    desk.decide(request.id, "rev-k12", True)
    desk.decide(request.id, "rev-univ", True)
    with pytest.raises(ReleaseError, match="changed after the review"):
        desk.decide(request.id, "rev-cc", True)


@pytest.mark.parametrize(
    ("name", "error"),
    [("data.parquet", "only .ipynb, .html, .csv, .txt, .png"), ("missing.csv", "no such file")],
    ids=["wrong-type", "missing"],
)
def test_bad_files_are_refused_before_anything_is_recorded(desk, tmp_path, name, error):
    if name.endswith(".parquet"):
        (tmp_path / name).write_bytes(b"PAR1")
    with pytest.raises(ReleaseError, match=error):
        desk.submit("rita", [tmp_path / name], "a brief")
    assert desk.list() == []


def test_a_purpose_is_required(desk, table):
    with pytest.raises(ReleaseError, match="purpose"):
        desk.submit("rita", [table], " ")


# ---- the re-check --------------------------------------------------------------------------------


def members():
    return neutral_members(MEMBERS, SEGMENTS)


def notebook(*outputs) -> bytes:
    cells = [
        {"cell_type": "code", "source": "x", "metadata": {}, "outputs": [o], "execution_count": 1} for o in outputs
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


KEY_ROWS = b"".join(b"%032x,3.%d\n" % (0x9F0000 + i, i) for i in range(3))
HTML_TABLE = (
    "<table><tr><th>college</th><th>students</th><th>rate %</th></tr>"
    "<tr><td>{code}</td><td>{n}</td><td>3</td></tr></table>"
)

RECHECKS = [
    # id, file name, content, refused?, text in the finding
    ("csv-ok", "a.csv", b"college,students\nC3M9XT,12\n", False, None),
    ("csv-small", "a.csv", b"college,students\nC3M9XT,3\n", True, "a count of 3"),
    ("csv-zero-ok", "a.csv", b"college,students\nC3M9XT,0\n", False, None),
    ("csv-rate-not-a-count", "a.csv", b"college,rate %\nC3M9XT,3\n", False, None),
    ("csv-suppressed", "a.csv", b"college,students\nC3M9XT,*\n", False, None),
    ("html-small", "r.html", HTML_TABLE.format(code="C3M9XT", n=7).encode(), True, "table 1, row 2"),
    ("html-ok", "r.html", HTML_TABLE.format(code="C3M9XT", n=70).encode(), False, None),
    ("names-a-member", "a.csv", b"college,students\nValley College,40\n", True, "names a member institution"),
    ("ranks-members", "a.csv", b"rank,college,students\n1,C3M9XT,40\n", True, "ranks member institutions"),
    (
        "notebook-unguarded",
        "n.ipynb",
        notebook(
            {
                "output_type": "stream",
                "name": "stdout",
                "text": "Blocked: this output did not come through the output filter\n",
            }
        ),
        True,
        "did not pass the output guard",
    ),
    (
        "notebook-small-html",
        "n.ipynb",
        notebook(
            {
                "output_type": "execute_result",
                "data": {"text/html": HTML_TABLE.format(code="K7Q2ZP", n=2)},
                "metadata": {},
            }
        ),
        True,
        "cell 1: table 1",
    ),
    ("notebook-broken", "n.ipynb", b"{not json", True, "not a notebook"),
    ("png-is-a-note", "p.png", b"\x89PNG\r\n\x1a\n", False, "an image"),
    # Record-level data (the filter's record-level rule): by a column's title or by key-shaped values.
    ("csv-student-keys", "a.csv", b"student_key,gpa\n" + KEY_ROWS, True, "column 'student_key': record-level"),
    ("csv-keys-untitled", "a.csv", b"k,gpa\n" + KEY_ROWS, True, "column 'k': record-level"),
    ("csv-names", "a.csv", b"Last Name,credits\nDoe,40\nRoe,42\n", True, "record-level"),
    (
        "notebook-records-html",
        "n.ipynb",
        notebook(
            {
                "output_type": "execute_result",
                "data": {
                    "text/html": "<table><tr><th>ssid</th><th>gpa</th></tr><tr><td>55</td><td>3.1</td></tr></table>"
                },
                "metadata": {},
            }
        ),
        True,
        "cell 1: table 1, column 'ssid': record-level",
    ),
    ("csv-one-hex-label-is-not-records", "a.csv", b"cohort,students\n" + b"a" * 32 + b",40\n", False, None),
]


@pytest.mark.parametrize(("name", "data", "refused", "text"), [pytest.param(*r[1:], id=r[0]) for r in RECHECKS])
def test_recheck(name, data, refused, text):
    result = recheck({name: data}, members(), 10)
    assert result.passed is not refused
    if text:
        assert any(text in str(f) for f in result.findings), result.findings


def test_neutral_labels_replace_every_code_and_follow_the_secret_order():
    labelled = {m.code: m.label for m in members()}
    assert labelled == {"K7Q2ZP": "K-12 district A", "C3M9XT": "community college A", "U5RW8H": "university A"}
    result = recheck(
        {"a.csv": ROWS.encode(), "n.ipynb": notebook({"output_type": "stream", "name": "stdout", "text": "K7Q2ZP\n"})},
        members(),
        10,
    )
    for data in result.outgoing.values():
        assert not any(code.encode() in data for code, _, _ in MEMBERS)


# ---- the commands --------------------------------------------------------------------------------


def test_the_release_commands_run_the_whole_flow(desk, table, monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("hub.cli.release"), "_desk", lambda: desk)
    from hub.cli import enclave

    secrets = {name: pyotp.random_base32() for name in ("rev-k12", "rev-cc", "rev-univ")}
    for name, secret in secrets.items():
        desk.accounts.set_totp(name, secret)  # reviewers must have a second factor (policy totp_roles)

    def run(*args):
        return CliRunner().invoke(enclave, list(args))

    def run_as(name, *args):
        """As ``name``, proved: its password, then its current one-time code (if it has one)."""
        code = pyotp.TOTP(secrets[name]).now() + "\n" if name in secrets else ""
        return CliRunner().invoke(enclave, [*args, "--as", name, "--password-stdin"], input=f"{PASSWORD}\n{code}")

    made = run_as("rita", "release", "request", str(table), "--purpose", "county brief")
    assert made.exit_code == 0, made.output
    assert "Request 1 (round 1) is in_review; next: reviewers." in made.output
    assert "waiting for the reviewers of: K7Q2ZP, C3M9XT, U5RW8H" in made.output
    diff = run("release", "diff", "1")
    assert diff.exit_code == 0, diff.output
    assert "-C3M9XT," in diff.output and "+community college A," in diff.output  # what the page shows side by side
    own = run_as("rita", "release", "approve", "1")
    assert own.exit_code == 1 and "not a reviewer" in own.output
    for reviewer in ("rev-k12", "rev-cc", "rev-univ"):
        done = run_as(reviewer, "release", "approve", "1")
        assert done.exit_code == 0, done.output
    shown = run("release", "show", "1")
    assert "is released" in shown.output and "C3M9XT: approved by rev-cc" in shown.output
    files = run("release", "files", "1")
    assert files.exit_code == 0 and "counts.csv" in files.output
    listed = run("release", "list", "--status", "released")
    assert "rita" in listed.output and "counts.csv" in listed.output
    missing = run("release", "show", "9")
    assert missing.exit_code == 1 and "no release request 9" in missing.output


def test_the_readme_diagram_is_the_state_machine():
    from pathlib import Path

    from hub.release.states import diagram

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"```mermaid\n{diagram()}\n```" in readme


def test_a_text_file_is_shown_as_text_on_the_review_page():
    from hub.release.service import _view

    assert _view("t.txt", b'{"cells": []}') == {"kind": "text", "text": '{"cells": []}'}
