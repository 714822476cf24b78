"""Stopping without losing anything: a hub process stopped with SIGTERM in the middle of a
streamed answer refuses new connections, finishes the stream, writes the call's usage row and
exits 0; and `switchboard run`'s stop asks its parts to stop one at a time, in order, and
kills (and names) only one that does not stop within the deadline."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from hub.child_processes import CHAT, HUB, Child, start_child, stop_children
from hub.core.db import get_engine, migrate
from hub.models.service import ServiceCreate
from hub.models.usage import UsageRecord
from hub.services.service_accounts import create_service
from tests.conftest import APP_TOKEN, REPO_ROOT, write_catalog
from tests.support.servers import free_port, stop_process
from tests.support.upstream import ScriptedUpstream, count_tokens

# Forty words, one chunk each, a quarter of a second apart: ten seconds of stream, far longer
# than the moment the hub needs to close its listening socket.
REPLY = " ".join(f"word{n}" for n in range(1, 41))


def _wait_for_hub(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"the hub exited early:\n{log.read_text()}"
        try:
            if httpx.get(url + "/healthz", timeout=1).is_success:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the hub did not start:\n{log.read_text()}"
        time.sleep(0.05)


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@contextmanager
def _hub_process(
    tmp_path: Path, upstream: ScriptedUpstream, grace_s: int, command: list[str]
) -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    """A hub started with `command` on a SQLite file whose usage rows are written only when it
    stops (the flush interval is an hour); yields it, its port and a service token."""
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(database_url)
    with Session(get_engine(database_url)) as session:
        _, token = create_service(
            session=session, service_in=ServiceCreate(name="billing", team="finance")
        )
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_CATALOG_PATH": str(write_catalog(tmp_path / "models.yaml", upstream.url)),
        "SWITCHBOARD_APP_SERVICE_TOKEN": APP_TOKEN,
        "SWITCHBOARD_HUB_PORT": str(port),
        "SWITCHBOARD_USAGE_FLUSH_INTERVAL_S": "3600",
        "SWITCHBOARD_SHUTDOWN_GRACE_S": str(grace_s),
        "SB_TEST_PROVIDER_KEY": "sk-test-provider-key",
    }
    log = tmp_path / "hub.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_hub(process, f"http://127.0.0.1:{port}", log)
        yield process, port, token
    finally:
        if process.poll() is None:
            stop_process(process)


def _stop_mid_stream(process: subprocess.Popen[bytes], port: int, token: str) -> list[str]:
    """Stream a completion, send the hub SIGTERM after its first event, check that it
    refuses new connections while the stream goes on; the stream's events."""
    body = {"model": "test-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    events: list[str] = []
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status_code == 200
        lines = (line for line in response.iter_lines() if line.startswith("data: "))
        events.append(next(lines))
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not _refuses_connections(port):
            assert time.monotonic() < deadline, "the hub kept accepting connections"
            time.sleep(0.05)
        # Refusing new connections while the stream is still under way.
        assert process.poll() is None
        try:
            events.extend(lines)
        except httpx.RemoteProtocolError:
            pass  # cut off at the deadline
    return events


def _usage_rows(tmp_path: Path) -> list[UsageRecord]:
    with Session(get_engine(f"sqlite:///{tmp_path / 'hub.db'}")) as session:
        return list(session.exec(select(UsageRecord)).all())


def test_a_hub_stopped_mid_stream_finishes_the_stream_writes_its_usage_and_exits_0(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    upstream.script(reply=REPLY, chunk_delay_s=0.25)
    # As `switchboard run` starts it.
    command = [sys.executable, "-m", "hub.serve"]
    with _hub_process(tmp_path, upstream, 60, command) as (process, port, token):
        events = _stop_mid_stream(process, port, token)
        assert process.wait(timeout=60) == 0

    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == REPLY
    assert upstream.completed_streams == 1
    rows = _usage_rows(tmp_path)
    assert [(r.service_name, r.model, r.stream, r.status_code) for r in rows] == [
        ("billing", "test-model", True, 200)
    ]
    assert rows[0].output_tokens == count_tokens(REPLY) == 40
    assert rows[0].input_tokens == count_tokens("hi")


def test_a_stream_longer_than_the_deadline_is_cut_off_and_still_counted(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    # Twelve seconds of stream against a deadline of one.
    reply = " ".join(REPLY.split()[:12])
    upstream.script(reply=reply, chunk_delay_s=1.0)
    # As a replica is started: `switchboard hub`.
    command = [sys.executable, "-c", "from hub.cli import main; main()", "hub"]
    with _hub_process(tmp_path, upstream, 1, command) as (process, port, token):
        events = _stop_mid_stream(process, port, token)
        assert process.wait(timeout=60) == 0

    assert "data: [DONE]" not in events
    assert len(events) < 12
    rows = _usage_rows(tmp_path)
    assert [(r.service_name, r.stream, r.status_code) for r in rows] == [("billing", True, 499)]


# A part of the platform in miniature: on SIGTERM it takes a moment to write what it holds,
# notes its name in the shared log and exits 0; or, told to, it ignores SIGTERM.
_PART = """
import signal, sys, time
from pathlib import Path

log, name, behaviour, ready = sys.argv[1:]

def stop(*_):
    time.sleep(0.3)
    with open(log, "a") as out:
        out.write(name + "\\n")
    sys.exit(0)

signal.signal(signal.SIGTERM, signal.SIG_IGN if behaviour == "ignore" else stop)
Path(ready).touch()
while True:
    time.sleep(0.1)
"""


def _parts(tmp_path: Path, names: list[str], stubborn: str = "") -> list[Child]:
    children = []
    for index, name in enumerate(names):
        ready = tmp_path / f"ready-{index}"
        behaviour = "ignore" if name == stubborn else "stop"
        command = [sys.executable, "-c", _PART, str(tmp_path / "stopped.log"), name]
        children.append(
            start_child(name, [*command, behaviour, str(ready)], tmp_path, dict(os.environ))
        )
    deadline = time.monotonic() + 30
    for index in range(len(names)):
        while not (tmp_path / f"ready-{index}").exists():
            assert time.monotonic() < deadline, "a part did not start"
            time.sleep(0.05)
    return children


def test_the_parts_stop_one_at_a_time_the_chat_then_the_hub_then_the_rest_newest_first(
    tmp_path: Path,
) -> None:
    started = ["the local model server", "the local identity provider", HUB, "handbook", CHAT]
    children = _parts(tmp_path, started)

    killed = stop_children(children, wait_s=20)

    assert killed == []
    assert [child.process.returncode for child in children] == [0] * len(started)
    stopped = (tmp_path / "stopped.log").read_text().splitlines()
    assert stopped == [
        CHAT,
        HUB,
        "handbook",
        "the local identity provider",
        "the local model server",
    ]


def test_a_part_that_does_not_stop_within_the_deadline_is_killed_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children = _parts(tmp_path, ["handbook", HUB, CHAT], stubborn=HUB)

    killed = stop_children(children, wait_s=1)

    assert killed == [HUB]
    codes = {child.name: child.process.returncode for child in children}
    assert codes == {CHAT: 0, HUB: -signal.SIGKILL, "handbook": 0}
    assert (tmp_path / "stopped.log").read_text().splitlines() == [CHAT, "handbook"]
    assert f"Had to kill: {HUB}." in capsys.readouterr().err
