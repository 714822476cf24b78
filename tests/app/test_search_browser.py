"""Search in Chromium: from the chat's header to the search page, a result opens its
conversation at the matching message; the page and its JSON form answer only the person's own
conversations and explain bad input; what others shared with the person is found too, and
opens the shared page at the matching step."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session

from hub.core.db import get_engine
from hub.services.users import create_user
from tests.app.conftest import OFF_MACHINE, ChatApp, person_key, send, sign_in, wait_until
from tests.conftest import RunningHub
from tests.support.owners import as_person, chat_conversation
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

QUESTION = "Where do narwhal herds spend the <em>winter</em> & why?"
LONG_REPLY = "\n\n".join(
    f"Paragraph {n}: pack ice, open leads and polar nights." for n in range(40)
)


def test_a_result_opens_the_conversation_at_the_matching_message(
    browser: Browser,
    page: Page,
    hub: RunningHub,
    chat_app: ChatApp,
    chat_user: str,
    upstream: ScriptedUpstream,
) -> None:
    sign_in(page, chat_app, chat_user)
    upstream.script(reply="In Baffin Bay. " + LONG_REPLY)
    send(page, QUESTION)
    expect(page.get_by_text("Paragraph 39").last).to_be_visible()
    for turn in range(3):
        upstream.script(reply=f"Answer {turn}. " + LONG_REPLY)
        send(page, f"And then, part {turn}?")
        expect(page.get_by_text(f"Answer {turn}.").last).to_be_visible()
    wait_until(
        lambda: len(chat_app.query("SELECT id FROM steps WHERE type LIKE '%message'")) == 8,
        what="eight stored messages",
    )
    question_id = chat_app.query(
        "SELECT id FROM steps WHERE type = 'user_message' AND output = ?", QUESTION
    )[0]["id"]

    page.locator("a[href='/switchboard/search']").first.click()
    page.wait_for_url(re.compile(r"/switchboard/search"))
    page.locator("input[name=q]").fill("NARWHAL herd")
    page.locator("button[type=submit]").click()
    # The question, and the title Chainlit gave the conversation from it.
    results = page.locator("#results li")
    expect(results).to_have_count(2)
    expect(results.locator(".when").filter(has_text="title")).to_have_count(1)
    result = results.filter(has=page.locator(f"a[href$='#step-{question_id}']"))
    # The person's words come back as text, never as markup.
    expect(result.locator(".snippet")).to_contain_text("the <em>winter</em> & why")
    expect(result.locator("mark")).to_have_text(["narwhal", "herds"])

    result.locator("a").click()
    page.wait_for_url(re.compile(rf"/thread/[\w-]+#step-{question_id}$"))
    message = page.locator(f"[id='step-{question_id}']")
    expect(message).to_have_attribute("data-search-target", "true")
    expect(message).to_be_in_viewport()

    # The JSON form, for the person; nothing for someone signed out.
    found = page.request.get(f"{chat_app.url}/switchboard/search.json?q=narwhal")
    assert found.status == 200
    hits = found.json()["results"]
    assert sorted(hit["step_id"] or "" for hit in hits) == ["", question_id]
    hit = next(hit for hit in hits if hit["step_id"])
    assert hit["url"] == f"/thread/{hit['thread_id']}#step-{question_id}"
    owner = chat_app.query('SELECT "userIdentifier" FROM threads WHERE id = ?', hit["thread_id"])
    assert owner[0][0] == person_key(hub, chat_user)
    for hostile in ('"narwhal', "narwhal OR *", "'; DROP TABLE steps; --", "NEAR(a b"):
        answer = page.request.get(f"{chat_app.url}/switchboard/search.json", params={"q": hostile})
        assert answer.status == 200, answer.text()
    bad = page.request.get(f"{chat_app.url}/switchboard/search.json?q=narwhal&since=yesterday")
    assert bad.status == 422
    assert "YYYY-MM-DD" in bad.json()["detail"]
    page.goto(f"{chat_app.url}/switchboard/search?q=narwhal&since=2026-02-01&until=2026-01-01")
    expect(page.locator(".error")).to_contain_text("swap them")

    stranger = browser.new_context()
    stranger.route(OFF_MACHINE, lambda route: route.abort())
    try:
        answer = stranger.request.get(f"{chat_app.url}/switchboard/search.json?q=narwhal")
        assert "narwhal" not in answer.text()
        assert answer.status in (401, 302, 303, 307) or "/login" in answer.url
    finally:
        stranger.close()
    chat_app.assert_no_storage_errors()


def test_conversations_shared_with_one_are_found_and_open_at_the_step(
    page: Page, hub: RunningHub, chat_app: ChatApp, chat_user: str
) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="dana", password="pw-dana", team="research")
    steps = [
        {"kind": "user", "author": "dana", "text": "How far do they migrate?"},
        {"kind": "assistant", "author": "test-model", "text": "Narwhal pods travel 1,000 km."},
    ]
    links = []
    with as_person(hub, "dana") as dana:
        for number, audience in enumerate(["company", "company", "team"]):
            chat_conversation(hub.settings.sqlalchemy_url, "dana", f"dana-{number}")
            made = dana.post(
                "/api/shares",
                json={
                    "thread_id": f"dana-{number}",
                    "title": f"Arctic notes <b>{number}</b>",
                    "audience": audience,
                    "snapshot": {"steps": steps},
                },
            )
            assert made.status_code == 201, made.text
            links.append(made.json()["id"])
        # Revoked: no longer shared with anyone.
        assert dana.delete(f"/api/shares/{links[1]}").status_code == 204

    sign_in(page, chat_app, chat_user)
    page.goto(f"{chat_app.url}/switchboard/search?q=narwhal+pods")
    # Only the company link still active; the team link is for another team.
    shared = page.locator("#shared-results li")
    expect(shared).to_have_count(1)
    expect(shared.locator("a")).to_have_text("Arctic notes <b>0</b>")
    expect(shared.locator(".when")).to_have_text("shared by dana")
    expect(shared.locator("mark")).to_have_text(["Narwhal", "pods"])
    expect(page.locator("#no-results")).to_be_visible()

    shared.locator("a").click()
    page.wait_for_url(re.compile(rf"/s/{re.escape(links[0])}#step-2$"))
    expect(page.locator("#step-2")).to_contain_text("Narwhal pods travel 1,000 km.")

    # A filter is about one's own conversations: nothing shared is listed then.
    page.goto(f"{chat_app.url}/switchboard/search?q=narwhal&model=test-model")
    expect(page.locator("#no-results")).to_be_visible()
    expect(page.locator("#shared-results")).to_have_count(0)
    chat_app.assert_no_storage_errors()
