"""The regression gate of an agent over real HTTP: the agent `helper` is bound to a test set and
a judge; the scripted upstream answers each version's cases in its own way (told by the
instructions it is sent) and the scripted judge scores an answer low when it does not help, so
which rows pass on which version is known here. Publishing a worse draft freezes it as a new
version that is refused with exactly the rows that got worse, and the live version stays; only
an admin overrides, and the version goes live then; a draft as good goes live once it passes;
restoring a version that was live is not gated, one the gate held back is refused; and the
pages do the same."""

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.evaluation import Case, is_judge, make_test_set
from tests.support.owners import as_person, as_service, page_clients
from tests.support.upstream import ScriptedUpstream

CASES = 9
MARGIN = 0.1
# Each version's instructions; the draft published as v2 does worse on every third question,
# the one published after it as well as v1.
INSTRUCTIONS = {
    "kind": "You answer questions kindly.",
    "terse": "You answer questions tersely.",
    "warm": "You answer questions warmly.",
}
JUDGE = {
    "kind": "judge",
    "model": "test-model",
    "rubric": "The answer helps with the question.",
    "pass_score": 0.5,
}


def _fails(instructions: str, n: int) -> bool:
    """Whether the answer to question n under `instructions` is one the judge scores low."""
    return n % 3 == 0 if instructions == "terse" else n % 5 == 0


def _number(text: str) -> int:
    found = re.search(r"[Qq]uestion (\d+)", text)
    assert found is not None, text
    return int(found.group(1))


def _reply(request: dict[str, Any]) -> str:
    last = request["messages"][-1]["content"]
    if is_judge(request):
        helps = "no idea" not in last
        return json.dumps({"score": 0.9 if helps else 0.2, "reason": f"question {_number(last)}"})
    system = request["messages"][0]["content"]
    instructions = next(key for key, text in INSTRUCTIONS.items() if text in system)
    n = _number(last)
    return f"no idea about question {n}" if _fails(instructions, n) else f"the answer to {n}"


def _passed(instructions: str) -> set[int]:
    return {n for n in range(1, CASES + 1) if not _fails(instructions, n)}


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


@pytest.fixture
def ada(hub: RunningHub, upstream: ScriptedUpstream) -> Iterator[httpx.Client]:
    """Ada (a builder of team support) owns `helper`, published as v1 with the kind
    instructions and bound to the gate over the set `questions`."""
    upstream.reply_for = _reply
    cases = [Case(variables={"message": f"Question {n}?"}) for n in range(1, CASES + 1)]
    make_test_set(hub.settings.sqlalchemy_url, "questions", cases, team="support")
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team in [("ada", "support"), ("carol", "sales")]:
            create_user(
                session=session, username=name, password=f"pw-{name}", team=team, role=Role.builder
            )
    with as_person(hub, "ada") as client:
        agent = {
            "slug": "helper",
            "name": "Helper",
            "model": "test-model",
            "instructions": INSTRUCTIONS["kind"],
        }
        made = client.post("/api/agents", json=agent)
        assert made.status_code == 201, made.text
        published = client.post("/api/agents/helper/publish")
        assert published.status_code == 201, published.text
        gate = {"set": "questions", "checks": [JUDGE], "margin": MARGIN}
        bound = client.put("/api/agents/helper/gate", json=gate)
        assert bound.status_code == 200, bound.text
        yield client


@pytest.fixture
def admin(hub: RunningHub) -> Iterator[httpx.Client]:
    with as_service(hub, hub.new_service("root-bot", team="ops", admin=True)) as client:
        yield client


def _draft(client: httpx.Client, instructions: str) -> None:
    changed = client.patch("/api/agents/helper", json={"instructions": INSTRUCTIONS[instructions]})
    assert changed.status_code == 200, changed.text


def _decided(client: httpx.Client, check_id: int, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        check = client.get(f"/api/agents/helper/gate-checks/{check_id}").json()
        if check["status"] != "running":
            return dict(check)
        assert time.monotonic() < deadline, f"the gate check was not decided: {check}"
        time.sleep(0.05)


def _live(client: httpx.Client) -> tuple[int, str]:
    """The live version's number and instructions, as the agent's API and its run spec say."""
    agent = client.get("/api/agents/helper").json()
    spec = client.get("/api/agents/helper/live").json()
    assert spec["version"] == agent["live"]["number"]
    return agent["live"]["number"], spec["instructions"]


def _audit(admin: httpx.Client, action: str) -> list[dict[str, Any]]:
    answer = admin.get("/api/audit", params={"action": action})
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_a_worse_draft_is_refused_with_its_rows_and_only_an_admin_overrides(
    ada: httpx.Client, admin: httpx.Client, upstream: ScriptedUpstream
) -> None:
    _draft(ada, "terse")
    asked = ada.post("/api/agents/helper/publish")

    assert asked.status_code == 202, asked.text
    started = asked.json()
    assert (started["target_kind"], started["status"]) == ("agent", "running")
    assert (started["candidate_version"], started["baseline_version"]) == (2, 1)
    assert _live(ada) == (1, INSTRUCTIONS["kind"])
    check = _decided(ada, started["id"])

    worse = sorted(_passed("kind") - _passed("terse"))
    assert worse == [3, 6, 9]
    assert check["status"] == "refused", check
    assert check["worse"] == worse
    assert check["candidate_score"] == pytest.approx(len(_passed("terse")) / CASES)
    assert check["baseline_score"] == pytest.approx(len(_passed("kind")) / CASES)
    assert "Rows that got worse: 3, 6, 9." in check["message"]
    assert "the live version's v1" in check["message"]
    agent = ada.get("/api/agents/helper").json()
    assert [(v["number"], v["is_live"]) for v in agent["versions"]] == [(2, False), (1, True)]
    assert _live(ada) == (1, INSTRUCTIONS["kind"])
    compared = ada.get(
        f"/api/evaluation/runs/{check['baseline_run']}/compare/{check['candidate_run']}"
    )
    assert [row["position"] for row in compared.json()["worse"]] == worse
    # The gate is not passed by restoring the version it held back.
    restored = ada.post("/api/agents/helper/versions/2/restore")
    assert restored.status_code == 409, restored.text
    assert f"gate check {check['id']} held it back" in restored.json()["detail"]

    path = f"/api/agents/helper/gate-checks/{check['id']}/override"
    by_owner = ada.post(path, json={"reason": "ship it"})
    assert by_owner.status_code == 403
    assert "Only an admin can override" in by_owner.json()["detail"]
    assert _live(ada) == (1, INSTRUCTIONS["kind"])
    assert admin.post(path, json={"reason": "  "}).status_code == 422
    overridden = admin.post(path, json={"reason": "Terse answers are what support asked for."})

    assert overridden.status_code == 200, overridden.text
    assert (overridden.json()["status"], overridden.json()["decided_by"]) == (
        "overridden",
        "root-bot",
    )
    assert _live(ada) == (2, INSTRUCTIONS["terse"])
    assert admin.post(path, json={"reason": "again"}).status_code == 409
    (refusal,) = _audit(admin, "agent.gate_refused")
    assert (refusal["object_kind"], refusal["object_id"]) == ("agent", "helper")
    assert refusal["actor_kind"] == "system"
    assert refusal["details"]["worse_rows"] == worse
    assert refusal["details"]["margin"] == MARGIN
    (override,) = _audit(admin, "agent.gate_overridden")
    assert override["actor_name"] == "root-bot"
    assert override["details"]["reason"] == "Terse answers are what support asked for."
    published = _audit(admin, "agent.published")
    assert [(e["actor_name"], e["details"]) for e in published] == [
        ("root-bot", {"version": 2, "gate_check": check["id"]}),
        ("ada", {"version": 1}),
    ]


def test_a_draft_as_good_goes_live_and_restoring_a_live_version_is_not_gated(
    ada: httpx.Client, admin: httpx.Client, upstream: ScriptedUpstream
) -> None:
    _draft(ada, "warm")
    asked = ada.post("/api/agents/helper/publish")
    assert asked.status_code == 202, asked.text

    check = _decided(ada, asked.json()["id"])

    assert check["status"] == "passed", check
    assert check["worse"] == []
    assert check["candidate_score"] == check["baseline_score"] == len(_passed("kind")) / CASES
    assert _live(ada) == (2, INSTRUCTIONS["warm"])
    (passed,) = _audit(admin, "agent.gate_passed")
    assert passed["details"]["gate_check"] == check["id"]
    published = _audit(admin, "agent.published")
    assert published[0]["actor_name"] == "ada"
    assert published[0]["details"] == {"version": 2, "gate_check": check["id"]}

    hits = upstream.hits
    restored = ada.post("/api/agents/helper/versions/1/restore")
    assert restored.status_code == 200, restored.text
    assert _live(ada) == (1, INSTRUCTIONS["kind"])
    assert ada.post("/api/agents/helper/versions/2/restore").status_code == 200
    assert _live(ada) == (2, INSTRUCTIONS["warm"])
    assert upstream.hits == hits
    assert len(ada.get("/api/agents/helper/gate-checks").json()) == 1


def test_only_those_who_may_change_the_agent_bind_its_gate_and_without_one_it_goes_live(
    hub: RunningHub, ada: httpx.Client
) -> None:
    body = {"set": "questions", "checks": [JUDGE]}
    with as_person(hub, "carol") as carol:
        refused = carol.put("/api/agents/helper/gate", json=body)
        assert refused.status_code == 403
        assert "Only 'ada' (its owner)" in refused.json()["detail"]
        assert carol.delete("/api/agents/helper/gate").status_code == 403
        assert carol.get("/api/agents/helper/gate").status_code == 200
    assert ada.put("/api/agents/nope/gate", json=body).status_code == 404
    no_set = ada.put("/api/agents/helper/gate", json={**body, "set": "nope"})
    assert no_set.status_code == 404 and "No test set 'nope'" in no_set.json()["detail"]

    assert ada.delete("/api/agents/helper/gate").status_code == 204
    missing = ada.get("/api/agents/helper/gate")
    assert missing.status_code == 404 and "has no gate" in missing.json()["detail"]
    _draft(ada, "terse")
    published = ada.post("/api/agents/helper/publish")
    assert published.status_code == 201, published.text
    assert _live(ada) == (2, INSTRUCTIONS["terse"])
    assert ada.get("/api/agents/helper/gate-checks").json() == []


def test_the_pages_bind_publish_to_the_gate_check_and_let_an_admin_override(
    hub: RunningHub, ada: httpx.Client
) -> None:
    people = [("ben", "ops", Role.member), ("root", "ops", Role.admin)]
    with page_clients(hub, people) as client_for:
        owner, ben, root = client_for("ada"), client_for("ben"), client_for("root")
        form = {
            "set": "questions",
            "margin": "0.1",
            "judge_model": "test-model",
            "rubric": JUDGE["rubric"],
            "pass_score": "0.5",
            "other_checks": "",
        }
        shown = owner.get("/agents/helper")
        assert 'id="gate-form"' in shown.text and "goes live only once" in shown.text
        assert 'id="gate-form"' not in ben.get("/agents/helper").text
        bad = owner.post("/agents/helper/gate", data={**form, "margin": "2", "rubric": "<b>x</b>"})
        assert bad.status_code == 422 and "Please fix: margin" in bad.text
        assert "&lt;b&gt;x&lt;/b&gt;" in bad.text and "<b>x</b>" not in bad.text
        by_member = ben.post("/agents/helper/gate", data=form, follow_redirects=False)
        assert by_member.status_code == 403
        bound = owner.post("/agents/helper/gate", data=form, follow_redirects=False)
        assert bound.status_code == 303, bound.text

        _draft(ada, "terse")
        published = owner.post("/agents/helper/publish", follow_redirects=False)
        assert published.status_code == 303, published.text
        location = published.headers["location"]
        check_id = int(location.rsplit("/", 1)[1])
        assert location == f"/agents/helper/gate-checks/{check_id}"
        _decided(ada, check_id)

        page = ben.get(location)
        assert page.status_code == 200
        assert 'id="gate-status">refused<' in page.text
        worse = sorted(_passed("kind") - _passed("terse"))
        assert page.text.count('<tr id="worse-') == len(worse)
        for n in worse:
            assert f'<tr id="worse-{n}">' in page.text
            assert f"no idea about question {n}" in page.text
        assert 'id="override-form"' not in owner.get(location).text
        listed = owner.get("/agents/helper")
        assert f'<tr id="gate-check-{check_id}">' in listed.text
        assert f"held by gate check #{check_id}" in listed.text
        refused = owner.post(f"{location}/override", data={"reason": "ship it"})
        assert refused.status_code == 403 and "Only an admin" in refused.text
        assert 'id="override-form"' in root.get(location).text
        overridden = root.post(
            f"{location}/override", data={"reason": "agreed"}, follow_redirects=False
        )
        assert overridden.status_code == 303, overridden.text
        assert 'id="gate-status">overridden<' in ben.get(location).text
        assert _live(ada) == (2, INSTRUCTIONS["terse"])

        _draft(ada, "warm")
        saved = owner.post(
            "/agents/helper/edit",
            data={
                "name": "Helper",
                "model": "test-model",
                "instructions": INSTRUCTIONS["warm"],
                "visibility": "everyone",
                "max_steps": "8",
                "max_tokens": "1024",
                "timeout_s": "120",
                "action": "publish",
            },
            follow_redirects=False,
        )
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"].startswith("/agents/helper/gate-checks/")
        check = _decided(ada, int(saved.headers["location"].rsplit("/", 1)[1]))
        assert check["status"] == "passed", check
        assert _live(ada) == (3, INSTRUCTIONS["warm"])
        removed = owner.post("/agents/helper/gate/remove", follow_redirects=False)
        assert removed.status_code == 303
        assert "No gate: a published draft goes live at once" in owner.get("/agents/helper").text
