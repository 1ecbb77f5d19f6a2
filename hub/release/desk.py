"""The one place release requests move: check, write, audit, in one call.

``ReleaseDesk`` keeps requests in the hub's state database (the accounts database) and their
files under ``var/release/``: ``requests/<id>/<round>/original`` as requested,
``.../outgoing`` as they would leave (neutral labels), and ``released/<id>`` with
``SHA256SUMS``, the release area, the only way anything leaves. Every move goes through
``_move``: it checks ``states.TRANSITIONS`` (and for APPROVED that every member approved the
round), writes the status and its history row, and records the status's audit event.

Permissions come in pairs: ``check_can_decide`` raises with a sentence, ``can_decide`` says
yes or no; the CLI and the web page call the same ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    insert,
    select,
    update,
)

from hub.accounts import Account, AccountStore, accounts_url
from hub.audit import AuditLog
from hub.exceptions import ReleaseError
from hub.release.recheck import ALLOWED, Member, Result, recheck
from hub.release.states import DECISION_EVENT, EVENTS, OWNERS, Status, can_move
from warehouse.settings import var_dir

metadata = MetaData()
requests = Table(
    "release_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("requester", String(32), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("round", Integer, nullable=False),
    Column("members", Text, nullable=False),  # JSON: the member institutions that must approve
    Column("findings", Text, nullable=False),  # JSON: the latest re-check's findings
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
files = Table(
    "release_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("release_requests.id"), nullable=False),
    Column("round", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("source", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("outgoing_sha256", String(64), nullable=True),
)
decisions = Table(
    "release_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("release_requests.id"), nullable=False),
    Column("round", Integer, nullable=False),
    Column("institution", String(8), nullable=False),
    Column("reviewer", String(32), nullable=False),
    Column("approve", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("request_id", "round", "institution", name="one_decision_per_member_and_round"),
)
history = Table(
    "release_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("release_requests.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("actor", String(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Decision:
    institution: str
    reviewer: str
    approve: bool
    comment: str
    at: datetime


@dataclass(frozen=True)
class RequestFile:
    name: str
    source: str
    sha256: str
    outgoing_sha256: str | None


@dataclass(frozen=True)
class Request:
    id: int
    requester: str
    purpose: str
    status: Status
    round: int
    members: list[dict]  # code, segment, label (never the names)
    findings: list[dict]
    files: list[RequestFile]
    decisions: list[Decision]  # of the current round
    created_at: datetime

    @property
    def owner(self) -> str:
        return OWNERS[self.status]

    def pending_members(self) -> list[dict]:
        decided = {d.institution for d in self.decisions if d.approve}
        return [m for m in self.members if m["code"] not in decided]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


MembersSource = Callable[[], list[Member]]


class ReleaseDesk:
    """Requests, their files, decisions and moves; see the module docstring."""

    def __init__(
        self,
        members: MembersSource,
        threshold: int,
        *,
        engine: Engine | None = None,
        accounts: AccountStore | None = None,
        audit: AuditLog | None = None,
        via: str = "",
    ):
        self.via = via  # how the actor reached the desk (the web page, or the CLI and its system user)
        self.engine = engine or create_engine(accounts_url())
        metadata.create_all(self.engine)
        self.members = members
        self.threshold = threshold
        self.accounts = accounts or AccountStore(self.engine)
        self.audit = audit or AuditLog()

    def _record(self, actor: str, event: str, **details) -> None:
        self.audit.record(actor, event, **details, **({"via": self.via} if self.via else {}))

    # ---- reading ---------------------------------------------------------------------

    def get(self, request_id: int) -> Request:
        with self.engine.connect() as conn:
            row = conn.execute(select(requests).where(requests.c.id == request_id)).first()
            if row is None:
                raise ReleaseError(f"there is no release request {request_id}; `enclave release list` shows them")
            file_rows = conn.execute(
                select(files).where(files.c.request_id == request_id, files.c.round == row.round).order_by(files.c.id)
            ).all()
            decision_rows = conn.execute(
                select(decisions)
                .where(decisions.c.request_id == request_id, decisions.c.round == row.round)
                .order_by(decisions.c.id)
            ).all()
        return Request(
            row.id,
            row.requester,
            row.purpose,
            Status(row.status),
            row.round,
            json.loads(row.members),
            json.loads(row.findings),
            [RequestFile(f.name, f.source, f.sha256, f.outgoing_sha256) for f in file_rows],
            [Decision(d.institution, d.reviewer, bool(d.approve), d.comment, _utc(d.at)) for d in decision_rows],
            _utc(row.created_at),
        )

    def list(self, status: Status | None = None) -> list[Request]:
        query = select(requests.c.id).order_by(requests.c.id)
        if status is not None:
            query = query.where(requests.c.status == status.value)
        with self.engine.connect() as conn:
            ids = list(conn.scalars(query))
        return [self.get(i) for i in ids]

    def history(self, request_id: int) -> list[tuple[datetime, str, str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(history).where(history.c.request_id == request_id).order_by(history.c.id)).all()
        return [(_utc(r.at), r.status, r.actor, r.note) for r in rows]

    def directory(self, request: Request, kind: str) -> Path:
        """``original`` or ``outgoing`` files of the request's current round."""
        return var_dir() / "release" / "requests" / str(request.id) / str(request.round) / kind

    def release_area(self, request_id: int) -> Path:
        return var_dir() / "release" / "released" / str(request_id)

    # ---- permissions -----------------------------------------------------------------

    def _account(self, name: str) -> Account:
        account = self.accounts.get(name)
        if account is None or not account.active:
            raise ReleaseError(f"{name!r} is not an active account; `enclave user list` shows the accounts")
        return account

    def check_can_request(self, name: str) -> None:
        account = self._account(name)
        if account.role not in ("researcher", "author", "admin"):
            raise ReleaseError(f"{name} is a {account.role}: only researchers, report authors and admins request")

    def check_can_decide(self, request: Request, name: str) -> Account:
        account = self._account(name)
        if account.role != "reviewer":
            raise ReleaseError(f"{name} is a {account.role}, not a reviewer: only reviewers decide on releases")
        if name == request.requester:
            raise ReleaseError(f"{name} made request {request.id}: a requester cannot decide on their own request")
        if request.status != Status.IN_REVIEW:
            raise ReleaseError(
                f"request {request.id} is {request.status.value}, not in review: there is nothing to decide now"
            )
        if account.institution not in {m["code"] for m in request.members}:
            raise ReleaseError(f"{name}'s institution is not one of the members asked to review request {request.id}")
        if any(d.institution == account.institution for d in request.decisions):
            raise ReleaseError(
                f"{account.institution} has already decided on round {request.round} of request {request.id}"
            )
        return account

    def can_decide(self, request: Request, name: str) -> bool:
        try:
            self.check_can_decide(request, name)
        except ReleaseError:
            return False
        return True

    def check_can_change(self, request: Request, name: str) -> None:
        """Resubmitting, withdrawing and downloading are the requester's alone."""
        if name != request.requester:
            raise ReleaseError(f"request {request.id} is {request.requester}'s: only they can resubmit or withdraw it")

    @staticmethod
    def check_all_approved(request: Request) -> None:
        """The guard of the one edge into APPROVED."""
        pending = request.pending_members()
        if pending:
            labels = ", ".join(m["code"] for m in pending)
            raise ReleaseError(f"request {request.id} is not approved by every member yet: waiting for {labels}")

    # ---- moves -----------------------------------------------------------------------

    def _move(self, request: Request, target: Status, actor: str, note: str = "", **details) -> Request:
        if not can_move(request.status, target):
            raise ReleaseError(
                f"request {request.id} cannot go from {request.status.value} to {target.value} "
                f"(it is the {request.owner}'s turn)"
            )
        if target == Status.APPROVED:
            self.check_all_approved(request)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(requests)
                .where(requests.c.id == request.id, requests.c.status == request.status.value)
                .values(status=target.value, updated_at=now)
            ).rowcount
            if moved != 1:
                raise ReleaseError(f"request {request.id} changed while this was decided; look at it again")
            conn.execute(
                insert(history).values(request_id=request.id, status=target.value, actor=actor, note=note, at=now)
            )
        self._record(actor, EVENTS[target], request=request.id, round=request.round, note=note, **details)
        return self.get(request.id)

    def submit(self, requester: str, paths: list[Path], purpose: str) -> Request:
        """Record a request (files copied, with checksums), then run the automated re-check."""
        self.check_can_request(requester)
        if not purpose.strip():
            raise ReleaseError("give the purpose of the release (--purpose TEXT): what it is for and for whom")
        contents = self._read(paths)
        members = [{"code": m.code, "segment": m.segment, "label": m.label} for m in self.members()]
        if not members:
            raise ReleaseError("there are no member institutions yet: nobody could review a release")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            request_id = conn.execute(
                insert(requests).values(
                    requester=requester,
                    purpose=purpose.strip(),
                    status=Status.SUBMITTED.value,
                    round=1,
                    members=json.dumps(members),
                    findings="[]",
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(history).values(
                    request_id=request_id, status=Status.SUBMITTED.value, actor=requester, note="", at=now
                )
            )
        request = self._store_files(self.get(request_id), contents)
        self._record(
            requester,
            EVENTS[Status.SUBMITTED],
            request=request_id,
            round=1,
            purpose=request.purpose,
            files={f.name: f.sha256 for f in request.files},
        )
        return self.run_recheck(request)

    def _read(self, paths: list[Path]) -> dict[str, tuple[str, bytes]]:
        if not paths:
            raise ReleaseError("name at least one file to release")
        contents: dict[str, tuple[str, bytes]] = {}
        for path in paths:
            if path.suffix.lower() not in ALLOWED:
                raise ReleaseError(f"{path}: only {', '.join(ALLOWED)} files can be released")
            if not path.is_file():
                raise ReleaseError(f"{path}: no such file")
            if path.name in contents:
                raise ReleaseError(f"{path}: two files are named {path.name}; rename one")
            contents[path.name] = (str(path.resolve()), path.read_bytes())
        return contents

    def _store_files(self, request: Request, contents: dict[str, tuple[str, bytes]]) -> Request:
        original = self.directory(request, "original")
        original.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.engine.begin() as conn:
            for name, (source, data) in contents.items():
                (original / name).write_bytes(data)
                conn.execute(
                    insert(files).values(
                        request_id=request.id, round=request.round, name=name, source=source, sha256=sha256(data)
                    )
                )
        return self.get(request.id)

    def _original(self, request: Request) -> dict[str, bytes]:
        """The request's files as recorded, each checked against its checksum."""
        found = {}
        for item in request.files:
            data = (self.directory(request, "original") / item.name).read_bytes()
            if sha256(data) != item.sha256:
                raise ReleaseError(f"request {request.id}: {item.name} changed after it was requested (checksum)")
            found[item.name] = data
        return found

    def run_recheck(self, request: Request) -> Request:
        """The automated re-check (owner: system): findings attached; pass to review or return."""
        members = [Member(m["code"], m["segment"], name, m["label"]) for m, name in self._named(request)]
        result: Result = recheck(self._original(request), members, self.threshold)
        outgoing = self.directory(request, "outgoing")
        outgoing.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.engine.begin() as conn:
            for name, data in result.outgoing.items():
                (outgoing / name).write_bytes(data)
                conn.execute(
                    update(files)
                    .where(files.c.request_id == request.id, files.c.round == request.round, files.c.name == name)
                    .values(outgoing_sha256=sha256(data))
                )
            conn.execute(
                update(requests)
                .where(requests.c.id == request.id)
                .values(findings=json.dumps([asdict(f) for f in result.findings]))
            )
        request = self.get(request.id)
        refused = [str(f) for f in result.findings if f.refuses]
        if refused:
            return self._move(request, Status.RETURNED, "system", "; ".join(refused), findings=len(refused))
        return self._move(request, Status.IN_REVIEW, "system", "", notes=len(result.findings))

    def _named(self, request: Request) -> list[tuple[dict, str]]:
        names = {m.code: m.name for m in self.members()}
        return [(m, names.get(m["code"], "")) for m in request.members]

    def decide(self, request_id: int, reviewer: str, approve: bool, comment: str = "") -> Request:
        """One member institution's decision; a rejection returns the request, the last approval releases it."""
        request = self.get(request_id)
        account = self.check_can_decide(request, reviewer)
        if not approve and not comment.strip():
            raise ReleaseError("a rejection needs a comment (--comment TEXT) telling the requester what to change")
        with self.engine.begin() as conn:
            conn.execute(
                insert(decisions).values(
                    request_id=request.id,
                    round=request.round,
                    institution=account.institution,
                    reviewer=reviewer,
                    approve=int(approve),
                    comment=comment.strip(),
                    at=datetime.now(UTC),
                )
            )
        self._record(
            reviewer,
            DECISION_EVENT,
            request=request.id,
            round=request.round,
            institution=account.institution,
            approve=approve,
            comment=comment.strip(),
        )
        request = self.get(request.id)
        if not approve:
            return self._move(request, Status.RETURNED, reviewer, f"rejected by {account.institution}: {comment}")
        if request.pending_members():
            return request
        request = self._move(request, Status.APPROVED, "system", "every member approved")
        return self._release(request)

    def _release(self, request: Request) -> Request:
        """Copy the outgoing files to the release area with SHA256SUMS (owner: system)."""
        area = self.release_area(request.id)
        area.mkdir(parents=True, exist_ok=True, mode=0o700)
        sums = []
        for item in request.files:
            data = (self.directory(request, "outgoing") / item.name).read_bytes()
            if sha256(data) != item.outgoing_sha256:
                raise ReleaseError(f"request {request.id}: {item.name} changed after the review (checksum)")
            (area / item.name).write_bytes(data)
            sums.append(f"{item.outgoing_sha256}  {item.name}")
        (area / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
        return self._move(
            request, Status.RELEASED, "system", str(area), files={f.name: f.outgoing_sha256 for f in request.files}
        )

    def resubmit(self, request_id: int, requester: str, paths: list[Path]) -> Request:
        """A returned request, with new files, as a new round: re-checked and reviewed again."""
        request = self.get(request_id)
        self.check_can_change(request, requester)
        contents = self._read(paths)
        if not can_move(request.status, Status.SUBMITTED):
            raise ReleaseError(
                f"request {request.id} is {request.status.value}: only a returned request is resubmitted"
            )
        with self.engine.begin() as conn:
            conn.execute(update(requests).where(requests.c.id == request.id).values(round=request.round + 1))
        request = self._move(self.get(request.id), Status.SUBMITTED, requester, "resubmitted")
        request = self._store_files(request, contents)
        return self.run_recheck(request)

    def withdraw(self, request_id: int, requester: str) -> Request:
        request = self.get(request_id)
        self.check_can_change(request, requester)
        return self._move(request, Status.WITHDRAWN, requester, "withdrawn by the requester")

    def released_file(self, request_id: int, name: str, user: str) -> bytes:
        """A released file for its requester, checked against the release area's checksum."""
        request = self.get(request_id)
        if user != request.requester:
            raise ReleaseError(f"request {request.id} is {request.requester}'s: only they download its files")
        if request.status != Status.RELEASED:
            raise ReleaseError(f"request {request.id} is {request.status.value}: nothing is released yet")
        item = next((f for f in request.files if f.name == name), None)
        if item is None:
            raise ReleaseError(f"request {request.id} has no file named {name!r}")
        data = (self.release_area(request.id) / name).read_bytes()
        if sha256(data) != item.outgoing_sha256:
            raise ReleaseError(f"{name} in the release area does not match its checksum; tell an administrator")
        self._record(user, "release.download", request=request.id, file=name, sha256=item.outgoing_sha256)
        return data


def warehouse_members() -> list[Member]:
    """Today's member institutions with neutral labels (their names for the re-check only)."""
    from hub.release.recheck import neutral_members
    from warehouse.db import connect, create_schema
    from warehouse.institutions import SEGMENTS, list_institutions

    engine = connect()
    create_schema(engine)
    found = list_institutions(engine, with_names=True)
    engine.dispose()
    return neutral_members([(m.code, m.segment, m.name) for m in found], SEGMENTS)


def default_desk(via: str = "") -> ReleaseDesk:
    """The desk of this installation, with the governed policy: a hand-edited policy.toml (a
    threshold no approved proposal set) refuses the re-check and the review as it refuses the
    hub's start (``hub.governance``)."""
    from hub.governance import default_governance

    policy = default_governance().check_governed(f"release:{via}" if via else "release")
    return ReleaseDesk(warehouse_members, policy.threshold, accounts=AccountStore(rules=policy.accounts), via=via)
