"""The warehouse commands of ``enclave``: institutions, element sets, data, approved uses.

Thin click commands over ``warehouse``: each validates its input, calls plain functions,
turns expected errors into one-line messages with the fix, asks before destroying anything
(or takes ``--yes``), writes an audit event for every state change, and refreshes the
extracts the change affects before it returns. ``register`` attaches the groups to the
``enclave`` group, and refreshes the own-institution uses' users after every ``enclave user``
command that changes accounts (an institution's accounts always see its own data).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import Engine

from hub import flow
from hub.audit import AuditLog
from hub.exceptions import HubError
from warehouse.adoption import adopt, current_adoption, element_set_of_file
from warehouse.db import connect, create_schema
from warehouse.elements import available_years, load_element_set
from warehouse.exceptions import UploadRejected, WarehouseError
from warehouse.extracts import extract_names
from warehouse.institutions import SEGMENTS, add_institution, get_institution, list_institutions
from warehouse.linkage import linkage_rates
from warehouse.pseudonymize import StudentKeyer, load_secret
from warehouse.upload import batch_history, current_batch, file_checksum
from warehouse.uses import (
    OWN,
    get_use,
    list_uses,
)
from warehouse.withdraw import held_rows

EXPECTED = (HubError, WarehouseError)
SERVER_ROLES = ("researcher", "author", "admin")  # roles that get a research server


def _fail(error: Exception) -> click.ClickException:
    if isinstance(error, UploadRejected):
        return click.ClickException(error.report())
    return click.ClickException(str(error))


@contextmanager
def _expected() -> Iterator[None]:
    try:
        yield
    except EXPECTED as error:
        raise _fail(error) from None


def _actor() -> str:
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "admin"


def _warehouse() -> Engine:
    engine = connect()
    create_schema(engine)
    return engine


def _split(values: tuple[str, ...]) -> list[str]:
    """Values given repeatedly and/or comma-separated, in order, without blanks."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


institution_members = flow.institution_members
refresh_own_grants = flow.refresh_own_grants


def _advance(bar) -> Callable[[int, int], None]:
    def advance(done: int, total: int) -> None:
        bar.length = max(total, 1)
        bar.update(done - bar.pos)

    return advance


def _confirm(yes: bool, question: str) -> None:
    if not yes:
        click.confirm(question, abort=True)


# ---- institutions ------------------------------------------------------------------------


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
    with _expected():
        member = add_institution(_warehouse(), name, segment)
    AuditLog().record(_actor(), "institution.add", code=member.code, segment=segment)
    click.echo(f"Added {SEGMENTS[segment]} {member.code}.")
    click.echo("The code is secret (principle 8): give it only to the institution's own staff.")


@institution.command("list")
def institution_list() -> None:
    """List institutions: code, segment, name (administrators only: names are confidential)."""
    for member in list_institutions(_warehouse(), with_names=True):
        click.echo(f"{member.code}  {SEGMENTS[member.segment]:<19} {member.name}")


# ---- element sets ------------------------------------------------------------------------


@click.group()
def elements() -> None:
    """The data elements agreed each year (principle 9)."""


@elements.command("show")
@click.argument("year")
def elements_show(year: str) -> None:
    """Show the tables and columns agreed for YEAR (e.g. 2024-25)."""
    with _expected():
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
    engine = _warehouse()
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
    engine = _warehouse()
    with _expected():
        element_set = element_set_of_file(file)
        previous = current_adoption(engine, element_set.year)
        if previous is not None and previous.checksum != element_set.checksum:
            _confirm(
                yes,
                f"The {element_set.year} element set adopted on {previous.adopted_at:%Y-%m-%d} by "
                f"{previous.adopted_by} will be replaced; later uploads for {element_set.year} are checked "
                "against the new file. Continue?",
            )
        adoption, before = adopt(engine, file, _actor())
    if before is adoption:
        click.echo(
            f"The {adoption.year} element set is already adopted as it is ({adoption.file_name}); nothing to do."
        )
        return
    AuditLog().record(
        _actor(),
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


# ---- data --------------------------------------------------------------------------------


@click.group()
def data() -> None:
    """Members' data: upload, withdraw, history (principles 1 and 2)."""


@data.command("upload")
@click.option("--institution", "code", required=True, help="The uploading institution's code.")
@click.option("--year", required=True, help="Academic year of the data, e.g. 2024-25.")
@click.option("--table", required=True, help="The table the file holds (`enclave elements show YEAR`).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--yes", is_flag=True, help="Replace the institution's earlier file for the same year and table without asking."
)
def data_upload(code: str, year: str, table: str, file: Path, yes: bool) -> None:
    """Validate FILE (CSV or Parquet) and load it; nothing is written unless all of it is valid."""
    engine = _warehouse()
    with _expected():
        get_institution(engine, code)
        current = current_batch(engine, code, year, table)
        if current is not None and file.is_file() and file_checksum(file) != current.checksum:
            _confirm(
                yes,
                f"{code} already has {table} for {year}: batch {current.id} ({current.file_name}, "
                f"{current.rows:,} rows, loaded {current.loaded_at:%Y-%m-%d} by {current.loaded_by}). "
                f"Replace it with {file.name}?",
            )
        with click.progressbar(length=1, label=f"Checking {file.name}", show_pos=False) as bar:
            changed = flow.upload_file(
                engine,
                actor=_actor(),
                institution=code,
                year=year,
                table=table,
                path=file,
                keyer=StudentKeyer(load_secret()),
                progress=_advance(bar),
            )
    result = changed.result
    if result.status == "unchanged":
        click.echo(
            f"Unchanged: this file (sha256 {result.checksum[:12]}...) is already loaded as batch {result.batch_id} "
            f"({result.rows:,} rows of {table} for {code}, {year}); nothing was done."
        )
        return
    if result.status == "replaced":
        click.echo(
            f"Replaced batch {result.replaced_batch} with batch {result.batch_id}: {result.rows:,} rows of {table} "
            f"for {code}, {year} (the earlier batch's record stays for audit)."
        )
    else:
        click.echo(f"Loaded batch {result.batch_id}: {result.rows:,} rows of {table} for {code}, {year}.")
    _say_refreshed(changed)


@data.command("withdraw")
@click.option("--institution", "code", required=True, help="The withdrawing institution's code.")
@click.option("--year", help="Only this academic year (default: every year).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def data_withdraw(code: str, year: str | None, yes: bool) -> None:
    """Remove an institution's records from the warehouse and from every extract."""
    engine = _warehouse()
    with _expected():
        get_institution(engine, code)
        held = held_rows(engine, code, year)
        if held:
            counted = ", ".join(f"{n:,} {t}" for t, n in held.items())
            _confirm(
                yes,
                f"Withdraw {code}'s data{f' for {year}' if year else ' of every year'} ({counted} rows) from the "
                "warehouse and every use's extract? Only uploading the files again brings it back.",
            )
        changed = flow.withdraw_data(engine, actor=_actor(), institution=code, year=year)
    result = changed.result
    click.echo(
        f"Withdrew {result.total:,} rows of {code} ({len(result.batches)} batches; their records stay for audit)."
    )
    _say_refreshed(changed)


@data.command("list")
@click.option("--institution", "code", help="Only this institution's batches.")
def data_list(code: str | None) -> None:
    """Every uploaded batch, oldest first: scope, rows, file, who loaded it, and its status."""
    engine = _warehouse()
    with _expected():
        if code:
            get_institution(engine, code)
        history = batch_history(engine, code)
    for batch, status in history:
        click.echo(
            f"{batch.id:>5}  {batch.institution}  {batch.year}  {batch.table:<15} {batch.rows:>9,}  "
            f"{batch.loaded_at:%Y-%m-%d} {batch.loaded_by:<12} {batch.file_name}  [{status}]"
        )


@data.command("linkage")
def data_linkage() -> None:
    """How many students the student key links across K-12, college and university."""
    for name, link in linkage_rates(_warehouse()).items():
        click.echo(
            f"{link['rate'] * 100:5.1f} %  {link['linked']:>7,} of {link['students']:>7,}  {link['meaning']} ({name})"
        )


def _say_refreshed(changed: flow.Changed) -> None:
    if changed.refreshed:
        click.echo(f"Refreshed extracts: {', '.join(changed.refreshed)}.")


# ---- approved uses -----------------------------------------------------------------------


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
    engine = _warehouse()
    chosen_elements = _split(elements)
    chosen_institutions = _split(institutions)
    with _expected():
        changed = flow.add_approved_use(
            engine,
            actor=_actor(),
            name=name,
            purpose=purpose,
            tables=_split(tables),
            elements=None if chosen_elements in ([], ["all"]) else chosen_elements,
            institutions=None if chosen_institutions == ["all"] else chosen_institutions,
        )
    added = changed.result
    click.echo(f"Added use {name}: {', '.join(added.tables)} of {len(added.institutions)} institutions.")
    _say_refreshed(changed)
    click.echo(f"Grant it with `enclave use grant {name} USER`.")


@use.command("grant")
@click.argument("name")
@click.argument("user")
def use_grant(name: str, user: str) -> None:
    """Let USER work on use NAME."""
    engine = _warehouse()
    with _expected():
        changed = flow.grant_use(engine, actor=_actor(), name=name, user=user)
    if not changed.result:
        click.echo(f"{user} already has use {name}; nothing to do.")
        return
    click.echo(f"Granted use {name} to {user}.")
    _say_refreshed(changed)


@use.command("revoke")
@click.argument("name")
@click.argument("user")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def use_revoke(name: str, user: str, yes: bool) -> None:
    """End USER's grant of use NAME; the use's data leaves their workspace."""
    engine = _warehouse()
    with _expected():
        flow.check_can_revoke_use(engine, name, user)
        _confirm(yes, f"Revoke use {name} from {user}?")
        changed = flow.revoke_use(engine, actor=_actor(), name=name, user=user)
    click.echo(f"Revoked use {name} from {user}.")
    _say_refreshed(changed)


@use.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def use_remove(name: str, yes: bool) -> None:
    """End use NAME: every grant ends and its extract is deleted; its record stays."""
    engine = _warehouse()
    with _expected():
        existing = get_use(engine, name)
        _confirm(yes, f"End use {name} ({', '.join(existing.users) or 'no users'}) and delete its extract?")
        changed = flow.remove_approved_use(engine, actor=_actor(), name=name)
    click.echo(f"Ended use {name}.")
    _say_refreshed(changed)


@use.command("list")
def use_list() -> None:
    """Approved uses with their purpose, tables, institutions and users."""
    engine = _warehouse()
    for found in list_uses(engine):
        click.echo(f"{found.name}: {found.purpose}")
        for table, columns in found.tables.items():
            click.echo(f"    {table}: {', '.join(columns)}")
        click.echo(f"    institutions: {', '.join(found.institutions)}")
        click.echo(f"    users: {', '.join(found.users) or '-'}")
    members = institution_members()
    for name in extract_names():
        if name.startswith(OWN):
            users = ", ".join(sorted(members.get(name.removeprefix(OWN), ()))) or "-"
            click.echo(f"{name}: the institution's own data; users: {users}")


@use.command("refresh")
@click.argument("names", nargs=-1)
def use_refresh(names: tuple[str, ...]) -> None:
    """Rewrite the extracts of NAMES (default: every use) from the warehouse."""
    engine = _warehouse()
    with _expected():
        with click.progressbar(length=1, label="Refreshing extracts", show_pos=True) as bar:
            touched = flow.refresh_uses(engine, actor=_actor(), names=list(names) or None, progress=_advance(bar))
    click.echo(f"Refreshed extracts: {', '.join(touched) or 'none'}.")


# ---- registration ------------------------------------------------------------------------


def register(group: click.Group) -> None:
    """Attach the warehouse commands to ``group`` (the ``enclave`` command)."""
    for command in (institution, elements, data, use):
        group.add_command(command)
    accounts = group.commands.get("user")
    if isinstance(accounts, click.Group):
        accounts.result_callback()(_after_account_command)


def _after_account_command(_result, **_params) -> None:
    if click.get_current_context().invoked_subcommand != "list":
        refresh_own_grants()
