"""A researcher runs the no-code explorer in JupyterLab through the real hub, in a real browser."""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def shown_tables(page) -> list[str]:
    return page.locator(".jp-OutputArea-output table").all_inner_texts()


def test_the_explorer_updates_its_table_and_shows_suppression(hub, browser, tmp_path):
    page = browser
    log_in(page, hub, "demo-researcher", hub.passwords["demo-researcher"])
    page.wait_for_url("**/user/demo-researcher/lab**", timeout=120_000)

    page.goto(f"{hub.url}/user/demo-researcher/lab/tree/explorer.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    breakdown = page.locator(".widget-dropdown", has_text="Break down by").locator("select")
    breakdown.wait_for(timeout=180_000)
    page.locator(".jp-OutputArea-output", has_text="Rate by year of high-school completion").first.wait_for(
        timeout=180_000
    )
    page.locator(".jp-OutputArea-output", has_text="Cohort (denominator)").first.wait_for(timeout=180_000)
    before = shown_tables(page)
    assert before and "Gender" not in "".join(before)
    page.screenshot(path=str(tmp_path / "explorer-first.png"), full_page=True)

    breakdown.select_option(label="Gender")
    page.locator(".jp-OutputArea-output", has_text="By gender").first.wait_for(timeout=120_000)
    page.locator(".enclave-note", has_text="suppressed").first.wait_for(timeout=120_000)
    after = shown_tables(page)
    assert after != before and any("Gender" in t and "Non-binary" in t for t in after)
    # The demo's non-binary completers are too few for a rate: the small cell shows the mark.
    rates = next(t for t in after if "Non-binary" in t)
    row = next(line for line in rates.splitlines() if line.startswith("Non-binary"))
    assert "*" in row
    note = page.locator(".enclave-note", has_text="suppressed").first.inner_text()
    assert "fewer than 10 records" in note
    page.locator(".jp-OutputArea-output", has_text="What the filter suppressed here").first.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    assert (tmp_path / "explorer.png").stat().st_size > 20_000
