"""Hub state, accounts and the audit log on PostgreSQL (the scale-out configuration), through a
real hub: the throwaway server of tests/postgres.py holds JupyterHub's own database
(ENCLAVE_HUB_DB_URL), the account store and the audit log."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.e2e.conftest import running_hub
from tests.e2e.hub_client import HubClient

pytestmark = pytest.mark.e2e
GOOD = "plum-cider-walnut-42"


@pytest.fixture(scope="module")
def pg_hub(demo_var, postgres_server):
    urls = {name: postgres_server.create_database(empty=True) for name in ("hub", "accounts", "audit")}
    top = Path(tempfile.mkdtemp(prefix="enclave-pg-", dir="/tmp"))
    top.chmod(0o711)
    env = {
        "ENCLAVE_HUB_DB_URL": urls["hub"],
        "ENCLAVE_ACCOUNTS_URL": urls["accounts"],
        "ENCLAVE_AUDIT_URL": urls["audit"],
    }
    try:
        with running_hub(demo_var, top, env) as running:
            code = running.store().get("demo-researcher").institution  # from the demo's SQLite store
            made = running.enclave(
                "user", "add", "pg-ann", "--role", "researcher", "--institution", code, "--password-stdin", input=GOOD
            )
            assert made.returncode == 0, made.stderr
            running.urls = urls
            yield running
    finally:
        shutil.rmtree(top, ignore_errors=True)
        for url in urls.values():
            postgres_server.drop_database(url)


def test_login_logout_and_lockout_with_everything_on_postgresql(pg_hub):
    client = HubClient(pg_hub.url)
    assert client.login("pg-ann", GOOD).status_code == 302
    assert client.hub_api("GET", "user").json()["groups"][0] == "role-researcher"
    hub_db = create_engine(pg_hub.urls["hub"])
    with hub_db.connect() as conn:
        before = conn.execute(text("SELECT cookie_id FROM users WHERE name = 'pg-ann'")).scalar()
    saved = client.session.cookies.get("jupyterhub-hub-login", path="/hub/")
    client.logout()
    with hub_db.connect() as conn:
        after = conn.execute(text("SELECT cookie_id FROM users WHERE name = 'pg-ann'")).scalar()
    assert before and after and before != after  # logout rotated the cookie id in PostgreSQL
    replay = requests.Session()
    replay.cookies.set("jupyterhub-hub-login", saved, path="/hub/")
    assert replay.get(f"{pg_hub.url}/hub/api/user", timeout=30).status_code == 403
    for _ in range(5):
        HubClient(pg_hub.url).login("pg-ann", "not the password at all")
    assert HubClient(pg_hub.url).login("pg-ann", GOOD).status_code == 403
    with create_engine(pg_hub.urls["audit"]).connect() as conn:
        kinds = [row[0] for row in conn.execute(text("SELECT event FROM audit_events ORDER BY id"))]
    assert {"user.add", "login.success", "logout", "login.failure", "login.lockout"} <= set(kinds)
    with create_engine(pg_hub.urls["accounts"]).connect() as conn:
        assert conn.execute(text("SELECT locked_until IS NOT NULL FROM accounts WHERE name = 'pg-ann'")).scalar()
