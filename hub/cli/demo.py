"""``enclave demo build``: the synthetic demo consortium, loaded through the upload path.

A rebuild keeps the audit log (nothing deletes it) and records itself there; ``--archive-audit``
moves the log aside after a confirmation, with an audit event in the new one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from hub import demo as demo_accounts
from hub.audit import AuditLog
from hub.cli.errors import EXPECTED, actor, fail
from output_filters.policy import load_policy
from warehouse.db import connect, create_schema
from warehouse.demo import build_demo, read_manifest
from warehouse.pseudonymize import StudentKeyer, load_secret
from warehouse.settings import state_path, var_dir


@click.group()
def demo() -> None:
    """The synthetic demo consortium."""


@demo.command("build")
@click.option(
    "--students",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=100),
    help="Grade-9 students followed into college.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same data).")
@click.option(
    "--raw-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the generated raw institution files here (default: deleted after upload).",
)
@click.option(
    "--rebuild", is_flag=True, help="Delete the existing warehouse, accounts and demo first (the audit log stays)."
)
@click.option(
    "--archive-audit",
    is_flag=True,
    help="With --rebuild: move the audit log to var/audit-archive/ (after a confirmation) and start a new one.",
)
@click.option("--yes", is_flag=True, help="Do not ask before archiving the audit log.")
def demo_build(students: int, seed: int, raw_dir: Path | None, rebuild: bool, archive_audit: bool, yes: bool) -> None:
    """Generate the demo consortium, load it through the upload path, create demo accounts.

    Run again, it reuses what exists. A rebuild keeps the audit log (and records the rebuild in
    it) unless --archive-audit moves it aside.
    """
    if archive_audit and not rebuild:
        raise click.ClickException("--archive-audit only goes with --rebuild")
    existing = read_manifest()
    if existing is not None and not rebuild:
        if (existing.students, existing.seed) != (students, seed):
            raise click.ClickException(
                f"the demo in {var_dir()} was built with --students {existing.students} --seed "
                f"{existing.seed}; add --rebuild to replace it"
            )
        click.echo(f"Demo consortium already built ({existing.students:,} students, seed {existing.seed}); reusing it.")
        demo_accounts.ensure_accounts(existing, echo=click.echo)
        return
    if rebuild:
        if archive_audit:
            if os.environ.get("ENCLAVE_AUDIT_URL"):
                raise click.ClickException(
                    "the audit log is in the database ENCLAVE_AUDIT_URL names: archive it with that database's "
                    "own tools; a rebuild without --archive-audit keeps it"
                )
            if not yes:
                click.confirm("Move the audit log to var/audit-archive/ and start a new one?", abort=True)
            archived = _archive_audit()
            AuditLog().record(actor(), "audit.archive", archive=str(archived), head=str(_head_of(archived)))
            click.echo(f"Archived the audit log to {archived}; `enclave audit verify --log {archived}` checks it.")
        AuditLog().record(actor(), "demo.rebuild", previous_students=existing.students if existing else None)
        _remove_state()
    policy = load_policy()
    engine = connect()
    create_schema(engine)
    click.echo(f"Generating the demo consortium ({students:,} students, seed {seed}) and uploading its files...")
    with click.progressbar(length=1, label="Uploading", show_pos=True) as bar:

        def advance(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        try:
            manifest = build_demo(
                engine, StudentKeyer(load_secret()), students=students, seed=seed, raw_dir=raw_dir, progress=advance
            )
        except EXPECTED as error:
            raise fail(error) from None
    AuditLog().record(actor(), "demo.build", students=students, seed=seed, rows=manifest.rows)
    click.echo(f"Loaded {sum(manifest.rows.values()):,} rows for {len(manifest.members)} institutions:")
    for table, rows in manifest.rows.items():
        click.echo(f"  {table:<16} {rows:>9,}")
    demo_accounts.ensure_accounts(manifest, echo=click.echo, rules=policy.accounts)


def _remove_state() -> None:
    root = var_dir()
    for name in ("warehouse.db", "accounts.db"):  # never audit.db: nothing deletes the audit log
        (root / name).unlink(missing_ok=True)
    # The release requests' records are in accounts.db: their files go with them, or the new
    # demo's request 1 would be filed (and released) beside the old demo's request 1.
    for name in ("demo", "users", "hub", "release"):
        path = root / name
        if path.exists():
            shutil.rmtree(path)


def _archive_audit() -> Path:
    """Move var/audit.db to var/audit-archive/audit-<time>.db (never over an earlier archive)."""
    from datetime import UTC, datetime

    source = state_path("audit.db")
    target = state_path("audit-archive", f"audit-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.db")
    if source.exists():
        source.rename(target)
    return target


def _head_of(archive: Path) -> str:
    from sqlalchemy import create_engine

    if not archive.exists():
        return "empty"
    engine = create_engine(f"sqlite:///{archive}")
    head = AuditLog(engine).head()
    engine.dispose()
    return str(head) if head else "empty"
