"""JupyterHub login against Enclave's account store (principle 7).

``EnclaveAuthenticator`` overrides ``authenticate`` (and ``check_allowed``, ``refresh_user``,
``validate_username``), never the login pipeline. One login form: name, password and, for
accounts that enrolled an authenticator app, the one-time code (JupyterHub's own
``request_otp`` field), checked by ``hub.signin.sign_in`` (as the ``enclave`` command's
``--as`` is). Failures say only "Invalid username or password", whether the name exists, the
password was wrong or the account is locked; the audit log and the hub log say which. Every
login success and failure, every lockout, is an audit event.

Roles become JupyterHub groups at every login (``role-<role>``, ``institution-<code>``), which
``hub.roles`` maps to RBAC roles. An account with a pending step (temporary or expired
password, a second factor to enroll) gets only the ``enclave-pending`` group, which grants no
scope: it can open the change-password and TOTP pages, nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque

from jupyterhub.auth import Authenticator
from traitlets import Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from hub.accounts import NAME, Account, AccountStore, accounts_url
from hub.audit import AuditLog
from hub.signin import sign_in
from hub.web import PENDING_GROUP, handlers
from output_filters.policy import load_policy


def safe(name: object, limit: int = 40) -> str:
    """A login name as it may appear in a log line: quoted, escaped, bounded."""
    text = repr(str(name))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def groups_for(account: Account, pending: bool) -> list[str]:
    if pending:
        return [PENDING_GROUP]
    groups = [f"role-{account.role}"]
    if account.institution:
        groups.append(f"institution-{account.institution}")
    return groups


class SourceThrottle:
    """Per-source slow-down: after ``free`` failures in ``window`` seconds from one address,
    each further attempt from it waits twice as long as the one before, up to ``ceiling``."""

    def __init__(self, free: int, window: float, ceiling: float):
        self.free, self.window, self.ceiling = free, window, ceiling
        self.failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, source: str, now: float) -> deque[float]:
        times = self.failures[source]
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def delay(self, source: str, now: float | None = None) -> float:
        count = len(self._recent(source, time.monotonic() if now is None else now))
        if count < self.free:
            return 0.0
        return min(self.ceiling, 0.5 * 2 ** (count - self.free))

    def failed(self, source: str, now: float | None = None) -> None:
        self._recent(source, time.monotonic() if now is None else now).append(time.monotonic() if now is None else now)


class EnclaveAccounts(LoggingConfigurable):
    """What every Enclave authenticator shares: the account store, the audit log, login
    groups, refresh against the store, and the hub's own pages (``hub.web``)."""

    accounts_url = Unicode(
        config=True,
        help="SQLAlchemy URL of the account store (default: ENCLAVE_ACCOUNTS_URL or var/accounts.db).",
    )

    @default("accounts_url")
    def _default_accounts_url(self) -> str:
        return accounts_url()

    @default("manage_groups")
    def _default_manage_groups(self) -> bool:
        return True

    @property
    def store(self) -> AccountStore:
        if not hasattr(self, "_store"):
            from sqlalchemy import create_engine

            self._store = AccountStore(create_engine(self.accounts_url), load_policy().accounts)
        return self._store

    def audit(self, event: str, name: str, **details) -> None:
        AuditLog().record(name, event, **details)

    def validate_username(self, username: str) -> bool:
        return bool(NAME.fullmatch(username or ""))

    def pending(self, name: str) -> bool:
        return self.store.pending_step(name) is not None

    async def refresh_user(self, user, handler=None, **kwargs):
        account = self.store.get(user.name)
        if account is None or not account.active:
            return False
        return {"name": user.name, "groups": groups_for(account, self.pending(user.name))}

    def sync_user_groups(self, user) -> None:
        account = self.store.get(user.name)
        if account is not None:
            user.sync_groups(groups_for(account, self.pending(user.name)))


class EnclaveAuthenticator(EnclaveAccounts, Authenticator):
    """Accepts the name, password (and one-time code) of an active Enclave account.

    Accounts are created with ``enclave user add``; the hub never creates them.
    """

    source_free_failures = Integer(
        10, config=True, help="Failed logins from one address (in source_window seconds) before it is slowed down."
    )
    source_window = Float(900.0, config=True, help="Seconds over which failures from one address are counted.")
    source_max_delay = Float(10.0, config=True, help="Longest wait (seconds) imposed on one address's login.")

    @default("any_allow_config")
    def _default_any_allow_config(self) -> bool:
        return True  # check_allowed consults the account store: only active accounts get in

    @default("request_otp")
    def _default_request_otp(self) -> bool:
        return True

    @default("otp_prompt")
    def _default_otp_prompt(self) -> str:
        return "One-time code (only if you set up an authenticator app):"

    @property
    def throttle(self) -> SourceThrottle:
        if not hasattr(self, "_throttle"):
            self._throttle = SourceThrottle(self.source_free_failures, self.source_window, self.source_max_delay)
        return self._throttle

    async def authenticate(self, handler, data):
        data = data or {}
        raw = data.get("username", "")
        password = data.get("password", "")
        otp = data.get("otp", "")
        source = handler.request.remote_ip if handler is not None else "-"
        name = self.normalize_username(raw) if isinstance(raw, str) else ""
        if not NAME.fullmatch(name) or not password:
            self.log.warning("Failed login for %s from %s: not a valid user name or no password", safe(raw), source)
            self.throttle.failed(source)
            return None
        wait = self.throttle.delay(source)
        if wait:
            await asyncio.sleep(wait)  # the per-source slow-down itself, not a test's wait
        result = await asyncio.to_thread(sign_in, self.store, name, password, otp, source=source, audit=self.audit)
        if result.account is None:
            self.throttle.failed(source)
            self.log.warning("Failed login for %s from %s: %s", safe(name), source, result.reason)
            return None
        account = result.account
        return {"name": account.name, "admin": False, "groups": groups_for(account, result.pending is not None)}

    def check_allowed(self, username, authentication=None) -> bool:
        account = self.store.get(username)
        return account is not None and account.active

    def get_handlers(self, app):
        return [*super().get_handlers(app), *handlers()]
