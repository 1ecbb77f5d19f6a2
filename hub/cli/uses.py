"""``enclave use``: approved uses, what each may read and who (principles 2 and 3).

Each change goes through ``hub.flow`` (commit, audit, refresh the extracts).
"""

from __future__ import annotations

import click

from hub import flow
from hub.cli.errors import actor, advance, confirm, expected
from hub.cli.warehouse import say_refreshed, split, warehouse
from warehouse.extracts import extract_names
from warehouse.uses import OWN, get_use, list_uses


@click.group()
def use() -> None:
    """Approved uses: what each may read, and who (principles 2 and 3)."""


@use.command("add")
@click.argument("name")
@click.option("--purpose", required=True, help="The purpose the consortium approved.")
@click.option("--tables", "tables", required=True, multiple=True, help="Tables, comma-separated (or repeated).")
@click.option(
    "--elements", "elements", multiple=True, help="Elements (`grade` or `cc_courses.grade`), or `all` (default)."
)
@click.option(
    "--institutions",
    "institutions",
    required=True,
    multiple=True,
    help="Institution codes, or `all` (today's members).",
)
def use_add(
    name: str, purpose: str, tables: tuple[str, ...], elements: tuple[str, ...], institutions: tuple[str, ...]
) -> None:
    """Record approved use NAME and write its extract."""
    engine = warehouse()
    chosen_elements = split(elements)
    chosen_institutions = split(institutions)
    with expected():
        changed = flow.add_approved_use(
            engine,
            actor=actor(),
            name=name,
            purpose=purpose,
            tables=split(tables),
            elements=None if chosen_elements in ([], ["all"]) else chosen_elements,
            institutions=None if chosen_institutions == ["all"] else chosen_institutions,
        )
    added = changed.result
    click.echo(f"Added use {name}: {', '.join(added.tables)} of {len(added.institutions)} institutions.")
    say_refreshed(changed)
    click.echo(f"Grant it with `enclave use grant {name} USER`.")


@use.command("grant")
@click.argument("name")
@click.argument("user")
def use_grant(name: str, user: str) -> None:
    """Let USER work on use NAME."""
    engine = warehouse()
    with expected():
        changed = flow.grant_use(engine, actor=actor(), name=name, user=user)
    if not changed.result:
        click.echo(f"{user} already has use {name}; nothing to do.")
        return
    click.echo(f"Granted use {name} to {user}.")
    say_refreshed(changed)


@use.command("revoke")
@click.argument("name")
@click.argument("user")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def use_revoke(name: str, user: str, yes: bool) -> None:
    """End USER's grant of use NAME; the use's data leaves their workspace."""
    engine = warehouse()
    with expected():
        flow.check_can_revoke_use(engine, name, user)
        confirm(yes, f"Revoke use {name} from {user}?")
        changed = flow.revoke_use(engine, actor=actor(), name=name, user=user)
    click.echo(f"Revoked use {name} from {user}.")
    say_refreshed(changed)


@use.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def use_remove(name: str, yes: bool) -> None:
    """End use NAME: every grant ends and its extract is deleted; its record stays."""
    engine = warehouse()
    with expected():
        existing = get_use(engine, name)
        confirm(yes, f"End use {name} ({', '.join(existing.users) or 'no users'}) and delete its extract?")
        changed = flow.remove_approved_use(engine, actor=actor(), name=name)
    click.echo(f"Ended use {name}.")
    say_refreshed(changed)


@use.command("list")
def use_list() -> None:
    """Approved uses with their purpose, tables, institutions and users."""
    engine = warehouse()
    for found in list_uses(engine):
        click.echo(f"{found.name}: {found.purpose}")
        for table, columns in found.tables.items():
            click.echo(f"    {table}: {', '.join(columns)}")
        click.echo(f"    institutions: {', '.join(found.institutions)}")
        click.echo(f"    users: {', '.join(found.users) or '-'}")
    members = flow.institution_members()
    for name in extract_names():
        if name.startswith(OWN):
            users = ", ".join(sorted(members.get(name.removeprefix(OWN), ()))) or "-"
            click.echo(f"{name}: the institution's own data; users: {users}")


@use.command("refresh")
@click.argument("names", nargs=-1)
def use_refresh(names: tuple[str, ...]) -> None:
    """Rewrite the extracts of NAMES (default: every use) from the warehouse."""
    engine = warehouse()
    with expected():
        with click.progressbar(length=1, label="Refreshing extracts", show_pos=True) as bar:
            touched = flow.refresh_uses(engine, actor=actor(), names=list(names) or None, progress=advance(bar))
    click.echo(f"Refreshed extracts: {', '.join(touched) or 'none'}.")
