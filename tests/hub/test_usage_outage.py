"""A hub whose database stops taking connections for 10 s under steady gateway calls loses no
usage row: every call answered, before, during and after the outage, has its row once the
database is back."""

import threading
import time

import httpx
import pytest
from sqlmodel import Session, func, select

from hub.core.db import get_engine
from hub.models.usage import UsageRecord
from tests.conftest import RunningHub
from tests.support.outage import database_down

OUTAGE_S = 10.0


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """On SQLite and on PostgreSQL."""
    return database_url


def _rows(url: str) -> int:
    with Session(get_engine(url)) as session:
        return session.exec(select(func.count()).select_from(UsageRecord)).one()


def test_no_usage_row_is_lost_while_the_database_is_down_for_ten_seconds(
    hub: RunningHub,
) -> None:
    token = hub.new_service("steady")
    answered: list[int] = []
    refused: list[int] = []
    stop = threading.Event()

    def call() -> None:
        with httpx.Client(
            base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            while not stop.is_set():
                reply = client.post(
                    "/v1/chat/completions",
                    json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
                )
                (answered if reply.status_code == 200 else refused).append(reply.status_code)
                time.sleep(0.02)

    callers = [threading.Thread(target=call) for _ in range(2)]
    for caller in callers:
        caller.start()
    time.sleep(1.0)
    before = len(answered)
    with database_down(hub.settings.sqlalchemy_url):
        time.sleep(OUTAGE_S)
        during = len(answered) - before
    time.sleep(1.0)
    stop.set()
    for caller in callers:
        caller.join(timeout=90)
    # Calls were answered before, during (their rows waiting in memory) and after the outage.
    assert before > 0 and during > 0 and len(answered) > before + during

    deadline = time.monotonic() + 30
    while _rows(hub.settings.sqlalchemy_url) < len(answered) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _rows(hub.settings.sqlalchemy_url) == len(answered)
    # A call the hub could not serve without its database was refused, never left hanging.
    assert all(status >= 500 for status in refused)
