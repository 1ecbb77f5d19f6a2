"""Shared fixtures.

- ``isolated_state`` (autouse): ENCLAVE_VAR and ENCLAVE_LEDGER_DIR point into the test's
  tmp_path, so no test reads or writes the developer's var/ or ledger; ENCLAVE_ISOLATION is off
  (no system accounts are made).
- ``demo_var`` (session): a small demo consortium (3,000 students, seed 7) built once through
  the real generator and upload path; tests treat it as read-only.
- ``use_demo``: points ENCLAVE_VAR at ``demo_var`` for one test (read-only use).
- ``demo_copy``: a private copy of the demo for a test that writes (accounts, audit).
- ``kernel`` (module): a real ``enclave`` kernel over the Jupyter protocol, reading the demo;
  ``kernel.run(code)`` returns what reached the client.
- ``postgres_server`` (session): a throwaway PostgreSQL server (tests/postgres.py), started the
  first time a test needs it; fails, never skips, when Debian's server binaries are missing.
- ``warehouse_url``: parametrized ``sqlite`` / ``postgresql``: a fresh warehouse database at
  the newest schema, set as ENCLAVE_DATABASE_URL; tests that take it run on both databases.
- ``adopted_warehouse``: an engine on ``warehouse_url`` with the shipped element sets adopted.
- ``empty_warehouse_url``: the same, but with no schema at all (for the migrations).
- ``backend`` (module): parametrized ``sqlite`` / ``postgresql``, for a module that builds a
  warehouse once (``new_warehouse``) and gives each test a copy (``copy_warehouse``).
- ``system_accounts_removed`` (session, autouse, as root): the ``enc-*`` system accounts and
  groups the session made are deleted at its end (the system id range is small: left behind,
  a few runs would exhaust it), except those a process still runs as.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kernel_client import KernelSession
from tests.postgres import PostgresServer, PostgresUnavailable

DEMO_STUDENTS = 3000
DEMO_SEED = 7


def _enclave_ids() -> tuple[set[str], set[str]]:
    import grp
    import pwd

    users = {entry.pw_name for entry in pwd.getpwall() if entry.pw_name.startswith("enc-")}
    groups = {entry.gr_name for entry in grp.getgrall() if entry.gr_name.startswith("enc-")}
    return users, groups


def _ids_in_use() -> set[int]:
    import psutil

    used: set[int] = set()
    for process in psutil.process_iter():
        try:
            used.update(process.uids())
            used.update(process.gids())
            used.update(int(g) for g in _supplementary(process.pid))
        except (psutil.Error, OSError):
            continue
    return used


def _supplementary(pid: int) -> list[str]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Groups:"):
            return line.split()[1:]
    return []


@pytest.fixture(scope="session", autouse=True)
def system_accounts_removed():
    if os.geteuid() != 0:
        yield
        return
    import grp
    import pwd

    users_before, groups_before = _enclave_ids()
    yield
    users_after, groups_after = _enclave_ids()
    busy = _ids_in_use()
    for name in sorted(users_after - users_before - {"enc-shared"}):
        if pwd.getpwnam(name).pw_uid not in busy:
            subprocess.run(["userdel", name], capture_output=True, check=False)
    for name in sorted(groups_after - groups_before):
        try:
            if grp.getgrnam(name).gr_gid not in busy:
                subprocess.run(["groupdel", name], capture_output=True, check=False)
        except KeyError:
            continue  # the user's own group, gone with the user


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    state = tmp_path / "var"
    monkeypatch.setenv("ENCLAVE_VAR", str(state))
    # The filter's ledger of tables shown (per user, across kernels): the test's own.
    monkeypatch.setenv("ENCLAVE_LEDGER_DIR", str(tmp_path / "ledger"))
    # Separate system accounts only where a test asks for them (test_isolation.py, tests/e2e).
    monkeypatch.setenv("ENCLAVE_ISOLATION", "off")
    for name in (
        "ENCLAVE_DATABASE_URL",
        "ENCLAVE_ACCOUNTS_URL",
        "ENCLAVE_AUDIT_URL",
        "ENCLAVE_STUDENT_KEY",
        "ENCLAVE_POLICY",
        "ENCLAVE_USER",
    ):
        monkeypatch.delenv(name, raising=False)
    return state


@pytest.fixture(scope="session")
def demo_var(tmp_path_factory) -> Path:
    state = tmp_path_factory.mktemp("demo") / "var"
    env = dict(os.environ, ENCLAVE_VAR=str(state), ENCLAVE_ISOLATION="off")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hub.cli",
            "demo",
            "build",
            "--students",
            str(DEMO_STUDENTS),
            "--seed",
            str(DEMO_SEED),
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return state


@pytest.fixture
def use_demo(demo_var, monkeypatch) -> Path:
    monkeypatch.setenv("ENCLAVE_VAR", str(demo_var))
    return demo_var


@pytest.fixture
def demo_copy(demo_var, tmp_path, monkeypatch) -> Path:
    state = tmp_path / "demo-copy"
    shutil.copytree(demo_var, state)
    monkeypatch.setenv("ENCLAVE_VAR", str(state))
    # The filter's ledger of tables shown (per user, across kernels): the test's own.
    monkeypatch.setenv("ENCLAVE_LEDGER_DIR", str(tmp_path / "ledger"))
    return state


@pytest.fixture(scope="module")
def kernel(demo_var, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kernel-cwd")
    session = KernelSession(env={"ENCLAVE_VAR": str(demo_var)}, cwd=str(workdir))
    session.workdir = workdir
    yield session
    session.close()


@pytest.fixture(scope="session")
def postgres_server():
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as error:
        pytest.fail(str(error))
    yield server
    server.stop()


def _database(request, monkeypatch, state: Path, *, empty: bool) -> str:
    if request.param == "sqlite":
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        url = f"sqlite:///{state / 'warehouse.db'}"
        if not empty:
            from warehouse.db import connect, create_schema

            engine = connect(url)
            create_schema(engine)
            engine.dispose()
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database(empty=empty)
        request.addfinalizer(lambda: server.drop_database(url))
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, isolated_state, monkeypatch) -> str:
    return _database(request, monkeypatch, isolated_state, empty=False)


@pytest.fixture
def adopted_warehouse(warehouse_url):
    """An engine on ``warehouse_url`` (both databases) with every shipped element set adopted."""
    from warehouse.adoption import adopt_all
    from warehouse.db import connect, create_schema

    engine = connect()
    create_schema(engine)
    adopt_all(engine, "tests")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_warehouse_url(request, isolated_state, monkeypatch) -> str:
    return _database(request, monkeypatch, isolated_state, empty=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


def new_warehouse(request, backend: str, directory: Path) -> str:
    """A fresh warehouse at the newest schema on ``backend``; dropped with ``request``'s scope."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'template.db'}"
        from warehouse.db import connect, create_schema

        engine = connect(url)
        create_schema(engine)
        engine.dispose()
        return url
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    request.addfinalizer(lambda: server.drop_database(url))
    return url


def copy_warehouse(request, template_url: str, state: Path, monkeypatch) -> str:
    """A copy of the warehouse at ``template_url`` (no connections may be open to it), set as
    ENCLAVE_DATABASE_URL for one test."""
    if template_url.startswith("sqlite"):
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(template_url.removeprefix("sqlite:///"), state / "warehouse.db")
        url = f"sqlite:///{state / 'warehouse.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database(template=template_url.rsplit("/", 1)[1])
        request.addfinalizer(lambda: server.drop_database(url))
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", url)
    return url
