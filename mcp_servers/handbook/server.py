"""The handbook's FastMCP server: three read-only tools and one resource per page."""

from pathlib import Path
from typing import Annotated

from mcp.server.fastmcp import FastMCP
from pydantic import BaseModel, Field

from mcp_servers.common import (
    MAX_LIMIT,
    READ_ONLY,
    DocSet,
    build_docs_server,
    page_or_error,
    search_docs,
)

__all__ = ["DEFAULT_DOCS_DIR", "HandbookPage", "PageSummary", "SearchHit", "build_server"]

DEFAULT_DOCS_DIR = Path(__file__).parent / "docs"

INSTRUCTIONS = """\
The Switchboard company handbook: the company's own policies and how-tos. Use it for any
question about how things work at Switchboard instead of answering from general knowledge.
Search it with search_handbook (short keyword queries), then read the page a hit points to with
read_handbook_page before answering, and name the page you relied on. list_handbook_pages shows
every page. Each page is also a resource at handbook://{slug}.
Pages: """


class SearchHit(BaseModel):
    slug: str = Field(description="The page's slug; pass it to read_handbook_page.")
    title: str = Field(description="The page's title.")
    section: str = Field(description="The heading of the section that matched.")
    snippet: str = Field(description="Text around the best match in that section.")
    score: float = Field(description="Relevance; higher is better. Only compare within one search.")


class HandbookPage(BaseModel):
    slug: str
    title: str
    markdown: str = Field(description="The whole page as markdown.")


class PageSummary(BaseModel):
    slug: str
    title: str
    summary: str = Field(description="One line on what the page covers.")


def build_server(
    docs_dir: Path | None = None, *, host: str = "127.0.0.1", port: int = 8300
) -> FastMCP:
    """The handbook server over the `*.md` pages in `docs_dir` (default: the shipped pages).

    The pages are read here, once: they are static, and each one is registered as a resource.
    `host` and `port` are where `run("streamable-http")` listens; on a loopback host the SDK
    also turns on DNS-rebinding protection.
    """
    handbook = DocSet.load(docs_dir or DEFAULT_DOCS_DIR)
    titles = "; ".join(f"{page.title} ({page.slug})" for page in handbook.pages)
    server = build_docs_server(
        name="handbook",
        instructions=INSTRUCTIONS + titles + ".",
        docs=handbook,
        uri_scheme="handbook",
        host=host,
        port=port,
    )

    @server.tool(title="Search the handbook", annotations=READ_ONLY)
    def search_handbook(
        query: Annotated[str, Field(description="Keywords to look for, e.g. 'hotel nightly cap'.")],
        limit: Annotated[
            int, Field(ge=1, le=MAX_LIMIT, description="How many hits to return at most.")
        ] = 5,
    ) -> list[SearchHit]:
        """Search the Switchboard company handbook; return the best-matching sections, best first.

        Use it for any question about company policy or process (money, time off, access,
        on-call, equipment, onboarding...). Send a few keywords rather than a whole question.
        Each hit gives the page slug, the section heading and a snippet; read the whole page with
        read_handbook_page before relying on a detail. An empty list means no page mentions those
        words: try synonyms, or list_handbook_pages to see what the handbook covers.
        """
        matches = search_docs(
            handbook, query, limit, examples="'parental leave' or 'hotel nightly cap'"
        )
        return [
            SearchHit(
                slug=match.page.slug,
                title=match.page.title,
                section=match.section.heading,
                snippet=match.snippet,
                score=match.score,
            )
            for match in matches
        ]

    @server.tool(title="Read a handbook page", annotations=READ_ONLY)
    def read_handbook_page(
        slug: Annotated[
            str, Field(description="A page slug from search_handbook or list_handbook_pages.")
        ],
    ) -> HandbookPage:
        """Read one whole page of the Switchboard company handbook, as markdown.

        Take the slug from a search_handbook hit or from list_handbook_pages. Quote the page's
        title when you answer from it.
        """
        page = page_or_error(
            handbook,
            slug.strip(),
            unknown="there is no handbook page {slug!r}; valid slugs are: {valid}",
        )
        return HandbookPage(slug=page.slug, title=page.title, markdown=page.markdown)

    @server.tool(title="List handbook pages", annotations=READ_ONLY)
    def list_handbook_pages() -> list[PageSummary]:
        """List every page of the Switchboard company handbook: slug, title and a one-line summary.

        Use it to see what the handbook covers, or to find a slug for read_handbook_page.
        """
        return [
            PageSummary(slug=page.slug, title=page.title, summary=page.summary)
            for page in handbook.pages
        ]

    return server
