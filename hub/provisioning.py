"""System accounts for user servers, and the file modes that keep the warehouse and each use private.

When the hub runs as root (production, CI), every Enclave account gets a system account
(``enc-<name>``, no login shell, no password) and its JupyterLab server and kernels run as
that account. Each approved use's extract belongs to a system group (``enc-u-<use>``) whose
members are the use's users. The state directory is traversable but not listable (711); the
warehouse, accounts, audit log, hub state, logs and secrets are the root account's alone
(600 files, 700 directories); each user's home is that user's alone. So a kernel can read its
own uses' extracts and nothing else of the consortium's.

Whether that can be done is decided by ``hub.isolation``; with ``ENCLAVE_ISOLATION=off`` as
root every server runs as one shared unprivileged account (``enc-shared``) instead, which
these functions provision the same way (``shared=True``).
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from warehouse.extracts import extract_names, read_manifest
from warehouse.identity import COMMENT, GROUP_PREFIX, PREFIX, SHARED, system_user, use_group
from warehouse.settings import REPO, var_dir

__all__ = ["GROUP_PREFIX", "PREFIX", "SHARED", "system_user", "use_group"]
NOLOGIN = "/usr/sbin/nologin"
LISTABLE = {"uses"}  # directories of var/ a kernel may list
TRAVERSABLE = {"users"}  # directories of var/ a kernel may pass through to its own part


def unreachable(var: Path | None = None) -> list[Path]:
    """Directories on the way to the code, the environment or the state that other accounts cannot pass.

    A user's server runs the project's Python (the virtual environment and the interpreter it
    was made from) from the repository and reads var/: every directory above them must be
    traversable (o+x) by other system accounts.
    """
    blocked = []
    interpreter = Path(os.path.realpath(sys.executable)).parent
    state = var if var is not None else var_dir()
    for target in (REPO, Path(sys.prefix), Path(sys.base_prefix), interpreter, state.parent):
        for directory in [target, *target.parents]:
            if directory.exists() and not directory.stat().st_mode & 0o001 and directory not in blocked:
                blocked.append(directory)
    return blocked


def server_account(account: str, *, shared: bool = False) -> str:
    """The system account that runs ``account``'s server: its own, or the shared one."""
    return SHARED if shared else system_user(account)


def _run(*command: str) -> None:
    for attempt in range(5):
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
            return
        except subprocess.CalledProcessError as error:
            # useradd/groupadd exit 4 (an id already in use) or 10 (/etc/group locked) when
            # another process creates an account at the same moment: pick again.
            if error.returncode not in (4, 10) or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def ensure_user(account: str, *, shared: bool = False) -> pwd.struct_passwd:
    """The system account that runs ``account``'s server, created if missing."""
    name = server_account(account, shared=shared)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        _run(
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            NOLOGIN,
            "--comment",
            "Enclave shared account" if shared else COMMENT + account,
            name,
        )
        return pwd.getpwnam(name)


def ensure_group(use: str, members: Iterable[str], *, shared: bool = False) -> grp.struct_group:
    """The group of ``use``, created if missing, with exactly the system accounts of ``members``."""
    name = use_group(use)
    try:
        grp.getgrnam(name)
    except KeyError:
        _run("groupadd", "--system", name)
    users = sorted({ensure_user(member, shared=shared).pw_name for member in members})
    _run("gpasswd", "-M", ",".join(users), name)
    return grp.getgrnam(name)


def prepare_home(home: Path, account: str, *, shared: bool = False) -> None:
    """The user's home: created if missing, owned by the system account of its server, mode 700."""
    entry = ensure_user(account, shared=shared)
    home.mkdir(parents=True, exist_ok=True)
    home.parent.chmod(0o711)  # var/users: passable to one's own home, not listable
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)
    for path in home.rglob("*"):
        if path.owner() != entry.pw_name and not path.is_symlink():
            os.chown(path, entry.pw_uid, entry.pw_gid)


def secure_state(var: Path) -> None:
    """Modes of the state directory for separate system accounts (see the module docstring)."""
    var.chmod(0o711)
    for path in var.iterdir():
        if path.name in LISTABLE:
            path.chmod(0o755)
        elif path.name in TRAVERSABLE:
            path.chmod(0o711)
        elif path.is_dir() and not path.is_symlink():
            _private_tree(path)
        elif path.is_file():
            path.chmod(0o600)


def _private_tree(path: Path) -> None:
    path.chmod(0o700)
    for child in path.rglob("*"):
        if child.is_symlink():
            continue
        child.chmod(0o700 if child.is_dir() else 0o600)


def sync(var: Path, accounts: Iterable[str], *, shared: bool = False) -> None:
    """Accounts, use groups and modes in line with the accounts and the extracts' manifests."""
    for account in accounts:
        ensure_user(account, shared=shared)
    root = var / "uses"
    if root.is_dir():
        for use in extract_names(root):
            manifest = read_manifest(use, root)
            group = ensure_group(use, manifest.users, shared=shared)
            version = (root / use).resolve()
            for path in (version, *version.iterdir()):
                os.chown(path, 0, group.gr_gid)
                path.chmod(0o750 if path.is_dir() else 0o640)
    secure_state(var)
