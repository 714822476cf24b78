"""Per-service limits: requests and tokens per minute, a monthly budget; over one, a 429 that
names it and says when to come back, from every hub process that shares Redis."""

import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlmodel import Session, select

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.main import create_app
from hub.models.usage import UsageRecord
from hub.services.usage import summarize_usage
from tests.support.gateway import FAST, Model, ask, gateway_settings, new_service, redis_hubs
from tests.support.servers import ThreadedServer
from tests.support.upstream import ScriptedUpstream

SWITCHBOARD = Path(sys.executable).parent / "switchboard"


def _same_minute(seconds_needed: float = 8.0) -> None:
    """Minutes are windows of the clock: start a test well inside one."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.1)


def _refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60 * 86400
    message = response.json()["error"]["message"]
    for word in words:
        assert word in message


def _limits(settings: Settings, name: str, *options: str) -> None:
    """`switchboard service limits NAME ...`, as an admin runs it."""
    result = subprocess.run(
        [str(SWITCHBOARD), "service", "limits", name, *options],
        env={"SWITCHBOARD_DATABASE_URL": settings.sqlalchemy_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_over_its_rpm_a_service_gets_429_from_either_hub_sharing_redis(
    tmp_path: Path, upstream: ScriptedUpstream
):
    with redis_hubs(tmp_path, [Model("primary", [upstream.url])], FAST) as hubs:
        billing = new_service(hubs.settings, "billing")
        batch = new_service(hubs.settings, "batch")
        _limits(hubs.settings, "billing", "--rpm", "3")
        _limits(hubs.settings, "batch", "--budget-usd", "0.00005")
        _same_minute()
        for url in (hubs.a, hubs.b, hubs.a):
            assert ask(url, billing, "primary").status_code == 200
        for url in (hubs.b, hubs.a):
            _refused(ask(url, billing, "primary"), "'billing'", "3 requests per minute")
        assert upstream.hits == 3

        # The budget holds one call of at most 5 tokens out (4.6e-05 at most, 4.4e-05 spent)
        # but not two: after the call on hub a, hub b refuses the next.
        assert ask(hubs.a, batch, "primary", max_tokens=5).status_code == 200
        _refused(
            ask(hubs.b, batch, "primary", max_tokens=5),
            "'batch'",
            "monthly budget of $5e-05",
            "could cost up to $4.6e-05",
        )


def test_limits_hold_in_memory_without_redis(tmp_path: Path, upstream: ScriptedUpstream):
    settings = gateway_settings(tmp_path, Model("primary", [upstream.url]))
    frugal = new_service(settings, "frugal", monthly_budget_usd=0.00005)
    chatty = new_service(settings, "chatty", tpm=5)
    steady = new_service(settings, "steady", rpm=2)
    free = new_service(settings, "free")
    free_of_caps = new_service(settings, "uncapped", monthly_budget_usd=0.01)
    _same_minute()
    with ThreadedServer(create_app(settings)) as server:
        url = server.base_url
        assert ask(url, frugal, "primary", max_tokens=5).status_code == 200
        _refused(ask(url, frugal, "primary", max_tokens=5), "monthly budget of $5e-05", "renews on")
        # With no max_tokens a call holds the model's max_output_tokens (4096 unless set).
        _refused(ask(url, free_of_caps, "primary"), "could cost up to $0.03")
        # The first call's tokens (7) pass the limit of 5 a minute: the next call waits.
        assert ask(url, chatty, "primary").status_code == 200
        _refused(ask(url, chatty, "primary"), "5 tokens per minute")
        assert [ask(url, steady, "primary").status_code for _ in range(3)] == [200, 200, 429]
        assert [ask(url, free, "primary").status_code for _ in range(5)] == [200] * 5

    # Refused calls are in the usage as errors, with no tokens and no cost.
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        rows = summarize_usage(session=session, start=None, end=None, group_by=["service"])
    by_service = {row.service: (row.requests, row.errors) for row in rows}
    assert by_service == {
        "chatty": (2, 1),
        "free": (5, 0),
        "frugal": (2, 1),
        "steady": (3, 1),
        "uncapped": (1, 1),
    }
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        refused = session.exec(select(UsageRecord).where(UsageRecord.status_code == 429)).all()
    assert len(refused) == 4
    assert all(r.input_tokens == r.output_tokens == 0 and r.cost_usd == 0 for r in refused)
    assert all(r.attempts == 0 and "limit" in (r.error or "") for r in refused)
