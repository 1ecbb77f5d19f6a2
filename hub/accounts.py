"""The account store behind the hub's login (principle 7).

Accounts have a role (researcher, author, reviewer, admin) and, except administrators, a
member institution (by its code). Passwords are stored only as argon2id hashes; the previous
ones are kept (hashed) so the last ``password_history`` cannot be reused. The store keeps
what the login needs: failures and lockout, the password's age, whether it is a temporary
one (an administrator's reset), and the TOTP secret of the second factor.

``login()`` is the one place a password is checked for the hub: constant cost whether or not
the name exists, lockout after ``lockout_failures`` failures, the second factor when the
account has one. ``pending_step()`` says what an account that logged in must do before it
gets anything else (change an expired or temporary password, enroll a second factor).
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    false,
    insert,
    inspect,
    select,
    text,
    update,
)

from hub.exceptions import AccountError
from hub.passwords import check_password, hasher
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
    # Added for the locked-down hub; _upgrade() adds them to an older store.
    Column("must_change", Boolean, nullable=False, default=False, server_default=false()),
    Column("failures", Integer, nullable=False, default=0, server_default=text("0")),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("totp_secret", String(64), nullable=True),
    Column("totp_last_step", Integer, nullable=True),
)
history = Table(
    "password_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(32), nullable=False, index=True),
    Column("password_hash", String(200), nullable=False),
    Column("replaced_at", DateTime(timezone=True), nullable=False),
)

_hasher = hasher()
# Verified when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    institution: str | None
    active: bool


@dataclass(frozen=True)
class Status:
    """What the login knows of an account besides its role."""

    must_change: bool
    password_changed_at: datetime
    last_login_at: datetime | None
    failures: int
    locked_until: datetime | None
    totp: bool


@dataclass(frozen=True)
class Login:
    """The outcome of one login attempt. ``account`` is None unless it succeeded."""

    account: Account | None
    reason: str  # for the audit log and the hub log, never for the login page
    locked_now: bool = False
    # Why it failed, for a caller that may say so (the CLI): "unknown", "locked", "disabled",
    # "password" or "code"; "" when it succeeded.
    refused: str = ""
    locked_until: datetime | None = None
    pending: str | None = None  # the step the account must take first (``pending_step``), if it got in


def accounts_url() -> str:
    return os.environ.get("ENCLAVE_ACCOUNTS_URL") or f"sqlite:///{state_path('accounts.db')}"


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _account(row) -> Account:
    return Account(row.name, row.role, row.institution, row.active)


class AccountStore:
    """Accounts in a SQL database (SQLite file by default)."""

    def __init__(self, engine: Engine | None = None, rules: AccountRules | None = None):
        self.engine = engine or create_engine(accounts_url())
        self.rules = rules or AccountRules()
        metadata.create_all(self.engine)
        _upgrade(self.engine)

    # ---- creating and reading ------------------------------------------------------------

    def add(self, name: str, role: str, institution: str | None, password: str, *, temporary: bool = False) -> Account:
        """Create an account; raise AccountError naming what is wrong."""
        if not NAME.fullmatch(name):
            raise AccountError(
                f"user name {name!r} must be 2-32 characters: a lower-case letter, then "
                "lower-case letters, digits, '-' or '_'"
            )
        self._check_role(role, institution)
        self.check_password(password, name)
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
                    must_change=temporary,
                    failures=0,
                )
            )
        return Account(name, role, institution, True)

    @staticmethod
    def _check_role(role: str, institution: str | None) -> None:
        if role not in ROLES:
            raise AccountError(f"role {role!r} is not one of: {', '.join(ROLES)}")
        if role != "admin" and not institution:
            raise AccountError(f"a {role} belongs to a member institution: give --institution CODE")

    def check_password(self, password: str, name: str | None = None) -> None:
        check_password(password, self.rules, name)

    def _row(self, name: str):
        with self.engine.connect() as conn:
            return conn.execute(select(accounts).where(accounts.c.name == name)).first()

    def _require(self, name: str):
        row = self._row(name)
        if row is None:
            raise AccountError(f"no user named {name!r}; `enclave user list` shows the accounts")
        return row

    def get(self, name: str) -> Account | None:
        row = self._row(name)
        return _account(row) if row else None

    def list(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(accounts).order_by(accounts.c.name)).all()
        return [_account(r) for r in rows]

    def status(self, name: str) -> Status:
        row = self._require(name)
        return Status(
            bool(row.must_change),
            _utc(row.password_changed_at),
            _utc(row.last_login_at),
            row.failures or 0,
            _utc(row.locked_until),
            row.totp_secret is not None,
        )

    def _update(self, name: str, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(accounts).where(accounts.c.name == name).values(**values))

    # ---- the login -----------------------------------------------------------------------

    def verify(self, name: str, password: str) -> Account | None:
        """The active account if ``password`` is right; None otherwise (same cost either way).

        No lockout and no second factor: ``login()`` is the hub's check.
        """
        row = self._row(name)
        if not self._password_matches(row, password) or row is None or not row.active:
            return None
        self._update(name, last_login_at=datetime.now(UTC))
        return _account(row)

    @staticmethod
    def _password_matches(row, password: str) -> bool:
        try:
            return _hasher.verify(row.password_hash if row else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return False

    def login(self, name: str, password: str, otp: str = "", now: datetime | None = None) -> Login:
        """Check a login: password (constant cost), lockout, second factor."""
        now = now or datetime.now(UTC)
        row = self._row(name)
        matches = self._password_matches(row, password)
        if row is None:
            return Login(None, "unknown user", refused="unknown")
        locked_until = _utc(row.locked_until)
        if locked_until is not None and locked_until > now:
            return Login(
                None, f"locked until {locked_until:%Y-%m-%d %H:%M} UTC", refused="locked", locked_until=locked_until
            )
        if not row.active:
            return Login(None, "account disabled", refused="disabled")
        if not matches:
            return self._failed(row, now, "wrong password", "password")
        if row.totp_secret is not None:
            step = _totp_step(row.totp_secret, otp, now)
            if step is None:
                return self._failed(row, now, "wrong or missing one-time code", "code")
            if row.totp_last_step is not None and step <= row.totp_last_step:
                return self._failed(row, now, "one-time code used before", "code")
            self._update(name, totp_last_step=step)
        self._update(name, failures=0, locked_until=None, last_login_at=now)
        return Login(_account(row), "ok")

    def _failed(self, row, now: datetime, reason: str, refused: str) -> Login:
        failures = (row.failures or 0) + 1
        if failures >= self.rules.lockout_failures:
            until = now + timedelta(minutes=self.rules.lockout_minutes)
            self._update(row.name, failures=0, locked_until=until)
            return Login(
                None,
                f"{reason}; locked for {self.rules.lockout_minutes} minutes",
                locked_now=True,
                refused=refused,
                locked_until=until,
            )
        self._update(row.name, failures=failures)
        return Login(None, reason, refused=refused)

    def password_expired(self, name: str, now: datetime | None = None) -> bool:
        days = self.rules.password_max_age_days
        if days <= 0:
            return False
        changed = self.status(name).password_changed_at
        return (now or datetime.now(UTC)) - changed > timedelta(days=days)

    def pending_step(self, name: str) -> str | None:
        """What the account must do before anything else, as a sentence; None if nothing."""
        row = self._row(name)
        if row is None:
            return None
        if row.must_change:
            return "Your password is a temporary one: choose your own at /hub/change-password first."
        if self.password_expired(name):
            return (
                f"Your password is older than {self.rules.password_max_age_days} days: choose a new one "
                "at /hub/change-password first."
            )
        if row.totp_secret is None and row.role in self.rules.totp_roles:
            return f"A {row.role} needs a second factor: set up your authenticator app at /hub/totp first."
        return None

    # ---- changes -------------------------------------------------------------------------

    def change_password(self, name: str, new: str, *, temporary: bool = False) -> None:
        """Set a new password: the policy's rules, and none of the last ``password_history``."""
        row = self._require(name)
        self.check_password(new, name)
        with self.engine.connect() as conn:
            previous = conn.execute(
                select(history.c.password_hash)
                .where(history.c.name == name)
                .order_by(history.c.id.desc())
                .limit(max(self.rules.password_history - 1, 0))
            ).all()
        recent = [row.password_hash, *(p.password_hash for p in previous)][: self.rules.password_history]
        for stored in recent:
            try:
                if _hasher.verify(stored, new):
                    raise AccountError(
                        f"the password was used before: the policy ([accounts] password_history) refuses "
                        f"the last {self.rules.password_history}"
                    )
            except (VerificationError, InvalidHashError):
                continue
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(insert(history).values(name=name, password_hash=row.password_hash, replaced_at=now))
            conn.execute(
                update(accounts)
                .where(accounts.c.name == name)
                .values(
                    password_hash=_hasher.hash(new),
                    password_changed_at=now,
                    must_change=temporary,
                    failures=0,
                    locked_until=None,
                )
            )

    def check_current_password(self, name: str, password: str) -> bool:
        return self._password_matches(self._row(name), password)

    def reset_password(self, name: str, *, reset_totp: bool = False) -> str:
        """A temporary password (changed at first login); optionally drops the second factor."""
        self._require(name)
        temporary = generate_password()
        while True:
            try:
                self.change_password(name, temporary, temporary=True)
                break
            except AccountError:  # a generated password on the common list: draw again
                temporary = generate_password()
        if reset_totp:
            self._update(name, totp_secret=None, totp_last_step=None)
        return temporary

    def set_active(self, name: str, active: bool) -> None:
        self._require(name)
        self._update(name, active=active, failures=0, locked_until=None)

    def set_role(self, name: str, role: str, institution: str | None) -> None:
        self._require(name)
        self._check_role(role, institution)
        self._update(name, role=role, institution=institution)

    def unlock(self, name: str) -> None:
        self._update(name, failures=0, locked_until=None)

    def set_totp(self, name: str, secret: str | None) -> None:
        self._require(name)
        self._update(name, totp_secret=secret, totp_last_step=None)

    def enroll_totp(self, name: str, secret: str, code: str, now: datetime | None = None) -> bool:
        """Keep ``secret`` as the second factor if ``code`` is its current code (then used up)."""
        step = _totp_step(secret, code, now or datetime.now(UTC))
        if step is None:
            return False
        self._require(name)
        self._update(name, totp_secret=secret, totp_last_step=step)
        return True

    def expiring(self, days: int, now: datetime | None = None) -> list[tuple[Account, datetime]]:
        """Active accounts whose password expires within ``days`` (or already has), soonest first."""
        if self.rules.password_max_age_days <= 0:
            return []
        now = now or datetime.now(UTC)
        found = []
        for account in self.list():
            if not account.active:
                continue
            expires = self.status(account.name).password_changed_at + timedelta(days=self.rules.password_max_age_days)
            if expires - now <= timedelta(days=days):
                found.append((account, expires))
        return sorted(found, key=lambda item: item[1])

    def remove_history(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(history).where(history.c.name == name))


def _totp_step(secret: str, otp: str, now: datetime) -> int | None:
    """The time step ``otp`` is valid for (this one or the one before), or None."""
    import pyotp

    code = (otp or "").strip().replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1):
        if hmac.compare_digest(totp.at(candidate * totp.interval), code):
            return candidate
    return None


def _upgrade(engine: Engine) -> None:
    """Add the columns of the locked-down hub to a store created before them."""
    present = {column["name"] for column in inspect(engine).get_columns("accounts")}
    missing = [column for column in accounts.columns if column.name not in present]
    if not missing:
        return
    with engine.begin() as conn:
        for column in missing:
            kind = column.type.compile(dialect=engine.dialect)
            default = ""
            if column.server_default is not None:
                default = " DEFAULT " + str(column.server_default.arg.compile(dialect=engine.dialect))
            null = " NOT NULL" if not column.nullable else ""
            conn.execute(text(f"ALTER TABLE accounts ADD COLUMN {column.name} {kind}{null}{default}"))
