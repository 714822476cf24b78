"""What every docs server shares: the FastMCP set-up, one resource per page, tool errors.

A docs server (the handbook, the data-model notes) declares its own three typed tools, because
their names, parameters, output fields and docstrings are what a model reads and differ per
server; their bodies are one call each to `search_docs`, `page_or_error` and `DocSet.pages`.
"""

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.fastmcp.resources import TextResource
from mcp.types import ToolAnnotations
from pydantic import AnyUrl

from mcp_servers.common.docs import DocSet, Match, Page

__all__ = ["MAX_LIMIT", "READ_ONLY", "build_docs_server", "page_or_error", "search_docs"]

MAX_LIMIT = 20
READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)


def build_docs_server(
    *, name: str, instructions: str, docs: DocSet, uri_scheme: str, host: str, port: int
) -> FastMCP:
    """A FastMCP server for `docs`, each page registered as a markdown resource `scheme://slug`.

    The caller adds the tools. `host` and `port` are where `run("streamable-http")` listens; on a
    loopback host the SDK also turns on DNS-rebinding protection.
    """
    server = FastMCP(
        name=name,
        instructions=instructions,
        host=host,
        port=port,
        log_level="WARNING",
        # A docs server never writes to a client unasked: stateless JSON answers need no
        # session state and no standing event stream, so any replica can answer any call.
        stateless_http=True,
        json_response=True,
    )
    for page in docs.pages:
        server.add_resource(
            TextResource(
                uri=AnyUrl(f"{uri_scheme}://{page.slug}"),
                name=page.slug,
                title=page.title,
                description=page.summary,
                mime_type="text/markdown",
                text=page.markdown,
            )
        )
    return server


def search_docs(docs: DocSet, query: str, limit: int, *, examples: str) -> list[Match]:
    """The best `limit` sections for `query`; a ToolError naming `examples` when it is empty."""
    if not query.strip():
        raise ToolError(
            f"query is empty: send a few keywords about what you are looking for, e.g. {examples}"
        )
    return docs.search(query, limit)


def page_or_error(docs: DocSet, slug: str, *, unknown: str) -> Page:
    """The page `slug`, or a ToolError: `unknown` (formatted with the slug and the valid slugs)."""
    page = docs.get(slug)
    if page is None:
        raise ToolError(unknown.format(slug=slug, valid=", ".join(docs.slugs)))
    return page
