"""Three hub replicas behind the proxy under steady gateway load: one is stopped with SIGTERM,
another killed with SIGKILL. Every call either succeeds or gets an error a caller can retry
(the proxy's 502/503/504, or a broken connection before any byte of an answer), none hangs,
and the database holds one usage row for each call that succeeded, no more, no less."""

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from hub.core.db import get_engine
from hub.models.usage import UsageRecord
from tests.app.conftest import wait_until
from tests.conftest import _postgres_database
from tests.support.topology import running_topology
from tests.support.upstream import ScriptedUpstream

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CLIENTS = 8
# Each client's calls are bounded, and so is each call: a call past it counts as hung.
MAX_CALLS_PER_CLIENT = 2_000
CALL_TIMEOUT_S = 30.0
RETRYABLE_STATUSES = {502, 503, 504}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


class Load:
    """CLIENTS threads calling the gateway through the proxy until stopped; every third call
    streams. Each call's outcome: ok, retryable, or what went wrong."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._token = token
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT_S + 10)
        assert not any(thread.is_alive() for thread in self._threads), "a client hung"

    def _client(self, number: int) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        with httpx.Client(base_url=self._url, headers=headers, timeout=CALL_TIMEOUT_S) as client:
            for call in range(MAX_CALLS_PER_CLIENT):
                if self._stop.is_set():
                    return
                outcome = self._call(client, stream=(number + call) % 3 == 0)
                with self._lock:
                    self.outcomes[outcome] += 1

    def _call(self, client: httpx.Client, *, stream: bool) -> str:
        body = {
            "model": "test-model",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": stream,
        }
        started = False
        try:
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code in RETRYABLE_STATUSES:
                    return "retryable"
                if response.status_code != 200:
                    return f"status {response.status_code}"
                started = True
                text = response.read().decode()
        except httpx.TimeoutException:
            return "hung"
        except httpx.TransportError as error:
            return f"cut mid-answer: {error!r}" if started else "retryable"
        if stream and not text.rstrip().endswith("data: [DONE]"):
            return "stream without its end"
        return "ok"

    def count(self, outcome: str) -> int:
        with self._lock:
            return self.outcomes[outcome]


def _usage_rows(database_url: str) -> int:
    with Session(get_engine(database_url)) as session:
        return int(session.exec(select(func.count()).select_from(UsageRecord)).one())


@pytest.mark.timeout(600)
def test_replicas_stopped_and_killed_under_load_lose_no_call_and_no_usage_row(
    tmp_path: Path, postgres_url: str, upstream: ScriptedUpstream
) -> None:
    upstream.remember_requests = False
    upstream.script(reply="Short and sweet.", chunk_delay_s=0.005)
    with running_topology(tmp_path, postgres_url, upstream.url, replicas=3, chat=False) as running:
        token = running.hub.new_service("loader")
        first, second = (running.child(f"the hub replica {n}").process for n in (1, 2))
        with Load(running.settings.hub_url, token) as load:
            wait_until(lambda: load.count("ok") >= 50, timeout_s=60, what="calls under way")

            # SIGTERM: the replica stops taking calls, finishes those it has, writes its rows.
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=60) == 0
            before = load.count("ok")
            wait_until(lambda: load.count("ok") >= before + 50, timeout_s=60, what="more calls")

            # SIGKILL: its calls in flight are lost, so it is killed while they all wait on
            # the provider (none has sent a byte), after the rows of those that ended were
            # written; the provider answers again right after.
            upstream.script(reply="Short and sweet.", chunk_delay_s=0.005, delay_s=2.0)
            time.sleep(1.0)
            second.send_signal(signal.SIGKILL)
            second.wait(timeout=10)
            upstream.script(reply="Short and sweet.", chunk_delay_s=0.005)
            before = load.count("ok")
            wait_until(lambda: load.count("ok") >= before + 50, timeout_s=60, what="calls after")

        outcomes = dict(load.outcomes)
        succeeded = outcomes.pop("ok")
        retryable = outcomes.pop("retryable", 0)
        assert outcomes == {}, f"calls that neither succeeded nor could be retried: {outcomes}"
        # The killed replica's calls in flight, at least, failed; each could be retried.
        assert retryable >= 1
        wait_until(
            lambda: _usage_rows(postgres_url) >= succeeded, timeout_s=15, what="the usage rows"
        )
        time.sleep(1.0)
        assert _usage_rows(postgres_url) == succeeded
