"""The chat and the hub read as one product, in a real browser: the chat's home carries
Switchboard's name and mark and shows every model and agent one may pick, with descriptions
and starters; its header links to the hub's pages for the person's role, where they land
signed in, and the hub's header links back to the chat."""

import re
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.app.conftest import PASSWORD, ChatApp, sign_in
from tests.conftest import RunningHub
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

SECOND_MODEL = "second-model"


@pytest.fixture
def hub_settings(hub_settings: Settings, tmp_path: Path, upstream: ScriptedUpstream) -> Settings:
    """A catalog of two models, each with a description."""
    catalog = yaml.safe_load(hub_settings.catalog_path.read_text())
    second = dict(catalog["models"][0], name=SECOND_MODEL)
    second["description"] = "A second model, for [comparison](http://evil.example)."
    catalog["models"].append(second)
    path = tmp_path / "two-models.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return hub_settings.model_copy(update={"catalog_path": path})


def _publish_agent(hub: RunningHub, owner: str) -> None:
    as_owner = {"Authorization": f"Bearer {hub.app_token}", "X-Switchboard-User": owner}
    with httpx.Client(base_url=hub.url, headers=as_owner, timeout=30) as client:
        created = client.post(
            "/api/agents",
            json={
                "slug": "data-helper",
                "name": "Data helper",
                "description": "Finds the table that answers your question.",
                "instructions": "Answer briefly.",
                "model": "test-model",
                "starters": ["Which tables are there?"],
            },
        )
        assert created.status_code == 201, created.text
        assert client.post("/api/agents/data-helper/publish").status_code == 201


def _header_link(page: Page, label: str) -> object:
    return page.locator("#header a").filter(has_text=label)


def test_the_home_shows_switchboard_every_choice_and_links_to_the_hub_signed_in(
    page: Page, hub: RunningHub, chat_app: ChatApp, chat_user: str, tmp_path: Path
) -> None:
    _publish_agent(hub, chat_user)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, chat_app, chat_user)

    # Switchboard's name and mark, not Chainlit's.
    expect(page).to_have_title("Switchboard")
    assert "Switchboard" in httpx.get(f"{chat_app.url}/favicon").text
    assert "Switchboard" in httpx.get(f"{chat_app.url}/logo?theme=light").text

    # The home: the picked model with its description and starters, and the other choices.
    home = page.locator("#welcome-screen")
    expect(home).to_contain_text("test-model")
    expect(home).to_contain_text("A model, through Switchboard's gateway.")
    expect(home).to_contain_text("The scripted upstream.")
    expect(home).to_contain_text("Also here")
    expect(home).to_contain_text(
        f"{SECOND_MODEL} (model): A second model, for [comparison](http://evil.example)."
    )
    expect(home).to_contain_text("Data helper (agent): Finds the table that answers")
    expect(home.locator('img[src$="/public/favicon.svg"]')).to_be_visible()
    # A description is text: a link under another name stays text.
    expect(home.get_by_role("link", name="comparison")).to_have_count(0)
    expect(page.locator("#starters")).to_contain_text("Explain a concept")

    # The header links to the hub's pages for a builder, not to the admins'.
    everyones = {
        "Agents": "/agents",
        "Prompts": "/prompts",
        "Evaluation": "/evaluation",
        "MCP servers": "/servers",
        "Traces": "/traces",
    }
    for label, path in everyones.items():
        expect(_header_link(page, label)).to_have_attribute("href", hub.url + path)
    for label in ("Costs", "Gateway", "Sessions"):
        expect(_header_link(page, label)).to_have_count(0)
    page.screenshot(path=tmp_path / "home.png", animations="disabled")

    # The agent's home: its description and its own starters.
    page.locator("#chat-profiles").click()
    page.locator('[data-test="select-item:agent:data-helper"]').click()
    expect(home).to_contain_text("An agent, published in Switchboard's hub.")
    expect(home).to_contain_text("Finds the table that answers your question.")
    expect(home.locator('img[src$="/public/agent.svg"]')).to_be_visible()
    expect(page.locator("#starters")).to_contain_text("Which tables are there?")
    page.screenshot(path=tmp_path / "agent-home.png", animations="disabled")

    # Following a link lands on the hub's page, signed in, with the same mark.
    _header_link(page, "Agents").click()
    page.wait_for_url(f"{hub.url}/agents")
    expect(page.locator("header .who")).to_contain_text(chat_user)
    expect(page.locator("header .brand svg")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Agents"))).to_be_visible()
    page.screenshot(path=tmp_path / "hub.png", animations="disabled")

    # And back.
    page.locator("header").get_by_role("link", name="Chat", exact=True).click()
    page.wait_for_url(re.compile(re.escape(chat_app.url)))
    page.locator("#chat-input").wait_for(state="visible")


def test_an_admins_header_also_links_to_costs_gateway_and_sessions(
    page: Page, hub: RunningHub, chat_app: ChatApp
) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="ana", password=PASSWORD, role=Role.admin)
    sign_in(page, chat_app, "ana")

    for label, path in (("Costs", "/costs"), ("Gateway", "/gateway"), ("Sessions", "/sessions")):
        expect(_header_link(page, label)).to_have_attribute("href", hub.url + path)
    _header_link(page, "Costs").click()
    page.wait_for_url(re.compile(re.escape(f"{hub.url}/costs")))
    expect(page.locator("header .who")).to_contain_text("ana")
    expect(page.locator("header").get_by_role("link", name="Chat", exact=True)).to_have_attribute(
        "href", chat_app.url
    )
