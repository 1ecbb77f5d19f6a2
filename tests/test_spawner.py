"""Tests for the spawner, without a hub: home directories, the user server's environment,
and who gets a research server."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pyotp
import pytest
from argon2 import PasswordHasher
from jupyterhub.objects import Hub
from jupyterhub.spawner import SimpleLocalProcessSpawner
from sqlalchemy import update
from tornado import web

import hub.spawner
from hub import provisioning
from hub.accounts import AccountStore, accounts
from hub.spawner import EnclaveSpawner

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'


def make_spawner(name: str = "alice", *, forkserver: bool = False) -> EnclaveSpawner:
    """A spawner for ``name``; the process start itself is LocalProcessSpawner's (tests fake
    it), not the fork server's, unless asked."""
    user = SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name)
    return EnclaveSpawner(user=user, hub=Hub(), forkserver=forkserver)


@pytest.fixture
def examples(tmp_path, monkeypatch) -> Path:
    """A notebooks directory with one example notebook (and a file that is not one)."""
    directory = tmp_path / "examples"
    directory.mkdir()
    (directory / "welcome.ipynb").write_text(NOTEBOOK)
    (directory / "README.md").write_text("not a notebook\n")
    monkeypatch.setattr(hub.spawner, "EXAMPLES", directory)
    return directory


@pytest.fixture
def store(monkeypatch) -> AccountStore:
    """The default account store (under the test's ENCLAVE_VAR), with one account per role."""
    monkeypatch.setattr("hub.accounts._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    store = AccountStore()
    store.add("alice", "researcher", "ABC234", "a-long-password")
    store.add("ann", "author", "ABC234", "a-long-password")
    store.add("rita", "reviewer", "DEF567", "a-long-password")
    store.add("root", "admin", None, "a-long-password")
    store.set_totp("root", pyotp.random_base32())  # an admin's second factor is required
    return store


# ---- home directory ----------------------------------------------------------------------


def test_home_is_under_enclave_var_users(isolated_state):
    assert Path(make_spawner("alice").home_dir) == isolated_state.resolve() / "users" / "alice"
    assert Path(make_spawner("bob").home_dir) == isolated_state.resolve() / "users" / "bob"


def test_prepare_home_creates_a_private_directory_with_the_examples(examples):
    spawner = make_spawner()
    home = Path(spawner.home_dir)
    assert not home.exists()
    spawner._prepare_home(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert sorted(p.name for p in home.iterdir()) == ["welcome.ipynb"]
    assert (home / "welcome.ipynb").read_text() == NOTEBOOK


def test_prepare_home_keeps_a_users_edited_copy_and_adds_new_examples(examples):
    spawner = make_spawner()
    home = Path(spawner.home_dir)
    spawner._prepare_home(home)
    edited = NOTEBOOK.replace('"cells": []', '"cells": [{"cell_type": "markdown", "source": "mine"}]')
    (home / "welcome.ipynb").write_text(edited)
    (home / "analysis.ipynb").write_text("user's own work")
    (examples / "second.ipynb").write_text(NOTEBOOK)

    spawner._prepare_home(home)

    assert (home / "welcome.ipynb").read_text() == edited
    assert (home / "analysis.ipynb").read_text() == "user's own work"
    assert (home / "second.ipynb").read_text() == NOTEBOOK
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_prepare_home_copies_the_shipped_notebooks(isolated_state):
    assert hub.spawner.EXAMPLES == REPO / "notebooks"
    spawner = make_spawner()
    home = Path(spawner.home_dir)
    spawner._prepare_home(home)
    shipped = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in home.glob("*.ipynb")) == shipped


def test_report_authors_get_read_only_copies_of_the_templates(examples):
    spawner = make_spawner("ann")
    home = Path(spawner.home_dir)
    spawner._prepare_home(home, reports=True)
    folder = home / hub.spawner.REPORTS_FOLDER
    shipped = sorted(p.name for p in (REPO / "templates").glob("*.ipynb"))
    assert sorted(p.name for p in folder.iterdir()) == shipped and len(shipped) == 6
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in folder.iterdir())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o555
    assert (folder / "course_success.ipynb").read_bytes() == (REPO / "templates" / "course_success.ipynb").read_bytes()
    # The next start replaces them (a copy changed by hand comes back as shipped).
    folder.chmod(0o755)
    (folder / "course_success.ipynb").chmod(0o644)
    (folder / "course_success.ipynb").write_text("changed")
    spawner._prepare_home(home, reports=True)
    assert (folder / "course_success.ipynb").read_bytes() == (REPO / "templates" / "course_success.ipynb").read_bytes()


def test_researchers_get_no_template_copies(examples):
    spawner = make_spawner("alice")
    home = Path(spawner.home_dir)
    spawner._prepare_home(home)
    assert not (home / hub.spawner.REPORTS_FOLDER).exists()


# ---- environment and command -------------------------------------------------------------


def test_environment_points_the_user_server_at_the_enclave_configuration(isolated_state):
    spawner = make_spawner()
    env = spawner.get_env()
    home = Path(spawner.home_dir)
    assert env["ENCLAVE_VAR"] == str(isolated_state.resolve())
    assert env["JUPYTER_CONFIG_DIR"] == str(REPO / "hub" / "user_server" / "config")
    assert (Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.py").is_file()
    assert "JUPYTER_CONFIG_PATH" not in env
    assert env["HOME"] == str(home)
    # ENCLAVE_ISOLATION=off (the fixture's): as root, the one shared unprivileged account.
    assert env["USER"] == ("enc-shared" if os.geteuid() == 0 else "alice")
    assert env["JUPYTERHUB_USER"] == "alice"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    # What configures the server is outside the home, in the project's own directories.
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        assert Path(env[name]).is_relative_to(REPO / "hub" / "user_server"), name
        assert not Path(env[name]).is_relative_to(home), name
    assert Path(env["JUPYTER_RUNTIME_DIR"]).is_relative_to(home)  # connection files: private to the user


def test_environment_passes_on_the_policy_but_no_store_or_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("ENCLAVE_POLICY", str(tmp_path / "policy.toml"))
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    monkeypatch.setenv("ENCLAVE_STUDENT_KEY", "not-a-real-key")
    monkeypatch.setenv("ENCLAVE_ACCOUNTS_URL", f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("ENCLAVE_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    env = make_spawner().get_env()
    assert env["ENCLAVE_POLICY"] == str(tmp_path / "policy.toml")
    assert "ENCLAVE_DATABASE_URL" not in env  # kernels read extracts; the URL may hold credentials
    assert "ENCLAVE_STUDENT_KEY" not in env  # with it, names could be turned into student keys
    assert "ENCLAVE_ACCOUNTS_URL" not in env
    assert "ENCLAVE_AUDIT_URL" not in env


def test_environment_gives_an_absolute_enclave_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENCLAVE_VAR", "relative-var")
    spawner = make_spawner()
    env = spawner.get_env()
    assert env["ENCLAVE_VAR"] == str((tmp_path / "relative-var").resolve())
    assert Path(spawner.home_dir) == (tmp_path / "relative-var").resolve() / "users" / "alice"


def test_command_is_the_venvs_singleuser_server_at_lab():
    spawner = make_spawner()
    assert spawner.cmd == [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
    assert spawner.default_url == "/lab"


# ---- who may start a server --------------------------------------------------------------


def refusal(name: str) -> web.HTTPError:
    spawner = make_spawner(name)
    with pytest.raises(web.HTTPError) as raised:
        asyncio.run(spawner.start())
    assert not Path(spawner.home_dir).exists()
    return raised.value


def test_a_reviewer_gets_no_research_server(store, examples):
    error = refusal("rita")
    assert error.status_code == 403
    assert "Reviewers" in error.jupyterhub_message
    assert "do not get a research server" in error.jupyterhub_message


def test_an_unknown_user_gets_no_server(store, examples):
    error = refusal("mallory")
    assert error.status_code == 403
    assert error.jupyterhub_message == "mallory has no active Enclave account."


def test_a_deactivated_user_gets_no_server(store, examples):
    with store.engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.name == "alice").values(active=False))
    error = refusal("alice")
    assert error.status_code == 403
    assert "no active Enclave account" in error.jupyterhub_message


def test_a_policy_edited_by_hand_since_the_start_refuses_the_spawn(
    store, examples, tmp_path, monkeypatch, isolated_state
):
    """The kernels would read the edited file: the spawn is refused as the hub's start is."""
    import shutil

    from hub.audit import AuditLog
    from hub.governance import Governance
    from output_filters.policy import DEFAULT_PATH

    policy = tmp_path / "policy.toml"
    shutil.copyfile(DEFAULT_PATH, policy)
    monkeypatch.setenv("ENCLAVE_POLICY", str(policy))
    Governance(lambda: ["ABC234"], engine=store.engine, accounts=store).check_governed("hub")  # the start
    provisioning.secure_state(isolated_state)  # what the hub does when it starts
    policy.write_text(policy.read_text().replace("threshold = 10", "threshold = 2"))
    error = refusal("alice")
    assert error.status_code == 403
    assert "disclosure.threshold is 2 in the file, 10 as approved" in error.jupyterhub_message
    assert AuditLog().events()[-1].event == "policy.tamper"


@pytest.mark.parametrize("name", ["alice", "ann", "root"], ids=["researcher", "author", "admin"])
def test_other_roles_start_in_a_prepared_home(store, examples, monkeypatch, isolated_state, name):
    started = []

    async def fake_start(self):
        home = Path(self.home_dir)
        started.append((self.user.name, stat.S_IMODE(home.stat().st_mode), sorted(p.name for p in home.iterdir())))
        return ("127.0.0.1", 54321)

    monkeypatch.setattr(SimpleLocalProcessSpawner, "start", fake_start)
    provisioning.secure_state(isolated_state)  # what the hub does when it starts
    spawner = make_spawner(name)
    assert asyncio.run(spawner.start()) == ("127.0.0.1", 54321)
    reports = [hub.spawner.REPORTS_FOLDER] if name in ("ann", "root") else []  # authors and admins run reports
    assert started == [(name, 0o700, sorted([*reports, "welcome.ipynb"]))]


def test_a_user_servers_own_modules_leave_pandas_and_the_engine_unloaded():
    """The server-side guard needs only the seal: every server start would otherwise pay for
    pandas and the suppression engine (about a second of CPU each, ten users at once)."""
    import subprocess

    code = (
        "import sys, output_filters.server.guard, hub.user_server.contents, hub.user_server.lockdown;"
        "from output_filters import load_policy, DisclosureError;"
        "heavy = ('pandas', 'scipy', 'highspy', 'output_filters.engine.secondary');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from output_filters import protect; print('pandas' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "True"


def test_account_creation_retries_when_another_process_takes_the_id(monkeypatch):
    """useradd exits 4 when a parallel useradd took the id it chose: it is run again, and any
    other failure is not hidden."""
    import subprocess

    from hub import provisioning

    calls = []

    def run(command, **_kwargs):
        calls.append(command)
        if len(calls) < 3:
            raise subprocess.CalledProcessError(4, command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(provisioning.subprocess, "run", run)
    monkeypatch.setattr(provisioning.time, "sleep", lambda _seconds: None)
    provisioning._run("useradd", "x")
    assert len(calls) == 3

    def broken(command, **_kwargs):
        raise subprocess.CalledProcessError(9, command)

    monkeypatch.setattr(provisioning.subprocess, "run", broken)
    with pytest.raises(subprocess.CalledProcessError):
        provisioning._run("useradd", "x")


class FakeForks:
    def __init__(self, error: Exception | None = None):
        self.requests, self.error = [], error

    def runs(self, script: str) -> bool:
        return script.endswith("jupyterhub-singleuser")

    async def spawn(self, argv, env, cwd, **extra):
        if self.error is not None:
            raise self.error
        self.requests.append((argv, env, cwd, extra))
        return 4242


def _launched(monkeypatch, forks: FakeForks) -> tuple[EnclaveSpawner, list]:
    popen = []

    async def fake_start(self):
        popen.append(self.user.name)
        return ("127.0.0.1", 54321)

    monkeypatch.setattr(SimpleLocalProcessSpawner, "start", fake_start)
    monkeypatch.setattr(hub.spawner, "_FORKSERVER", forks)
    spawner = make_spawner("alice", forkserver=True)
    spawner.isolation_mode, spawner.isolation_shared = "off", False  # the hub's own account
    spawner.home_dir = "/tmp"
    asyncio.run(spawner._launch())
    return spawner, popen


def test_a_server_is_forked_with_the_spawners_command_environment_and_home(monkeypatch):
    forks = FakeForks()
    spawner, popen = _launched(monkeypatch, forks)
    assert popen == [] and spawner.pid == 4242 and spawner.proc is None
    [(argv, env, cwd, extra)] = forks.requests
    assert argv == [*spawner.cmd, *spawner.get_args()] and cwd == "/tmp"
    assert env["JUPYTER_CONFIG_DIR"] == str(hub.spawner.USER_SERVER_CONFIG)  # get_env(), as for Popen
    assert extra == {"kernels": True, "uid": None, "gid": None, "groups": []}


def test_without_the_fork_server_the_server_starts_as_a_new_process(monkeypatch):
    from hub.forkserver import ForkServerError

    _spawner, popen = _launched(monkeypatch, FakeForks(ForkServerError("gone")))
    assert popen == ["alice"]
