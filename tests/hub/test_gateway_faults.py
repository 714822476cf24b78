"""Providers fail in every way; the client still gets an answer, or a clear error in time.

Each test scripts faults into upstreams over real HTTP and checks what the client got, how
many times each upstream was called, and who answered (header, `model` field, usage record).
"""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from sqlmodel import Session, select

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.main import create_app
from hub.models.usage import UsageRecord
from tests.conftest import APP_TOKEN
from tests.support.gateway import Model, ask, gateway_settings, new_service
from tests.support.servers import ThreadedServer, free_port
from tests.support.upstream import ScriptedUpstream

REPLY = "a complete answer"


@pytest.fixture
def spare() -> Iterator[ScriptedUpstream]:
    """The fallback model's upstream."""
    with ScriptedUpstream() as server:
        server.script(reply="the fallback answers")
        yield server


def _hub(tmp_path: Path, *models: Model, **overrides: object) -> tuple[ThreadedServer, Settings]:
    settings = gateway_settings(tmp_path, *models, **overrides)
    return ThreadedServer(create_app(settings)), settings


@pytest.fixture
def primary_and_fallback(
    tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
) -> Iterator[tuple[str, Settings]]:
    upstream.script(reply=REPLY)
    server, settings = _hub(
        tmp_path,
        Model("primary", [upstream.url], fallbacks=["spare"]),
        Model("spare", [spare.url]),
    )
    with server:
        yield server.base_url, settings


def _records(settings: Settings, count: int) -> list[UsageRecord]:
    deadline = time.monotonic() + 5
    while True:
        with Session(get_engine(settings.sqlalchemy_url)) as session:
            rows = list(session.exec(select(UsageRecord).order_by(UsageRecord.id)))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_a_429_is_retried_after_its_retry_after(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream
):
    url, settings = primary_and_fallback
    upstream.enqueue(status=429, headers={"retry-after": "0.3"}, error_message="slow down")
    started = time.monotonic()
    response = ask(url, APP_TOKEN, "primary")
    assert _content(response) == REPLY
    assert time.monotonic() - started >= 0.3
    assert upstream.hits == 2
    assert response.headers["x-switchboard-model"] == "primary"
    assert response.json()["model"] == "primary"
    [record] = _records(settings, 1)
    assert (record.attempts, record.answered_model, record.status_code) == (2, "primary", 200)


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_is_retried_on_the_same_model(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream, status: int
):
    url, _ = primary_and_fallback
    upstream.enqueue(status=status)
    upstream.enqueue(status=status)
    response = ask(url, APP_TOKEN, "primary")
    assert _content(response) == REPLY
    assert upstream.hits == 3
    assert response.headers["x-switchboard-model"] == "primary"


def test_a_model_failing_every_attempt_is_answered_by_its_fallback(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream, spare: ScriptedUpstream
):
    url, settings = primary_and_fallback
    upstream.script(status=503, error_message="overloaded")
    response = ask(url, APP_TOKEN, "primary")
    assert _content(response) == "the fallback answers"
    assert (upstream.hits, spare.hits) == (3, 1)
    assert response.headers["x-switchboard-model"] == "spare"
    assert response.headers["x-switchboard-requested-model"] == "primary"
    assert response.json()["model"] == "spare"
    [record] = _records(settings, 1)
    assert (record.model, record.answered_model, record.attempts) == ("primary", "spare", 4)


def test_a_refused_connection_is_retried_then_the_fallback_answers(
    tmp_path: Path, spare: ScriptedUpstream
):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    server, settings = _hub(
        tmp_path, Model("primary", [dead], fallbacks=["spare"]), Model("spare", [spare.url])
    )
    with server:
        response = ask(server.base_url, APP_TOKEN, "primary")
    assert _content(response) == "the fallback answers"
    assert spare.hits == 1
    [record] = _records(settings, 1)
    assert (record.attempts, record.answered_model) == (4, "spare")


def test_a_first_byte_that_is_too_slow_is_retried(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream
):
    url, _ = primary_and_fallback
    upstream.enqueue(delay_s=1.5)  # longer than the first-byte time-out of 0.5 s
    started = time.monotonic()
    response = ask(url, APP_TOKEN, "primary")
    assert _content(response) == REPLY
    assert upstream.hits == 2
    assert time.monotonic() - started < 2.0


def test_a_stream_cut_before_its_first_byte_is_retried_whole(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream
):
    url, _ = primary_and_fallback
    upstream.enqueue(cut_after_chunks=0)
    client = openai.OpenAI(base_url=url + "/v1", api_key=APP_TOKEN, max_retries=0)
    stream = client.chat.completions.create(
        model="primary", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == REPLY
    assert upstream.hits == 2


def test_a_stream_cut_midway_ends_with_an_error_event_not_a_silent_cut(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream
):
    url, settings = primary_and_fallback
    upstream.script(reply="one two three four five six", cut_after_chunks=2)
    client = openai.OpenAI(base_url=url + "/v1", api_key=APP_TOKEN, max_retries=0)
    received = []
    with pytest.raises(openai.APIError) as caught:
        stream = client.chat.completions.create(
            model="primary", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received) == "one two"
    assert "broke off" in str(caught.value)
    # Bytes had reached the client: not retried, so the answer is never sent twice.
    assert upstream.hits == 1
    [record] = _records(settings, 1)
    assert record.status_code == 502


def test_a_stream_that_stops_short_without_done_ends_with_an_error_event(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream
):
    url, _ = primary_and_fallback
    upstream.script(reply="one two three", drop_after_chunks=1)
    response = ask(url, APP_TOKEN, "primary", stream=True)
    assert response.status_code == 200
    assert "[DONE]" not in response.text
    assert "ended its stream before the answer was complete" in response.text


def test_a_request_the_provider_refuses_is_not_retried(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream, spare: ScriptedUpstream
):
    url, _ = primary_and_fallback
    upstream.script(status=400, error_message="context length exceeded")
    response = ask(url, APP_TOKEN, "primary")
    assert response.status_code == 400
    assert "context length exceeded" in response.json()["error"]["message"]
    assert (upstream.hits, spare.hits) == (1, 0)


def test_when_everything_fails_the_client_gets_a_clear_error(
    primary_and_fallback: tuple[str, Settings], upstream: ScriptedUpstream, spare: ScriptedUpstream
):
    url, _ = primary_and_fallback
    upstream.script(status=500, error_message="primary is down")
    spare.script(status=503, error_message="spare is down too")
    response = ask(url, APP_TOKEN, "primary")
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "spare is down too" in message
    assert "after 6 attempts: primary, then spare" in message
    assert (upstream.hits, spare.hits) == (3, 3)


def test_no_request_waits_longer_than_its_deadline(tmp_path: Path, upstream: ScriptedUpstream):
    upstream.script(delay_s=2.0)
    server, _ = _hub(
        tmp_path,
        Model("primary", [upstream.url]),
        request_deadline_s=1.0,
        upstream_first_byte_timeout_s=0.4,
        breaker_failures=100,
    )
    with server:
        for stream in (False, True):
            started = time.monotonic()
            response = ask(server.base_url, APP_TOKEN, "primary", stream=stream)
            assert time.monotonic() - started < 1.5, response.text
            assert response.status_code == 504, response.text
            assert "deadline of 1 s" in response.json()["error"]["message"]


def test_a_failing_region_is_retried_in_the_next_region_of_the_same_model(
    tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
):
    with ScriptedUpstream() as region_b:
        region_b.script(reply="region b answers")
        upstream.script(status=503)
        server, settings = _hub(
            tmp_path,
            Model("primary", [upstream.url, region_b.url], fallbacks=["spare"]),
            Model("spare", [spare.url]),
        )
        with server:
            for _ in range(2):
                response = ask(server.base_url, APP_TOKEN, "primary")
                assert _content(response) == "region b answers"
                assert response.headers["x-switchboard-model"] == "primary"
                assert "/b-" in response.headers["x-switchboard-deployment"]
    assert (upstream.hits, region_b.hits, spare.hits) == (2, 2, 0)
    records = _records(settings, 2)
    assert [(r.model, r.answered_model) for r in records] == [("primary", "primary")] * 2


def test_with_every_region_down_the_fallback_answers_and_usage_shows_both_models(
    tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    upstream.script(status=500)
    server, settings = _hub(
        tmp_path,
        Model("primary", [upstream.url, dead], fallbacks=["spare"], prices=(1.0, 1.0)),
        Model("spare", [spare.url], prices=(100.0, 100.0)),
    )
    with server:
        response = ask(server.base_url, APP_TOKEN, "primary")
        assert _content(response) == "the fallback answers"
        assert response.headers["x-switchboard-model"] == "spare"
        # Region a, region b, region a again (three attempts), then the fallback.
        assert (upstream.hits, spare.hits) == (2, 1)
        admin = httpx.get(
            server.base_url + "/v1/usage",
            params={"group_by": ["model", "answered_model"]},
            headers={"authorization": f"Bearer {new_service(settings, 'ops', admin=True)}"},
        )
    [row] = admin.json()["rows"]
    assert (row["model"], row["answered_model"], row["requests"]) == ("primary", "spare", 1)
    # Billed at the prices of the model that answered.
    tokens = row["input_tokens"] + row["output_tokens"]
    assert row["cost_usd"] == pytest.approx(tokens * 100.0 / 1_000_000)


@pytest.mark.anyio
async def test_a_pooled_connection_the_upstream_closed_is_not_a_failure(tmp_path: Path):
    """A server closes idle connections; a request written to one just then is lost before
    the server reads it. The gateway sends it again at once: no retry, no breaker failure."""
    with ScriptedUpstream(keep_alive_s=0.3) as upstream:
        server, settings = _hub(
            tmp_path,
            Model("primary", [upstream.url]),
            breaker_failures=1,
            upstream_first_byte_timeout_s=5.0,
            request_deadline_s=10.0,
        )
        with server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                body = {"model": "primary", "messages": [{"role": "user", "content": "hi"}]}
                headers = {"authorization": f"Bearer {APP_TOKEN}"}
                statuses = []
                # Idle times around the server's keep-alive, to meet it closing connections.
                for idle in (0.26, 0.28, 0.29, 0.3, 0.31, 0.32, 0.34):
                    burst = [
                        client.post("/v1/chat/completions", json=body, headers=headers)
                        for _ in range(16)
                    ]
                    statuses += [r.status_code for r in await asyncio.gather(*burst)]
                    await asyncio.sleep(idle)
        records = _records(settings, len(statuses))
    assert set(statuses) == {200}
    assert upstream.hits == len(statuses) == len(records)
    assert {record.attempts for record in records} == {1}
