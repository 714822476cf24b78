"""Share links through the hub's API and pages, over real HTTP on SQLite and PostgreSQL: who
may make, read, list and revoke them, and what a revoked, expired or oversized one says."""

import random
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from hub.core.db import get_engine, migrate
from hub.core.roles import Role
from hub.models.actor import Actor
from hub.models.service import utcnow
from hub.models.share import HIDDEN, MAX_SNAPSHOT_BYTES, Share
from hub.models.trace import TraceRun, TraceStep
from hub.services.share_search import search_shared
from hub.services.users import create_user, get_user
from hub.services.web_sessions import start_web_session
from tests.conftest import RunningHub
from tests.support.owners import as_person, as_service, chat_conversation

Client = Callable[[str], httpx.Client]
PEOPLE = {"ana": "growth", "bob": "growth", "cy": "sales", "root": "platform"}


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def person(hub: RunningHub) -> Iterator[Client]:
    """People of two teams (root is an admin), each acting through the chat app."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team in PEOPLE.items():
            role = Role.admin if name == "root" else Role.member
            create_user(session=session, username=name, password="pw", team=team, role=role)
    clients: list[httpx.Client] = []

    def client_for(name: str) -> httpx.Client:
        clients.append(as_person(hub, name))
        return clients[-1]

    yield client_for
    for client in clients:
        client.close()


def _conversation_of(hub: RunningHub, username: str, thread_id: str) -> None:
    chat_conversation(hub.settings.sqlalchemy_url, username, thread_id)


def _body(thread_id: str, **extra: Any) -> dict[str, Any]:
    snapshot = {
        "answered_by": "test-model",
        "profile": "test-model",
        "steps": [
            {"kind": "user", "author": "ana", "text": "What should we charge?"},
            {"kind": "tool", "author": "pricing · quote", "input": '{"plan": "pro"}', "text": "42"},
            {"kind": "assistant", "author": "test-model", "text": "Charge 42."},
        ],
    }
    return {"thread_id": thread_id, "title": "Pricing", "snapshot": snapshot, **extra}


def _share(client: httpx.Client, thread_id: str, **extra: Any) -> dict[str, Any]:
    made = client.post("/api/shares", json=_body(thread_id, **extra))
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def test_the_owner_shares_and_colleagues_read_the_snapshot(hub: RunningHub, person: Client) -> None:
    _conversation_of(hub, "ana", "t-1")
    share = _share(person("ana"), "t-1")
    assert share["url"] == f"{hub.url}/s/{share['id']}"
    assert (share["status"], share["audience"], share["team"]) == ("active", "company", "growth")
    days = (share["expires_at"][:10], (utcnow() + timedelta(days=30)).date().isoformat())
    assert days[0] == days[1]

    for reader in ("ana", "bob", "cy", "root"):
        seen = person(reader).get(f"/api/shares/{share['id']}")
        assert seen.status_code == 200, (reader, seen.text)
        steps = seen.json()["snapshot"]["steps"]
        assert [step["text"] for step in steps] == ["What should we charge?", "42", "Charge 42."]
    assert [item["id"] for item in person("ana").get("/api/shares").json()] == [share["id"]]
    assert person("bob").get("/api/shares").json() == []


def test_a_team_link_is_for_the_team_and_a_service_reads_no_link(
    hub: RunningHub, person: Client
) -> None:
    _conversation_of(hub, "ana", "t-1")
    share = _share(person("ana"), "t-1", audience="team", expires_in_days=7)
    assert person("bob").get(f"/api/shares/{share['id']}").status_code == 200
    assert person("cy").get(f"/api/shares/{share['id']}").status_code == 404
    with as_service(hub, hub.new_service("growth-bot", team="growth")) as service:
        assert service.get(f"/api/shares/{share['id']}").status_code == 404
        refused = service.post("/api/shares", json=_body("t-1"))
        assert refused.status_code == 403 and "Only people" in refused.json()["detail"]
    with httpx.Client(base_url=hub.url) as anonymous:
        assert anonymous.get(f"/api/shares/{share['id']}").status_code == 401
        page = anonymous.get(f"/s/{share['id']}", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == f"/login?next=/s/{share['id']}"


def test_only_the_owner_shares_a_conversation(hub: RunningHub, person: Client) -> None:
    _conversation_of(hub, "ana", "t-1")
    for client, thread in ((person("bob"), "t-1"), (person("ana"), "no-such-thread")):
        refused = client.post("/api/shares", json=_body(thread))
        assert refused.status_code == 404, refused.text
        assert "no conversation" in refused.json()["detail"]
    empty = _body("t-1")
    empty["snapshot"]["steps"] = []
    assert person("ana").post("/api/shares", json=empty).status_code == 400
    bad = person("ana").post("/api/shares", json=_body("t-1", audience="world"))
    assert bad.status_code == 422
    too_long = person("ana").post("/api/shares", json=_body("t-1", expires_in_days=400))
    assert too_long.status_code == 422


def test_an_oversized_snapshot_is_refused_with_the_limit(hub: RunningHub, person: Client) -> None:
    _conversation_of(hub, "ana", "t-1")
    body = _body("t-1")
    chunk = {"kind": "assistant", "author": "m", "text": "x" * 150_000}
    body["snapshot"]["steps"] = [chunk] * (MAX_SNAPSHOT_BYTES // 150_000 + 2)
    refused = person("ana").post("/api/shares", json=body)
    assert refused.status_code == 413
    assert f"{MAX_SNAPSHOT_BYTES:,}" in refused.json()["detail"]


def test_a_revoked_or_expired_link_says_so_and_only_the_owner_or_an_admin_revokes(
    hub: RunningHub, person: Client
) -> None:
    _conversation_of(hub, "ana", "t-1")
    first, second = _share(person("ana"), "t-1"), _share(person("ana"), "t-1")
    assert person("bob").delete(f"/api/shares/{first['id']}").status_code == 404
    assert person("ana").delete(f"/api/shares/{first['id']}").status_code == 204
    gone = person("bob").get(f"/api/shares/{first['id']}")
    assert gone.status_code == 410 and "ana revoked this link" in gone.json()["detail"]

    past = utcnow() - timedelta(days=1)
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        row = session.get(Share, second["id"])
        assert row is not None
        row.expires_at = past
        session.add(row)
        session.commit()
    expired = person("bob").get(f"/api/shares/{second['id']}")
    assert expired.status_code == 410
    assert f"expired on {past:%Y-%m-%d %H:%M}" in expired.json()["detail"]
    statuses = {item["id"]: item["status"] for item in person("ana").get("/api/shares").json()}
    assert statuses == {first["id"]: "revoked", second["id"]: "expired"}
    assert person("root").delete(f"/api/shares/{second['id']}").status_code == 204
    assert person("ana").delete(f"/api/shares/{first['id']}").status_code == 204  # again

    # Each link made and each revocation is in the audit log once, with who did it.
    events = person("root").get("/api/audit", params={"action": "share.*"}).json()
    seen = sorted((e["action"], e["object_id"], e["actor_name"]) for e in events)
    assert seen == sorted(
        [
            ("share.created", first["id"], "ana"),
            ("share.created", second["id"], "ana"),
            ("share.revoked", first["id"], "ana"),
            ("share.revoked", second["id"], "root"),
        ]
    )


def test_the_shared_page_is_not_indexed_and_sends_no_referrer(
    hub: RunningHub, person: Client
) -> None:
    _conversation_of(hub, "ana", "t-1")
    share = _share(person("ana"), "t-1")
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        bob = get_user(session=session, username="bob")
        assert bob is not None
        cookie = start_web_session(session=session, user=bob, days=1, method="password")
    with httpx.Client(base_url=hub.url, cookies={"switchboard_session": cookie}) as browser:
        shown = browser.get(f"/s/{share['id']}")
    assert shown.status_code == 200
    assert shown.headers["x-robots-tag"] == "noindex, nofollow"
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert '<meta name="robots" content="noindex, nofollow">' in shown.text
    assert "Charge 42." in shown.text and "pricing · quote" in shown.text


def _agent_run(hub: RunningHub, username: str, conversation: str, run_id: str) -> None:
    """A finished run of an agent in a conversation, with one tool step."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        person = get_user(session=session, username=username)
        assert person is not None
        start = utcnow()
        session.add(
            TraceRun(
                id=run_id,
                agent_slug="analyst",
                agent_version=3,
                agent_owner="root",
                agent_owner_kind="user",
                agent_owner_id="someone-else",
                conversation_id=conversation,
                user=username,
                user_kind="user",
                user_id=person.key,
                started_at=start,
                ended_at=start + timedelta(seconds=1),
                status="ok",
                steps=1,
            )
        )
        session.add(
            TraceStep(
                id=f"{run_id}-1",
                run_id=run_id,
                seq=1,
                kind="tool",
                name="bigquery/run_query",
                started_at=start,
                ended_at=start + timedelta(milliseconds=300),
                latency_ms=300.0,
                input={"sql": "SELECT salary FROM staff"},
                output={"rows": 2},
            )
        )
        session.commit()


def test_the_owner_chooses_to_include_the_trace_whole_or_redacted(
    hub: RunningHub, person: Client
) -> None:
    _conversation_of(hub, "ana", "t-1")
    _agent_run(hub, "ana", "t-1", "run-a")
    _agent_run(hub, "ana", "t-other", "run-b")  # another conversation: never in this share
    ana, bob = person("ana"), person("bob")
    ids = {
        detail: _share(ana, "t-1", trace=detail)["id"] for detail in ("none", "redacted", "full")
    }
    shown = {detail: bob.get(f"/api/shares/{share_id}").json() for detail, share_id in ids.items()}
    assert shown["none"]["traces"] == []
    full = shown["full"]["traces"]
    assert [run["id"] for run in full] == ["run-a"]
    assert full[0]["timeline"][0]["input"] == {"sql": "SELECT salary FROM staff"}
    redacted = shown["redacted"]["traces"][0]["timeline"][0]
    assert (redacted["name"], redacted["input"], redacted["output"]) == (
        "bigquery/run_query",
        HIDDEN,
        HIDDEN,
    )
    assert "SELECT salary" not in str(shown["redacted"])
    assert bob.get("/api/traces/run-a").status_code == 404  # the trace itself stays Ana's


_VOCABULARY = ("margin", "churn", "pricing", "forecast", "region", "quota", "renewal", "seats")


def _snapshot_of(rng: random.Random) -> dict[str, Any]:
    steps = []
    for number in range(rng.randint(1, 4)):
        kind = ("user", "tool", "assistant")[number % 3]
        said = " ".join(rng.choice(_VOCABULARY) for _ in range(3))
        tool_input = f'{{"sql": "SELECT {rng.choice(_VOCABULARY)}"}}' if kind == "tool" else ""
        steps.append({"kind": kind, "author": "x", "text": said, "input": tool_input})
    return {"answered_by": "test-model", "profile": "test-model", "steps": steps}


def _found(words: list[str], texts: list[str]) -> bool:
    """Every word is a word of the texts (the last may begin one), as a reader would check."""
    seen = set(re.findall(r"[^\W_]+", " ".join(texts).lower()))
    *whole, last = words
    return all(word in seen for word in whole) and any(word.startswith(last) for word in seen)


def test_people_search_the_conversations_shared_with_them(hub: RunningHub, person: Client) -> None:
    """Company links, and team links of one's teams, that are active and someone else's."""
    rng = random.Random(22)
    made: list[tuple[str, dict[str, Any]]] = []
    for number in range(24):
        owner = ("ana", "bob", "cy")[number % 3]
        _conversation_of(hub, owner, f"s-{number}")
        body = {
            "thread_id": f"s-{number}",
            "title": f"{rng.choice(_VOCABULARY)} review {number}",
            "snapshot": _snapshot_of(rng),
            "audience": rng.choice(["company", "team"]),
        }
        answer = person(owner).post("/api/shares", json=body)
        assert answer.status_code == 201, answer.text
        made.append((owner, answer.json() | {"snapshot": body["snapshot"], "title": body["title"]}))
    revoked, expired = made[0][1]["id"], made[1][1]["id"]
    assert person("ana").delete(f"/api/shares/{revoked}").status_code == 204
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        row = session.get(Share, expired)
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()

    for reader, words in [("bob", ["churn"]), ("cy", ["margin", "quo"]), ("root", ["seats"])]:
        expected = set()
        for owner, share in made:
            if owner == reader or share["id"] in (revoked, expired):
                continue
            if share["audience"] == "team" and PEOPLE[owner] != PEOPLE[reader]:
                continue
            if _found(words, [share["title"]]):
                expected.add((share["id"], None))
            for number, step in enumerate(share["snapshot"]["steps"], start=1):
                if _found(words, [step["input"], step["text"]]):
                    expected.add((share["id"], number))
        answer = person(reader).get(
            "/api/shares/search", params={"q": " ".join(words), "limit": 500}
        )
        assert answer.status_code == 200, answer.text
        found = {(match["share_id"], match["step_number"]) for match in answer.json()}
        assert expected and found == expected, reader
        for match in answer.json():
            anchor = "" if match["step_number"] is None else f"#step-{match['step_number']}"
            assert match["url"] == f"{hub.url}/s/{match['share_id']}{anchor}"

    # One page at a time, with the link to the next.
    first = person("bob").get("/api/shares/search", params={"q": "churn", "limit": 2})
    assert len(first.json()) == 2 and 'rel="next"' in first.headers["link"]

    assert person("bob").get("/api/shares/search", params={"q": "  "}).json() == []
    too_long = person("bob").get("/api/shares/search", params={"q": "a" * 501})
    assert too_long.status_code == 422 and "500 characters" in too_long.json()["detail"]
    too_many = person("bob").get("/api/shares/search", params={"q": "a " * 33})
    assert too_many.status_code == 422 and "32 words" in too_many.json()["detail"]
    service = as_service(hub, hub.new_service("reports"))
    assert service.get("/api/shares/search", params={"q": "churn"}).status_code == 403
    service.close()


def test_links_made_before_the_index_are_found(database_url: str) -> None:
    """Migration 0022 indexes the links that exist when it runs."""
    migrate(database_url, revision="0021")
    with Session(get_engine(database_url)) as session:
        for name in ("ana", "bob"):
            create_user(session=session, username=name, password="pw", team="growth")
    chat_conversation(database_url, "ana", "t-old")
    with Session(get_engine(database_url)) as session:
        ana = get_user(session=session, username="ana")
        assert ana is not None
        now = utcnow()
        session.add(
            Share(
                id="old-link",
                thread_id="t-old",
                title="Quarterly numbers",
                owner_name="ana",
                owner_kind="user",
                owner_id=ana.key,
                audience="company",
                team="growth",
                created_at=now,
                expires_at=now + timedelta(days=1),
                snapshot=_body("t-old")["snapshot"],
            )
        )
        session.commit()
    migrate(database_url)
    reader = Actor(kind="user", id="bob-key", name="bob", team="growth")
    with Session(get_engine(database_url)) as session:
        hits = search_shared(session=session, actor=reader, words=["charge"], limit=9, offset=0)
        titled = search_shared(session=session, actor=reader, words=["quarter"], limit=9, offset=0)
    assert sorted(hit.path for hit in hits) == ["/s/old-link#step-1", "/s/old-link#step-3"]
    assert [hit.path for hit in titled] == ["/s/old-link"]
