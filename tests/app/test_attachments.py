"""Files attached in chat, read into what the model gets: real files of each kind, made here with
the libraries that write them, and the bad ones a person may attach."""

import base64
import csv
import io
import math
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chainlit.types import ThreadDict
from fpdf import FPDF
from openpyxl import Workbook
from PIL import Image
from pptx import Presentation
from pptx.util import Inches

from app.attaching import attached_content, markdown_text
from app.attachments import AttachmentRefused, Document, Picture, read_attachment
from app.file_store import LocalFileStore
from app.history import ATTACHED_TEXT, to_openai_messages
from app.sharing import snapshot_of

LIMIT = 5 * 1024 * 1024
FIGURE = "48213"


def pdf_file(pages: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def xlsx_file(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pptx_file(text: str) -> bytes:
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(1))
    box.text_frame.text = text
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def docx_file(text: str) -> bytes:
    """The smallest Word document: the three parts a .docx needs, as Word writes them."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org'
            '/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
            'openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
            '"application/xml"/><Override PartName="/word/document.xml" ContentType="application'
            '/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>',
        )
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.'
            'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
            f"{text}</w:t></w:r></w:p></w:body></w:document>",
        )
    return out.getvalue()


def csv_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def png_file(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[str], bytes]
    kind: str


KINDS = [
    Kind("report.pdf", lambda text: pdf_file([text]), "PDF"),
    Kind("notes.docx", docx_file, "Word document"),
    Kind(
        "figures.xlsx", lambda text: xlsx_file([["region", "note"], ["North", text]]), "spreadsheet"
    ),
    Kind("deck.pptx", pptx_file, "presentation"),
    Kind("table.csv", lambda text: csv_file([["region", "note"], ["North", text]]), "CSV table"),
    Kind("readme.md", lambda text: f"# Notes\n\n{text}\n".encode(), "Markdown text"),
    Kind("plain.txt", lambda text: f"{text}\n".encode(), "text"),
]


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
def test_each_kind_of_document_gives_its_text(kind: Kind) -> None:
    sentence = f"Revenue in the North was {FIGURE} euros"
    document = read_attachment(kind.name, kind.make(sentence), max_bytes=LIMIT)
    assert isinstance(document, Document)
    assert document.kind == kind.kind
    assert sentence in " ".join(document.text_of(len(document.pages)).split())
    assert document.tokens == math.ceil(len(document.text_of(len(document.pages))) / 4)


def test_a_text_file_counts_about_four_characters_a_token() -> None:
    text = "The quarterly figure is 48213, up from 41022 a year before."
    document = read_attachment("plain.txt", text.encode(), max_bytes=LIMIT)
    assert isinstance(document, Document)
    assert document.tokens == math.ceil(len(text) / 4)


def test_a_pdf_is_read_page_by_page_and_the_leading_pages_that_fit_are_found() -> None:
    pages = [f"Page marker {n}. " + "Words that fill the page. " * 40 for n in range(1, 7)]
    document = read_attachment("long.pdf", pdf_file(pages), max_bytes=LIMIT)
    assert isinstance(document, Document)
    assert len(document.pages) == 6
    three = document.tokens_of(3)
    assert document.pages_that_fit(three) == 3
    assert document.pages_that_fit(three - 1) == 2
    assert document.pages_that_fit(document.tokens) == 6
    assert document.pages_that_fit(5) == 0
    sent = document.text_of(3)
    assert "Page marker 3" in sent and "Page marker 4" not in sent


def test_an_image_counts_its_tiles() -> None:
    picture = read_attachment("photo.png", png_file(1024, 1024), max_bytes=LIMIT)
    assert isinstance(picture, Picture)
    # Scaled to 768 x 768 on its short side: two 512-pixel tiles a side.
    tiles = math.ceil(768 / 512) ** 2
    assert picture.tokens == 85 + 170 * tiles


def test_the_model_gets_the_message_then_each_file_and_images_as_parts() -> None:
    document = read_attachment(
        "figures.xlsx", xlsx_file([["region", "revenue"], ["North", int(FIGURE)]]), max_bytes=LIMIT
    )
    image_bytes = png_file(40, 30)
    picture = read_attachment("chart.png", image_bytes, max_bytes=LIMIT)
    content, attached = attached_content("What was North's revenue?", [document])
    assert isinstance(content, str)
    assert content.startswith("What was North's revenue?")
    assert FIGURE in attached and attached in content

    parts, _ = attached_content("And this chart?", [document, picture])
    assert isinstance(parts, list)
    text_part, image_part = parts
    assert isinstance(text_part, dict) and isinstance(image_part, dict)
    assert text_part["type"] == "text" and FIGURE in text_part["text"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == image_bytes


def test_only_the_chosen_pages_of_a_pdf_go_to_the_model() -> None:
    pages = [f"Page marker {n}." for n in range(1, 5)]
    document = read_attachment("long.pdf", pdf_file(pages), max_bytes=LIMIT)
    assert isinstance(document, Document)
    content, _ = attached_content("Summarise", [document], [2])
    assert isinstance(content, str)
    assert "pages 1-2 of 4" in content
    assert "Page marker 2" in content and "Page marker 3" not in content


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage", "damaged"),
        ("renamed.pdf", b"this is not a PDF at all", "damaged"),
        ("empty.txt", b"", "is empty"),
        ("program.exe", b"MZ\x90\x00", "does not read this kind of file"),
        ("broken.xlsx", b"PK\x03\x04 not really a spreadsheet", "damaged"),
        ("broken.docx", b"not a zip", "damaged"),
        ("latin1.txt", "café".encode("latin-1"), "not UTF-8"),
        ("broken.png", b"\x89PNG\r\n\x1a\n truncated", "damaged"),
        ("blank.pdf", pdf_file([""]), "no text"),
    ],
)
def test_bad_files_are_refused_saying_why(name: str, data: bytes, says: str) -> None:
    with pytest.raises(AttachmentRefused) as refused:
        read_attachment(name, data, max_bytes=LIMIT)
    assert name in str(refused.value)
    assert says in str(refused.value)


def test_a_file_over_the_limit_is_refused_with_both_sizes() -> None:
    data = b"x" * 3000
    with pytest.raises(AttachmentRefused) as refused:
        read_attachment("big.txt", data, max_bytes=2048)
    assert "big.txt is 3 KB" in str(refused.value)
    assert "at most 2 KB" in str(refused.value)


@dataclass
class _Item:
    type: str
    content: str
    metadata: dict[str, Any] | None = None
    command: str | None = None


def test_later_turns_history_carries_the_text_of_earlier_attachments() -> None:
    attached = f'<attached file="figures.xlsx">\n| North | {FIGURE} |\n</attached>'
    messages = to_openai_messages(
        [
            _Item("user_message", "What was North's revenue?", {ATTACHED_TEXT: attached}),
            _Item("assistant_message", f"{FIGURE} euros.", {"switchboard_reply": True}),
        ]
    )
    assert messages[0] == {"role": "user", "content": f"What was North's revenue?\n\n{attached}"}


def test_a_share_keeps_the_text_of_attached_documents_and_names_images(tmp_path: Path) -> None:
    files = LocalFileStore(tmp_path)
    sheet = xlsx_file([["region", "revenue"], ["North", int(FIGURE)]])
    for key, data in (("u1/e1/figures.xlsx", sheet), ("u1/e2/chart.png", png_file(8, 8))):
        files.path_of(key).parent.mkdir(parents=True)
        files.path_of(key).write_bytes(data)
    thread: ThreadDict = {  # type: ignore[typeddict-item]
        "id": "t1",
        "name": "Revenue",
        "steps": [
            {"id": "s1", "type": "user_message", "name": "key-1", "output": "North?"},
        ],
        "elements": [
            {
                "forId": "s1",
                "type": "file",
                "name": "figures.xlsx",
                "objectKey": "u1/e1/figures.xlsx",
                "mime": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            },
            {
                "forId": "s1",
                "type": "image",
                "name": "chart.png",
                "objectKey": "u1/e2/chart.png",
                "mime": "image/png",
            },
        ],
    }
    snapshot = snapshot_of(thread, files=files, person="ada", profile="test-model")
    spreadsheet, image = snapshot.steps[0].elements
    assert spreadsheet.name == "figures.xlsx" and FIGURE in (spreadsheet.text or "")
    assert image.name == "chart.png" and image.kind == "file" and image.text is None


def test_a_file_name_shows_as_it_is_in_the_chats_markdown() -> None:
    name = "[report](javascript:alert(1)) *bold* <b>.pdf"
    shown = markdown_text(name)
    assert re.sub(r"\\(.)", r"\1", shown) == name
    assert not re.search(r"(?<!\\)[\[\]()*<>]", shown)
