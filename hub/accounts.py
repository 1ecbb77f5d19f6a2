"""The account store behind the hub's login (principle 7).

Accounts have a role (researcher, author, reviewer, admin) and, except administrators, a
member institution (by its code). Passwords are stored only as argon2 hashes.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    update,
)

from hub.exceptions import AccountError
from output_filters.policy import AccountRules
from warehouse.settings import state_path

ROLES = {
    "researcher": "explores the approved data in JupyterLab",
    "author": "runs the standard report templates",
    "reviewer": "reviews requests to release results outside the consortium",
    "admin": "provisions accounts and data, reads the audit log",
}
NAME = re.compile(r"[a-z][a-z0-9_-]{1,31}")

metadata = MetaData()
accounts = Table(
    "accounts",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("institution", String(8), nullable=True),
    Column("password_hash", String(200), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=False),
    Column("last_login_at", DateTime(timezone=True), nullable=True),
)

_hasher = PasswordHasher()
# Verified when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    institution: str | None
    active: bool


def accounts_url() -> str:
    return os.environ.get("ENCLAVE_ACCOUNTS_URL") or f"sqlite:///{state_path('accounts.db')}"


def generate_password() -> str:
    return secrets.token_urlsafe(12)


class AccountStore:
    """Accounts in a SQL database (SQLite file by default)."""

    def __init__(self, engine: Engine | None = None, rules: AccountRules | None = None):
        self.engine = engine or create_engine(accounts_url())
        self.rules = rules or AccountRules()
        metadata.create_all(self.engine)

    def add(self, name: str, role: str, institution: str | None, password: str) -> Account:
        """Create an account; raise AccountError naming what is wrong."""
        if not NAME.fullmatch(name):
            raise AccountError(
                f"user name {name!r} must be 2-32 characters: a lower-case letter, then "
                "lower-case letters, digits, '-' or '_'"
            )
        if role not in ROLES:
            raise AccountError(f"role {role!r} is not one of: {', '.join(ROLES)}")
        if role != "admin" and not institution:
            raise AccountError(f"a {role} belongs to a member institution: give --institution CODE")
        self.check_password(password)
        if self.get(name) is not None:
            raise AccountError(f"user {name!r} already exists; choose another name")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                insert(accounts).values(
                    name=name,
                    role=role,
                    institution=institution,
                    password_hash=_hasher.hash(password),
                    active=True,
                    created_at=now,
                    password_changed_at=now,
                )
            )
        return Account(name, role, institution, True)

    def check_password(self, password: str) -> None:
        if len(password) < self.rules.min_password_length:
            raise AccountError(
                f"the password is too short: the policy ([accounts] min_password_length) asks "
                f"for at least {self.rules.min_password_length} characters"
            )

    def get(self, name: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.name == name)).first()
        return Account(row.name, row.role, row.institution, row.active) if row else None

    def list(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(accounts).order_by(accounts.c.name)).all()
        return [Account(r.name, r.role, r.institution, r.active) for r in rows]

    def verify(self, name: str, password: str) -> Account | None:
        """The active account if ``password`` is right; None otherwise (same cost either way)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.name == name)).first()
        try:
            _hasher.verify(row.password_hash if row else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row.active:
            return None
        with self.engine.begin() as conn:
            conn.execute(update(accounts).where(accounts.c.name == name).values(last_login_at=datetime.now(UTC)))
        return Account(row.name, row.role, row.institution, row.active)
