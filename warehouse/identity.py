"""Who a process works for, decided by the system account it runs as.

When the hub runs as root, every Enclave account has a system account of its own
(``enc-<name>``, see ``hub.provisioning``), and its JupyterLab server and kernels run as that
account. A kernel's user is then a fact of the operating system: cell code can set or unset
any environment variable, but it cannot change the account its process runs as.

- a per-user system account: its Enclave account, whatever the environment says;
- the account that owns the state directory (the operator: the ``enclave`` command, the test
  suite, a single-account demo): ``ENCLAVE_USER`` if set (to see what one user would see),
  otherwise every extract it can read;
- any other account (the shared account of ``ENCLAVE_ISOLATION=off`` as root, a stranger):
  ``ENCLAVE_USER`` if set, otherwise nobody, and nobody has no uses.

The naming of system accounts and groups lives here, at the bottom of the data flow, so a
kernel can check its own account without importing the hub.
"""

from __future__ import annotations

import hashlib
import os
import pwd
from pathlib import Path

PREFIX = "enc-"
GROUP_PREFIX = "enc-u-"
SHARED = "enc-shared"  # the one account of every user server with ENCLAVE_ISOLATION=off as root
MAX_NAME = 32  # useradd/groupadd
COMMENT = "Enclave account "  # the system account's comment (GECOS): COMMENT + account name
NOBODY = ""  # current_user() of a process that works for no one: no uses


def _bounded(prefix: str, name: str) -> str:
    full = prefix + name
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{prefix}{name[: MAX_NAME - len(prefix) - 9]}-{digest}"


def system_user(account: str) -> str:
    """The system account of an Enclave account."""
    return _bounded(PREFIX, account)


def use_group(use: str) -> str:
    """The system group of an approved use."""
    return _bounded(GROUP_PREFIX, use)


def account_of_uid(uid: int) -> str | None:
    """The Enclave account whose own system account has ``uid``, or None.

    The comment names the account; it counts only if that account's system name is this
    entry's name, so an edited comment cannot claim another account.
    """
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return None
    if entry.pw_name == SHARED or not entry.pw_gecos.startswith(COMMENT):
        return None
    account = entry.pw_gecos[len(COMMENT) :].split(",")[0].strip()
    return account if account and system_user(account) == entry.pw_name else None


def current_user(var: Path | None = None) -> str | None:
    """The Enclave account this process works for (see the module docstring).

    None means the operator (every extract the process can read); ``NOBODY`` means no uses.
    """
    uid = os.geteuid()
    account = account_of_uid(uid)
    if account is not None:
        return account
    claimed = os.environ.get("ENCLAVE_USER") or None
    if claimed is not None:
        return claimed
    from warehouse.settings import var_dir

    state = var if var is not None else var_dir()
    try:
        owner = state.stat().st_uid
    except OSError:
        return NOBODY
    return None if owner == uid else NOBODY
