"""The flow's invariants in one place: each change commits, is audited and refreshes extracts.

Every caller (the ``enclave`` command, the release service, tests) changes the warehouse and
the accounts (an institution's active accounts are the users of its own-data use) through
these functions, never through ``warehouse`` or the account store directly, so no caller can
forget the audit event or leave an extract behind. Each function: checks, writes (one
transaction), records its audit event, then rewrites the extracts the change affects and says
which (``Changed.refreshed``).

A change whose extracts cannot be written stays made and audited; ``ExtractsStale`` says so
and names the command that finishes it (``enclave use refresh``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hub.accounts import AccountStore, generate_password
from hub.audit import AuditLog
from hub.exceptions import AccountError, HubError
from warehouse.exceptions import UploadRejected
from warehouse.pseudonymize import StudentKeyer
from warehouse.settings import var_dir
from warehouse.upload import upload
from warehouse.uses import OWN, add_use, check_can_revoke, get_use, grant, refresh_extracts, remove_use, revoke
from warehouse.withdraw import withdraw

Progress = Callable[[int, int], None]
SERVER_ROLES = ("researcher", "author", "admin")  # roles that get a research server


class ExtractsStale(HubError):
    """The change is made and audited, but its extracts could not be rewritten."""

    def __init__(self, change: str, error: OSError):
        super().__init__(
            f"{change} is done, but writing the extracts failed: {error}; fix it, then run `enclave use refresh`"
        )


@dataclass(frozen=True)
class Changed:
    """What a change did: its result from ``warehouse`` and the extracts it rewrote."""

    result: Any
    refreshed: list[str] = field(default_factory=list)


def institution_members(store: AccountStore | None = None) -> dict[str, list[str]]:
    """Institution code → its active accounts: the users of its own-data use."""
    members: dict[str, list[str]] = {}
    for account in (store or AccountStore()).list():
        if account.active and account.institution:
            members.setdefault(account.institution, []).append(account.name)
    return members


def refresh(engine: Engine, progress: Progress | None = None, **scope) -> list[str]:
    """Rewrite the extracts in ``scope`` (``names``, ``institutions``, ``tables``, ``grants_only``)."""
    return refresh_extracts(engine, institution_members(), progress=progress or _quiet, **scope)


def _quiet(_done: int, _total: int) -> None:
    """No progress shown (a caller without a progress bar)."""


def refresh_own_grants(engine: Engine | None = None) -> list[str]:
    """Rewrite the own-institution uses' manifests from the accounts (no data is read)."""
    if not (var_dir() / "uses").is_dir():
        return []  # no extracts yet: the first upload writes them
    if engine is None:
        from warehouse.db import connect, create_schema

        engine = connect()
        create_schema(engine)
    names = [n for n in os.listdir(var_dir() / "uses") if n.startswith(OWN)]
    return refresh_extracts(engine, institution_members(), names=names, grants_only=True)


def _refreshed(change: str, engine: Engine, progress: Progress | None, **scope) -> list[str]:
    try:
        return refresh(engine, progress, **scope)
    except OSError as error:
        raise ExtractsStale(change, error) from None


def upload_file(
    engine: Engine,
    *,
    actor: str,
    institution: str,
    year: str,
    table: str,
    path: Path,
    keyer: StudentKeyer,
    progress: Progress | None = None,
    refresh_progress: Progress | None = None,
    audit: AuditLog | None = None,
) -> Changed:
    """Validate and load ``path``; a rejection is audited too (with its number of problems)."""
    audit = audit or AuditLog()
    scope = {"institution": institution, "year": year, "table": table, "file": path.name}
    try:
        result = upload(
            engine,
            institution=institution,
            year=year,
            table=table,
            path=path,
            keyer=keyer,
            loaded_by=actor,
            progress=progress or _quiet,
        )
    except UploadRejected as error:
        audit.record(actor, "data.upload.rejected", **scope, problems=error.problems.total)
        raise
    if result.status == "unchanged":
        return Changed(result)
    audit.record(
        actor,
        "data.upload",
        **scope,
        checksum=result.checksum,
        rows=result.rows,
        batch=result.batch_id,
        status=result.status,
        replaced_batch=result.replaced_batch,
    )
    change = f"the upload of {path.name}"
    return Changed(result, _refreshed(change, engine, refresh_progress, institutions=[institution], tables=[table]))


def withdraw_data(
    engine: Engine, *, actor: str, institution: str, year: str | None = None, progress: Progress | None = None
) -> Changed:
    """Remove an institution's records (of ``year``, or all) from the warehouse and every extract."""
    result = withdraw(engine, institution, actor, year)
    AuditLog().record(
        actor, "data.withdraw", institution=institution, year=year, rows=result.rows, batches=list(result.batches)
    )
    return Changed(result, _refreshed(f"the withdrawal of {institution}", engine, progress, institutions=[institution]))


def add_approved_use(engine: Engine, *, actor: str, name: str, progress: Progress | None = None, **use) -> Changed:
    """Record approved use ``name`` (``purpose``, ``tables``, ``elements``, ``institutions``) and write its extract."""
    added = add_use(engine, name, created_by=actor, **use)
    AuditLog().record(
        actor,
        "use.add",
        use=name,
        purpose=added.purpose,
        tables={t: list(c) for t, c in added.tables.items()},
        institutions=list(added.institutions),
    )
    return Changed(added, _refreshed(f"use {name}", engine, progress, names=[name]))


def check_grantee(user: str, store: AccountStore | None = None) -> None:
    account = (store or AccountStore()).get(user)
    if account is None:
        raise HubError(f"no account named {user!r}; create it with `enclave user add {user} --role researcher ...`")
    if not account.active:
        raise HubError(f"{user}'s account is deactivated; uses are granted to active accounts only")
    if account.role not in SERVER_ROLES:
        raise HubError(f"{user} is a {account.role}: reviewers get no research server, so a use would reach nobody")


def grant_use(engine: Engine, *, actor: str, name: str, user: str) -> Changed:
    """Let ``user`` work on use ``name`` (``result`` False: they already could)."""
    check_grantee(user)
    added = grant(engine, name, user, actor)
    if not added:
        return Changed(False)
    AuditLog().record(actor, "use.grant", use=name, user=user)
    return Changed(True, _refreshed(f"the grant of {name}", engine, None, names=[name], grants_only=True))


def check_can_revoke_use(engine: Engine, name: str, user: str) -> None:
    check_can_revoke(get_use(engine, name), user)


def revoke_use(engine: Engine, *, actor: str, name: str, user: str) -> Changed:
    """End ``user``'s grant of ``name``; the use's data leaves their workspace."""
    check_can_revoke_use(engine, name, user)
    revoke(engine, name, user, actor)
    AuditLog().record(actor, "use.revoke", use=name, user=user)
    return Changed(True, _refreshed(f"the revocation of {name}", engine, None, names=[name], grants_only=True))


def remove_approved_use(engine: Engine, *, actor: str, name: str, progress: Progress | None = None) -> Changed:
    """End use ``name``: every grant ends and its extract is deleted; its record stays."""
    existing = get_use(engine, name)
    remove_use(engine, name, actor)
    AuditLog().record(actor, "use.remove", use=name, users=list(existing.users))
    return Changed(existing, _refreshed(f"the end of use {name}", engine, progress, names=[name]))


def refresh_uses(
    engine: Engine, *, actor: str, names: list[str] | None = None, progress: Progress | None = None
) -> list[str]:
    """Rewrite the extracts of ``names`` (default: every use) from the warehouse."""
    for name in names or []:
        if not name.startswith(OWN):
            get_use(engine, name)
    touched = refresh(engine, progress, names=names or None)
    AuditLog().record(actor, "use.refresh", uses=touched)
    return touched


# ---- accounts: an institution's active accounts are the users of its own-data use -------------


def _accounts_changed(change: str) -> list[str]:
    try:
        return refresh_own_grants()
    except OSError as error:
        raise ExtractsStale(change, error) from None


def check_institution(code: str | None) -> None:
    """``code`` names a member institution (UnknownInstitution says which exist)."""
    if code:
        from warehouse.db import connect, create_schema
        from warehouse.institutions import get_institution

        engine = connect()
        create_schema(engine)
        get_institution(engine, code)


def add_account(
    store: AccountStore, *, actor: str, name: str, role: str, institution: str | None, password: str, temporary: bool
) -> Changed:
    """Create an account; it joins its institution's own-data use."""
    check_institution(institution)
    added = store.add(name, role, institution, password, temporary=temporary)
    AuditLog().record(actor, "user.add", user=name, role=role, institution=institution)
    return Changed(added, _accounts_changed(f"the account {name}"))


def import_accounts(store: AccountStore, *, actor: str, file: str, rows: list[tuple[str, str, str | None]]) -> Changed:
    """Create the accounts ``rows`` (name, role, institution), each with a temporary password;
    ``result``: (name, password) pairs. The caller checked every row first (all or none)."""
    for _name, _role, code in rows:
        check_institution(code)
    created = []
    for name, role, code in rows:
        for attempt in range(5):
            password = generate_password()
            try:
                store.add(name, role, code, password, temporary=True)
                break
            except AccountError:  # a generated password on the common list: draw again
                if attempt == 4:
                    raise
        created.append((name, password))
    AuditLog().record(actor, "user.import", file=file, users=[name for name, _ in created])
    return Changed(created, _accounts_changed(f"the import of {file}"))


def disable_account(store: AccountStore, *, actor: str, name: str) -> Changed:
    """No login, the hub's server, tokens and sessions ended (``result``: what the hub said);
    the account leaves its institution's own-data use."""
    from hub import hub_api

    store.status(name)  # AccountError naming the fix if there is no such account
    store.set_active(name, False)
    ended = hub_api.end_user(name)
    AuditLog().record(actor, "user.disable", user=name, hub=ended)
    return Changed(ended, _accounts_changed(f"disabling {name}"))


def enable_account(store: AccountStore, *, actor: str, name: str) -> Changed:
    store.set_active(name, True)
    AuditLog().record(actor, "user.enable", user=name)
    return Changed(True, _accounts_changed(f"enabling {name}"))


def set_account_role(store: AccountStore, *, actor: str, name: str, role: str, institution: str | None) -> Changed:
    """Change the role (and institution); ``result``: the previous role."""
    account = store.get(name) or store.status(name)
    check_institution(institution)
    store.set_role(name, role, institution)
    AuditLog().record(actor, "user.set-role", user=name, role=role, institution=institution, previous=account.role)
    return Changed(account.role, _accounts_changed(f"the role of {name}"))


def reset_account_password(store: AccountStore, *, actor: str, name: str, reset_totp: bool) -> Changed:
    """A temporary password (``result``), changed at the next login; unlocks the account."""
    temporary = store.reset_password(name, reset_totp=reset_totp)
    AuditLog().record(actor, "user.reset-password", user=name, totp_reset=reset_totp)
    return Changed(temporary)
