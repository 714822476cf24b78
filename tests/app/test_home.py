"""The chat's home in-process: a profile per model and agent with its description, the other
choices and starters; hub text kept as text; a plain word when there is nothing to pick."""

import pytest

from agents.hub_client import AgentInfo, HubClient, ModelInfo
from app.home import MODEL_STARTERS, empty_home_notice, home_profiles, markdown_text
from tests.support.servers import free_port

pytestmark = pytest.mark.anyio

MODELS = [ModelInfo(id="gpt-4o-mini", description="Fast and cheap."), ModelInfo(id="local")]
ANALYST = AgentInfo(
    slug="analyst",
    name="Data analyst",
    description="Answers questions about the marketplace.",
    starters=("Posts per day?",),
    is_draft=False,
)


class _NoModels(HubClient):
    async def list_models(self) -> list[ModelInfo]:
        return []


def test_every_model_and_agent_is_a_profile_that_names_the_others() -> None:
    first, second, analyst = home_profiles(MODELS, [ANALYST])

    assert [first.name, second.name, analyst.name] == ["gpt-4o-mini", "local", "agent:analyst"]
    assert [first.default, second.default, analyst.default] == [True, False, False]
    assert first.markdown_description.startswith("### gpt\\-4o\\-mini\n\n")
    assert "Fast and cheap\\." in first.markdown_description
    assert "- **local** (model)\n" in first.markdown_description
    assert "- **Data analyst** (agent): Answers questions" in first.markdown_description
    assert first.starters == list(MODEL_STARTERS)
    assert first.icon == "/public/favicon.svg"
    assert analyst.display_name == "Data analyst"
    assert analyst.icon == "/public/agent.svg"
    assert [starter.message for starter in analyst.starters or []] == ["Posts per day?"]


def test_a_draft_is_marked_as_the_persons_own() -> None:
    draft = AgentInfo(slug="mine", name="Mine", description="", starters=(), is_draft=True)
    (profile,) = home_profiles([], [draft])
    assert profile.name == "draft:mine"
    assert profile.display_name == "Mine (draft)"
    assert "Your draft agent" in profile.markdown_description
    assert profile.starters is None


def test_text_from_the_hub_is_not_taken_for_markdown() -> None:
    sneaky = "![pixel](http://evil.example/p.png) [Docs](http://evil.example) # Big"
    escaped = markdown_text(sneaky)
    assert "\\!\\[pixel\\]\\(http\\:" in escaped
    assert "\\[Docs\\]\\(" in escaped
    assert "\\# Big" in escaped
    assert escaped.replace("\\", "") == sneaky


async def test_the_home_says_why_there_is_nothing_to_pick() -> None:
    unreachable = HubClient(hub_url=f"http://127.0.0.1:{free_port()}", token="t")
    empty = _NoModels(hub_url="http://127.0.0.1:1", token="t")
    try:
        down = await empty_home_notice(unreachable)
        none = await empty_home_notice(empty)
    finally:
        await unreachable.aclose()
        await empty.aclose()
    assert down is not None and "is not reachable" in down
    assert none is not None and "no models are configured" in none
