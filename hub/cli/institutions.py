"""``enclave institution``: member institutions and their secret codes (principle 8)."""

from __future__ import annotations

import click

from hub.audit import AuditLog
from hub.cli.errors import actor, expected
from hub.cli.warehouse import warehouse
from warehouse.institutions import SEGMENTS, add_institution, list_institutions


@click.group()
def institution() -> None:
    """Member institutions and their secret codes."""


@institution.command("add")
@click.option(
    "--segment", required=True, type=click.Choice(list(SEGMENTS)), help="K-12 district, college or university."
)
@click.option("--name", required=True, help="The institution's name (kept only in the admin table).")
def institution_add(segment: str, name: str) -> None:
    """Register an institution under a new random secret code (printed here)."""
    with expected():
        member = add_institution(warehouse(), name, segment)
    AuditLog().record(actor(), "institution.add", code=member.code, segment=segment)
    click.echo(f"Added {SEGMENTS[segment]} {member.code}.")
    click.echo("The code is secret (principle 8): give it only to the institution's own staff.")


@institution.command("list")
def institution_list() -> None:
    """List institutions: code, segment, name (administrators only: names are confidential)."""
    for member in list_institutions(warehouse(), with_names=True):
        click.echo(f"{member.code}  {SEGMENTS[member.segment]:<19} {member.name}")
