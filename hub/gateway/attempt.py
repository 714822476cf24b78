"""One call of one deployment: an answer to pass on, or a failure that says whether to retry.

A stream's first chunk is read here, before anything is sent to the client, so a stream that
fails before its first byte can still be retried elsewhere.
"""

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import orjson

from hub.core.request_ids import REQUEST_ID_HEADER, current_request_id
from hub.gateway.errors import GatewayError
from hub.gateway.model_catalog import Deployment
from hub.gateway.redaction import redacted
from hub.gateway.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

__all__ = ["Answer", "Failure", "call_deployment"]

_STALE_RESENDS = 3
# A send on a connection the server had already closed fails within this.
_STALE_WITHIN_S = 0.05


@dataclass(slots=True)
class Answer:
    upstream: aiohttp.ClientResponse
    # A stream's first chunk; a whole answer's body.
    first: bytes


@dataclass(slots=True)
class Failure:
    error: GatewayError
    retryable: bool
    retry_after_s: float | None = None


def _upstream_error_message(body: bytes) -> str:
    """The provider's error message, with what looks like a key, a host or an address taken
    out."""
    try:
        parsed = orjson.loads(body)
        error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        message = error.get("message") if isinstance(error, dict) else None
        if not (isinstance(message, str) and message):
            message = str(error)[:500]
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:500].decode(errors="replace") or "(empty body)"
    return redacted(message[:2000])


def _status_failure(
    deployment: Deployment, status: int, payload: bytes, retry_after: str | None
) -> Failure:
    if 300 <= status < 400:
        error = GatewayError(
            502,
            f"Upstream {deployment.name} answered with a redirect (status {status}), which the "
            "gateway does not follow; its catalog entry's base_url may be out of date.",
            type="upstream_error",
            code=f"upstream_{status}",
        )
        return Failure(error, retryable=False)
    message = _upstream_error_message(payload)
    if status in RETRYABLE_STATUSES:
        error = GatewayError(
            502,
            f"Upstream {deployment.name} failed with status {status}: {message}",
            type="upstream_error",
            code=f"upstream_{status}",
        )
        return Failure(error, retryable=True, retry_after_s=parse_retry_after(retry_after))
    if status in (400, 413, 422):
        # The provider refused the request itself: the client can fix it, a retry cannot.
        error = GatewayError(status, f"Upstream {deployment.name} refused the request: {message}")
    else:
        error = GatewayError(
            502,
            f"Upstream {deployment.name} failed with status {status}: {message}",
            type="upstream_error",
            code=f"upstream_{status}",
        )
    return Failure(error, retryable=False)


def _timed_out(deployment: Deployment, seconds: float, what: str) -> Failure:
    error = GatewayError(
        504,
        f"Upstream {deployment.name} did not {what} within {seconds:g} s.",
        type="upstream_error",
        code="upstream_timeout",
    )
    return Failure(error, retryable=True)


async def _post(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    time_limits: aiohttp.ClientTimeout | None,
) -> aiohttp.ClientResponse:
    """POST, sent again at once when a pooled connection turns out to be closed: a server
    closes idle connections (uvicorn after 5 s), and a request written just then is lost
    before the server reads it. aiohttp re-sends only idempotent methods by itself
    (RFC 9112, 9.3.1). Such a loss shows at once; a connection dropped later may have
    carried a request the server was working on, and is left to the retries, which count.
    After a quiet spell several pooled connections can be closed at once, and each failure
    drops one, so it tries a few. A redirect is never followed: it would carry the prompt
    (and, to the same host, the provider's key) somewhere the catalog does not name."""
    for _ in range(_STALE_RESENDS):
        sent = time.monotonic()
        try:
            return await http.post(
                url,
                data=body,
                headers=headers,
                timeout=time_limits or http.timeout,
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorError:
            raise
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            if time.monotonic() - sent > _STALE_WITHIN_S:
                raise
    return await http.post(
        url, data=body, headers=headers, timeout=time_limits or http.timeout, allow_redirects=False
    )


async def call_deployment(
    http: aiohttp.ClientSession,
    deployment: Deployment,
    body: bytes,
    *,
    stream_timeout: aiohttp.ClientTimeout | None,
    policy: RetryPolicy,
    deadline: float,
) -> Answer | Failure:
    """Call `deployment`; a stream (`stream_timeout` set: the time-outs of its whole length)
    returns once its first chunk is in. The call carries the current request id, so the
    provider's logs can be matched with the hub's."""
    headers = {"content-type": "application/json"}
    key = deployment.api_key()
    if key:
        headers["authorization"] = f"Bearer {key}"
    if request_id := current_request_id():
        headers[REQUEST_ID_HEADER] = request_id
    now = time.monotonic()
    first_byte_s = min(policy.first_byte_timeout_s, deadline - now)
    # A whole answer must arrive within the deadline (and the total time-out); a stream only
    # has to start within it, and then has the total time-out to finish.
    finish_s = min(policy.total_timeout_s, deadline - now)
    upstream: aiohttp.ClientResponse | None = None
    waited, what = first_byte_s, "send its first byte"
    try:
        async with asyncio.timeout(first_byte_s) as limit:
            upstream = await _post(http, deployment.chat_url, body, headers, stream_timeout)
            if upstream.status == 200 and stream_timeout:
                first = await upstream.content.readany()
                if not first:
                    upstream.close()
                    error = GatewayError(
                        502,
                        f"Upstream {deployment.name} ended its stream before sending anything.",
                        type="upstream_error",
                    )
                    return Failure(error, retryable=True)
                return Answer(upstream, first)
            waited, what = finish_s, "finish its answer"
            left = finish_s - (time.monotonic() - now)
            limit.reschedule(asyncio.get_running_loop().time() + left)
            payload = await upstream.read()
        upstream.release()
        if upstream.status != 200:
            return _status_failure(
                deployment, upstream.status, payload, upstream.headers.get("retry-after")
            )
        return Answer(upstream, payload)
    except TimeoutError:
        if upstream is not None:
            upstream.close()
        return _timed_out(deployment, waited, what)
    except aiohttp.ClientConnectorError as exc:
        error = GatewayError(
            502,
            f"Could not reach upstream {deployment.name}: {redacted(str(exc))}",
            type="upstream_error",
        )
        return Failure(error, retryable=True)
    except aiohttp.ClientError as exc:
        if upstream is not None:
            upstream.close()
        error = GatewayError(
            502,
            f"Upstream {deployment.name} broke off its answer: {redacted(str(exc))}",
            type="upstream_error",
        )
        return Failure(error, retryable=True)
