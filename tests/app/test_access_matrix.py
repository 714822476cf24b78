"""Who reaches each thing people keep on the platform, by every path to it, over real HTTP and
a real socket: the hub's API and pages, the chat's (Chainlit's) HTTP endpoints, and the chat's
socket resuming a conversation.

`PROBES` is the whole answer: per thing and path, the callers who get it. The callers are
Ada (`owner`, a builder of team alpha, who owns everything here), Bob (`mate`, a member of
alpha), Cy (`other`, a builder of team beta), an admin of team ops (`admin`), team alpha's
service token (`service`, a builder of alpha; it sends its token as a bearer token to both
the hub and the chat) and someone signed out (`anon`).

What Ada owns: the agent `team-guide`, published for team alpha (version 1); the agent
`draft-guide`, never published; her conversation with `team-guide`, whose answer carries a
CSV file and her thumbs down, and whose run left a trace; a share link of that conversation
for team alpha, with the trace. A caller "gets" a thing when what it holds (a marker written
into it here) comes back, or, for a change, when the change is made. The audit log is the
admins' alone.

Chainlit's `/project/file` takes the files a person attaches in their own live session (it
refuses another's session); once the message is sent they are its files like any other,
served at `/switchboard/files/` and listed as elements, which the "chat file" probes try.
"""

import asyncio
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import socketio
from pdfminer.high_level import extract_text
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.identity.cookies import SESSION_COOKIE
from hub.models.service import utcnow
from hub.models.share import Share
from hub.models.trace import TraceRun, TraceStep
from hub.services.users import create_user, get_user
from hub.services.web_sessions import start_web_session
from tests.app.conftest import PASSWORD, ChatApp
from tests.conftest import RunningHub

CALLERS = ("owner", "mate", "other", "admin", "service", "anon")
PEOPLE = {
    "owner": ("ada", "alpha", Role.builder),
    "mate": ("bob", "alpha", Role.member),
    "other": ("cy", "beta", Role.builder),
    "admin": ("root", "ops", Role.admin),
}
# What each thing holds, to tell whether it came back.
TITLE = "Pay rise talk"
ANSWER = "Ask in March, marker-answer."
CSV_TEXT = "month,raise\nmarch,marker-csv\n"
COMMENT = "marker-comment: too vague"
TOOL_ARGUMENT = "marker-argument"
DRAFT_PROMPT = "marker-draft-instructions"
LIVE_PROMPT = "marker-live-instructions"
# Ada's share link, as the audit log records it being made.
AUDITED = "{w.share_id}"


@dataclass
class Caller:
    name: str
    hub: httpx.Client
    chat: httpx.Client


@dataclass
class World:
    hub: RunningHub
    chat_app: ChatApp
    callers: dict[str, Caller]
    thread_id: str = ""
    question_id: str = ""
    answer_id: str = ""
    element_id: str = ""
    file_key: str = ""
    trace_id: str = ""
    share_id: str = ""

    def session(self) -> Session:
        return Session(get_engine(self.hub.settings.sqlalchemy_url))

    def thread_name(self) -> str | None:
        rows = self.chat_app.query("SELECT name FROM threads WHERE id = ?", self.thread_id)
        return str(rows[0]["name"]) if rows else None

    def chat_feedback(self) -> dict[str, str]:
        """The comments on Ada's answer in the chat, by feedback id."""
        rows = self.chat_app.query(
            'SELECT id, comment FROM feedbacks WHERE "forId" = ?', self.answer_id
        )
        return {str(row["id"]): str(row["comment"]) for row in rows}

    def hub_feedback(self) -> list[str]:
        """The comments on Ada's answer at the hub."""
        rows = self.chat_app.query(
            "SELECT comment FROM feedback WHERE message_id = ?", self.answer_id
        )
        return [str(row["comment"]) for row in rows]

    def share_revoked(self) -> bool:
        with self.session() as session:
            share = session.get(Share, self.share_id)
            assert share is not None
            return share.revoked_at is not None

    def rate(self, caller: Caller, comment: str = COMMENT) -> httpx.Response:
        feedback = {"forId": self.answer_id, "value": 0, "comment": comment}
        return caller.chat.put("/feedback", json={"feedback": feedback, "sessionId": "any"})

    def restore(self) -> None:
        """Put back what a change by the owner (or an admin) took away: the share link
        active, Ada's feedback in the chat and at the hub, the conversation's title."""
        if self.share_revoked():
            with self.session() as session:
                share = session.get(Share, self.share_id)
                assert share is not None
                share.revoked_at = None
                session.add(share)
                session.commit()
        if list(self.chat_feedback().values()) != [COMMENT] or self.hub_feedback() != [COMMENT]:
            self.chat_app.execute('DELETE FROM feedbacks WHERE "forId" = ?', self.answer_id)
            rated = self.rate(self.callers["owner"])
            assert rated.status_code == 200, rated.text
            assert self.hub_feedback() == [COMMENT]
        if self.thread_name() != TITLE:
            self.chat_app.execute("UPDATE threads SET name = ? WHERE id = ?", TITLE, self.thread_id)


def _caller(hub: RunningHub, chat_app: ChatApp, name: str) -> Caller:
    return Caller(
        name=name,
        hub=httpx.Client(base_url=hub.url, timeout=30, headers={"origin": hub.url}),
        chat=httpx.Client(base_url=chat_app.url, timeout=30, headers={"origin": chat_app.url}),
    )


def _sign_in(world: World, caller: Caller, username: str) -> None:
    """The person signed in to the hub and, with the hub's cookie, to the chat."""
    with world.session() as session:
        user = get_user(session=session, username=username)
        assert user is not None
        token = start_web_session(session=session, user=user, days=1, method="password")
    caller.hub.cookies.set(SESSION_COOKIE, token)
    caller.chat.cookies.set(SESSION_COOKIE, token)
    signed_in = caller.chat.post("/auth/header", json={})
    assert signed_in.status_code == 200, signed_in.text


def _make_agents(owner: Caller) -> None:
    for slug, publish in [("team-guide", True), ("draft-guide", False)]:
        body = {
            "slug": slug,
            "name": slug,
            "model": "test-model",
            "visibility": "team",
            "instructions": LIVE_PROMPT if publish else DRAFT_PROMPT,
        }
        created = owner.hub.post("/api/agents", json=body)
        assert created.status_code == 201, created.text
        if publish:
            published = owner.hub.post(f"/api/agents/{slug}/publish")
            assert published.status_code == 201, published.text
    # The live agent's draft moves on; its new instructions are not published.
    changed = owner.hub.patch("/api/agents/team-guide", json={"instructions": DRAFT_PROMPT})
    assert changed.status_code == 200, changed.text


def _insert_steps(world: World, *steps: tuple[str, str, str, dict[str, Any]]) -> None:
    for step_id, kind, output, metadata in steps:
        world.chat_app.execute(
            'INSERT INTO steps (id, name, type, "threadId", streaming, output, metadata, '
            '"createdAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            *(step_id, "team-guide", kind, world.thread_id, False, output),
            *(json.dumps(metadata), utcnow().isoformat()),
        )


def _conversation(world: World) -> None:
    """Ada's conversation with `team-guide` as the chat stores it: her question, the answer
    with a CSV file (in the chat's file store), and the run's trace at the hub."""
    me = world.callers["owner"].chat.get("/user").json()
    world.thread_id, world.answer_id = str(uuid.uuid4()), str(uuid.uuid4())
    world.question_id = str(uuid.uuid4())
    world.element_id, world.trace_id = str(uuid.uuid4()), str(uuid.uuid4())
    app = world.chat_app
    app.execute(
        'INSERT INTO threads (id, "createdAt", name, "userId", "userIdentifier", metadata) '
        "VALUES (?, ?, ?, ?, ?, ?)",
        *(world.thread_id, utcnow().isoformat(), TITLE, me["id"], me["identifier"]),
        json.dumps({"chat_profile": "agent:team-guide"}),
    )
    answer = {"switchboard_reply": True, "agent": "team-guide", "version": 1}
    _insert_steps(
        world,
        (world.question_id, "user_message", "When do I ask?", {}),
        (world.answer_id, "assistant_message", ANSWER, {**answer, "trace": world.trace_id}),
    )
    world.file_key = f"{me['id']}/{world.element_id}/raises.csv"
    stored = Path(app.env["SWITCHBOARD_DATA_DIR"]) / "chat-files" / world.file_key
    stored.parent.mkdir(parents=True)
    stored.write_text(CSV_TEXT)
    stored.with_name("raises.csv.mime").write_text("text/csv")
    app.execute(
        'INSERT INTO elements (id, "threadId", type, url, name, display, "objectKey", '
        '"forId", mime, props) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        *(world.element_id, world.thread_id, "file", f"/switchboard/files/{world.file_key}"),
        *("raises.csv", "inline", world.file_key, world.answer_id, "text/csv", "{}"),
    )
    start = utcnow()
    with world.session() as session:
        session.add(
            TraceRun(
                id=world.trace_id,
                agent_slug="team-guide",
                agent_version=1,
                agent_owner="ada",
                agent_owner_kind="user",
                agent_owner_id=me["identifier"],
                conversation_id=world.thread_id,
                user="ada",
                user_kind="user",
                user_id=me["identifier"],
                started_at=start,
                ended_at=start + timedelta(milliseconds=80),
                status="ok",
                steps=1,
            )
        )
        session.add(
            TraceStep(
                id=str(uuid.uuid4()),
                run_id=world.trace_id,
                seq=1,
                kind="tool",
                name="salary_bands",
                started_at=start,
                ended_at=start + timedelta(milliseconds=30),
                latency_ms=30.0,
                input={"band": TOOL_ARGUMENT},
                output={"rows": 3},
            )
        )
        session.commit()


def _share(world: World) -> None:
    """Ada's link to her conversation for team alpha, with the agent's whole trace."""
    steps = [
        {"kind": "user", "author": "ada", "text": "When do I ask?"},
        {
            "kind": "assistant",
            "author": "team-guide",
            "text": ANSWER,
            "elements": [{"kind": "file", "name": "raises.csv", "text": CSV_TEXT}],
        },
    ]
    body = {
        "thread_id": world.thread_id,
        "title": TITLE,
        "audience": "team",
        "trace": "full",
        "snapshot": {"answered_by": "team-guide v1", "profile": "agent:team-guide", "steps": steps},
    }
    shared = world.callers["owner"].hub.post("/api/shares", json=body)
    assert shared.status_code == 201, shared.text
    world.share_id = shared.json()["id"]


@pytest.fixture
def world(hub: RunningHub, chat_app: ChatApp) -> Iterator[World]:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for username, team, role in PEOPLE.values():
            create_user(session=session, username=username, password=PASSWORD, team=team, role=role)
    callers = {name: _caller(hub, chat_app, name) for name in CALLERS}
    world = World(hub=hub, chat_app=chat_app, callers=callers)
    try:
        for name, (username, _, _) in PEOPLE.items():
            _sign_in(world, callers[name], username)
        token = hub.new_service("alpha-bot", team="alpha")
        for client in (callers["service"].hub, callers["service"].chat):
            client.headers["authorization"] = f"Bearer {token}"
        _make_agents(callers["owner"])
        _conversation(world)
        _share(world)
        world.restore()
        yield world
    finally:
        for caller in callers.values():
            caller.hub.close()
            caller.chat.close()


# How each path is asked: True when the caller got the thing.
Ask = Callable[[World, Caller], bool]


def _hub_page(path: str, marker: str) -> Ask:
    return lambda w, c: marker.format(w=w) in c.hub.get(path.format(w=w)).text


_hub_api = _hub_page


def _chat_get(path: str, marker: str) -> Ask:
    return lambda w, c: marker.format(w=w) in c.chat.get(path.format(w=w)).text


def _pdf_has(path: str, marker: str) -> Ask:
    def ask(w: World, c: Caller) -> bool:
        answer = c.chat.get(path.format(w=w))
        if not answer.content.startswith(b"%PDF"):
            return False
        return marker in " ".join(extract_text(io.BytesIO(answer.content)).split())

    return ask


def _listed_threads(w: World, c: Caller) -> bool:
    listed = c.chat.post("/project/threads", json={"pagination": {"first": 50}, "filter": {}})
    return listed.status_code == 200 and w.thread_id in listed.text


def _searched_threads(w: World, c: Caller) -> bool:
    body = {"pagination": {"first": 50}, "filter": {"search": "March"}}
    listed = c.chat.post("/project/threads", json=body)
    return listed.status_code == 200 and w.thread_id in listed.text


def _rename(w: World, c: Caller) -> bool:
    name = f"Renamed by {c.name}"
    c.chat.put("/project/thread", json={"threadId": w.thread_id, "name": name})
    return w.thread_name() == name


def _choose_branch(w: World, c: Caller) -> bool:
    path = f"/switchboard/conversations/{w.thread_id}/branch"
    chosen = c.chat.post(path, json={"turn": w.question_id})
    return chosen.status_code == 200 and w.question_id in chosen.text


def _delete_thread(w: World, c: Caller) -> bool:
    c.chat.request("DELETE", "/project/thread", json={"threadId": w.thread_id})
    return w.thread_name() is None


async def _resume_over_socket(w: World, c: Caller) -> bool:
    """Open the chat's socket as the browser does to go back to the conversation; True when
    Chainlit sends the conversation back."""
    client = socketio.AsyncClient(reconnection=False)
    resumed = asyncio.Event()

    @client.on("resume_thread")
    async def on_resume(thread: dict[str, Any]) -> None:
        if thread.get("id") == w.thread_id:
            resumed.set()

    headers = {"origin": w.chat_app.url}
    if "authorization" in c.chat.headers:
        headers["authorization"] = c.chat.headers["authorization"]
    if cookies := "; ".join(f"{k}={v}" for k, v in c.chat.cookies.items()):
        headers["cookie"] = cookies
    auth = {"threadId": w.thread_id, "sessionId": str(uuid.uuid4()), "clientType": "webapp"}
    try:
        await client.connect(
            w.chat_app.url,
            headers=headers,
            auth=auth,
            transports=["websocket"],
            socketio_path="/ws/socket.io",
            wait_timeout=10,
        )
    except socketio.exceptions.ConnectionError:
        return False
    try:
        await client.emit("connection_successful")
        await asyncio.wait_for(resumed.wait(), timeout=10)
        return True
    except TimeoutError:
        return False
    finally:
        await client.disconnect()


def _resume(w: World, c: Caller) -> bool:
    return asyncio.run(_resume_over_socket(w, c))


def _share_conversation(w: World, c: Caller) -> bool:
    steps = [{"kind": "user", "author": "ada", "text": "When do I ask?"}]
    body = {"thread_id": w.thread_id, "snapshot": {"steps": steps}}
    return c.hub.post("/api/shares", json=body).status_code == 201


def _revoke_by_api(w: World, c: Caller) -> bool:
    c.hub.delete(f"/api/shares/{w.share_id}")
    return w.share_revoked()


def _revoke_by_page(w: World, c: Caller) -> bool:
    c.hub.post(f"/shares/{w.share_id}/revoke")
    return w.share_revoked()


def _continue_from_copy(w: World, c: Caller) -> bool:
    answer = c.chat.get(f"/shares/{w.share_id}/continue")
    return answer.status_code == 303 and answer.headers["location"].startswith("/thread/")


def _profiles(w: World, c: Caller) -> list[str]:
    settings = c.chat.get("/project/settings")
    if settings.status_code != 200:
        return []
    return [profile["name"] for profile in settings.json()["chatProfiles"]]


def _rate_in_chat(w: World, c: Caller) -> bool:
    w.rate(c, comment=f"by {c.name}")
    return f"by {c.name}" in w.chat_feedback().values()


def _take_back_in_chat(w: World, c: Caller) -> bool:
    (feedback_id,) = w.chat_feedback()
    c.chat.request("DELETE", "/feedback", json={"feedbackId": feedback_id})
    return not w.chat_feedback()


def _rate_at_hub(w: World, c: Caller) -> bool:
    body = {
        "conversation_id": w.thread_id,
        "message_id": w.answer_id,
        "value": 1,
        "comment": f"by {c.name}",
        "model": "test-model",
        "agent_slug": "team-guide",
        "agent_version": 1,
        "trace_id": w.trace_id,
    }
    c.hub.put("/api/feedback", json=body)
    return w.hub_feedback() == [f"by {c.name}"]


def _take_back_at_hub(w: World, c: Caller) -> bool:
    c.hub.delete(f"/api/feedback/{w.answer_id}")
    return not w.hub_feedback()


class Probe(NamedTuple):
    thing: str
    path: str
    who: frozenset[str]
    ask: Ask


def _probe(thing: str, path: str, who: str, ask: Ask) -> Probe:
    return Probe(thing, path, frozenset(who.split()), ask)


AGENT_FEEDBACK = "/api/agents/team-guide/feedback"
TEAM = "owner mate admin"
# fmt: off
PROBES = [
    # The conversation: its owner alone, on every path.
    _probe("conversation", "chat GET /project/thread/{id}", "owner",
           _chat_get("/project/thread/{w.thread_id}", "marker-answer")),
    _probe("conversation", "chat POST /project/threads (list)", "owner", _listed_threads),
    _probe("conversation", "chat PUT /project/thread (rename)", "owner", _rename),
    _probe("conversation", "chat POST /project/threads (sidebar search)", "owner",
           _searched_threads),
    _probe("conversation", "chat GET /switchboard/search", "owner",
           _chat_get("/switchboard/search?q=marker+answer", "/thread/{w.thread_id}#step-")),
    _probe("conversation", "chat GET /switchboard/search.json", "owner",
           _chat_get("/switchboard/search.json?q=marker+answer", "marker-answer")),
    _probe("conversation", "chat GET /switchboard/conversations (export page)", "owner",
           _chat_get("/switchboard/conversations", "{w.thread_id}/export")),
    _probe("conversation", "chat GET /switchboard/conversations/{id}/export (JSON)", "owner",
           _chat_get("/switchboard/conversations/{w.thread_id}/export?format=json",
                     "marker-answer")),
    _probe("conversation", "chat GET /switchboard/conversations/{id}/export (Markdown)", "owner",
           _chat_get("/switchboard/conversations/{w.thread_id}/export?format=md",
                     "marker-answer")),
    _probe("conversation", "chat GET /switchboard/conversations/{id}/export (PDF)", "owner",
           _pdf_has("/switchboard/conversations/{w.thread_id}/export?format=pdf",
                    "marker-answer")),
    _probe("conversation", "chat GET /switchboard/conversations/export (all of one's)", "owner",
           _chat_get("/switchboard/conversations/export?format=json", "marker-answer")),
    _probe("conversation", "chat socket: resume", "owner", _resume),
    _probe("conversation", "chat POST /switchboard/conversations/{id}/branch", "owner",
           _choose_branch),
    _probe("conversation", "hub API POST /api/shares (share it)", "owner", _share_conversation),
    _probe("conversation", "chat GET /project/share/{id} (Chainlit's sharing)", "",
           _chat_get("/project/share/{w.thread_id}", "marker-answer")),
    # The share link: Ada's team and admins read it; Ada and admins revoke it and list it.
    _probe("share link", "hub API GET /api/shares/{id}", TEAM,
           _hub_api("/api/shares/{w.share_id}", "marker-answer")),
    _probe("share link", "hub page GET /s/{id}", TEAM,
           _hub_page("/s/{w.share_id}", "marker-answer")),
    _probe("share link", "hub API GET /api/shares (list)", "owner",
           _hub_api("/api/shares", "{w.share_id}")),
    _probe("share link", "hub page GET /shares (list)", "owner",
           _hub_page("/shares", "{w.share_id}")),
    _probe("share link", "chat GET /shares/{id}/continue", TEAM, _continue_from_copy),
    _probe("share link", "hub API DELETE /api/shares/{id}", "owner admin", _revoke_by_api),
    _probe("share link", "hub page POST /shares/{id}/revoke", "owner admin", _revoke_by_page),
    # The trace: the runner (and agent owner) and admins; Ada's team through her share.
    _probe("trace", "hub API GET /api/traces/{id}", "owner admin",
           _hub_api("/api/traces/{w.trace_id}", TOOL_ARGUMENT)),
    _probe("trace", "hub API GET /api/traces (list)", "owner admin",
           _hub_api("/api/traces", "{w.trace_id}")),
    _probe("trace", "hub page GET /traces/{id}", "owner admin",
           _hub_page("/traces/{w.trace_id}", TOOL_ARGUMENT)),
    _probe("trace", "hub page GET /s/{id} (shared with it)", TEAM,
           _hub_page("/s/{w.share_id}", TOOL_ARGUMENT)),
    _probe("trace", "hub API GET /api/shares/{id} (shared with it)", TEAM,
           _hub_api("/api/shares/{w.share_id}", TOOL_ARGUMENT)),
    # The agent's draft: its owner and admins.
    _probe("agent draft", "hub API GET /api/agents/{slug} (never published)", "owner admin",
           _hub_api("/api/agents/draft-guide", DRAFT_PROMPT)),
    _probe("agent draft", "hub API GET /api/agents/{slug} (published, draft moved on)",
           "owner admin", _hub_api("/api/agents/team-guide", DRAFT_PROMPT)),
    _probe("agent draft", "hub API GET /api/agents?mine=true (list)", "owner",
           _hub_api("/api/agents?mine=true", "draft-guide")),
    _probe("agent draft", "hub API GET /api/agents/{slug}/draft-run-spec", "owner admin",
           _hub_api("/api/agents/team-guide/draft-run-spec", DRAFT_PROMPT)),
    _probe("agent draft", "hub page GET /agents/{slug} (never published)", "owner admin",
           _hub_page("/agents/draft-guide", DRAFT_PROMPT)),
    _probe("agent draft", "hub page GET /agents/{slug} (published, draft moved on)",
           "owner admin", _hub_page("/agents/team-guide", DRAFT_PROMPT)),
    _probe("agent draft", "hub page GET /agents/{slug}/edit", "owner admin",
           _hub_page("/agents/team-guide/edit", DRAFT_PROMPT)),
    _probe("agent draft", "chat GET /project/settings (profiles)", "owner",
           lambda w, c: "draft:draft-guide" in _profiles(w, c)),
    # The published version, for team alpha: the team (its service too) and admins.
    _probe("agent version", "hub API GET /api/agents/{slug}/live", TEAM + " service",
           _hub_api("/api/agents/team-guide/live", LIVE_PROMPT)),
    _probe("agent version", "hub API GET /api/agents/{slug}/versions", TEAM + " service",
           _hub_api("/api/agents/team-guide/versions", LIVE_PROMPT)),
    _probe("agent version", "hub page GET /agents/{slug}", TEAM + " service",
           _hub_page("/agents/team-guide", LIVE_PROMPT)),
    _probe("agent version", "chat GET /project/settings (profiles)", TEAM,
           lambda w, c: "agent:team-guide" in _profiles(w, c)),
    # The chat's file: the conversation's owner; Ada's team through her share.
    _probe("chat file", "chat GET /switchboard/files/{key}", "owner",
           _chat_get("/switchboard/files/{w.file_key}", "marker-csv")),
    _probe("chat file", "chat GET /switchboard/conversations/{id}/export (JSON)", "owner",
           _chat_get("/switchboard/conversations/{w.thread_id}/export?format=json",
                     "marker-csv")),
    _probe("chat file", "chat GET /project/thread/{id}/element/{id}", "owner",
           _chat_get("/project/thread/{w.thread_id}/element/{w.element_id}", "{w.file_key}")),
    _probe("chat file", "hub page GET /s/{id} (shared with it)", TEAM,
           _hub_page("/s/{w.share_id}", "marker-csv")),
    # Feedback: given and taken back by the person whose conversation it is; read by the
    # agent's owner and admins; exported by admins.
    _probe("feedback", "chat PUT /feedback", "owner", _rate_in_chat),
    _probe("feedback", "chat DELETE /feedback", "owner", _take_back_in_chat),
    _probe("feedback", "chat GET /project/thread/{id}", "owner",
           _chat_get("/project/thread/{w.thread_id}", COMMENT)),
    _probe("feedback", "hub API PUT /api/feedback", "owner", _rate_at_hub),
    _probe("feedback", "hub API DELETE /api/feedback/{message}", "owner", _take_back_at_hub),
    _probe("feedback", "hub API GET /api/agents/{slug}/feedback", "owner admin",
           _hub_api(AGENT_FEEDBACK, COMMENT)),
    _probe("feedback", "hub page GET /agents/{slug}", "owner admin",
           _hub_page("/agents/team-guide", COMMENT)),
    _probe("feedback", "hub page GET /feedback.csv", "admin", _hub_page("/feedback.csv", COMMENT)),
    # The audit log: admins read it (nobody changes it: tests/hub/test_audit.py).
    _probe("audit log", "hub API GET /api/audit", "admin", _hub_api("/api/audit", AUDITED)),
    _probe("audit log", "hub page GET /audit", "admin", _hub_page("/audit", AUDITED)),
    # Last: deleting the conversation.
    _probe("conversation", "chat DELETE /project/thread", "owner", _delete_thread),
]
# fmt: on
# The owner goes last on each path: a change they may make is made after everyone else tried.
ORDER = ("anon", "service", "other", "mate", "admin", "owner")


def test_the_probes_try_every_thing_the_platform_keeps() -> None:
    things = {probe.thing for probe in PROBES}
    assert things == {
        "conversation",
        "share link",
        "trace",
        "agent draft",
        "agent version",
        "chat file",
        "feedback",
        "audit log",
    }
    assert set(ORDER) == set(CALLERS)


def test_only_those_who_should_reach_each_thing_on_each_path(world: World) -> None:
    wrong = []
    for probe in PROBES:
        for name in ORDER:
            got = probe.ask(world, world.callers[name])
            if got != (name in probe.who):
                verb = "got" if got else "did not get"
                wrong.append(f"{probe.thing} by {probe.path}: {name} {verb} it")
            if probe is not PROBES[-1]:
                world.restore()
    assert wrong == [], "\n".join(wrong)
