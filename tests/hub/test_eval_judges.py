"""Judges calibrated by people, over real HTTP: people label the rows of a run, a judge prompt's
version is calibrated against the labels (the scripted upstream gives its verdict per row), and
the accuracy, Cohen's kappa and confusion matrix of the API and of the judge's page equal values
worked out here from the scripted verdicts and the labels; a revised version is re-measured on
the same labels; the owners' threshold decides whether the judge counts as calibrated; a run
with a judge prompt records the judge and its version on each judged row."""

import html
import json
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
from tests.support.evaluation import (
    case_number,
    make_test_set,
    make_tickets_prompt,
    target_reply,
    ticket_cases,
    wait_until_over,
)
from tests.support.owners import as_person, as_service, page_clients
from tests.support.upstream import ScriptedUpstream

ROWS = 40
JUDGE = "ticket-judge"
USER = "Input: {{input}}\nExpected: {{expected}}\nAnswer: {{answer}}"


def people_pass(n: int) -> bool:
    return n % 3 != 0


# Each version's score per row: v1 passes the even rows; v2 agrees with people except on
# every eighth row.
def judge_passes(version: int, n: int) -> bool:
    return n % 2 == 0 if version == 1 else people_pass(n) != (n % 8 == 0)


def _judge_messages(version: int) -> list[dict[str, str]]:
    system = f"Grade v{version}: answer JSON with a score from 0 to 1 and a reason."
    return [{"role": "system", "content": system}, {"role": "user", "content": USER}]


def _reply(request: dict[str, Any]) -> str:
    first = str(request["messages"][0]["content"])
    n = case_number(request)
    if first.startswith("Grade v"):
        version = int(first[len("Grade v")])
        score = 0.9 if judge_passes(version, n) else 0.2
        return json.dumps({"score": score, "reason": f"v{version} on {n}"})
    return target_reply(n)


def figures(judge: list[bool], people: list[bool]) -> dict[str, Any]:
    """Accuracy, kappa and the confusion matrix, counted here; kappa as 2(ad - bc) over
    (a+b)(b+d) + (a+c)(c+d), with a = both pass, d = both fail, b = only the judge passes,
    c = only people pass."""
    a = sum(j and p for j, p in zip(judge, people, strict=True))
    b = sum(j and not p for j, p in zip(judge, people, strict=True))
    c = sum(p and not j for j, p in zip(judge, people, strict=True))
    d = sum(not j and not p for j, p in zip(judge, people, strict=True))
    return {
        "accuracy": (a + d) / len(judge),
        "kappa": 2 * (a * d - b * c) / ((a + b) * (b + d) + (a + c) * (c + d)),
        "confusion": {
            "both_pass": a,
            "judge_pass_people_fail": b,
            "judge_fail_people_pass": c,
            "both_fail": d,
        },
    }


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


@pytest.fixture
def people(hub: RunningHub) -> Iterator[dict[str, httpx.Client]]:
    """API clients: qa's builder `ben` and member `mia`, beta's builder `cy`, the admin
    `root`, and qa's service `qa-bot`, which made the prompt `tickets` and the judge (v1)."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team, role in [
            ("ben", "qa", Role.builder),
            ("mia", "qa", Role.member),
            ("cy", "beta", Role.builder),
            ("root", "ops", Role.admin),
        ]:
            create_user(session=session, username=name, password=f"pw-{name}", team=team, role=role)
    clients = {name: as_person(hub, name) for name in ("ben", "mia", "cy", "root")}
    clients["qa"] = as_service(hub, hub.new_service("qa-bot", team="qa"))
    make_tickets_prompt(clients["qa"])
    judge = {"name": JUDGE, "model": "test-model", "messages": _judge_messages(1)}
    made = clients["qa"].post("/api/prompts", json=judge)
    assert made.status_code == 201, made.text
    yield clients
    for client in clients.values():
        client.close()


def _run(hub: RunningHub, client: httpx.Client, checks: list[dict[str, Any]]) -> dict[str, Any]:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(ROWS), team="qa")
    body = {"set": "tickets", "prompt": "tickets", "checks": checks, "concurrency": 8}
    created = client.post("/api/evaluation/runs", json=body)
    assert created.status_code == 201, created.text
    run = wait_until_over(client, created.json()["id"])
    assert run["status"] == "finished", run
    return run


def _case_ids(client: httpx.Client, run_id: int) -> dict[int, int]:
    """Case number (its position) -> case id."""
    page = client.get(f"/api/evaluation/runs/{run_id}/results?limit=500").json()
    return {r["position"]: r["case_id"] for r in page["results"]}


def _labelled_run(
    hub: RunningHub, people: dict[str, httpx.Client], upstream: ScriptedUpstream
) -> tuple[int, dict[int, int]]:
    upstream.reply_for = _reply
    run = _run(hub, people["qa"], [{"kind": "valid_json"}])
    cases = _case_ids(people["ben"], run["id"])
    for n, case_id in cases.items():
        body = {"passed": people_pass(n), "note": f"row {n}"}
        labelled = people["ben"].put(
            f"/api/evaluation/runs/{run['id']}/labels/{case_id}", json=body
        )
        assert labelled.status_code == 200, labelled.text
    return run["id"], cases


def _calibrate(client: httpx.Client, run_id: int, version: int | None) -> httpx.Response:
    body = {"run": run_id, "version": version}
    return client.post(f"/api/evaluation/judges/{JUDGE}/calibrations", json=body)


def _judge_requests(upstream: ScriptedUpstream) -> list[dict[str, Any]]:
    return [r for r in upstream.requests if str(r["messages"][0]["content"]).startswith("Grade")]


def _assert_figures(calibration: dict[str, Any], expected: dict[str, Any]) -> None:
    assert calibration["labels"] == ROWS
    assert calibration["accuracy"] == pytest.approx(expected["accuracy"])
    assert calibration["kappa"] == pytest.approx(expected["kappa"])
    assert calibration["confusion"] == expected["confusion"]


def test_a_calibration_agrees_with_independent_counts_and_a_revised_judge_is_remeasured(
    hub: RunningHub, people: dict[str, httpx.Client], upstream: ScriptedUpstream
) -> None:
    run_id, cases = _labelled_run(hub, people, upstream)
    # Labelled again, the latest label wins.
    again = {"passed": not people_pass(1), "note": "changed my mind"}
    people["ben"].put(f"/api/evaluation/runs/{run_id}/labels/{cases[1]}", json=again)
    back = {"passed": people_pass(1), "note": "row 1"}
    people["ben"].put(f"/api/evaluation/runs/{run_id}/labels/{cases[1]}", json=back)
    labels = people["mia"].get(f"/api/evaluation/runs/{run_id}/labels").json()
    assert [(label["position"], label["passed"]) for label in labels] == [
        (n, people_pass(n)) for n in range(1, ROWS + 1)
    ]
    assert {label["labelled_by"] for label in labels} == {"ben"}
    human = [people_pass(n) for n in range(1, ROWS + 1)]

    first = _calibrate(people["ben"], run_id, None)
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert v1["version"] == 1 and v1["run"] == run_id
    _assert_figures(v1, figures([judge_passes(1, n) for n in range(1, ROWS + 1)], human))
    assert [d["position"] for d in v1["disagreements"]] == [
        n for n in range(1, ROWS + 1) if judge_passes(1, n) != people_pass(n)
    ]
    assert sorted(case_number(r) for r in _judge_requests(upstream)) == list(range(1, ROWS + 1))

    # The rubric revised: a new version of the judge prompt, measured on the same labels.
    revised = {"model": "test-model", "messages": _judge_messages(2), "note": "stricter"}
    added = people["qa"].post(f"/api/prompts/{JUDGE}/versions", json=revised)
    assert added.status_code == 201, added.text
    second = _calibrate(people["root"], run_id, 2)
    assert second.status_code == 201, second.text
    v2 = second.json()
    expected_v2 = figures([judge_passes(2, n) for n in range(1, ROWS + 1)], human)
    _assert_figures(v2, expected_v2)
    disagreeing = [d["position"] for d in v2["disagreements"]]
    assert disagreeing == [8, 16, 24, 32, 40]
    row = v2["disagreements"][0]
    assert row["people_passed"] is True and row["judge_passed"] is False
    assert row["note"] == "row 8" and row["answer"] == target_reply(8)

    judge = people["cy"].get(f"/api/evaluation/judges/{JUDGE}").json()
    assert [c["version"] for c in judge["calibrations"]] == [2, 1]
    assert judge["calibrated"] is False and judge["kappa_threshold"] is None

    # The judge's page shows the same figures.
    with page_clients(hub, [("pia", "qa", Role.member)]) as client_for:
        page = client_for("pia").get(f"/evaluation/judges/{JUDGE}")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    for calibration, version in ((v2, 2), (v1, 1)):
        expected = figures([judge_passes(version, n) for n in range(1, ROWS + 1)], human)
        number = calibration["id"]
        assert f'id="accuracy-{number}">{expected["accuracy"] * 100:.1f}%<' in text
        assert f'id="kappa-{number}">{expected["kappa"]:.3f}<' in text
        for cell, count in expected["confusion"].items():
            assert f'id="{cell}-{number}">{count}<' in text
    assert "row 8" in text and "Not calibrated" in text


def test_the_owners_threshold_decides_whether_the_judge_is_calibrated(
    hub: RunningHub, people: dict[str, httpx.Client], upstream: ScriptedUpstream
) -> None:
    run_id, _ = _labelled_run(hub, people, upstream)
    human = [people_pass(n) for n in range(1, ROWS + 1)]
    kappa = figures([judge_passes(1, n) for n in range(1, ROWS + 1)], human)["kappa"]
    uncalibrated = people["ben"].get(f"/api/evaluation/judges/{JUDGE}").json()
    assert uncalibrated == {
        "prompt": JUDGE,
        "team": "qa",
        "kappa_threshold": None,
        "calibrated": False,
        "calibrations": [],
    }
    assert _calibrate(people["qa"], run_id, 1).status_code == 201

    below = people["ben"].put(f"/api/evaluation/judges/{JUDGE}/threshold", json={"kappa": 0.6})
    assert below.status_code == 200, below.text
    assert kappa < 0.6 and below.json()["calibrated"] is False
    lenient = max(kappa, 0.0)
    at = people["qa"].put(f"/api/evaluation/judges/{JUDGE}/threshold", json={"kappa": lenient})
    assert at.json()["kappa_threshold"] == pytest.approx(lenient)
    assert at.json()["calibrated"] is (kappa >= lenient)

    # The revised version is the latest calibration: it decides.
    revised = {"model": "test-model", "messages": _judge_messages(2)}
    assert people["qa"].post(f"/api/prompts/{JUDGE}/versions", json=revised).status_code == 201
    assert _calibrate(people["ben"], run_id, 2).status_code == 201
    kappa_2 = figures([judge_passes(2, n) for n in range(1, ROWS + 1)], human)["kappa"]
    assert kappa_2 >= 0.6
    judged = people["ben"].put(f"/api/evaluation/judges/{JUDGE}/threshold", json={"kappa": 0.6})
    assert judged.json()["calibrated"] is True


def test_a_run_with_a_judge_prompt_records_the_judge_and_its_version_on_each_row(
    hub: RunningHub, people: dict[str, httpx.Client], upstream: ScriptedUpstream
) -> None:
    upstream.reply_for = _reply
    revised = {"model": "test-model", "messages": _judge_messages(2)}
    assert people["qa"].post(f"/api/prompts/{JUDGE}/versions", json=revised).status_code == 201
    # Production (v1) when the check names no version.
    run = _run(hub, people["qa"], [{"kind": "judge", "judge_prompt": JUDGE}])
    assert run["checks"][0]["judge_version"] == 1
    pinned = _run(hub, people["qa"], [{"kind": "judge", "judge_prompt": JUDGE, "judge_version": 2}])
    for found, version in ((run, 1), (pinned, 2)):
        results = people["mia"].get(f"/api/evaluation/runs/{found['id']}/results?limit=500")
        rows = results.json()["results"]
        assert len(rows) == ROWS
        for row in rows:
            (outcome,) = row["outcomes"]
            assert (outcome["judge"], outcome["judge_version"]) == (JUDGE, version)
            assert outcome["passed"] is judge_passes(version, row["position"])
            assert outcome["detail"] == f"v{version} on {row['position']}"

    body = {
        "set": "tickets",
        "prompt": "tickets",
        "checks": [{"kind": "judge", "judge_prompt": JUDGE}],
    }
    estimate = people["qa"].post("/api/evaluation/runs/estimate", json=body).json()
    assert (estimate["target_calls"], estimate["judge_calls"]) == (ROWS, ROWS)
    # The run form names a judge prompt too.
    form = {"set": "tickets", "prompt": "tickets", "judge_prompt": JUDGE, "judge_version": "2"}
    with page_clients(hub, [("pat", "qa", Role.builder)]) as client_for:
        started = client_for("pat").post("/evaluation/runs/new", data={**form, "action": "start"})
        assert started.status_code == 303, started.text
        made = people["qa"].get(
            "/api/evaluation" + started.headers["location"].removeprefix("/evaluation")
        )
        assert made.json()["checks"][0]["judge_prompt"] == JUDGE
        assert made.json()["checks"][0]["judge_version"] == 2
        both = {**form, "judge_model": "test-model", "rubric": "Good.", "action": "start"}
        refused = client_for("pat").post("/evaluation/runs/new", data=both)
        assert refused.status_code == 422 and "not both" in refused.text
    wait_until_over(people["qa"], made.json()["id"])
    # The judge's calls are counted under the judge prompt and the version that judged.
    query = {"group_by": ["service", "prompt", "prompt_version"], "prompt": JUDGE}
    expected = {("evaluation", JUDGE, 1): ROWS, ("evaluation", JUDGE, 2): 2 * ROWS}
    with as_service(hub, hub.new_service("root-bot", team="ops", admin=True)) as admin:
        deadline = time.monotonic() + 10
        while True:
            rows = admin.get("/v1/usage", params=query).json()["rows"]
            counted = {
                (r["service"], r["prompt"], r["prompt_version"]): r["requests"] for r in rows
            }
            if counted == expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert counted == expected


def test_only_the_runs_team_labels_and_only_the_judges_team_calibrates(
    hub: RunningHub, people: dict[str, httpx.Client], upstream: ScriptedUpstream
) -> None:
    run_id, cases = _labelled_run(hub, people, upstream)
    label = f"/api/evaluation/runs/{run_id}/labels/{cases[1]}"
    body = {"passed": True, "note": ""}
    for name in ("mia", "cy"):
        assert people[name].put(label, json=body).status_code == 403
        assert people[name].delete(label).status_code == 403
        assert _calibrate(people[name], run_id, None).status_code == 403
        threshold = {"kappa": 0.5}
        refused = people[name].put(f"/api/evaluation/judges/{JUDGE}/threshold", json=threshold)
        assert refused.status_code == 403
    assert people["root"].put(label, json=body).json()["labelled_by"] == "root"
    assert people["qa"].delete(label).status_code == 204
    assert people["qa"].delete(label).status_code == 404
    labels = people["cy"].get(f"/api/evaluation/runs/{run_id}/labels").json()
    assert len(labels) == ROWS - 1
    assert people["mia"].get(f"/api/evaluation/judges/{JUDGE}").status_code == 200
    with httpx.Client(base_url=hub.url) as anon:
        assert anon.get(f"/api/evaluation/runs/{run_id}/labels").status_code == 401
        assert anon.get(f"/api/evaluation/judges/{JUDGE}").status_code == 401


BAD_CHECKS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "judge"}, "either 'model' and 'rubric'"),
    (
        {"kind": "judge", "model": "test-model", "rubric": "Good.", "judge_prompt": JUDGE},
        "not both",
    ),
    ({"kind": "judge", "model": "test-model"}, "both 'model' and 'rubric'"),
    ({"kind": "contains", "judge_version": 2}, "goes with a 'judge_prompt'"),
]


@pytest.mark.parametrize(("check", "message"), BAD_CHECKS)
def test_a_judge_check_needs_a_model_and_rubric_or_a_judge_prompt(
    hub: RunningHub, people: dict[str, httpx.Client], check: dict[str, Any], message: str
) -> None:
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(2), team="qa")
    body = {"set": "tickets", "prompt": "tickets", "checks": [check]}
    refused = people["qa"].post("/api/evaluation/runs", json=body)
    assert refused.status_code == 422, refused.text
    assert message in refused.text


def test_bad_judges_labels_and_calibrations_are_refused(
    hub: RunningHub, people: dict[str, httpx.Client], upstream: ScriptedUpstream
) -> None:
    upstream.reply_for = _reply
    qa = people["qa"]
    run = _run(hub, qa, [{"kind": "valid_json"}])
    cases = _case_ids(qa, run["id"])

    def checks(check: dict[str, Any]) -> httpx.Response:
        body = {"set": "tickets", "prompt": "tickets", "checks": [check]}
        return qa.post("/api/evaluation/runs", json=body)

    # A judge prompt whose messages use another variable, a missing one, a missing version.
    other = {
        "name": "odd-judge",
        "model": "test-model",
        "messages": [{"role": "user", "content": "{{n}}"}],
    }
    assert qa.post("/api/prompts", json=other).status_code == 201
    odd = checks({"kind": "judge", "judge_prompt": "odd-judge"})
    assert odd.status_code == 422 and "may only use input, answer, expected" in odd.text
    assert checks({"kind": "judge", "judge_prompt": "nobody"}).status_code == 404
    assert checks({"kind": "judge", "judge_prompt": JUDGE, "judge_version": 9}).status_code == 404

    labels = f"/api/evaluation/runs/{run['id']}/labels"
    assert qa.put(f"{labels}/{cases[1]}", json={"note": "no verdict"}).status_code == 422
    assert qa.put(f"{labels}/{cases[1]}", json={"passed": True, "x": 1}).status_code == 422
    assert qa.put(f"{labels}/999999", json={"passed": True}).status_code == 404
    assert qa.get("/api/evaluation/runs/999999/labels").status_code == 404

    nothing = _calibrate(qa, run["id"], None)
    assert nothing.status_code == 422 and "no labelled rows" in nothing.text
    assert _calibrate(qa, 999999, None).status_code == 404
    assert _calibrate(qa, run["id"], 9).status_code == 404
    assert (
        qa.post("/api/evaluation/judges/nobody/calibrations", json={"run": run["id"]}).status_code
        == 404
    )
    bad_score = {"run": run["id"], "pass_score": 2}
    assert (
        qa.post(f"/api/evaluation/judges/{JUDGE}/calibrations", json=bad_score).status_code == 422
    )
    threshold = f"/api/evaluation/judges/{JUDGE}/threshold"
    assert qa.put(threshold, json={"kappa": 1.5}).status_code == 422
    assert qa.put(threshold, json={}).status_code == 422
    assert qa.put("/api/evaluation/judges/nobody/threshold", json={"kappa": 0.5}).status_code == 404
    assert qa.get("/api/evaluation/judges/nobody").status_code == 404


def test_the_pages_label_rows_calibrate_a_judge_and_set_its_threshold(
    hub: RunningHub, people: dict[str, httpx.Client], upstream: ScriptedUpstream
) -> None:
    upstream.reply_for = _reply
    run = _run(hub, people["qa"], [{"kind": "valid_json"}])
    cases = _case_ids(people["qa"], run["id"])
    label_page = f"/evaluation/runs/{run['id']}/label"
    with page_clients(hub, [("pat", "qa", Role.builder), ("max", "qa", Role.member)]) as client_for:
        pat, other = client_for("pat"), client_for("max")
        shown = pat.get(label_page)
        assert shown.status_code == 200, shown.text
        assert all(f'id="case-{case_id}"' in shown.text for case_id in cases.values())
        assert 'value="pass"' in shown.text and ">0</strong> of 40" in shown.text
        assert f'href="{label_page}"' in pat.get(f"/evaluation/runs/{run['id']}").text
        for n in (1, 2, 3):
            verdict = "pass" if people_pass(n) else "fail"
            form = {"case_id": str(cases[n]), "verdict": verdict, "note": f"page {n}"}
            assert pat.post(label_page, data=form).status_code == 303
        refused = other.post(label_page, data={"case_id": str(cases[4]), "verdict": "pass"})
        assert refused.status_code == 403 and 'role="alert"' in refused.text
        assert 'value="pass"' not in other.get(label_page).text
        labels = people["qa"].get(f"/api/evaluation/runs/{run['id']}/labels").json()
        assert [(x["position"], x["passed"], x["note"]) for x in labels] == [
            (n, people_pass(n), f"page {n}") for n in (1, 2, 3)
        ]
        relabelled = pat.get(label_page).text
        # The labelled rows come after those not labelled yet.
        assert relabelled.index(f'id="case-{cases[4]}"') < relabelled.index(f'id="case-{cases[1]}"')
        assert "page 1" in relabelled and ">3</strong> of 40" in relabelled

        judge_page = f"/evaluation/judges/{JUDGE}"
        empty = pat.get(judge_page)
        assert "Not calibrated yet" in empty.text and 'id="calibrate-form"' in empty.text
        assert f'href="{judge_page}"' in pat.get(f"/prompts/{JUDGE}").text
        missing = pat.post(f"{judge_page}/calibrations", data={"run": ""})
        assert missing.status_code == 422 and 'role="alert"' in missing.text
        calibrated = pat.post(f"{judge_page}/calibrations", data={"run": str(run["id"])})
        assert calibrated.status_code == 303, calibrated.text
        assert pat.post(f"{judge_page}/threshold", data={"kappa": "0"}).status_code == 303
        shown = html.unescape(pat.get(judge_page).text)
        expected = figures(
            [judge_passes(1, n) for n in (1, 2, 3)], [people_pass(n) for n in (1, 2, 3)]
        )
        (calibration,) = people["qa"].get(f"/api/evaluation/judges/{JUDGE}").json()["calibrations"]
        assert f'id="accuracy-{calibration["id"]}">{expected["accuracy"] * 100:.1f}%<' in shown
        calibrated_now = expected["kappa"] >= 0
        assert ('id="calibrated">Calibrated<' in shown) is calibrated_now
        assert other.post(f"{judge_page}/threshold", data={"kappa": "0.5"}).status_code == 403
        assert pat.get("/evaluation/judges/nobody").status_code == 404
        assert pat.get("/evaluation/runs/999999/label").status_code == 404
