"""The playground's runs, over real HTTP to the scripted upstream: a prompt not saved yet is
rendered with its variables and streamed from the model, counted as the service
`prompt-playground` of the runner's team; bad runs are refused with what to fix."""

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.owners import as_person, as_service
from tests.support.upstream import ScriptedUpstream, count_tokens

REPLY = "Three short lines about the launch."
MESSAGES = [
    {"role": "system", "content": "You summarise {{topic}} for {{audience}}."},
    {"role": "user", "content": "Summarise it."},
]
VALUES = {"topic": "the Atlas launch", "audience": "sales"}
RENDERED = [
    {"role": "system", "content": "You summarise the Atlas launch for sales."},
    {"role": "user", "content": "Summarise it."},
]
# The test catalog's prices of test-model, in dollars per million tokens (tests/conftest.py).
PRICES = (2.0, 8.0)


@pytest.fixture
def people(hub: RunningHub) -> Iterator[dict[str, httpx.Client]]:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="bea", password="pw", team="docs", role=Role.builder)
        create_user(session=session, username="max", password="pw", team="docs", role=Role.member)
    clients = {name: as_person(hub, name) for name in ("bea", "max")}
    yield clients
    for client in clients.values():
        client.close()


def _run(client: httpx.Client, **changes: Any) -> httpx.Response:
    body = {"messages": MESSAGES, "model": "test-model", "variables": VALUES, **changes}
    return client.post("/api/playground", json=body)


def _events(raw: str) -> list[dict[str, Any]]:
    chunks = []
    for event in raw.split("\n\n"):
        data = event.removeprefix("data:").strip()
        if data and data != "[DONE]":
            chunks.append(orjson.loads(data))
    return chunks


def test_a_run_streams_the_rendered_prompt_and_is_counted_for_the_runners_team(
    hub: RunningHub, upstream: ScriptedUpstream, people: dict[str, httpx.Client]
) -> None:
    upstream.script(reply=REPLY)

    answer = _run(people["bea"], parameters={"temperature": 0.3, "max_tokens": 120})

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    chunks = _events(answer.text)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == REPLY
    tokens_in = sum(count_tokens(m["content"]) for m in RENDERED)
    assert chunks[-1]["usage"]["prompt_tokens"] == tokens_in
    assert chunks[-1]["usage"]["completion_tokens"] == count_tokens(REPLY)
    sent = upstream.requests[-1]
    assert sent["messages"] == RENDERED
    assert (sent["temperature"], sent["max_tokens"], sent["stream"]) == (0.3, 120, True)

    with as_service(hub, hub.new_service("finance", team="ops", admin=True)) as admin:
        usage = admin.get("/v1/usage", params={"group_by": ["service", "team", "prompt"]})
    assert usage.status_code == 200, usage.text
    (row,) = usage.json()["rows"]
    cost = (tokens_in * PRICES[0] + count_tokens(REPLY) * PRICES[1]) / 1e6
    assert (row["service"], row["team"], row["prompt"]) == ("prompt-playground", "docs", None)
    assert (row["requests"], row["input_tokens"]) == (1, tokens_in)
    assert row["cost_usd"] == pytest.approx(cost)


@pytest.mark.parametrize(
    ("changes", "status", "said"),
    [
        ({"variables": {"topic": "x"}}, 400, "Missing variable(s) for this prompt: audience"),
        ({"variables": {**VALUES, "tone": "x"}}, 400, "Unknown variable(s) for this prompt: tone"),
        ({"model": "gpt-nowhere"}, 422, "'gpt-nowhere' is not in the catalog"),
        ({"messages": []}, 422, "messages"),
        ({"parameters": {"temperature": 9}}, 422, "temperature"),
        # An integer JSON carries but the hub cannot store (over 64 bits).
        (
            {"response_format": {"type": "object", "maxProperties": 2**64}},
            422,
            "the JSON schema cannot be stored as JSON: Integer exceeds 64-bit range",
        ),
    ],
)
def test_a_bad_run_is_refused_with_what_to_fix(
    upstream: ScriptedUpstream,
    people: dict[str, httpx.Client],
    changes: dict[str, Any],
    status: int,
    said: str,
) -> None:
    answer = _run(people["bea"], **changes)

    assert answer.status_code == status, answer.text
    assert said in answer.json()["detail"]
    assert upstream.requests == []


def test_only_builders_run_the_playground(
    hub: RunningHub, upstream: ScriptedUpstream, people: dict[str, httpx.Client]
) -> None:
    refused = _run(people["max"])
    assert refused.status_code == 403
    assert "member" in refused.json()["detail"]
    with httpx.Client(base_url=hub.url, timeout=30) as nobody:
        assert _run(nobody).status_code == 401
    assert upstream.requests == []
