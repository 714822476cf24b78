"""CSV downloads for admins, made safe to open in a spreadsheet: a text cell that starts like
a formula (`=`, `+`, `-`, `@`, or a tab or carriage return before one) is kept as text with a
leading apostrophe, so a name or comment someone typed never runs as a formula."""

import csv
import io
from collections.abc import Iterable, Sequence

from starlette.responses import Response

__all__ = ["csv_download", "spreadsheet_safe"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> object:
    """The cell as written to the CSV; numbers stay numbers."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def csv_download(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
