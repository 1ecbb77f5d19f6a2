"""``enclave serve``: the hub in the foreground, after the isolation and the policy's governance
are checked (a hand-edited policy.toml refuses the start)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from hub import demo as demo_accounts
from hub import isolation
from hub.cli.errors import EXPECTED, actor, fail
from hub.cli.provision import provision
from warehouse.demo import read_manifest
from warehouse.settings import REPO, state_path


@click.command("serve")
def serve() -> None:
    """Run the hub in the foreground (Ctrl-C stops it)."""
    port = os.environ.get("ENCLAVE_PORT", "8000")
    proxy = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
    if not proxy.exists():
        raise click.ClickException(f"{proxy} is missing; run `make up` (it installs it with npm)")
    url = f"http://127.0.0.1:{port}/"
    try:
        decided = isolation.decide()
        from hub.governance import default_governance

        default_governance().check_governed(actor())  # a hand-edited policy.toml refuses the start
    except EXPECTED as error:
        raise fail(error) from None
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
