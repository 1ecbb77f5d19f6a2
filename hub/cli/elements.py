"""``enclave elements``: the data elements agreed each year (principle 9)."""

from __future__ import annotations

from pathlib import Path

import click

from hub.audit import AuditLog
from hub.cli.errors import actor, confirm, expected
from hub.cli.warehouse import warehouse
from warehouse.adoption import adopt, current_adoption, element_set_of_file
from warehouse.elements import available_years, load_element_set
from warehouse.institutions import SEGMENTS


@click.group()
def elements() -> None:
    """The data elements agreed each year (principle 9)."""


@elements.command("show")
@click.argument("year")
def elements_show(year: str) -> None:
    """Show the tables and columns agreed for YEAR (e.g. 2024-25)."""
    with expected():
        element_set = load_element_set(year)
    click.echo(f"Data elements for {element_set.year} (agreed {element_set.agreed}; {element_set.source.name})")
    for table in element_set.tables.values():
        click.echo(f"\n{table.name} ({SEGMENTS.get(table.segment, table.segment)}): {table.description}")
        for column in table.columns:
            flags = [column.type, "required" if column.required else "optional"]
            if column.identifier:
                flags.append("identifier, not stored")
            if column.codes:
                flags.append("codes: " + ", ".join(column.codes))
            click.echo(f"  {column.name:<24} {'; '.join(flags)}")


@elements.command("list")
def elements_list() -> None:
    """Years with an element set, and whether it is adopted."""
    engine = warehouse()
    for year in available_years():
        adoption = current_adoption(engine, year)
        if adoption is None:
            state = "not adopted"
        else:
            changed = load_element_set(year).checksum != adoption.checksum
            state = f"adopted {adoption.adopted_at:%Y-%m-%d} by {adoption.adopted_by}"
            state += "; CHANGED since: adopt it again or restore it" if changed else ""
        click.echo(f"{year}  {state}")


@elements.command("adopt")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace an earlier adoption of the year without asking.")
def elements_adopt(file: Path, yes: bool) -> None:
    """Adopt FILE (warehouse/elements/YEAR.toml) as the agreed element set of its year."""
    engine = warehouse()
    with expected():
        element_set = element_set_of_file(file)
        previous = current_adoption(engine, element_set.year)
        if previous is not None and previous.checksum != element_set.checksum:
            confirm(
                yes,
                f"The {element_set.year} element set adopted on {previous.adopted_at:%Y-%m-%d} by "
                f"{previous.adopted_by} will be replaced; later uploads for {element_set.year} are checked "
                "against the new file. Continue?",
            )
        adoption, before = adopt(engine, file, actor())
    if before is adoption:
        click.echo(
            f"The {adoption.year} element set is already adopted as it is ({adoption.file_name}); nothing to do."
        )
        return
    AuditLog().record(
        actor(),
        "elements.adopt",
        year=adoption.year,
        file=adoption.file_name,
        checksum=adoption.checksum,
        replaces=before.checksum if before else None,
    )
    extends = [p.name for p in element_set.sources[1:]]
    click.echo(
        f"Adopted the {adoption.year} element set ({adoption.file_name}"
        + (f", extending {', '.join(extends)}" if extends else "")
        + f"; sha256 {adoption.checksum[:12]}...)."
    )
