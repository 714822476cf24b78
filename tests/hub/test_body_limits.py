"""Request bodies have a size limit per route, enforced before the body is parsed or its sender
known: a body over it is a 413 that gives the limit, whether it declares its length or is
streamed without one, signed in or not; a body of exactly the limit is taken."""

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api.uploads import UPLOAD_LIMIT
from hub.core.config import Settings
from tests.conftest import RunningHub
from tests.support.gateway import APP_TOKEN, Model, gateway_settings, new_service, started_hubs
from tests.support.mcp_server import McpTestServer
from tests.support.upstream import ScriptedUpstream

KIB = 1024
MIB = 1024 * KIB
# Small limits, so the tests send little; the defaults are larger (hub/core/config.py).
REQUEST_LIMIT = 256 * KIB
MODEL_CALL_LIMIT = 512 * KIB
UPLOAD_BYTES = UPLOAD_LIMIT.max_bytes
# Far over every limit, streamed without a length.
STREAMED = 64 * MIB


def _streamed(total: int, piece: int = 64 * KIB) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(piece, total - sent)
        sent += piece


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _peak_growth(pid: int, send: Callable[[], httpx.Response]) -> tuple[httpx.Response, int]:
    """The answer to `send()`, and how far the hub's resident memory rose above where it was
    while it was answered (bytes): the kernel's peak, reset first."""
    before = _status_kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    answer = send()
    return answer, (_status_kib(pid, "VmHWM") - before) * KIB


def test_a_body_streamed_far_past_its_routes_limit_is_refused_without_the_hub_holding_it(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    settings = gateway_settings(tmp_path, Model("primary", [upstream.url]))
    env = {
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_DATABASE_URL": settings.sqlalchemy_url,
        "SWITCHBOARD_CATALOG_PATH": str(settings.catalog_path),
        "SWITCHBOARD_APP_SERVICE_TOKEN": APP_TOKEN,
        "SWITCHBOARD_REQUEST_BODY_MAX_BYTES": str(REQUEST_LIMIT),
        "SWITCHBOARD_MODEL_CALL_BODY_MAX_BYTES": str(MODEL_CALL_LIMIT),
    }
    token = new_service(settings, "big-sender", admin=True)
    routes = {
        "/api/agents": REQUEST_LIMIT,
        "/api/mcp/servers/weather/tools/forecast/call": REQUEST_LIMIT,
        "/v1/chat/completions": MODEL_CALL_LIMIT,
        "/api/evaluation/sets": UPLOAD_BYTES,
    }
    callers = {"signed out": {}, "signed in": {"authorization": f"Bearer {token}"}}
    answers: dict[tuple[str, str], int] = {}
    growths: dict[tuple[str, str], int] = {}
    messages: dict[tuple[str, str], str] = {}
    with started_hubs(env, tmp_path, 1) as [hub], httpx.Client(timeout=60) as http:
        # Once first, so that what a first request loads is not counted.
        http.post(hub.url + "/api/agents", content=_streamed(2 * REQUEST_LIMIT))
        for path in routes:
            for caller, headers in callers.items():
                body = _streamed(STREAMED)
                send = partial(http.post, hub.url + path, content=body, headers=headers)
                answer, growth = _peak_growth(hub.pid, send)
                answers[path, caller] = answer.status_code
                growths[path, caller] = growth
                said = answer.json()
                messages[path, caller] = said.get("detail") or said["error"]["message"]

    assert answers == dict.fromkeys(answers, 413)
    # On the code before the limits, each of these held the whole body (64 MiB and more).
    assert {key: grew for key, grew in growths.items() if grew > routes[key[0]]} == {}
    for (path, _), message in messages.items():
        assert f"the limit for {_taking(path)} is {routes[path]:,} bytes" in message


def _taking(path: str) -> str:
    if path.startswith("/v1/"):
        return "a model call"
    return "a test set upload" if path.startswith("/api/evaluation") else "a request"


# --- over real HTTP to an in-process hub: the limits exactly --------------------------------


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(
        update={
            "request_body_max_bytes": REQUEST_LIMIT,
            "model_call_body_max_bytes": MODEL_CALL_LIMIT,
        }
    )


def _padded(body: dict[str, Any], size: int) -> bytes:
    """`body` as JSON, `size` bytes long (trailing spaces are still JSON)."""
    encoded = json.dumps(body).encode()
    assert len(encoded) <= size
    return encoded + b" " * (size - len(encoded))


def _chat(size: int) -> bytes:
    return _padded({"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}, size)


def test_a_model_call_of_exactly_its_limit_is_answered_and_one_byte_more_is_refused_unread(
    hub: RunningHub, upstream: ScriptedUpstream
) -> None:
    headers = {"authorization": f"Bearer {hub.app_token}", "content-type": "application/json"}
    url = hub.url + "/v1/chat/completions"
    with httpx.Client(timeout=30, headers=headers) as http:
        exactly = http.post(url, content=_chat(MODEL_CALL_LIMIT))
        streamed_exactly = http.post(url, content=iter([_chat(MODEL_CALL_LIMIT)]))
        over = http.post(url, content=_chat(MODEL_CALL_LIMIT + 1))
        streamed_over = http.post(url, content=iter([_chat(MODEL_CALL_LIMIT + 1)]))
        signed_out_over = httpx.post(url, content=_chat(MODEL_CALL_LIMIT + 1), timeout=30)

    assert exactly.status_code == 200, exactly.text
    assert streamed_exactly.status_code == 200, streamed_exactly.text
    assert len(upstream.requests) == 2
    assert [over.status_code, streamed_over.status_code, signed_out_over.status_code] == [413] * 3
    assert over.json()["error"]["message"] == (
        f"The request body is {MODEL_CALL_LIMIT + 1:,} bytes; the limit for a model call is "
        f"{MODEL_CALL_LIMIT:,} bytes. Send fewer or smaller images, or link them by URL."
    )
    assert streamed_over.json()["error"]["message"].startswith(
        f"The request body is more than {MODEL_CALL_LIMIT:,} bytes; the limit for a model call"
    )
    assert signed_out_over.json() == over.json()


def test_an_api_request_of_exactly_the_limit_is_taken_and_one_byte_more_is_refused(
    hub: RunningHub,
) -> None:
    token = hub.new_service("weather-team-bot", team="weather")
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    with McpTestServer() as server, httpx.Client(base_url=hub.url, headers=headers) as http:
        server_in = {"slug": "weather", "name": "Weather", "team": "weather", "url": server.url}
        over = http.post("/api/mcp/servers", content=_padded(server_in, REQUEST_LIMIT + 1))
        streamed_over = http.post(
            "/api/mcp/servers", content=iter([_padded(server_in, REQUEST_LIMIT + 1)])
        )
        exactly = http.post("/api/mcp/servers", content=_padded(server_in, REQUEST_LIMIT))

    assert exactly.status_code == 201, exactly.text
    assert [over.status_code, streamed_over.status_code] == [413, 413]
    assert over.json() == {
        "detail": f"The request body is {REQUEST_LIMIT + 1:,} bytes; the limit for a request is "
        f"{REQUEST_LIMIT:,} bytes."
    }
    assert streamed_over.json() == {
        "detail": f"The request body is more than {REQUEST_LIMIT:,} bytes; the limit for a "
        f"request is {REQUEST_LIMIT:,} bytes."
    }
