"""Provider-side options (store, service_tier, n, audio) reach a provider only as the model's
catalog entry says: passed on, dropped, or (unless it says otherwise) refused with a 400 that
names the option; at their neutral values they always pass."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.main import create_app
from tests.support.gateway import APP_TOKEN, Model, gateway_settings
from tests.support.servers import ThreadedServer
from tests.support.upstream import ScriptedUpstream

EVERY_OPTION: dict[str, Any] = {
    "store": True,
    "service_tier": "priority",
    "n": 2,
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
}


@pytest.fixture
def hub_url(tmp_path: Path, upstream: ScriptedUpstream) -> Iterator[str]:
    settings = gateway_settings(
        tmp_path,
        Model("careful", [upstream.url]),
        Model(
            "tidy",
            [upstream.url],
            extra={"provider_options": {"store": "drop", "service_tier": "drop", "audio": "drop"}},
        ),
        Model(
            "open",
            [upstream.url],
            extra={
                "provider_options": dict.fromkeys(["store", "service_tier", "n", "audio"], "pass")
            },
        ),
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server.base_url


def _ask(url: str, model: str, **options: Any) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **options},
        headers={"authorization": f"Bearer {APP_TOKEN}"},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"store": True}, "store"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"n": 3}, "n"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
    ],
)
def test_an_option_the_catalog_does_not_name_is_refused_with_a_400_naming_it(
    hub_url: str, upstream: ScriptedUpstream, options: dict[str, Any], field: str
):
    response = _ask(hub_url, "careful", **options)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field
    assert f"{field!r}" in error["message"] and "'careful'" in error["message"]
    assert "provider_options" in error["message"]
    assert upstream.hits == 0


def test_options_at_their_neutral_values_pass_unchanged(hub_url: str, upstream: ScriptedUpstream):
    neutral = {"store": False, "n": 1, "audio": None, "modalities": ["text"]}
    assert _ask(hub_url, "careful", **neutral).status_code == 200
    sent = upstream.requests[-1]
    assert {key: sent[key] for key in neutral} == neutral


def test_options_the_catalog_drops_do_not_reach_the_provider(
    hub_url: str, upstream: ScriptedUpstream
):
    dropped = {key: EVERY_OPTION[key] for key in ("store", "service_tier", "audio", "modalities")}
    assert _ask(hub_url, "tidy", **dropped, temperature=0.5).status_code == 200
    sent = upstream.requests[-1]
    assert not set(dropped) & set(sent)
    assert sent["temperature"] == 0.5
    # n is not named for this model: refused.
    assert _ask(hub_url, "tidy", n=2).status_code == 400


def test_options_the_catalog_passes_reach_the_provider_unchanged(
    hub_url: str, upstream: ScriptedUpstream
):
    assert _ask(hub_url, "open", **EVERY_OPTION).status_code == 200
    sent = upstream.requests[-1]
    assert {key: sent[key] for key in EVERY_OPTION} == EVERY_OPTION
