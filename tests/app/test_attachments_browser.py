"""Files attached to chat messages, in Chromium: a PDF and a spreadsheet reach the model as text
(their token counts shown first), a file larger than the model's context brings an offer
instead of a send, an image for a model without image input is refused, and bad files are
refused saying why with nothing kept."""

import base64
import json
import math
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Page, Response, expect

from hub.core.config import Settings
from tests.app.conftest import REPO_ROOT, ChatApp, _app_env, send, sign_in, wait_until
from tests.app.test_attachments import pdf_file, png_file, xlsx_file
from tests.conftest import RunningHub
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

CONTEXT = 3000
BIG_CONTEXT = 200_000
# Room the chat keeps for an answer when a chat with a model sets no maximum.
ANSWER_ROOM = 1024
MAX_BYTES = 200_000


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    """test-model has a small context and takes no images; big-model (the same upstream) has a
    large one; vision-model takes images."""
    catalog = yaml.safe_load(hub_settings.catalog_path.read_text())
    small = catalog["models"][0]
    small["capabilities"] = {"context_window": CONTEXT, "image_input": False}
    big = {**small, "name": "big-model", "description": "A larger context."}
    big["capabilities"] = {"context_window": BIG_CONTEXT, "image_input": False}
    catalog["models"].append(big)
    vision = {**small, "name": "vision-model", "description": "Takes images."}
    vision["capabilities"] = {"context_window": BIG_CONTEXT, "image_input": True}
    catalog["models"].append(vision)
    hub_settings.catalog_path.write_text(yaml.safe_dump(catalog))
    return hub_settings


@pytest.fixture
def chat_app(hub: RunningHub, tmp_path: Path, chat_port: int) -> Iterator[ChatApp]:
    """The chat with a small attachment limit, so that a file over it is quick to make."""
    database_url = hub.settings.sqlalchemy_url
    app = ChatApp(
        url=f"http://127.0.0.1:{chat_port}",
        log_path=tmp_path / "chainlit.log",
        database_path=Path(database_url.removeprefix("sqlite:///")),
        env={
            **_app_env(hub, tmp_path / "app-data"),
            "SWITCHBOARD_CHAT_ATTACHMENT_MAX_BYTES": str(MAX_BYTES),
        },
    )
    try:
        app.start()
        yield app
    finally:
        app.stop()


def _ready(page: Page, chat_app: ChatApp, chat_user: str) -> None:
    """Signed in, with the chat's session up (the Share button comes with it): uploads go to
    that session."""
    sign_in(page, chat_app, chat_user)
    # On a busy machine the session can take a while after the page.
    expect(page.get_by_role("button", name="Share")).to_be_visible(timeout=45_000)


def _upload(page: Page, files: list[tuple[str, str, bytes]]) -> list[int]:
    """Attach files with the message box's file picker; the status of each upload."""
    uploads: list[Response] = []

    def seen(response: Response) -> None:
        if "/project/file" in response.url and response.request.method == "POST":
            uploads.append(response)

    page.on("response", seen)
    page.locator("input[type=file]").first.set_input_files(
        [{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in files]
    )
    for _ in range(300):
        if len(uploads) >= len(files):
            break
        page.wait_for_timeout(50)
    page.remove_listener("response", seen)
    return [response.status for response in uploads]


def _attach(page: Page, files: list[tuple[str, str, bytes]]) -> None:
    statuses = _upload(page, files)
    for _ in range(10):
        if 404 not in statuses:
            break
        # The chat's session (after a change of profile, a new one) is not up yet; as a person
        # would, attach again a moment later.
        page.wait_for_timeout(500)
        statuses = _upload(page, files)
    assert statuses == [200] * len(files)
    attachments = page.locator("#attachments")
    expect(attachments).to_be_visible()
    for name, mime, _ in files:
        if not mime.startswith("image/"):  # an image shows as a thumbnail
            expect(attachments.get_by_text(name)).to_be_visible()


def _toast(page: Page, text: str | re.Pattern[str]) -> None:
    expect(page.locator("[data-sonner-toast]").filter(has_text=text).first).to_be_visible()


def _last_user_text(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    assert isinstance(content, str)
    return content


def _attached_block(sent: str, name: str) -> str:
    found = re.search(rf'<attached file="{re.escape(name)}"[^>]*>\n(.*?)\n</attached>', sent, re.S)
    assert found, f"{name} is not in what the model got:\n{sent}"
    return found.group(1)


def _stored_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "app-data" / "chat-files"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_a_pdf_and_a_spreadsheet_reach_the_model_with_their_token_counts_shown(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    revenue = random.randint(10_000, 99_999)
    upstream.script(reply=f"Northwind's revenue was {revenue}.")
    memo = "Quarterly memo. Sales grew in every region; the table has the figures."
    sheet = xlsx_file([["region", "revenue"], ["Acme", revenue + 17], ["Northwind", revenue]])
    _ready(page, chat_app, chat_user)
    _attach(
        page,
        [
            ("memo.pdf", "application/pdf", pdf_file([memo])),
            (
                "figures.xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                sheet,
            ),
        ],
    )
    # Before sending: what each file is worth, and the model's room.
    for name in ("memo.pdf", "figures.xlsx"):
        _toast(page, re.compile(rf"{re.escape(name)}: .* tokens; test-model has room for"))
    assert upstream.requests == []
    send(page, "What was Northwind's revenue?")

    expect(page.get_by_text(f"Northwind's revenue was {revenue}.")).to_be_visible()
    sent = _last_user_text(upstream.requests[-1])
    assert sent.startswith("What was Northwind's revenue?")
    assert str(revenue) in _attached_block(sent, "figures.xlsx")
    assert memo in " ".join(_attached_block(sent, "memo.pdf").split())
    # The note before the answer counts each file as the model got it (four characters a token).
    note = page.locator(".message-content").filter(has_text="Attached").first
    for name in ("memo.pdf", "figures.xlsx"):
        block = _attached_block(sent, name)
        tokens = math.ceil(len(block) / 4)
        expect(note).to_contain_text(re.compile(rf"{re.escape(name)}: .*, {tokens:,} tokens"))
    expect(note).to_contain_text("test-model gets all of it")
    # Both files are kept with the conversation, under their owner, and served to them alone.
    wait_until(lambda: len(_stored_files(tmp_path)) == 4, what="two files and their types")
    rows = chat_app.query("SELECT url FROM elements WHERE name = 'figures.xlsx'")
    url = chat_app.url + str(rows[0]["url"])
    owner_gets = page.request.get(url)
    assert owner_gets.status == 200 and owner_gets.body() == sheet
    signed_out = httpx.get(url, follow_redirects=False)
    assert signed_out.status_code != 200 and signed_out.content != sheet
    chat_app.assert_no_storage_errors()


def test_a_file_larger_than_the_context_brings_an_offer_instead_of_a_send(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply="A summary of the first pages.")
    pages = [
        f"Page marker {n}. " + "Numbers and words to fill the page. " * 30 for n in range(1, 13)
    ]
    _ready(page, chat_app, chat_user)
    _attach(page, [("long.pdf", "application/pdf", pdf_file(pages))])
    _toast(page, re.compile(r"long\.pdf: PDF, 12 pages, .* On sending, the chat offers what fits"))
    question = "Summarise this report"
    send(page, question)

    expect(page.get_by_text("That does not fit")).to_be_visible()
    switch = page.get_by_role("button", name=re.compile(r"Switch to big-model"))
    expect(switch).to_be_visible()
    send_pages = page.get_by_role("button", name=re.compile(r"Send pages 1-\d+ of long\.pdf"))
    expect(send_pages).to_be_visible()
    assert upstream.requests == []

    label = send_pages.inner_text()
    count = int(re.search(r"pages 1-(\d+)", label).group(1))  # type: ignore[union-attr]
    send_pages.click()
    expect(page.get_by_text("A summary of the first pages.")).to_be_visible()
    sent = _last_user_text(upstream.requests[-1])
    block = _attached_block(sent, "long.pdf")
    assert f"Page marker {count}." in block
    assert f"Page marker {count + 1}." not in block
    room = CONTEXT - ANSWER_ROOM - math.ceil(len(question) / 4)
    assert math.ceil(len(block) / 4) <= room < math.ceil(len(block) / 4) + 400
    assert f'kind="PDF, pages 1-{count} of 12"' in sent


def test_switching_to_a_larger_model_sends_the_whole_file_to_it(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply="All twelve pages read.")
    pages = [
        f"Page marker {n}. " + "Numbers and words to fill the page. " * 30 for n in range(1, 13)
    ]
    _ready(page, chat_app, chat_user)
    _attach(page, [("long.pdf", "application/pdf", pdf_file(pages))])
    send(page, "Summarise this report")
    page.get_by_role("button", name=re.compile(r"Switch to big-model")).click()

    expect(page.get_by_text("All twelve pages read.")).to_be_visible()
    assert upstream.requests[-1]["model"] == "scripted-model"
    sent = _last_user_text(upstream.requests[-1])
    assert "Page marker 12." in _attached_block(sent, "long.pdf")
    assert "Page marker 1." in sent
    # big-model answered, and the conversation stays with it.
    replies = chat_app.query(
        "SELECT metadata FROM steps WHERE type = 'assistant_message' AND metadata LIKE ?",
        "%switchboard_reply%",
    )
    assert [json.loads(row["metadata"])["model"] for row in replies] == ["big-model"]
    wait_until(
        lambda: (
            json.loads(chat_app.query("SELECT metadata FROM threads")[0]["metadata"] or "{}").get(
                "model"
            )
            == "big-model"
        ),
        what="the conversation's model to be big-model",
    )


def test_an_image_for_a_model_without_image_input_is_refused_before_sending(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    _ready(page, chat_app, chat_user)
    assert _upload(page, [("chart.png", "image/png", png_file(64, 48))]) == [400]

    _toast(page, "Failed to upload chart.png: test-model does not take images")
    expect(page.locator("#attachments").get_by_text("chart.png")).to_have_count(0)
    assert upstream.requests == []
    assert _session_files() == set()


def test_an_image_goes_to_a_model_that_takes_images_as_a_picture(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply="A red square.")
    image = png_file(64, 48)
    _ready(page, chat_app, chat_user)
    page.locator("#chat-profiles").click()
    page.locator('[data-test="select-item:vision-model"]').click()
    expect(page.locator("#chat-profiles")).to_contain_text("vision-model")
    expect(page.get_by_role("button", name="Share")).to_be_visible()
    _attach(page, [("square.png", "image/png", image)])
    _toast(page, "square.png: image 64×48")
    send(page, "What is in this picture?")

    expect(page.get_by_text("A red square.")).to_be_visible()
    content = upstream.requests[-1]["messages"][-1]["content"]
    assert isinstance(content, list)
    texts = [part["text"] for part in content if part["type"] == "text"]
    urls = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
    assert texts == ["What is in this picture?"]
    assert urls == ["data:image/png;base64," + base64.b64encode(image).decode()]


BAD_FILES = [
    (
        ("broken.pdf", "application/pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nbroken"),
        "broken.pdf could not be read as a PDF: it looks damaged.",
    ),
    (("empty.txt", "text/plain", b""), "empty.txt is empty (0 bytes)"),
    (
        ("huge.txt", "text/plain", b"word " * (MAX_BYTES // 5 + 1000)),
        f"huge.txt is {(MAX_BYTES + 5000) // 1024} KB; files of at most {MAX_BYTES // 1024} KB",
    ),
    (
        ("tool.exe", "application/octet-stream", b"MZ\x90\x00\x03"),
        "tool.exe: the chat does not read this kind of file",
    ),
]


def _session_files() -> set[Path]:
    """What Chainlit keeps of the uploads of the sessions (the files a message is sent with)."""
    root = REPO_ROOT / ".files"
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


def test_bad_files_each_get_a_clear_message_and_nothing_is_kept(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    _ready(page, chat_app, chat_user)
    before = _session_files()
    for file, says in BAD_FILES:
        assert _upload(page, [file]) == [400], file[0]
        _toast(page, f"Failed to upload {file[0]}: {says}")
    expect(page.locator("#attachments")).to_have_count(0)
    assert _session_files() == before
    assert upstream.requests == []
    assert chat_app.query("SELECT id FROM elements") == []
    assert _stored_files(tmp_path) == []
