"""Where Enclave keeps its state, and how secrets are written.

Everything lives under one directory, ``var/`` at the top of the repository by default
(``ENCLAVE_VAR`` moves it, as the tests do). Secrets are files of mode 600 in ``var/secrets``.
Every stage may import this module: it is the bottom of the data flow.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def var_dir() -> Path:
    """The state directory (created on first use, mode 700)."""
    path = Path(os.environ.get("ENCLAVE_VAR") or REPO / "var").resolve()
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
    return path


def state_path(*parts: str) -> Path:
    """A path under the state directory; its parent directories are created."""
    path = var_dir().joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def warehouse_url() -> str:
    """SQLAlchemy URL of the warehouse: ``ENCLAVE_DATABASE_URL`` or ``var/warehouse.db``."""
    return os.environ.get("ENCLAVE_DATABASE_URL") or f"sqlite:///{state_path('warehouse.db')}"


def read_or_create_secret(name: str, nbytes: int = 32) -> bytes:
    """Return the secret ``var/secrets/<name>``, creating it (random, mode 600) if missing.

    Two processes starting at once agree on one secret.
    """
    directory = state_path("secrets", "x").parent
    directory.chmod(0o700)
    path = directory / name
    if not path.exists():
        # Write a private temporary file, then hard-link it into place: the link fails if
        # another process got there first, and nobody ever reads a half-written secret.
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(nbytes).encode())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path} is readable by other users; run `chmod 600 {path}` and try again.")
    return path.read_bytes().strip()
