"""Feedback in Chromium: a builder publishes an agent; a colleague chats with it, presses thumbs
down under the answer and says why in Chainlit's dialog; the builder sees the 👎 and the
comment under v1 on the agent's page in the hub, and the admins' export has the row with the
run's trace. Pressing the thumb again takes the feedback back, in the chat and at the hub."""

import csv
import io
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user, get_user
from hub.services.web_sessions import start_web_session
from tests.app.conftest import OFF_MACHINE, PASSWORD, ChatApp, send, sign_in, wait_until
from tests.conftest import RunningHub
from tests.support.owners import as_person, publish_agent
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

ANSWER = "It will rain in Lisbon all week."
COMMENT = "It was sunny all week; check the forecast first."


@pytest.fixture
def people(hub: RunningHub) -> None:
    """ben builds agents, ana chats, root is an admin."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, role in (("ben", Role.builder), ("ana", Role.member), ("root", Role.admin)):
            create_user(session=session, username=name, password=PASSWORD, role=role)


@pytest.fixture
def builders_page(browser: Browser) -> Iterator[Page]:
    """ben's own browser (the hub's sign-in is per browser)."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    context.route(OFF_MACHINE, lambda route: route.abort())
    try:
        yield context.new_page()
    finally:
        context.close()


def _stored_answer(chat_app: ChatApp) -> dict[str, object] | None:
    """The agent's answer as the chat stored it: its metadata, once the trace is in it."""
    for row in chat_app.query("SELECT metadata FROM steps WHERE type = 'assistant_message'"):
        metadata = json.loads(row["metadata"] or "{}")
        if metadata.get("agent") == "helper" and metadata.get("trace"):
            return dict(metadata)
    return None


def _hub_feedback(hub: RunningHub) -> list[dict[str, object]]:
    with as_person(hub, "ben") as ben:
        report = ben.get("/api/agents/helper/feedback")
    assert report.status_code == 200, report.text
    versions: list[dict[str, object]] = report.json()["versions"]
    return versions


def _admins_export(hub: RunningHub) -> list[dict[str, str]]:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        root = get_user(session=session, username="root")
        assert root is not None
        cookie = start_web_session(session=session, user=root, days=1, method="password")
    with httpx.Client(base_url=hub.url, cookies={"switchboard_session": cookie}) as admin:
        export = admin.get("/feedback.csv")
    assert export.status_code == 200, export.text
    return list(csv.DictReader(io.StringIO(export.text)))


def test_thumbs_down_with_a_comment_reaches_the_agents_page_and_the_admins_export(
    page: Page,
    builders_page: Page,
    hub: RunningHub,
    chat_app: ChatApp,
    people: None,
    upstream: ScriptedUpstream,
) -> None:
    with as_person(hub, "ben") as ben:
        publish_agent(ben, "helper")

    # Ana asks the agent in the chat.
    upstream.script(reply=ANSWER)
    sign_in(page, chat_app, "ana")
    page.locator("#chat-profiles").click()
    page.locator('[data-test="select-item:agent:helper"]').click()
    expect(page.locator("#chat-profiles")).to_contain_text("Helper")
    send(page, "Will it rain in Lisbon this week?")
    expect(page.locator(".message-content").filter(has_text=ANSWER).last).to_be_visible()
    expect(page.get_by_role("link", name="Open the trace of this run")).to_be_visible()
    metadata = wait_until(lambda: _stored_answer(chat_app), what="the answer to be stored")

    # Thumbs down, and why, in Chainlit's own dialog.
    page.locator(".negative-feedback-off").last.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Add a comment")
    dialog.locator("textarea").fill(COMMENT)
    dialog.locator("#submit-feedback").click()
    expect(page.locator(".negative-feedback-on")).to_have_count(1)
    rows = chat_app.query("SELECT value, comment FROM feedbacks")
    assert [(row["value"], row["comment"]) for row in rows] == [(0, COMMENT)]
    wait_until(lambda: _hub_feedback(hub), what="the feedback to reach the hub")

    # The builder sees it under v1 on the agent's page.
    builders_page.goto(f"{hub.url}/login?next=/agents/helper")
    builders_page.locator("#username").fill("ben")
    builders_page.locator("#password").fill(PASSWORD)
    builders_page.locator("button[type=submit]").click()
    builders_page.wait_for_url(re.compile(r"/agents/helper$"))
    v1 = builders_page.locator("#feedback-v1")
    expect(v1.locator(".feedback-counts")).to_contain_text("👍 0")
    expect(v1.locator(".feedback-counts")).to_contain_text("👎 1")
    expect(v1.locator(".feedback-comments")).to_contain_text(COMMENT)
    expect(v1.locator(".feedback-comments")).to_contain_text("ana")

    # The admins' export has the row, with the trace the answer links to.
    (row,) = _admins_export(hub)
    assert (row["person"], row["value"], row["comment"]) == ("ana", "-1", COMMENT)
    assert (row["agent"], row["version"], row["model"]) == ("helper", "1", "test-model")
    assert row["trace"] == metadata["trace"]
    threads = chat_app.query("SELECT id FROM threads")
    assert row["conversation"] in {thread["id"] for thread in threads}

    # Pressing the thumb again takes it back, in the chat and at the hub.
    page.locator(".negative-feedback-on").click()
    expect(page.locator(".negative-feedback-on")).to_have_count(0)
    wait_until(lambda: not _hub_feedback(hub), what="the feedback to be taken back at the hub")
    assert chat_app.query("SELECT id FROM feedbacks") == []
    chat_app.assert_no_storage_errors()
