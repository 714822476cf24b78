"""A form with one file: a test set's cases. Its body's size is limited before it is read, as
every body's is (hub/body_limits.py), by `UPLOAD_LIMIT` on the routes in `UPLOAD_PATHS`."""

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from hub.body_limits import BodyLimit
from hub.core.errors import InvalidError
from hub.evaluation.case_files import MAX_FILE_BYTES
from hub.evaluation.sets import Upload

__all__ = ["UPLOAD_LIMIT", "UPLOAD_PATHS", "multipart_body", "read_upload"]

# The file, and room for the form's other fields and the multipart framing.
UPLOAD_LIMIT = BodyLimit(
    MAX_FILE_BYTES + 64 * 1024,
    "a test set upload",
    f"The file may hold {MAX_FILE_BYTES:,} bytes (10 MB); split it into smaller test sets.",
)
# The routes that read their form with `read_upload`: the API's and the pages'.
UPLOAD_PATHS = (
    "/api/evaluation/sets",
    "/api/evaluation/sets/{name}/versions",
    "/evaluation/sets/new",
    "/evaluation/sets/{name}/versions",
)


async def read_upload(request: Request) -> Upload:
    """The multipart form's text fields and its one file, `file`."""
    async with request.form(max_files=1, max_fields=20) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidError(
                "Send the test cases as a file in the multipart field 'file' (a .csv or .jsonl)."
            )
        fields = {key: value.strip() for key, value in form.items() if isinstance(value, str)}
        return Upload(fields=fields, filename=file.filename or "", data=await file.read())


def multipart_body(**fields: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its form with `read_upload`: `file`
    and the text fields named here with their descriptions."""
    properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": "a .csv or .jsonl"}
    }
    properties.update(
        {name: {"type": "string", "description": text} for name, text in fields.items()}
    )
    schema = {"type": "object", "required": ["file"], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }
