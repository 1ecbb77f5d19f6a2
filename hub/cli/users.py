"""The ``enclave user`` commands: provisioning accounts (principle 7).

Thin click commands: each validates, asks before anything destructive (or takes ``--yes``),
calls ``hub.flow``'s account change (which writes the store, its audit event and the
institution's own-data use) and prints what happened.
Passwords the command generates are temporary: the account must choose its own at first
login. A disabled account cannot log in; if the hub is running, its server is stopped and
every hub token and session of the user is revoked at once.
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from hub import flow
from hub.accounts import NAME, ROLES, AccountStore, generate_password
from hub.cli.errors import actor, call, confirm
from hub.cli.warehouse import say_refreshed
from hub.exceptions import AccountError, HubError
from output_filters.policy import load_policy
from warehouse.exceptions import WarehouseError

IMPORT_COLUMNS = ("name", "role", "institution")


def _store() -> AccountStore:
    return AccountStore(rules=load_policy().accounts)


@click.group()
def user() -> None:
    """Accounts and roles."""


@user.command("add")
@click.argument("name")
@click.option("--institution", help="Code of the member institution (not needed for admin).")
@click.option("--role", required=True, type=click.Choice(list(ROLES)), help="What the user may do.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of generating one.")
def user_add(name: str, institution: str | None, role: str, password_stdin: bool) -> None:
    """Create an account. A generated password is temporary and printed once; it is not stored."""
    store = _store()
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else generate_password()

    added = call(
        lambda: flow.add_account(
            store,
            actor=actor(),
            name=name,
            role=role,
            institution=institution,
            password=password,
            temporary=not password_stdin,
        )
    )
    click.echo(f"Created {role} {name}" + (f" at {institution}" if institution else "") + ".")
    say_refreshed(added)
    if not password_stdin:
        click.echo(f"Password (shown once, not stored): {password}")
        click.echo("It is temporary: the first login leads to choosing a new one.")


@user.command("list")
def user_list() -> None:
    """List accounts with role, institution and status."""
    store = _store()
    for account in store.list():
        click.echo(f"{account.name:<20} {account.role:<11} {account.institution or '-':<8} {_state(store, account)}")


def _state(store: AccountStore, account) -> str:
    if not account.active:
        return "disabled"
    status = store.status(account.name)
    notes = []
    if status.locked_until and status.locked_until > datetime.now(UTC):
        notes.append(f"locked until {status.locked_until:%H:%M} UTC")
    if status.must_change:
        notes.append("temporary password")
    elif store.password_expired(account.name):
        notes.append("password expired")
    if status.totp:
        notes.append("TOTP")
    return "active" + (f" ({', '.join(notes)})" if notes else "")


@user.command("show")
@click.argument("name")
def user_show(name: str) -> None:
    """Everything the store knows of NAME's account (never its password)."""
    store = _store()
    account = call(lambda: store.get(name) or store.status(name))
    status = store.status(name)
    days = store.rules.password_max_age_days
    expires = "never" if days <= 0 else f"{status.password_changed_at + timedelta(days=days):%Y-%m-%d}"
    click.echo(f"name:              {account.name}")
    click.echo(f"role:              {account.role} ({ROLES[account.role]})")
    click.echo(f"institution:       {account.institution or '-'}")
    click.echo(f"status:            {_state(store, account)}")
    click.echo(f"password changed:  {status.password_changed_at:%Y-%m-%d %H:%M} UTC (expires {expires})")
    last = f"{status.last_login_at:%Y-%m-%d %H:%M} UTC" if status.last_login_at else "never"
    click.echo(f"last login:        {last}")
    click.echo(f"second factor:     {'TOTP' if status.totp else 'none'}")
    pending = store.pending_step(name)
    if pending:
        click.echo(f"at next login:     {pending}")


@user.command("disable")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_disable(name: str, yes: bool) -> None:
    """Disable NAME: no login, server stopped, hub tokens and sessions revoked."""
    store = _store()
    call(lambda: store.status(name))
    confirm(yes, f"Disable {name}? They cannot log in, and their running server is stopped.")
    disabled = call(lambda: flow.disable_account(store, actor=actor(), name=name))
    click.echo(f"Disabled {name}; {disabled.result}.")
    say_refreshed(disabled)


@user.command("enable")
@click.argument("name")
def user_enable(name: str) -> None:
    """Enable NAME again (the password is unchanged; reset it if in doubt)."""
    store = _store()
    enabled = call(lambda: flow.enable_account(store, actor=actor(), name=name))
    click.echo(f"Enabled {name}.")
    say_refreshed(enabled)


@user.command("reset-password")
@click.argument("name")
@click.option("--totp", "reset_totp", is_flag=True, help="Also remove the second factor (a lost authenticator app).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_reset_password(name: str, reset_totp: bool, yes: bool) -> None:
    """Give NAME a temporary password (printed once), changed at their next login; unlocks them."""
    store = _store()
    call(lambda: store.status(name))
    what = "password and second factor" if reset_totp else "password"
    confirm(yes, f"Replace {name}'s {what}? Their current password stops working.")
    temporary = call(lambda: flow.reset_account_password(store, actor=actor(), name=name, reset_totp=reset_totp))
    click.echo(f"Temporary password for {name} (shown once, not stored): {temporary.result}")
    click.echo("It must be changed at the next login." + (" The second factor is removed." if reset_totp else ""))


@user.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(list(ROLES)))
@click.option("--institution", help="Member institution code (default: unchanged).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_set_role(name: str, role: str, institution: str | None, yes: bool) -> None:
    """Change NAME's role (and institution); it takes effect at their next login."""
    store = _store()
    account = call(lambda: store.get(name) or store.status(name))
    code = institution if institution is not None else account.institution

    confirm(yes, f"Make {name} a {role}" + (f" at {code}" if code else "") + f" (now a {account.role})?")
    changed = call(lambda: flow.set_account_role(store, actor=actor(), name=name, role=role, institution=code))
    click.echo(f"{name} is now a {role}" + (f" at {code}" if code else "") + "; this applies from their next login.")
    say_refreshed(changed)


@user.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_import(file: Path, yes: bool) -> None:
    """Create the accounts in FILE (CSV: name,role,institution), all or none; temporary passwords printed once."""
    rows = _read_import(file)
    store = _store()
    errors = []
    seen: set[str] = set()
    for number, row in rows:
        where = f"{file.name} row {number}"
        name, role, code = row["name"], row["role"], row["institution"] or None
        if name in seen:
            errors.append(f"{where}: {name!r} appears twice in the file")
        seen.add(name)
        try:
            if not NAME.fullmatch(name):
                raise AccountError(f"user name {name!r} is not valid (a lower-case letter, then a-z 0-9 - _)")
            store._check_role(role, code)
            if store.get(name) is not None:
                raise AccountError(f"user {name!r} already exists")
            flow.check_institution(code)
        except (HubError, WarehouseError) as error:
            errors.append(f"{where}: {error}")
    if errors:
        raise click.ClickException("nothing was imported:\n  " + "\n  ".join(errors))
    confirm(yes, f"Create {len(rows)} accounts from {file}?")
    accounts = [(row["name"], row["role"], row["institution"] or None) for _number, row in rows]
    imported = call(lambda: flow.import_accounts(store, actor=actor(), file=str(file), rows=accounts))
    click.echo(f"Created {len(imported.result)} accounts. Temporary passwords (shown once, not stored):")
    for name, password in imported.result:
        click.echo(f"  {name:<20} {password}")
    say_refreshed(imported)


def _read_import(file: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            if header[:3] != list(IMPORT_COLUMNS) or len(header) != 3:
                raise click.ClickException(
                    f"{file}: the first line must be the header name,role,institution (found {','.join(header)})"
                )
            rows = [(n, {k.strip(): (v or "").strip() for k, v in r.items()}) for n, r in enumerate(reader, start=2)]
    except UnicodeDecodeError:
        raise click.ClickException(f"{file}: not UTF-8 text; save it as CSV (UTF-8)") from None
    if not rows:
        raise click.ClickException(f"{file}: no accounts after the header")
    return rows


@user.command("expiring")
@click.option("--days", default=14, show_default=True, type=click.IntRange(min=0), help="Look this far ahead.")
def user_expiring(days: int) -> None:
    """Active accounts whose password expires within --days (or already has)."""
    store = _store()
    if store.rules.password_max_age_days <= 0:
        click.echo("Passwords do not expire ([accounts] password_max_age_days = 0).")
        return
    found = store.expiring(days)
    if not found:
        click.echo(f"No password expires within {days} days.")
    for account, expires in found:
        state = "expired" if expires <= datetime.now(UTC) else "expires"
        click.echo(f"{account.name:<20} {account.role:<11} {state} {expires:%Y-%m-%d}")
