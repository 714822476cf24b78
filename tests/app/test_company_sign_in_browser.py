"""One company sign-in for the chat and the hub, in Chromium: through the local OpenID Connect
provider that `switchboard run` starts, with its demo people."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from hub.core.config import Settings
from hub.identity import local_provider
from tests.app.conftest import ChatApp, send
from tests.conftest import RunningHub
from tests.support.servers import served_module
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser

# A builder of team growth among the demo people.
BEN = next(person for person in local_provider.DEMO_PEOPLE if person.subject == "ben")


@pytest.fixture
def identity_provider(tmp_path: Path) -> Iterator[str]:
    """The local provider with the demo people, as `switchboard run` starts it."""
    with served_module(
        local_provider.MODULE, tmp_path / "provider.log", args=local_provider.provider_options()
    ) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def hub_settings(hub_settings: Settings, identity_provider: str) -> Settings:
    return hub_settings.model_copy(
        update={
            "oidc_issuer": identity_provider,
            "oidc_client_id": local_provider.CLIENT_ID,
            "oidc_client_secret": "a-client-secret-for-the-test",
            "oidc_provider_label": "the local identity provider",
        }
    )


def _sign_in_at_the_provider(page: Page, chat_app: ChatApp, subject: str) -> None:
    page.goto(chat_app.url)
    # Signed out, the chat sends the person to the hub, which offers company sign-in.
    page.wait_for_url(re.compile(r"/login\?next="))
    page.locator("#sso").click()
    # The provider's own page: pick who you are.
    page.get_by_role("button", name=subject, exact=True).click()
    page.locator("#chat-input").wait_for(state="visible")


def test_a_person_signs_in_once_through_the_provider_chats_uses_the_hub_and_signs_out_of_both(
    page: Page, hub: RunningHub, chat_app: ChatApp, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply="Hello Ben, here is your answer.")
    _sign_in_at_the_provider(page, chat_app, BEN.subject)
    expect(page).to_have_url(re.compile("^" + re.escape(chat_app.url)))

    send(page, "Hello there")
    expect(page.get_by_text("Hello Ben, here is your answer.")).to_be_visible()
    assert upstream.requests[-1]["messages"][-1]["content"] == "Hello there"

    # The hub's pages know them already: no second sign-in, and the role and team come from
    # the provider's groups.
    page.goto(f"{hub.url}/agents")
    expect(page).to_have_url(f"{hub.url}/agents")
    expect(page.locator("header")).to_contain_text(f"{BEN.subject} · builder · team growth")
    me = page.request.get(f"{hub.url}/api/auth/me").json()
    assert (me["kind"], me["role"], me["teams"]) == ("user", "builder", ["growth"])

    # Sign out in the chat: both are signed out.
    page.goto(chat_app.url)
    page.locator("#user-nav-button").click()
    page.get_by_text("Logout").click()
    # Signing out goes through more than one navigation (the chat's, then the hub's): wait for
    # where it ends rather than for the next load, which the following navigation may abort.
    expect(page).to_have_url(re.compile(re.escape(hub.url) + r"/login\?"))
    page.goto(f"{hub.url}/agents")
    page.wait_for_url(re.compile(re.escape(hub.url) + r"/login"))
    assert page.request.get(f"{hub.url}/api/auth/me").status == 401
    page.goto(chat_app.url)
    page.wait_for_url(re.compile(re.escape(hub.url) + r"/login\?next="))
