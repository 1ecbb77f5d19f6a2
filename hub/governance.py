"""Governance of the policy (principle 10): it changes only by unanimous agreement.

A change is proposed (``propose``: one key, its new value, the reason), checked as the policy
file would check it, and takes effect when the admin of every member institution has
approved it (``approve``): then ``policy.toml`` is rewritten with that one value, and the
policy as governed is recorded (``policy_governed``). Any admin of a member may reject it,
which ends it. Everything is in the audit log and in ``history()``.

At start (the hub's configuration, ``enclave serve``), and before whatever reads the file
afterwards (a user server's spawn, a report run, the release re-check), ``check_governed``
compares the policy file's values with the governed ones: a value that no approved proposal explains (a hand
edit) refuses the start, naming the key, both values and the fix. The first start records the
policy it finds as the baseline. Comments in the file are free to change; values are not.
"""

from __future__ import annotations

import json
import re
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

from hub.accounts import AccountStore, accounts_url
from hub.audit import AuditLog
from hub.exceptions import GovernanceError
from output_filters.exceptions import PolicyError
from output_filters.policy import AccountRules, Policy, load_policy, policy_path

metadata = MetaData()
proposals = Table(
    "policy_proposals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(80), nullable=False),
    Column("value", Text, nullable=False),  # JSON
    Column("previous", Text, nullable=False),  # JSON: the governed value when proposed
    Column("reason", Text, nullable=False),
    Column("proposer", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # open, in_effect, rejected
    Column("members", Text, nullable=False),  # JSON: the codes whose admins must approve
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)
approvals = Table(
    "policy_approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("proposal_id", Integer, ForeignKey("policy_proposals.id"), nullable=False),
    Column("institution", String(8), nullable=False),
    Column("admin", String(32), nullable=False),
    Column("approve", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("proposal_id", "institution", name="one_approval_per_member"),
)
governed = Table(
    "policy_governed",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("values", Text, nullable=False),  # JSON: every key of the policy as governed
    Column("source", String(40), nullable=False),  # baseline, or proposal N
    Column("at", DateTime(timezone=True), nullable=False),
)
SECTIONS = {"disclosure": Policy, "accounts": AccountRules}


@dataclass(frozen=True)
class Proposal:
    id: int
    key: str
    value: Any
    previous: Any
    reason: str
    proposer: str
    status: str
    members: list[str]
    approvals: list[tuple[str, str, bool, str]]  # institution, admin, approve, comment
    created_at: datetime

    def pending(self) -> list[str]:
        done = {institution for institution, _, approve, _ in self.approvals if approve}
        return [code for code in self.members if code not in done]


def policy_values(policy: Policy) -> dict[str, Any]:
    """Every key of the policy as ``section.key`` → a JSON value."""
    values: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        source = policy if cls is Policy else policy.accounts
        for item in fields(cls):
            if item.name == "accounts":
                continue
            value = getattr(source, item.name)
            values[f"{section}.{item.name}"] = list(value) if isinstance(value, tuple) else value
    return values


def resolve_key(key: str) -> str:
    """``threshold`` or ``disclosure.threshold`` → ``disclosure.threshold``."""
    known = policy_values(Policy())
    if key in known:
        return key
    matches = [k for k in known if k.split(".", 1)[1] == key]
    if len(matches) == 1:
        return matches[0]
    raise GovernanceError(f"{key!r} is not a policy setting; known: {', '.join(known)}")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise GovernanceError(f"{value!r} cannot be written in policy.toml")


def parse_value(text: str) -> Any:
    """A value as TOML reads it (12, 0.5, true, ["admin"], "fuzzy"); a bare word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][\w-]*", text):
            return text
        raise GovernanceError(
            f'{text!r} is not a value: write a number (12), true/false, a word (fuzzy) or a list (["admin"])'
        ) from None


def rewrite(text: str, key: str, value: Any) -> str:
    """The policy file's text with ``section.key`` set to ``value`` (comments kept)."""
    section, name = key.split(".", 1)
    lines = text.splitlines()
    current = None
    header_at = None
    for index, line in enumerate(lines):
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            current = header.group(1).strip()
            header_at = index if current == section else header_at
            continue
        if current == section and re.match(rf"^\s*{re.escape(name)}\s*=", line):
            lines[index] = f"{name} = {toml_value(value)}"
            return "\n".join(lines) + "\n"
    if header_at is None:
        lines += ["", f"[{section}]"]
        header_at = len(lines) - 1
    lines.insert(header_at + 1, f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def check_text(text: str) -> Policy:
    """The policy a file with ``text`` would load, or the policy file's own error."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "policy.toml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_policy(path)
        except PolicyError as error:
            raise GovernanceError(str(error).replace(f"{path}: ", "")) from None


class Governance:
    """Proposals, approvals, the governed policy; see the module docstring."""

    def __init__(
        self,
        members: Callable[[], list[str]],
        *,
        engine: Engine | None = None,
        accounts: AccountStore | None = None,
        path: Path | None = None,
        audit: AuditLog | None = None,
        via: str = "",
    ):
        self.engine = engine or create_engine(accounts_url())
        metadata.create_all(self.engine)
        self.members = members
        self.accounts = accounts or AccountStore(self.engine)
        self.path = Path(path) if path else policy_path()
        self.audit = audit or AuditLog()
        self.via = via  # how the actor reached it (the CLI and its system user), for the record

    def _record(self, actor: str, event: str, **details) -> None:
        self.audit.record(actor, event, **details, **({"via": self.via} if self.via else {}))

    # ---- the governed policy -----------------------------------------------------------

    def governed(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(governed.c["values"]).order_by(governed.c.id.desc()).limit(1)).scalar()
        return json.loads(row) if row else None

    def _govern(self, values: dict[str, Any], source: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(governed).values(values=json.dumps(values), source=source, at=datetime.now(UTC)))

    def check_governed(self, actor: str = "hub") -> Policy:
        """The policy, if the file's values are the governed ones; else GovernanceError naming them."""
        try:
            policy = load_policy(self.path)
        except PolicyError as error:
            raise GovernanceError(str(error)) from None
        found = policy_values(policy)
        expected = self.governed()
        if expected is None:
            self._govern(found, "baseline")
            self._record(actor, "policy.baseline", file=str(self.path), values=found)
            return policy
        changed = [key for key in sorted(set(found) | set(expected)) if found.get(key) != expected.get(key)]
        if changed:
            self._record(actor, "policy.tamper", file=str(self.path), keys=changed)
            listed = "; ".join(f"{k} is {found.get(k)!r} in the file, {expected.get(k)!r} as approved" for k in changed)
            raise GovernanceError(
                f"{self.path} was edited by hand: {listed}. Restore the approved value(s), and change the policy "
                "only with `enclave policy propose KEY=VALUE --reason TEXT` (every member's admin approves)"
            )
        return policy

    # ---- proposals ---------------------------------------------------------------------

    def get(self, proposal_id: int) -> Proposal:
        with self.engine.connect() as conn:
            row = conn.execute(select(proposals).where(proposals.c.id == proposal_id)).first()
            if row is None:
                raise GovernanceError(f"there is no policy proposal {proposal_id}; `enclave policy history` lists them")
            votes = conn.execute(
                select(approvals).where(approvals.c.proposal_id == proposal_id).order_by(approvals.c.id)
            ).all()
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        return Proposal(
            row.id,
            row.key,
            json.loads(row.value),
            json.loads(row.previous),
            row.reason,
            row.proposer,
            row.status,
            json.loads(row.members),
            [(v.institution, v.admin, bool(v.approve), v.comment) for v in votes],
            created,
        )

    def history(self) -> list[Proposal]:
        with self.engine.connect() as conn:
            ids = list(conn.scalars(select(proposals.c.id).order_by(proposals.c.id)))
        return [self.get(i) for i in ids]

    def _admin(self, name: str):
        account = self.accounts.get(name)
        if account is None or not account.active or account.role != "admin":
            raise GovernanceError(f"{name!r} is not an active admin account: only admins propose and approve")
        return account

    def propose(self, proposer: str, key: str, value_text: str, reason: str) -> Proposal:
        self._admin(proposer)
        self.check_governed(proposer)
        key = resolve_key(key)
        if not reason.strip():
            raise GovernanceError("give the reason for the change (--reason TEXT)")
        value = parse_value(value_text)
        current = self.governed() or policy_values(load_policy(self.path))
        normalized = policy_values(check_text(rewrite(self.path.read_text(encoding="utf-8"), key, value)))[key]
        if normalized == current[key]:
            raise GovernanceError(f"{key} is already {current[key]!r}; nothing to propose")
        members = self.members()
        if not members:
            raise GovernanceError("there are no member institutions: nobody could approve a change")
        with self.engine.begin() as conn:
            new_id = conn.execute(
                insert(proposals).values(
                    key=key,
                    value=json.dumps(normalized),
                    previous=json.dumps(current[key]),
                    reason=reason.strip(),
                    proposer=proposer,
                    status="open",
                    members=json.dumps(members),
                    created_at=datetime.now(UTC),
                )
            ).inserted_primary_key[0]
        self._record(
            proposer, "policy.propose", proposal=new_id, key=key, value=normalized, previous=current[key], reason=reason
        )
        return self.get(new_id)

    def check_can_approve(self, proposal: Proposal, name: str):
        account = self._admin(name)
        if proposal.status != "open":
            raise GovernanceError(f"proposal {proposal.id} is {proposal.status}: there is nothing to approve")
        if account.institution not in proposal.members:
            raise GovernanceError(
                f"{name} is not the admin of a member institution: each member's own admin approves "
                "(consortium staff admins propose)"
            )
        if any(institution == account.institution for institution, *_ in proposal.approvals):
            raise GovernanceError(f"{account.institution} has already decided on proposal {proposal.id}")
        return account

    def decide(self, proposal_id: int, admin: str, approve: bool, comment: str = "") -> Proposal:
        """One member's admin approves (the last one puts it in effect) or rejects (it ends)."""
        proposal = self.get(proposal_id)
        account = self.check_can_approve(proposal, admin)
        if not approve and not comment.strip():
            raise GovernanceError("a rejection needs a comment (--comment TEXT)")
        with self.engine.begin() as conn:
            conn.execute(
                insert(approvals).values(
                    proposal_id=proposal.id,
                    institution=account.institution,
                    admin=admin,
                    approve=int(approve),
                    comment=comment.strip(),
                    at=datetime.now(UTC),
                )
            )
        event = "policy.approve" if approve else "policy.reject"
        self._record(admin, event, proposal=proposal.id, institution=account.institution, comment=comment)
        proposal = self.get(proposal.id)
        if not approve:
            self._close(proposal, "rejected")
            return self.get(proposal.id)
        if proposal.pending():
            return proposal
        return self._apply(proposal)

    def _close(self, proposal: Proposal, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(proposals)
                .where(proposals.c.id == proposal.id)
                .values(status=status, decided_at=datetime.now(UTC))
            )

    def _apply(self, proposal: Proposal) -> Proposal:
        """Every member approved: the file gets the value, the governed policy follows it."""
        self.check_governed("system")
        text = rewrite(self.path.read_text(encoding="utf-8"), proposal.key, proposal.value)
        values = policy_values(check_text(text))
        self.path.write_text(text, encoding="utf-8")
        self._govern(values, f"proposal {proposal.id}")
        self._close(proposal, "in_effect")
        self._record(
            "system",
            "policy.change",
            proposal=proposal.id,
            key=proposal.key,
            value=proposal.value,
            previous=proposal.previous,
            file=str(self.path),
        )
        return self.get(proposal.id)


def member_codes() -> list[str]:
    from warehouse.db import connect, create_schema
    from warehouse.institutions import list_institutions

    engine = connect()
    create_schema(engine)
    codes = [m.code for m in list_institutions(engine)]
    engine.dispose()
    return codes


def default_governance(via: str = "") -> Governance:
    return Governance(member_codes, via=via)
