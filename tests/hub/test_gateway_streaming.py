"""Streams pass through as they arrive, and a client that goes away stops the upstream."""

import time

import anyio
import httpx
import pytest

from tests.conftest import RunningHub
from tests.support.upstream import ScriptedUpstream

LONG_REPLY = " ".join(f"word{i}" for i in range(200))


def _stream_request(hub: RunningHub) -> dict[str, object]:
    return {
        "model": "test-model",
        "messages": [{"role": "user", "content": "talk slowly"}],
        "stream": True,
    }


@pytest.mark.anyio
async def test_tokens_reach_the_client_as_the_upstream_sends_them(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(reply="a b c d e", chunk_delay_s=0.2)
    arrivals: list[float] = []
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "POST",
            hub.url + "/v1/chat/completions",
            json=_stream_request(hub),
            headers={"authorization": f"Bearer {hub.app_token}"},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                arrivals.append(time.monotonic())
    assert len(arrivals) == 5
    # Spread out like the upstream's chunks, not delivered in one piece at the end.
    assert arrivals[-1] - arrivals[0] > 0.6


@pytest.mark.anyio
async def test_a_client_that_goes_away_stops_the_upstream_stream(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(reply=LONG_REPLY, chunk_delay_s=0.05)
    admin = hub.new_service("admin", admin=True)
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream(
            "POST",
            hub.url + "/v1/chat/completions",
            json=_stream_request(hub),
            headers={"authorization": f"Bearer {hub.app_token}"},
        ) as response:
            received = 0
            async for line in response.aiter_lines():
                received += line.startswith("data: ")
                if received >= 3:
                    break
        with anyio.fail_after(5):
            while True:
                if upstream.cancelled_streams:
                    break
                await anyio.sleep(0.02)
        assert upstream.completed_streams == 0

        with anyio.fail_after(5):
            while True:
                usage = await client.get(
                    hub.url + "/v1/usage",
                    params={"group_by": "service"},
                    headers={"authorization": f"Bearer {admin}"},
                )
                rows = usage.json()["rows"]
                if rows:
                    break
                await anyio.sleep(0.02)
    assert rows[0]["service"] == "chat-app" and rows[0]["errors"] == 1


@pytest.mark.anyio
async def test_a_stream_whose_upstream_reports_no_usage_is_billed_on_an_estimate(
    hub: RunningHub, upstream: ScriptedUpstream
):
    # The scripted upstream, like llama.cpp's server, sends usage only when asked; remove the
    # gateway's ask by scripting a reply and reading the record the gateway made.
    upstream.script(reply="one two three four", usage_in_stream=False)
    admin = hub.new_service("admin", admin=True)
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            hub.url + "/v1/chat/completions",
            json={**_stream_request(hub), "messages": [{"role": "user", "content": "x" * 40}]},
            headers={"authorization": f"Bearer {hub.app_token}"},
        )
        assert response.status_code == 200
        usage = await client.get(
            hub.url + "/v1/usage", headers={"authorization": f"Bearer {admin}"}
        )
    row = usage.json()["rows"][0]
    assert (row["input_tokens"], row["output_tokens"]) == (10, 4)
