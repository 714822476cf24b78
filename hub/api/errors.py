"""The one place a refusal (hub/core/errors.py) becomes an HTTP answer: its status, and its
body for the API (`{"detail": ...}`), the OpenAI-compatible gateway (OpenAI's error shape) and
the pages (the reason in words)."""

from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from hub.core.errors import (
    ConflictError,
    GoneError,
    InvalidError,
    NotFoundError,
    PermissionDeniedError,
    Refusal,
    TooLargeError,
    TooSoonError,
    UnauthenticatedError,
    UnsuitableError,
    UpstreamError,
)
from hub.gateway.errors import openai_error_response

__all__ = ["declare_error_body", "refusal_response", "status_of"]

# What the API answers a request it refuses as invalid (422), in its OpenAPI document: the
# reason in words (hub/main.py's handlers), not FastAPI's list of validation errors.
_ERROR_BODY: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    "properties": {
        "detail": {
            "title": "Detail",
            "type": "string",
            "description": "What is wrong with the request and what to send instead.",
        }
    },
    "required": ["detail"],
}

_STATUS: dict[type[Refusal], int] = {
    UnsuitableError: 400,
    UnauthenticatedError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    GoneError: 410,
    TooLargeError: 413,
    InvalidError: 422,
    TooSoonError: 429,
    UpstreamError: 502,
}


def status_of(refusal: Refusal) -> int:
    return next((_STATUS[kind] for kind in type(refusal).__mro__ if kind in _STATUS), 400)


async def refusal_response(request: Request, exc: Exception) -> Response:
    """The app's handler for every refusal a route lets through."""
    assert isinstance(exc, Refusal)
    status = status_of(exc)
    path = request.url.path
    if path.startswith("/v1/"):
        if isinstance(exc, UnauthenticatedError):
            return openai_error_response(
                status, exc.message, type="authentication_error", code=exc.code
            )
        return openai_error_response(status, exc.message)
    if path.startswith("/api/") or not isinstance(exc, PermissionDeniedError):
        response = JSONResponse({"detail": exc.message}, status_code=status)
        if isinstance(exc, TooSoonError):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    # A page's form or button: the reason in words, as the cross-site check gives it.
    return PlainTextResponse(exc.message, status_code=status)


def declare_error_body(openapi: dict[str, Any]) -> dict[str, Any]:
    """`openapi` with the 422 answers declared as the API sends them."""
    schemas = openapi.get("components", {}).get("schemas", {})
    if "HTTPValidationError" in schemas:
        schemas["HTTPValidationError"] = _ERROR_BODY
        schemas.pop("ValidationError", None)
    return openapi
