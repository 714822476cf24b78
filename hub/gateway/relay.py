"""Passing an answer on to the client and accounting for it.

A stream is passed on event by event as it arrives. It ends with `[DONE]` (or a finish
reason); an upstream that breaks off or stops short of that gets an error event appended, so
the client never mistakes a cut answer for a whole one.
"""

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from hub.gateway.attempt import Answer
from hub.gateway.breaker import Breaker
from hub.gateway.catalog import CatalogEntry, Deployment
from hub.gateway.chat_request import ChatRequest
from hub.gateway.limits import Limits
from hub.services.services import ServiceIdentity
from hub.services.usage import UsageEntry, UsageRecorder

__all__ = ["Accounting", "ModelRename", "relay_stream", "usage_of"]

_EVENT_END = re.compile(rb"\r?\n\r?\n")
_USAGE_MARKS = (b'"usage":{', b'"usage": {')


def usage_of(document: dict[str, Any]) -> tuple[int, int]:
    usage = document.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _estimate_stream_usage(record: UsageEntry, body: dict[str, Any], events: int) -> None:
    """For upstreams that never report usage in streams (llama.cpp's server): each content
    event carries about one token, and a prompt has about one token per four characters."""
    prompt_chars = sum(
        len(m["content"]) for m in body.get("messages", []) if isinstance(m.get("content"), str)
    )
    record.input_tokens = -(-prompt_chars // 4)
    # Less the role event, the finish event and [DONE].
    record.output_tokens = max(events - 3, 0)
    record.usage_estimated = True


class ModelRename:
    """Puts the catalog's name of the answering model in the `model` field, in place of the
    provider's (which is often a dated variant, e.g. gpt-4o-mini-2024-07-18)."""

    # A top-level "model" key; inside strings quotes are escaped, so content never matches.
    _FIELD = re.compile(rb'"model":\s*"(?:[^"\\]|\\.)*"')

    def __init__(self, public_name: str) -> None:
        self._field = b'"model":' + orjson.dumps(public_name)
        self._seen: bytes | None = None

    def apply(self, data: bytes, count: int = 0) -> bytes:
        return self._FIELD.sub(self._field, data, count)

    def stream(self, data: bytes) -> bytes:
        """For a stream's events, which repeat one model field: found once, then replaced
        as plain bytes."""
        if self._seen is None:
            found = self._FIELD.search(data)
            if found is None:
                return data
            self._seen = found.group(0)
        return data.replace(self._seen, self._field)


@dataclass(slots=True)
class Accounting:
    """Where a call's usage goes: the usage records, and the service's limit counters."""

    recorder: UsageRecorder
    limits: Limits
    service: ServiceIdentity
    record: UsageEntry
    started: float

    def finish(self, entry: CatalogEntry, status: int, error: str | None) -> None:
        record = self.record
        record.latency_ms = (time.perf_counter() - self.started) * 1000
        record.status_code = status
        record.error = error[:1000] if error else None
        record.cost_usd = entry.cost_usd(record.input_tokens, record.output_tokens)
        self.recorder.add(record)
        tokens = record.input_tokens + record.output_tokens
        if self.service.limited and (tokens or record.cost_usd):
            self.limits.spend(self.service, tokens, record.cost_usd)


def _split_events(buffer: bytes, record: UsageEntry, keep_usage: bool) -> tuple[bytes, bytes]:
    """Split complete SSE events off `buffer`; return (bytes to send, the incomplete rest)."""
    if _USAGE_MARKS[0] not in buffer and _USAGE_MARKS[1] not in buffer:
        lf, crlf = buffer.rfind(b"\n\n"), buffer.rfind(b"\r\n\r\n")
        end = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        return buffer[:end], buffer[end:]
    out: list[bytes] = []
    start = 0
    for match in _EVENT_END.finditer(buffer):
        event = buffer[start : match.end()]
        start = match.end()
        if _USAGE_MARKS[0] in event or _USAGE_MARKS[1] in event:
            try:
                chunk = orjson.loads(event.strip().removeprefix(b"data:").strip())
            except orjson.JSONDecodeError:
                out.append(event)
                continue
            if isinstance(chunk, dict) and chunk.get("usage"):
                record.input_tokens, record.output_tokens = usage_of(chunk)
                if not keep_usage and not chunk.get("choices"):
                    continue
        out.append(event)
    return b"".join(out), buffer[start:]


def _ends(events: bytes) -> bool:
    """Whether these events close the answer: [DONE], or a choice's finish reason."""
    return b"[DONE]" in events or b'"finish_reason":"' in events or b'"finish_reason": "' in events


def _error_event(message: str) -> bytes:
    return b"data: " + orjson.dumps({"error": {"message": message, "type": "upstream_error"}})


async def relay_stream(
    answer: Answer,
    entry: CatalogEntry,
    deployment: Deployment,
    request: ChatRequest,
    accounting: Accounting,
    rename: ModelRename,
    breaker: Breaker,
) -> AsyncIterator[bytes]:
    upstream, record = answer.upstream, accounting.record
    keep_usage = request.client_wants_usage
    buffer = b""
    events = 0
    ended = False
    status, error = 499, "client went away before the end of the stream"

    def complete_events(data: bytes) -> bytes:
        nonlocal buffer, events, ended
        out, buffer = _split_events(buffer + data, record, keep_usage)
        if out:
            events += out.count(b"data:")
            ended = ended or _ends(out)
            out = rename.stream(out)
        return out

    try:
        if out := complete_events(answer.first):
            yield out
        async for data in upstream.content.iter_any():
            if out := complete_events(data):
                yield out
        if buffer:
            ended = ended or _ends(buffer)
            yield rename.stream(buffer)
        if ended:
            status, error = 200, None
        else:
            status, error = 502, "upstream stream ended before it was complete"
            message = f"Upstream {deployment.name} ended its stream before the answer was complete."
            yield b"\n\n" + _error_event(message) + b"\n\n"
            await breaker.failure(deployment.name, probe=False)
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, error = 502, f"upstream stream broke off: {exc}"
        yield _error_event(f"Upstream {deployment.name} broke off: {exc}") + b"\n\n"
        await breaker.failure(deployment.name, probe=False)
    finally:
        if status == 200:
            upstream.release()
        else:
            upstream.close()
        if not (record.input_tokens or record.output_tokens):
            _estimate_stream_usage(record, request.body, events)
        accounting.finish(entry, status, error)
