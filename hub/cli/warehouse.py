"""What the warehouse commands (institutions, elements, data, uses) share, and their registration.

``register`` attaches the groups to the ``enclave`` group. (The own-institution uses' users
follow the accounts through ``hub.flow``'s account changes, which the ``enclave user``
commands call.)
"""

from __future__ import annotations

import click
from sqlalchemy import Engine

from hub import flow
from warehouse.db import connect, create_schema


def warehouse() -> Engine:
    """The warehouse engine, its schema at the newest version."""
    engine = connect()
    create_schema(engine)
    return engine


def split(values: tuple[str, ...]) -> list[str]:
    """Values given repeatedly and/or comma-separated, in order, without blanks."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def say_refreshed(changed: flow.Changed) -> None:
    if changed.refreshed:
        click.echo(f"Refreshed extracts: {', '.join(changed.refreshed)}.")


def register(group: click.Group) -> None:
    """Attach the warehouse commands to ``group`` (the ``enclave`` command)."""
    from hub.cli.data import data
    from hub.cli.elements import elements
    from hub.cli.institutions import institution
    from hub.cli.uses import use

    for command in (institution, elements, data, use):
        group.add_command(command)
