"""Prompts served by name through the gateway, over real HTTP to the scripted upstream: the
production version (or a pinned one) rendered with the caller's variables, as a chat
completion, with the openai SDK and with plain HTTP; usage by prompt and version, and each
prompt's calls and cost in the library's list."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from sqlmodel import Session, select

from hub.core.db import get_engine
from hub.models.service import Service, utcnow
from hub.models.usage import UsageRecord
from tests.conftest import RunningHub
from tests.support.owners import as_service
from tests.support.prompts import rendered
from tests.support.upstream import ScriptedUpstream, count_tokens

REPLY = "Version two ships faster search."
V1 = [
    {"role": "system", "content": "You write release notes for {{product}}."},
    {"role": "user", "content": "Changes: {{changes}}"},
]
V2 = [
    {"role": "system", "content": "You write cheerful release notes for {{product}}."},
    {"role": "user", "content": "Changes: {{changes}} (for {{audience}})"},
]
PARAMETERS_V1 = {"temperature": 0.2, "max_tokens": 300}
PARAMETERS_V2 = {"temperature": 0.7, "top_p": 0.9, "seed": 7}
SCHEMA = {"type": "object", "properties": {"notes": {"type": "string"}}, "required": ["notes"]}


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


class Team:
    """Team alpha: its builder's service manages the prompt; `caller` is another service of
    the team that calls it by name."""

    def __init__(self, hub: RunningHub) -> None:
        self.hub = hub
        self.builder = as_service(hub, hub.new_service("alpha-builder", team="alpha"))
        self.token = hub.new_service("release-bot", team="alpha")
        self.http = httpx.Client(
            base_url=hub.url + "/v1", headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        self.sdk = openai.OpenAI(base_url=hub.url + "/v1", api_key=self.token, max_retries=0)

    def close(self) -> None:
        self.builder.close()
        self.http.close()
        self.sdk.close()

    def make(self, name: str = "release-notes") -> None:
        body = {"name": name, "messages": V1, "model": "test-model", "parameters": PARAMETERS_V1}
        made = self.builder.post("/api/prompts", json=body)
        assert made.status_code == 201, made.text
        second = {
            "messages": V2,
            "model": "test-model",
            "parameters": PARAMETERS_V2,
            "response_format": SCHEMA,
        }
        added = self.builder.post(f"/api/prompts/{name}/versions", json=second)
        assert added.status_code == 201, added.text

    def production(self, version: int) -> None:
        moved = self.builder.post(
            "/api/prompts/release-notes/production", json={"version": version}
        )
        assert moved.status_code == 200, moved.text

    def call(self, **body: Any) -> httpx.Response:
        return self.http.post("/prompts/release-notes/completions", json=body)


@pytest.fixture
def team(hub: RunningHub, upstream: ScriptedUpstream) -> Iterator[Team]:
    upstream.script(reply=REPLY)
    team = Team(hub)
    team.make()
    yield team
    team.close()


V1_VALUES = {"product": "Atlas", "changes": "faster search"}
V2_VALUES = {**V1_VALUES, "audience": "admins"}


def test_the_openai_sdk_calls_the_production_version_by_name(team, upstream):
    completion = team.sdk.post(
        "/prompts/release-notes/completions",
        body={"variables": V1_VALUES},
        cast_to=ChatCompletion,
    )

    assert completion.choices[0].message.content == REPLY
    sent = upstream.requests[-1]
    assert sent["messages"] == rendered(V1, **V1_VALUES)
    assert sent["model"] == "scripted-model"
    assert {key: sent[key] for key in PARAMETERS_V1} == PARAMETERS_V1
    assert "response_format" not in sent
    assert completion.usage is not None
    expected_in = sum(count_tokens(m["content"]) for m in rendered(V1, **V1_VALUES))
    assert completion.usage.prompt_tokens == expected_in


def test_the_openai_sdk_streams_a_prompt_with_usage(team, upstream):
    team.production(2)

    stream = team.sdk.post(
        "/prompts/release-notes/completions",
        body={"variables": V2_VALUES, "stream": True, "stream_options": {"include_usage": True}},
        cast_to=ChatCompletion,
        stream=True,
        stream_cls=openai.Stream[ChatCompletionChunk],
    )
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == count_tokens(REPLY)
    sent = upstream.requests[-1]
    assert sent["stream"] is True
    assert sent["messages"] == rendered(V2, **V2_VALUES)
    assert {key: sent[key] for key in PARAMETERS_V2} == PARAMETERS_V2
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "release-notes", "schema": SCHEMA},
    }


def test_plain_http_streams_a_prompt_as_server_sent_events(team, upstream):
    with team.http.stream(
        "POST", "/prompts/release-notes/completions", json={"variables": V1_VALUES, "stream": True}
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [line for line in answer.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "data: [DONE]"
    assert upstream.requests[-1]["messages"] == rendered(V1, **V1_VALUES)


def test_switching_production_changes_the_next_call_with_no_restart(team, upstream):
    first = team.call(variables=V1_VALUES)
    team.production(2)
    second = team.call(variables=V2_VALUES)
    rolled = team.builder.post("/api/prompts/release-notes/rollback")
    third = team.call(variables=V1_VALUES)

    assert [a.status_code for a in (first, second, third)] == [200, 200, 200]
    assert rolled.json()["production_version"] == 1
    assert [r["messages"] for r in upstream.requests[-3:]] == [
        rendered(V1, **V1_VALUES),
        rendered(V2, **V2_VALUES),
        rendered(V1, **V1_VALUES),
    ]
    assert first.json()["choices"][0]["message"]["content"] == REPLY


def test_a_pinned_version_is_served_whatever_is_production(team, upstream):
    pinned = team.call(variables=V2_VALUES, version=2)

    assert pinned.status_code == 200, pinned.text
    assert upstream.requests[-1]["messages"] == rendered(V2, **V2_VALUES)
    absent = team.call(variables=V1_VALUES, version=9)
    assert absent.status_code == 404
    assert "no version 9" in absent.json()["error"]["message"]


def test_a_value_that_looks_like_a_placeholder_is_not_expanded_again(team, upstream):
    values = {"product": "{{changes}}", "changes": 42}

    answer = team.call(variables=values)

    assert answer.status_code == 200, answer.text
    # `changes` first, so the expected text is not expanded twice either.
    expected = rendered(V1, changes="42", product="{{changes}}")
    assert upstream.requests[-1]["messages"] == expected


@pytest.mark.parametrize(
    ("variables", "named", "says"),
    [
        ({"product": "Atlas"}, "changes", "Missing variable(s)"),
        ({**V1_VALUES, "audience": "admins"}, "audience", "Unknown variable(s)"),
    ],
)
def test_a_missing_or_unknown_variable_is_a_400_that_names_it(
    team, upstream, variables, named, says
):
    before = len(upstream.requests)

    answer = team.call(variables=variables)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == f"variables.{named}"
    assert says in error["message"] and named in error["message"]
    assert len(upstream.requests) == before
    with pytest.raises(openai.BadRequestError, match=named):
        team.sdk.post(
            "/prompts/release-notes/completions",
            body={"variables": variables},
            cast_to=ChatCompletion,
        )


def test_an_unknown_prompt_is_a_404_and_a_call_needs_a_service_token(team):
    missing = team.http.post("/prompts/no-such-prompt/completions", json={"variables": {}})
    unsigned = httpx.post(
        team.hub.url + "/v1/prompts/release-notes/completions", json={"variables": V1_VALUES}
    )
    odd = team.call(variables=V1_VALUES, model="gpt-4o")

    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No prompt 'no-such-prompt' exists."
    assert unsigned.status_code == 401
    assert odd.status_code == 400 and odd.json()["error"]["param"] == "model"


def test_usage_carries_the_prompt_and_version_and_the_usage_report_groups_by_them(team, upstream):
    team.call(variables=V1_VALUES)
    team.call(variables=V1_VALUES)
    team.production(2)
    team.call(variables=V2_VALUES, stream=True)
    team.http.post("/chat/completions", json={"model": "test-model", "messages": V1})
    admin = team.hub.new_service("platform", team="ops", admin=True)

    report = httpx.get(
        team.hub.url + "/v1/usage",
        params={"group_by": ["prompt", "prompt_version"]},
        headers={"Authorization": f"Bearer {admin}"},
    )
    only = httpx.get(
        team.hub.url + "/v1/usage",
        params={"group_by": ["prompt_version"], "prompt": "release-notes"},
        headers={"Authorization": f"Bearer {admin}"},
    )

    assert report.status_code == 200, report.text
    rows = {(r["prompt"], r["prompt_version"]): r for r in report.json()["rows"]}
    assert set(rows) == {(None, None), ("release-notes", 1), ("release-notes", 2)}
    assert rows[("release-notes", 1)]["requests"] == 2
    assert rows[("release-notes", 2)]["requests"] == 1
    v1_in = sum(count_tokens(m["content"]) for m in rendered(V1, **V1_VALUES))
    assert rows[("release-notes", 1)]["input_tokens"] == 2 * v1_in
    assert rows[("release-notes", 1)]["cost_usd"] == pytest.approx(
        2 * (v1_in * 2.0 + count_tokens(REPLY) * 8.0) / 1_000_000
    )
    assert [(r["prompt_version"], r["requests"]) for r in only.json()["rows"]] == [(1, 2), (2, 1)]


def test_the_library_lists_each_prompts_calls_by_name_and_their_cost_in_the_last_7_days(
    team, upstream
):
    team.make("changelog")  # never called
    team.call(variables=V1_VALUES)
    team.call(variables=V1_VALUES)
    team.call(variables=V2_VALUES, version=2)
    team.http.post("/chat/completions", json={"model": "test-model", "messages": V1})
    # A call by name eight days ago, written straight into the hub's database, is left out.
    with Session(get_engine(team.hub.settings.sqlalchemy_url)) as session:
        bot = session.exec(select(Service).where(Service.name == "release-bot")).one()
        assert bot.id is not None
        session.add(
            UsageRecord(
                created_at=utcnow() - timedelta(days=8),
                service_id=bot.id,
                service_name=bot.name,
                team=bot.team,
                model="test-model",
                deployment="old",
                prompt="release-notes",
                prompt_version=1,
                cost_usd=5.0,
            )
        )
        session.commit()

    listed = team.builder.get("/api/prompts")

    assert listed.status_code == 200, listed.text
    items = {item["name"]: item for item in listed.json()}
    assert items["release-notes"]["calls_7d"] == 3
    v1_in = sum(count_tokens(m["content"]) for m in rendered(V1, **V1_VALUES))
    v2_in = sum(count_tokens(m["content"]) for m in rendered(V2, **V2_VALUES))
    out = count_tokens(REPLY)
    expected = (2 * (v1_in * 2.0 + out * 8.0) + (v2_in * 2.0 + out * 8.0)) / 1_000_000
    assert items["release-notes"]["cost_7d_usd"] == pytest.approx(expected)
    assert (items["changelog"]["calls_7d"], items["changelog"]["cost_7d_usd"]) == (0, 0.0)
