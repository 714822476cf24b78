"""Journey 1 in a real browser: sign in, chat with streamed replies, come back, stop a reply."""

import json
import re

import pytest
from playwright.sync_api import Page, expect

from app.turns import TRACE_LINK
from tests.app.conftest import ChatApp, person_key, send, sign_in, wait_until
from tests.conftest import RunningHub
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

FIRST = "What is the capital of France?"


def _user_and_reply(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def _reply(page: Page, text: str) -> None:
    expect(page.locator(".message-content").filter(has_text=text).last).to_be_visible()


def test_a_conversation_streams_is_kept_and_carries_on_after_coming_back(
    page: Page, hub: RunningHub, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply="Paris is the capital of France.", chunk_delay_s=0.02)
    sign_in(page, chat_app, chat_user)

    send(page, FIRST)
    _reply(page, "Paris is the capital of France.")
    upstream.script(reply="Rome, of course.")
    send(page, "And of Italy?")
    _reply(page, "Rome, of course.")

    assert upstream.requests[0]["stream"] is True
    assert upstream.requests[1]["messages"] == [
        *_user_and_reply(FIRST, "Paris is the capital of France."),
        {"role": "user", "content": "And of Italy?"},
    ]
    # Both turns are stored (Chainlit writes in the background) before the page goes away.
    wait_until(
        lambda: len(chat_app.query("SELECT id FROM steps WHERE type LIKE '%message'")) == 4,
        what="four stored messages",
    )

    page.goto(chat_app.url)
    conversation = page.locator("#thread-history").get_by_text(FIRST)
    expect(conversation).to_be_visible()
    expect(page.get_by_text("Rome, of course.")).to_have_count(0)
    conversation.click()
    page.wait_for_url(re.compile(r"/thread/"))
    _reply(page, "Paris is the capital of France.")
    _reply(page, "Rome, of course.")

    upstream.script(reply="Madrid.")
    send(page, "And of Spain?")
    _reply(page, "Madrid.")
    assert upstream.requests[2]["messages"] == [
        *_user_and_reply(FIRST, "Paris is the capital of France."),
        *_user_and_reply("And of Italy?", "Rome, of course."),
        {"role": "user", "content": "And of Spain?"},
    ]
    owners = chat_app.query('SELECT DISTINCT "userIdentifier" FROM threads')
    assert [row[0] for row in owners] == [person_key(hub, chat_user)]
    chat_app.assert_no_storage_errors()


def test_the_stop_button_stops_the_upstream_stream_and_keeps_the_partial_reply(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    words = [f"w{i}" for i in range(400)]
    upstream.script(reply=" ".join(words), chunk_delay_s=0.05)
    sign_in(page, chat_app, chat_user)

    send(page, "Tell me a very long story.")
    _reply(page, "w0 w1 w2 w3 w4 w5")
    page.locator("#stop-button").click()

    wait_until(lambda: upstream.cancelled_streams == 1, timeout_s=5, what="upstream cancel")
    assert upstream.completed_streams == 0

    def stored_reply() -> str | None:
        for row in chat_app.query("SELECT output, metadata FROM steps"):
            if json.loads(row["metadata"] or "{}").get("switchboard_reply"):
                return str(row["output"])
        return None

    partial = wait_until(stored_reply, what="the partial reply to be stored")
    assert partial.startswith("w0 w1 w2 w3 w4 w5")
    assert len(partial.split()) < len(words)
    chat_app.assert_no_storage_errors()


def test_a_gateway_error_is_shown_in_the_chat_in_the_gateways_words(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    upstream.script(status=400, error_message="This model's context length is 8192 tokens.")
    sign_in(page, chat_app, chat_user)

    send(page, "A question that is far too long.")

    expect(page.get_by_text("This model's context length is 8192 tokens.")).to_be_visible()
    # The failure is not replayed to the model as if it had answered.
    upstream.script(reply="Shorter, then.")
    send(page, "Shorter?")
    _reply(page, "Shorter, then.")
    assert upstream.requests[-1]["messages"] == [
        {"role": "user", "content": "A question that is far too long."},
        {"role": "user", "content": "Shorter?"},
    ]


def test_a_reply_is_stored_whole_when_the_browser_goes_away_mid_stream(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    reply = " ".join(f"w{i}" for i in range(60))
    upstream.script(reply=reply, chunk_delay_s=0.02)
    sign_in(page, chat_app, chat_user)

    send(page, "Tell me a story, I will not wait.")
    _reply(page, "w0 w1 w2")
    page.context.close()

    wait_until(lambda: upstream.completed_streams == 1, what="the reply to finish upstream")

    def stored_reply() -> bool:
        # The whole reply, then the link to its trace (every reply ends with one).
        rows = chat_app.query("SELECT output FROM steps WHERE output LIKE ?", reply + "%")
        return len(rows) == 1 and TRACE_LINK in rows[0][0]

    wait_until(stored_reply, what="the whole reply to be stored")
    assert upstream.cancelled_streams == 0
