"""Journey 6 as a person sees it in chat: when the model fails and its fallback answers, the
reply says so quietly, so nobody is misled about who answered."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from hub.core.config import Settings
from tests.app.conftest import ChatApp, send, sign_in
from tests.conftest import write_catalog
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.browser


@pytest.fixture
def spare() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        yield server


@pytest.fixture
def hub_settings(
    hub_settings: Settings, tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
) -> Settings:
    catalog = write_catalog(tmp_path / "models.yaml", upstream.url, **{"spare-model": spare.url})
    models = yaml.safe_load(catalog.read_text())
    models["models"][0]["fallbacks"] = ["spare-model"]
    catalog.write_text(yaml.safe_dump(models))
    return hub_settings.model_copy(update={"catalog_path": catalog, "retry_backoff_s": 0.01})


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
