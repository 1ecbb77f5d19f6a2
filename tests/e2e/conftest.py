"""End-to-end fixtures: the real hub, proxy and user servers on free loopback ports.

- ``hub`` (session): JupyterHub started from jupyterhub_config.py against a copy of the demo
  consortium, with the proxy from node_modules; yields a ``RunningHub`` with its URL, the
  demo credentials, the log files and its environment (``hub.enclave(...)`` runs the CLI
  against it, ``hub.store()`` opens its account store). Stopped (hub, proxy, user servers)
  at the end. As root the hub decides isolation itself (per-user accounts); as another user
  it runs with ENCLAVE_ISOLATION=off, since it could not switch users.
- ``browser`` (function): a Playwright page in Debian's headless chromium.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from tests.postgres import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningHub:
    url: str
    state: Path
    log: Path
    passwords: dict[str, str]
    env: dict[str, str]

    @property
    def hub_log(self) -> Path:
        return self.state / "logs" / "hub.log"

    def enclave(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """Run an ``enclave`` command against this hub's state (as the hub's own account)."""
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )

    def audit(self) -> list:
        """The hub's audit log, every event in order."""
        from sqlalchemy import create_engine

        from hub.audit import AuditLog

        engine = create_engine(f"sqlite:///{self.state / 'audit.db'}")
        try:
            return AuditLog(engine).events()
        finally:
            engine.dispose()

    def store(self):
        from sqlalchemy import create_engine

        from hub.accounts import AccountStore

        return AccountStore(create_engine(f"sqlite:///{self.state / 'accounts.db'}"))


@contextmanager
def running_hub(demo_var: Path, top: Path, extra_env: dict[str, str] | None = None) -> Iterator[RunningHub]:
    """A hub serving a copy of the demo in ``top/var``; stopped with everything it started."""
    state = top / "var"
    shutil.copytree(demo_var, state)
    names = ("ENCLAVE_PORT", "ENCLAVE_HUB_PORT", "ENCLAVE_PROXY_API_PORT", "ENCLAVE_RELEASE_PORT")
    ports = {name: free_port() for name in names}
    env = {k: v for k, v in os.environ.items() if k != "ENCLAVE_ISOLATION"}  # the hub decides, as in production
    if os.geteuid() != 0:
        env["ENCLAVE_ISOLATION"] = "off"  # a developer's machine: the hub cannot switch users
    env.update(ENCLAVE_VAR=str(state), **{k: str(v) for k, v in ports.items()}, **(extra_env or {}))
    log = top / "hub-test.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{ports['ENCLAVE_PORT']}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(f"{url}/hub/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"the hub did not become healthy; log:\n{log.read_text()[-4000:]}")
        time.sleep(0.3)
    passwords = {}
    for line in (state / "demo" / "credentials.txt").read_text().splitlines():
        name, password, _role = line.split()
        passwords[name] = password
    try:
        yield RunningHub(url, state, log, passwords, env)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        _stop_leftovers(state)


@pytest.fixture(scope="session")
def hub(demo_var):
    # Under /tmp rather than pytest's private temporary directory: when the hub runs as root,
    # user servers run as the users' own system accounts and must be able to reach var/.
    top = Path(tempfile.mkdtemp(prefix="enclave-hub-", dir="/tmp"))
    top.chmod(0o711)
    try:
        with running_hub(demo_var, top) as running:
            yield running
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _stop_leftovers(state: Path) -> None:
    """Kill any process (user server, kernel, proxy) still running for this hub's state: by its
    environment, or by its command line (a forked process's title overwrites its environ)."""
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("ENCLAVE_VAR") == str(state) or any(str(state) in a for a in proc.cmdline()):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue


CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        page = instance.new_page(viewport={"width": 1400, "height": 900})
        yield page
        instance.close()
