"""Editing a message and regenerating an answer in a real browser: the earlier answers stay as
branches one steps through, the branch shown is the one left, after a reload too, and each
branch's runs have their own traces."""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from hub.core.config import Settings
from tests.app.conftest import OFF_MACHINE, ChatApp, send, sign_in, wait_until
from tests.conftest import RunningHub, write_catalog
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

OTHER_MODEL = "other-model"


@pytest.fixture
def hub_settings(hub_settings: Settings, tmp_path: Path, upstream: ScriptedUpstream) -> Settings:
    """Two models on the scripted upstream: "test-model" (sent upstream as "scripted-model")
    and "other-model"."""
    catalog = write_catalog(tmp_path / "models.yaml", upstream.url, **{OTHER_MODEL: upstream.url})
    return hub_settings.model_copy(update={"catalog_path": catalog})


def _numbered_replies(upstream: ScriptedUpstream) -> None:
    """Every answer differs: which model, the how-manyth request, and what it answers."""

    def reply(body: dict[str, Any]) -> str:
        asked = body["messages"][-1]["content"]
        return f"{body['model']} answer {len(upstream.requests)} to {asked}"

    upstream.reply_for = reply


def _message(page: Page, text: str) -> Locator:
    """The person's message saying `text`, and nothing more."""
    exactly = re.compile(f"^\\s*{re.escape(text)}\\s*$")
    return page.locator("[data-step-type='user_message']").filter(has_text=exactly)


def _answer_step(page: Page, text: str) -> Locator:
    """The answer saying `text`, with its buttons."""
    return page.locator("[data-step-type='assistant_message']").filter(has_text=text)


def _conversation(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages if m["role"] != "system"]


def test_edit_switch_reload_and_regenerate_with_another_model_keep_every_branch(
    page: Page,
    browser: Browser,
    hub: RunningHub,
    chat_app: ChatApp,
    chat_user: str,
    upstream: ScriptedUpstream,
) -> None:
    _numbered_replies(upstream)
    sign_in(page, chat_app, chat_user)
    answers = []
    for number, text in enumerate(["one", "two", "three"], start=1):
        send(page, text)
        answers.append(f"scripted-model answer {number} to {text}")
        expect(page.get_by_text(answers[-1])).to_be_visible()

    # Edit the second message: a new answer, from a memory that has the first turn only.
    asked = _message(page, "two")
    asked.hover()
    asked.locator(".edit-message").click()
    page.locator("#edit-chat-input").fill("two, edited")
    page.locator(".confirm-edit").click()
    edited_answer = "scripted-model answer 4 to two, edited"
    expect(page.get_by_text(edited_answer)).to_be_visible()
    expect(_message(page, "three")).to_have_count(0)
    expect(page.get_by_text(answers[2])).to_have_count(0)
    assert _conversation(upstream.requests[3]["messages"]) == [
        ("user", "one"),
        ("assistant", answers[0]),
        ("user", "two, edited"),
    ]

    # The new answer is version 2 of 2; step back to the first.
    edited_step = _answer_step(page, edited_answer)
    expect(edited_step.get_by_role("button", name="2/2")).to_be_visible()
    edited_step.get_by_role("button", name="‹").click()
    expect(page.get_by_text(answers[2])).to_be_visible()
    expect(_message(page, "two")).to_be_visible()
    expect(page.get_by_text(edited_answer)).to_have_count(0)
    expect(_answer_step(page, answers[1]).get_by_role("button", name="1/2")).to_be_visible()

    # After a reload the branch left shows.
    page.reload()
    expect(page.get_by_text(answers[2])).to_be_visible()
    expect(_message(page, "three")).to_be_visible()
    expect(page.get_by_text(edited_answer)).to_have_count(0)
    expect(_message(page, "two, edited")).to_have_count(0)
    # And on another device.
    other_device = browser.new_context()
    other_device.route(OFF_MACHINE, lambda route: route.abort())
    try:
        elsewhere = other_device.new_page()
        sign_in(elsewhere, chat_app, chat_user)
        elsewhere.goto(page.url)
        expect(elsewhere.get_by_text(answers[2])).to_be_visible()
        expect(elsewhere.get_by_text(edited_answer)).to_have_count(0)
    finally:
        other_device.close()

    # Regenerate the third answer with the other model.
    _answer_step(page, answers[2]).get_by_role("button", name="Regenerate with…").click()
    page.get_by_role("button", name=OTHER_MODEL, exact=True).click()
    regenerated = f"{OTHER_MODEL} answer 5 to three"
    expect(page.get_by_text(regenerated)).to_be_visible()
    expect(page.get_by_text(answers[2])).to_have_count(0)
    assert upstream.requests[4]["model"] == OTHER_MODEL
    assert _conversation(upstream.requests[4]["messages"]) == [
        ("user", "one"),
        ("assistant", answers[0]),
        ("user", "two"),
        ("assistant", answers[1]),
        ("user", "three"),
    ]
    expect(_answer_step(page, regenerated).get_by_role("button", name="2/2")).to_be_visible()

    # Both answers to "three" are stored, each with the trace of its own run.
    def traces() -> dict[str, str]:
        rows = chat_app.query("SELECT output, metadata FROM steps WHERE type = 'assistant_message'")
        found = {}
        for row in rows:
            trace = json.loads(row["metadata"] or "{}").get("trace")
            for answer in (answers[2], regenerated):
                if row["output"].startswith(answer) and trace:
                    found[answer] = trace
        return found if len(found) == 2 else {}

    by_answer = wait_until(traces, what="both answers to 'three' stored with their traces")
    thread_id = chat_app.query("SELECT id FROM threads")[0]["id"]
    as_ada = {"Authorization": f"Bearer {hub.app_token}", "X-Switchboard-User": chat_user}
    with httpx.Client(base_url=hub.url, headers=as_ada, timeout=30) as client:
        listed = client.get("/api/traces", params={"conversation": thread_id})
        assert listed.status_code == 200, listed.text
        runs = {run["id"]: run for run in listed.json()}
        for trace_id in by_answer.values():
            assert client.get(f"/api/traces/{trace_id}").status_code == 200
    assert set(by_answer.values()) <= set(runs)
    assert by_answer[answers[2]] != by_answer[regenerated]
    assert runs[by_answer[answers[2]]]["conversation_id"] == thread_id
    assert runs[by_answer[regenerated]]["conversation_id"].startswith(thread_id + "~")

    # The new branch goes on from its own memory: the first answer to "three" is not in it.
    send(page, "four")
    expect(page.get_by_text(f"{OTHER_MODEL} answer 6 to four")).to_be_visible()
    assert _conversation(upstream.requests[5]["messages"])[-3:] == [
        ("user", "three"),
        ("assistant", regenerated),
        ("user", "four"),
    ]

    # A program chooses the first answer to "three" again; the page opens on it.
    first_three = chat_app.query(
        "SELECT id FROM steps WHERE type = 'user_message' AND output = 'three' "
        'ORDER BY "createdAt" LIMIT 1'
    )[0]["id"]
    route = f"{chat_app.url}/switchboard/conversations/{thread_id}/branch"
    # A program's request names the chat as its origin, as the chat's pages do.
    origin = {"Origin": chat_app.url}
    unknown = page.request.post(route, data={"turn": "no-such-message"}, headers=origin)
    assert unknown.status == 404, unknown.text()
    assert "no message 'no-such-message'" in unknown.text()
    chosen = page.request.post(route, data={"turn": first_three}, headers=origin)
    assert chosen.status == 200, chosen.text()
    assert chosen.json()["shown"][-1] == first_three
    page.reload()
    expect(page.get_by_text(answers[2])).to_be_visible()
    expect(page.get_by_text(regenerated)).to_have_count(0)
    expect(_message(page, "four")).to_have_count(0)
    expect(_answer_step(page, answers[2]).get_by_role("button", name="1/2")).to_be_visible()
    chat_app.assert_no_storage_errors()
