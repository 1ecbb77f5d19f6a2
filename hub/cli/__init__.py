"""The ``enclave`` command: the one place that sees every stage of the data flow.

Commands are thin, one small module per group: they validate input, confirm what destroys,
call plain functions (``hub.flow``, ``hub.release.desk``, ``hub.governance``...) and print;
``hub.cli.errors`` turns expected errors into messages that say what to do.
"""

from __future__ import annotations

import click

from hub.cli.audit import audit
from hub.cli.demo import demo
from hub.cli.policy import policy
from hub.cli.provision import provision
from hub.cli.release import release
from hub.cli.reports import report
from hub.cli.serve import serve
from hub.cli.users import user
from hub.cli.warehouse import register as register_warehouse_commands
from hub.doctor import doctor


@click.group()
def enclave() -> None:
    """Enclave: the consortium's secure research environment."""


@enclave.result_callback()
def _provision(*_args, **_kwargs) -> None:
    """After every command: system accounts, use groups and file modes in line (as root)."""
    provision()


for command in (demo, report, serve, user, audit, release, policy, doctor):
    enclave.add_command(command)
register_warehouse_commands(enclave)  # institution, elements, data, use (hub/cli/warehouse.py)
