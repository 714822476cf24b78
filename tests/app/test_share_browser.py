"""Journey 5 in Chromium, with three people: Ana shares a conversation with the data analyst
(a tool step, a table and a chart); Bob, signed out, is sent to sign in and back to the link,
sees the snapshot, continues from a copy; Ana revokes; an expired link and a team-only link
for someone outside the team say so."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from mcp_servers.bigquery.emulator import EmulatorProcess
from tests.app.conftest import OFF_MACHINE, PASSWORD, ChatApp, send, sign_in
from tests.conftest import RunningHub
from tests.support.analyst import (
    CATEGORY_POSTS_SQL,
    AnalystSetup,
    expected_category_posts,
    served_analyst,
)
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

SHARE_LINK = re.compile(r"https?://\S+/s/[\w-]+")


@pytest.fixture
def analyst(hub: RunningHub, warehouse: EmulatorProcess, tmp_path: Path) -> Iterator[AnalystSetup]:
    with served_analyst(hub, warehouse, tmp_path) as setup:
        yield setup


@pytest.fixture
def people(hub: RunningHub) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team in (("ana", "growth"), ("bob", "growth"), ("cy", "sales")):
            create_user(
                session=session, username=name, password=PASSWORD, team=team, role=Role.member
            )


def _person(browser: Browser) -> Page:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    context.route(OFF_MACHINE, lambda route: route.abort())
    return context.new_page()


def _share(page: Page, words: str) -> str:
    """Ana presses Share in the message box; the link comes back in the chat."""
    notes = page.locator(".message-content").filter(has_text="Shared with")
    before = notes.count()
    page.locator("#command-Share").click()
    send(page, words)
    expect(notes).to_have_count(before + 1)
    note = notes.last
    found = SHARE_LINK.search(note.inner_text())
    assert found, note.inner_text()
    return found.group(0)


def _hub_sign_in_at(page: Page, url: str, username: str) -> None:
    """Signed out, the link sends the person to sign in, and back to the link."""
    page.goto(url)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(url)


def test_a_shared_conversation_is_a_snapshot_for_colleagues_until_revoked_or_expired(
    browser: Browser,
    page: Page,
    hub: RunningHub,
    chat_app: ChatApp,
    upstream: ScriptedUpstream,
    analyst: AnalystSetup,
    warehouse: EmulatorProcess,
    people: None,
) -> None:
    upstream.enqueue(
        tool_calls=[{"name": "bigquery__run_query", "arguments": {"sql": CATEGORY_POSTS_SQL}}]
    )
    upstream.script(reply="The most popular category leads the table below.")
    expected = expected_category_posts(warehouse)
    top = max(expected, key=lambda name: expected[name])

    sign_in(page, chat_app, "ana")
    page.locator("#chat-profiles").click()
    page.locator('[data-test="select-item:agent:data-analyst"]').click()
    send(page, "Which category was the most popular over the past 10 days?")
    expect(page.locator(".js-plotly-plot")).to_be_visible()
    link = _share(page, "for everyone")

    bob = _person(browser)
    _hub_sign_in_at(bob, link, "bob")
    expect(bob.locator("#share-meta")).to_contain_text("Shared by ana")
    expect(bob.locator("#share-meta")).to_contain_text("agent data-analyst v1")
    expect(bob.locator(".step.user").first).to_contain_text("Which category was the most")
    expect(bob.locator("summary", has_text="bigquery · run_query")).to_be_visible()
    expect(bob.locator("table.result tr").nth(1)).to_contain_text(top)
    expect(bob.get_by_text("Open the trace of this run")).to_have_count(0)  # not shared
    expect(bob.locator(".js-plotly-plot .bars .point")).to_have_count(len(expected))
    headers = bob.request.get(link).headers
    assert headers["x-robots-tag"] == "noindex, nofollow"
    assert headers["referrer-policy"] == "no-referrer"

    # Ana writes more; Bob's view is the snapshot.
    upstream.script(reply="Something Ana learns after sharing.")
    send(page, "And what else?")
    expect(page.get_by_text("Something Ana learns after sharing.")).to_be_visible()
    bob.reload()
    expect(bob.locator(".step.user")).to_have_count(1)
    expect(bob.get_by_text("Something Ana learns after sharing.")).to_have_count(0)

    # Bob continues from a copy: his own conversation, with Ana's in its history.
    with bob.expect_request(re.compile(r"/shares/.+/continue$")) as leaving:
        bob.locator("#continue").click()
    assert "referer" not in leaving.value.headers  # the link's address stays on the page
    bob.wait_for_url(re.compile(re.escape(chat_app.url) + r"/thread/"))
    expect(bob.get_by_text("The most popular category leads the table below.")).to_be_visible()
    upstream.script(reply="Bob's own answer.")
    send(bob, "Thanks, and for last week?")
    expect(bob.get_by_text("Bob's own answer.")).to_be_visible()
    history = [message["content"] for message in upstream.requests[-1]["messages"]]
    assert "Which category was the most popular over the past 10 days?" in history
    assert "Something Ana learns after sharing." not in history

    # A team-only link: Bob (growth) reads it; Cy (sales) gets a 404.
    team_link = _share(page, "team only")
    bob.goto(team_link)
    expect(bob.locator("#share-meta")).to_contain_text("team growth")
    cy = _person(browser)
    _hub_sign_in_at(cy, team_link, "cy")
    expect(cy.locator("#share-error")).to_contain_text("not shared with you")
    assert cy.request.get(team_link).status == 404

    # Ana revokes the first link on her list; Bob is told.
    page.goto(f"{hub.url}/shares")
    row = page.locator("#shares tr", has=page.locator(f'a[href="{link.split(hub.url)[1]}"]'))
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    bob.goto(link)
    expect(bob.locator("#share-error")).to_contain_text("ana revoked this link")
    assert bob.request.get(link).status == 410

    # The team link runs out (its expiry moved into the past, as time would).
    team_id = team_link.rsplit("/", 1)[1]
    chat_app.execute(
        "UPDATE share_link SET expires_at = '2026-01-01 00:00:00' WHERE id = ?", team_id
    )
    bob.goto(team_link)
    expect(bob.locator("#share-error")).to_contain_text("expired on 2026-01-01")
