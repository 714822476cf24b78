"""A builder starts a run from the form in Chromium, sees its estimate before "Start", and
watches its progress bar move and the run finish without reloading the page."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.evaluation import (
    make_test_set,
    make_tickets_prompt,
    scripted_reply,
    ticket_cases,
)
from tests.support.owners import as_service
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CASES = 40


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_a_run_started_from_the_form_shows_its_progress_as_it_runs(
    hub: RunningHub, upstream: ScriptedUpstream, page: Page
) -> None:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(CASES), team="qa")
    upstream.reply_for = scripted_reply
    # Slow enough that the page is open well before the run ends.
    upstream.script(delay_s=0.25)
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(
            session=session, username="ben", password="pw-ben", team="qa", role=Role.builder
        )
    with as_service(hub, hub.new_service("qa-bot", team="qa")) as qa:
        make_tickets_prompt(qa)

    page.goto(f"{hub.url}/login")
    page.fill("input[name=username]", "ben")
    page.fill("input[name=password]", "pw-ben")
    page.locator("button[type=submit]").last.click()
    page.goto(f"{hub.url}/evaluation/runs/new?set=tickets&prompt=tickets")
    page.check("input[value=contains]")
    page.select_option("#judge_model", "test-model")
    page.fill("#rubric", "The answer names the ticket's number.")
    page.fill("#concurrency", "2")
    page.click("#estimate-button")
    expect(page.locator("#estimate")).to_contain_text(f"for {CASES} cases")
    assert upstream.hits == 0

    page.click("#start-button")
    page.wait_for_url("**/evaluation/runs/*")
    shown_at_load = int(page.eval_on_selector("#progress-bar", "bar => bar.value"))
    assert shown_at_load < CASES
    page.wait_for_function(
        f"document.getElementById('progress-bar').value > {shown_at_load}", timeout=30_000
    )
    expect(page.locator("#status")).to_have_text("finished", timeout=60_000)
    expect(page.locator("#progress-text")).to_contain_text(f"{CASES} of {CASES} cases answered")
    expect(page.locator("#finished-note")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel the run")).to_have_count(0)
