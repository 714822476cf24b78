"""Prompt Studio in Chromium: a builder writes a prompt, runs it in the playground on two
models side by side (two scripted upstreams) and saves it as v1, which is production; a service
calls it by name with plain HTTP and gets v1. The builder saves v2 and makes it production from
the prompt's page, and the very next call gets v2, with no restart; rolling back gives v1 again;
the diff page shows the lines that changed."""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.app.conftest import PASSWORD
from tests.conftest import RunningHub, with_spare_model
from tests.support.mcp_server import McpTestServer
from tests.support.prompts import rendered
from tests.support.upstream import ScriptedUpstream, count_tokens

pytestmark = pytest.mark.browser

NAME = "welcome-email"
SYSTEM_V1 = "You write short welcome emails for {{product}}."
SYSTEM_V2 = "You write warm, short welcome emails for {{product}} and sign them as the team."
USER = "Welcome {{customer}}, who just joined."
VALUES = {"product": "Atlas", "customer": "Dana"}
ANSWER = "Hello Dana, welcome to Atlas!"
SPARE_ANSWER = "Dear Dana, Atlas is glad to have you."
# The test catalog's prices of test-model, in dollars per million tokens (tests/conftest.py).
TEST_MODEL_PRICES = (2.0, 8.0)


@pytest.fixture
def hub_settings(
    hub_settings: Settings, tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
) -> Settings:
    """A catalog of two models: test-model and spare-model, each its own scripted upstream."""
    return with_spare_model(hub_settings, tmp_path, upstream, spare)


@pytest.fixture
def caller(hub: RunningHub) -> Iterator[httpx.Client]:
    """Another service of team growth, which calls the prompt by name."""
    token = hub.new_service("onboarding-mailer", team="growth")
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


def _rendered(system: str) -> list[dict[str, str]]:
    return rendered(
        [{"role": "system", "content": system}, {"role": "user", "content": USER}], **VALUES
    )


def _call(caller: httpx.Client, upstream: ScriptedUpstream) -> list[dict[str, str]]:
    """Call the prompt by name; what the model was sent."""
    answer = caller.post(f"/v1/prompts/{NAME}/completions", json={"variables": VALUES})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == ANSWER
    sent: list[dict[str, str]] = upstream.requests[-1]["messages"]
    return sent


def _sign_in(page: Page, hub: RunningHub, target: str) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(
            session=session, username="pam", password=PASSWORD, team="growth", role=Role.builder
        )
    page.goto(f"{hub.url}/login?next={target}")
    page.locator("#username").fill("pam")
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(re.escape(target) + "$"))


def _production_is(page: Page, version: int) -> None:
    expect(page.locator("#production-badge")).to_have_text(f"v{version} in production")


def test_write_try_ship_and_roll_back_a_prompt(
    page: Page,
    hub: RunningHub,
    upstream: ScriptedUpstream,
    spare: ScriptedUpstream,
    caller: httpx.Client,
) -> None:
    upstream.script(reply=ANSWER)
    spare.script(reply=SPARE_ANSWER)
    _sign_in(page, hub, "/prompts/new")

    # Write the prompt.
    page.locator("#name").fill(NAME)
    page.locator("#description").fill("The email new customers get on their first day.")
    messages = page.locator("#messages textarea")
    messages.nth(0).fill(SYSTEM_V1)
    messages.nth(1).fill(USER)

    # The playground asks for the variables the messages name, and runs on two models.
    for name, value in VALUES.items():
        page.locator(f"#variable-{name}").fill(value)
    expect(page.locator(".compare[value='test-model']")).to_be_checked()
    page.locator(".compare[value='spare-model']").check()
    page.locator("#run").click()

    main_run = page.locator(".run[data-model='test-model']")
    spare_run = page.locator(".run[data-model='spare-model']")
    expect(main_run.locator(".answer")).to_have_text(ANSWER)
    expect(spare_run.locator(".answer")).to_have_text(SPARE_ANSWER)
    tokens_in = sum(count_tokens(m["content"]) for m in _rendered(SYSTEM_V1))
    tokens_out = count_tokens(ANSWER)
    cost = (tokens_in * TEST_MODEL_PRICES[0] + tokens_out * TEST_MODEL_PRICES[1]) / 1e6
    expect(main_run.locator(".stats")).to_contain_text(
        f"{tokens_in} in · {tokens_out} out tokens · ${cost:.6f}"
    )
    expect(main_run.locator(".stats")).to_contain_text(re.compile(r"\d+ ms in all"))
    expect(spare_run.locator(".stats")).to_contain_text(
        f"{tokens_in} in · {count_tokens(SPARE_ANSWER)} out tokens · $0.000000"
    )
    assert upstream.requests[-1]["messages"] == _rendered(SYSTEM_V1)
    assert spare.requests[-1]["messages"] == _rendered(SYSTEM_V1)
    assert upstream.requests[-1]["stream"] is True

    # Saved, it is v1 and production; a service calls it by name and gets v1.
    page.get_by_role("button", name="Create the prompt").click()
    page.wait_for_url(re.compile(f"/prompts/{NAME}$"))
    _production_is(page, 1)
    assert _call(caller, upstream) == _rendered(SYSTEM_V1)

    # v2, saved from the editor, then made production on the prompt's page.
    page.get_by_role("link", name="Open in the playground").click()
    page.locator("#messages textarea").nth(0).fill(SYSTEM_V2)
    page.locator("#note").fill("Warmer, and signed.")
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_url(re.compile(f"/prompts/{NAME}$"))
    _production_is(page, 1)
    expect(page.locator("#version-2")).to_contain_text("Warmer, and signed.")
    page.get_by_role("button", name="Make v2 production").click()
    _production_is(page, 2)
    assert _call(caller, upstream) == _rendered(SYSTEM_V2)

    # Roll back: v1 again.
    page.locator("#rollback").click()
    _production_is(page, 1)
    assert _call(caller, upstream) == _rendered(SYSTEM_V1)

    # The diff page shows what changed from v1 to v2.
    page.locator("#version-2").get_by_role("link", name="diff with production").click()
    page.wait_for_url(re.compile(f"/prompts/{NAME}/diff\\?from=1&to=2$"))
    # Lines in the order the version is written out: its note, then its messages.
    expect(page.locator("#diff .removed")).to_contain_text(["note:", SYSTEM_V1])
    expect(page.locator("#diff .added")).to_contain_text(["note: Warmer, and signed.", SYSTEM_V2])
    expect(page.locator("#diff")).to_contain_text(USER)

    # The library shows the three calls by name and what they cost.
    page.get_by_role("link", name="Prompts").click()
    row = page.locator("#prompts tr", has_text=NAME)
    expect(row.locator(".calls")).to_have_text("3")
    called = [SYSTEM_V1, SYSTEM_V2, SYSTEM_V1]
    cost = sum(
        sum(count_tokens(m["content"]) for m in _rendered(system)) * TEST_MODEL_PRICES[0]
        + count_tokens(ANSWER) * TEST_MODEL_PRICES[1]
        for system in called
    )
    expect(row.locator(".cost")).to_have_text(f"${cost / 1e6:.6f}")


def test_a_prompt_with_tools_in_the_playground(
    page: Page,
    hub: RunningHub,
    upstream: ScriptedUpstream,
    registered_weather: tuple[McpTestServer, httpx.Client],
    caller: httpx.Client,
) -> None:
    """Ticked on the editor, the weather server's tools are the model's: the playground shows
    the call the hub made for it, and the saved version keeps the server and its allow-list."""
    upstream.enqueue(
        reply="", tool_calls=[{"name": "weather__get_weather", "arguments": {"city": "Lisbon"}}]
    )
    upstream.script(reply=ANSWER)
    _sign_in(page, hub, "/prompts/new")
    page.locator("#name").fill(NAME)
    messages = page.locator("#messages textarea")
    messages.nth(0).fill(SYSTEM_V1)
    messages.nth(1).fill(USER)
    page.locator("#server-weather input[name=servers]").check()
    page.locator("#server-weather input[value=flaky_forecast]").uncheck()
    for name, value in VALUES.items():
        page.locator(f"#variable-{name}").fill(value)
    page.locator("#run").click()

    run = page.locator(".run[data-model='test-model']")
    expect(run.locator(".answer")).to_have_text(ANSWER)
    # The test server's weather: 10 degrees plus the length of the city's name.
    expect(run.locator(".tool-calls li")).to_have_text(
        re.compile(r'^weather\.get_weather\(\{"city":"Lisbon"\}\) → .*"temperature_c":\s*16', re.S)
    )
    assert [tool["function"]["name"] for tool in upstream.requests[0]["tools"]] == [
        "weather__get_weather"
    ]

    page.get_by_role("button", name="Create the prompt").click()
    page.wait_for_url(re.compile(f"/prompts/{NAME}$"))
    production = caller.get(f"/api/prompts/{NAME}").json()["production"]
    assert production["mcp_servers"] == ["weather"]
    assert production["allowed_tools"] == {"weather": ["get_weather"]}
