"""A real browser logs in through the hub and reaches JupyterLab with only the secure kernel."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


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
