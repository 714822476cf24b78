"""Experiments over real HTTP: two versions of a prompt split the calls that send a unit, the
other version answers in the background through the scripted upstream, and the calls whose
answers differ (a known tenth of the inputs) are exactly the exposures. With outcomes scripted
to favour arm b among the exposed units, both analyses' figures equal those worked out here
from the scripted data, and the post-exposure interval is the narrower."""

import hashlib
import math
import re
import time
from collections.abc import Iterator
from statistics import NormalDist
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.owners import as_person, as_service, page_clients
from tests.support.upstream import ScriptedUpstream

UNITS = 200
CALLS_PER_UNIT = 3
PLAIN = "Answer briefly."
WARM = "Answer warmly."
USER = "Item {{n}}"


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


def is_judge(request: dict[str, Any]) -> bool:
    return str(request["messages"][0]["content"]).startswith("You compare two answers")


def judged_item(request: dict[str, Any]) -> int:
    """The item of the answers a judge is asked about ("Answer 1:\nWarm answer 20\n\n...")."""
    content = request["messages"][1]["content"]
    return int(re.findall(r"answer (\d+)$", content, re.MULTILINE | re.IGNORECASE)[0])


def scripted_reply(request: dict[str, Any]) -> str:
    """Both versions answer item n alike, except for every tenth item (n % 10 == 0), where
    the warm version (b) answers in its own words. A judge asked about two answers says they
    are the same when the item is a multiple of 20."""
    if is_judge(request):
        n = judged_item(request)
        return "SAME" if n % 20 == 0 else "DIFFERENT"
    found = re.fullmatch(r"Item (\d+)", request["messages"][-1]["content"])
    assert found is not None
    n = int(found.group(1))
    warm = request["messages"][0]["content"] == WARM
    return f"Warm answer {n}" if warm and n % 10 == 0 else f"Answer {n}"


def items_of(unit: int) -> list[int]:
    return [CALLS_PER_UNIT * unit + k for k in range(CALLS_PER_UNIT)]


def exposed(unit: int) -> bool:
    return any(n % 10 == 0 for n in items_of(unit))


def outcome(unit: int, arm: str) -> float | None:
    """The outcome reported for a unit (None: never reported, which counts 0). Exposed units
    convert in arm b (all but every eleventh) and not in arm a; the others convert every
    second unit, whatever their arm."""
    if unit % 13 == 0:
        return None
    if exposed(unit):
        return (0.0 if unit % 11 == 0 else 1.0) if arm == "b" else 0.0
    return 1.0 if unit % 2 == 0 else 0.0


def arm_of(experiment_id: int, unit: str, split: float) -> str:
    """The first 8 bytes of sha256("<experiment>:<unit>") as a fraction of 2**64, below the
    split: arm b."""
    digest = hashlib.sha256(f"{experiment_id}:{unit}".encode()).digest()
    return "b" if int.from_bytes(digest[:8], "big") / 2**64 < split else "a"


def analysis(a: list[float], b: list[float]) -> dict[str, float]:
    """Means, the difference b − a and its 95% interval: difference ± 1.96 × √(s²_a/n_a +
    s²_b/n_b), with s² = Σ(x − mean)² / (n − 1)."""
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1)
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1)
    z = NormalDist().inv_cdf(0.975)
    half = z * math.sqrt(var_a / len(a) + var_b / len(b))
    return {
        "units_a": len(a),
        "units_b": len(b),
        "rate_a": mean_a,
        "rate_b": mean_b,
        "difference": mean_b - mean_a,
        "ci_low": mean_b - mean_a - half,
        "ci_high": mean_b - mean_a + half,
    }


def figures_of(shown: dict[str, Any]) -> dict[str, float]:
    return {
        "units_a": shown["a"]["units"],
        "units_b": shown["b"]["units"],
        "rate_a": shown["a"]["outcome_rate"],
        "rate_b": shown["b"]["outcome_rate"],
        "difference": shown["difference"],
        "ci_low": shown["ci_low"],
        "ci_high": shown["ci_high"],
    }


def wait_for_calls(client: httpx.Client, experiment_id: int, calls: int) -> dict[str, Any]:
    """The experiment once `calls` calls are recorded and none waits for its other answer."""
    deadline = time.monotonic() + 60
    while True:
        shown = client.get(f"/api/experiments/{experiment_id}").json()
        if shown["calls"] == calls and shown["pending"] == 0:
            return dict(shown)
        assert time.monotonic() < deadline, f"the other answers did not come in: {shown}"
        time.sleep(0.05)


class Shop:
    """Team shop: its builder's service owns the prompt `checkout` (v1 plain, v2 warm);
    `caller` is another of its services, which calls the prompt and reports outcomes."""

    def __init__(self, hub: RunningHub) -> None:
        self.builder = as_service(hub, hub.new_service("shop-builder", team="shop"))
        self.caller = as_service(hub, hub.new_service("shop-bot", team="shop"))

    def make_prompt(self) -> None:
        for system in (PLAIN, WARM):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": USER}]
            body = {"messages": messages, "model": "test-model"}
            if system == PLAIN:
                made = self.builder.post("/api/prompts", json={"name": "checkout", **body})
            else:
                made = self.builder.post("/api/prompts/checkout/versions", json=body)
            assert made.status_code == 201, made.text

    def start(self, **changes: Any) -> dict[str, Any]:
        body = {"prompt": "checkout", "version_a": 1, "version_b": 2, **changes}
        started = self.builder.post("/api/experiments", json=body)
        assert started.status_code == 201, started.text
        return dict(started.json())

    def call(self, n: int, unit: str | None = None, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {"variables": {"n": n}, **extra}
        if unit is not None:
            body["unit"] = unit
        return self.caller.post("/v1/prompts/checkout/completions", json=body)

    def close(self) -> None:
        self.builder.close()
        self.caller.close()


@pytest.fixture
def shop(hub: RunningHub, upstream: ScriptedUpstream) -> Iterator[Shop]:
    upstream.reply_for = scripted_reply
    shop = Shop(hub)
    shop.make_prompt()
    yield shop
    shop.close()


def test_exposures_are_the_calls_whose_answers_differ_and_both_analyses_match(
    shop: Shop, upstream: ScriptedUpstream
) -> None:
    experiment = shop.start(split=0.5, budget=10_000)
    eid = experiment["id"]
    for unit in range(UNITS):
        for n in items_of(unit):
            answered = shop.call(n, unit=f"user-{unit}")
            assert answered.status_code == 200, answered.text
    total = UNITS * CALLS_PER_UNIT
    shown = wait_for_calls(shop.caller, eid, total)

    # Every call answered twice: once served, once by the other version.
    assert upstream.hits == 2 * total
    assert shown["shadow_calls"] == total
    calls = shop.caller.get(f"/api/experiments/{eid}/calls?limit=1000").json()
    assert calls["total"] == total
    arms: dict[int, set[str]] = {}
    exposures = []
    for call in calls["calls"]:
        unit = int(call["unit"].removeprefix("user-"))
        arms.setdefault(unit, set()).add(call["arm"])
        assert call["shadow"] == "answered"
        n = int(call["text_a"].removeprefix("Answer "))
        assert call["text_b"] == (f"Warm answer {n}" if n % 10 == 0 else f"Answer {n}")
        if call["differs"]:
            exposures.append(n)
    # Exactly the tenth of the inputs where the versions differ.
    assert sorted(exposures) == [n for n in range(total) if n % 10 == 0]
    assert shown["exposures"] == total // 10
    # A unit keeps its arm, the one the hash gives.
    assert {unit: arms_seen for unit, arms_seen in arms.items()} == {
        unit: {arm_of(eid, f"user-{unit}", 0.5)} for unit in range(UNITS)
    }
    arm = {unit: arm_of(eid, f"user-{unit}", 0.5) for unit in range(UNITS)}

    for unit in range(UNITS):
        value = outcome(unit, arm[unit])
        if value is not None:
            reported = shop.caller.post(
                f"/api/experiments/{eid}/outcomes", json={"unit": f"user-{unit}", "value": value}
            )
            assert reported.status_code == 200, reported.text
    shown = shop.caller.get(f"/api/experiments/{eid}").json()

    def values(which: str, only_exposed: bool) -> list[float]:
        return [
            outcome(unit, which) or 0.0
            for unit in range(UNITS)
            if arm[unit] == which and (exposed(unit) or not only_exposed)
        ]

    diluted = analysis(values("a", False), values("b", False))
    post = analysis(values("a", True), values("b", True))
    assert figures_of(shown["diluted"]) == pytest.approx(diluted, rel=1e-9)
    assert figures_of(shown["post_exposure"]) == pytest.approx(post, rel=1e-9)
    assert post["units_a"] + post["units_b"] == sum(exposed(u) for u in range(UNITS))
    width_diluted = diluted["ci_high"] - diluted["ci_low"]
    width_post = post["ci_high"] - post["ci_low"]
    assert width_post < width_diluted
    # n × (w_diluted / w_post)² − n more units, rounded up.
    n = UNITS
    assert shown["extra_units"] == math.ceil(n * (width_diluted / width_post) ** 2 - n)
    assert shown["outcomes"] == sum(outcome(u, arm[u]) is not None for u in range(UNITS))


def test_a_call_without_a_unit_is_served_production_and_not_recorded(
    shop: Shop, upstream: ScriptedUpstream
) -> None:
    experiment = shop.start(split=0.99)
    plain = shop.call(10)
    assert plain.status_code == 200, plain.text
    assert plain.json()["choices"][0]["message"]["content"] == "Answer 10"
    assert upstream.hits == 1
    assert upstream.requests[-1]["messages"][0]["content"] == PLAIN
    in_it = shop.call(10, unit="someone")
    assert in_it.status_code == 200, in_it.text
    shown = wait_for_calls(shop.caller, experiment["id"], 1)
    assert shown["calls"] == 1 and upstream.hits == 3


def test_the_other_arm_is_asked_no_more_often_than_the_budget_allows(
    shop: Shop, upstream: ScriptedUpstream
) -> None:
    experiment = shop.start(budget=3)
    for unit in range(6):
        assert shop.call(unit * 10, unit=f"u{unit}").status_code == 200
    shown = wait_for_calls(shop.caller, experiment["id"], 6)

    assert upstream.hits == 6 + 3
    assert shown["shadow_calls"] == 3
    calls = shop.caller.get(f"/api/experiments/{experiment['id']}/calls").json()["calls"]
    assert sorted(c["shadow"] for c in calls) == ["answered"] * 3 + ["over_budget"] * 3
    assert all((c["differs"] is None) == (c["shadow"] == "over_budget") for c in calls)
    assert shown["exposures"] == 3


def test_with_a_judge_only_answers_it_does_not_call_the_same_are_exposures(
    shop: Shop, upstream: ScriptedUpstream
) -> None:
    experiment = shop.start(differ="judge", judge_model="test-model")
    assert (experiment["differ"], experiment["judge_model"]) == ("judge", "test-model")
    for n in range(40):
        assert shop.call(n, unit=f"u{n}").status_code == 200
    shown = wait_for_calls(shop.caller, experiment["id"], 40)

    calls = shop.caller.get(f"/api/experiments/{experiment['id']}/calls").json()["calls"]
    exposed_items = sorted(int(c["text_a"].split()[-1]) for c in calls if c["differs"])
    # 10 and 30 differ in words and in meaning; 0 and 20 in words only; the rest not at all.
    assert exposed_items == [10, 30] and shown["exposures"] == 2
    judged = [r for r in upstream.requests if is_judge(r)]
    assert sorted(judged_item(r) for r in judged) == [
        0,
        10,
        20,
        30,
    ]


def test_a_streamed_call_is_compared_with_the_text_it_streamed(
    shop: Shop, upstream: ScriptedUpstream
) -> None:
    experiment = shop.start(split=0.5)
    units = {n: f"s{n}" for n in (10, 11, 20)}
    for n, unit in units.items():
        body = {"variables": {"n": n}, "unit": unit, "stream": True}
        with shop.caller.stream("POST", "/v1/prompts/checkout/completions", json=body) as reply:
            assert reply.status_code == 200
            events = reply.read().decode()
        assert events.rstrip().endswith("data: [DONE]")
    shown = wait_for_calls(shop.caller, experiment["id"], 3)

    calls = shop.caller.get(f"/api/experiments/{experiment['id']}/calls").json()["calls"]
    by_unit = {c["unit"]: c for c in calls}
    for n, unit in units.items():
        call = by_unit[unit]
        assert call["arm"] == arm_of(experiment["id"], unit, 0.5)
        assert (call["text_a"], call["text_b"]) == (
            f"Answer {n}",
            f"Warm answer {n}" if n % 10 == 0 else f"Answer {n}",
        )
        assert call["differs"] == (n % 10 == 0)
    assert shown["exposures"] == 2
    # The served call streamed; the other answered whole.
    assert sorted(bool(r.get("stream")) for r in upstream.requests) == [False] * 3 + [True] * 3


def test_a_stopped_experiment_serves_production_again(
    shop: Shop, upstream: ScriptedUpstream
) -> None:
    experiment = shop.start(split=0.99)
    stopped = shop.builder.post(f"/api/experiments/{experiment['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped"
    answered = shop.call(20, unit="someone")
    assert answered.json()["choices"][0]["message"]["content"] == "Answer 20"
    assert upstream.hits == 1
    again = shop.start()
    assert again["status"] == "running"


def test_who_may_start_stop_and_report(hub: RunningHub, shop: Shop) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team, role in [
            ("sam", "shop", Role.builder),
            ("mo", "shop", Role.member),
            ("bea", "beta", Role.builder),
            ("root", "ops", Role.admin),
        ]:
            create_user(session=session, username=name, password=f"pw-{name}", team=team, role=role)
    body = {"prompt": "checkout", "version_a": 1, "version_b": 2}
    outsider = as_service(hub, hub.new_service("beta-bot", team="beta"))
    with as_person(hub, "mo") as member, as_person(hub, "bea") as beta, outsider:
        assert member.post("/api/experiments", json=body).status_code == 403
        refused = beta.post("/api/experiments", json=body)
        assert refused.status_code == 403
        assert "team 'shop'" in refused.json()["detail"]
        assert outsider.post("/api/experiments", json=body).status_code == 403
        with as_person(hub, "sam") as builder:
            started = builder.post("/api/experiments", json=body)
            assert started.status_code == 201, started.text
        eid = started.json()["id"]
        outcome_body = {"unit": "u1", "value": 1}
        assert (
            outsider.post(f"/api/experiments/{eid}/outcomes", json=outcome_body).status_code == 403
        )
        assert member.post(f"/api/experiments/{eid}/outcomes", json=outcome_body).status_code == 403
        assert beta.post(f"/api/experiments/{eid}/stop").status_code == 403
        # Anyone signed in reads.
        assert member.get(f"/api/experiments/{eid}").status_code == 200
        assert beta.get("/api/experiments?prompt=checkout").json()[0]["id"] == eid
        reported = shop.caller.post(f"/api/experiments/{eid}/outcomes", json=outcome_body)
        assert reported.status_code == 200, reported.text
        assert reported.json()["reported_by"] == "shop-bot"
        with httpx.Client(base_url=hub.url) as anon:
            assert anon.get(f"/api/experiments/{eid}").status_code == 401
        stopped = shop.builder.post(f"/api/experiments/{eid}/stop")
        assert stopped.status_code == 200, stopped.text
    with as_person(hub, "root") as admin:
        events = admin.get("/api/audit").json()
    started_and_stopped = [
        (e["action"], e["actor_name"]) for e in events if e["object_kind"] == "experiment"
    ]
    assert sorted(started_and_stopped) == [
        ("experiment.started", "sam"),
        ("experiment.stopped", "shop-builder"),
    ]


def test_bad_experiments_and_calls_are_refused_with_what_to_fix(shop: Shop) -> None:
    def start(**body: Any) -> httpx.Response:
        return shop.builder.post(
            "/api/experiments", json={"prompt": "checkout", "version_a": 1, "version_b": 2, **body}
        )

    same = start(version_b=1)
    assert same.status_code == 422 and "two different versions" in same.json()["detail"]
    missing = start(version_b=9)
    assert missing.status_code == 404 and "no version 9" in missing.json()["detail"]
    assert start(prompt="nope").status_code == 404
    split = start(split=1.5)
    assert split.status_code == 422 and "split" in split.json()["detail"]
    assert start(budget=-1).status_code == 422
    no_judge = start(differ="judge")
    assert no_judge.status_code == 422 and "needs a 'judge_model'" in no_judge.json()["detail"]
    unknown_judge = start(differ="judge", judge_model="nobody")
    assert unknown_judge.status_code == 422 and "test-model" in unknown_judge.json()["detail"]
    other = {"messages": [{"role": "user", "content": "Item {{n}} for {{who}}"}]}
    added = shop.builder.post(
        "/api/prompts/checkout/versions", json={**other, "model": "test-model"}
    )
    assert added.status_code == 201, added.text
    variables = start(version_b=3)
    assert variables.status_code == 422 and "same variables" in variables.json()["detail"]
    assert start().status_code == 201
    twice = start()
    assert twice.status_code == 409 and "already runs" in twice.json()["detail"]

    long_unit = shop.call(1, unit="u" * 201)
    assert long_unit.status_code == 400
    assert long_unit.json()["error"]["param"] == "unit"
    not_text = shop.call(1, unit=7)
    assert (
        not_text.status_code == 400 and "'unit' must be text" in not_text.json()["error"]["message"]
    )
    pinned = shop.call(1, unit="u1", version=2)
    assert pinned.status_code == 400 and "not both" in pinned.json()["error"]["message"]
    experiments = shop.caller.get("/api/experiments?prompt=checkout").json()
    bad_value = shop.caller.post(
        f"/api/experiments/{experiments[0]['id']}/outcomes", json={"unit": "u1", "value": "yes"}
    )
    assert bad_value.status_code == 422 and "value" in bad_value.json()["detail"]
    assert shop.caller.get("/api/experiments/9999").status_code == 404


def test_a_builder_starts_reads_and_stops_an_experiment_on_the_pages(
    hub: RunningHub, shop: Shop
) -> None:
    people = [("sam", "shop", Role.builder), ("bea", "beta", Role.builder)]
    with page_clients(hub, people) as client_for:
        sam, bea = client_for("sam"), client_for("bea")
        prompt_page = sam.get("/prompts/checkout")
        assert "/experiments?prompt=checkout" in prompt_page.text
        assert "/experiments/new?prompt=checkout" in prompt_page.text
        form = {"prompt": "checkout", "version_a": "1", "version_b": "1", "split": "0.5"}
        refused = sam.post("/experiments/new", data={**form, "budget": "10"})
        assert refused.status_code == 422 and "two different versions" in refused.text
        judged = {"differ": "judge", "judge_model": "test-model"}
        started = sam.post(
            "/experiments/new", data={**form, **judged, "version_b": "2", "budget": "10"}
        )
        assert started.status_code == 303, started.text
        path = started.headers["location"]
        assert shop.call(10, unit="user-1").status_code == 200
        wait_for_calls(shop.caller, int(path.rsplit("/", 1)[1]), 1)

        shown = sam.get(path)
        assert shown.status_code == 200
        for words in (
            "Diluted",
            "Post-exposure",
            "1 calls, 1 exposures",
            "Stop the experiment",
            "the judge test-model",
        ):
            assert words in shown.text, words
        assert "Stop the experiment" not in bea.get(path).text
        assert bea.post(f"{path}/stop").status_code == 403
        listed = bea.get("/experiments?prompt=checkout")
        assert f'href="{path}"' in listed.text
        assert sam.post(f"{path}/stop").status_code == 303
        assert "stopped by sam" in sam.get(path).text
        assert sam.get("/experiments/999").status_code == 404
