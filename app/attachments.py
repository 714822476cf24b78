"""What a file attached to a chat message gives the model: the text of a document (PDF page by
page, DOCX, XLSX, PPTX, CSV, Markdown, plain text) or an image, with its size in tokens.

Extraction is done by libraries (pdfplumber for PDF pages, markitdown for the office formats
and text), never by parsers of our own. A file that cannot be used (empty, too large, damaged,
of a kind the chat does not read) comes back as an `AttachmentRefused` whose message says why
in words the person understands.
"""

import base64
import io
import logging
import math
from dataclasses import dataclass
from pathlib import PurePath

import mammoth  # type: ignore[import-untyped]
import pdfplumber
from markitdown import DocumentConverter, StreamInfo
from markitdown.converters import (
    CsvConverter,
    HtmlConverter,
    PlainTextConverter,
    PptxConverter,
    XlsxConverter,
)
from pdfminer.pdfparser import PDFSyntaxError
from PIL import Image, UnidentifiedImageError

__all__ = [
    "CHARS_PER_TOKEN",
    "DOCUMENT_KINDS",
    "IMAGE_KINDS",
    "AttachmentRefused",
    "Document",
    "Picture",
    "format_size",
    "read_attachment",
    "shared_text",
    "text_tokens",
]

logger = logging.getLogger(__name__)

# The gateway's own estimate when a provider reports no usage: about four characters a token.
CHARS_PER_TOKEN = 4
DOCUMENT_KINDS = {
    ".pdf": "PDF",
    ".docx": "Word document",
    ".xlsx": "spreadsheet",
    ".pptx": "presentation",
    ".csv": "CSV table",
    ".md": "Markdown text",
    ".markdown": "Markdown text",
    ".txt": "text",
}
IMAGE_KINDS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
# The converter of each kind but DOCX (mammoth's HTML, then markitdown's): asked by name,
# so a damaged file is not read as plain text.
_CONVERTERS: dict[str, type[DocumentConverter]] = {
    ".xlsx": XlsxConverter,
    ".pptx": PptxConverter,
    ".csv": CsvConverter,
    ".md": PlainTextConverter,
    ".markdown": PlainTextConverter,
    ".txt": PlainTextConverter,
}
# A zip archive (DOCX, XLSX and PPTX are) and a PDF start with these bytes.
_ZIP_MAGIC = b"PK\x03\x04"
_PDF_MAGIC = b"%PDF-"


class AttachmentRefused(Exception):
    """The file cannot go to the model; the message says why."""


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def format_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@dataclass(frozen=True, slots=True)
class Document:
    """A document's text; a PDF's page by page (`pages`), others as one page."""

    name: str
    kind: str
    pages: tuple[str, ...]

    @property
    def is_paged(self) -> bool:
        return self.kind == "PDF"

    @property
    def tokens(self) -> int:
        return self.tokens_of(len(self.pages))

    def tokens_of(self, pages: int) -> int:
        return text_tokens(self.text_of(pages))

    def text_of(self, pages: int) -> str:
        """The text of the first `pages` pages."""
        if not self.is_paged:
            return self.pages[0]
        return "\n\n".join(
            f"[page {number}]\n{text}" for number, text in enumerate(self.pages[:pages], 1)
        )

    def pages_that_fit(self, tokens: int) -> int:
        """The most leading pages whose text fits in `tokens` (0 when not even the first)."""
        fitting = 0
        for count in range(1, len(self.pages) + 1):
            if self.tokens_of(count) > tokens:
                break
            fitting = count
        return fitting


@dataclass(frozen=True, slots=True)
class Picture:
    name: str
    mime: str
    data: bytes
    width: int
    height: int

    @property
    def tokens(self) -> int:
        """What an image costs in OpenAI's tile rule (the one most providers follow): scaled
        to fit 2048 x 2048, then its short side to 768; 170 tokens per 512-pixel tile, plus 85."""
        width, height = float(self.width), float(self.height)
        if max(width, height) > 2048:
            scale = 2048 / max(width, height)
            width, height = width * scale, height * scale
        if min(width, height) > 768:
            scale = 768 / min(width, height)
            width, height = width * scale, height * scale
        tiles = math.ceil(width / 512) * math.ceil(height / 512)
        return 85 + 170 * tiles

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def _accepted() -> str:
    kinds = sorted({*DOCUMENT_KINDS, *IMAGE_KINDS})
    return ", ".join(kinds)


def read_attachment(name: str, data: bytes, *, max_bytes: int) -> Document | Picture:
    """The document or picture in the file `name`, or AttachmentRefused saying why not."""
    suffix = PurePath(name).suffix.lower()
    if suffix not in DOCUMENT_KINDS and suffix not in IMAGE_KINDS:
        raise AttachmentRefused(
            f"{name}: the chat does not read this kind of file. It reads {_accepted()}."
        )
    if not data:
        raise AttachmentRefused(f"{name} is empty (0 bytes): there is nothing to read.")
    if len(data) > max_bytes:
        raise AttachmentRefused(
            f"{name} is {format_size(len(data))}; files of at most {format_size(max_bytes)} "
            "can be attached."
        )
    if suffix in IMAGE_KINDS:
        return _picture(name, data, IMAGE_KINDS[suffix])
    kind = DOCUMENT_KINDS[suffix]
    if suffix == ".pdf":
        pages = _pdf_pages(name, data)
    else:
        pages = (_converted(name, data, suffix, kind),)
    if not "".join(pages).strip():
        raise AttachmentRefused(
            f"{name} has no text to read"
            + (" (a scanned PDF holds pictures of pages, not text)." if suffix == ".pdf" else ".")
        )
    return Document(name=name, kind=kind, pages=pages)


def _picture(name: str, data: bytes, mime: str) -> Picture:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise AttachmentRefused(f"{name} could not be read as an image: it looks damaged.") from (
            error
        )
    return Picture(name=name, mime=mime, data=data, width=width, height=height)


def _pdf_pages(name: str, data: bytes) -> tuple[str, ...]:
    damaged = AttachmentRefused(f"{name} could not be read as a PDF: it looks damaged.")
    if not data.startswith(_PDF_MAGIC):
        raise damaged
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            return tuple((page.extract_text() or "").strip() for page in pdf.pages)
    except (PDFSyntaxError, ValueError, KeyError, TypeError, OSError) as error:
        raise damaged from error
    except Exception as error:
        # pdfminer raises many kinds of errors for a broken file; all mean the same here.
        logger.info("cannot read the PDF %s: %r", name, error)
        raise damaged from error


def _converted(name: str, data: bytes, suffix: str, kind: str) -> str:
    damaged = AttachmentRefused(f"{name} could not be read as a {kind}: it looks damaged.")
    if suffix in (".docx", ".xlsx", ".pptx") and not data.startswith(_ZIP_MAGIC):
        raise damaged
    if suffix in (".csv", ".md", ".markdown", ".txt") and b"\x00" in data:
        raise AttachmentRefused(f"{name} is not text: it holds binary data.")
    if suffix in (".csv", ".md", ".markdown", ".txt"):
        try:
            data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise AttachmentRefused(f"{name} is not UTF-8 text; save it as UTF-8.") from error
    try:
        if suffix == ".docx":
            html = mammoth.convert_to_html(io.BytesIO(data)).value
            result = HtmlConverter().convert_string(html)
        else:
            result = _CONVERTERS[suffix]().convert(
                io.BytesIO(data), StreamInfo(extension=suffix, filename=name, charset="utf-8")
            )
    except Exception as error:
        # The libraries under the converters raise many kinds of errors for a broken file
        # (zipfile, lxml, openpyxl...); all mean the same here.
        logger.info("cannot convert %s: %r", name, error)
        raise damaged from error
    return result.markdown.strip()


def shared_text(name: str, mime: str | None, data: bytes, *, limit: int) -> str | None:
    """The text a share keeps of a message's file: a small text file as it is, a document's
    text (cut at `limit` characters, and said so); None for an image or an unreadable file."""
    if (mime or "").startswith("text/") and len(data) <= limit:
        return data.decode("utf-8", "replace")
    if PurePath(name).suffix.lower() not in DOCUMENT_KINDS:
        return None
    try:
        document = read_attachment(name, data, max_bytes=len(data) or 1)
    except AttachmentRefused:
        return None
    if not isinstance(document, Document):
        return None
    text = document.text_of(len(document.pages))
    return text if len(text) <= limit else text[:limit] + "\n[… the rest is not in the share]"
