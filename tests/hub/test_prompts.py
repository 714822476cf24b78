"""The prompt library API over real HTTP: prompts and their immutable versions, production and
roll back in the audit log, diffs, who may change what, and what bad input is told."""

import difflib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningHub
from tests.support.owners import owners_and_others

V1 = [
    {"role": "system", "content": "You write short release notes for {{product}}."},
    {"role": "user", "content": "Changes:\n{{changes}}"},
]
V2 = [
    {"role": "system", "content": "You write cheerful release notes for {{product}}."},
    {"role": "user", "content": "Changes:\n{{changes}}\nAudience: {{audience}}"},
]


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


def _prompt(**extra: Any) -> dict[str, Any]:
    return {
        "name": "release-notes",
        "description": "Release notes from a list of changes.",
        "messages": V1,
        "model": "test-model",
        "parameters": {"temperature": 0.2, "max_tokens": 300},
        **extra,
    }


def _version(messages: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {"messages": messages, "model": "test-model", "note": "friendlier", **extra}


@pytest.fixture
def people(hub: RunningHub) -> Iterator[dict[str, httpx.Client]]:
    """Alpha's builder and member, beta's builder, an admin, alpha's service, and nobody."""
    with owners_and_others(hub) as clients:
        yield clients


def _audit(people: dict[str, httpx.Client]) -> list[dict[str, Any]]:
    answer = people["root"].get("/api/audit", params={"action": "prompt.*"})
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()
    return sorted(events, key=lambda event: event["id"])


def test_a_builder_makes_a_prompt_whose_first_version_is_production(people):
    made = people["ada"].post("/api/prompts", json=_prompt())

    assert made.status_code == 201, made.text
    prompt = made.json()
    assert prompt["team"] == "alpha" and prompt["created_by"] == "ada"
    assert prompt["production_version"] == 1
    assert prompt["variables"] == ["product", "changes"]
    assert prompt["production"]["messages"] == V1
    assert prompt["production"]["parameters"] == {"temperature": 0.2, "max_tokens": 300}
    listed = people["bob"].get("/api/prompts", params={"q": "release"}).json()
    assert [(p["name"], p["team"], p["production_version"]) for p in listed] == [
        ("release-notes", "alpha", 1)
    ]
    assert people["bob"].get("/api/prompts", params={"q": "invoices"}).json() == []
    assert people["bob"].get("/api/prompts", params={"team": "beta"}).json() == []
    created = _audit(people)
    assert [(e["action"], e["object_id"], e["actor_name"]) for e in created] == [
        ("prompt.created", "release-notes", "ada")
    ]


def test_versions_are_numbered_and_never_change(people):
    people["ada"].post("/api/prompts", json=_prompt())

    added = people["ada"].post("/api/prompts/release-notes/versions", json=_version(V2))
    again = people["service"].post("/api/prompts/release-notes/versions", json=_version(V1))

    assert added.status_code == 201, added.text
    assert (added.json()["number"], again.json()["number"]) == (2, 3)
    assert added.json()["is_production"] is False
    versions = people["bob"].get("/api/prompts/release-notes/versions").json()
    assert [v["number"] for v in versions] == [3, 2, 1]
    assert people["bob"].get("/api/prompts/release-notes/versions/1").json()["messages"] == V1
    assert people["bob"].get("/api/prompts/release-notes/versions/2").json()["messages"] == V2
    # No route changes or deletes a version.
    for method in ("PUT", "PATCH", "DELETE"):
        answer = people["ada"].request(method, "/api/prompts/release-notes/versions/1")
        assert answer.status_code == 405
    assert people["bob"].get("/api/prompts/release-notes/versions/9").status_code == 404
    actions = [(e["action"], e["details"].get("version")) for e in _audit(people)]
    assert actions[1:] == [("prompt.version_added", 2), ("prompt.version_added", 3)]


def test_production_moves_and_rolls_back_with_each_change_in_the_audit_log(people):
    ada = people["ada"]
    ada.post("/api/prompts", json=_prompt())
    for _ in range(2):
        ada.post("/api/prompts/release-notes/versions", json=_version(V2))

    moves = [
        ada.post("/api/prompts/release-notes/production", json={"version": 2}),
        ada.post("/api/prompts/release-notes/production", json={"version": 3}),
        ada.post("/api/prompts/release-notes/rollback"),
        ada.post("/api/prompts/release-notes/rollback"),
    ]
    nothing_before = ada.post("/api/prompts/release-notes/rollback")
    by_number = ada.post("/api/prompts/release-notes/production", json={"version": 3})

    assert [m.status_code for m in moves] == [200] * 4, [m.text for m in moves]
    assert [m.json()["production_version"] for m in moves] == [2, 3, 2, 1]
    assert nothing_before.status_code == 409
    assert "none before it" in nothing_before.json()["detail"]
    assert by_number.json()["production_version"] == 3
    changes = [
        (e["details"]["from_version"], e["details"]["to_version"], e["details"]["rollback"])
        for e in _audit(people)
        if e["action"] == "prompt.production_changed"
    ]
    assert changes == [(1, 2, False), (2, 3, False), (3, 2, True), (2, 1, True), (1, 3, False)]
    versions = people["bob"].get("/api/prompts/release-notes/versions").json()
    assert [v["number"] for v in versions if v["is_production"]] == [3]
    missing = ada.post("/api/prompts/release-notes/production", json={"version": 7})
    assert missing.status_code == 404 and "no version 7" in missing.json()["detail"]


def test_the_diff_shows_the_lines_that_changed_between_two_versions(people):
    people["ada"].post("/api/prompts", json=_prompt())
    people["ada"].post("/api/prompts/release-notes/versions", json=_version(V2))

    diff = people["bob"].get("/api/prompts/release-notes/diff", params={"from": 1, "to": 2})

    assert diff.status_code == 200, diff.text
    lines = diff.json()["lines"]
    assert lines[:2] == ["--- v1", "+++ v2"]
    removed = {line[1:] for line in lines if line.startswith("-") and not line.startswith("---")}
    added = {line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")}
    assert "  " + V1[0]["content"] in removed and "  " + V2[0]["content"] in added
    assert "  Audience: {{audience}}" in added
    assert {"parameters.temperature: 0.2", "parameters.max_tokens: 300"} <= removed
    assert "note: friendlier" in added
    # The same diff difflib makes of the two versions' messages, line for line.
    old = [line for m in V1 for line in m["content"].splitlines()]
    new = [line for m in V2 for line in m["content"].splitlines()]
    changed = [d for d in difflib.ndiff(old, new) if d[:1] in "+-"]
    assert {d[2:] for d in changed if d[0] == "+"} <= {line[2:] for line in added}
    unchanged = people["bob"].get("/api/prompts/release-notes/diff", params={"from": 2, "to": 2})
    assert unchanged.json()["lines"] == []


def test_only_the_owning_teams_builders_and_admins_change_a_prompt(people):
    people["ada"].post("/api/prompts", json=_prompt())
    change = ("/api/prompts/release-notes/versions", _version(V2))
    production = ("/api/prompts/release-notes/production", {"version": 1})

    refused = {
        who: [people[who].post(path, json=body) for path, body in (change, production)]
        for who in ("cy", "bob", "anon")
    }

    assert [a.status_code for a in refused["cy"]] == [403, 403]
    assert "team 'alpha'" in refused["cy"][0].json()["detail"]
    assert [a.status_code for a in refused["bob"]] == [403, 403]
    assert "builder" in refused["bob"][0].json()["detail"]
    assert [a.status_code for a in refused["anon"]] == [401, 401]
    assert people["anon"].get("/api/prompts/release-notes").status_code == 401
    # Everyone signed in reads it, and alpha's service and the admin change it.
    for who in ("cy", "bob", "service", "root"):
        assert people[who].get("/api/prompts/release-notes").status_code == 200
    assert people["service"].post(change[0], json=change[1]).status_code == 201
    assert people["root"].post(production[0], json={"version": 2}).status_code == 200
    # A member makes none; a builder makes one only for their own team.
    assert people["bob"].post("/api/prompts", json=_prompt(name="mine")).status_code == 403
    other_team = people["cy"].post("/api/prompts", json=_prompt(name="theirs", team="alpha"))
    assert other_team.status_code == 403
    own = people["cy"].post("/api/prompts", json=_prompt(name="ours"))
    assert own.status_code == 201 and own.json()["team"] == "beta"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"name": "Release Notes"}, "name"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "Hi"}]}, "'system', 'user' or 'assistant'"),
        ({"messages": [{"role": "user", "content": "Hi {{first name}}"}]}, "'{{first name}}'"),
        (
            {"messages": [{"role": "user", "content": "Hi {{1st}}"}]},
            "'{{1st}}' is not a placeholder",
        ),
        ({"messages": [{"role": "user", "content": "Hi {{name"}]}, "no partner"),
        ({"messages": [{"role": "user", "content": "x" * 20_001}]}, "at most 20000 characters"),
        (
            {"model": "gpt-nowhere"},
            "'gpt-nowhere' is not in the catalog; choose one of: test-model",
        ),
        ({"parameters": {"temperature": 3}}, "temperature"),
        ({"parameters": {"api_base": "http://evil"}}, "api_base"),
        ({"response_format": {"properties": {}}}, '"type"'),
    ],
)
def test_bad_input_is_refused_with_a_message_that_says_what_is_wrong(people, change, said):
    answer = people["ada"].post("/api/prompts", json=_prompt(**change))

    assert answer.status_code == 422, answer.text
    assert said in answer.json()["detail"]


def test_a_taken_name_is_a_conflict(people):
    assert people["ada"].post("/api/prompts", json=_prompt()).status_code == 201

    again = people["root"].post("/api/prompts", json=_prompt(team="alpha"))

    assert again.status_code == 409
    assert "'release-notes' exists" in again.json()["detail"]
