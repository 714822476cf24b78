"""Bad requests get OpenAI-shaped 4xx answers that say what to fix; upstream failures get 502."""

import json

import httpx
import openai
import pytest

from hub.gateway.redaction import redacted
from tests.conftest import RunningHub
from tests.support.servers import free_port
from tests.support.upstream import ScriptedUpstream

HELLO = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}


def _post(hub: RunningHub, token: str | None, body: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(hub.url + "/v1/chat/completions", json=body, headers=headers)


def _error(response: httpx.Response) -> dict[str, object]:
    error = response.json()["error"]
    assert isinstance(error, dict) and error["message"]
    return error


def test_a_request_without_a_token_is_refused_with_401(hub: RunningHub, upstream: ScriptedUpstream):
    response = _post(hub, None, HELLO)
    assert response.status_code == 401
    assert "Authorization: Bearer" in str(_error(response)["message"])
    assert upstream.hits == 0


def test_a_wrong_token_is_refused_with_401_by_the_sdk(hub: RunningHub, upstream: ScriptedUpstream):
    client = openai.OpenAI(base_url=hub.url + "/v1", api_key="sb-not-a-real-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(**HELLO)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert upstream.hits == 0


def test_an_unknown_model_gets_404_naming_the_known_ones(hub: RunningHub):
    client = openai.OpenAI(base_url=hub.url + "/v1", api_key=hub.new_service("m"), max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert "gpt-9" in str(caught.value) and "test-model" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "fix"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "'model' is required"),
        (b'{"model": "test-model"}', "'messages' is required"),
        (b'{"model": "test-model", "messages": []}', "non-empty"),
        (b'{"model": "test-model", "messages": [{"content": "x"}]}', "messages[0]"),
        (b'{"model": "test-model", "messages": [{"role": "user"}], "stream": "yes"}', "'stream'"),
    ],
)
def test_a_malformed_body_gets_400_that_says_what_to_fix(
    hub: RunningHub, upstream: ScriptedUpstream, body: bytes, fix: str
):
    response = httpx.post(
        hub.url + "/v1/chat/completions",
        content=body,
        headers={"authorization": f"Bearer {hub.app_token}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert fix in str(_error(response)["message"])
    assert upstream.hits == 0


@pytest.mark.parametrize("field", ["api_base", "base_url", "extra_headers", "headers", "api_key"])
def test_a_client_cannot_steer_where_the_gateway_connects(
    hub: RunningHub, upstream: ScriptedUpstream, field: str
):
    response = _post(hub, hub.app_token, {**HELLO, field: "http://169.254.169.254/"})
    assert response.status_code == 400
    assert field in str(_error(response)["message"])
    assert upstream.hits == 0


def test_usage_needs_an_admin_token(hub: RunningHub):
    response = httpx.get(
        hub.url + "/v1/usage", headers={"authorization": f"Bearer {hub.new_service('plain')}"}
    )
    assert response.status_code == 403
    assert "admin" in str(_error(response)["message"])


def test_an_unknown_gateway_path_is_an_openai_404(hub: RunningHub):
    response = httpx.get(hub.url + "/v1/nothing-here")
    assert response.status_code == 404
    assert "/v1/nothing-here" in str(_error(response)["message"])


@pytest.mark.parametrize("status", [500, 503, 429])
def test_an_upstream_failure_is_a_502_with_the_upstreams_status_and_message(
    hub: RunningHub, upstream: ScriptedUpstream, status: int
):
    upstream.script(status=status, error_message="the provider is on fire")
    client = openai.OpenAI(base_url=hub.url + "/v1", api_key=hub.app_token, max_retries=0)
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(**HELLO, stream=stream)
        assert caught.value.status_code == 502
        assert str(status) in caught.value.message
        assert "the provider is on fire" in caught.value.message


def test_an_upstream_refusal_of_the_request_is_passed_on_as_400(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(status=400, error_message="context length exceeded")
    response = _post(hub, hub.app_token, HELLO)
    assert response.status_code == 400
    assert "context length exceeded" in str(_error(response)["message"])


LEAKY = (
    "Incorrect API key provided: sk-proj-Abc123Def456Ghi789. Sent with Authorization: Bearer "
    "tok.en-value_42 to https://gpu-7.inference.internal:8443/v1/chat at 10.20.30.40 "
    "(fd00::1a2b) via vllm-eu.cluster.local and sidecar:9000."
)
SECRETS = [
    "sk-proj",
    "Abc123Def456Ghi789",
    "tok.en-value_42",
    "https://",
    "gpu-7",
    "inference.internal",
    "10.20.30.40",
    "fd00::1a2b",
    "vllm-eu",
    "cluster.local",
    "sidecar",
]


@pytest.mark.parametrize("status", [400, 401, 503])
def test_keys_hosts_and_addresses_in_a_providers_error_do_not_reach_the_caller(
    hub: RunningHub, upstream: ScriptedUpstream, status: int
):
    upstream.script(status=status, error_message=LEAKY)
    for stream in (False, True):
        response = _post(hub, hub.app_token, {**HELLO, "stream": stream})
        assert response.status_code == (400 if status == 400 else 502)
        message = str(_error(response)["message"])
        for secret in SECRETS:
            assert secret not in message
        # The rest of the provider's message still says what went wrong.
        assert "Incorrect API key provided: [key]." in message
        assert "at [address]" in message and "[url]" in message


def test_an_unreachable_upstream_is_a_502_that_names_the_deployment(tmp_path, monkeypatch):
    from hub.core.config import Settings
    from hub.main import create_app
    from tests.conftest import write_catalog
    from tests.support.servers import ThreadedServer

    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'hub.db'}",
        catalog_path=write_catalog(tmp_path / "models.yaml", dead),
        app_service_token="sb-test-app-token",
    )
    with ThreadedServer(create_app(settings)) as server:
        response = httpx.post(
            server.base_url + "/v1/chat/completions",
            json=HELLO,
            headers={"authorization": "Bearer sb-test-app-token"},
        )
    assert response.status_code == 502
    message = str(_error(response)["message"])
    assert "Could not reach upstream openai-compatible/local/scripted-model" in message
    # Not where it is: the deployment's address is the hub's business.
    assert "127.0.0.1" not in message and "[address]" in message


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 8192 tokens; gpt-4o-mini got 9000.",
        "1 validation error: messages.0.content Field required",
        "claude-3.5-sonnet does not take images, e.g. image_url parts.",
    ],
)
def test_a_providers_message_without_keys_or_hosts_passes_unchanged(message: str):
    assert redacted(message) == message


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_from_a_provider_is_a_502_and_the_prompt_goes_no_further(
    hub: RunningHub, upstream: ScriptedUpstream, spare: ScriptedUpstream, status: int
):
    upstream.script(status=status, headers={"location": spare.url + "/chat/completions"})
    for stream in (False, True):
        response = _post(hub, hub.app_token, {**HELLO, "stream": stream})
        assert response.status_code == 502
        message = str(_error(response)["message"])
        assert f"redirect (status {status})" in message and spare.url not in message
    assert spare.hits == 0
    # Not retried: the same redirect would come back.
    assert upstream.hits == 2


def test_a_providers_error_event_in_a_stream_is_passed_on_without_keys_or_hosts(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(reply="one two three four", drop_after_chunks=2, stream_error=LEAKY)
    response = _post(hub, hub.app_token, {**HELLO, "stream": True})
    assert response.status_code == 200
    errors = [
        json.loads(line.removeprefix("data: "))["error"]["message"]
        for line in response.text.splitlines()
        if line.startswith("data: {") and '"error"' in line
    ]
    # The provider's, then the gateway's own: the stream stopped short.
    assert len(errors) == 2
    assert errors[0].startswith("Incorrect API key provided: [key].")
    for secret in SECRETS:
        assert secret not in response.text
