"""Journeys 2 and 4 in a real browser: build an agent without code, publish it, use it in chat,
publish v2, restore v1; each step shows in the chat and the run's trace opens in the hub."""

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.app.conftest import PASSWORD, ChatApp, person_key, send, sign_in, wait_until
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

V1 = "You are the weather helper, version one. Answer in one sentence."
V2 = "You are the weather helper, version two. Answer in French."


def _hub_sign_in(page: Page, hub: RunningHub, username: str, target: str) -> None:
    page.goto(f"{hub.url}/login?next={target}")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(re.escape(target) + "$"))


def _pick_profile(page: Page, name: str, label: str = "Weather helper") -> None:
    page.locator("#chat-profiles").click()
    page.locator(f'[data-test="select-item:{name}"]').click()
    expect(page.locator("#chat-profiles")).to_contain_text(label)


def _reply(page: Page, text: str) -> None:
    expect(page.locator(".message-content").filter(has_text=text).last).to_be_visible()


def _system_prompt(request: dict[str, object]) -> str:
    messages = request["messages"]
    assert isinstance(messages, list)
    return str(messages[0]["content"]) if messages[0]["role"] == "system" else ""


def test_a_builder_publishes_an_agent_that_runs_in_chat_and_restores_v1_after_v2(
    page: Page,
    hub: RunningHub,
    chat_app: ChatApp,
    chat_user: str,
    upstream: ScriptedUpstream,
    registered_weather: tuple[McpTestServer, httpx.Client],
) -> None:
    # Build and publish v1 in the hub's Agent Builder.
    _hub_sign_in(page, hub, chat_user, "/agents/new")
    page.locator("#name").fill("Weather helper")
    page.locator("#slug").fill("weather-helper")
    page.locator("#description").fill("Knows the weather in our office cities.")
    page.locator("#instructions").fill(V1)
    page.locator("#model").select_option("test-model")
    page.locator('input[name="servers"][value="weather"]').check()
    page.locator("#starters").fill("Weather in Lisbon?")
    page.get_by_role("button", name="Publish").click()
    page.wait_for_url(re.compile(r"/agents/weather-helper$"))
    expect(page.get_by_text("v1").first).to_be_visible()

    # Use it in chat: it calls the tool through the hub and answers.
    upstream.enqueue(tool_calls=[{"name": "weather__get_weather", "arguments": {"city": "Lisbon"}}])
    upstream.script(reply="It is clear in Lisbon, 16 degrees.")
    sign_in(page, chat_app, chat_user)
    _pick_profile(page, "agent:weather-helper")
    send(page, "What is the weather in Lisbon?")
    expect(page.get_by_text("weather · get_weather")).to_be_visible()
    answer = page.locator(".message-content").filter(has_text="It is clear in Lisbon").last
    expect(answer).to_be_visible()
    assert _system_prompt(upstream.requests[0]) == V1
    assert upstream.requests[1]["messages"][-1]["role"] == "tool"

    # The reply links to the run's trace, which opens in the hub with every step in order.
    link = page.get_by_role("link", name="Open the trace of this run")
    expect(link).to_be_visible()
    trace_url = link.get_attribute("href")
    assert trace_url and trace_url.startswith(f"{hub.url}/traces/")
    page.goto(trace_url)
    steps = page.locator(".step h3")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("Model")
    expect(steps.nth(1)).to_contain_text("weather")
    expect(steps.nth(2)).to_contain_text("Model")

    # v2 with other instructions, then v1 restored in one click.
    page.goto(f"{hub.url}/agents/weather-helper/edit")
    page.locator("#instructions").fill(V2)
    page.get_by_role("button", name="Publish").click()
    page.wait_for_url(re.compile(r"/agents/weather-helper$"))
    page.locator('form[action$="/versions/1/restore"] button').click()
    page.wait_for_url(re.compile(r"/agents/weather-helper$"))

    upstream.script(reply="Still clear.")
    page.goto(chat_app.url)
    _pick_profile(page, "agent:weather-helper")
    # The agent's starter shows once the chat has switched to it; a message sent before that
    # could still go to the model the page opened with.
    expect(page.get_by_role("button", name="Weather in Lisbon?", exact=True)).to_be_visible()
    send(page, "And now?")
    expect(page.locator(".message-content").filter(has_text="Still clear.").last).to_be_visible()
    wait_until(lambda: len(upstream.requests) == 3, what="the third model call")
    assert _system_prompt(upstream.requests[2]) == V1
    chat_app.assert_no_storage_errors()


def test_a_conversation_with_an_agent_carries_on_with_its_context_after_the_app_restarts(
    page: Page, hub: RunningHub, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    as_ada = {"Authorization": f"Bearer {hub.app_token}", "X-Switchboard-User": chat_user}
    with httpx.Client(base_url=hub.url, headers=as_ada, timeout=30) as client:
        created = client.post(
            "/api/agents",
            json={"slug": "notes", "name": "Notes", "instructions": V1, "model": "test-model"},
        )
        assert created.status_code == 201, created.text
        assert client.post("/api/agents/notes/publish").status_code == 201

    upstream.script(reply="Nice to meet you, Ada.")
    sign_in(page, chat_app, chat_user)
    _pick_profile(page, "agent:notes", "Notes")
    send(page, "My name is Ada and I work in Lisbon.")
    _reply(page, "Nice to meet you")
    wait_until(
        lambda: chat_app.query(
            'SELECT id FROM threads WHERE "userIdentifier" = ?', person_key(hub, chat_user)
        ),
        what="the conversation to be stored",
    )

    chat_app.restart()
    upstream.script(reply="You work in Lisbon.")
    page.goto(chat_app.url)
    conversation = page.locator("#thread-history").get_by_text("My name is Ada")
    expect(conversation).to_be_visible()
    conversation.click()
    page.wait_for_url(re.compile(r"/thread/"))
    send(page, "Where do I work?")
    _reply(page, "You work in Lisbon.")

    contents = [m.get("content") for m in upstream.requests[-1]["messages"]]
    assert contents == [
        V1,
        "My name is Ada and I work in Lisbon.",
        "Nice to meet you, Ada.",
        "Where do I work?",
    ]
