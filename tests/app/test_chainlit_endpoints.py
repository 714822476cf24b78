"""Chainlit's own endpoints for feedback and thread sharing obey Switchboard's rules, over
real HTTP against the chat process: only the person whose conversation holds a message rates
it, and conversations are shared only through the hub's share links."""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlmodel import Session

from hub.core.db import get_engine
from hub.services.users import create_user
from hub.services.web_sessions import start_web_session
from tests.app.conftest import PASSWORD, ChatApp
from tests.conftest import RunningHub


@contextmanager
def _signed_in(hub: RunningHub, chat_app: ChatApp, username: str) -> Iterator[httpx.Client]:
    """A browser of `username` signed in to the chat (its own cookie jar)."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        user = create_user(session=session, username=username, password=PASSWORD)
        token = start_web_session(session=session, user=user, days=1, method="password")
    with httpx.Client(
        base_url=chat_app.url, timeout=15, headers={"origin": chat_app.url}
    ) as client:
        client.cookies.set("switchboard_session", token)
        assert client.post("/auth/header", json={}).status_code == 200
        yield client


@pytest.fixture
def ada(hub: RunningHub, chat_app: ChatApp) -> Iterator[httpx.Client]:
    with _signed_in(hub, chat_app, "ada") as client:
        yield client


@pytest.fixture
def ben(hub: RunningHub, chat_app: ChatApp) -> Iterator[httpx.Client]:
    with _signed_in(hub, chat_app, "ben") as client:
        yield client


def _conversation(
    chat_app: ChatApp, person: httpx.Client, metadata: dict[str, object] | None = None
) -> tuple[str, str]:
    """A stored conversation of `person` with one reply (with `metadata`, as the chat stores
    a model's or an agent's answer); its thread's and reply's ids."""
    me = person.get("/user").json()
    (row,) = chat_app.query("SELECT id FROM users WHERE identifier = ?", me["identifier"])
    thread_id, step_id = str(uuid.uuid4()), str(uuid.uuid4())
    chat_app.execute(
        'INSERT INTO threads (id, "createdAt", name, "userId", "userIdentifier") '
        "VALUES (?, ?, ?, ?, ?)",
        *(thread_id, "2026-12-01T10:00:00Z", "Pay rise", row["id"], me["identifier"]),
    )
    chat_app.execute(
        'INSERT INTO steps (id, name, type, "threadId", streaming, output, metadata) '
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        *(step_id, "test-model", "assistant_message", thread_id, False, "Ask in March."),
        json.dumps(metadata or {}),
    )
    return thread_id, step_id


def _rate(person: httpx.Client, step_id: str, feedback_id: str | None = None) -> httpx.Response:
    feedback = {"forId": step_id, "value": 0, "comment": "wrong", "id": feedback_id}
    return person.put("/feedback", json={"feedback": feedback, "sessionId": "any"})


def _feedbacks(chat_app: ChatApp) -> list[tuple[str, int, str | None]]:
    rows = chat_app.query('SELECT "forId", value, "threadId" FROM feedbacks ORDER BY "forId"')
    return [(row[0], row[1], row[2]) for row in rows]


def test_only_the_owner_of_a_conversation_rates_its_messages(
    chat_app: ChatApp, ada: httpx.Client, ben: httpx.Client
) -> None:
    adas_thread, adas_reply = _conversation(chat_app, ada)

    refused = _rate(ben, adas_reply)
    assert refused.status_code == 404, refused.text
    assert _feedbacks(chat_app) == []

    rated = _rate(ada, adas_reply)
    assert rated.status_code == 200, rated.text
    assert _feedbacks(chat_app) == [(adas_reply, 0, adas_thread)]

    # Ben cannot take Ada's feedback over by its id for a message of his own either.
    _, bens_reply = _conversation(chat_app, ben)
    taken = _rate(ben, bens_reply, feedback_id=rated.json()["feedbackId"])
    assert taken.status_code == 404, taken.text
    assert _feedbacks(chat_app) == [(adas_reply, 0, adas_thread)]
    chat_app.assert_no_storage_errors()


def test_only_the_owner_of_a_conversation_deletes_feedback_on_it(
    chat_app: ChatApp, ada: httpx.Client, ben: httpx.Client
) -> None:
    adas_thread, adas_reply = _conversation(chat_app, ada)
    feedback_id = _rate(ada, adas_reply).json()["feedbackId"]

    refused = ben.request("DELETE", "/feedback", json={"feedbackId": feedback_id})
    assert refused.status_code == 404, refused.text
    assert _feedbacks(chat_app) == [(adas_reply, 0, adas_thread)]

    deleted = ada.request("DELETE", "/feedback", json={"feedbackId": feedback_id})
    assert deleted.status_code == 200, deleted.text
    assert _feedbacks(chat_app) == []


def _at_the_hub(chat_app: ChatApp) -> list[tuple[str, str, int, str, str]]:
    rows = chat_app.query(
        "SELECT person_name, message_id, value, comment, model FROM feedback ORDER BY id"
    )
    return [(row[0], row[1], row[2], row[3], row[4]) for row in rows]


def test_feedback_on_an_answer_goes_to_the_hub_and_is_taken_back_there(
    chat_app: ChatApp, ada: httpx.Client
) -> None:
    _, reply = _conversation(chat_app, ada, {"switchboard_reply": True, "model": "test-model"})
    rated = _rate(ada, reply)
    assert rated.status_code == 200, rated.text
    assert _at_the_hub(chat_app) == [("ada", reply, -1, "wrong", "test-model")]

    # Thumbs up instead, on the same feedback: replaced at the hub too.
    up = {"forId": reply, "value": 1, "comment": "right", "id": rated.json()["feedbackId"]}
    assert ada.put("/feedback", json={"feedback": up, "sessionId": "any"}).status_code == 200
    assert _at_the_hub(chat_app) == [("ada", reply, 1, "right", "test-model")]

    feedback_id = rated.json()["feedbackId"]
    assert ada.request("DELETE", "/feedback", json={"feedbackId": feedback_id}).status_code == 200
    assert _at_the_hub(chat_app) == []
    chat_app.assert_no_storage_errors()


def test_the_hub_refusing_feedback_leaves_the_persons_thumbs_in_the_chat(
    chat_app: ChatApp, ada: httpx.Client
) -> None:
    # An answer whose stored agent the hub cannot take (not a slug).
    answer = {"switchboard_reply": True, "agent": "Not A Slug", "version": 1, "model": "m"}
    thread_id, reply = _conversation(chat_app, ada, answer)
    rated = _rate(ada, reply)
    assert rated.status_code == 200, rated.text
    assert _feedbacks(chat_app) == [(reply, 0, thread_id)]
    assert _at_the_hub(chat_app) == []
    assert "the hub did not take the feedback" in chat_app.log()

    too_long = {"forId": reply, "value": 0, "comment": "x" * 2001}
    refused = ada.put("/feedback", json={"feedback": too_long, "sessionId": "any"})
    assert refused.status_code == 422 and "at most 2,000 characters" in refused.json()["detail"]


def test_feedback_the_chat_cannot_store_is_a_502_and_never_reaches_the_hub(
    chat_app: ChatApp, ada: httpx.Client
) -> None:
    _, reply = _conversation(chat_app, ada, {"switchboard_reply": True, "model": "test-model"})
    chat_app.execute("ALTER TABLE feedbacks RENAME TO feedbacks_away")
    try:
        failed = _rate(ada, reply)
    finally:
        chat_app.execute("ALTER TABLE feedbacks_away RENAME TO feedbacks")
    assert failed.status_code == 502, failed.text
    assert "could not store your feedback" in failed.json()["detail"]
    assert _at_the_hub(chat_app) == []


def test_chainlits_thread_sharing_is_closed(
    chat_app: ChatApp, ada: httpx.Client, ben: httpx.Client
) -> None:
    thread_id, _ = _conversation(chat_app, ada)

    shared = ada.put("/project/thread/share", json={"threadId": thread_id, "isShared": True})
    assert shared.status_code == 403, shared.text
    assert "share links" in shared.json()["detail"]
    (row,) = chat_app.query("SELECT metadata FROM threads WHERE id = ?", thread_id)
    assert not json.loads(row["metadata"] or "{}").get("is_shared")

    # Even a conversation marked shared (as Chainlit would) is nobody else's to read.
    chat_app.execute(
        "UPDATE threads SET metadata = ? WHERE id = ?", json.dumps({"is_shared": True}), thread_id
    )
    with httpx.Client(base_url=chat_app.url, timeout=15) as anyone:
        assert anyone.get(f"/project/share/{thread_id}").status_code == 404
    assert ben.get(f"/project/share/{thread_id}").status_code == 404
    assert ben.get(f"/project/thread/{thread_id}").status_code in (401, 403, 404)
    assert ada.get(f"/project/share/{thread_id}").status_code == 404
