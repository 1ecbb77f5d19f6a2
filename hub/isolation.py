"""Fail closed: how user servers are separated, decided once when the hub starts.

``decide()`` gives one of three modes:

- ``users``: the hub is root and per-user system accounts work; every user server runs as
  its user's own account (``hub.provisioning``);
- ``off``: the administrator set ``ENCLAVE_ISOLATION=off`` (a demo on a laptop): every
  server runs under one unprivileged account (the shared ``enc-shared`` when the hub is root,
  else the hub's own non-root account), and users are not separated from each other;
- ``refused``: per-user accounts cannot work here (the reason says which directory, which
  mode, or that the hub is not root): the hub starts, but refuses every spawn with that
  reason on the spawn page, in its log and on the admin page.

A user server never runs as root. ``live_problems()`` is checked again before every spawn:
a spawn whose live state disagrees with the decision (a directory closed since, var/ opened
up) is refused too.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from hub.exceptions import HubError
from hub.provisioning import unreachable
from warehouse.settings import var_dir

MODES = ("users", "off", "refused")
SETTING = "ENCLAVE_ISOLATION"
# What secure_state leaves behind, and what a spawn checks: path under var/, mode.
PRIVATE = {
    ".": 0o711,
    "hub": 0o700,
    "logs": 0o700,
    "secrets": 0o700,
    "warehouse.db": 0o600,
    "accounts.db": 0o600,
    "audit.db": 0o600,
    "hub/jupyterhub.sqlite": 0o600,
    "logs/hub.log": 0o600,
}


class IsolationError(HubError):
    """ENCLAVE_ISOLATION holds something other than users or off."""


@dataclass(frozen=True)
class Isolation:
    mode: str
    reason: str
    shared: bool = False  # off as root: every server runs as the shared account

    @property
    def refused(self) -> bool:
        return self.mode == "refused"

    @property
    def switches_user(self) -> bool:
        """Whether servers run under another account than the hub's."""
        return self.mode == "users" or self.shared


def setting() -> str:
    value = os.environ.get(SETTING, "").strip().lower()
    if value not in ("", "users", "off"):
        raise IsolationError(
            f"{SETTING}={os.environ[SETTING]!r} is not a mode: use {SETTING}=users (per-user accounts, "
            f"the default) or {SETTING}=off (one shared account, a demo only)"
        )
    return value or "users"


def decide(var: Path | None = None) -> Isolation:
    """The isolation mode of this hub (see the module docstring)."""
    root = os.geteuid() == 0
    if setting() == "off":
        if root:
            return Isolation(
                "off",
                f"{SETTING}=off: every user server runs as the one unprivileged account enc-shared; "
                "users are not separated from each other (a demo only)",
                shared=True,
            )
        return Isolation(
            "off",
            f"{SETTING}=off: every user server runs under this hub's own (non-root) account; "
            "a kernel can read what this account can (a demo only)",
        )
    problems = []
    if not root:
        problems.append("the hub is not running as root, so it cannot run servers under per-user accounts")
    elif shutil.which("useradd") is None:
        problems.append("useradd is missing (apt-get install passwd)")
    else:
        for directory in unreachable(var):
            mode = stat.S_IMODE(directory.stat().st_mode)
            problems.append(f"other accounts cannot pass {directory} (mode {mode:o}; chmod o+x {directory})")
    if problems:
        return Isolation(
            "refused",
            "User servers are refused: "
            + "; ".join(problems)
            + f". Fix that and restart the hub, or set {SETTING}=off for a single-account demo.",
        )
    return Isolation("users", "every user server runs as its user's own system account")


def mode_problems(var: Path | None = None) -> list[str]:
    """Paths of var/ more open than secure_state leaves them (only those that exist)."""
    state = var if var is not None else var_dir()
    found = []
    for name, wanted in PRIVATE.items():
        path = state / name
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & ~wanted & 0o077:
            found.append(f"{path} is mode {mode:o}, should be {wanted:o} (chmod {wanted:o} {path})")
        if info.st_uid != os.geteuid():
            found.append(f"{path} belongs to uid {info.st_uid}, not to the hub's account")
    return found


def live_problems(decided: Isolation, var: Path | None = None) -> list[str]:
    """Why a spawn must be refused now although the hub started in ``decided`` mode."""
    if decided.refused:
        return [decided.reason]
    now = decide(var)
    if now.mode != decided.mode:
        return [f"the hub started with isolation {decided.mode!r} but it is now {now.mode!r}: {now.reason}"]
    return mode_problems(var) if decided.switches_user else []
