"""Shared by the docs servers: markdown pages, keyword search over them, and the FastMCP set-up."""

from mcp_servers.common.docs import DocSet, Match, Page, Section, parse_page, tokenize
from mcp_servers.common.server import (
    MAX_LIMIT,
    READ_ONLY,
    build_docs_server,
    page_or_error,
    search_docs,
)

__all__ = [
    "MAX_LIMIT",
    "READ_ONLY",
    "DocSet",
    "Match",
    "Page",
    "Section",
    "build_docs_server",
    "page_or_error",
    "parse_page",
    "search_docs",
    "tokenize",
]
