"""Notes on the `marketplace` BigQuery tables as an MCP server, for models that write SQL."""

from mcp_servers.datamodel.server import DEFAULT_DOCS_DIR, build_server

__all__ = ["DEFAULT_DOCS_DIR", "build_server"]
