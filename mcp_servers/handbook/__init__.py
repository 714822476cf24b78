"""The company handbook as an MCP server: keyword search and page reads over shipped markdown."""

from mcp_servers.handbook.server import DEFAULT_DOCS_DIR, build_server

__all__ = ["DEFAULT_DOCS_DIR", "build_server"]
