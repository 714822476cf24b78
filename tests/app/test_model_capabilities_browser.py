"""A new person on the shipped catalog (the embedded Gemma 270M, which cannot call tools), in
Chromium: the shipped data analyst says in one sentence what it needs instead of answering
from its instructions, and the Agent Builder refuses that pairing to a builder, saying why."""

import pytest
from playwright.sync_api import Page, expect

from hub.core.config import Settings
from tests.app.conftest import REPO_ROOT, ChatApp, sign_in
from tests.conftest import RunningHub
from tests.support.analyst import AnalystSetup

pytestmark = pytest.mark.browser

FIRST_STARTER = "Which category was the most popular over the past 10 days?"


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    """The catalog `make run` starts with."""
    return hub_settings.model_copy(update={"catalog_path": REPO_ROOT / "models.yaml"})


def test_the_analyst_on_the_embedded_model_says_it_needs_one_that_calls_tools(
    page: Page, hub: RunningHub, chat_app: ChatApp, chat_user: str, analyst: AnalystSetup
) -> None:
    sign_in(page, chat_app, chat_user)
    page.locator("#chat-profiles").click()
    page.locator('[data-test="select-item:agent:data-analyst"]').click()
    expect(page.locator("#chat-profiles")).to_contain_text("Data analyst")
    page.locator("#starters").get_by_text(FIRST_STARTER).click()

    answer = page.locator(".message-content").filter(has_text="I need a model that can call")
    # The sentence, then the link to the run's trace.
    expect(answer.first).to_contain_text(
        "I need a model that can call tools, and gemma-3-270m cannot: an admin adds such a "
        "model to the hub's model catalog (models.yaml), and the agent's owner picks it."
    )
    expect(page.locator(".message-content").filter(has_text="SELECT")).to_have_count(0)

    # In the Agent Builder the model says so, and a tool-using agent on it is refused.
    page.goto(f"{hub.url}/agents/new")
    expect(page.locator("#model option")).to_have_text(["gemma-3-270m (cannot call tools)"])
    page.locator("#name").fill("Sales helper")
    page.locator("#slug").fill("sales-helper")
    page.locator('input[name="servers"][value="bigquery"]').check()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("alert")).to_have_text(
        "The model 'gemma-3-270m' cannot call tools, and the agent uses MCP servers: no model "
        "in the catalog can; an admin adds one to the hub's model catalog, or take the "
        "servers out."
    )
    nothing_made = page.goto(f"{hub.url}/agents/sales-helper")
    assert nothing_made is not None and nothing_made.status == 404
