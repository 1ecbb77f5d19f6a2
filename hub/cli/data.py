"""``enclave data``: members' data: upload, withdraw, history, linkage (principles 1 and 2).

Each change goes through ``hub.flow`` (commit, audit, refresh the extracts); the commands ask
before replacing or removing anything.
"""

from __future__ import annotations

from pathlib import Path

import click

from hub import flow
from hub.cli.errors import actor, advance, confirm, expected
from hub.cli.warehouse import say_refreshed, warehouse
from warehouse.institutions import get_institution
from warehouse.linkage import linkage_rates
from warehouse.pseudonymize import StudentKeyer, load_secret
from warehouse.upload import batch_history, current_batch, file_checksum
from warehouse.withdraw import held_rows


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
    engine = warehouse()
    with expected():
        get_institution(engine, code)
        current = current_batch(engine, code, year, table)
        if current is not None and file.is_file() and file_checksum(file) != current.checksum:
            confirm(
                yes,
                f"{code} already has {table} for {year}: batch {current.id} ({current.file_name}, "
                f"{current.rows:,} rows, loaded {current.loaded_at:%Y-%m-%d} by {current.loaded_by}). "
                f"Replace it with {file.name}?",
            )
        with click.progressbar(length=1, label=f"Checking {file.name}", show_pos=False) as bar:
            changed = flow.upload_file(
                engine,
                actor=actor(),
                institution=code,
                year=year,
                table=table,
                path=file,
                keyer=StudentKeyer(load_secret()),
                progress=advance(bar),
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
    say_refreshed(changed)


@data.command("withdraw")
@click.option("--institution", "code", required=True, help="The withdrawing institution's code.")
@click.option("--year", help="Only this academic year (default: every year).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def data_withdraw(code: str, year: str | None, yes: bool) -> None:
    """Remove an institution's records from the warehouse and from every extract."""
    engine = warehouse()
    with expected():
        get_institution(engine, code)
        held = held_rows(engine, code, year)
        if held:
            counted = ", ".join(f"{n:,} {t}" for t, n in held.items())
            confirm(
                yes,
                f"Withdraw {code}'s data{f' for {year}' if year else ' of every year'} ({counted} rows) from the "
                "warehouse and every use's extract? Only uploading the files again brings it back.",
            )
        changed = flow.withdraw_data(engine, actor=actor(), institution=code, year=year)
    result = changed.result
    click.echo(
        f"Withdrew {result.total:,} rows of {code} ({len(result.batches)} batches; their records stay for audit)."
    )
    say_refreshed(changed)


@data.command("list")
@click.option("--institution", "code", help="Only this institution's batches.")
def data_list(code: str | None) -> None:
    """Every uploaded batch, oldest first: scope, rows, file, who loaded it, and its status."""
    engine = warehouse()
    with expected():
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
    for name, link in linkage_rates(warehouse()).items():
        click.echo(
            f"{link['rate'] * 100:5.1f} %  {link['linked']:>7,} of {link['students']:>7,}  {link['meaning']} ({name})"
        )
