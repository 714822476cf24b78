"""GET /metrics over real HTTP, after real calls through the gateway to the scripted upstream:
the figures equal what the test computes from the scripted replies and the catalog's prices."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.main import create_app
from tests.support.gateway import Model, ask, gateway_settings, new_service
from tests.support.mcp_server import McpTestServer
from tests.support.servers import ThreadedServer
from tests.support.upstream import ScriptedUpstream, count_tokens

REPLY = "The quarterly numbers are in and they look fine."
# The body `ask` sends has one message: "hello there".
PROMPT_TOKENS = count_tokens("hello there")
PRICES = (3.0, 15.0)
METRICS_TOKEN = "metrics-reader-7f2c9a1e5b"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def read_metrics(url: str, token: str | None = None) -> Samples:
    """Every sample of the hub's /metrics, parsed with prometheus_client's own parser."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def spare() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        server.script(reply="the fallback answers")
        yield server


def test_gateway_calls_tokens_and_cost_are_counted_by_model_and_service(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    # Usage rows wait in memory for an hour, so the batch writer's queue can be counted.
    settings = gateway_settings(
        tmp_path, Model("ledger", [upstream.url], prices=PRICES), retry_attempts=1
    ).model_copy(update={"usage_flush_interval_s": 3600})
    token = new_service(settings, "billing")
    with ThreadedServer(create_app(settings)) as server:
        upstream.script(reply=REPLY)
        assert ask(server.base_url, token, "ledger").status_code == 200
        upstream.script(status=503, error_message="region down")
        assert ask(server.base_url, token, "ledger").status_code == 502
        samples = read_metrics(server.base_url)

    calls = "switchboard_gateway_requests_total"
    assert sample(samples, calls, model="ledger", service="billing", status="200") == 1
    assert sample(samples, calls, model="ledger", service="billing", status="502") == 1
    tokens = "switchboard_gateway_tokens_total"
    output_tokens = count_tokens(REPLY)
    assert sample(samples, tokens, model="ledger", service="billing", direction="input") == (
        PROMPT_TOKENS
    )
    assert sample(samples, tokens, model="ledger", service="billing", direction="output") == (
        output_tokens
    )
    cost = (PROMPT_TOKENS * PRICES[0] + output_tokens * PRICES[1]) / 1_000_000
    assert sample(
        samples, "switchboard_gateway_cost_usd_total", model="ledger", service="billing"
    ) == pytest.approx(cost)
    assert (
        sample(samples, "switchboard_gateway_request_duration_seconds_count", model="ledger") == 2
    )
    # The HTTP layer counts the same two calls by route template and status class.
    http = "switchboard_http_requests_total"
    route = {"method": "POST", "route": "/v1/chat/completions"}
    assert sample(samples, http, **route, status="2xx") == 1
    assert sample(samples, http, **route, status="5xx") == 1
    # Both usage rows wait for the next write; no tool call was made.
    pending = "switchboard_batch_writer_pending_rows"
    assert sample(samples, pending, writer="usage") == 2
    assert sample(samples, pending, writer="mcp_tool_calls") == 0
    written = "switchboard_batch_writer_written_rows_total"
    assert sample(samples, written, writer="usage") == 0


def test_a_fallbacks_tokens_and_cost_go_to_the_model_that_answered(
    tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
) -> None:
    settings = gateway_settings(
        tmp_path,
        Model("primary", [upstream.url], fallbacks=["spare"], prices=(1.0, 2.0)),
        Model("spare", [spare.url], prices=PRICES),
        retry_attempts=1,
    )
    token = new_service(settings, "billing")
    upstream.script(status=503)
    with ThreadedServer(create_app(settings)) as server:
        answer = ask(server.base_url, token, "primary")
        assert answer.headers["x-switchboard-model"] == "spare"
        samples = read_metrics(server.base_url)

    calls = "switchboard_gateway_requests_total"
    assert sample(samples, calls, model="primary", service="billing", status="200") == 1
    output_tokens = count_tokens("the fallback answers")
    cost = (PROMPT_TOKENS * PRICES[0] + output_tokens * PRICES[1]) / 1_000_000
    assert sample(
        samples, "switchboard_gateway_cost_usd_total", model="spare", service="billing"
    ) == pytest.approx(cost)
    assert sample(
        samples, "switchboard_gateway_cost_usd_total", model="primary", service="billing"
    ) == (0)


def test_the_breaker_gauge_shows_a_breaker_opening(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    settings = gateway_settings(
        tmp_path,
        Model("primary", [upstream.url]),
        retry_attempts=1,
        breaker_failures=2,
        breaker_cooldown_s=60.0,
    )
    token = new_service(settings, "billing")
    admin = new_service(settings, "ops", admin=True)
    with ThreadedServer(create_app(settings)) as server:
        # The deployment as the admins' breaker list names it.
        [row] = httpx.get(
            server.base_url + "/api/gateway/breakers", headers={"authorization": f"Bearer {admin}"}
        ).json()
        labels = {"model": "primary", "region": row["region"], "deployment": row["deployment"]}
        closed = read_metrics(server.base_url)
        upstream.script(status=503, error_message="region down")
        for _ in range(2):
            assert ask(server.base_url, token, "primary").status_code == 502
        opened = read_metrics(server.base_url)

    state = "switchboard_gateway_breaker_state"
    assert sample(closed, state, **labels, state="closed") == 1
    assert sample(closed, state, **labels, state="open") == 0
    assert sample(opened, state, **labels, state="closed") == 0
    assert sample(opened, state, **labels, state="open") == 1
    assert sample(opened, state, **labels, state="half_open") == 0


def test_mcp_servers_are_counted_by_health(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    settings = gateway_settings(tmp_path, Model("primary", [upstream.url]))
    token = new_service(settings, "weather-bot", team="weather")
    with McpTestServer() as weather, ThreadedServer(create_app(settings)) as server:
        http = httpx.Client(
            base_url=server.base_url, headers={"authorization": f"Bearer {token}"}, timeout=30
        )
        body = {"slug": "weather", "name": "Weather", "team": "weather", "url": weather.url}
        assert http.post("/api/mcp/servers", json=body).status_code == 201
        up = read_metrics(server.base_url)
        weather.stop()
        checked = http.post("/api/mcp/servers/weather/check")
        assert checked.json()["health"] == "down", checked.text
        down = read_metrics(server.base_url)
        http.close()

    servers = "switchboard_mcp_servers"
    assert sample(up, servers, health="up", status="active") == 1
    assert sample(up, servers, health="down", status="active") == 0
    assert sample(down, servers, health="up", status="active") == 0
    assert sample(down, servers, health="down", status="active") == 1


def test_routes_are_labelled_by_their_template_never_by_the_path(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    settings = gateway_settings(tmp_path, Model("primary", [upstream.url]))
    token = new_service(settings, "billing")
    headers = {"authorization": f"Bearer {token}"}
    with ThreadedServer(create_app(settings)) as server:
        assert httpx.get(server.base_url + "/api/agents/secret-plan-1", headers=headers).is_error
        assert httpx.get(server.base_url + "/nowhere/secret-plan-2").status_code == 404
        assert httpx.request("PROPFIND", server.base_url + "/healthz").status_code == 405
        samples = read_metrics(server.base_url)

    http = "switchboard_http_requests_total"
    assert sample(samples, http, method="GET", route="/api/agents/{slug}", status="4xx") == 1
    assert sample(samples, http, method="GET", route="unmatched", status="4xx") == 1
    assert sample(samples, http, method="other", route="/healthz", status="4xx") == 1
    assert not any("secret-plan" in value for _, labels in samples for _, value in labels)


def test_with_a_metrics_token_the_metrics_need_it(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    settings = gateway_settings(
        tmp_path, Model("primary", [upstream.url]), metrics_token=METRICS_TOKEN
    )
    with ThreadedServer(create_app(settings)) as server:
        missing = httpx.get(server.base_url + "/metrics")
        wrong = httpx.get(
            server.base_url + "/metrics", headers={"authorization": "Bearer not-the-token"}
        )
        samples = read_metrics(server.base_url, METRICS_TOKEN)

    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert "SWITCHBOARD_METRICS_TOKEN" in refused.json()["detail"]
        assert "switchboard_" not in refused.text
    assert (
        sample(
            samples, "switchboard_http_requests_total", method="GET", route="/metrics", status="4xx"
        )
        == 2
    )
