"""Starts each user's JupyterLab server with the Enclave configuration, or refuses to.

Every server runs from the project's virtual environment with the user-server configuration
in ``hub/user_server`` (only the ``enclave`` kernel, no terminals, no downloads), in a home
directory under ``var/users/<name>`` that starts with the example notebooks. Its Jupyter
configuration, data and JupyterLab settings directories are the project's own, which the
user's account cannot write: nothing a kernel writes into the home configures the server.

Fail closed (``hub.isolation``): a server never runs as root or as the hub's account. With
per-user accounts it runs as the user's own system account; with ``ENCLAVE_ISOLATION=off``
as root, as the shared unprivileged account; when neither can work the spawn is refused with
the reason. Reviewers review releases; they get no research server. An account that must
change its password or enroll a second factor first gets no server until it has.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner, set_user_setuid
from jupyterhub.utils import random_port
from tornado import web
from traitlets import Bool, Unicode, default

from hub import isolation
from hub.accounts import AccountStore
from hub.forkserver import ForkServer, ForkServerError
from hub.provisioning import prepare_home, server_account
from warehouse.settings import REPO, var_dir

USER_SERVER = REPO / "hub" / "user_server"
USER_SERVER_CONFIG = USER_SERVER / "config"
EXAMPLES = REPO / "notebooks"
TEMPLATES = REPO / "templates"
REPORTS_FOLDER = "standard-reports"  # read-only copies of the report templates, for report authors
REPORT_ROLES = ("author", "admin")
# What a user server may know of the hub's environment. Never the warehouse URL (it may carry
# database credentials) or the student-key secret: kernels read extracts only.
PASSED_ON = ("ENCLAVE_POLICY", "ENCLAVE_PUBLIC_URL")
# One zygote per hub process: servers start from it with Jupyter already imported.
_FORKSERVER = ForkServer(pythonpath=str(USER_SERVER / "startup"))


def warm_forkserver() -> None:
    """Start the zygote at hub start (its imports then cost the first login nothing)."""
    try:
        _FORKSERVER.warm()
    except (OSError, ForkServerError):
        pass  # the first spawn tries again, or starts a new interpreter


def _refusal(message: str) -> web.HTTPError:
    """A spawn refusal whose message JupyterHub shows on the spawn-failed page."""
    error = web.HTTPError(403, message)
    error.jupyterhub_message = message
    return error


class EnclaveSpawner(SimpleLocalProcessSpawner):
    """A local JupyterLab server per user, configured for the secure kernel."""

    isolation_mode = Unicode(
        config=True,
        help="How user servers are separated: users, off or refused. jupyterhub_config.py sets it "
        "once at hub start from hub.isolation.decide(); by default it is decided when first needed.",
    )
    isolation_reason = Unicode(config=True, help="Why the hub chose isolation_mode (shown when spawns are refused).")
    isolation_shared = Bool(
        config=True, help="With isolation_mode off as root: every server runs as the shared unprivileged account."
    )
    forkserver = Bool(
        True,
        config=True,
        help="Fork servers from a process that has Jupyter imported already (hub.forkserver): a "
        "second of CPU less per start. Off: each server is a new interpreter.",
    )

    @default("isolation_mode")
    def _default_isolation_mode(self) -> str:
        decided = isolation.decide()
        self.isolation_reason, self.isolation_shared = decided.reason, decided.shared
        return decided.mode

    @property
    def decided(self) -> isolation.Isolation:
        mode = self.isolation_mode  # computes reason and shared too when not configured
        return isolation.Isolation(mode, self.isolation_reason, self.isolation_shared)

    @default("home_dir_template")
    def _default_home_dir_template(self) -> str:
        return str(var_dir() / "users" / "{username}")

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    @default("args")
    def _default_args(self) -> list[str]:
        return []  # never --allow-root: a server that would run as root does not start

    async def start(self):
        authenticator = self.authenticator if hasattr(self.authenticator, "pending") else None
        store = authenticator.store if authenticator is not None else AccountStore()
        account = store.get(self.user.name)
        if account is None or not account.active:
            raise _refusal(f"{self.user.name} has no active Enclave account.")
        if account.role == "reviewer":
            raise _refusal("Reviewers review release requests; they do not get a research server.")
        pending = (
            store.pending_step(self.user.name)
            if authenticator is None or authenticator.pending(self.user.name)
            else None
        )
        if pending is not None:
            raise _refusal(pending)
        problems = isolation.live_problems(self.decided)
        if problems:
            message = " ".join(problems)
            self.log.error("Refusing to start a server for %r: %s", self.user.name, message)
            raise _refusal(message)
        self._check_policy(store)
        self._check_account()
        self._prepare_home(Path(self.home_dir), reports=account.role in REPORT_ROLES)
        address = await self._launch()
        await self._listening(*address)
        return address

    def _check_policy(self, store: AccountStore) -> None:
        """The server's kernels read policy.toml as it is now: a hand edit since the hub's start
        (a value no approved proposal explains) refuses the spawn, as it refuses the start."""
        from hub.exceptions import GovernanceError
        from hub.governance import Governance, member_codes

        try:
            Governance(member_codes, engine=store.engine, accounts=store).check_governed("hub")
        except GovernanceError as error:
            self.log.error("Refusing to start a server for %r: %s", self.user.name, error)
            raise _refusal(str(error)) from None

    async def _launch(self) -> tuple[str, int]:
        """Start the server process: forked from the hub's zygote (hub.forkserver) when it can
        run the command, otherwise as LocalProcessSpawner does (a new interpreter)."""
        cmd = [*self.cmd, *self.get_args()]
        if not self.forkserver or not _FORKSERVER.runs(cmd[0]):
            return await super().start()
        if self.port == 0:
            self.port = random_port()
        ids = {"uid": None, "gid": None, "groups": []}
        if self.decided.switches_user:
            account = pwd.getpwnam(server_account(self.user.name, shared=self.decided.shared))
            if account.pw_uid in (0, os.geteuid()):
                raise _refusal(f"The system account {account.pw_name} is root's or the hub's; refusing to start.")
            groups = os.getgrouplist(account.pw_name, account.pw_gid)
            ids = {"uid": account.pw_uid, "gid": account.pw_gid, "groups": groups}
        try:
            pid = await _FORKSERVER.spawn(cmd, self.get_env(), str(self.home_dir), kernels=True, **ids)
        except ForkServerError as error:
            self.log.warning("Fork server unavailable (%s); %s's server starts as a new process", error, self.user.name)
            return await super().start()
        self.log.info("Forked %s's server (pid %i) from the fork server", self.user.name, pid)
        self.proc = None
        self.pid = pid
        return (self.ip or "127.0.0.1", self.port)

    async def _listening(self, ip: str, port: int) -> None:
        """Return once the server accepts connections (or has exited, or time is up).

        JupyterHub then finds it up at its first check instead of at the next step of its
        back-off, up to seconds later.
        """
        deadline = asyncio.get_running_loop().time() + self.http_timeout
        while asyncio.get_running_loop().time() < deadline and await self.poll() is None:
            try:
                _reader, writer = await asyncio.open_connection(ip, port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return

    def _check_account(self) -> None:
        """A server runs neither as root nor as the hub's own account."""
        if not self.decided.switches_user:
            if os.geteuid() == 0:
                raise _refusal("The hub runs as root and isolation is off without a shared account.")
            return
        name = server_account(self.user.name, shared=self.decided.shared)
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            return  # created by _prepare_home
        if uid in (0, os.geteuid()):
            raise _refusal(f"The system account {name} has uid {uid}, the hub's or root's; refusing to start.")

    def _prepare_home(self, home: Path, reports: bool = False) -> None:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        home.chmod(0o700)
        for example in sorted(EXAMPLES.glob("*.ipynb")):
            target = home / example.name
            if not target.exists():
                shutil.copyfile(example, target)
        if reports:
            copy_templates(home / REPORTS_FOLDER)
        if self.decided.switches_user:
            if self.decided.shared:
                from hub import provisioning

                provisioning.sync(var_dir(), [self.user.name], shared=True)
            prepare_home(home, self.user.name, shared=self.decided.shared)

    def make_preexec_fn(self, name):
        if not self.decided.switches_user:
            return super().make_preexec_fn(name)
        account = server_account(name, shared=self.decided.shared)
        switch = set_user_setuid(account, chdir=False)
        home = self.home_dir

        def preexec() -> None:
            switch()
            if os.geteuid() == 0 or os.getuid() == 0:
                os._exit(70)  # never run a user server as root
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env = super().user_env(env)
        if self.decided.switches_user:
            env["USER"] = server_account(self.user.name, shared=self.decided.shared)
            env["SHELL"] = "/usr/sbin/nologin"
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        home = Path(self.home_dir)
        env.pop("JUPYTER_CONFIG_PATH", None)
        env.update(
            # Configuration, data and JupyterLab settings from the project's own directories,
            # which the user's account cannot write (a jupyter_server_config.py in the home
            # would otherwise run inside the server and could switch the guard off).
            JUPYTER_CONFIG_DIR=str(USER_SERVER_CONFIG),
            JUPYTER_DATA_DIR=str(USER_SERVER / "data"),
            JUPYTERLAB_SETTINGS_DIR=str(USER_SERVER / "lab" / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(USER_SERVER / "lab" / "workspaces"),
            JUPYTER_RUNTIME_DIR=str(home / ".local" / "share" / "jupyter" / "runtime"),
            IPYTHONDIR=str(home / ".ipython"),
            PYTHONPATH=str(USER_SERVER / "startup"),  # start faster (see its one module)
            ENCLAVE_VAR=str(var_dir()),
            # The output filter's ledger of the tables this user was shown, kept across kernels
            ENCLAVE_LEDGER_DIR=str(home / ".enclave" / "ledger"),
            # Only where servers share one account: per-user kernels know their user from the
            # account they run as (warehouse.identity), whatever this says.
            ENCLAVE_USER=self.user.name,
        )
        for name in PASSED_ON:
            if name in os.environ:
                env[name] = os.environ[name]
        return env


def copy_templates(folder: Path) -> None:
    """Fresh read-only copies of the report templates (JupyterLab opens them read-only).

    A convenience, not a control: the author's kernel could change the modes back, but the
    runner always runs the shipped templates, never these copies. Replaced at every start so
    they follow the shipped ones.
    """
    if folder.exists():
        folder.chmod(0o755)
        for old in folder.iterdir():
            if old.is_file() and not old.is_symlink():
                old.chmod(0o644)
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for template in sorted(TEMPLATES.glob("*.ipynb")):
        target = folder / template.name
        shutil.copyfile(template, target)
        target.chmod(0o444)
    folder.chmod(0o555)
