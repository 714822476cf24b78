"""What the catalog says each model can do, and the agent builder going by it: an agent with
MCP servers needs a model that calls tools."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from hub.core.config import Settings
from hub.gateway.model_catalog import ModelCatalogError, load_model_catalog
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer
from tests.support.owners import as_service
from tests.support.upstream import ScriptedUpstream


@pytest.fixture
def hub_settings(hub_settings: Settings, upstream: ScriptedUpstream) -> Settings:
    """The test catalog with a second model, `tiny-model`, that cannot call tools."""
    catalog = yaml.safe_load(hub_settings.catalog_path.read_text())
    catalog["models"].append(
        {
            "name": "tiny-model",
            "deployments": [
                {"provider": "openai-compatible", "base_url": upstream.url, "model": "tiny"}
            ],
            "capabilities": {"tool_calling": False, "context_window": 8192},
        }
    )
    hub_settings.catalog_path.write_text(yaml.safe_dump(catalog))
    return hub_settings


@pytest.fixture
def builder(hub: RunningHub) -> Iterator[httpx.Client]:
    with McpTestServer() as weather, as_service(hub, hub.new_service("bot", team="w")) as client:
        body = {"slug": "weather", "name": "Weather", "team": "w", "url": weather.url}
        assert client.post("/api/mcp/servers", json=body).status_code == 201
        yield client


def test_the_model_list_says_what_each_model_can_do(builder: httpx.Client) -> None:
    listed = {item["id"]: item["capabilities"] for item in builder.get("/v1/models").json()["data"]}
    # test-model says nothing: a model calls tools unless its entry says otherwise.
    assert listed == {
        "test-model": {
            "tool_calling": True,
            "image_input": False,
            "json_schema_output": False,
            "context_window": None,
        },
        "tiny-model": {
            "tool_calling": False,
            "image_input": False,
            "json_schema_output": False,
            "context_window": 8192,
        },
    }


def test_the_builder_refuses_tools_on_a_model_that_cannot_call_them_and_says_why(
    builder: httpx.Client,
) -> None:
    body = {"slug": "helper", "name": "Helper", "model": "tiny-model", "mcp_servers": ["weather"]}
    refused = builder.post("/api/agents", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        "The model 'tiny-model' cannot call tools, and the agent uses MCP servers: choose one "
        "that can (test-model), or take the servers out."
    )
    assert builder.get("/api/agents/helper").status_code == 404

    # Without servers the small model is fine; moving it onto tools is refused, then the
    # draft stays as it was and publishes.
    made = builder.post("/api/agents", json={**body, "mcp_servers": []})
    assert made.status_code == 201, made.text
    moved = builder.patch("/api/agents/helper", json={"mcp_servers": ["weather"]})
    assert moved.status_code == 422 and "cannot call tools" in moved.json()["detail"]
    assert builder.get("/api/agents/helper").json()["draft"]["mcp_servers"] == []
    assert builder.post("/api/agents/helper/publish").status_code == 201

    # On a model that calls tools the servers are taken.
    changed = builder.patch(
        "/api/agents/helper", json={"model": "test-model", "mcp_servers": ["weather"]}
    )
    assert changed.status_code == 200, changed.text


def test_the_builder_page_marks_the_models_that_cannot_call_tools(
    hub: RunningHub, builder: httpx.Client
) -> None:
    page = builder.get("/agents/new")
    assert page.status_code == 200
    assert '<option value="tiny-model" >tiny-model (cannot call tools)</option>' in page.text
    assert "test-model (cannot" not in page.text
    assert "runs agents without MCP servers only" in page.text


def test_capabilities_that_make_no_sense_are_refused_when_the_catalog_loads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "models.yaml"
    entry = {
        "name": "m",
        "deployments": [{"provider": "vllm", "base_url": "http://x", "model": "m"}],
    }
    for capabilities, problem in [
        ({"context_window": 0}, "greater than 0"),
        ({"tool_calls": True}, "Extra inputs are not permitted"),
    ]:
        path.write_text(yaml.safe_dump({"models": [{**entry, "capabilities": capabilities}]}))
        with pytest.raises(ModelCatalogError, match=problem):
            load_model_catalog(path)
