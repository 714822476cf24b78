"""Export and import in Chromium: from the chat's header to the conversations page, a
conversation downloads as JSON and PDF with what was said; a ChatGPT export uploaded there
comes back as a report and a conversation of one's own that opens in the chat; bad files
are refused with a clear message."""

import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from pdfminer.high_level import extract_text
from playwright.sync_api import Page, expect

from tests.app.conftest import ChatApp, person_key, send, sign_in, wait_until
from tests.conftest import RunningHub
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

QUESTION = "Which lighthouse is the tallest in Brittany?"
REPLY = "Île Vierge lighthouse, at 82.5 metres."


def _chatgpt_file(path: Path) -> Path:
    at = 1_767_225_600.0

    def node(
        node_id: str, parent: str | None, child: str | None, role: str, said: str
    ) -> dict[str, Any]:
        message = {
            "id": node_id,
            "author": {"role": role},
            "create_time": at,
            "content": {"content_type": "text", "parts": [said]},
        }
        return {
            "id": node_id,
            "parent": parent,
            "children": [child] if child else [],
            "message": message,
        }

    conversation = {
        "title": "Knots <b>for</b> sailors",
        "create_time": at,
        "current_node": "a",
        "mapping": {
            "q": node("q", None, "a", "user", "Which knot holds a mooring?"),
            "a": node("a", "q", None, "assistant", "A round turn and two half hitches."),
        },
        "id": str(uuid.uuid4()),
    }
    path.write_text(json.dumps([conversation]))
    return path


def test_export_downloads_and_import_reports(
    page: Page,
    hub: RunningHub,
    chat_app: ChatApp,
    chat_user: str,
    upstream: ScriptedUpstream,
    tmp_path: Path,
) -> None:
    sign_in(page, chat_app, chat_user)
    upstream.script(reply=REPLY)
    send(page, QUESTION)
    expect(page.get_by_text(REPLY).last).to_be_visible()
    wait_until(
        lambda: len(chat_app.query("SELECT id FROM steps WHERE type LIKE '%message'")) == 2,
        what="two stored messages",
    )
    (thread,) = chat_app.query("SELECT id FROM threads")

    page.locator("a[href='/switchboard/conversations']").first.click()
    page.wait_for_url(re.compile(r"/switchboard/conversations$"))
    row = page.locator("tr.conversation")
    expect(row).to_have_count(1)
    with page.expect_download() as downloading:
        row.get_by_role("link", name="JSON").click()
    exported = json.loads(Path(downloading.value.path()).read_text())
    (conversation,) = exported["conversations"]
    assert conversation["id"] == thread["id"]
    assert [(m["kind"], m["text"]) for m in conversation["messages"]] == [
        ("user", QUESTION),
        ("assistant", REPLY),
    ]
    with page.expect_download() as downloading:
        row.get_by_role("link", name="PDF").click()
    assert downloading.value.suggested_filename.endswith(".pdf")
    text = " ".join(extract_text(io.BytesIO(Path(downloading.value.path()).read_bytes())).split())
    assert QUESTION in text and REPLY in text

    page.set_input_files("input[name=file]", str(_chatgpt_file(tmp_path / "conversations.json")))
    page.get_by_role("button", name="Import").click()
    report = page.locator("#report")
    expect(report).to_contain_text("Imported from ChatGPT")
    # The title is text, never markup.
    expect(report.locator("li.imported")).to_have_text(["Knots <b>for</b> sailors (2 messages)"])
    expect(page.locator("tr.conversation")).to_have_count(2)
    imported = chat_app.query("SELECT id, \"userIdentifier\" FROM threads WHERE name LIKE 'Knots%'")
    assert [row["userIdentifier"] for row in imported] == [person_key(hub, chat_user)]

    page.get_by_role("link", name="Knots <b>for</b> sailors").click()
    page.wait_for_url(re.compile(rf"/thread/{imported[0]['id']}$"))
    expect(page.get_by_text("A round turn and two half hitches.")).to_be_visible()

    # A bad file: a clear message, and nothing more stored.
    page.goto(f"{chat_app.url}/switchboard/conversations")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"mapping": ')
    page.set_input_files("input[name=file]", str(broken))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#report .error")).to_contain_text(
        "Nothing imported. The file is not valid JSON"
    )
    assert len(chat_app.query("SELECT id FROM threads")) == 2
    # The same for programs: the reason as JSON.
    empty = page.request.post(
        f"{chat_app.url}/switchboard/conversations/import?format=json",
        multipart={"file": {"name": "c.json", "mimeType": "application/json", "buffer": b"[]"}},
        headers={"Origin": chat_app.url},
    )
    assert empty.status == 422
    assert empty.json() == {"detail": "The file holds no conversations."}
    assert len(chat_app.query("SELECT id FROM threads")) == 2
    chat_app.assert_no_storage_errors()
