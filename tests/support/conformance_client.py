"""`python -m tests.support.conformance_client URL`: the hub's MCP client, driven as the hub
drives it, for the MCP conformance suite's client scenarios.

It discovers the server as registering it does (`hub.mcp.discovery.discover`: initialize, list
tools, resources and prompts), then calls each tool through the pool the hub calls tools with
(`hub.mcp.pool.SessionPool`), with a value for each required argument, as a model would.
Loopback is allowed: the suite's servers listen there.
"""

import sys
from typing import Any

import anyio

from hub.mcp.client import Endpoint
from hub.mcp.discovery import discover
from hub.mcp.netguard import NetworkPolicy
from hub.mcp.pool import SessionPool
from hub.models.mcp_server import McpTransport

__all__ = ["main"]

_SAMPLE = {"number": 2, "integer": 2, "string": "text", "boolean": True}


def sample_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """A value of the declared type for each required argument of a tool's input schema."""
    properties: dict[str, Any] = schema.get("properties", {})
    return {
        name: _SAMPLE.get(properties.get(name, {}).get("type", "string"), "text")
        for name in schema.get("required", [])
    }


async def drive(url: str) -> None:
    policy = NetworkPolicy.from_strings(["127.0.0.0/8", "::1/128"])
    endpoint = Endpoint(url=url, transport=McpTransport.streamable_http)
    found = await discover(endpoint, policy=policy, connect_timeout_s=10, timeout_s=20)
    pool = SessionPool(policy=policy, connect_timeout_s=10, call_timeout_s=5)
    try:
        for tool in found.tools:
            result = await pool.call_tool(
                server_id=1,
                version="conformance",
                endpoint=endpoint,
                tool=tool["name"],
                arguments=sample_arguments(tool.get("inputSchema", {})),
            )
            print(tool["name"], result)
    finally:
        await pool.close()


def main() -> None:
    anyio.run(drive, sys.argv[-1])


if __name__ == "__main__":
    main()
