"""A calibrated judge scores a sample of a prompt's live calls by name, over real HTTP: the
judge prompt is calibrated through the API on a labelled run (it agrees with people on every
row), bound to `tickets`, and the scripted upstream gives its verdict per call; the verdicts
kept, the pass rates of the API and of the page, the share sampled and the daily cap are
checked against counts made here. An uncalibrated judge and callers outside the prompt's team
are refused."""

import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.models.usage import UsageRecord
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.evaluation import make_test_set, make_tickets_prompt, ticket_cases
from tests.support.owners import as_person, as_service, page_clients
from tests.support.upstream import ScriptedUpstream

ROWS = 12
JUDGE = "ticket-judge"
LOOSE = "loose-judge"
LIVE = "/api/prompts/tickets/live-judge"


def people_pass(n: int) -> bool:
    return n % 3 != 0


def judge_score(n: int) -> float:
    """The scripted judge's score for ticket n: it agrees with people at a pass score of 0.5."""
    return 0.9 if people_pass(n) else 0.1


def _number(text: str) -> int:
    found = re.search(r'"n": "?(\d+)', text) or re.search(r"Ticket (\d+):", text)
    assert found is not None, text
    return int(found.group(1))


def _reply(request: dict[str, Any]) -> str:
    first = str(request["messages"][0]["content"])
    n = _number(str(request["messages"][-1]["content"]))
    if first.startswith("Grade"):
        return json.dumps({"score": judge_score(n), "reason": f"ticket {n} <graded>"})
    if first.startswith("Loose"):
        return json.dumps({"score": 0.9, "reason": "fine"})
    return f"<b>answer {n}</b>"


def _judge_prompt(client: httpx.Client, name: str, system: str, user: str) -> None:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    made = client.post(
        "/api/prompts", json={"name": name, "model": "test-model", "messages": messages}
    )
    assert made.status_code == 201, made.text


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    return hub_settings.model_copy(update={"eval_poll_interval_s": 0.05})


@pytest.fixture
def people(hub: RunningHub, upstream: ScriptedUpstream) -> Iterator[dict[str, httpx.Client]]:
    """qa's builder `ben` and member `mia`, beta's builder `cy`, the admin `root`, and qa's
    service `qa-bot`, which made `tickets` and the judges. `ticket-judge` is calibrated (kappa 1,
    threshold 0.8) on a run of `tickets` whose rows `ben` labelled; `loose-judge` (passes every
    answer) is calibrated on it too, below its threshold."""
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
    _judge_prompt(clients["qa"], JUDGE, "Grade the answer.", "Input: {{input}}\nAnswer: {{answer}}")
    _judge_prompt(clients["qa"], LOOSE, "Loose grading.", "Input: {{input}}\nAnswer: {{answer}}")
    upstream.reply_for = _reply
    make_test_set(hub.settings.sqlalchemy_url, "tickets", ticket_cases(ROWS), team="qa")
    body = {"set": "tickets", "prompt": "tickets", "checks": [{"kind": "valid_json"}]}
    run = clients["qa"].post("/api/evaluation/runs", json=body).json()
    deadline = time.monotonic() + 60
    while (got := clients["ben"].get(f"/api/evaluation/runs/{run['id']}").json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, got
        time.sleep(0.05)
    results = clients["ben"].get(f"/api/evaluation/runs/{run['id']}/results?limit=500").json()
    for row in results["results"]:
        label = {"passed": people_pass(row["position"])}
        put = clients["ben"].put(
            f"/api/evaluation/runs/{run['id']}/labels/{row['case_id']}", json=label
        )
        assert put.status_code == 200, put.text
    for judge, threshold in ((JUDGE, 0.8), (LOOSE, 0.5)):
        made = clients["qa"].post(
            f"/api/evaluation/judges/{judge}/calibrations", json={"run": run["id"]}
        )
        assert made.status_code == 201, made.text
        set_to = {"kappa": threshold}
        assert clients["qa"].put(f"/api/evaluation/judges/{judge}/threshold", json=set_to)
    assert clients["ben"].get(f"/api/evaluation/judges/{JUDGE}").json()["calibrated"] is True
    yield clients
    for client in clients.values():
        client.close()


def _call(client: httpx.Client, n: int, *, stream: bool = False) -> None:
    body = {"variables": {"n": n, "text": f"printer {n} is jammed"}, "stream": stream}
    answered = client.post("/v1/prompts/tickets/completions", json=body)
    assert answered.status_code == 200, answered.text
    if stream:
        assert f"answer {n}" in "".join(
            json.loads(line[5:])["choices"][0]["delta"].get("content") or ""
            for line in answered.text.splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]" and '"choices":[{' in line
        )


def _wait_for(client: httpx.Client, done: Any) -> dict[str, Any]:
    """The live scores once `done(scores)` holds (bounded wait)."""
    deadline = time.monotonic() + 60
    while not done(scores := client.get(LIVE).json()):
        assert time.monotonic() < deadline, scores
        time.sleep(0.05)
    return dict(scores)


def _judged(scores: dict[str, Any]) -> int:
    return sum(f["judged"] + f["no_verdict"] for f in scores["figures"] if f["window"] == "24h")


def test_at_share_one_every_call_is_judged_with_the_scripted_score(
    hub: RunningHub, people: dict[str, httpx.Client], upstream: ScriptedUpstream
) -> None:
    bound = people["ben"].put(LIVE, json={"judge": JUDGE, "share": 1.0})
    assert bound.status_code == 200, bound.text
    binding = bound.json()["binding"]
    assert (binding["judge"], binding["version"], binding["pass_score"]) == (JUDGE, 1, 0.5)
    assert binding["daily_cap"] == 1000
    calls = list(range(1, 17))
    for n in calls:
        _call(people["qa"], n, stream=n > 12)
    scores = _wait_for(people["mia"], lambda s: _judged(s) == len(calls))
    numbers = [int(re.findall(r"\d+", row["answer"])[0]) for row in scores["latest"]]
    assert sorted(numbers) == calls
    for row, n in zip(scores["latest"], numbers, strict=True):
        assert row["answer"] == f"<b>answer {n}</b>"
        assert row["score"] == judge_score(n)
        assert row["passed"] is (judge_score(n) >= 0.5)
        assert row["reason"] == f"ticket {n} <graded>"
        assert (row["version"], row["judge"], row["judge_version"]) == (1, JUDGE, 1)
    passed = sum(people_pass(n) for n in calls)
    for window in ("24h", "7d"):
        (figures,) = [f for f in scores["figures"] if f["window"] == window]
        assert figures == {
            "version": 1,
            "window": window,
            "judged": len(calls),
            "passed": passed,
            "pass_rate": pytest.approx(passed / len(calls)),
            "no_verdict": 0,
        }
    assert scores["binding"]["judged_today"] == len(calls)

    # Each judge call is counted under the service `evaluation` and the judge prompt.
    engine = get_engine(hub.settings.sqlalchemy_url)
    deadline = time.monotonic() + 30
    while True:
        with Session(engine) as session:
            counted = session.exec(
                select(func.count()).where(
                    col(UsageRecord.prompt) == JUDGE, col(UsageRecord.service_name) == "evaluation"
                )
            ).one()
        if counted == ROWS + len(calls):
            break
        assert time.monotonic() < deadline and counted < ROWS + len(calls), counted
        time.sleep(0.05)

    # The page shows the same figures, the answers and reasons escaped.
    with page_clients(hub, [("pia", "qa", Role.member)]) as client_for:
        page = client_for("pia").get("/prompts/tickets/live-judge")
    assert page.status_code == 200, page.text
    assert f"{passed / len(calls) * 100:.1f}%" in page.text
    assert 'id="figures-v1-24h"' in page.text and 'id="live-judge-form"' not in page.text
    assert "&lt;b&gt;answer 1&lt;/b&gt;" in page.text and "<b>answer 1</b>" not in page.text
    assert "ticket 1 &lt;graded&gt;" in page.text and "<graded>" not in page.text


def test_a_share_below_one_judges_a_binomial_share_of_the_calls(
    people: dict[str, httpx.Client],
) -> None:
    share, calls = 0.3, 200
    bound = people["qa"].put(LIVE, json={"judge": JUDGE, "share": share})
    assert bound.status_code == 200, bound.text
    for n in range(1, calls + 1):
        _call(people["qa"], n)
    # Every sampled call is queued by the time its answer is back.
    queued = people["ben"].get(LIVE).json()["this_process"]["queued"]
    scores = _wait_for(people["ben"], lambda s: _judged(s) == queued)
    judged = _judged(scores)
    # Five standard deviations of Binomial(200, 0.3) either side of its mean.
    bound_width = 5 * math.sqrt(calls * share * (1 - share))
    assert abs(judged - calls * share) <= bound_width, judged
    assert scores["this_process"]["dropped"] == 0


def test_the_daily_cap_holds(people: dict[str, httpx.Client]) -> None:
    cap, calls = 5, 9
    bound = people["ben"].put(LIVE, json={"judge": JUDGE, "share": 1, "daily_cap": cap})
    assert bound.status_code == 200, bound.text
    for n in range(1, calls + 1):
        _call(people["qa"], n)
    scores = _wait_for(
        people["ben"],
        lambda s: s["this_process"]["over_cap"] + _judged(s) == calls,
    )
    assert _judged(scores) == cap
    assert scores["this_process"]["over_cap"] == calls - cap
    assert scores["binding"]["judged_today"] == cap


def test_a_judge_that_is_not_calibrated_or_does_not_fit_is_refused(
    people: dict[str, httpx.Client],
) -> None:
    loose = people["ben"].put(LIVE, json={"judge": LOOSE, "share": 0.5})
    assert loose.status_code == 422, loose.text
    # It passes every answer and people fail a third: kappa 0, under its threshold 0.5.
    assert "kappa 0.000" in loose.text and "threshold 0.500" in loose.text
    unknown = people["ben"].put(LIVE, json={"judge": "no-such-judge", "share": 0.5})
    assert unknown.status_code == 404 and "no-such-judge" in unknown.text
    other = people["ben"].put(LIVE, json={"judge": JUDGE, "version": 2, "share": 0.5})
    assert other.status_code == 422 and "measured v1" in other.text
    for share in (0, 1.5):
        wrong = people["ben"].put(LIVE, json={"judge": JUDGE, "share": share})
        assert wrong.status_code == 422, wrong.text
    assert people["ben"].get(LIVE).json()["binding"] is None


def test_only_the_prompts_owners_bind_and_remove_its_live_judge(
    people: dict[str, httpx.Client],
) -> None:
    body = {"judge": JUDGE, "share": 0.5}
    for outsider in ("cy", "mia"):
        refused = people[outsider].put(LIVE, json=body)
        assert refused.status_code == 403, refused.text
    assert people["root"].put(LIVE, json=body).status_code == 200
    assert people["cy"].delete(LIVE).status_code == 403
    assert people["cy"].get(LIVE).json()["binding"]["share"] == 0.5
    assert people["ben"].delete(LIVE).status_code == 204
    assert people["ben"].delete(LIVE).status_code == 404
    assert people["cy"].get(LIVE).json()["binding"] is None
