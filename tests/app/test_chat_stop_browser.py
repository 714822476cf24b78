"""The chat stopped with SIGTERM in the middle of a reply, as `switchboard run` stops it: it
exits 0 by itself within the deadline, and the trace of the run it was streaming reaches the
hub, ended as cut off by the stop."""

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from hub.child_processes import CHAT, Child, stop_children
from hub.core.db import get_engine
from hub.models.trace import TraceRun
from tests.app.conftest import ChatApp, send, sign_in
from tests.conftest import RunningHub
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser


def test_the_chat_stopped_mid_reply_exits_by_itself_and_hands_its_trace_to_the_hub(
    page: Page, hub: RunningHub, chat_app: ChatApp, chat_user: str, upstream: ScriptedUpstream
) -> None:
    words = [f"w{i}" for i in range(400)]
    upstream.script(reply=" ".join(words), chunk_delay_s=0.05)
    sign_in(page, chat_app, chat_user)
    send(page, "Tell me a very long story.")
    expect(page.locator(".message-content").filter(has_text="w0 w1 w2 w3").last).to_be_visible()
    process = chat_app.process
    assert process is not None

    killed = stop_children([Child(CHAT, process)], wait_s=hub.settings.shutdown_grace_s)

    assert killed == []
    assert process.returncode == 0
    assert upstream.completed_streams == 0
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        runs = session.exec(select(TraceRun)).all()
    assert [(run.user, run.status, run.error) for run in runs] == [
        (chat_user, "error", "the process stopped before the run ended")
    ]
