"""The ``enclave`` command: the one place that sees every stage of the data flow.

Commands are thin: they validate input, call plain functions, and turn errors into messages
that say what to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from hub import demo as demo_accounts
from hub import isolation, provisioning
from hub.accounts import AccountStore
from hub.audit import AuditLog
from hub.cli_reports import report
from hub.cli_users import user
from hub.cli_warehouse import register as register_warehouse_commands
from hub.doctor import doctor
from hub.exceptions import HubError
from output_filters.exceptions import OutputFilterError
from output_filters.policy import load_policy
from warehouse.db import connect, create_schema
from warehouse.demo import build_demo, read_manifest
from warehouse.exceptions import UploadRejected, WarehouseError
from warehouse.pseudonymize import StudentKeyer, load_secret
from warehouse.settings import REPO, state_path, var_dir


def _fail(error: Exception) -> click.ClickException:
    if isinstance(error, UploadRejected):
        return click.ClickException(error.report())
    return click.ClickException(str(error))


EXPECTED = (HubError, WarehouseError, OutputFilterError)


def _actor() -> str:
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "admin"


@click.group()
def enclave() -> None:
    """Enclave: the consortium's secure research environment."""


@enclave.result_callback()
def _provision(*_args, **_kwargs) -> None:
    """After every command: system accounts, use groups and file modes in line (as root)."""
    provision()


def provision() -> None:
    """Per-user system accounts (users mode only: the hub provisions a shared account itself)."""
    try:
        users = isolation.decide().mode == "users"
    except HubError as error:
        raise _fail(error) from None
    if users:
        provisioning.sync(var_dir(), [account.name for account in AccountStore().list() if account.active])


# ---- demo --------------------------------------------------------------------------------


@enclave.group()
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
@click.option("--rebuild", is_flag=True, help="Delete the existing warehouse, accounts and demo first.")
def demo_build(students: int, seed: int, raw_dir: Path | None, rebuild: bool) -> None:
    """Generate the demo consortium, load it through the upload path, create demo accounts.

    Run again, it reuses what exists.
    """
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
            raise _fail(error) from None
    AuditLog().record(_actor(), "demo.build", students=students, seed=seed, rows=manifest.rows)
    click.echo(f"Loaded {sum(manifest.rows.values()):,} rows for {len(manifest.members)} institutions:")
    for table, rows in manifest.rows.items():
        click.echo(f"  {table:<16} {rows:>9,}")
    demo_accounts.ensure_accounts(manifest, echo=click.echo, rules=policy.accounts)


def _remove_state() -> None:
    root = var_dir()
    for name in ("warehouse.db", "accounts.db", "audit.db"):
        (root / name).unlink(missing_ok=True)
    for name in ("demo", "users", "hub"):
        path = root / name
        if path.exists():
            shutil.rmtree(path)


# ---- serve -------------------------------------------------------------------------------


@enclave.command("serve")
def serve() -> None:
    """Run the hub in the foreground (Ctrl-C stops it)."""
    port = os.environ.get("ENCLAVE_PORT", "8000")
    proxy = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
    if not proxy.exists():
        raise click.ClickException(f"{proxy} is missing; run `make up` (it installs it with npm)")
    url = f"http://127.0.0.1:{port}/"
    try:
        decided = isolation.decide()
    except HubError as error:
        raise _fail(error) from None
    provision()
    if decided.mode == "users":
        click.echo("Isolation: every user server runs as its user's own system account.")
    elif decided.mode == "off":
        click.echo(f"Isolation OFF ({decided.reason}). README: Limits.")
    else:
        click.echo(f"WARNING: {decided.reason}")
    # The hub runs in a session of its own; Ctrl-C and SIGTERM reach it once, from here.
    hub = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(REPO / "jupyterhub_config.py")],
        cwd=state_path("hub", "x").parent,
        start_new_session=True,
        preexec_fn=_interruptible,
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: hub.send_signal(number))
    hub_api = f"http://127.0.0.1:{os.environ.get('ENCLAVE_HUB_PORT', '8081')}/hub/health"
    if _wait_until_healthy(hub_api, hub) and _wait_until_healthy(f"{url}hub/health", hub):
        click.echo(f"\nEnclave is running at {url}")
        if read_manifest() is not None:
            click.echo(demo_accounts.login_help())
        click.echo("Ctrl-C stops the hub.\n")
    sys.exit(hub.wait())


def _interruptible() -> None:
    """SIGINT as by default in the hub and what it starts, even when `enclave serve` runs in the
    background (which ignores it): the hub stops its services with SIGINT first, and a service
    that ignores it holds the hub's shutdown for its whole timeout."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_until_healthy(health: str, hub: subprocess.Popen, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while hub.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


enclave.add_command(user)
enclave.add_command(report)  # enclave report list|run|batch (hub/cli_reports.py)
enclave.add_command(doctor)
register_warehouse_commands(enclave)  # institution, elements, data, use (hub/cli_warehouse.py)

if __name__ == "__main__":
    enclave()
