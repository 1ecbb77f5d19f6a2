"""The release review through the real hub: the service page at /services/release/ behind
hub OAuth, a reviewer approving in a real browser (Playwright, Debian chromium), the kernels'
filter events and an admin's action on another user reaching the audit log."""

from __future__ import annotations

import time

import pyotp
import pytest

from tests.e2e.hub_client import HubClient

pytestmark = [pytest.mark.e2e]
PASSWORD = "juniper-harbor-lantern-77"  # the reviewers' own, and the admin made for the admin-action test


def wait_for(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def members(hub) -> list[str]:
    from warehouse.db import connect
    from warehouse.institutions import list_institutions

    engine = connect(f"sqlite:///{hub.state / 'warehouse.db'}")
    try:
        return [m.code for m in list_institutions(engine)]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def review(hub, tmp_path_factory):
    """A release request of a count table by demo-researcher, approved on the command line by
    the reviewers of every member but demo-reviewer's, each proving its account (password and
    second factor on standard input); the file mentions demo-reviewer's institution by its code."""
    own = hub.store().get("demo-reviewer").institution
    codes = members(hub)
    institution = {f"rev-{c.lower()}": c for c in codes if c != own}
    reviewers = list(institution)
    accounts = tmp_path_factory.mktemp("accounts") / "reviewers.csv"
    accounts.write_text("name,role,institution\n" + "".join(f"{r},reviewer,{c}\n" for r, c in institution.items()))
    made = hub.enclave("user", "import", str(accounts), "--yes")
    assert made.returncode == 0, made.stderr
    # What each reviewer does at the first login: their own password, an authenticator app.
    store, secrets = hub.store(), {}
    for name in reviewers:
        store.change_password(name, PASSWORD)
        secrets[name] = pyotp.random_base32()
        store.set_totp(name, secrets[name])
    table = tmp_path_factory.mktemp("report") / "college_going.csv"
    table.write_text("institution,students,rate %\n" + "".join(f"{c},{40 + i},{50 + i}\n" for i, c in enumerate(codes)))
    researcher = ["--as", "demo-researcher", "--password-stdin"]
    made = hub.enclave(
        "release",
        "request",
        str(table),
        "--purpose",
        "county board brief",
        *researcher,
        input=hub.passwords["demo-researcher"] + "\n",
    )
    assert made.returncode == 0, made.stderr + made.stdout
    assert "is in_review" in made.stdout, made.stdout
    request_id = int(made.stdout.split()[1])
    guessed = hub.enclave("release", "approve", str(request_id), "--as", reviewers[0], "--password-stdin", input="x\n")
    assert guessed.returncode == 1 and f"could not sign in as {reviewers[0]}" in guessed.stderr, guessed.stderr
    for name in reviewers:
        proof = f"{PASSWORD}\n{pyotp.TOTP(secrets[name]).now()}\n"
        done = hub.enclave("release", "approve", str(request_id), "--as", name, "--password-stdin", input=proof)
        assert done.returncode == 0, done.stderr
    logins = [e for e in hub.audit() if e.event.startswith("login.") and e.details.get("source", "").startswith("cli:")]
    assert (logins[1].actor, logins[1].event) == (reviewers[0], "login.failure")
    assert {e.actor for e in logins if e.event == "login.success"} == {"demo-researcher", *reviewers}
    return request_id, own, codes


def test_the_review_page_needs_a_hub_login(hub, review):
    import requests

    response = requests.get(f"{hub.url}/services/release/", allow_redirects=False, timeout=30)
    assert response.status_code == 302 and "/hub/api/oauth2/authorize" in response.headers["location"]


def test_a_reviewer_approves_in_the_browser_and_the_file_is_released(hub, review, browser, tmp_path):
    request_id, own, codes = review
    secret = pyotp.random_base32()
    hub.store().set_totp("demo-reviewer", secret)  # reviewers need a second factor
    page = browser
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "demo-reviewer")
    page.fill("input[name=password]", hub.passwords["demo-reviewer"])
    page.fill("input[name=otp]", pyotp.TOTP(secret).now())
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(lambda url: "/hub/login" not in url, timeout=60_000)

    page.goto(f"{hub.url}/services/release/")
    page.locator("#waiting").wait_for(timeout=60_000)
    page.locator("#waiting a", has_text=f"Request {request_id}").click()
    page.locator("#decide").wait_for(timeout=30_000)
    # Side by side: the code inside the consortium, the neutral label in what leaves.
    original = page.locator(".pane.original").first.inner_text()
    outgoing = page.locator(".pane.outgoing").first.inner_text()
    assert own in original and own not in outgoing
    assert not any(code in outgoing for code in codes)
    assert "community college A" in outgoing or "university A" in outgoing
    page.screenshot(path=str(tmp_path / "review-before.png"), full_page=True)

    page.fill("#comment", "fine for the county board")
    page.click("#approve")
    page.locator("#message").wait_for(timeout=30_000)
    assert page.locator("#status").inner_text() == "released"
    page.screenshot(path=str(tmp_path / "review-after.png"), full_page=True)
    assert (tmp_path / "review-before.png").stat().st_size > 20_000

    area = hub.state / "release" / "released" / str(request_id)
    assert (area / "college_going.csv").exists() and (area / "SHA256SUMS").exists()
    decisions = [e for e in hub.audit() if e.event == "release.decide" and e.details["request"] == request_id]
    web = [e for e in decisions if e.actor == "demo-reviewer"]
    assert web and web[0].details["via"] == "web" and web[0].details["institution"] == own
    assert len(decisions) == len(codes)


def test_only_the_requester_downloads_the_released_file(hub, review):
    request_id, *_ = review
    researcher = HubClient(hub.url)
    assert researcher.login("demo-researcher", hub.passwords["demo-researcher"]).status_code == 302
    url = f"{hub.url}/services/release/requests/{request_id}/files/college_going.csv"
    wait_for(lambda: "released" in hub.enclave("release", "show", str(request_id)).stdout, what="the release")
    got = researcher.session.get(url, timeout=60)
    assert got.status_code == 200, got.text[:500]
    assert b"institution,students" in got.content
    assert b"college A" in got.content or b"university A" in got.content
    author = HubClient(hub.url)
    assert author.login("demo-author", hub.passwords["demo-author"]).status_code == 302
    other = author.session.get(url, timeout=60)
    assert other.status_code == 403


def test_kernel_filter_events_reach_the_audit_through_the_server(hub):
    client = HubClient(hub.url)
    assert client.login("demo-researcher", hub.passwords["demo-researcher"]).status_code == 302
    client.open_lab("demo-researcher")
    kernel_id = client.start_kernel("demo-researcher").json()["id"]
    out = client.execute("demo-researcher", kernel_id, "from kernels import data\ndf = data.load('k12_enrollment')\ndf")
    assert "Blocked: record-level data" in out.text
    assert "status" in {m["header"]["msg_type"] for m in out.messages}  # the client saw every message
    assert "enclave_event" not in {m["header"]["msg_type"] for m in out.messages}  # never to a browser

    def recorded():
        # This kernel's events (other tests' kernels of demo-researcher report too).
        found = {
            e.event: e
            for e in hub.audit()
            if e.actor == "demo-researcher" and e.event.startswith("kernel.") and e.details.get("kernel") == kernel_id
        }
        return found if {"kernel.data.load", "kernel.output.blocked"} <= set(found) else None

    found = wait_for(recorded, what="the kernel's events in the audit log")
    assert found["kernel.data.load"].details["table"] == "k12_enrollment"
    assert found["kernel.output.blocked"].details["rule"] == "record-level data"


def test_a_forged_kernel_event_is_recorded_under_the_servers_own_user(hub):
    """Even a kernel that sends its own events speaks only for its user."""
    client = HubClient(hub.url)
    assert client.login("demo-author", hub.passwords["demo-author"]).status_code == 302
    client.open_lab("demo-author")
    kernel_id = client.start_kernel("demo-author").json()["id"]
    code = (
        "k = get_ipython().kernel\n"
        "k.session.send(k.iopub_socket, 'enclave_event', {'event': 'tamper', 'details': "
        "{'what': 'forged', 'actor': 'demo-admin'}}, parent=k.get_parent())"
    )
    client.execute("demo-author", kernel_id, code)
    found = wait_for(
        lambda: [e for e in hub.audit() if e.event == "kernel.tamper" and e.details.get("what") == "forged"],
        what="the forged event",
    )
    assert found[-1].actor == "demo-author" and "actor" not in found[-1].details


def test_an_admin_starting_another_users_server_is_recorded(hub):
    name = "rel-admin"
    made = hub.enclave("user", "add", name, "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    secret = pyotp.random_base32()
    hub.store().set_totp(name, secret)
    admin = HubClient(hub.url)
    assert admin.login(name, PASSWORD, otp=pyotp.TOTP(secret).now()).status_code == 302
    admin.hub_api("DELETE", "users/demo-author/server")
    started = admin.hub_api("POST", "users/demo-author/server")
    assert started.status_code in (201, 202), started.text
    events = wait_for(
        lambda: [e for e in hub.audit() if e.actor == name and e.event == "hub.admin.server.start"],
        what="the admin action",
    )
    assert events[-1].details["status"] in (201, 202)
    assert all(e.details["user"] == "demo-author" for e in events)
