"""Who decides: the account a release or policy command acts as must prove itself.

``--as NAME`` (default: the system user's name) names the Enclave account; the command asks
for its password (a hidden prompt) and, if the account has a second factor, its current
one-time code, and checks them through ``hub.signin`` — the hub's own login: lockout, disabled
accounts, the second factor, a ``login.success`` or ``login.failure`` audit event with the
source ``cli:<system user>``. Without it one server administrator could approve for every
member's reviewer. ``--password-stdin`` reads the password, then the code on a second line,
from standard input (scripts, tests). A refusal is a one-line message naming the account and
the fix; nothing else is written. Commands that only read need no account.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from hub.accounts import NAME, AccountStore
from hub.cli.errors import actor, call
from hub.signin import check_signed_in
from output_filters.policy import load_policy


def _store() -> AccountStore:
    return AccountStore(rules=load_policy().accounts)


def acting(role: str) -> Callable:
    """The ``--as`` and ``--password-stdin`` options of a command that decides as ``role``."""

    def options(command: Callable) -> Callable:
        command = click.option(
            "--password-stdin",
            is_flag=True,
            help="Read the account's password from standard input, and its one-time code from the next line.",
        )(command)
        return click.option(
            "--as",
            "account",
            metavar=role.upper(),
            help=f"The {role} account acting (default: the system user's name); its password is asked for.",
        )(command)

    return options


def signed_in(account: str | None, password_stdin: bool) -> str:
    """The name of the account acting, once it has proved itself; else a message, exit status 1."""
    name = account or actor()
    if not NAME.fullmatch(name):
        raise click.ClickException(f"{name!r} is not an Enclave user name; give the account with --as NAME")
    store = call(_store)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Password for {name}", hide_input=True, show_default=False)
    otp = ""
    known = store.get(name)
    if known is not None and store.status(name).totp:
        if password_stdin:
            otp = sys.stdin.readline().strip()
        else:
            otp = click.prompt(f"One-time code for {name} (authenticator app)", show_default=False)
    source = f"cli:{actor()}"
    return call(lambda: check_signed_in(store, name, password, otp, source=source)).name
