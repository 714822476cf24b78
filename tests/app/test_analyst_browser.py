"""Journey 2 in a real browser: a person asks the data analyst a question, approves the query's
cost when asked, and sees each step, the result as a paged table, a chart and a CSV download."""

import pytest
from playwright.sync_api import Page, expect

from mcp_servers.bigquery.emulator import EmulatorProcess
from tests.app.conftest import PASSWORD, ChatApp, send, sign_in
from tests.conftest import RunningHub
from tests.support.analyst import (
    CATEGORY_POSTS_SQL,
    DAILY_POSTS_SQL,
    AnalystSetup,
    expected_category_posts,
    expected_daily_posts,
)
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser


def test_the_analyst_asks_before_its_query_then_shows_steps_table_and_chart(
    page: Page,
    hub: RunningHub,
    careful_chat_app: ChatApp,
    chat_user: str,
    upstream: ScriptedUpstream,
    analyst: AnalystSetup,
    warehouse: EmulatorProcess,
) -> None:
    upstream.enqueue(
        tool_calls=[{"name": "datamodel__read_table_notes", "arguments": {"table": "categories"}}]
    )
    upstream.enqueue(
        tool_calls=[{"name": "bigquery__run_query", "arguments": {"sql": CATEGORY_POSTS_SQL}}]
    )
    upstream.script(reply="The most popular category leads the table below.")
    expected = expected_category_posts(warehouse)
    top = max(expected, key=lambda name: expected[name])

    sign_in(page, careful_chat_app, chat_user)
    page.locator("#chat-profiles").click()
    page.locator('[data-test="select-item:agent:data-analyst"]').click()
    expect(page.locator("#chat-profiles")).to_contain_text("Data analyst")
    send(page, "Which category was the most popular over the past 10 days?")

    # The notes and the cost check show as steps; the run waits for the person.
    expect(page.get_by_text("datamodel · read_table_notes")).to_be_visible()
    expect(page.get_by_text("bigquery · dry_run_query")).to_be_visible()
    question = page.locator(".message-content").filter(has_text="Approve before it runs?")
    expect(question).to_be_visible()
    expect(question).to_contain_text("would scan")
    expect(question).to_contain_text("$")
    assert len(upstream.requests) == 2, "the model must not go on before the answer"
    page.get_by_role("button", name="Run it", exact=True).click()

    expect(page.get_by_text("bigquery · run_query")).to_be_visible()
    answer = page.locator(".message-content").filter(has_text="The most popular category leads")
    expect(answer).to_be_visible()
    expect(page.locator(".message-content").filter(has_text="You approved it.")).to_be_visible()

    # The table: the top category first with its count, paged ten rows at a time.
    table = page.locator(".dataframe table")
    expect(table).to_be_visible()
    first_row = table.locator("tbody tr").first
    expect(first_row).to_contain_text(top)
    expect(first_row).to_contain_text(str(expected[top]))
    expect(table.locator("tbody tr")).to_have_count(min(len(expected), 10))
    # The chart: Plotly draws one bar per category.
    expect(page.locator(".js-plotly-plot")).to_be_visible()
    expect(page.locator(".js-plotly-plot .bars .point")).to_have_count(len(expected))
    # The CSV download.
    expect(page.get_by_text("result.csv")).to_be_visible()

    # Opened again, the conversation still has its table, chart and file, from the chat's
    # file store; the file is the person's own.
    page.reload()
    expect(page.locator(".dataframe table tbody tr").first).to_contain_text(top)
    expect(page.locator(".js-plotly-plot .bars .point")).to_have_count(len(expected))
    csv_link = page.locator("a.inline-file", has_text="result.csv")
    href = csv_link.get_attribute("href")
    assert href and href.startswith("/switchboard/files/"), href
    href = careful_chat_app.url + href
    csv = page.request.get(href)
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().splitlines()
    assert lines[0] == "category,new_posts" and lines[1] == f"{top},{expected[top]}"
    assert len(lines) == len(expected) + 1
    stranger = page.context.browser.new_context() if page.context.browser else None
    assert stranger is not None
    try:
        assert stranger.request.get(href).status in (401, 404)
    finally:
        stranger.close()

    # The second sample question: a time series, drawn as a line over the seven days.
    upstream.enqueue(
        tool_calls=[{"name": "bigquery__run_query", "arguments": {"sql": DAILY_POSTS_SQL}}]
    )
    upstream.script(reply="Here are the posts per day.")
    send(page, "Give me daily post counts for the past week")
    page.get_by_role("button", name="Run it", exact=True).click()
    expect(page.locator(".message-content").filter(has_text="posts per day")).to_be_visible()
    days = expected_daily_posts(warehouse)
    line = page.locator(".js-plotly-plot").last
    expect(line.locator(".scatterlayer .trace")).to_have_count(1)
    expect(line.locator(".scatterlayer .points path")).to_have_count(len(days))
    newest = page.locator(".dataframe table").last.locator("tbody tr")
    expect(newest).to_have_count(len(days))
    first_day = min(days)
    expect(newest.first).to_contain_text(first_day)
    expect(newest.first).to_contain_text(str(days[first_day]))

    # The run's trace in the hub keeps the question and the answer between the steps.
    link = page.get_by_role("link", name="Open the trace of this run").first
    trace_url = link.get_attribute("href")
    assert trace_url
    page.goto(f"{hub.url}/login?next={trace_url.removeprefix(hub.url)}")
    page.locator("#username").fill(chat_user)
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    steps = page.locator(".step h3")
    # Model, notes, model, cost check, asked, answered, query, model.
    expect(steps).to_have_count(8)
    expect(steps.nth(3)).to_contain_text("bigquery/dry_run_query")
    expect(steps.nth(4)).to_contain_text("Approval · approval asked")
    expect(steps.nth(5)).to_contain_text("Approval · approval answered")
    expect(page.get_by_text(f"approved by {chat_user}")).to_be_visible()
    expect(steps.nth(6)).to_contain_text("bigquery/run_query")
    careful_chat_app.assert_no_storage_errors()
