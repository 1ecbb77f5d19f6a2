"""Institutional single sign-on through a real hub against a fake OpenID Connect provider
(tests/fake_oidc.py, in this process on 127.0.0.1): only provisioned, active accounts of the
provider's institutions get in, and nothing is created at login."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import running_hub
from tests.fake_oidc import FakeProvider

pytestmark = pytest.mark.e2e
GOOD = "plum-cider-walnut-42"


@pytest.fixture(scope="module")
def provider():
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def sso_hub(demo_var, provider):
    top = Path(tempfile.mkdtemp(prefix="enclave-sso-", dir="/tmp"))
    top.chmod(0o711)
    members = json.loads((demo_var / "demo" / "manifest.json").read_text())["members"]
    cc = next(m["code"] for m in members if m["segment"] == "cc")
    univ = next(m["code"] for m in members if m["segment"] == "univ")
    config = top / "sso.toml"
    config.write_text(provider.config([cc]))
    try:
        with running_hub(demo_var, top, {"ENCLAVE_SSO": str(config)}) as running:
            for name, code in (("sso-alice", cc), ("sso-bob", cc), ("sso-uma", univ)):
                made = running.enclave(
                    "user", "add", name, "--role", "researcher", "--institution", code, "--password-stdin", input=GOOD
                )
                assert made.returncode == 0, made.stderr
            assert running.enclave("user", "disable", "sso-bob", "--yes").returncode == 0
            running.cc = cc
            yield running
    finally:
        shutil.rmtree(top, ignore_errors=True)


def sso_login(hub, provider, person: str) -> tuple[requests.Session, requests.Response]:
    provider.person = person
    session = requests.Session()
    response = session.get(f"{hub.url}/hub/oauth_login?next=/hub/home", timeout=60)
    return session, response


def test_the_login_page_offers_the_institution(sso_hub):
    page = requests.get(f"{sso_hub.url}/hub/login", timeout=30)
    assert "Fake University" in page.text and "oauth_login" in page.text


def test_a_provisioned_account_logs_in_with_its_roles(sso_hub, provider):
    session, response = sso_login(sso_hub, provider, "sso-alice")
    assert response.status_code == 200 and response.url == f"{sso_hub.url}/hub/home", response.url
    me = session.get(f"{sso_hub.url}/hub/api/user", timeout=30).json()
    assert me["name"] == "sso-alice" and set(me["groups"]) == {"role-researcher", f"institution-{sso_hub.cc}"}
    assert me["admin"] is False


@pytest.mark.parametrize(
    ("person", "reason"),
    [
        pytest.param("sso-nobody", "no provisioned account", id="unknown-identity-no-self-registration"),
        pytest.param("sso-bob", "account disabled", id="disabled-account"),
        pytest.param("sso-uma", "not to this provider's", id="account-of-another-institution"),
        pytest.param("Not A Name\n", "invalid username", id="identity-that-is-no-enclave-name"),
    ],
)
def test_other_identities_are_refused(sso_hub, provider, person, reason):
    session, response = sso_login(sso_hub, provider, person)
    assert response.status_code == 403
    assert session.get(f"{sso_hub.url}/hub/api/user", timeout=30).status_code == 403
    assert reason in sso_hub.hub_log.read_text()
    if person == "sso-nobody":
        assert sso_hub.store().get("sso-nobody") is None


def test_sso_logout_ends_the_session(sso_hub, provider):
    session, _ = sso_login(sso_hub, provider, "sso-alice")
    saved = session.cookies.get("jupyterhub-hub-login", path="/hub/")
    session.get(f"{sso_hub.url}/hub/logout", timeout=30)
    replay = requests.Session()
    replay.cookies.set("jupyterhub-hub-login", saved, path="/hub/")
    assert replay.get(f"{sso_hub.url}/hub/api/user", timeout=30).status_code == 403


@pytest.mark.browser
def test_sso_login_in_the_browser(sso_hub, provider, browser, tmp_path):
    provider.person = "sso-alice"
    page = browser
    page.goto(f"{sso_hub.url}/hub/login")
    page.click("text=Sign in with Fake University")
    page.wait_for_url(lambda url: "/hub/login" not in url and "/authorize" not in url, timeout=120_000)
    page.screenshot(path=str(tmp_path / "sso.png"))
    assert page.url.startswith(sso_hub.url) and ("/user/sso-alice" in page.url or "/hub/spawn" in page.url), page.url
