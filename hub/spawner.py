"""Starts each user's JupyterLab server with the Enclave configuration.

Every server runs from the project's virtual environment with the user-server configuration
in ``hub/user_server`` (only the ``enclave`` kernel, no terminals, no downloads), in a home
directory under ``var/users/<name>`` that starts with the example notebooks. When the hub runs
as root the server runs as the user's own system account (``hub.provisioning``), so its
kernels can read that user's approved uses and nothing else; otherwise (a developer's
machine) under the hub's account. Reviewers review releases; they get no research server.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner, set_user_setuid
from tornado import web
from traitlets import default

from hub.accounts import AccountStore
from hub.provisioning import isolation_enabled, prepare_home, system_user
from warehouse.settings import REPO, var_dir

USER_SERVER_CONFIG = REPO / "hub" / "user_server"
EXAMPLES = REPO / "notebooks"
# What a user server may know of the hub's environment. Never the warehouse URL (it may carry
# database credentials) or the student-key secret: kernels read extracts only.
PASSED_ON = ("ENCLAVE_POLICY",)


def _refusal(message: str) -> web.HTTPError:
    """A spawn refusal whose message JupyterHub shows on the spawn-failed page."""
    error = web.HTTPError(403, message)
    error.jupyterhub_message = message
    return error


class EnclaveSpawner(SimpleLocalProcessSpawner):
    """A local JupyterLab server per user, configured for the secure kernel."""

    @property
    def isolated(self) -> bool:
        return isolation_enabled()

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
        return ["--allow-root"] if os.geteuid() == 0 and not self.isolated else []

    async def start(self):
        store = getattr(self.authenticator, "store", None) or AccountStore()
        account = store.get(self.user.name)
        if account is None or not account.active:
            raise _refusal(f"{self.user.name} has no active Enclave account.")
        if account.role == "reviewer":
            raise _refusal("Reviewers review release requests; they do not get a research server.")
        self._prepare_home(Path(self.home_dir))
        return await super().start()

    def _prepare_home(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        home.chmod(0o700)
        for example in sorted(EXAMPLES.glob("*.ipynb")):
            target = home / example.name
            if not target.exists():
                shutil.copyfile(example, target)
        if self.isolated:
            prepare_home(home, self.user.name)

    def make_preexec_fn(self, name):
        if not self.isolated:
            return super().make_preexec_fn(name)
        switch = set_user_setuid(system_user(name), chdir=False)
        home = self.home_dir

        def preexec() -> None:
            switch()
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env = super().user_env(env)
        if self.isolated:
            env["USER"] = system_user(self.user.name)
            env["SHELL"] = "/usr/sbin/nologin"
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        home = Path(self.home_dir)
        env.update(
            JUPYTER_CONFIG_PATH=str(USER_SERVER_CONFIG),
            JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
            JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"),
            JUPYTER_RUNTIME_DIR=str(home / ".local" / "share" / "jupyter" / "runtime"),
            JUPYTERLAB_WORKSPACES_DIR=str(home / ".jupyter" / "lab" / "workspaces"),
            ENCLAVE_VAR=str(var_dir()),
            ENCLAVE_USER=self.user.name,  # kernels.data shows this user's approved uses only
        )
        for name in PASSED_ON:
            if name in os.environ:
                env[name] = os.environ[name]
        return env
