"""A form with one file, read with a size limit: the body is refused (413) as soon as it
passes the limit, before the rest of it is read, rather than spooled to disk whole."""

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.types import Message

from hub.core.errors import InvalidError, TooLargeError
from hub.evaluation.case_files import MAX_FILE_BYTES
from hub.evaluation.sets import Upload

__all__ = ["MAX_UPLOAD_BYTES", "multipart_body", "read_upload"]

# The file, and room for the form's other fields and the multipart framing.
MAX_UPLOAD_BYTES = MAX_FILE_BYTES + 64 * 1024


def _too_large(size: str) -> TooLargeError:
    return TooLargeError(
        f"The upload is {size} bytes; the limit is {MAX_FILE_BYTES:,} bytes (10 MB) for the "
        "file. Split it into smaller test sets."
    )


async def read_upload(request: Request) -> Upload:
    """The multipart form's text fields and its one file, `file`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_UPLOAD_BYTES:
        raise _too_large(f"{int(length):,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            raise _too_large(f"over {MAX_UPLOAD_BYTES:,}")

    async def replay() -> Message:
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    async with Request(request.scope, replay).form(max_files=1, max_fields=20) as form:
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
