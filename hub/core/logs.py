"""The log lines of the hub and of the chat: one line each on stderr, as text or as JSON (one
object a line, for a log collector), every one with the request id of the work it belongs to
(hub/core/request_ids.py; "-" outside a request).

Uvicorn's own lines (its access log included, when it is on) are sent the same way, so a
process writes in one format. Chainlit's plain handler on the root logger is replaced.
"""

import logging
import sys
from datetime import UTC, datetime
from typing import Literal

import orjson

from hub.core.request_ids import current_request_id

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# Libraries that write a line for every HTTP request the process makes (the HTTP client) or
# every MCP session it opens (the MCP SDK): only their warnings, unless the level is DEBUG.
_CHATTY = ("httpx", "httpcore", "mcp")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class _QuietLibraries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        library = record.name.partition(".")[0]
        return library not in _CHATTY


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class _StderrHandler(logging.Handler):
    """Writes to the `sys.stderr` of the moment (which tests and tools may swap)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _is_plain_console(handler: logging.Handler) -> bool:
    """A handler `logging.basicConfig` puts on the root logger (as Chainlit does)."""
    return type(handler) is logging.StreamHandler and handler.stream in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )


def configure_logging(log_format: LogFormat, level: LogLevel = "INFO") -> None:
    """Send every log line of this process through one handler in `log_format`. Calling it
    again replaces the handler it put there before."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler) or _is_plain_console(handler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.addFilter(_RequestIdFilter())
    if level != "DEBUG":
        handler.addFilter(_QuietLibraries())
    handler.setFormatter(_JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT))
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        # A logger without handlers here is one uvicorn switched off (--no-access-log): it
        # decides whether to log by whether the logger has handlers, so it is left as it is.
        if uvicorn_logger.handlers:
            uvicorn_logger.handlers.clear()
            uvicorn_logger.propagate = True
