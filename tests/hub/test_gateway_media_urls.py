"""Image and file URLs in messages reach a model's servers only as its catalog entry allows:
data: URLs, and https URLs to the hosts it names; anything else is a 400 that says why."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from hub.main import create_app
from tests.support.gateway import APP_TOKEN, Model, gateway_settings
from tests.support.servers import ThreadedServer
from tests.support.upstream import ScriptedUpstream

PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture
def hub_url(tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream) -> Iterator[str]:
    settings = gateway_settings(
        tmp_path,
        # "plain" keeps the default: data: URLs only. Its fallback takes nothing but text.
        Model("plain", [upstream.url], fallbacks=["strict"]),
        Model("strict", [spare.url], extra={"media_urls": {"data": False}}),
        Model(
            "viewer",
            [upstream.url],
            extra={"media_urls": {"https_hosts": ["images.example.com", "*.cdn.example.org"]}},
        ),
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server.base_url


def _ask(url: str, model: str, *parts: dict[str, object]) -> httpx.Response:
    content = [{"type": "text", "text": "what is in this picture?"}, *parts]
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": content}]},
        headers={"authorization": f"Bearer {APP_TOKEN}"},
        timeout=30,
    )


def _image(url: str) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": url}}


@pytest.mark.parametrize(
    ("model", "url", "shown"),
    [
        ("plain", "https://images.example.com/cat.png", "an https URL to images.example.com"),
        ("plain", "http://169.254.169.254/latest/meta-data/", "an http URL to 169.254.169.254"),
        ("viewer", "http://images.example.com/cat.png", "an http URL to images.example.com"),
        ("viewer", "https://images.example.com.evil.net/x.png", "images.example.com.evil.net"),
        ("viewer", "https://example.org/x.png", "an https URL to example.org"),
        ("viewer", "file:///etc/passwd", "a URL with no host"),
        ("strict", PIXEL, "a data: URL"),
    ],
)
def test_an_image_url_the_catalog_does_not_allow_is_a_400_that_says_why(
    hub_url: str,
    upstream: ScriptedUpstream,
    spare: ScriptedUpstream,
    model: str,
    url: str,
    shown: str,
):
    response = _ask(hub_url, model, _image(url))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "messages[0].content[1].image_url"
    assert shown in error["message"] and "media_urls" in error["message"]
    assert upstream.hits == spare.hits == 0


def test_a_file_given_by_url_is_refused_like_an_image(hub_url: str, upstream: ScriptedUpstream):
    part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://10.0.0.8/a.pdf"}}
    response = _ask(hub_url, "plain", part)
    assert response.status_code == 400
    assert (
        "messages[0].content[1].file.file_data is an https URL to 10.0.0.8"
        in (response.json()["error"]["message"])
    )
    assert upstream.hits == 0


@pytest.mark.parametrize(
    ("model", "url"),
    [
        ("plain", PIXEL),
        ("viewer", PIXEL),
        ("viewer", "https://images.example.com/cat.png"),
        ("viewer", "https://eu.cdn.example.org/cat.png"),
    ],
)
def test_allowed_image_urls_go_through_unchanged(
    hub_url: str, upstream: ScriptedUpstream, model: str, url: str
):
    client = openai.OpenAI(base_url=hub_url + "/v1", api_key=APP_TOKEN, max_retries=0)
    client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}, _image(url)]}],
    )
    assert upstream.requests[-1]["messages"][0]["content"][1] == _image(url)


def test_a_fallback_that_is_not_given_the_image_is_skipped(
    hub_url: str, upstream: ScriptedUpstream, spare: ScriptedUpstream
):
    upstream.script(status=503)
    response = _ask(hub_url, "plain", _image(PIXEL))
    assert response.status_code == 502
    assert upstream.hits >= 1 and spare.hits == 0
