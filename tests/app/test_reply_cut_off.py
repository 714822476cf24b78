"""Journey 8 for the chat: its process dies mid-answer, another takes the conversation over.

The reply is stored while it streams, so the conversation opened in the new process shows the
answer as far as it came, says it was cut off, and carries on with the model given that part.
"""

import json
import signal

import pytest
from playwright.sync_api import Page, expect

from app.history import CUT_OFF_MARKER, CUT_OFF_NOTE, REPLY_MARKER
from tests.app.conftest import ChatApp, send, sign_in, wait_until
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

QUESTION = "Tell me a long story."
WORDS = [f"w{i}" for i in range(400)]


def _stored_reply(app: ChatApp) -> tuple[str, dict[str, object]] | None:
    for row in app.query("SELECT output, metadata FROM steps WHERE type = 'assistant_message'"):
        metadata = json.loads(row["metadata"] or "{}")
        if metadata.get(REPLY_MARKER):
            return str(row["output"]), metadata
    return None


def test_a_reply_cut_off_by_a_dying_chat_process_shows_so_and_the_conversation_carries_on(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply=" ".join(WORDS), chunk_delay_s=0.05)
    sign_in(page, chat_app, chat_user)
    send(page, QUESTION)
    expect(page.locator(".message-content").filter(has_text="w0 w1 w2").last).to_be_visible()

    # While it streams the reply is stored, as far as it came, marked as cut off.
    def stored_while_streaming() -> tuple[str, dict[str, object]] | None:
        stored = _stored_reply(chat_app)
        return stored if stored and stored[1].get(CUT_OFF_MARKER) else None

    text, _ = wait_until(stored_while_streaming, what="the reply to be stored as it streams")
    assert text.startswith("w0 w1 w2") and CUT_OFF_NOTE in text
    assert upstream.completed_streams == 0

    # The chat process dies mid-answer: no chance to store the rest.
    assert chat_app.process is not None
    chat_app.process.send_signal(signal.SIGKILL)
    chat_app.process.wait(timeout=10)
    chat_app.process = None
    stored = _stored_reply(chat_app)
    assert stored is not None and stored[1].get(CUT_OFF_MARKER)
    partial = stored[0].split(CUT_OFF_NOTE)[0].rstrip("\n")
    partial_words = partial.split(" ")
    assert 3 <= len(partial_words) < len(WORDS) and partial_words == WORDS[: len(partial_words)]

    # Another chat process on the same database opens the conversation.
    chat_app.start()
    [thread] = chat_app.query("SELECT id FROM threads")
    page.goto(f"{chat_app.url}/thread/{thread['id']}")
    shown = page.locator(".message-content").filter(has_text=CUT_OFF_NOTE)
    expect(shown).to_have_count(1)
    expect(shown).to_contain_text(partial)

    upstream.script(reply="Where was I? The end.")
    send(page, "Go on, please.")
    expect(page.locator(".message-content").filter(has_text="The end.").last).to_be_visible()
    # The model gets the part the person saw, without the note, as its own answer.
    assert upstream.requests[-1]["messages"] == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": partial},
        {"role": "user", "content": "Go on, please."},
    ]
    chat_app.assert_no_storage_errors()
