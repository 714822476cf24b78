"""Passing an answer on to the client and accounting for it.

A stream is passed on event by event as it arrives. It ends with `[DONE]` (or a finish
reason); an upstream that breaks off or stops short of that gets an error event appended, so
the client never mistakes a cut answer for a whole one. A client that asked for usage
(`stream_options.include_usage`) gets it in the last chunk before `[DONE]`, as OpenAI sends
it: the provider's, or, from a provider that reports none, the estimate the call is billed on.
"""

import re
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from hub.core.metrics import GatewayMetrics
from hub.gateway.attempt import Answer
from hub.gateway.breaker import Breaker
from hub.gateway.chat_request import ChatRequest, estimated_prompt_tokens
from hub.gateway.limits import Limits
from hub.gateway.model_catalog import Deployment, ModelEntry
from hub.gateway.redaction import redacted
from hub.services.service_accounts import ServiceIdentity
from hub.services.usage import UsageEntry, UsageRecorder

__all__ = ["Accounting", "ModelRename", "relay_stream", "usage_of"]

_EVENT_ENDS = (b"\n\n", b"\r\n\r\n")
_USAGE_MARKS = (b'"usage":{', b'"usage": {')
# A chunk's id, the first in a stream's first event.
_ID = re.compile(rb'"id":\s*"((?:[^"\\]|\\.)*)"')
# An event that may be a provider's error (inside a JSON string a quote is escaped, so an
# answer's text does not match).
_ERROR_EVENT = re.compile(rb'(?m)^data:[ \t]*(\{.*"error".*\})[ \t]*\r?$')
# The event that ends a stream (an answer's text may say "[DONE]" too, inside a chunk).
_DONE = re.compile(rb"(?m)^data:[ \t]*\[DONE\]")


def usage_of(document: dict[str, Any]) -> tuple[int, int]:
    usage = document.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _estimate_stream_usage(record: UsageEntry, body: dict[str, Any], events: int) -> None:
    """For upstreams that never report usage in streams (llama.cpp's server): each content
    event carries about one token, and a prompt has about one token per four characters."""
    record.input_tokens = estimated_prompt_tokens(body)
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
    """Where a call's usage goes: the usage records, the service's limit counters and the
    metrics."""

    recorder: UsageRecorder
    limits: Limits
    metrics: GatewayMetrics
    service: ServiceIdentity
    record: UsageEntry
    started: float
    # What the call holds of the service's budget until it ends.
    reserved_usd: float = 0.0

    def finish(self, entry: ModelEntry, status: int, error: str | None) -> None:
        record = self.record
        record.latency_ms = (time.perf_counter() - self.started) * 1000
        record.status_code = status
        record.error = error[:1000] if error else None
        record.cost_usd = entry.cost_usd(record.input_tokens, record.output_tokens)
        self.recorder.add(record)
        self.metrics.count(
            model=record.model,
            answered_model=record.answered_model,
            service=record.service_name,
            status=status,
            seconds=record.latency_ms / 1000,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cost_usd=record.cost_usd,
        )
        tokens = record.input_tokens + record.output_tokens
        reserved, self.reserved_usd = self.reserved_usd, 0.0
        if self.service.limited and (tokens or record.cost_usd or reserved):
            self.limits.spend(self.service, tokens, record.cost_usd, reserved)

    def release(self) -> None:
        """Give back what the call reserved of the budget when it ends without `finish`."""
        if self.reserved_usd:
            reserved, self.reserved_usd = self.reserved_usd, 0.0
            self.limits.spend(self.service, 0, 0.0, reserved)


def _split_events(buffer: bytes, record: UsageEntry, keep_usage: bool) -> tuple[bytes, bytes, bool]:
    """Split complete SSE events off `buffer`; return (bytes to send, the incomplete rest,
    whether they carried usage). Only an event that carries usage is parsed (the rest pass
    through as bytes): its tokens go on the record, and it is dropped when the client did not
    ask for usage and it carries no choices."""
    end = _after_last_event(buffer, 0, len(buffer))
    complete, rest = buffer[:end], buffer[end:]
    out: list[bytes] = []
    seen = False
    start = 0
    while (mark := _usage_mark(complete, start)) >= 0:
        event_start = _after_last_event(complete, start, mark)
        event_end = _end_of_event(complete, mark)
        event = complete[event_start:event_end]
        out.append(complete[start:event_start])
        start = event_end
        try:
            chunk = orjson.loads(event.strip().removeprefix(b"data:").strip())
        except orjson.JSONDecodeError:
            out.append(event)
            continue
        if isinstance(chunk, dict) and chunk.get("usage"):
            seen = True
            record.input_tokens, record.output_tokens = usage_of(chunk)
            if not keep_usage and not chunk.get("choices"):
                continue
        out.append(event)
    if not out:
        return complete, rest, seen
    out.append(complete[start:])
    return b"".join(out), rest, seen


def _after_last_event(data: bytes, start: int, end: int) -> int:
    """Where the last event that ends in data[start:end] ends (`start` when none does)."""
    ends = [found + len(sep) for sep in _EVENT_ENDS if (found := data.rfind(sep, start, end)) >= 0]
    return max(ends, default=start)


def _end_of_event(data: bytes, at: int) -> int:
    """Where the event around `at` ends (the end of `data` when no event end follows)."""
    ends = [found + len(sep) for sep in _EVENT_ENDS if (found := data.find(sep, at)) >= 0]
    return min(ends, default=len(data))


def _usage_mark(data: bytes, start: int) -> int:
    """Where the next usage field is in `data` from `start`, or -1. Inside a JSON string a
    quote is escaped, so a reply that talks of usage does not match."""
    found = [at for mark in _USAGE_MARKS if (at := data.find(mark, start)) >= 0]
    return min(found, default=-1)


def _ends(events: bytes) -> bool:
    """Whether these events close the answer: [DONE], or a choice's finish reason."""
    return b"[DONE]" in events or b'"finish_reason":"' in events or b'"finish_reason": "' in events


def _usage_event(first: bytes, entry: ModelEntry, record: UsageEntry) -> bytes:
    """A last chunk with the record's usage and no choices, with the stream's id."""
    found = _ID.search(first)
    usage = {
        "prompt_tokens": record.input_tokens,
        "completion_tokens": record.output_tokens,
        "total_tokens": record.input_tokens + record.output_tokens,
    }
    chunk: dict[str, Any] = {
        "id": found.group(1).decode(errors="replace") if found else "chatcmpl-switchboard",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": entry.name,
        "choices": [],
        "usage": usage,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _redact_error_event(found: re.Match[bytes]) -> bytes:
    try:
        chunk = orjson.loads(found.group(1))
    except orjson.JSONDecodeError:
        return found.group(0)
    error = chunk.get("error") if isinstance(chunk, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return found.group(0)
    error["message"] = redacted(error["message"])
    return b"data: " + orjson.dumps(chunk)


def _redact_errors(events: bytes) -> bytes:
    """`events` with keys, hosts and addresses taken out of the provider's error events."""
    if b'"error"' not in events:
        return events
    return _ERROR_EVENT.sub(_redact_error_event, events)


def _error_event(message: str) -> bytes:
    return b"data: " + orjson.dumps({"error": {"message": message, "type": "upstream_error"}})


async def relay_stream(
    answer: Answer,
    entry: ModelEntry,
    deployment: Deployment,
    request: ChatRequest,
    accounting: Accounting,
    rename: ModelRename,
    breaker: Breaker,
) -> AsyncGenerator[tuple[bytes, bool], None]:
    """The stream's bytes to pass on, each piece with whether it is the last: what arrives
    with the upstream's end goes out with the end of the response, in one write."""
    upstream, record = answer.upstream, accounting.record
    content = upstream.content
    keep_usage = request.client_wants_usage
    buffer = b""
    events = 0
    ended = False
    # Whether the client still has to be given the usage.
    owed = keep_usage

    def usage_event() -> bytes:
        nonlocal owed
        owed = False
        _estimate_stream_usage(record, request.body, events)
        return _usage_event(answer.first, entry, record)

    def with_usage(out: bytes) -> bytes:
        """`out` with the usage event ahead of its [DONE], when one is owed."""
        if owed and (done := _DONE.search(out)):
            at = done.start()
            return out[:at] + usage_event() + out[at:]
        return out

    def complete_events(data: bytes) -> bytes:
        nonlocal buffer, events, ended, owed
        out, buffer, seen = _split_events(buffer + data, record, keep_usage)
        owed = owed and not seen
        if out:
            events += out.count(b"data:")
            ended = ended or _ends(out)
            out = rename.stream(with_usage(_redact_errors(out)))
        return out

    def settle(status: int, error: str | None) -> None:
        if status == 200:
            upstream.release()
        else:
            upstream.close()
        if not (record.input_tokens or record.output_tokens):
            _estimate_stream_usage(record, request.body, events)
        accounting.finish(entry, status, error)

    last = b""
    try:
        data = answer.first
        while data:
            out = complete_events(data)
            if content.at_eof():
                last = out
                break
            if out:
                yield out, False
            data = await content.readany()
        if buffer:
            events += buffer.count(b"data:")
            ended = ended or _ends(buffer)
            last += rename.stream(with_usage(_redact_errors(buffer)))
        if ended and owed:
            # Ended on a finish reason with no [DONE] after it.
            if last and not last.endswith(b"\n\n"):
                last += b"\n\n"
            last += usage_event()
        if not ended:
            await breaker.failure(deployment.name, probe=False)
            message = f"Upstream {deployment.name} ended its stream before the answer was complete."
            last += b"\n\n" + _error_event(message) + b"\n\n"
    except (aiohttp.ClientError, TimeoutError) as exc:
        settle(502, f"upstream stream broke off: {exc}")
        await breaker.failure(deployment.name, probe=False)
        message = f"Upstream {deployment.name} broke off: {redacted(str(exc))}"
        yield _error_event(message) + b"\n\n", True
        return
    except BaseException:
        # Closed or cancelled while waiting: the client went away.
        settle(499, "client went away before the end of the stream")
        raise
    if ended:
        settle(200, None)
    else:
        settle(502, "upstream stream ended before it was complete")
    yield last, True
