"""The regression gate over real HTTP: the prompt `tickets` is bound to a test set and a judge;
the scripted upstream answers each version's cases in its own way and the scripted judge
scores an answer low when it does not help, so which rows pass on which version is known
here. A worse version is refused with exactly the rows that got worse and production stays;
only an admin overrides, and production moves then; a version as good passes; a roll back is
not gated; a bad binding is refused with what to fix; and the pages do the same."""

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.evaluation.gates import decide_check
from hub.models.eval_gate import EvalGateCheck
from tests.conftest import RunningHub
from tests.support.evaluation import (
    SYSTEM,
    USER,
    case_number,
    is_judge,
    make_test_set,
    make_tickets_prompt,
    ticket_cases,
)
from tests.support.owners import as_service, page_clients
from tests.support.upstream import ScriptedUpstream

CASES = 15
MARGIN = 0.05
# v1 is `make_tickets_prompt`'s; v2 does worse on every third ticket; v3 as well as v1.
SYSTEMS = {1: SYSTEM, 2: "You answer support tickets tersely.", 3: "You answer tickets kindly."}
JUDGE = {
    "kind": "judge",
    "model": "test-model",
    "rubric": "The answer helps with the ticket.",
    "pass_score": 0.5,
}


def _fails(version: int, n: int) -> bool:
    """Whether `version`'s answer to ticket n is one the judge scores low."""
    return n % 3 == 0 if version == 2 else n % 5 == 0


def _reply(request: dict[str, Any]) -> str:
    n = case_number(request)
    if is_judge(request):
        helps = "no idea" not in request["messages"][-1]["content"]
        return json.dumps({"score": 0.9 if helps else 0.2, "reason": f"ticket {n}"})
    version = next(
        v for v, system in SYSTEMS.items() if request["messages"][0]["content"] == system
    )
    return f"no idea about ticket {n}" if _fails(version, n) else f"answer {n}"


def _passed(version: int) -> set[int]:
    return {n for n in range(1, CASES + 1) if not _fails(version, n)}


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


@pytest.fixture
def qa(hub: RunningHub, upstream: ScriptedUpstream) -> Iterator[httpx.Client]:
    """Team qa's service, which owns `tickets` (v1, v2, v3) and its test set, and bound the
    gate."""
    upstream.reply_for = _reply
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(CASES), team="qa")
    with as_service(hub, hub.new_service("qa-bot", team="qa")) as client:
        make_tickets_prompt(client)
        for number in (2, 3):
            version = {
                "model": "test-model",
                "parameters": {"max_tokens": 50},
                "messages": [
                    {"role": "system", "content": SYSTEMS[number]},
                    {"role": "user", "content": USER},
                ],
            }
            added = client.post("/api/prompts/tickets/versions", json=version)
            assert added.status_code == 201, added.text
        gate = {"set": "tickets", "checks": [JUDGE], "margin": MARGIN}
        bound = client.put("/api/prompts/tickets/gate", json=gate)
        assert bound.status_code == 200, bound.text
        yield client


@pytest.fixture
def admin(hub: RunningHub) -> Iterator[httpx.Client]:
    with as_service(hub, hub.new_service("root-bot", team="ops", admin=True)) as client:
        yield client


def _decided(client: httpx.Client, check_id: int, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        check = client.get(f"/api/prompts/tickets/gate-checks/{check_id}").json()
        if check["status"] != "running":
            return dict(check)
        assert time.monotonic() < deadline, f"the gate check was not decided: {check}"
        time.sleep(0.05)


def _served_version(client: httpx.Client, upstream: ScriptedUpstream) -> int:
    """The version a call of `tickets` by name gets, told by the system message it sent."""
    called = client.post(
        "/v1/prompts/tickets/completions", json={"variables": {"n": 1, "text": "hello"}}
    )
    assert called.status_code == 200, called.text
    sent = upstream.requests[-1]["messages"][0]["content"]
    return next(v for v, system in SYSTEMS.items() if system == sent)


def _audit(admin: httpx.Client, action: str) -> list[dict[str, Any]]:
    answer = admin.get("/api/audit", params={"action": action})
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_a_worse_version_is_refused_with_its_rows_and_only_an_admin_overrides(
    qa: httpx.Client, admin: httpx.Client, upstream: ScriptedUpstream
) -> None:
    asked = qa.post("/api/prompts/tickets/production", json={"version": 2})

    assert asked.status_code == 202, asked.text
    started = asked.json()
    assert (started["status"], started["candidate_version"], started["baseline_version"]) == (
        "running",
        2,
        1,
    )
    check = _decided(qa, started["id"])

    worse = sorted(_passed(1) - _passed(2))
    assert worse == [3, 6, 9, 12]
    assert check["status"] == "refused"
    assert check["worse"] == worse
    assert check["candidate_score"] == pytest.approx(len(_passed(2)) / CASES)
    assert check["baseline_score"] == pytest.approx(len(_passed(1)) / CASES)
    assert "Rows that got worse: 3, 6, 9, 12" in check["message"]
    assert qa.get("/api/prompts/tickets").json()["production_version"] == 1
    assert _served_version(qa, upstream) == 1
    compared = qa.get(
        f"/api/evaluation/runs/{check['baseline_run']}/compare/{check['candidate_run']}"
    )
    assert [row["position"] for row in compared.json()["worse"]] == worse

    by_owner = qa.post(
        f"/api/prompts/tickets/gate-checks/{check['id']}/override", json={"reason": "ship it"}
    )
    assert by_owner.status_code == 403
    assert "Only an admin can override" in by_owner.json()["detail"]
    no_reason = admin.post(
        f"/api/prompts/tickets/gate-checks/{check['id']}/override", json={"reason": "  "}
    )
    assert no_reason.status_code == 422
    overridden = admin.post(
        f"/api/prompts/tickets/gate-checks/{check['id']}/override",
        json={"reason": "Terser answers are what support asked for."},
    )

    assert overridden.status_code == 200, overridden.text
    assert overridden.json()["status"] == "overridden"
    assert overridden.json()["decided_by"] == "root-bot"
    assert qa.get("/api/prompts/tickets").json()["production_version"] == 2
    assert _served_version(qa, upstream) == 2
    twice = admin.post(
        f"/api/prompts/tickets/gate-checks/{check['id']}/override", json={"reason": "again"}
    )
    assert twice.status_code == 409
    (refusal,) = _audit(admin, "prompt.gate_refused")
    assert refusal["actor_kind"] == "system"
    assert refusal["details"]["worse_rows"] == worse
    assert refusal["details"]["margin"] == MARGIN
    assert refusal["details"]["candidate_score"] == pytest.approx(len(_passed(2)) / CASES)
    (override,) = _audit(admin, "prompt.gate_overridden")
    assert override["actor_name"] == "root-bot"
    assert override["details"]["reason"] == "Terser answers are what support asked for."
    (moved,) = _audit(admin, "prompt.production_changed")
    assert moved["actor_name"] == "root-bot"
    assert (moved["details"]["to_version"], moved["details"]["gate_check"]) == (2, check["id"])


def test_a_version_as_good_passes_and_a_roll_back_is_not_gated(
    qa: httpx.Client, admin: httpx.Client, upstream: ScriptedUpstream
) -> None:
    asked = qa.post("/api/prompts/tickets/production", json={"version": 3})
    assert asked.status_code == 202, asked.text

    check = _decided(qa, asked.json()["id"])

    assert check["status"] == "passed", check
    assert check["worse"] == []
    assert check["candidate_score"] == check["baseline_score"] == len(_passed(1)) / CASES
    assert qa.get("/api/prompts/tickets").json()["production_version"] == 3
    assert _served_version(qa, upstream) == 3
    (passed,) = _audit(admin, "prompt.gate_passed")
    assert passed["details"]["gate_check"] == check["id"]
    (moved,) = _audit(admin, "prompt.production_changed")
    assert moved["actor_name"] == "qa-bot"
    assert (moved["details"]["from_version"], moved["details"]["to_version"]) == (1, 3)

    hits = upstream.hits
    rolled_back = qa.post("/api/prompts/tickets/rollback")
    assert rolled_back.status_code == 200, rolled_back.text
    assert rolled_back.json()["production_version"] == 1
    back_again = qa.post("/api/prompts/tickets/production", json={"version": 3})
    assert back_again.status_code == 200, back_again.text
    assert back_again.json()["production_version"] == 3
    assert upstream.hits == hits
    assert len(qa.get("/api/prompts/tickets/gate-checks").json()) == 1


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"set": "nope", "checks": [JUDGE]}, 404, "No test set 'nope'"),
        ({"set": "tickets", "checks": [JUDGE], "margin": 1.5}, 422, "margin"),
        ({"set": "tickets", "checks": [JUDGE], "margin": -0.1}, 422, "margin"),
        ({"set": "tickets", "checks": []}, 422, "checks"),
        ({"set": "tickets"}, 422, "checks"),
        ({"set": "tickets", "checks": [{"kind": "regex", "value": "("}]}, 422, "not a regular"),
        ({"set": "tickets", "checks": [{**JUDGE, "model": "nope"}]}, 422, "no model 'nope'"),
        ({"set": "tickets", "checks": [{"kind": "judge", "judge_prompt": "nope"}]}, 404, "nope"),
    ],
)
def test_a_bad_binding_is_refused_with_what_to_fix_and_the_gate_stays(
    qa: httpx.Client, body: dict[str, Any], status: int, says: str
) -> None:
    refused = qa.put("/api/prompts/tickets/gate", json=body)

    assert refused.status_code == status, refused.text
    assert says in json.dumps(refused.json()["detail"])
    gate = qa.get("/api/prompts/tickets/gate").json()
    assert (gate["set"], gate["margin"], [c["kind"] for c in gate["checks"]]) == (
        "tickets",
        MARGIN,
        ["judge"],
    )


def test_only_the_prompts_team_binds_its_gate_and_without_one_production_moves_at_once(
    hub: RunningHub, qa: httpx.Client
) -> None:
    body = {"set": "tickets", "checks": [JUDGE]}
    with as_service(hub, hub.new_service("ops-bot", team="ops")) as outsider:
        refused = outsider.put("/api/prompts/tickets/gate", json=body)
        assert refused.status_code == 403
        assert "Only team 'qa'" in refused.json()["detail"]
        assert outsider.delete("/api/prompts/tickets/gate").status_code == 403
        assert outsider.get("/api/prompts/tickets/gate").status_code == 200
        assert (
            outsider.post("/api/prompts/tickets/production", json={"version": 2}).status_code == 403
        )
    assert qa.put("/api/prompts/nope/gate", json=body).status_code == 404

    assert qa.delete("/api/prompts/tickets/gate").status_code == 204
    missing = qa.get("/api/prompts/tickets/gate")
    assert missing.status_code == 404 and "has no gate" in missing.json()["detail"]
    moved = qa.post("/api/prompts/tickets/production", json={"version": 2})
    assert moved.status_code == 200, moved.text
    assert moved.json()["production_version"] == 2
    assert qa.get("/api/prompts/tickets/gate-checks").json() == []


def test_the_pages_bind_publish_show_the_worse_rows_and_let_an_admin_override(
    hub: RunningHub, qa: httpx.Client, upstream: ScriptedUpstream
) -> None:
    people = [("ben", "qa", Role.builder), ("mia", "qa", Role.member), ("root", "ops", Role.admin)]
    with page_clients(hub, people) as client_for:
        ben, mia, root = client_for("ben"), client_for("mia"), client_for("root")
        form = {
            "set": "tickets",
            "margin": "0.05",
            "judge_model": "test-model",
            "rubric": JUDGE["rubric"],
            "pass_score": "0.5",
            "other_checks": "",
        }
        shown = ben.get("/prompts/tickets")
        assert 'id="gate-form"' in shown.text and 'id="gate-summary"' in shown.text
        assert 'id="gate-form"' not in mia.get("/prompts/tickets").text
        bad = ben.post("/prompts/tickets/gate", data={**form, "margin": "2", "rubric": "<b>x</b>"})
        assert bad.status_code == 422 and "Please fix: margin" in bad.text
        assert "&lt;b&gt;x&lt;/b&gt;" in bad.text and "<b>x</b>" not in bad.text
        not_json = ben.post("/prompts/tickets/gate", data={**form, "other_checks": "[oops"})
        assert not_json.status_code == 422 and "not valid JSON" in not_json.text
        by_member = mia.post("/prompts/tickets/gate", data=form, follow_redirects=False)
        assert by_member.status_code == 403
        bound = ben.post("/prompts/tickets/gate", data=form, follow_redirects=False)
        assert bound.status_code == 303, bound.text
        assert "5%" in ben.get("/prompts/tickets").text

        published = ben.post(
            "/prompts/tickets/production", data={"version": "2"}, follow_redirects=False
        )
        assert published.status_code == 303, published.text
        location = published.headers["location"]
        check_id = int(location.rsplit("/", 1)[1])
        assert location == f"/prompts/tickets/gate-checks/{check_id}"
        _decided(qa, check_id)

        page = mia.get(location)
        assert page.status_code == 200
        assert 'id="gate-status">refused<' in page.text
        worse = sorted(_passed(1) - _passed(2))
        assert page.text.count('<tr id="worse-') == len(worse)
        for n in worse:
            assert f'<tr id="worse-{n}">' in page.text
            assert f"no idea about ticket {n}" in page.text
        assert 'id="compare-link"' in page.text and 'id="override-form"' not in page.text
        assert 'id="override-form"' not in ben.get(location).text
        refused = ben.post(f"{location}/override", data={"reason": "ship it"})
        assert refused.status_code == 403 and "Only an admin" in refused.text
        assert 'id="override-form"' in root.get(location).text
        empty = root.post(f"{location}/override", data={"reason": " "})
        assert empty.status_code == 422

        overridden = root.post(
            f"{location}/override",
            data={"reason": "<script>alert(1)</script> agreed with support"},
            follow_redirects=False,
        )
        assert overridden.status_code == 303, overridden.text
        after = mia.get(location)
        assert 'id="gate-status">overridden<' in after.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; agreed" in after.text
        assert qa.get("/api/prompts/tickets").json()["production_version"] == 2
        listed = mia.get("/prompts/tickets")
        assert f'<tr id="gate-check-{check_id}">' in listed.text

        saved = ben.post(
            "/prompts/tickets/edit",
            data={
                "role": ["system", "user"],
                "content": [SYSTEMS[3], USER],
                "model": "test-model",
                "parameter:max_tokens": "50",
                "action": "production",
            },
            follow_redirects=False,
        )
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"].startswith("/prompts/tickets/gate-checks/")
        assert _decided(qa, int(saved.headers["location"].rsplit("/", 1)[1]))["status"] == "passed"
        assert qa.get("/api/prompts/tickets").json()["production_version"] == 4
        removed = ben.post("/prompts/tickets/gate/remove", follow_redirects=False)
        assert removed.status_code == 303
        assert "No gate" in ben.get("/prompts/tickets").text


def test_a_cancelled_run_fails_the_check_and_an_admin_may_still_override_it(
    qa: httpx.Client, admin: httpx.Client, upstream: ScriptedUpstream
) -> None:
    upstream.script(delay_s=0.2)
    asked = qa.post("/api/prompts/tickets/production", json={"version": 2})
    assert asked.status_code == 202, asked.text

    cancelled = qa.post(f"/api/evaluation/runs/{asked.json()['candidate_run']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    check = _decided(qa, asked.json()["id"])

    assert check["status"] == "failed", check
    assert "candidate's run is cancelled" in check["message"]
    assert check["candidate_score"] is None and check["worse"] == []
    assert qa.get("/api/prompts/tickets").json()["production_version"] == 1
    (failed,) = _audit(admin, "prompt.gate_failed")
    assert failed["details"]["gate_check"] == check["id"]
    overridden = admin.post(
        f"/api/prompts/tickets/gate-checks/{check['id']}/override", json={"reason": "urgent fix"}
    )
    assert overridden.status_code == 200, overridden.text
    assert qa.get("/api/prompts/tickets").json()["production_version"] == 2


def test_deciders_in_many_processes_at_once_move_production_once(
    hub: RunningHub, qa: httpx.Client, admin: httpx.Client
) -> None:
    asked = qa.post("/api/prompts/tickets/production", json={"version": 3})
    assert asked.status_code == 202, asked.text
    check_id = asked.json()["id"]
    engine = get_engine(hub.settings.sqlalchemy_url)
    moved: list[bool] = []

    def decide_until_decided() -> None:
        # What the runner's loop in another hub process does, as fast as it can.
        while True:
            with Session(engine, expire_on_commit=False) as session:
                moved.append(decide_check(session, check_id))
                check = session.get(EvalGateCheck, check_id)
                assert check is not None
                session.refresh(check)
                if check.status != "running":
                    return

    deciders = [threading.Thread(target=decide_until_decided) for _ in range(4)]
    for decider in deciders:
        decider.start()
    for decider in deciders:
        decider.join(timeout=60)

    assert _decided(qa, check_id)["status"] == "passed"
    assert qa.get("/api/prompts/tickets").json()["production_version"] == 3
    assert len(_audit(admin, "prompt.gate_passed")) == 1
    assert len(_audit(admin, "prompt.production_changed")) == 1
    assert moved.count(True) <= 1


def test_a_check_is_decided_on_what_it_measured_when_production_moved_meanwhile(
    qa: httpx.Client, upstream: ScriptedUpstream
) -> None:
    upstream.script(delay_s=0.2)
    asked = qa.post("/api/prompts/tickets/production", json={"version": 2})
    assert asked.status_code == 202, asked.text
    # Without the gate, production moves at once; the check already started is still decided.
    assert qa.delete("/api/prompts/tickets/gate").status_code == 204
    assert qa.post("/api/prompts/tickets/production", json={"version": 3}).status_code == 200

    check = _decided(qa, asked.json()["id"])

    assert check["status"] == "refused", check
    assert check["worse"] == sorted(_passed(1) - _passed(2))
    assert "Production moved to v3 meanwhile" in check["message"]
    assert "compared with v1" in check["message"]
    assert qa.get("/api/prompts/tickets").json()["production_version"] == 3
