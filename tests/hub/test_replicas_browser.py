"""Two chat replicas behind the proxy: the one holding a browser's socket dies mid-reply, the
page reconnects to the other, and the conversation is there with the part of the reply that
had streamed, marked as cut off; the next message gets an answer."""

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from app.history import CUT_OFF_MARKER, CUT_OFF_NOTE, REPLY_MARKER
from hub.core.db import get_engine
from tests.app.conftest import CHROMIUM, CHROMIUM_ARGS, OFF_MACHINE, send, wait_until
from tests.conftest import _postgres_database
from tests.support.topology import Running, add_person, running_topology
from tests.support.upstream import ScriptedUpstream

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

QUESTION = "Tell me a long story."
WORDS = [f"w{i}" for i in range(600)]
PASSWORD = "pw-replicas"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


@pytest.fixture
def page() -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; run `make chromium`")
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(30_000)
            context.route(OFF_MACHINE, lambda route: route.abort())
            yield context.new_page()
        finally:
            browser.close()


def _established(port: int) -> int:
    """Open TCP connections to 127.0.0.1:`port` (the proxy's to a chat replica)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        count += local_port == port and fields[3] == "01"
    return count


def _stored_reply(database_url: str) -> tuple[str, dict[str, object]] | None:
    with get_engine(database_url).connect() as connection:
        rows = connection.execute(
            text("SELECT output, metadata FROM steps WHERE type = 'assistant_message'")
        ).all()
    for output, metadata in rows:
        found = json.loads(metadata) if isinstance(metadata, str) else (metadata or {})
        if found.get(REPLY_MARKER) and found.get(CUT_OFF_MARKER):
            return str(output), found
    return None


@pytest.mark.timeout(600)
def test_a_chat_replica_dying_mid_reply_hands_the_conversation_to_another(
    tmp_path: Path, postgres_url: str, upstream: ScriptedUpstream, page: Page
) -> None:
    with running_topology(tmp_path, postgres_url, upstream.url) as running:
        add_person(postgres_url, "ada", PASSWORD)
        _sign_in(page, running)
        upstream.script(reply=" ".join(WORDS), chunk_delay_s=0.05)
        send(page, QUESTION)
        expect(page.locator(".message-content").filter(has_text="w0 w1 w2").last).to_be_visible()
        # Chainlit's page moves to the conversation's own address as it begins, and opens its
        # socket again naming it: that is what a reconnect to another replica resumes.
        expect(page).to_have_url(re.compile(r"/thread/[0-9a-f-]+$"))
        wait_until(lambda: _stored_reply(postgres_url), what="the reply stored as it streams")

        # The replica holding the page's socket is the one the proxy keeps a connection to.
        ports = running.topology.chat_ports
        serving = wait_until(
            lambda: [port for port in ports if _established(port)],
            what="the page's socket to a chat replica",
        )
        assert len(serving) == 1, serving
        number = ports.index(serving[0]) + 1
        replica = running.child(f"the chat app replica {number}").process
        replica.send_signal(signal.SIGKILL)
        replica.wait(timeout=10)
        stored = _stored_reply(postgres_url)
        assert stored is not None
        partial = stored[0].split(CUT_OFF_NOTE)[0].rstrip("\n")
        partial_words = partial.split(" ")
        assert 3 <= len(partial_words) < len(WORDS)
        assert partial_words == WORDS[: len(partial_words)]

        # The page reconnects through the proxy to the other replica, which resumes the
        # conversation from the database: the part that came, and the note.
        shown = page.locator(".message-content").filter(has_text=CUT_OFF_NOTE)
        expect(shown).to_have_count(1)
        expect(shown).to_contain_text(partial)
        expect(page.locator(".message-content").filter(has_text=QUESTION)).to_have_count(1)
        other = next(port for port in ports if port != serving[0])
        assert _established(other) >= 1

        upstream.script(reply="Where was I? The end.")
        send(page, "Go on, please.")
        expect(page.locator(".message-content").filter(has_text="The end.").last).to_be_visible()
        assert upstream.requests[-1]["messages"] == [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": partial},
            {"role": "user", "content": "Go on, please."},
        ]


def _sign_in(page: Page, running: Running) -> None:
    """Through the proxy: the chat sends the person to the hub's sign-in page (through the
    proxy too), which brings them back signed in."""
    page.goto(running.settings.app_public_url)
    page.locator("#username").fill("ada")
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.locator("#chat-input").wait_for(state="visible")
    assert page.url.startswith(running.settings.app_public_url)
