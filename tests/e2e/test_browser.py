"""A real browser logs in through the hub and reaches JupyterLab with only the secure kernel."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
NEW_PASSWORD = "plum-cider-walnut-42"


def log_in(page, hub, name: str, password: str) -> None:
    """Fill in and submit the hub's login form."""
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")


def test_author_logs_in_and_reaches_jupyterlab(hub, browser, tmp_path):
    page = browser
    log_in(page, hub, "demo-author", hub.passwords["demo-author"])

    page.wait_for_url("**/user/demo-author/lab**", timeout=120_000)
    launcher = page.locator(".jp-Launcher")
    launcher.wait_for(timeout=120_000)
    page.wait_for_selector(".jp-LauncherCard", timeout=60_000)
    page.screenshot(path=str(tmp_path / "jupyterlab.png"))

    cards = page.locator(".jp-LauncherCard").all_inner_texts()
    assert any("Python 3 (Enclave)" in card for card in cards), cards
    assert not any("Terminal" in card for card in cards), cards
    assert (tmp_path / "jupyterlab.png").stat().st_size > 10_000


def test_wrong_password_shows_the_login_error(hub, browser):
    page = browser
    log_in(page, hub, "demo-author", "wrong password, certainly")
    page.wait_for_selector("text=Invalid username or password", timeout=30_000)


def test_researcher_runs_the_example_notebook(hub, browser, tmp_path):
    page = browser
    log_in(page, hub, "demo-researcher", hub.passwords["demo-researcher"])
    page.wait_for_url("**/user/demo-researcher/lab**", timeout=120_000)

    page.goto(f"{hub.url}/user/demo-researcher/lab/tree/explore_consortium.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    blocked = page.locator(".jp-OutputArea-output", has_text="Blocked: record-level data")
    blocked.first.wait_for(timeout=120_000)
    page.locator(".jp-OutputArea-output", has_text="DisclosureError").first.wait_for(timeout=120_000)
    page.locator(".enclave-note", has_text="suppressed").first.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "notebook.png"))
    note = page.locator(".enclave-note", has_text="suppressed").first.inner_text()
    assert "fewer than 10 records" in note

    # Saving goes through the server's re-check: every output the browser shows passed it.
    page.keyboard.press("Control+s")
    saved = hub.state / "users" / "demo-researcher" / "explore_consortium.ipynb"
    page.locator(".jp-Notebook").click()
    deadline = time.monotonic() + 30
    while "enclave-note" not in saved.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    stored = saved.read_text()
    assert "enclave-note" in stored and "Blocked: record-level data" in stored
    assert "did not come through the output filter" not in stored


def test_a_temporary_password_must_be_changed_in_the_browser(hub, browser, tmp_path):
    code = hub.store().get("demo-researcher").institution
    made = hub.enclave("user", "add", "b-temp", "--role", "researcher", "--institution", code)
    assert made.returncode == 0, made.stderr
    temporary = re.search(r"Password \(shown once, not stored\): (\S+)", made.stdout).group(1)
    page = browser
    log_in(page, hub, "b-temp", temporary)
    page.wait_for_url("**/hub/change-password", timeout=60_000)
    assert "temporary" in page.locator("#pending-step").inner_text()
    page.fill("#current_password", temporary)
    page.fill("#new_password", "password1234")
    page.fill("#new_password_again", "password1234")
    page.click("#change_submit")
    assert "too common" in page.locator("#password-error").inner_text()
    page.fill("#current_password", temporary)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#new_password_again", NEW_PASSWORD)
    page.click("#change_submit")
    page.wait_for_url("**/user/b-temp/lab**", timeout=120_000)
    page.screenshot(path=str(tmp_path / "after-change.png"))
    assert hub.store().pending_step("b-temp") is None


def test_totp_enrollment_with_the_qr_code_then_login_with_a_code(hub, browser, tmp_path):
    made = hub.enclave("user", "add", "b-admin", "--role", "admin", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    page = browser
    log_in(page, hub, "b-admin", NEW_PASSWORD)
    page.wait_for_url("**/hub/totp", timeout=60_000)
    qr = page.locator("#totp-qr")
    qr.wait_for(timeout=30_000)
    assert qr.evaluate("image => image.naturalWidth") > 100  # the QR code drew
    page.screenshot(path=str(tmp_path / "totp.png"))
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("#totp_code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("#totp_submit")
    assert "not right" in page.locator("#totp-error").inner_text()
    page.fill("#totp_code", pyotp.TOTP(secret).now())
    page.click("#totp_submit")
    page.wait_for_url(lambda url: "/hub/totp" not in url, timeout=60_000)
    assert hub.store().status("b-admin").totp
    page.goto(f"{hub.url}/hub/logout")
    # The next login needs a code of a later time step (a code is good once).
    step = int(time.time()) // 30
    deadline = time.monotonic() + 40
    while int(time.time()) // 30 == step and time.monotonic() < deadline:
        time.sleep(0.5)  # waiting for the next TOTP time step: a condition, bounded
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "b-admin")
    page.fill("input[name=password]", NEW_PASSWORD)
    page.fill("input[name=otp]", pyotp.TOTP(secret).now())
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(lambda url: "/hub/login" not in url, timeout=60_000)
    assert "/hub/totp" not in page.url and "/hub/change-password" not in page.url
