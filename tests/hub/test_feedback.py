"""Feedback on answers through the hub's API, its agent page and its export, over real HTTP on
SQLite and PostgreSQL: a person rates answers in their own conversations (again replaces it),
takes it back, an agent's owner and admins read it per version, admins export it as CSV."""

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from hub.api.contract import MAX_COMMENT
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.models.service import utcnow
from hub.services.feedback import COMMENTS_PER_VERSION
from hub.services.users import create_user, get_user
from hub.services.web_sessions import start_web_session
from tests.conftest import RunningHub
from tests.support.owners import as_person, as_service, publish_agent

Client = Callable[[str], httpx.Client]
# ben builds the agent `helper`; cy is a builder of another team; root is an admin.
PEOPLE = {
    "ana": ("growth", Role.member),
    "bob": ("growth", Role.member),
    "ben": ("growth", Role.builder),
    "cy": ("sales", Role.builder),
    "root": ("platform", Role.admin),
}

# The chat's tables (Chainlit's): JSON metadata, JSONB on PostgreSQL.
_THREADS = sa.table(
    "threads", *(sa.column(name, sa.Text) for name in ("id", "name", "userId", "userIdentifier"))
)
_STEPS = sa.table(
    "steps",
    *(sa.column(name, sa.Text) for name in ("id", "name", "type", "threadId", "createdAt")),
    sa.column("streaming", sa.Boolean),
    sa.column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def person(hub: RunningHub) -> Iterator[Client]:
    """Each person, acting through the chat app."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, (team, role) in PEOPLE.items():
            create_user(session=session, username=name, password="pw", team=team, role=role)
    clients: dict[str, httpx.Client] = {}

    def client_for(name: str) -> httpx.Client:
        if name not in clients:
            clients[name] = as_person(hub, name)
        return clients[name]

    yield client_for
    for client in clients.values():
        client.close()


class Answer(NamedTuple):
    conversation: str
    message: str
    metadata: dict[str, Any]


def _answer(hub: RunningHub, username: str, **metadata: Any) -> Answer:
    """An answer in a new conversation of `username`, stored as the chat stores it."""
    conversation, message = f"t-{uuid.uuid4()}", f"m-{uuid.uuid4()}"
    engine = get_engine(hub.settings.sqlalchemy_url)
    with engine.begin() as connection:
        key = connection.execute(
            sa.text("SELECT key FROM hub_user WHERE username = :name"), {"name": username}
        ).scalar_one()
        connection.execute(
            sa.insert(_THREADS).values(
                id=conversation, name="Weather", userId=None, userIdentifier=key
            )
        )
        connection.execute(
            sa.insert(_STEPS).values(
                id=message,
                name="answer",
                type="assistant_message",
                threadId=conversation,
                createdAt=utcnow().isoformat(),
                streaming=False,
                metadata={"switchboard_reply": True, **metadata},
            )
        )
    return Answer(conversation, message, metadata)


def _agent_answer(hub: RunningHub, username: str, version: int | None) -> Answer:
    return _answer(
        hub, username, agent="helper", version=version, trace=str(uuid.uuid4()), model="test-model"
    )


def _body(answer: Answer, value: int, comment: str = "", **changes: Any) -> dict[str, Any]:
    """What the chat sends for an answer: what it stored with it, and the person's rating."""
    meta = answer.metadata
    body = {
        "conversation_id": answer.conversation,
        "message_id": answer.message,
        "value": value,
        "comment": comment,
        "model": meta.get("answered_by") or meta.get("model") or "",
        "agent_slug": meta.get("agent"),
        "agent_version": meta.get("version"),
        "trace_id": meta.get("trace"),
    }
    return {**body, **changes}


def _rate(client: httpx.Client, answer: Answer, value: int, comment: str = "") -> dict[str, Any]:
    given = client.put("/api/feedback", json=_body(answer, value, comment))
    assert given.status_code == 200, given.text
    body: dict[str, Any] = given.json()
    return body


def _helper(person: Client, versions: int = 1) -> None:
    publish_agent(person("ben"), "helper")
    for _ in range(versions - 1):
        assert person("ben").post("/api/agents/helper/publish").status_code == 201


def _expected(sent: list[tuple[str, Answer, int, str]]) -> list[dict[str, Any]]:
    """Per version, from what was sent: the last rating of each person on each answer counts."""
    last: dict[tuple[str, str], tuple[int, Answer, int, str]] = {}
    for order, (name, answer, value, comment) in enumerate(sent):
        last[(name, answer.message)] = (order, answer, value, comment)
    versions: dict[int | None, dict[str, Any]] = {}
    for (name, _), (_, answer, value, comment) in sorted(
        last.items(), key=lambda item: -item[1][0]
    ):
        version = versions.setdefault(
            answer.metadata["version"], {"ups": 0, "downs": 0, "comments": []}
        )
        version["ups" if value > 0 else "downs"] += 1
        if comment and len(version["comments"]) < COMMENTS_PER_VERSION:
            version["comments"].append((name, value, comment, answer.metadata["trace"]))
    ordered = sorted(versions, key=lambda v: (v is None, -(v or 0)))
    return [{"version": v, **versions[v]} for v in ordered]


def _seen(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "version": item["version"],
            "ups": item["ups"],
            "downs": item["downs"],
            "comments": [
                (c["person_name"], c["value"], c["comment"], c["trace_id"])
                for c in item["comments"]
            ],
        }
        for item in report["versions"]
    ]


def test_a_person_rates_an_answer_and_rating_it_again_replaces_it(
    hub: RunningHub, person: Client
) -> None:
    _helper(person)
    answer = _agent_answer(hub, "ana", version=1)
    first = _rate(person("ana"), answer, 1, "Spot on.")
    assert (first["value"], first["comment"], first["person_name"]) == (1, "Spot on.", "ana")
    assert (first["agent_slug"], first["agent_version"]) == ("helper", 1)
    assert (first["trace_id"], first["model"]) == (answer.metadata["trace"], "test-model")

    again = _rate(person("ana"), answer, -1, "  On second thought, no.  ")
    assert again["id"] == first["id"] and again["created_at"] == first["created_at"]
    assert (again["value"], again["comment"]) == (-1, "On second thought, no.")
    report = person("ben").get("/api/agents/helper/feedback").json()
    assert _seen(report) == [
        {
            "version": 1,
            "ups": 0,
            "downs": 1,
            "comments": [("ana", -1, "On second thought, no.", answer.metadata["trace"])],
        }
    ]


def test_an_agents_answer_without_its_model_gets_the_model_of_its_version(
    hub: RunningHub, person: Client
) -> None:
    _helper(person)
    answer = _answer(hub, "ana", agent="helper", version=1, trace=str(uuid.uuid4()))
    assert _rate(person("ana"), answer, 1)["model"] == "test-model"
    model_answer = _answer(hub, "ana", model="test-model", answered_by="backup-model")
    given = _rate(person("ana"), model_answer, 1)
    assert (given["model"], given["agent_slug"], given["agent_version"]) == (
        "backup-model",
        None,
        None,
    )


def test_ups_downs_and_latest_comments_per_version_add_up_from_what_was_sent(
    hub: RunningHub, person: Client
) -> None:
    _helper(person, versions=2)
    sent: list[tuple[str, Answer, int, str]] = []

    def rate(name: str, answer: Answer, value: int, comment: str = "") -> None:
        _rate(person(name), answer, value, comment)
        sent.append((name, answer, value, comment))

    v1 = [_agent_answer(hub, name, version=1) for name in ("ana", "bob", "cy")]
    rate("ana", v1[0], 1, "Clear and short.")
    rate("bob", v1[1], -1)
    rate("cy", v1[2], -1, "Wrong city.")
    rate("ana", v1[0], -1, "It was yesterday's weather.")  # replaces her first
    v2 = [_agent_answer(hub, name, version=2) for name in ("ana", "bob") * 4]
    for number, answer in enumerate(v2):
        name = "ana" if number % 2 == 0 else "bob"
        rate(name, answer, 1 if number % 3 else -1, f"Answer {number} of v2.")
    draft = _agent_answer(hub, "ben", version=None)
    rate("ben", draft, 1, "The draft knows Lisbon.")
    # Other answers do not count for `helper`.
    _rate(person("ana"), _answer(hub, "ana", model="test-model"), -1, "Not the agent.")

    report = person("ben").get("/api/agents/helper/feedback")
    assert report.status_code == 200, report.text
    assert report.json()["slug"] == "helper"
    assert _seen(report.json()) == _expected(sent)
    assert [item["version"] for item in report.json()["versions"]] == [2, 1, None]
    assert len(report.json()["versions"][0]["comments"]) == COMMENTS_PER_VERSION
    assert person("root").get("/api/agents/helper/feedback").json() == report.json()


def test_an_agent_made_again_under_a_deleted_ones_slug_starts_with_no_feedback(
    hub: RunningHub, person: Client
) -> None:
    _helper(person)
    old_answer = _agent_answer(hub, "ana", version=1)
    _rate(person("ana"), old_answer, -1, "The old helper was wrong.")
    assert person("ben").delete("/api/agents/helper").status_code == 204
    _helper(person)

    fresh = person("ben").get("/api/agents/helper/feedback").json()
    assert fresh["versions"] == []
    # The old answer rated again still does not count for the new helper; a new answer does.
    _rate(person("ana"), old_answer, 1, "Second thoughts on the old one.")
    new_answer = _agent_answer(hub, "bob", version=1)
    _rate(person("bob"), new_answer, 1, "The new helper is right.")
    report = person("ben").get("/api/agents/helper/feedback").json()
    assert _seen(report) == [
        {
            "version": 1,
            "ups": 1,
            "downs": 0,
            "comments": [("bob", 1, "The new helper is right.", new_answer.metadata["trace"])],
        }
    ]


def test_only_the_agents_owner_and_admins_read_its_feedback(
    hub: RunningHub, person: Client
) -> None:
    _helper(person)
    _rate(person("ana"), _agent_answer(hub, "ana", version=1), -1, "Too long.")
    for name in ("ben", "root"):
        assert person(name).get("/api/agents/helper/feedback").status_code == 200
    for name in ("ana", "cy"):
        refused = person(name).get("/api/agents/helper/feedback")
        assert refused.status_code == 403, refused.text
        assert "Only 'ben' (its owner) or an admin" in refused.json()["detail"]
    with as_service(hub, hub.new_service("growth-bot", team="growth")) as service:
        assert service.get("/api/agents/helper/feedback").status_code == 403
    with as_service(hub, hub.new_service("ops", team="platform", admin=True)) as admin:
        assert admin.get("/api/agents/helper/feedback").status_code == 200

    draft = {"slug": "secret", "name": "Secret", "model": "test-model", "visibility": "private"}
    assert person("ben").post("/api/agents", json=draft).status_code == 201
    assert person("ben").get("/api/agents/secret/feedback").json()["versions"] == []
    assert person("cy").get("/api/agents/secret/feedback").status_code == 404
    assert person("ben").get("/api/agents/nothing/feedback").status_code == 404


def test_only_people_rate_and_only_answers_in_their_own_conversations(
    hub: RunningHub, person: Client
) -> None:
    _helper(person)
    answer = _agent_answer(hub, "ana", version=1)
    with as_service(hub, hub.new_service("growth-bot", team="growth")) as service:
        refused = service.put("/api/feedback", json=_body(answer, 1))
        assert refused.status_code == 403 and "Only people" in refused.json()["detail"]
    with httpx.Client(base_url=hub.url) as anonymous:
        assert anonymous.put("/api/feedback", json=_body(answer, 1)).status_code == 401

    not_hers = person("bob").put("/api/feedback", json=_body(answer, 1))
    assert not_hers.status_code == 404 and "no conversation" in not_hers.json()["detail"]
    missing = person("ana").put("/api/feedback", json=_body(answer, 1, message_id="m-none"))
    assert missing.status_code == 404 and "no message 'm-none'" in missing.json()["detail"]

    # A message the chat did not mark as an answer (the person's own, an error notice).
    question = _answer(hub, "ana")
    engine = get_engine(hub.settings.sqlalchemy_url)
    with engine.begin() as connection:
        connection.execute(
            sa.update(_STEPS)
            .where(_STEPS.c.id == question.message)
            .values(type="user_message", metadata={})
        )
    asked = person("ana").put("/api/feedback", json=_body(question, 1, model="test-model"))
    assert asked.status_code == 400 and "not an answer" in asked.json()["detail"]

    # What gave the answer must be what the chat stored with it.
    for changes in (
        {"agent_version": 2},
        {"trace_id": str(uuid.uuid4())},
        {"agent_slug": None, "agent_version": None, "trace_id": None},
    ):
        lying = person("ana").put("/api/feedback", json=_body(answer, -1, **changes))
        assert lying.status_code == 409, (changes, lying.text)
        assert "as given by agent 'helper' v1, trace" in lying.json()["detail"]
    model_answer = _answer(hub, "ana", model="test-model")
    other = person("ana").put("/api/feedback", json=_body(model_answer, 1, model="gpt-x"))
    assert other.status_code == 409 and "came from test-model" in other.json()["detail"]
    assert person("ben").get("/api/agents/helper/feedback").json()["versions"] == []


def test_a_person_takes_back_only_their_own_feedback(hub: RunningHub, person: Client) -> None:
    _helper(person)
    answer = _agent_answer(hub, "ana", version=1)
    _rate(person("ana"), answer, -1, "Wrong.")
    for name in ("bob", "root"):
        refused = person(name).delete(f"/api/feedback/{answer.message}")
        assert refused.status_code == 404 and "no feedback" in refused.json()["detail"]
    with as_service(hub, hub.new_service("ops", team="platform", admin=True)) as admin:
        assert admin.delete(f"/api/feedback/{answer.message}").status_code == 403
    counts = person("ben").get("/api/agents/helper/feedback").json()["versions"]
    assert [(item["ups"], item["downs"]) for item in counts] == [(0, 1)]

    assert person("ana").delete(f"/api/feedback/{answer.message}").status_code == 204
    assert person("ben").get("/api/agents/helper/feedback").json()["versions"] == []
    assert person("ana").delete(f"/api/feedback/{answer.message}").status_code == 404


BAD = [
    ({"value": 0}, "value: Input should be 1 or -1"),
    ({"value": 2}, "value: Input should be 1 or -1"),
    ({"comment": "x" * (MAX_COMMENT + 1)}, f"at most {MAX_COMMENT} characters"),
    ({"model": "", "agent_slug": None, "agent_version": None, "trace_id": None}, "which model"),
    ({"agent_slug": None}, "agent_version belongs to an agent's answer"),
    ({"agent_slug": "Not A Slug"}, "agent_slug: String should match pattern"),
    ({"agent_version": 0}, "agent_version: Input should be greater than or equal to 1"),
    ({"trace_id": "../../secrets"}, "trace_id: String should match pattern"),
    ({"conversation_id": ""}, "conversation_id: String should have at least 1 character"),
    ({"message_id": "m" * 65}, "message_id: String should have at most 64 characters"),
]


def test_bad_feedback_is_refused_with_what_to_fix(hub: RunningHub, person: Client) -> None:
    answer = _agent_answer(hub, "ana", version=1)
    for changes, says in BAD:
        refused = person("ana").put("/api/feedback", json={**_body(answer, 1), **changes})
        assert refused.status_code == 422, (changes, refused.text)
        assert says in refused.json()["detail"], changes
    assert person("ana").put("/api/feedback", content=b"{not json").status_code == 422


def _cookie(hub: RunningHub, username: str) -> str:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        user = get_user(session=session, username=username)
        assert user is not None
        return start_web_session(session=session, user=user, days=1, method="password")


def _browser(hub: RunningHub, username: str) -> httpx.Client:
    return httpx.Client(base_url=hub.url, cookies={"switchboard_session": _cookie(hub, username)})


def test_admins_export_every_feedback_as_csv_that_no_spreadsheet_runs(
    hub: RunningHub, person: Client
) -> None:
    _helper(person)
    comments = ['=HYPERLINK("http://evil")', "+1 great", "-2 is wrong", "@SUM(A1:A9)", "Fine."]
    sent = []
    for number, comment in enumerate(comments):
        # Every other answer is the agent's (to ana), the rest a model's (to bob).
        if number % 2:
            name, answer, value = "ana", _agent_answer(hub, "ana", version=1), -1
        else:
            name, answer, value = "bob", _answer(hub, "bob", model="test-model"), 1
        _rate(person(name), answer, value, comment)
        sent.append((name, answer, value, comment))

    with _browser(hub, "root") as root:
        export = root.get("/feedback.csv")
    assert export.status_code == 200, export.text
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert list(rows[0]) == [
        "when",
        "person",
        "conversation",
        "message",
        "value",
        "comment",
        "model",
        "agent",
        "version",
        "trace",
    ]
    columns = ("person", "conversation", "message", "value", "comment", "model")
    got = [tuple(r[c] for c in (*columns, "agent", "version", "trace")) for r in rows]
    safe = ['\'=HYPERLINK("http://evil")', "'+1 great", "'-2 is wrong", "'@SUM(A1:A9)", "Fine."]
    assert got == [
        (
            name,
            answer.conversation,
            answer.message,
            str(value),
            text,
            "test-model",
            answer.metadata.get("agent", ""),
            str(answer.metadata.get("version") or ""),
            answer.metadata.get("trace", ""),
        )
        for (name, answer, value, _), text in zip(sent, safe, strict=True)
    ]
    assert all(r["when"] for r in rows)

    with as_service(hub, hub.new_service("ops", team="platform", admin=True)) as admin:
        assert admin.get("/feedback.csv").text == export.text
    with as_service(hub, hub.new_service("growth-bot", team="growth")) as service:
        assert service.get("/feedback.csv").status_code == 403
    with _browser(hub, "ben") as ben:
        refused = ben.get("/feedback.csv")
        assert refused.status_code == 403 and "Only admins" in refused.text
    with httpx.Client(base_url=hub.url) as anonymous:
        away = anonymous.get("/feedback.csv", follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"] == "/login?next=/feedback.csv"


def test_the_agents_page_shows_its_feedback_per_version_to_its_owner_and_admins(
    hub: RunningHub, person: Client
) -> None:
    _helper(person)
    with _browser(hub, "ben") as ben:
        empty = ben.get("/agents/helper").text
    assert 'id="feedback"' in empty and "No feedback yet" in empty

    _rate(person("ana"), _agent_answer(hub, "ana", version=1), -1, "Said <b>snow</b> in July.")
    _rate(person("bob"), _agent_answer(hub, "bob", version=1), -1)
    _rate(person("cy"), _agent_answer(hub, "cy", version=1), 1)
    with _browser(hub, "ben") as ben:
        shown = ben.get("/agents/helper").text
    v1 = shown.split('id="feedback-v1"', 1)[1].split("</div>", 1)[0]
    assert "👍 1" in v1 and "👎 2" in v1
    assert "Said &lt;b&gt;snow&lt;/b&gt; in July." in v1 and "ana" in v1
    assert "/feedback.csv" not in shown
    with _browser(hub, "root") as root:
        assert 'href="/feedback.csv"' in root.get("/agents/helper").text
    for name in ("ana", "cy"):
        with _browser(hub, name) as other:
            page = other.get("/agents/helper")
        assert page.status_code == 200 and 'id="feedback"' not in page.text
        assert "snow" not in page.text
