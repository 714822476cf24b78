"""The chat's metrics and request ids, after a real turn in a real browser: the turn is counted
at the chat's GET /metrics, and its request id is on the chat's log line for the turn and on
the model call that reached the provider through the hub."""

import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from prometheus_client.parser import text_string_to_metric_families

from tests.app.conftest import ChatApp, send, sign_in, wait_until
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

METRICS_TOKEN = "chat-metrics-reader-3d9b1f"
TURN_LINE = re.compile(r"INFO \S+ \[([0-9a-f]{32})\] model turn \(test-model\) ended ok")


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_turn_is_counted_and_its_request_id_reaches_the_provider(
    page: Page, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    before = _samples(httpx.get(chat_app.url + "/metrics").text)
    upstream.script(reply="Forty-two.")
    sign_in(page, chat_app, chat_user)
    send(page, "What is the answer?")
    expect(page.locator(".message-content").filter(has_text="Forty-two.").last).to_be_visible()
    turn = wait_until(lambda: TURN_LINE.search(chat_app.log()), what="the turn's log line")

    metrics = httpx.get(chat_app.url + "/metrics")
    assert metrics.status_code == 200
    after = _samples(metrics.text)
    turns = ("switchboard_chat_turns_total", frozenset({("kind", "model"), ("status", "ok")}))
    assert before.get(turns, 0.0) == 0 and after[turns] == 1
    assert after[("switchboard_chat_turn_duration_seconds_count", frozenset({("kind", "model")}))]
    # The chat made the turn's id; the model call carried it through the hub to the provider.
    assert [headers["x-request-id"] for headers in upstream.headers] == [turn.group(1)]

    # With a metrics token, the chat's metrics need it too.
    chat_app.env["SWITCHBOARD_METRICS_TOKEN"] = METRICS_TOKEN
    chat_app.restart()
    refused = httpx.get(chat_app.url + "/metrics")
    assert refused.status_code == 401 and "SWITCHBOARD_METRICS_TOKEN" in refused.text
    allowed = httpx.get(
        chat_app.url + "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert allowed.status_code == 200 and "switchboard_chat_turns" in allowed.text
