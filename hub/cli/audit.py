"""The ``enclave audit`` commands: read the log, check its chain, print the head to keep.

``show`` lists events (by user, time, event name); ``verify`` checks the chain and, given the
head the administrators kept (``head``), that no newest record was cut off; it names every
edited, deleted or reordered record and exits with status 1 if there is one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy import create_engine

from hub.audit import AuditLog, Head
from hub.cli.errors import call


def _log(path: Path | None) -> AuditLog:
    if path is None:
        return AuditLog()
    if not path.is_file():
        raise click.ClickException(f"{path}: no such audit log file (an archive in var/audit-archive/?)")
    return AuditLog(create_engine(f"sqlite:///{path}"))


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.ClickException(
            f"--since {value!r} is not a date or time; write it as 2026-03-01 or 2026-03-01T14:30 (UTC)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


LOG_OPTION = click.option(
    "--log", "log_file", type=click.Path(dir_okay=False, path_type=Path), help="An archived log file instead."
)


@click.group()
def audit() -> None:
    """The tamper-evident audit log (principles 6 and 7)."""


@audit.command("show")
@click.option("--user", help="Only events by this user or about them.")
@click.option("--since", help="Only events at or after this UTC time (2026-03-01 or 2026-03-01T14:30).")
@click.option("--event", help="Only this event (login.failure), or a family ending in '.' (login.).")
@LOG_OPTION
def audit_show(user: str | None, since: str | None, event: str | None, log_file: Path | None) -> None:
    """List audit events, oldest first: number, time, actor, event, details."""
    found = _log(log_file).events(user=user, since=_since(since), event=event)
    for item in found:
        details = json.dumps(item.details, sort_keys=True, default=str)
        click.echo(f"{item.id:>6}  {item.at:%Y-%m-%d %H:%M:%S}  {item.actor:<16} {item.event:<24} {details}")
    if not found:
        click.echo("No audit events match.")


@audit.command("head")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the head to this file (to keep)."
)
@LOG_OPTION
def audit_head(out: Path | None, log_file: Path | None) -> None:
    """Print the newest record's number and hash: keep it outside this machine.

    `enclave audit verify --head "N HASH"` later shows whether records after it were deleted.
    """
    head = _log(log_file).head()
    if head is None:
        raise click.ClickException("the audit log is empty: there is no head to keep yet")
    click.echo(str(head))
    if out is not None:
        out.write_text(f"{head}\n", encoding="utf-8")


@audit.command("verify")
@click.option("--head", "head_text", help='The head you kept ("N HASH", as `enclave audit head` printed it).')
@click.option("--head-file", type=click.Path(dir_okay=False, path_type=Path), help="A file holding the head you kept.")
@LOG_OPTION
def audit_verify(head_text: str | None, head_file: Path | None, log_file: Path | None) -> None:
    """Check the hash chain; name every edited, deleted or reordered record."""
    anchor = call(lambda: Head.parse(head_text, "--head") if head_text else Head.read(head_file) if head_file else None)
    log = _log(log_file)
    problems = log.problems(anchor)
    head = log.head()
    if problems:
        for problem in problems:
            click.echo(f"BROKEN  {problem.message}")
        raise click.ClickException(
            f"the audit log was changed ({len(problems)} break(s)); keep this output and the database file as "
            "evidence, and restore the log from a backup"
        )
    count = head.id if head else 0
    against = f", and reaches the kept head {anchor.id}" if anchor else " (give --head to check its newest records)"
    click.echo(f"The chain holds: {count} records{against}.")
