"""A hub where per-user accounts cannot work refuses to spawn, and says why; behind TLS its
cookies are Secure and its pages carry the security headers.

The state sits under a directory other accounts cannot pass (mode 700), as an interpreter
under /root would; ENCLAVE_ISOLATION is not set, so nothing allows a fallback.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import psutil
import pyotp
import pytest
import requests

from tests.e2e.conftest import running_hub
from tests.e2e.hub_client import HubClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the hub refuses only as root here; as another user it is off"),
]
PUBLIC = "https://enclave.example.org"


@pytest.fixture(scope="module")
def closed(demo_var):
    top = Path(tempfile.mkdtemp(prefix="enclave-closed-", dir="/tmp"))
    top.chmod(0o711)
    locked = top / "locked"
    locked.mkdir(mode=0o700)
    try:
        with running_hub(demo_var, locked, {"ENCLAVE_PUBLIC_URL": PUBLIC}) as running:
            running.locked = locked
            yield running
    finally:
        shutil.rmtree(top, ignore_errors=True)


def insecure_copy(client: HubClient) -> None:
    """The test talks plain HTTP to 127.0.0.1 behind an imagined TLS proxy: keep sending the
    Secure cookies the hub set (a browser would, over https)."""
    for cookie in list(client.session.cookies):
        cookie.secure = False


def test_the_spawn_is_refused_with_the_directory_and_its_mode(closed):
    client = HubClient(closed.url)
    response = client.login("demo-researcher", closed.passwords["demo-researcher"])
    assert response.status_code == 302
    insecure_copy(client)
    client.session.get(f"{closed.url}/hub/spawn/demo-researcher", timeout=60)
    page = client.session.get(f"{closed.url}/hub/spawn-pending/demo-researcher", timeout=60)
    reason = f"other accounts cannot pass {closed.locked} (mode 700; chmod o+x {closed.locked})"
    assert reason in page.text
    assert reason in closed.hub_log.read_text()  # the hub log says it too
    servers = [
        p for p in psutil.process_iter(["cmdline"]) if "jupyterhub-singleuser" in " ".join(p.info["cmdline"] or [])
    ]
    assert not [p for p in servers if _state_of(p) == str(closed.state)]


def _state_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("ENCLAVE_VAR")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def test_the_admin_page_shows_the_reason(closed):
    secret = pyotp.random_base32()
    closed.store().set_totp("demo-admin", secret)
    admin = HubClient(closed.url)
    assert admin.login("demo-admin", closed.passwords["demo-admin"], otp=pyotp.TOTP(secret).now()).status_code == 302
    insecure_copy(admin)
    page = admin.session.get(f"{closed.url}/hub/admin", timeout=30)
    assert page.status_code == 200
    assert "User servers are refused" in page.text and str(closed.locked) in page.text


def test_behind_tls_cookies_are_secure_and_pages_carry_security_headers(closed):
    client = HubClient(closed.url)
    response = client.login("demo-author", closed.passwords["demo-author"])
    cookies = response.headers.get("Set-Cookie", "")
    assert "jupyterhub-hub-login=" in cookies
    login_cookie = next(part for part in cookies.split(", jupyterhub") if "hub-login" in part)
    assert "Secure" in login_cookie and "SameSite=Lax" in login_cookie and "HttpOnly" in login_cookie
    expires = parsedate_to_datetime(re.search(r"expires=([^;]+)", login_cookie).group(1))
    hours = (expires - datetime.now(UTC)).total_seconds() / 3600
    assert 11.9 < hours <= 12.01  # [accounts] session_hours
    page = requests.get(f"{closed.url}/hub/login", timeout=30)
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_var_is_private_before_any_spawn(closed):
    for name in ("hub/jupyterhub.sqlite", "logs/hub.log"):
        assert (closed.state / name).stat().st_mode & 0o077 == 0, name
