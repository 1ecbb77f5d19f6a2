"""A throwaway PostgreSQL server for the tests (and the benchmark): Debian's server binaries,
``initdb`` into a temporary directory, ``pg_ctl`` on a free loopback port, no Unix socket.

``PostgresServer.start(directory)`` initializes and starts a server; ``create_database()``
gives each test a fresh database (a copy of a template already migrated to the newest
schema, or an empty one), ``drop_database`` removes it, ``stop()`` ends the server. The
server refuses to run as root, so under root (CI) it runs as Debian's ``postgres`` user in a
private directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

INSTALL = "install Debian's PostgreSQL server: `apt-get install postgresql` (.ci/run does it)"
SUPERUSER = "enclave"
TEMPLATE = "enclave_template"


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the server would not start."""


def server_binaries() -> Path:
    """The directory of ``initdb`` and ``pg_ctl`` (ENCLAVE_PG_BIN, Debian's, or PATH)."""
    candidates = [os.environ.get("ENCLAVE_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    on_path = shutil.which("initdb")
    candidates += [str(Path(on_path).parent)] if on_path else []
    for directory in candidates:
        if directory and (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    raise PostgresUnavailable(f"no PostgreSQL server binaries (initdb, pg_ctl) found; {INSTALL}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    directory: Path
    port: int
    binaries: Path
    owner: str | None  # the system user the server runs as, when we are root
    created: list[str] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, directory: Path | None = None) -> PostgresServer:
        """initdb and start a server in ``directory`` (a fresh private one when root)."""
        binaries = server_binaries()
        owner = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(f"running as root, but there is no `postgres` user; {INSTALL}") from None
            owner = "postgres"
            # The tests' temporary directories are private to root; the server needs its own.
            directory = Path(tempfile.mkdtemp(prefix="enclave-test-postgres-"))
            shutil.chown(directory, "postgres", "postgres")
        elif directory is None:
            directory = Path(tempfile.mkdtemp(prefix="enclave-test-postgres-"))
        data = directory / "data"
        cls._run(owner, binaries / "initdb", "-D", data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync")
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between choosing and binding it
            port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                log = directory / "server.log"
                cls._run(owner, binaries / "pg_ctl", "-D", data, "-l", log, "-w", "-o", options, "start")
            except PostgresUnavailable as error:
                last_error = str(error)
                continue
            server = cls(directory, port, binaries, owner)
            server._make_template()
            return server
        raise PostgresUnavailable(f"the PostgreSQL server did not start: {last_error}")

    @staticmethod
    def _run(owner: str | None, *command) -> None:
        extra = {"user": owner, "group": owner, "extra_groups": []} if owner else {}
        result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **extra)
        if result.returncode != 0:
            log = Path(command[command.index("-l") + 1]) if "-l" in command else None
            tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
            raise PostgresUnavailable(f"{' '.join(map(str, command[:1]))} failed: {result.stderr.strip()}\n{tail}")

    def _execute(self, *statements: str, database: str = "postgres") -> None:
        import psycopg

        address = {"host": "127.0.0.1", "port": self.port, "user": SUPERUSER, "dbname": database}
        with psycopg.connect(**address, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def _make_template(self) -> None:
        from warehouse.db import connect, create_schema

        self._execute(f"CREATE DATABASE {TEMPLATE}")
        engine = connect(self.url(TEMPLATE))
        create_schema(engine)
        engine.dispose()

    def create_database(self, *, empty: bool = False, template: str | None = None) -> str:
        """A new database (at the newest schema, ``empty``, or a copy of ``template``); its URL."""
        name = f"test_{secrets.token_hex(6)}"
        source = template or ("template0" if empty else TEMPLATE)
        self._execute(f"CREATE DATABASE {name} TEMPLATE {source}")
        self.created.append(name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        try:
            self._run(self.owner, self.binaries / "pg_ctl", "-D", self.directory / "data", "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
