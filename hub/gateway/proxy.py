"""Forwarding a chat completion to the model's deployment and accounting for it.

Response bytes pass through unchanged; the stream is only split into SSE events to read the
usage event (and drop it when the client did not ask for usage, since the gateway always
asks the upstream for it to bill the call).
"""

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from starlette.responses import Response, StreamingResponse

from hub.gateway.catalog import Catalog, CatalogEntry, Deployment
from hub.gateway.chat_request import ChatRequest
from hub.gateway.errors import GatewayError
from hub.services.services import ServiceIdentity
from hub.services.usage import UsageEntry, UsageRecorder

__all__ = ["Gateway"]

_EVENT_END = re.compile(rb"\r?\n\r?\n")
_USAGE_MARK = b'"usage":{'
_USAGE_MARK_SPACED = b'"usage": {'


def _last_event_end(buffer: bytes) -> int:
    lf, crlf = buffer.rfind(b"\n\n"), buffer.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


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


def _upstream_error_message(status: int, body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
        error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, str) and message:
            return message
        return str(error)[:500]
    except (orjson.JSONDecodeError, AttributeError):
        return body[:500].decode(errors="replace") or "(empty body)"


def _usage_of(document: dict[str, Any]) -> tuple[int, int]:
    usage = document.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


class Gateway:
    def __init__(
        self,
        *,
        catalog: Catalog,
        recorder: UsageRecorder,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        self.catalog = catalog
        self._recorder = recorder
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            json_serialize=lambda o: orjson.dumps(o).decode(),
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def entry(self, name: str) -> CatalogEntry:
        entry = self.catalog.get(name)
        if entry is None:
            known = ", ".join(e.name for e in self.catalog.models)
            raise GatewayError(
                404,
                f"The model {name!r} does not exist. Models you can use: {known}.",
                code="model_not_found",
                param="model",
            )
        return entry

    async def complete(
        self, *, service: ServiceIdentity, request: ChatRequest, agent: str | None = None
    ) -> Response:
        entry = self.entry(request.model)
        deployment = entry.deployments[0]
        started = time.perf_counter()
        body = dict(request.body, model=deployment.model)
        if request.stream:
            body["stream_options"] = dict(body.get("stream_options") or {}, include_usage=True)
        record = UsageEntry(
            service_id=service.id,
            service_name=service.name,
            team=service.team,
            model=entry.name,
            deployment=deployment.name,
            stream=request.stream,
            agent=agent,
        )
        try:
            upstream = await self._send(deployment, body)
        except GatewayError as error:
            self._finish(record, entry, started, error.status, error.message)
            raise
        if upstream.status != 200:
            payload = await upstream.read()
            upstream.release()
            error = self._upstream_failure(deployment, upstream.status, payload)
            self._finish(record, entry, started, error.status, error.message)
            raise error
        headers = {"x-switchboard-model": entry.name, "x-switchboard-deployment": deployment.name}
        if not request.stream:
            return await self._whole(upstream, record, entry, started, headers)
        return StreamingResponse(
            self._relay(upstream, record, entry, started, request),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )

    async def _send(self, deployment: Deployment, body: dict[str, Any]) -> aiohttp.ClientResponse:
        assert self._http is not None, "Gateway.start() was not called"
        headers = {"content-type": "application/json"}
        key = deployment.api_key()
        if key:
            headers["authorization"] = f"Bearer {key}"
        try:
            return await self._http.post(
                deployment.chat_url, data=orjson.dumps(body), headers=headers
            )
        except TimeoutError as exc:
            raise GatewayError(
                504, f"Upstream {deployment.name} did not answer in time.", type="upstream_error"
            ) from exc
        except aiohttp.ClientError as exc:
            raise GatewayError(
                502, f"Could not reach upstream {deployment.name}: {exc}", type="upstream_error"
            ) from exc

    def _upstream_failure(
        self, deployment: Deployment, status: int, payload: bytes
    ) -> GatewayError:
        message = _upstream_error_message(status, payload)
        if status in (400, 422):
            # The provider refused the request itself: the client can fix it, a retry cannot.
            return GatewayError(
                status, f"Upstream {deployment.name} refused the request: {message}"
            )
        return GatewayError(
            502,
            f"Upstream {deployment.name} failed with status {status}: {message}",
            type="upstream_error",
            code=f"upstream_{status}",
        )

    async def _whole(
        self,
        upstream: aiohttp.ClientResponse,
        record: UsageEntry,
        entry: CatalogEntry,
        started: float,
        headers: dict[str, str],
    ) -> Response:
        try:
            payload = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            upstream.close()
            message = f"Upstream {record.deployment} broke off its answer: {exc}"
            self._finish(record, entry, started, 502, message)
            raise GatewayError(502, message, type="upstream_error") from exc
        upstream.release()
        try:
            record.input_tokens, record.output_tokens = _usage_of(orjson.loads(payload))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            pass
        self._finish(record, entry, started, 200, None)
        return Response(payload, media_type="application/json", headers=headers)

    async def _relay(
        self,
        upstream: aiohttp.ClientResponse,
        record: UsageEntry,
        entry: CatalogEntry,
        started: float,
        request: ChatRequest,
    ) -> AsyncIterator[bytes]:
        buffer = b""
        events = 0
        status, error = 499, "client went away before the end of the stream"
        try:
            async for data in upstream.content.iter_any():
                buffer += data
                out, buffer = self._events(buffer, record, request.client_wants_usage)
                if out:
                    events += out.count(b"data:")
                    yield out
            if buffer:
                yield buffer
            status, error = 200, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, error = 502, f"upstream stream broke off: {exc}"
            event = {
                "error": {
                    "message": f"Upstream {record.deployment} broke off: {exc}",
                    "type": "upstream_error",
                }
            }
            yield b"data: " + orjson.dumps(event) + b"\n\n"
        finally:
            if status == 200:
                upstream.release()
            else:
                upstream.close()
            if not (record.input_tokens or record.output_tokens):
                _estimate_stream_usage(record, request.body, events)
            self._finish(record, entry, started, status, error)

    @staticmethod
    def _events(buffer: bytes, record: UsageEntry, keep_usage: bool) -> tuple[bytes, bytes]:
        """Split complete SSE events off `buffer`; return (bytes to send, the incomplete rest)."""
        if _USAGE_MARK not in buffer and _USAGE_MARK_SPACED not in buffer:
            end = _last_event_end(buffer)
            return buffer[:end], buffer[end:]
        out: list[bytes] = []
        start = 0
        for match in _EVENT_END.finditer(buffer):
            event = buffer[start : match.end()]
            start = match.end()
            if _USAGE_MARK in event or _USAGE_MARK_SPACED in event:
                try:
                    chunk = orjson.loads(event.strip().removeprefix(b"data:").strip())
                except orjson.JSONDecodeError:
                    out.append(event)
                    continue
                if isinstance(chunk, dict) and chunk.get("usage"):
                    record.input_tokens, record.output_tokens = _usage_of(chunk)
                    if not keep_usage and not chunk.get("choices"):
                        continue
            out.append(event)
        return b"".join(out), buffer[start:]

    def _finish(
        self,
        record: UsageEntry,
        entry: CatalogEntry,
        started: float,
        status: int,
        error: str | None,
    ) -> None:
        record.latency_ms = (time.perf_counter() - started) * 1000
        record.status_code = status
        record.error = error[:1000] if error else None
        record.cost_usd = entry.cost_usd(record.input_tokens, record.output_tokens)
        self._recorder.add(record)
