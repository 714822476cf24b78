"""A monthly budget holds under concurrent calls: each call reserves what it can cost before
it goes upstream and settles to its real cost when it ends, on one hub and on hubs sharing
Redis; a call that fails gives its reservation back."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from hub.core.config import Settings
from hub.main import create_app
from tests.support.gateway import (
    FAST,
    Model,
    gateway_settings,
    new_service,
    redis_hubs,
    usage_rows,
)
from tests.support.servers import ThreadedServer
from tests.support.upstream import ScriptedUpstream

PROMPT = "hello there"
REPLY = "one two three four five"
MAX_TOKENS = 5
INPUT_USD, OUTPUT_USD = 2.0, 8.0  # per million tokens, as the test's catalog says


def _usd(input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * INPUT_USD + output_tokens * OUTPUT_USD) / 1_000_000


# The scripted upstream counts a word as a token.
ONE_CALL_USD = _usd(len(PROMPT.split()), len(REPLY.split()))
# What the gateway holds for a call: a token per four characters of prompt, and max_tokens.
RESERVED_USD = _usd(-(-len(PROMPT) // 4), MAX_TOKENS)


@contextmanager
def _hubs(
    where: str, workdir: Path, upstream: ScriptedUpstream
) -> Iterator[tuple[list[str], Settings]]:
    """The URLs of one hub counting in memory, or of two hub processes sharing Redis, which
    wait for an upstream that answers slowly."""
    models = [Model("primary", [upstream.url], prices=(INPUT_USD, OUTPUT_USD))]
    options = {**FAST, "upstream_first_byte_timeout_s": 20.0, "request_deadline_s": 30.0}
    if where == "memory":
        settings = gateway_settings(workdir, *models, **options)
        with ThreadedServer(create_app(settings)) as server:
            yield [server.base_url], settings
    else:
        with redis_hubs(workdir, models, options) as hubs:
            yield [hubs.a, hubs.b], hubs.settings


async def _call(client: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    return await client.post(
        url + "/v1/chat/completions",
        json={
            "model": "primary",
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": MAX_TOKENS,
        },
        headers={"authorization": f"Bearer {token}"},
    )


async def _all_at_once(urls: list[str], token: str, calls: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=calls, max_keepalive_connections=calls)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(_call(client, urls[i % len(urls)], token) for i in range(calls))
        )


@pytest.mark.parametrize("where", ["memory", "redis"])
def test_two_hundred_concurrent_calls_spend_at_most_eleven_calls_worth_of_a_budget_for_ten(
    tmp_path: Path, upstream: ScriptedUpstream, where: str
):
    # Slow enough that every call is under way before the first one has cost anything.
    upstream.script(reply=REPLY, delay_s=0.3)
    with _hubs(where, tmp_path, upstream) as (urls, settings):
        token = new_service(settings, "bursty", monthly_budget_usd=10 * ONE_CALL_USD)
        responses = asyncio.run(_all_at_once(urls, token, 200))
        rows = usage_rows(settings, "bursty", 200)

    answered = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert 1 <= len(answered) <= 11
    assert upstream.hits == len(answered)
    for response in refused:
        assert response.status_code == 429, response.text
        assert "monthly budget" in response.json()["error"]["message"]
    assert len(rows) == 200
    spent = sum(row.cost_usd for row in rows)
    assert spent == pytest.approx(len(answered) * ONE_CALL_USD)
    assert spent <= 11 * ONE_CALL_USD * (1 + 1e-9)


@pytest.mark.parametrize("where", ["memory", "redis"])
def test_a_call_that_fails_gives_back_what_it_reserved(
    tmp_path: Path, upstream: ScriptedUpstream, where: str
):
    # Room for one call's reservation at a time, not two.
    budget = 1.5 * RESERVED_USD
    with _hubs(where, tmp_path, upstream) as (urls, settings):
        token = new_service(settings, "unlucky", monthly_budget_usd=budget)
        upstream.script(status=400, error_message="scripted refusal")
        failed = [asyncio.run(_all_at_once(urls, token, 1))[0] for _ in range(3)]
        upstream.script(reply=REPLY)
        answered = asyncio.run(_all_at_once(urls, token, 1))[0]
        # Its real cost is less than it reserved; what is left still holds no second call.
        after = asyncio.run(_all_at_once(urls, token, 1))[0]

    assert [r.status_code for r in failed] == [400, 400, 400]
    assert answered.status_code == 200, answered.text
    assert after.status_code == 429
    message = after.json()["error"]["message"]
    assert "monthly budget" in message and "could cost up to" in message


def test_a_call_refused_for_what_calls_under_way_hold_may_try_again_shortly(
    tmp_path: Path, upstream: ScriptedUpstream
):
    upstream.script(reply=REPLY, delay_s=1.0)
    with _hubs("memory", tmp_path, upstream) as (urls, settings):
        token = new_service(settings, "patient", monthly_budget_usd=1.5 * RESERVED_USD)

        async def one_under_way_then_another() -> tuple[httpx.Response, httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                first = asyncio.create_task(_call(client, urls[0], token))
                # Once the first call is at the upstream, it holds its reservation.
                with anyio.fail_after(10):
                    while True:
                        if upstream.hits:
                            break
                        await anyio.sleep(0.01)
                second = await _call(client, urls[0], token)
                return await first, second

        first, second = asyncio.run(one_under_way_then_another())

    assert first.status_code == 200
    assert second.status_code == 429 and second.headers["retry-after"] == "1"
    message = second.json()["error"]["message"]
    assert "held by calls under way" in message and "try again shortly" in message
