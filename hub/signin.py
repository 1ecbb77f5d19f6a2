"""The audited login: one account's password (and second factor) checked, on the record.

``sign_in()`` is what the hub's login form and the ``enclave`` command's ``--as`` both go
through: ``AccountStore.login`` (constant cost, lockout, disabled accounts, the one-time code)
and its audit events — ``login.failure`` (and ``login.lockout`` when that failure locked the
account) or ``login.success`` with the step the account must take first, if any. ``source``
says where the attempt came from: the client's address for the hub, ``cli:<system user>`` for
the command.

``check_signed_in()`` is the command's side: the account that signed in and has nothing left
to do first, or ``SignInRefused`` with a sentence naming the account and what to do. The
hub's login page says less ("Invalid username or password") because anyone can reach it; the
command runs on the server, for its administrators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from hub.accounts import Account, AccountStore, Login
from hub.audit import AuditLog
from hub.exceptions import SignInRefused

Audit = Callable[..., object]  # audit(event, name, **details)


def record(event: str, name: str, **details) -> None:
    AuditLog().record(name, event, **details)


def sign_in(
    store: AccountStore, name: str, password: str, otp: str = "", *, source: str, audit: Audit = record
) -> Login:
    """``store.login`` and its audit events; the result carries ``pending`` when it succeeded."""
    result = store.login(name, password, otp)
    if result.account is None:
        audit("login.failure", name, source=source, reason=result.reason)
        if result.locked_now:
            audit("login.lockout", name, source=source, minutes=store.rules.lockout_minutes)
        return result
    pending = store.pending_step(name)
    audit("login.success", name, source=source, pending=pending or "")
    return replace(result, pending=pending)


def check_signed_in(
    store: AccountStore, name: str, password: str, otp: str = "", *, source: str, audit: Audit = record
) -> Account:
    """The account ``name`` if the password (and code) are right and it has no step pending;
    otherwise ``SignInRefused``, whose message says what to do."""
    result = sign_in(store, name, password, otp, source=source, audit=audit)
    if result.account is not None and result.pending is None:
        return result.account
    raise SignInRefused(name, refusal(store, name, result), result.pending or result.reason)


def refusal(store: AccountStore, name: str, result: Login) -> str:
    """Why ``name`` may not act, as a sentence with the fix."""
    rules = store.rules
    unlock = f"an administrator unlocks it with `enclave user reset-password {name}`"
    if result.account is not None:
        return f"{name} signed in but may not act yet. {result.pending}"
    if result.refused == "locked":
        return (
            f"{name} is locked until {result.locked_until:%H:%M} UTC after {rules.lockout_failures} failed "
            f"logins in a row: try again then, or {unlock}"
        )
    if result.refused == "disabled":
        return f"{name} is disabled and cannot sign in; an administrator enables it with `enclave user enable {name}`"
    if result.refused == "code":
        said = (
            f"could not sign in as {name}: the one-time code is wrong, used before or missing; give the current "
            "6-digit code of the account's authenticator app (each code is good once)"
        )
    else:
        said = (
            f"could not sign in as {name}: wrong password, or no such account (`enclave user list`); "
            f"give {name}'s own password, or act as yourself with --as YOUR-NAME"
        )
    if result.locked_now:
        return f"{said}. That was {rules.lockout_failures} failures in a row: {name} is now locked for " + (
            f"{rules.lockout_minutes} minutes ({unlock})"
        )
    return f"{said} ({rules.lockout_failures} failures in a row lock it for {rules.lockout_minutes} minutes)"
