"""The security matrix of the locked-down hub: one row per attack, through the real hub, proxy
and user servers (as root: per-user system accounts, as .ci/run runs it).

Each row is a function named for what is tried; ``ROWS`` is the whole table with what must
happen. The researcher and the author each have a running server and a kernel (module
fixture ``m``); rows that need an account in a particular state make their own.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psutil
import pyotp
import pytest
import requests
import websocket
from sqlalchemy import update

from hub.accounts import accounts
from hub.provisioning import system_user
from tests.e2e.hub_client import HubClient

pytestmark = pytest.mark.e2e
GOOD = "plum-cider-walnut-42"  # a password the policy accepts
FORGED = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 1,
            "source": "x",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "FORGED ROWS 2004\n"}],
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@dataclass
class Matrix:
    hub: object
    researcher: HubClient
    researcher_kernel: str
    author: HubClient
    author_kernel: str

    def run(self, code: str, who: str = "researcher"):
        client, kernel = (
            (self.researcher, self.researcher_kernel) if who == "researcher" else (self.author, self.author_kernel)
        )
        out = client.execute(f"demo-{who}", kernel, code)
        assert out.reply is not None and out.reply["status"] == "ok", out.text
        return out.text

    def account(self, role: str = "researcher", password: str = GOOD, totp: bool = False) -> tuple[str, str | None]:
        """A fresh account at the researcher's institution (its TOTP secret if asked)."""
        name = f"m-{role[:3]}-{uuid.uuid4().hex[:6]}"
        code = self.hub.store().get("demo-researcher").institution
        args = ["user", "add", name, "--role", role, "--password-stdin"]
        if role != "admin":
            args += ["--institution", code]
        done = self.hub.enclave(*args, input=password + "\n")
        assert done.returncode == 0, done.stderr
        secret = None
        if totp:
            secret = pyotp.random_base32()
            self.hub.store().set_totp(name, secret)
        return name, secret

    def audit(self) -> list[tuple[str, str, dict]]:
        from sqlalchemy import create_engine

        from hub.audit import AuditLog

        log = AuditLog(create_engine(f"sqlite:///{self.hub.state / 'audit.db'}"))
        return [(e.actor, e.event, e.details) for e in log.events()]


@pytest.fixture(scope="module")
def m(hub) -> Matrix:
    clients = {}
    for who in ("researcher", "author"):
        client = HubClient(hub.url)
        assert client.login(f"demo-{who}", hub.passwords[f"demo-{who}"]).status_code == 302
        client.open_lab(f"demo-{who}")
        started = client.start_kernel(f"demo-{who}")
        assert started.status_code == 201, started.text
        clients[who] = (client, started.json()["id"])
    return Matrix(hub, *clients["researcher"], *clients["author"])


def wait_for(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def refused(response: requests.Response) -> bool:
    """Not served: 403/404, or sent to the login page."""
    if response.status_code in (401, 403, 404):
        return True
    return response.status_code in (301, 302) and "/hub/login" in response.headers.get("location", "")


# ---- logins ----------------------------------------------------------------------------------


def unauthenticated(m: Matrix) -> None:
    anonymous = requests.Session()
    assert anonymous.get(f"{m.hub.url}/hub/api/users", timeout=30).status_code == 403
    page = anonymous.get(f"{m.hub.url}/user/demo-researcher/api/contents", allow_redirects=False, timeout=30)
    assert refused(page), page.status_code
    home = anonymous.get(f"{m.hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert "/hub/login" in home.headers["location"]


def wrong_password(m: Matrix) -> None:
    name, _ = m.account()
    response = HubClient(m.hub.url).login(name, GOOD + "!")
    assert response.status_code == 403 and "Invalid username or password" in response.text
    unknown = HubClient(m.hub.url).login("m-nobody-here", GOOD)
    assert unknown.status_code == 403 and "Invalid username or password" in unknown.text  # no name oracle
    assert any(e == "login.failure" and actor == name for actor, e, _ in m.audit())


def locked_after_five_failures(m: Matrix) -> None:
    name, _ = m.account()
    for _ in range(5):
        assert HubClient(m.hub.url).login(name, "not the password at all").status_code == 403
    locked = HubClient(m.hub.url).login(name, GOOD)
    assert locked.status_code == 403 and "Invalid username or password" in locked.text
    assert m.hub.store().status(name).locked_until > datetime.now(UTC) + timedelta(minutes=14)
    assert (name, "login.lockout") in [(a, e) for a, e, _ in m.audit()]
    assert m.hub.enclave("user", "reset-password", name, "--yes").returncode == 0  # the admin's way back


def expired_password_logs_in_only_to_change_it(m: Matrix) -> None:
    name, _ = m.account()
    store = m.hub.store()
    with store.engine.begin() as conn:
        old = datetime.now(UTC) - timedelta(days=91)
        conn.execute(update(accounts).where(accounts.c.name == name).values(password_changed_at=old))
    client = HubClient(m.hub.url)
    response = client.login(name, GOOD)
    assert response.status_code == 302 and response.headers["location"].endswith("/hub/change-password")
    assert client.hub_api("GET", "user").json()["scopes"] == []
    assert refused(client.hub_api("POST", f"users/{name}/server"))
    assert refused(client.hub_api("POST", f"users/{name}/tokens", json={"expires_in": 600}))
    changed = client.form(
        "change-password",
        {"current_password": GOOD, "new_password": GOOD + "-x", "new_password_again": GOOD + "-x"},
    )
    assert changed.status_code == 302, changed.text[:300]
    assert "self" in client.hub_api("GET", "user").json()["scopes"] or client.hub_api("GET", "user").json()["scopes"]
    assert (name, "password.change") in [(a, e) for a, e, _ in m.audit()]


def disabled_account(m: Matrix) -> None:
    name, _ = m.account()
    client = HubClient(m.hub.url)
    assert client.login(name, GOOD).status_code == 302
    client.open_lab(name)
    assert servers_of(name)
    token = client.hub_api("POST", f"users/{name}/tokens", json={"expires_in": 3600}).json()["token"]
    headers = {"Authorization": f"token {token}"}
    assert requests.get(f"{m.hub.url}/hub/api/user", headers=headers, timeout=30).status_code == 200
    done = m.hub.enclave("user", "disable", name, "--yes")
    assert done.returncode == 0, done.stderr
    assert "server is stopped" in done.stdout and "revoked" in done.stdout
    assert not servers_of(name)
    assert requests.get(f"{m.hub.url}/hub/api/user", headers=headers, timeout=30).status_code == 403
    assert refused(client.hub_api("GET", "user"))
    again = HubClient(m.hub.url).login(name, GOOD)
    assert again.status_code == 403
    assert (name, "login.failure") in [(a, e) for a, e, _ in m.audit()]


def servers_of(name: str) -> list[psutil.Process]:
    """The running user servers of ``name``: the singleuser processes of its system account."""
    uid = pwd.getpwnam(system_user(name)).pw_uid
    found = []
    for process in psutil.process_iter(["cmdline", "uids"]):
        if "jupyterhub-singleuser" in " ".join(process.info["cmdline"] or []) and process.info["uids"]:
            if process.info["uids"].real == uid:
                found.append(process)
    return found


def idle_culler(m: Matrix) -> None:
    """jupyterhub-idle-culler runs as a hub service with the policy's timeout."""
    from output_filters.policy import load_policy

    timeout = load_policy().accounts.idle_timeout_minutes * 60
    cullers = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            line = process.info["cmdline"] or []
            hub = process.parent()  # services get no ENCLAVE_VAR of their own
            if "jupyterhub_idle_culler" in line and hub and hub.environ().get("ENCLAVE_VAR") == str(m.hub.state):
                cullers.append(line)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    assert len(cullers) == 1 and f"--timeout={timeout}" in cullers[0], cullers


def temporary_password_is_changed_at_first_login(m: Matrix) -> None:
    code = m.hub.store().get("demo-researcher").institution
    name = f"m-tmp-{uuid.uuid4().hex[:6]}"
    made = m.hub.enclave("user", "add", name, "--role", "researcher", "--institution", code)
    assert made.returncode == 0, made.stderr
    temporary = re.search(r"Password \(shown once, not stored\): (\S+)", made.stdout).group(1)
    client = HubClient(m.hub.url)
    response = client.login(name, temporary)
    assert response.headers["location"].endswith("/hub/change-password")
    spawn = client.session.get(f"{m.hub.url}/hub/spawn/{name}", timeout=60)
    assert "temporary" in spawn.text or spawn.status_code == 403
    same = client.form(
        "change-password", {"current_password": temporary, "new_password": temporary, "new_password_again": temporary}
    )
    assert same.status_code == 400 and "used before" in same.text
    short = client.form(
        "change-password", {"current_password": temporary, "new_password": "x1", "new_password_again": "x1"}
    )
    assert short.status_code == 400 and "at least 12" in short.text
    common = "password1234"
    weak = client.form(
        "change-password", {"current_password": temporary, "new_password": common, "new_password_again": common}
    )
    assert weak.status_code == 400 and "common" in weak.text
    good = client.form(
        "change-password", {"current_password": temporary, "new_password": GOOD, "new_password_again": GOOD}
    )
    assert good.status_code == 302
    assert m.hub.store().pending_step(name) is None


def missing_totp(m: Matrix) -> None:
    name, _ = m.account("reviewer")
    client = HubClient(m.hub.url)
    response = client.login(name, GOOD)
    assert response.headers["location"].endswith("/hub/totp")  # reviewers must enroll first
    assert client.hub_api("GET", "user").json()["scopes"] == []
    enrolled, secret = m.account("admin", totp=True)
    without = HubClient(m.hub.url).login(enrolled, GOOD)
    assert without.status_code == 403
    wrong = HubClient(m.hub.url).login(enrolled, GOOD, otp="000000" if pyotp.TOTP(secret).now() != "000000" else "1")
    assert wrong.status_code == 403
    admin = HubClient(m.hub.url)
    assert admin.login(enrolled, GOOD, otp=pyotp.TOTP(secret).now()).status_code == 302
    assert "admin-ui" in admin.hub_api("GET", "user").json()["scopes"]


def replayed_cookie_after_logout(m: Matrix) -> None:
    name, _ = m.account()
    client = HubClient(m.hub.url)
    assert client.login(name, GOOD).status_code == 302
    saved = {c.name: c.value for c in client.session.cookies if c.name == "jupyterhub-hub-login"}
    assert client.hub_api("GET", "user").status_code == 200
    assert client.logout().status_code == 302
    replay = requests.Session()
    for key, value in saved.items():
        replay.cookies.set(key, value, path="/hub/")
    response = replay.get(f"{m.hub.url}/hub/api/user", timeout=30)
    assert response.status_code == 403, response.text
    assert "/hub/login" in replay.get(f"{m.hub.url}/hub/home", allow_redirects=False, timeout=30).headers["location"]
    assert (name, "logout") in [(a, e) for a, e, _ in m.audit()]


def replayed_server_cookie_after_logout(m: Matrix) -> None:
    """The user server's own cookie holds an OAuth token; logout revokes it."""
    name, _ = m.account()
    client = HubClient(m.hub.url)
    assert client.login(name, GOOD).status_code == 302
    client.open_lab(name)
    saved = [(c.name, c.value, c.path) for c in client.session.cookies if c.name.startswith("jupyterhub-user-")]
    assert saved
    client.logout()
    replay = requests.Session()
    for key, value, path in saved:
        replay.cookies.set(key, value, path=path)
    response = replay.get(f"{m.hub.url}/user/{name}/api/contents", timeout=30)
    # Not served: the revoked token sends the browser back through the hub's login.
    assert response.url.startswith(f"{m.hub.url}/hub/login"), response.url
    assert "explore_consortium" not in response.text


def expired_token(m: Matrix) -> None:
    made = m.researcher.hub_api("POST", "users/demo-researcher/tokens", json={"expires_in": 2, "note": "short"})
    assert made.status_code == 201, made.text
    headers = {"Authorization": f"token {made.json()['token']}"}
    wait_for(
        lambda: requests.get(f"{m.hub.url}/hub/api/user", headers=headers, timeout=30).status_code == 403,
        what="the token to expire",
    )
    forever = m.researcher.hub_api("POST", "users/demo-researcher/tokens", json={"note": "no expiry asked"})
    assert forever.status_code == 201  # given the policy's maximum (token_max_age_days) instead
    expires = datetime.fromisoformat(forever.json()["expires_at"].replace("Z", "+00:00"))
    assert expires <= datetime.now(UTC) + timedelta(days=30, minutes=1)
    too_long = m.researcher.hub_api("POST", "users/demo-researcher/tokens", json={"expires_in": 31 * 86400})
    assert too_long.status_code == 400


def newline_in_the_login_name(m: Matrix) -> None:
    forged = "mallory\n[I 2026-01-01 00:00:00.000 JupyterHub base:1] User logged in: demo-admin"
    assert HubClient(m.hub.url).login(forged, GOOD).status_code == 403
    lines = m.hub.hub_log.read_text().splitlines()
    assert not any(line.startswith("[I 2026-01-01 00:00:00.000 JupyterHub base:1]") for line in lines)
    assert any("mallory\\n" in line for line in lines)


# ---- other users, admins ---------------------------------------------------------------------


def researcher_against_another_users_server(m: Matrix) -> None:
    for path in ("api/contents", "lab", "api/contents/explore_consortium.ipynb"):
        other = m.researcher.session.get(f"{m.hub.url}/user/demo-author/{path}", timeout=30)
        assert other.status_code in (403, 404), (path, other.status_code, other.url)
        assert "cells" not in other.text and "explore_consortium.ipynb" not in other.text
    assert m.researcher.session.get(f"{m.hub.url}/user/demo-author/api/kernels", timeout=30).status_code in (403, 404)
    assert m.researcher.hub_api("GET", "users/demo-author").status_code in (403, 404)
    assert m.researcher.hub_api("POST", "users/demo-author/tokens", json={"expires_in": 60}).status_code in (403, 404)


def researcher_against_another_users_websocket(m: Matrix) -> None:
    cookies = "; ".join(f"{c.name}={c.value}" for c in m.researcher.session.cookies)
    url = m.hub.url.replace("http", "ws", 1) + f"/user/demo-author/api/kernels/{m.author_kernel}/channels"
    with pytest.raises(websocket.WebSocketBadStatusException) as raised:
        websocket.create_connection(url, cookie=cookies, timeout=30)
    assert raised.value.status_code in (302, 403, 404)


def kernel_against_another_users_connection_file(m: Matrix) -> None:
    home = m.hub.state / "users" / "demo-author"
    text = m.run(
        "import glob, os\n"
        f"home = {str(home)!r}\n"
        "try:\n    os.listdir(home); print('listed')\nexcept PermissionError:\n    print('refused')\n"
        "try:\n    open(os.path.join(home, '.local/share/jupyter/runtime/x.json')); print('opened')\n"
        "except PermissionError:\n    print('refused')\nexcept FileNotFoundError:\n    print('reached')\n"
    )
    assert text.split() == ["refused", "refused"], text
    runtime = list((home / ".local" / "share" / "jupyter" / "runtime").glob("kernel-*.json"))
    assert runtime and all(p.stat().st_mode & 0o077 == 0 for p in runtime)


def researcher_against_admin_apis(m: Matrix) -> None:
    assert m.researcher.hub_api("GET", "users").status_code == 403
    assert m.researcher.hub_api("POST", "users/m-made-by-researcher").status_code == 403
    assert m.researcher.hub_api("DELETE", "users/demo-author/server").status_code in (403, 404)
    assert refused(m.researcher.session.get(f"{m.hub.url}/hub/admin", allow_redirects=False, timeout=30))


def admin_against_a_researchers_server(m: Matrix) -> None:
    name, secret = m.account("admin", totp=True)
    admin = HubClient(m.hub.url)
    assert admin.login(name, GOOD, otp=pyotp.TOTP(secret).now()).status_code == 302
    assert admin.hub_api("GET", "users").status_code == 200  # the admin page's list
    assert admin.session.get(f"{m.hub.url}/hub/admin", timeout=30).status_code == 200
    assert admin.hub_api("POST", "users/demo-researcher/tokens", json={"expires_in": 60}).status_code == 403
    files = admin.session.get(f"{m.hub.url}/user/demo-researcher/api/contents", allow_redirects=True, timeout=30)
    assert files.status_code == 403 and "explore_consortium" not in files.text


# ---- the user server -------------------------------------------------------------------------


def terminals(m: Matrix) -> None:
    assert m.researcher.api("demo-researcher", "GET", "terminals").status_code == 404
    assert m.researcher.api("demo-researcher", "POST", "terminals").status_code == 404


def files_handler(m: Matrix) -> None:
    url = f"{m.hub.url}/user/demo-researcher/files/explore_consortium.ipynb"
    assert m.researcher.session.get(url, timeout=30).status_code == 404
    assert m.researcher.session.get(url + "?download=1", timeout=30).status_code == 404
    view = f"{m.hub.url}/user/demo-researcher/view/explore_consortium.ipynb"
    assert m.researcher.session.get(view, timeout=30).status_code == 404


def nbconvert_export(m: Matrix) -> None:
    base = f"{m.hub.url}/user/demo-researcher/nbconvert"
    for path in ("html/explore_consortium.ipynb?download=true", "script/explore_consortium.ipynb", "html"):
        assert m.researcher.session.get(f"{base}/{path}", timeout=30).status_code == 404, path
    assert m.researcher.api("demo-researcher", "GET", "nbconvert").json() == {}


def symlinks_out_of_the_home(m: Matrix) -> None:
    state = m.hub.state
    m.run(
        "import os\n"
        f"for name, target in [('wh', {str(state / 'warehouse.db')!r}), ('uses', {str(state / 'uses')!r}), "
        "('passwd', '/etc/passwd'), ('root', '/')]:\n"
        "    if not os.path.lexists(name): os.symlink(target, name)\n"
    )
    for name in ("wh", "uses", "passwd", "root", "uses/demo-consortium"):
        response = m.researcher.api("demo-researcher", "GET", f"contents/{name}")
        assert response.status_code == 404, (name, response.status_code)
    listing = m.researcher.api("demo-researcher", "GET", "contents").json()
    names = {item["name"] for item in listing["content"]}
    assert "explore_consortium.ipynb" in names and not names & {"wh", "uses", "passwd", "root"}
    renamed = m.researcher.api("demo-researcher", "PATCH", "contents/passwd", json={"path": "passwd.txt"})
    assert renamed.status_code == 404


def raw_file_bytes(m: Matrix) -> None:
    m.run(
        "open('blob.bin', 'wb').write(bytes(range(256)) * 4)\n"
        "open('big.txt', 'w').write('x,y\\n' * 400_000)\nopen('small.csv', 'w').write('a,b\\n1,2\\n')"
    )
    for path in ("blob.bin", "blob.bin?format=base64", "big.txt", "small.csv?format=base64"):
        response = m.researcher.api("demo-researcher", "GET", f"contents/{path}")
        assert response.status_code == 403, (path, response.status_code)
    small = m.researcher.api("demo-researcher", "GET", "contents/small.csv")
    assert small.status_code == 200 and small.json()["format"] == "text"


def uploads_only_notebooks_and_text(m: Matrix) -> None:
    binary = base64.b64encode(bytes(range(256))).decode()
    up = m.researcher.api(
        "demo-researcher", "PUT", "contents/up.bin", json={"type": "file", "format": "base64", "content": binary}
    )
    assert up.status_code == 403
    text = base64.b64encode(b"notes\n").decode()
    ok = m.researcher.api(
        "demo-researcher", "PUT", "contents/up.txt", json={"type": "file", "format": "base64", "content": text}
    )
    assert ok.status_code in (200, 201)
    chunk = m.researcher.api(
        "demo-researcher",
        "PUT",
        "contents/big.bin",
        json={"type": "file", "format": "base64", "content": text, "chunk": 1},
    )
    assert chunk.status_code == 403


def notebook_writes_are_rechecked(m: Matrix) -> None:
    home = m.hub.state / "users" / "demo-researcher"
    as_file = m.researcher.api(
        "demo-researcher",
        "PUT",
        "contents/as-file.ipynb",
        json={"type": "file", "format": "text", "content": json.dumps(FORGED)},
    )
    assert as_file.status_code in (200, 201), as_file.text
    assert "FORGED" not in (home / "as-file.ipynb").read_text()
    m.run(f"open('forged.txt', 'w').write({json.dumps(json.dumps(FORGED))})")
    renamed = m.researcher.api("demo-researcher", "PATCH", "contents/forged.txt", json={"path": "renamed.ipynb"})
    assert renamed.status_code == 200, renamed.text
    stored = (home / "renamed.ipynb").read_text()
    assert "FORGED" not in stored and "did not come through the output filter" in stored
    not_a_notebook = m.researcher.api(
        "demo-researcher", "PUT", "contents/notes.txt", json={"type": "file", "format": "text", "content": "x"}
    )
    assert not_a_notebook.status_code in (200, 201)
    bad = m.researcher.api("demo-researcher", "PATCH", "contents/notes.txt", json={"path": "notes.ipynb"})
    assert bad.status_code == 400
    copied = m.researcher.api("demo-researcher", "POST", "contents", json={"copy_from": "renamed.ipynb"})
    assert copied.status_code == 201, copied.text
    assert "FORGED" not in (home / copied.json()["path"]).read_text()


def extension_manager(m: Matrix) -> None:
    url = f"{m.hub.url}/user/demo-researcher/lab/api/extensions"
    headers = {"X-XSRFToken": m.researcher._xsrf("demo-researcher")}
    install = m.researcher.session.post(
        url, json={"cmd": "install", "extension_name": "jupyterlab-git"}, headers=headers, timeout=60
    )
    assert install.status_code in (403, 404, 405, 422), install.text  # "readonly": installs are blocked
    listing = m.researcher.session.get(url, timeout=30)
    assert listing.status_code == 200
    assert m.researcher.session.get(f"{m.hub.url}/user/demo-researcher/lsp/status", timeout=30).status_code == 404


def refused_kernel_name(m: Matrix) -> None:
    direct = m.researcher.start_kernel("demo-researcher", "python3")
    assert direct.status_code == 404 and "enclave" in direct.json()["message"]
    session = m.researcher.api(
        "demo-researcher",
        "POST",
        "sessions",
        json={"path": "s.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert session.status_code == 404


def user_config_dir(m: Matrix) -> None:
    """A server configuration the kernel writes into the home is never loaded."""
    name, _ = m.account()
    client = HubClient(m.hub.url)
    assert client.login(name, GOOD).status_code == 302
    client.open_lab(name)
    kernel = client.start_kernel(name).json()["id"]
    home = m.hub.state / "users" / name
    marker = home / "config-ran"
    config = f"open({str(marker)!r}, 'w').write('ran')\nc.ServerApp.kernel_websocket_connection_class = None\n"
    code = (
        "import os\nos.makedirs('.jupyter', exist_ok=True)\n"
        f"open('.jupyter/jupyter_server_config.py', 'w').write({config!r})\n"
        "try:\n    open(os.path.join(os.environ['JUPYTER_CONFIG_DIR'], 'jupyter_server_config.py'), 'a')\n"
        "    print('writable')\nexcept PermissionError:\n    print('config dir refused')\n"
    )
    out = client.execute(name, kernel, code)
    assert "config dir refused" in out.text, out.text
    assert client.hub_api("DELETE", f"users/{name}/server").status_code in (202, 204)
    wait_for(lambda: client.hub_api("GET", f"users/{name}").json()["servers"] == {}, what="the server to stop")
    client.open_lab(name)
    kernel = client.start_kernel(name).json()["id"]
    raw = client.execute(
        name,
        kernel,
        "from jupyter_client.session import Session\nk = get_ipython().kernel\n"
        "sent = Session(key=k.session.key, username=k.session.username, session=k.session.session).send("
        "k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'AROUND'}, parent=k.get_parent())\n",
    )
    assert "AROUND" not in raw.text and "did not come through the output filter" in raw.text
    assert not marker.exists()


def enclave_user_tampering(m: Matrix) -> None:
    text = m.run(
        "import os\nfrom kernels import data\nmine = sorted(data.uses())\n"
        "os.environ['ENCLAVE_USER'] = 'demo-author'\nas_author = sorted(data.uses())\n"
        "del os.environ['ENCLAVE_USER']\nunset = sorted(data.uses())\n"
        "print(mine == as_author == unset, len(mine) > 0)"
    )
    assert "True True" in text, text


def kernel_reads_private_state(m: Matrix) -> None:
    state = m.hub.state
    paths = [
        state / "warehouse.db",
        state / "accounts.db",
        state / "audit.db",
        state / "secrets" / "student-key",
        state / "secrets" / "cookie-secret",
        state / "hub" / "jupyterhub.sqlite",
        state / "logs" / "hub.log",
        state / "demo" / "credentials.txt",
        state / "users" / "demo-author" / "explore_consortium.ipynb",
    ]
    author_only = [
        u
        for u in (state / "uses").iterdir()
        if u.name.startswith("own-") and "demo-author" in (u / "manifest.json").read_text()
    ]
    paths += [next(author_only[0].glob("*.parquet"))]
    text = m.run(
        "import os\nfor p in " + repr([str(p) for p in paths]) + ":\n"
        "    try:\n        open(p, 'rb').read(1); print('READ', p)\n"
        "    except PermissionError:\n        print('refused')\n"
        "print('uid', os.getuid(), os.geteuid())"
    )
    assert "READ" not in text, text
    uid = int(re.search(r"uid (\d+) (\d+)", text).group(1))
    assert uid not in (0, os.geteuid()) and pwd.getpwuid(uid).pw_name.startswith("enc-")


def hub_state_is_private(m: Matrix) -> None:
    for name in ("hub/jupyterhub.sqlite", "logs/hub.log", "accounts.db", "secrets/cookie-secret"):
        assert (m.hub.state / name).stat().st_mode & 0o077 == 0, name
    for name in ("hub", "logs", "secrets"):
        assert (m.hub.state / name).stat().st_mode & 0o077 == 0, name


ROWS = [
    # logins and sessions
    ("unauthenticated: hub API 403, server and pages send to the login", unauthenticated),
    ("wrong password: 403, same message for an unknown name, audited", wrong_password),
    ("locked: 5 failures lock for 15 minutes, even the right password fails", locked_after_five_failures),
    ("expired password: logs in only to change it, no scope until then", expired_password_logs_in_only_to_change_it),
    ("disabled: login, cookie and API token all refused", disabled_account),
    ("temporary password: changed at first login, rules enforced", temporary_password_is_changed_at_first_login),
    ("missing TOTP: reviewer must enroll; admin needs the right code", missing_totp),
    ("replayed hub cookie after logout: refused", replayed_cookie_after_logout),
    ("replayed server cookie after logout: refused", replayed_server_cookie_after_logout),
    ("expired token: refused; tokens without or past the maximum lifetime refused", expired_token),
    ("newline in the login name: no forged log line", newline_in_the_login_name),
    # other users and admins
    ("researcher -> another user's server and API: refused", researcher_against_another_users_server),
    ("researcher -> another user's kernel websocket: refused", researcher_against_another_users_websocket),
    ("researcher's kernel -> another user's connection files: refused", kernel_against_another_users_connection_file),
    ("researcher -> admin APIs and page: refused", researcher_against_admin_apis),
    ("admin -> a researcher's server and tokens: refused", admin_against_a_researchers_server),
    # the user server
    ("terminals: 404", terminals),
    ("/files/ and /view/: 404", files_handler),
    ("nbconvert export and ?download=true: 404", nbconvert_export),
    ("symlinks out of the home: not served, listed or renamed", symlinks_out_of_the_home),
    ("raw file bytes: binary, base64 and large files refused", raw_file_bytes),
    ("uploads: only notebooks and text", uploads_only_notebooks_and_text),
    ("notebook written as a file, renamed or copied: re-checked", notebook_writes_are_rechecked),
    ("extension manager read-only, jupyter-lsp not loaded", extension_manager),
    ("refused kernel name: 404 for kernels and sessions", refused_kernel_name),
    ("user config dir: a config in the home is never loaded", user_config_dir),
    ("ENCLAVE_USER tampering: the uses stay the account's", enclave_user_tampering),
    (
        "kernel -> warehouse, secrets, accounts, hub state, other homes and extracts: refused",
        kernel_reads_private_state,
    ),
    ("hub state (database, log, secrets): private from the first start", hub_state_is_private),
    ("idle culler: a hub service with the policy's timeout", idle_culler),
]


@pytest.mark.skipif(os.geteuid() != 0, reason="per-user system accounts need root (CI runs as root)")
@pytest.mark.parametrize("row", [pytest.param(check, id=label) for label, check in ROWS])
def test_security_matrix(m, row):
    row(m)
