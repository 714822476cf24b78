"""The chat app's hub client against a real hub and a scripted upstream, over HTTP."""

from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from sqlmodel import Session

from app.hub_client import HubClient, HubError, HubUnavailableError, HubUser, ModelInfo
from hub.core.db import get_engine
from hub.services.users import create_user
from hub.services.web_sessions import start_web_session
from tests.conftest import RunningHub
from tests.support.servers import free_port
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(hub: RunningHub) -> AsyncIterator[HubClient]:
    client = HubClient(hub_url=hub.url, token=hub.app_token)
    yield client
    await client.aclose()


async def _wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    with anyio.fail_after(timeout_s):
        while True:
            if condition():
                return
            await anyio.sleep(0.02)


async def test_the_model_list_comes_from_the_hub_catalog(client: HubClient) -> None:
    assert await client.list_models() == [
        ModelInfo(id="test-model", description="The scripted upstream.")
    ]


async def test_a_hub_session_names_its_person_until_it_ends(
    hub: RunningHub, client: HubClient
) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        ada = create_user(
            session=session, username="ada", password="pw-123456", display_name="Ada", team="data"
        )
        token = start_web_session(session=session, user=ada, days=1, method="password")
        expected = HubUser(
            key=ada.key,
            username="ada",
            display_name="Ada",
            email=None,
            role="member",
            teams=("data",),
        )

    assert await client.session_user(token) == expected
    assert await client.session_user("not-a-session") is None
    await client.end_session(token)
    assert await client.session_user(token) is None


async def test_tokens_stream_and_the_history_reaches_the_model(
    client: HubClient, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply="one two three")
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "count"},
    ]

    tokens = [token async for token in client.stream_chat(model="test-model", messages=history)]

    assert tokens == ["one", " two", " three"]
    assert upstream.requests[-1]["messages"] == history
    assert upstream.requests[-1]["stream"] is True


async def test_closing_the_stream_early_cancels_the_upstream_call(
    client: HubClient, upstream: ScriptedUpstream
) -> None:
    upstream.script(reply=" ".join(["word"] * 200), chunk_delay_s=0.05)
    tokens = client.stream_chat(model="test-model", messages=[{"role": "user", "content": "go"}])

    assert await anext(tokens) == "word"
    await tokens.aclose()

    await _wait_until(lambda: upstream.cancelled_streams == 1)
    assert upstream.completed_streams == 0


async def test_an_unknown_model_is_reported_in_the_hubs_words(client: HubClient) -> None:
    with pytest.raises(HubError) as caught:
        async for _ in client.stream_chat(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        ):
            pass

    assert not isinstance(caught.value, HubUnavailableError)
    assert "no-such-model" in str(caught.value)


async def test_an_upstream_failure_is_reported_with_the_gateways_message(
    client: HubClient, upstream: ScriptedUpstream
) -> None:
    upstream.script(status=400, error_message="context length exceeded")

    with pytest.raises(HubError, match="context length exceeded"):
        async for _ in client.stream_chat(
            model="test-model", messages=[{"role": "user", "content": "hi"}]
        ):
            pass


async def test_a_hub_that_is_down_is_reported_as_unreachable() -> None:
    client = HubClient(hub_url=f"http://127.0.0.1:{free_port()}", token="any")
    try:
        with pytest.raises(HubUnavailableError, match="not reachable"):
            await client.list_models()
        with pytest.raises(HubUnavailableError, match="not reachable"):
            await client.session_user("a-session-token")
        with pytest.raises(HubUnavailableError, match="not reachable"):
            async for _ in client.stream_chat(model="test-model", messages=[]):
                pass
    finally:
        await client.aclose()
