"""Conversations as a PDF with real text (selectable, searchable) and real tables, drawn with
fpdf2 in DejaVu fonts so any script the fonts cover prints as written.

Where the DejaVu fonts are missing (the image installs Debian's fonts-dejavu-core), fpdf2's
built-in Helvetica and Courier stand in, and characters outside Latin-1 print as "?".
"""

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from app.conversation_format import ExportedConversation, ExportedMessage, ExportedTable

__all__ = ["MAX_PDF_COLUMNS", "MAX_PDF_ROWS", "export_pdf"]

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_FONTS = {
    ("text", ""): "DejaVuSans.ttf",
    ("text", "B"): "DejaVuSans-Bold.ttf",
    ("mono", ""): "DejaVuSansMono.ttf",
}
# Beyond these a table is cut short in the PDF (with a note); the JSON export has it whole.
MAX_PDF_ROWS = 500
MAX_PDF_COLUMNS = 10
_MAX_TEXT = 200_000


class _Document(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)
        self.unicode = self._add_fonts()

    def _add_fonts(self) -> bool:
        for folder in _FONT_DIRS:
            paths = {key: folder / name for key, name in _FONTS.items()}
            if all(path.is_file() for path in paths.values()):
                for (family, style), path in paths.items():
                    self.add_font(family, style, str(path))
                return True
        return False

    def use(self, family: str, style: str = "", size: float = 10) -> None:
        if self.unicode:
            self.set_font(family, style, size)
        else:
            self.set_font("courier" if family == "mono" else "helvetica", style, size)

    def printable(self, text: str) -> str:
        text = text[:_MAX_TEXT]
        if self.unicode:
            return text
        return text.encode("latin-1", "replace").decode("latin-1")

    def paragraph(self, text: str, family: str = "text", style: str = "", size: float = 10) -> None:
        self.use(family, style, size)
        self.multi_cell(
            0,
            size * 0.5,
            self.printable(text),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            wrapmode=WrapMode.CHAR if family == "mono" else WrapMode.WORD,
        )
        self.ln(1.5)


def _table(document: _Document, table: ExportedTable) -> None:
    columns = table.columns[:MAX_PDF_COLUMNS]
    rows = table.rows[:MAX_PDF_ROWS]
    document.use("text", "", 8)
    headings = FontFace(emphasis="BOLD", fill_color=(226, 232, 240))
    with document.table(
        headings_style=headings,
        line_height=4.5,
        text_align="LEFT",
        wrapmode=WrapMode.CHAR,
        padding=1,
    ) as drawn:
        header = drawn.row()
        for name in columns:
            header.cell(document.printable(name))
        for values in rows:
            row = drawn.row()
            for index in range(len(columns)):
                value = values[index] if index < len(values) else None
                row.cell(document.printable("" if value is None else str(value)))
    left_out = []
    if len(table.rows) > len(rows):
        left_out.append(f"the first {len(rows)} of {len(table.rows)} rows")
    if len(table.columns) > len(columns):
        left_out.append(f"the first {len(columns)} of {len(table.columns)} columns")
    if left_out:
        document.paragraph(f"Shown here: {' and '.join(left_out)}; the JSON export has them all.")
    document.ln(2)


def _message(document: _Document, message: ExportedMessage) -> None:
    who = {"user": "You", "assistant": message.author or "Assistant"}.get(message.kind)
    label = who or f"Tool: {message.author or 'tool'}"
    when = f" · {message.created_at[:16].replace('T', ' ')}" if message.created_at else ""
    document.paragraph(label + when, style="B", size=10)
    if message.kind == "tool":
        if message.input:
            document.paragraph(message.input, family="mono", size=8)
        document.paragraph(
            ("Error: " if message.is_error else "Result: ") + message.text, family="mono", size=8
        )
        return
    if message.text:
        document.paragraph(message.text)
    if message.sql:
        document.paragraph("SQL", style="B", size=9)
        document.paragraph(message.sql, family="mono", size=8)
    if message.table is not None and message.table.columns:
        _table(document, message.table)
    for file in message.files:
        document.paragraph(file.name, style="B", size=9)
        if file.text is not None:
            document.paragraph(file.text.rstrip("\n"), family="mono", size=8)
    document.ln(2)


def export_pdf(conversations: Sequence[ExportedConversation]) -> bytes:
    document = _Document()
    document.set_title("Switchboard conversations")
    for conversation in conversations:
        document.add_page()
        document.paragraph(conversation.title or "Untitled conversation", style="B", size=16)
        about = []
        if conversation.created_at:
            about.append(f"Started {conversation.created_at[:16].replace('T', ' ')} UTC")
        if conversation.model:
            about.append(f"with {conversation.model}")
        if about:
            document.paragraph(" ".join(about), size=9)
        document.ln(2)
        for message in conversation.messages:
            _message(document, message)
    if not conversations:
        document.add_page()
        document.paragraph("No conversations.")
    return bytes(document.output())
