"""A chat with a model runs on the agent runtime, as an agent's does, in a real browser: its
tool calls show as steps, its run has a trace on the hub's trace pages, and with the warehouse
switched on it asks before a query over the person's threshold."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.turns import TRACE_LINK
from hub.seed import HANDBOOK, register_server
from mcp_servers.bigquery.emulator import EmulatorProcess
from tests.app.conftest import PASSWORD, ChatApp, send, sign_in
from tests.conftest import RunningHub
from tests.support.analyst import CATEGORY_POSTS_SQL, AnalystSetup, expected_category_posts
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser


def _switch_on(page: Page, slug: str, label: str) -> None:
    page.locator("#chat-settings-open-modal").click()
    switch = page.locator(f'[id="mcp:{slug}"]')
    expect(switch).to_be_visible()
    expect(page.get_by_text(label).first).to_be_visible()
    switch.click()
    page.get_by_role("button", name="Confirm").click()
    expect(switch).to_be_hidden()


def test_a_model_chat_with_the_handbook_shows_its_steps_and_has_a_trace(
    page: Page,
    hub: RunningHub,
    chat_app: ChatApp,
    chat_user: str,
    upstream: ScriptedUpstream,
    served_handbook: str,
    tmp_path: Path,
) -> None:
    token = hub.new_service("platform-setup", team="platform")
    assert register_server(hub.url, token, HANDBOOK, served_handbook) == "registered"
    call = {"name": "handbook__search_handbook", "arguments": {"query": "hotel nightly cap"}}
    upstream.enqueue(tool_calls=[call])
    upstream.script(reply="The handbook caps hotels per night.")
    sign_in(page, chat_app, chat_user)
    _switch_on(page, "handbook", HANDBOOK["name"])

    send(page, "How much may a hotel night cost?")
    step = page.get_by_text("handbook · search_handbook")
    expect(step).to_be_visible()
    answer = page.locator(".message-content").filter(has_text="The handbook caps hotels")
    expect(answer).to_be_visible()
    # What the tool found went back to the model.
    tool_message = upstream.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "hotel" in tool_message["content"].lower()

    # The reply links to its trace, which the person reads on the hub's pages.
    link = answer.get_by_role("link", name=TRACE_LINK)
    expect(link).to_be_visible()
    trace_url = link.get_attribute("href")
    assert trace_url and trace_url.startswith(f"{hub.url}/traces/"), trace_url
    page.goto(f"{hub.url}/login?next={trace_url.removeprefix(hub.url)}")
    page.locator("#username").fill(chat_user)
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page.locator("h1")).to_contain_text("Run of a chat with a model")
    steps = page.locator(".step h3")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("Model · test-model")
    expect(steps.nth(1)).to_contain_text("handbook/search_handbook")
    expect(steps.nth(2)).to_contain_text("Model · test-model")
    page.goto(f"{hub.url}/traces")
    expect(page.get_by_role("row").nth(1)).to_contain_text("a chat with a model")
    chat_app.assert_no_storage_errors()


def test_a_model_chat_with_the_warehouse_asks_before_it_runs_a_query(
    page: Page,
    careful_chat_app: ChatApp,
    chat_user: str,
    upstream: ScriptedUpstream,
    analyst: AnalystSetup,
    warehouse: EmulatorProcess,
) -> None:
    upstream.enqueue(
        tool_calls=[{"name": "bigquery__run_query", "arguments": {"sql": CATEGORY_POSTS_SQL}}]
    )
    upstream.script(reply="The most popular category leads the table below.")
    sign_in(page, careful_chat_app, chat_user)
    _switch_on(page, "bigquery", "Marketplace warehouse (BigQuery)")

    send(page, "Which category was the most popular over the past 10 days?")
    question = page.locator(".message-content").filter(has_text="Approve before it runs?")
    expect(question).to_be_visible()
    expect(question).to_contain_text("would scan")
    assert len(upstream.requests) == 1, "the model must not go on before the answer"
    expect(page.get_by_text("bigquery · run_query")).to_have_count(0)

    page.get_by_role("button", name="Run it", exact=True).click()
    expect(page.get_by_text("bigquery · run_query")).to_be_visible()
    answer = page.locator(".message-content").filter(has_text="The most popular category leads")
    expect(answer).to_be_visible()
    expected = expected_category_posts(warehouse)
    top = max(expected, key=lambda name: expected[name])
    expect(page.locator(".dataframe table tbody tr").first).to_contain_text(top)
    careful_chat_app.assert_no_storage_errors()
