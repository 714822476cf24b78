"""Fixtures for the chat app: the Chainlit process on a real port, a user, and a browser."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user, get_user
from mcp_servers.bigquery.emulator import EmulatorProcess
from tests.conftest import RunningHub
from tests.support.analyst import AnalystSetup, served_analyst
from tests.support.mcp_server import McpTestServer
from tests.support.servers import free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chainlit's page links web fonts and KaTeX CSS from CDNs; tests never leave the machine.
OFF_MACHINE = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/])[a-z]+://")
USERNAME = "ada"
PASSWORD = "correct horse battery"


def wait_until(
    condition: Callable[[], Any], *, timeout_s: float = 10.0, what: str = "condition"
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if result := condition():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class ChatApp:
    url: str
    log_path: Path
    database_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "chainlit", "run", "app/main.py", "--headless"]
        command += ["--host", "127.0.0.1", "--port", port]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        process = self.process

        def answering() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"chainlit exited early:\n{self.log()}")
            try:
                return httpx.get(self.url + "/auth/config", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answering, timeout_s=60, what="chainlit to answer")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_no_storage_errors(self) -> None:
        # Chainlit's data layer logs failed SQL as a warning and carries on.
        assert "error occurred" not in self.log(), self.log()

    def execute(self, sql: str, *params: object) -> None:
        with sqlite3.connect(self.database_path, timeout=10) as connection:
            connection.execute(sql, params)

    def query(self, sql: str, *params: object) -> list[sqlite3.Row]:
        with sqlite3.connect(self.database_path, timeout=10) as connection:
            connection.row_factory = sqlite3.Row
            return connection.execute(sql, params).fetchall()


def _app_env(hub: RunningHub, data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SWITCHBOARD_", "CHAINLIT_")) and key != "DATABASE_URL"
    }
    hub_address = urlsplit(hub.url)
    env.update(
        SWITCHBOARD_ENVIRONMENT="test",
        SWITCHBOARD_DATA_DIR=str(data_dir),
        SWITCHBOARD_DATABASE_URL=hub.settings.sqlalchemy_url,
        SWITCHBOARD_HUB_HOST=str(hub_address.hostname),
        SWITCHBOARD_HUB_PORT=str(hub_address.port),
        SWITCHBOARD_APP_SERVICE_TOKEN=hub.app_token,
        SWITCHBOARD_PUBLIC_APP_URL=hub.settings.app_public_url,
    )
    return env


def person_key(hub: RunningHub, username: str) -> str:
    """The key the chat knows a person by (their conversations are kept under it)."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        user = get_user(session=session, username=username)
        assert user is not None, f"no person named {username!r}"
        return user.key


@pytest.fixture
def chat_port() -> int:
    return free_port()


@pytest.fixture
def hub_settings(hub_settings: Settings, chat_port: int) -> Settings:
    """The hub knows where the chat is, to send people back to it after signing in."""
    return hub_settings.model_copy(update={"public_app_url": f"http://127.0.0.1:{chat_port}"})


@pytest.fixture
def chat_user(hub: RunningHub) -> str:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(
            session=session,
            username=USERNAME,
            password=PASSWORD,
            display_name="Ada",
            role=Role.builder,
        )
    return USERNAME


@pytest.fixture
def chat_app(hub: RunningHub, tmp_path: Path, chat_port: int) -> Iterator[ChatApp]:
    """`chainlit run app/main.py` as the run command starts it, against the test hub."""
    database_url = hub.settings.sqlalchemy_url
    assert database_url.startswith("sqlite:///"), "browser tests read the SQLite file"
    app = ChatApp(
        url=f"http://127.0.0.1:{chat_port}",
        log_path=tmp_path / "chainlit.log",
        database_path=Path(database_url.removeprefix("sqlite:///")),
        env=_app_env(hub, tmp_path / "app-data"),
    )
    try:
        app.start()
        yield app
    finally:
        app.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    expect.set_options(timeout=15_000)
    context = browser.new_context()
    context.set_default_timeout(15_000)
    context.route(OFF_MACHINE, lambda route: route.abort())
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, app: ChatApp, username: str, password: str = PASSWORD) -> None:
    """Open the chat: signed out, it sends the person to the hub's sign-in page, which brings
    them back signed in to both; already signed in at the hub, the chat opens at once."""
    page.goto(app.url)
    at_the_hub = re.compile(r"/login\?next=")

    def where() -> str | None:
        if page.locator("#chat-input").is_visible():
            return "chat"
        return "hub" if at_the_hub.search(page.url) else None

    if wait_until(where, timeout_s=15, what="the chat or the hub's sign-in page") == "chat":
        return
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("button[type=submit]").click()
    page.locator("#chat-input").wait_for(state="visible")


def send(page: Page, text: str) -> None:
    # Typed key by key: the composer is a React textarea that ignores a programmatic fill.
    box = page.locator("#chat-input")
    # While the page still settles (the socket joining, the profiles arriving) the composer
    # can be drawn anew and drop keys typed into the old one: type again until it has them all.
    for _ in range(3):
        box.click()
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.press("Delete")
        page.keyboard.type(text)
        if box.input_value() == text:
            break
    expect(box).to_have_value(text)
    expect(page.locator("#chat-submit")).to_be_enabled()
    # Right after a page load Chainlit may still be joining its socket and ignore a send, as
    # it would for a person; like a person, press again when the text is still in the box.
    for _ in range(3):
        page.keyboard.press("Enter")
        try:
            expect(box).to_have_value("", timeout=3_000)
            return
        except AssertionError:
            box.click()
    raise AssertionError(f"the chat did not accept the message {text!r}")


@pytest.fixture
def registered_weather(hub: RunningHub) -> Iterator[tuple[McpTestServer, httpx.Client]]:
    token = hub.new_service("weather-bot", team="weather")
    with (
        McpTestServer() as weather,
        httpx.Client(
            base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        response = client.post(
            "/api/mcp/servers",
            json={
                "slug": "weather",
                "name": "Weather",
                "description": "Current weather for office cities.",
                "team": "weather",
                "url": weather.url,
            },
        )
        assert response.status_code == 201, response.text
        yield weather, client


@pytest.fixture
def careful_chat_app(hub: RunningHub, tmp_path: Path, chat_user: str) -> Iterator[ChatApp]:
    """The chat app with an approval threshold of one byte for the test's user: every query
    asks first."""
    database_url = hub.settings.sqlalchemy_url
    env = _app_env(hub, tmp_path / "app-data")
    env["SWITCHBOARD_QUERY_APPROVAL_BYTES_BY_USER"] = json.dumps({chat_user: 1})
    app = ChatApp(
        url=hub.settings.app_public_url,
        log_path=tmp_path / "chainlit.log",
        database_path=Path(database_url.removeprefix("sqlite:///")),
        env=env,
    )
    try:
        app.start()
        yield app
    finally:
        app.stop()


@pytest.fixture
def analyst(
    hub: RunningHub, warehouse: EmulatorProcess, tmp_path: Path, chat_user: str
) -> Iterator[AnalystSetup]:
    """The data analyst published in the test hub, with its two MCP servers, as `switchboard
    run` does it."""
    with served_analyst(hub, warehouse, tmp_path) as setup:
        yield setup
