"""Demo accounts, one per role, for the demo consortium.

Passwords are generated, printed once when the accounts are created, and kept for the demo
only in ``var/demo/credentials.txt`` (mode 600) so a developer can log in again later. The
demo researcher and author hold the ``demo-consortium`` use (granted by the demo build); once
the accounts exist, each institution's own-data use lists its accounts.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from hub.accounts import ROLES, AccountStore, generate_password
from hub.flow import refresh_own_grants
from output_filters.policy import AccountRules
from warehouse.demo import DemoManifest
from warehouse.institutions import SEGMENTS
from warehouse.settings import state_path

DEMO_USERS = {  # role: (user name, segment of their institution or None)
    "researcher": ("demo-researcher", "cc"),
    "author": ("demo-author", "k12"),
    "reviewer": ("demo-reviewer", "univ"),
    "admin": ("demo-admin", None),
}


def credentials_path():
    return state_path("demo", "credentials.txt")


def ensure_accounts(manifest: DemoManifest, *, echo: Callable[[str], None], rules: AccountRules | None = None) -> None:
    """Create any missing demo account and print its password once."""
    store = AccountStore(rules=rules)
    created = []
    for role, (name, segment) in DEMO_USERS.items():
        if store.get(name) is not None:
            continue
        code = manifest.member(segment).code if segment else None
        password = generate_password()
        store.add(name, role, code, password)
        created.append((role, name, code, password))
    if not created:
        return
    path = credentials_path()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        for role, name, _code, password in created:
            handle.write(f"{name} {password} {role}\n")
    refresh_own_grants()
    echo("Demo accounts (passwords shown once; also kept in var/demo/credentials.txt, mode 600):")
    for role, name, code, password in created:
        where = f"{SEGMENTS[manifest.member(DEMO_USERS[role][1]).segment]} {code}" if code else "consortium staff"
        echo(f"  {role:<10} {name:<16} password {password}   ({where}; {ROLES[role]})")


def login_help() -> str:
    names = ", ".join(name for name, _ in DEMO_USERS.values())
    return (
        f"Log in as one of the demo accounts ({names}); their passwords are in "
        f"{credentials_path()} (readable only by you)."
    )
