"""After every ``enclave`` command (and before the hub starts): system accounts in line."""

from __future__ import annotations

from hub import isolation, provisioning
from hub.accounts import AccountStore
from hub.cli.errors import fail
from hub.exceptions import HubError
from warehouse.settings import var_dir


def provision() -> None:
    """Per-user system accounts (users mode only: the hub provisions a shared account itself)."""
    try:
        users = isolation.decide().mode == "users"
    except HubError as error:
        raise fail(error) from None
    if users:
        provisioning.sync(var_dir(), [account.name for account in AccountStore().list() if account.active])
