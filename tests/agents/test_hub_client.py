"""The chat app's hub client against a real hub and a scripted upstream, over HTTP."""

from collections.abc import AsyncIterator

import pytest
from sqlmodel import Session

from agents.hub_client import HubClient, HubUnavailableError, HubUser, ModelInfo
from hub.core.db import get_engine
from hub.services.users import create_user
from hub.services.web_sessions import start_web_session
from tests.conftest import RunningHub
from tests.support.servers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(hub: RunningHub) -> AsyncIterator[HubClient]:
    client = HubClient(hub_url=hub.url, token=hub.app_token)
    yield client
    await client.aclose()


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


async def test_a_hub_that_is_down_is_reported_as_unreachable() -> None:
    client = HubClient(hub_url=f"http://127.0.0.1:{free_port()}", token="any")
    try:
        with pytest.raises(HubUnavailableError, match="not reachable"):
            await client.list_models()
        with pytest.raises(HubUnavailableError, match="not reachable"):
            await client.session_user("a-session-token")
        with pytest.raises(HubUnavailableError, match="not reachable"):
            await client.model_chat_spec(model="test-model", servers=[], user="ana")
    finally:
        await client.aclose()
