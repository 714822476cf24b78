"""Journey 6 as a person sees it in chat: when the model fails and its fallback answers, the
reply says so quietly, so nobody is misled about who answered."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from hub.core.config import Settings
from tests.app.conftest import ChatApp, send, sign_in
from tests.conftest import with_spare_model
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser


@pytest.fixture
def hub_settings(
    hub_settings: Settings, tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
) -> Settings:
    return with_spare_model(hub_settings, tmp_path, upstream, spare)


def test_a_reply_from_the_fallback_model_says_which_model_answered(
    page: Page,
    chat_app: ChatApp,
    chat_user: str,
    upstream: ScriptedUpstream,
    spare: ScriptedUpstream,
) -> None:
    upstream.script(status=503, error_message="region down")
    spare.script(reply="The spare model answers.")
    sign_in(page, chat_app, chat_user)

    send(page, "Who is answering?")
    reply = page.locator(".message-content").filter(has_text="The spare model answers.").last
    expect(reply).to_be_visible()
    expect(reply).to_contain_text("Answered by spare-model: test-model was not available.")
    assert upstream.hits == 3 and spare.hits == 1

    upstream.script(reply="Back to normal.")
    send(page, "And now?")
    normal = page.locator(".message-content").filter(has_text="Back to normal.").last
    expect(normal).to_be_visible()
    expect(normal).not_to_contain_text("Answered by")
